//go:build linux

package daemon

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
)

type notice struct {
	at    time.Time
	state string
}

// fakeNotifySocket is the NOTIFY_SOCKET systemd would read: every
// datagram the daemon sends arrives on the returned channel.
func fakeNotifySocket(t *testing.T, watchdog time.Duration) <-chan notice {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "0")
	if watchdog > 0 {
		t.Setenv("WATCHDOG_USEC", strconv.FormatInt(int64(watchdog/time.Microsecond), 10))
	}
	t.Setenv("WATCHDOG_PID", "")
	ch := make(chan notice, 1024)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				close(ch)
				return
			}
			for _, s := range strings.Split(strings.TrimSpace(string(b[:n])), "\n") {
				ch <- notice{time.Now(), s}
			}
		}
	}()
	return ch
}

func oneTarget() (*config.Config, config.Diagnostics, error) {
	c := &config.Config{Dialect: config.DialectIET}
	c.Targets = append(c.Targets, config.NewTarget(1, "iqn.2026-01.example:notify"))
	return c, nil, nil
}

// next waits for the next notice other than WATCHDOG=1.
func next(t *testing.T, ch <-chan notice) string {
	t.Helper()
	for {
		select {
		case n := <-ch:
			if n.state != "WATCHDOG=1" {
				return n.state
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no notification in 10 s")
		}
	}
}

// systemd is told READY=1 once the daemon serves, RELOADING=1 and READY=1
// around a SIGHUP reload, STOPPING=1 when it stops; WATCHDOG=1 keeps
// coming while the listings' writer waits for a lock an ietadm change
// holds (a change opening a slow store). Before, the listings were written
// from the loop that feeds the watchdog: it stopped pinging until the
// change was done, and systemd (WatchdogSec) killed a busy daemon.
func TestNotifications(t *testing.T) {
	notes := fakeNotifySocket(t, 200*time.Millisecond)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hold := 3 * time.Second // longer than the listings' 2 s period
	held := make(chan time.Time, 1)
	started := func(d *Daemon) {
		d.mu.Lock() // as engine.Apply holds it while it opens stores
		go func() {
			time.Sleep(hold)
			d.mu.Unlock()
			held <- time.Now()
		}()
	}
	sigs, done := startRun(t, Options{Load: oneTarget, Listeners: []net.Listener{l}, ProcDir: filepath.Join(t.TempDir(), "proc"), started: started})
	if s := next(t, notes); s != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", s)
	}
	start := time.Now()
	var end time.Time
	last, worst, pings := start, time.Duration(0), 0
	for end.IsZero() {
		select {
		case end = <-held:
		case n := <-notes:
			if n.state != "WATCHDOG=1" {
				t.Fatalf("notification %q while running", n.state)
			}
			pings++
			worst = max(worst, n.at.Sub(last))
			last = n.at
		}
	}
	if worst = max(worst, end.Sub(last)); worst > 500*time.Millisecond {
		t.Fatalf("no WATCHDOG=1 for %v (%d pings in %v) at a 200 ms watchdog", worst, pings, end.Sub(start))
	}
	sigs <- syscall.SIGHUP
	if s := next(t, notes); s != "RELOADING=1" {
		t.Fatalf("after SIGHUP %q, want RELOADING=1", s)
	}
	if s := next(t, notes); s != "READY=1" {
		t.Fatalf("after the reload %q, want READY=1", s)
	}
	sigs <- syscall.SIGTERM
	if s := next(t, notes); s != "STOPPING=1" {
		t.Fatalf("after SIGTERM %q, want STOPPING=1", s)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
