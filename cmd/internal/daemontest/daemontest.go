// Package daemontest starts the built daemons ($IETD_BIN_DIR) on loopback
// ports for the command tests and runs libiscsi's command-line initiators
// against them. Every process it starts is stopped by pid in t.Cleanup.
package daemontest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bin returns the path of a built command, skipping the test when the
// binaries were not built (run through `make test`).
func Bin(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("IETD_BIN_DIR")
	if dir == "" {
		t.Skip("IETD_BIN_DIR not set (run `make test` or `make build` and set IETD_BIN_DIR=$PWD/bin)")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not built: %v", p, err)
	}
	return p
}

// Tool returns the path of an external tool or skips.
func Tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install libiscsi-bin / qemu-utils)", name)
	}
	return p
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a daemon started in the foreground.
type Proc struct {
	t      *testing.T
	Cmd    *exec.Cmd
	Port   int
	Stderr *syncBuf
	done   chan struct{}
	err    error
}

// Start runs bin with args (which must make it listen on 127.0.0.1:port)
// and waits until the port accepts connections.
func Start(t *testing.T, port int, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Port: port, Stderr: &syncBuf{}, done: make(chan struct{})}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stderr = p.Stderr
	p.Cmd.Stdout = p.Stderr
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.Cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Signal(syscall.SIGTERM)
		if !p.WaitExit(15 * time.Second) {
			p.Cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), p.Stderr.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%s exited during start-up (%v):\n%s", filepath.Base(bin), p.err, p.Stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not listening on %d:\n%s", filepath.Base(bin), port, p.Stderr.String())
	return nil
}

// Signal sends sig to the daemon.
func (p *Proc) Signal(sig os.Signal) {
	select {
	case <-p.done:
	default:
		p.Cmd.Process.Signal(sig)
	}
}

// WaitExit waits for the daemon to exit.
func (p *Proc) WaitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// ExitErr is the daemon's exit error once it exited.
func (p *Proc) ExitErr() error { return p.err }

// Run runs a command with a timeout and returns its combined output and
// exit status (-1 when it could not run or timed out).
func Run(t *testing.T, timeout time.Duration, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ctx.Err() == nil {
			return string(out), ee.ExitCode()
		}
		return string(out) + "\n" + err.Error(), -1
	}
	return string(out), 0
}

// Eventually retries f until it returns "" or the timeout passes; it fails
// the test with the last message.
func Eventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	msg := ""
	for time.Now().Before(deadline) {
		if msg = f(); msg == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(msg)
}

// Portal is the iscsi:// URL of a loopback port.
func Portal(port int) string { return fmt.Sprintf("iscsi://127.0.0.1:%d", port) }

// Contains reports a failure message unless out contains every want.
func Contains(out string, want ...string) string {
	for _, w := range want {
		if !strings.Contains(out, w) {
			return fmt.Sprintf("output lacks %q:\n%s", w, out)
		}
	}
	return ""
}

// Detached returns the process whose pid a detached daemon wrote to
// pidFile; the test's cleanup kills it (SIGKILL) should it still run.
// KillFromPIDFile registers, before a detached start, a clean-up that
// kills the process named in pidFile if there is one then, so that a test
// failing before Detached (a bad exit status, no pid file) leaves no
// daemon running.
func KillFromPIDFile(t *testing.T, pidFile string) {
	t.Cleanup(func() {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

func Detached(t *testing.T, pidFile string) *os.Process {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %q", b)
	}
	p, _ := os.FindProcess(pid)
	t.Cleanup(func() { p.Signal(syscall.SIGKILL) })
	return p
}

// CHAPLogin runs iscsi-inq (inq) on LUN 0 of target iqn at the loopback
// port as CHAP user and secret; its exit status (0 = logged in).
func CHAPLogin(t *testing.T, inq string, port int, iqn, user, secret string) int {
	t.Helper()
	_, code := Run(t, 20*time.Second, inq, fmt.Sprintf("iscsi://%s%%%s@127.0.0.1:%d/%s/0", user, secret, port, iqn))
	return code
}
