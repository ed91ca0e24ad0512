//go:build linux

package e2e

// The harness: find or build ietd, write configs, start/stop/kill the
// daemon on a free loopback port, and read its resource usage from /proc.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	writeRunReport(code)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// repoRoot is the module root (two levels up from this package).
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// ietdBinary returns $IETD_BIN_DIR/ietd, or builds cmd/ietd once.
// With IETD_BIN_DIR set (make test, CI) a missing binary is a failure,
// not a skip: CI must never pass by testing nothing.
func ietdBinary(t testing.TB) string {
	t.Helper()
	if os.Getenv("IETD_E2E_STANDIN") == "1" {
		return standinBinary
	}
	return commandBinary(t, "ietd")
}

// ietadmBinary returns $IETD_BIN_DIR/ietadm, or builds cmd/ietadm once.
func ietadmBinary(t testing.TB) string {
	t.Helper()
	return commandBinary(t, "ietadm")
}

var builds sync.Map // command name -> *builtCommand

type builtCommand struct {
	once sync.Once
	path string
	err  error
}

func commandBinary(t testing.TB, name string) string {
	t.Helper()
	if d := os.Getenv("IETD_BIN_DIR"); d != "" {
		p := filepath.Join(d, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			t.Fatalf("IETD_BIN_DIR=%s is set but %s is not an executable (%v): run `make build`", d, p, err)
		}
		return p
	}
	v, _ := builds.LoadOrStore(name, &builtCommand{})
	b := v.(*builtCommand)
	b.once.Do(func() {
		buildOnce.Do(func() { buildDir, buildErr = os.MkdirTemp("", "ietd-e2e-bin") })
		if buildErr != nil {
			b.err = buildErr
			return
		}
		// 0755 so that commands run as another user (uid 65534) can be
		// executed from it.
		os.Chmod(buildDir, 0o755)
		b.path = filepath.Join(buildDir, name)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.path, "./cmd/"+name)
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/%s: %w\n%s", name, err, out)
		}
	})
	if b.err != nil {
		t.Skipf("%s not available (IETD_BIN_DIR unset and the build failed): %v", name, b.err)
	}
	return b.path
}

// realDaemonOnly skips a test that needs what only cmd/ietd has (ietadm,
// --check, the NetBSD dialect, the full SCSI layer, sd_notify) when the
// suite runs against the stand-in daemon.
func realDaemonOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("IETD_E2E_STANDIN") == "1" {
		t.Skip("needs cmd/ietd (ietadm, --check, NetBSD configs, the SCSI layer), not the stand-in daemon")
	}
}

// standinBinary names the stand-in daemon (standin_test.go).
const standinBinary = "<standin>"

// lockedBuffer collects the daemon's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 8<<20 { // bound what we keep
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// daemon is one running ietd.
type daemon struct {
	t      testing.TB
	bin    string
	dir    string
	conf   string
	port   int
	addr   string
	extra  []string
	sock   string // admin socket path
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuffer
	logs   []string // stderr of earlier incarnations
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDaemon writes conf into a new directory and starts ietd on it.
// extraArgs are appended to the command line.
func startDaemon(t testing.TB, dir, conf string, extraArgs ...string) *daemon {
	t.Helper()
	d := newDaemon(t, dir, conf, extraArgs...)
	d.start()
	return d
}

// newDaemon prepares a daemon (config written, port chosen, stopped in
// t.Cleanup) without starting it, so that fields (sock) can be changed.
func newDaemon(t testing.TB, dir, conf string, extraArgs ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, bin: ietdBinary(t), dir: dir, extra: extraArgs, sock: filepath.Join(dir, "ietadm.sock")}
	d.conf = filepath.Join(dir, "ietd.conf")
	if err := os.WriteFile(d.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	d.port = freePort(t)
	d.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.port))
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			d.dumpLog()
		}
	})
	return d
}

// allLogs is the daemon's output over every incarnation so far.
func (d *daemon) allLogs() string {
	if d.stderr == nil {
		return strings.Join(d.logs, "\n")
	}
	return strings.Join(append(slices.Clone(d.logs), d.stderr.String()), "\n")
}

// waitLog waits up to within for a log line containing want.
func (d *daemon) waitLog(want string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if strings.Contains(d.allLogs(), want) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// admResult is one ietadm run.
type admResult struct {
	stdout, stderr string
	code           int
}

// adm runs ietadm against the daemon's admin socket (as the test's user)
// with a 20s bound.
func (d *daemon) adm(args ...string) admResult {
	d.t.Helper()
	return runIetadm(d.t, nil, append([]string{"--socket", d.sock}, args...)...)
}

// runIetadm runs bin/ietadm with args; cred, when set, runs it as another
// user (SysProcAttr).
func runIetadm(t testing.TB, attr *syscall.SysProcAttr, args ...string) admResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ietadmBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = attr
	cmd.Dir = "/"
	err := cmd.Run()
	r := admResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("ietadm %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("ietadm %v did not finish within 20s", args)
	}
	return r
}

func (d *daemon) dumpLog() {
	all := strings.Join(append(d.logs, d.stderr.String()), "\n--- restart ---\n")
	lines := strings.Split(all, "\n")
	if len(lines) > 300 {
		lines = append([]string{fmt.Sprintf("... %d lines cut ...", len(lines)-300)}, lines[len(lines)-300:]...)
	}
	d.t.Logf("ietd stderr (%s):\n%s", d.dir, strings.Join(lines, "\n"))
}

func (d *daemon) start() {
	d.t.Helper()
	args := []string{"-f", "-c", d.conf, "-a", "127.0.0.1", "-p", strconv.Itoa(d.port),
		"--pid-file", filepath.Join(d.dir, "ietd.pid"),
		"--admin-socket", d.sock}
	if d.bin != standinBinary {
		// Keep the real daemon away from system paths (/etc/iet,
		// /var/lib/ietd, /run/iet).
		args = append(args, "--state-dir", filepath.Join(d.dir, "state"), "--proc-dir", filepath.Join(d.dir, "proc"))
		if !slices.Contains(d.extra, "--acl-dir") {
			args = append(args, "--acl-dir", d.dir)
		}
	}
	args = append(args, d.extra...)
	if d.stderr != nil {
		d.logs = append(d.logs, d.stderr.String())
	}
	d.stderr = &lockedBuffer{}
	if d.bin == standinBinary {
		exe, err := os.Executable()
		if err != nil {
			d.t.Fatal(err)
		}
		d.cmd = exec.Command(exe, args...)
		d.cmd.Env = append(os.Environ(), standinEnv+"=1")
	} else {
		d.cmd = exec.Command(d.bin, args...)
	}
	d.cmd.Stderr = d.stderr
	d.cmd.Stdout = d.stderr
	d.cmd.Dir = d.dir
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start ietd: %v", err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(d.cmd, d.done)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			d.t.Fatalf("ietd exited during start-up (%v):\n%s", d.cmd.ProcessState, d.stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", d.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("ietd did not accept on %s within 15s:\n%s", d.addr, d.stderr.String())
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// alive reports whether the process is still running.
func (d *daemon) alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// requireAlive fails the test when the daemon died and shows why.
func (d *daemon) requireAlive(t testing.TB, after string) {
	t.Helper()
	if !d.alive() {
		t.Fatalf("ietd died after %s (%v)", after, d.cmd.ProcessState)
	}
}

// stop sends SIGTERM, waits up to 10s, then SIGKILL. Only our own pid.
func (d *daemon) stop() {
	if d.cmd == nil || !d.alive() {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return
	case <-time.After(10 * time.Second):
		d.t.Errorf("ietd (pid %d) ignored SIGTERM for 10s; killing it", d.pid())
	}
	d.cmd.Process.Kill()
	<-d.done
}

// kill9 kills the daemon with SIGKILL and waits for it.
func (d *daemon) kill9() {
	d.cmd.Process.Kill()
	<-d.done
}

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) error { return d.cmd.Process.Signal(sig) }

// fdCount is the number of open descriptors of the daemon.
func (d *daemon) fdCount() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.pid()))
	if err != nil {
		return -1
	}
	return len(ents)
}

// procStatus returns a numeric field of /proc/PID/status (VmRSS in kB,
// Threads, ...).
func (d *daemon) procStatus(field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid()))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.Atoi(f[0])
				return n
			}
		}
	}
	return -1
}

// waitFDs waits until the daemon's descriptor count is at most want.
func (d *daemon) waitFDs(want int, within time.Duration) (int, bool) {
	deadline := time.Now().Add(within)
	n := d.fdCount()
	for time.Now().Before(deadline) {
		n = d.fdCount()
		if n <= want {
			return n, true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n, false
}

// ---- configs -----------------------------------------------------------------

// lunSpec is one Lun line; a file of size bytes is created at path when it
// does not exist.
type lunSpec struct {
	n      int
	path   string
	size   int64
	iomode string // "" = default
	params string // extra ",k=v"
	typ    string // "" = fileio
}

type targetSpec struct {
	name  string
	luns  []lunSpec
	lines []string // other stanza lines (IncomingUser, MaxSessions, ...)
}

// renderConf writes the backing files and returns ietd.conf text.
func renderConf(t testing.TB, global []string, targets ...targetSpec) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# generated by target/e2e\n")
	for _, g := range global {
		b.WriteString(g + "\n")
	}
	for _, tg := range targets {
		fmt.Fprintf(&b, "Target %s\n", tg.name)
		for _, l := range tg.luns {
			if _, err := os.Stat(l.path); errors.Is(err, os.ErrNotExist) {
				f, err := os.Create(l.path)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(l.size); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
			fmt.Fprintf(&b, "\tLun %d Path=%s,Type=%s", l.n, l.path, orDefault(l.typ, "fileio"))
			if l.iomode != "" {
				fmt.Fprintf(&b, ",IOMode=%s", l.iomode)
			}
			b.WriteString(l.params + "\n")
		}
		for _, line := range tg.lines {
			b.WriteString("\t" + line + "\n")
		}
	}
	return b.String()
}

// simpleTarget is a target with one file LUN of size bytes.
func simpleTarget(dir, name string, size int64, lines ...string) targetSpec {
	return targetSpec{name: name, luns: []lunSpec{{n: 0, path: filepath.Join(dir, sanitize(name)+".img"), size: size}}, lines: lines}
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ':' || r == '/' {
			return '_'
		}
		return r
	}, s)
}

// session dials and logs in to target (normal session) or discovery ("").
func session(addr, target string) (*clientConn, error) {
	c, err := dial(addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	if err := c.login(loginOpts{target: target}); err != nil {
		c.close()
		return nil, fmt.Errorf("login to %q: %w", target, err)
	}
	return c, nil
}

func mustSession(t testing.TB, addr, target string) *clientConn {
	t.Helper()
	c, err := session(addr, target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	return c
}
