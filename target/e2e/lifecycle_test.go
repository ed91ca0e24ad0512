//go:build linux

package e2e

import (
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadAndStopTellInitiators: under a systemd-style NOTIFY_SOCKET the
// daemon says READY, RELOADING/READY around a SIGHUP and STOPPING on
// SIGTERM; a reload that grows a LUN and adds one gives the logged-in
// initiator CAPACITY DATA HAS CHANGED and REPORTED LUNS DATA HAS CHANGED
// without dropping its session; SIGTERM asks it to log out (async
// message) and the daemon exits once it did.
func TestReloadAndStopTellInitiators(t *testing.T) {
	realDaemonOnly(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	notes := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := ln.ReadFromUnix(buf)
			if err != nil {
				close(notes)
				return
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				if line != "" {
					notes <- line
				}
			}
		}
	}()
	expectNote := func(want string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case n, ok := <-notes:
				if !ok {
					t.Fatalf("notify socket closed before %s", want)
				}
				if n == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %s on NOTIFY_SOCKET within 10s", want)
			}
		}
	}

	const iqn = "iqn.2026-01.org.ietgo.e2e:lifecycle"
	base := simpleTarget(dir, iqn, 4<<20)
	d := startDaemon(t, dir, renderConf(t, nil, base))
	expectNote("READY=1")

	c := mustSession(t, d.addr, iqn)
	tur := make([]byte, 6)
	for range 3 { // the power-on unit attention
		if r, err := c.command(0, tur, nil, 0); err != nil {
			t.Fatal(err)
		} else if r.ok() {
			break
		}
	}

	// Grow LUN 0 and add LUN 1, then reload.
	if err := os.Truncate(base.luns[0].path, 8<<20); err != nil {
		t.Fatal(err)
	}
	base.luns = append(base.luns, lunSpec{n: 1, path: filepath.Join(dir, "lun1.img"), size: 1 << 20})
	if err := os.WriteFile(d.conf, []byte(renderConf(t, nil, base)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectNote("RELOADING=1")
	expectNote("READY=1")

	seen := map[[2]byte]bool{}
	for range 4 {
		r, err := c.command(0, tur, nil, 0)
		if err != nil {
			t.Fatalf("session dropped by the reload: %v", err)
		}
		if r.ok() {
			break
		}
		if r.hasSense && r.sense.key == 0x6 {
			seen[[2]byte{r.sense.asc, r.sense.ascq}] = true
		}
	}
	if !seen[[2]byte{0x2a, 0x09}] || !seen[[2]byte{0x3f, 0x0e}] {
		t.Errorf("unit attentions after the reload: %v; want 2a/09 CAPACITY DATA HAS CHANGED and 3f/0e REPORTED LUNS DATA HAS CHANGED", seen)
	}
	if blocks, bs, err := c.capacity(0); err != nil || blocks*uint64(bs) != 8<<20 {
		t.Errorf("LUN 0 capacity after growing: %d blocks of %d (%v); want 8 MiB", blocks, bs, err)
	}
	rl := make([]byte, 12)
	rl[0] = 0xa0
	binary.BigEndian.PutUint32(rl[6:], 4096)
	if r, err := c.command(0, rl, nil, 4096); err != nil || !r.ok() || len(r.data) < 8 || binary.BigEndian.Uint32(r.data) != 16 {
		t.Errorf("REPORT LUNS after adding LUN 1: %v %v; want 2 LUNs", r, err)
	}

	// SIGTERM: an async logout request, then the daemon exits once the
	// initiator logged out.
	if err := d.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	expectNote("STOPPING=1")
	asked := false
	for range 100 {
		p, err := c.recvAny()
		if err != nil {
			break
		}
		if p.h.opcode() == opAsyncMsg && p.h[36] == 1 {
			asked = true
			break
		}
	}
	if !asked {
		t.Fatal("no Async Message 'logout requested' after SIGTERM")
	}
	c.logout()
	select {
	case <-d.done:
	case <-time.After(8 * time.Second):
		t.Fatal("ietd still running 8s after SIGTERM and the initiator's logout")
	}
}

// TestSessionListingFollowsLoginAndLogout: the session listing is
// rewritten when a session begins and when it ends, as IET's
// /proc/net/iet/session is live (Pacemaker and Cinder read it right
// after iscsiadm returns), not on the next tick of a 2 s timer.
func TestSessionListingFollowsLoginAndLogout(t *testing.T) {
	realDaemonOnly(t)
	dir := t.TempDir()
	name := "iqn.2026-01.org.ietgo:listing"
	d := startDaemon(t, dir, renderConf(t, nil, simpleTarget(dir, name, 1<<20)))
	listing := filepath.Join(dir, "proc", "session")
	// waitFor polls the listing for 1.5 s at most: less than the
	// backstop timer's 2 s period (the daemon started just now: its first
	// tick is 2 s away), far more than writing a small file takes, even
	// on a loaded machine or under -race.
	waitFor := func(present bool) time.Duration {
		t.Helper()
		start := time.Now()
		for i := 0; i < 300; i++ {
			b, _ := os.ReadFile(listing)
			if strings.Contains(string(b), testInitiator) == present {
				return time.Since(start)
			}
			time.Sleep(5 * time.Millisecond)
		}
		b, _ := os.ReadFile(listing)
		t.Fatalf("after %v the session listing still %s the initiator:\n%s", time.Since(start),
			map[bool]string{true: "lacks", false: "shows"}[present], b)
		return 0
	}
	waitFor(false)
	c := mustSession(t, d.addr, name)
	in := waitFor(true)
	if err := c.logout(); err != nil {
		t.Fatal(err)
	}
	c.close()
	out := waitFor(false)
	t.Logf("listing followed the login in %v and the logout in %v", in, out)
}
