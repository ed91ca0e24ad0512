package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dt "github.com/ietgo/ietd/cmd/internal/daemontest"
)

const iqnA = "iqn.2001-04.com.example:cmd-a"
const iqnB = "iqn.2001-04.com.example:cmd-b"

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// daemonArgs keeps the daemon on loopback and inside dir.
// oneLUN makes a work directory with an 8 MiB sparse a.img, an ietd.conf
// exporting it as LUN 0 of iqnA, and a free port.
func oneLUN(t *testing.T) (dir, conf string, port int) {
	t.Helper()
	dir = t.TempDir()
	sparse(t, filepath.Join(dir, "a.img"), 8<<20)
	conf = filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+filepath.Join(dir, "a.img")+",Type=fileio\n")
	return dir, conf, dt.FreePort(t)
}

func daemonArgs(dir, conf string, port int) []string {
	return []string{"-c", conf, "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"--pid-file", filepath.Join(dir, "ietd.pid"), "--admin-socket", filepath.Join(dir, "ietadm.sock"),
		"--acl-dir", dir, "--state-dir", filepath.Join(dir, "state"), "--proc-dir", filepath.Join(dir, "proc")}
}

func TestCheckReportsEveryErrorWithPositions(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	writeFile(t, good, "Target "+iqnA+"\n\tLun 0 Path="+filepath.Join(dir, "a.img")+",Type=fileio\n")
	out, code := dt.Run(t, 20*time.Second, ietd, "--check", "-c", good)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("good config: exit %d\n%s", code, out)
	}
	// The user's config from the issue: no Target line. IET ignored the
	// Lun and Alias lines silently and started: positioned warnings, and
	// the file passes (a reload takes it too).
	user := filepath.Join(dir, "user.conf")
	writeFile(t, user, "#IncomingUser nwsmith secretsecret\nLun 0 /dev/sdb fileio\nAlias iscsitest01\n")
	out, code = dt.Run(t, 20*time.Second, ietd, "--check", "-c", user)
	if code != 0 || !strings.Contains(out, user+":2:1: warning: Lun 0 outside a Target section") || !strings.Contains(out, user+":3:1: warning: Alias outside") {
		t.Fatalf("user config: exit %d, want 0 with warnings for lines 2 and 3:\n%s", code, out)
	}
	bad := filepath.Join(dir, "bad.conf")
	writeFile(t, bad, "#IncomingUser nwsmith secretsecret\nLun 0 /dev/sdb fileio\nAlias iscsitest01\nTarget "+iqnA+"\n\tLun 1 Path=/x,Colour=red\n\tMaxBurstLength lots\n")
	out, code = dt.Run(t, 20*time.Second, ietd, "--check", "-c", bad)
	if code != 1 {
		t.Fatalf("bad config: exit %d, want 1\n%s", code, out)
	}
	for _, at := range []string{":2:1: warning:", ":3:1: warning:", ":5:16: error:", ":6:17: error:"} {
		if !strings.Contains(out, bad+at) {
			t.Fatalf("want %s%s:\n%s", bad, at, out)
		}
	}
}

func TestDaemonLifecycleAdminAndReload(t *testing.T) {
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	dir := t.TempDir()
	sparse(t, filepath.Join(dir, "a.img"), 64<<20)
	sparse(t, filepath.Join(dir, "b.img"), 32<<20)
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+filepath.Join(dir, "a.img")+",Type=fileio\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	sock := filepath.Join(dir, "ietadm.sock")
	adm := func(args ...string) (string, int) {
		return dt.Run(t, 20*time.Second, ietadm, append([]string{"--socket", sock}, args...)...)
	}

	// The pid file names the daemon and a second instance refuses.
	b, err := os.ReadFile(filepath.Join(dir, "ietd.pid"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(d.Cmd.Process.Pid) {
		t.Fatalf("pid file %q (%v), daemon pid %d", b, err, d.Cmd.Process.Pid)
	}
	// It re-executed itself (same pid) with the runtime setting.
	if g, ok := procGodebug(t, d.Cmd.Process.Pid); ok && g != "GODEBUG=schedtrace=2147483647" {
		t.Fatalf("daemon environment has %q, want GODEBUG=schedtrace=2147483647", g)
	}
	out, code := dt.Run(t, 20*time.Second, ietd, append([]string{"-f"}, daemonArgs(dir, conf, dt.FreePort(t))...)...)
	if code == 0 || !strings.Contains(out, "already running") {
		t.Fatalf("second ietd: exit %d\n%s", code, out)
	}

	out, code = dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if code != 0 || !strings.Contains(out, iqnA) {
		t.Fatalf("iscsi-ls: exit %d\n%s", code, out)
	}

	// Runtime target + LUN through ietadm, as Pacemaker's agents do.
	if out, code := adm("--op", "new", "--tid=0", "--params", "Name="+iqnB); code != 0 {
		t.Fatalf("new target: %d %s", code, out)
	}
	if out, code := adm("--op", "new", "--tid=2", "--lun=0", "--params", "Path="+filepath.Join(dir, "b.img")+",Type=fileio,ScsiSN=SN-B"); code != 0 {
		t.Fatalf("new lun: %d %s", code, out)
	}
	if _, code := adm("--op", "new", "--tid=2", "--lun=0", "--params", "Path="+filepath.Join(dir, "b.img")); code != 239 {
		t.Fatalf("existing LUN: exit %d, want 239 (EEXIST)", code)
	}
	out, _ = adm("--op", "show", "--volumes")
	if msg := dt.Contains(out, "tid:2 name:"+iqnB, "\tlun:0 state:0 iotype:fileio iomode:wt blocks:65536 blocksize:512 path:"+filepath.Join(dir, "b.img")); msg != "" {
		t.Fatal(msg)
	}
	dt.Eventually(t, 10*time.Second, func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "proc", "volume"))
		return dt.Contains(string(b), "tid:2 name:"+iqnB, "path:"+filepath.Join(dir, "b.img"))
	})
	out, code = dt.Run(t, 20*time.Second, iscsiLs, "-s", dt.Portal(port))
	if code != 0 || !strings.Contains(out, iqnB) {
		t.Fatalf("iscsi-ls after ietadm: exit %d\n%s", code, out)
	}
	out, code = adm("--op", "show", "--tid=1")
	if code != 0 || !strings.HasPrefix(out, "Wthreads=8\nType=0\nQueuedCommands=") {
		t.Fatalf("show tid: %d\n%s", code, out)
	}
	if _, code := adm("--op", "show", "--tid=9"); code != 254 {
		t.Fatalf("unknown tid: exit %d, want 254", code)
	}

	// SIGHUP: a new target from the file appears, the ietadm target stays,
	// a broken file keeps the running config.
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+filepath.Join(dir, "a.img")+",Type=fileio\n"+
		"Target iqn.2001-04.com.example:cmd-c\n\tLun 0 Type=nullio,Blocks=2048\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		out, _ := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
		return dt.Contains(out, iqnA, iqnB, "cmd-c")
	})
	writeFile(t, conf, "Target "+iqnA+"\n\tLun zero Path=/nonexistent\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "reload failed")
	})
	out, _ = dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if msg := dt.Contains(out, iqnA, iqnB, "cmd-c"); msg != "" {
		t.Fatal("bad reload changed the running config: " + msg)
	}

	// SIGTERM: clean exit, pid file and socket removed.
	d.Signal(syscall.SIGTERM)
	if !d.WaitExit(15 * time.Second) {
		t.Fatal("ietd did not stop on SIGTERM")
	}
	if d.ExitErr() != nil {
		t.Fatalf("exit: %v", d.ExitErr())
	}
	for _, f := range []string{"ietd.pid", "ietadm.sock"} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", f, err)
		}
	}
}

// procGodebug returns the GODEBUG entry of a process's environment ("" if
// none); ok is false where /proc is not there to read it.
func procGodebug(t *testing.T, pid int) (string, bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	g := ""
	for _, kv := range strings.Split(string(b), "\x00") {
		if strings.HasPrefix(kv, "GODEBUG=") {
			g = kv
		}
	}
	return g, true
}

// TestDaemonKeepsAUsersSchedtrace: a GODEBUG that sets schedtrace is the
// user's choice (here the runtime's default back): no re-execution, and
// the debug log says which it is.
func TestDaemonKeepsAUsersSchedtrace(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir, conf, port := oneLUN(t)
	t.Setenv("GODEBUG", "gctrace=0,schedtrace=0")
	d := dt.Start(t, port, ietd, append([]string{"-f", "-d", "2"}, daemonArgs(dir, conf, port)...)...)
	if g, ok := procGodebug(t, d.Cmd.Process.Pid); ok && g != "GODEBUG=gctrace=0,schedtrace=0" {
		t.Fatalf("daemon environment has %q, want the user's GODEBUG", g)
	}
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "sysmon deep sleep on (GODEBUG schedtrace=0)")
	})
}

// On a host where the runtime's default is two Ps the daemon tunes
// GOMAXPROCS (target/procs): it says so at debug level, goes to two Ps
// under 1 MiB reads and back to one when idle; a GOMAXPROCS in its
// environment turns the tuner off.
func TestDaemonTunesProcs(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) != 2 {
		t.Skip("the tuner runs only where the runtime's default is two Ps")
	}
	img := dt.Tool(t, "qemu-img")
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	// Written, not sparse: qemu does not read blocks that GET LBA STATUS
	// reports deallocated (a thin LUN whose unmapped blocks read zeros),
	// so reads of a sparse file would move no data.
	writeFile(t, filepath.Join(dir, "a.img"), strings.Repeat("\xab", 64<<20))
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+filepath.Join(dir, "a.img")+",Type=fileio,IOMode=wb\n"+
		"\tMaxRecvDataSegmentLength 262144\n\tMaxBurstLength 1048576\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f", "-d", "2"}, daemonArgs(dir, conf, port)...)...)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "procs: GOMAXPROCS tuned between 1 and 2")
	})
	opts := fmt.Sprintf("driver=iscsi,transport=tcp,portal=127.0.0.1:%d,target=%s,lun=0", port, iqnA)
	// 1 MiB reads at queue depth 8, a few seconds' worth at most.
	for i := 0; i < 5 && !strings.Contains(d.Stderr.String(), "procs: GOMAXPROCS 1 -> 2"); i++ {
		if out, code := dt.Run(t, 60*time.Second, img, "bench", "-c", "3000", "-d", "8", "-s", "1M", "-t", "none",
			"--image-opts", opts); code != 0 {
			t.Fatalf("qemu-img bench: exit %d\n%s", code, out)
		}
	}
	if err := dt.Contains(d.Stderr.String(), "procs: GOMAXPROCS 1 -> 2"); err != "" {
		t.Fatalf("no move to two Ps under 1 MiB reads: %s", err)
	}
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "procs: GOMAXPROCS 2 -> 1")
	})

	d.Signal(syscall.SIGTERM)
	if !d.WaitExit(15 * time.Second) {
		t.Fatal("daemon did not exit on SIGTERM")
	}

	t.Setenv("GOMAXPROCS", "2")
	dir2 := t.TempDir()
	port2 := dt.FreePort(t)
	d2 := dt.Start(t, port2, ietd, append([]string{"-f", "-d", "2"}, daemonArgs(dir2, conf, port2)...)...)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d2.Stderr.String(), "sysmon kept out of deep sleep")
	})
	if strings.Contains(d2.Stderr.String(), "procs:") {
		t.Fatalf("GOMAXPROCS=2 set, the daemon tuned it anyway:\n%s", d2.Stderr.String())
	}
}

func TestDetachWaitsForReadiness(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir, conf, port := oneLUN(t)
	dt.KillFromPIDFile(t, filepath.Join(dir, "ietd.pid"))
	out, code := dt.Run(t, 40*time.Second, ietd, daemonArgs(dir, conf, port)...)
	if code != 0 {
		t.Fatalf("detached start: exit %d\n%s", code, out)
	}
	p := dt.Detached(t, filepath.Join(dir, "ietd.pid"))
	if err := p.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("daemon %d not running: %v", p.Pid, err)
	}
	if g, ok := procGodebug(t, p.Pid); ok && g != "GODEBUG=schedtrace=2147483647" {
		t.Fatalf("detached daemon's environment has %q, want GODEBUG=schedtrace=2147483647", g)
	}
	p.Signal(syscall.SIGTERM)
	dt.Eventually(t, 15*time.Second, func() string {
		if _, err := os.Stat(filepath.Join(dir, "ietd.pid")); err == nil {
			return "pid file still present after SIGTERM"
		}
		return ""
	})

	// A start-up failure is reported by the parent with a non-zero exit:
	// the portal's port is taken. (A missing backing file is not one: as
	// in IET, that LUN is left out and the rest served.)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	out, code = dt.Run(t, 40*time.Second, ietd, daemonArgs(dir, conf, busyPort)...)
	if code == 0 {
		t.Fatalf("start on a port in use succeeded:\n%s", out)
	}
	if !strings.Contains(out, strconv.Itoa(busyPort)) {
		t.Fatalf("error does not name the address:\n%s", out)
	}
}

// TestDetachedRelativePaths: the detached daemon runs in /, yet relative
// command-line paths name the files a foreground start would use (the
// directory ietd was started in). Before, the child did not find -c
// ietd.conf and the parent said only "daemon exited during start-up".
func TestDetachedRelativePaths(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	dir, _, port := oneLUN(t)
	dt.KillFromPIDFile(t, filepath.Join(dir, "ietd.pid"))
	cmd := exec.Command(ietd, "-c", "ietd.conf", "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"--pid-file", "ietd.pid", "--admin-socket", "ietadm.sock", "--acl-dir", ".",
		"--state-dir", "state", "--proc-dir", "proc")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("detached start from %s with relative paths: %v\n%s", dir, err, out)
	}
	p := dt.Detached(t, filepath.Join(dir, "ietd.pid"))
	for _, f := range []string{"ietadm.sock", "state/lock", "proc/volume"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not in the start directory: %v", f, err)
		}
	}
	if out, code := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port)); code != 0 || !strings.Contains(out, iqnA) {
		t.Fatalf("iscsi-ls: exit %d\n%s", code, out)
	}
	p.Signal(syscall.SIGTERM)
	dt.Eventually(t, 15*time.Second, func() string {
		for _, f := range []string{"ietd.pid", "ietadm.sock"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return f + " still present after SIGTERM"
			}
		}
		return ""
	})
}

// TestDetachedStartPrintsDiagnostics: started without -f (foreground),
// the parent prints every start-up error and warning on its stderr before
// it returns, since the child's stderr is /dev/null and there may be no
// syslog; the broken LUN is left out and the rest served.
func TestDetachedStartPrintsDiagnostics(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	sparse(t, filepath.Join(dir, "a.img"), 8<<20)
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+filepath.Join(dir, "a.img")+",Type=fileio\n"+
		"\tLun 1 Path="+filepath.Join(dir, "b.img")+",Type=nonsense\n\tNoSuchKey 1\n")
	port := dt.FreePort(t)
	dt.KillFromPIDFile(t, filepath.Join(dir, "ietd.pid"))
	out, code := dt.Run(t, 40*time.Second, ietd, daemonArgs(dir, conf, port)...)
	if code != 0 {
		t.Fatalf("detached start: exit %d\n%s", code, out)
	}
	p := dt.Detached(t, filepath.Join(dir, "ietd.pid"))
	defer func() {
		p.Signal(syscall.SIGTERM)
		dt.Eventually(t, 15*time.Second, func() string {
			if _, err := os.Stat(filepath.Join(dir, "ietd.pid")); err == nil {
				return "pid file still present after SIGTERM"
			}
			return ""
		})
	}()
	if msg := dt.Contains(out, conf+":3:", ": error: ", conf+":4:", ": warning: "); msg != "" {
		t.Fatal(msg)
	}
}

// TestStartLeavesOutBrokenItems: at start a config error drops only the
// broken item (IET and NetBSD served the rest); a SIGHUP reload with
// errors is refused as a whole and the running config kept.
func TestStartLeavesOutBrokenItems(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	broken := "Target " + iqnA + "\n\tLun 0 Type=nullio,Blocks=2048\n" +
		"Target " + iqnB + "\n\tLun 0 Type=nullio,Blocks=4096\n\tLun 1 Path=/nonexistent,Colour=blue\n\tLun 2 Type=nullio,Blocks=8192\n" +
		// a duplicate stanza: left out, and its account does not become a
		// discovery account (discovery stays open)
		"Target " + strings.ToUpper(iqnA) + "\n\tIncomingUser dup secretsecret12\n\tLun 0 Type=nullio\n" +
		// an IncomingUser without secret: the target is left out rather
		// than served without CHAP
		"Target iqn.2001-04.com.example:cmd-open\n\tIncomingUser jim\n\tLun 0 Type=nullio\n"
	writeFile(t, conf, broken)

	out, code := dt.Run(t, 20*time.Second, ietd, "--check", "-c", conf, "--acl-dir", dir)
	if code != 1 || !strings.Contains(out, conf+": 4 error(s): a start serves the rest (iet, 2 target(s), 3 LUN(s))") {
		t.Fatalf("--check: exit %d\n%s", code, out)
	}

	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	for _, want := range []string{
		`level=error msg="` + conf + `:5:2: error: Lun 1 of target ` + iqnB + ` is left out (the errors on its line)"`,
		`level=error msg="` + conf + `:5:26: error: Lun 1: unknown parameter \"Colour\" (IET refuses the LUN)"`,
		`level=error msg="` + conf + `:7:8: error: duplicated target`,
		`level=error msg="` + conf + `:10:1: error: target iqn.2001-04.com.example:cmd-open is left out: its IncomingUser line at ` + conf + `:11:2 has errors`,
	} {
		if !strings.Contains(d.Stderr.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, d.Stderr.String())
		}
	}
	out, code = dt.Run(t, 20*time.Second, iscsiLs, "-s", dt.Portal(port))
	if code != 0 {
		t.Fatalf("iscsi-ls: exit %d\n%s", code, out)
	}
	if msg := dt.Contains(out, "Target:"+iqnA+" ", "Target:"+iqnB+" ", "Lun:0", "Lun:2"); msg != "" {
		t.Fatal(msg)
	}
	if strings.Contains(out, "Lun:1") || strings.Contains(out, "cmd-open") {
		t.Fatalf("a broken item is served:\n%s", out)
	}

	// SIGHUP with a file that still has an error: refused, nothing changes.
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio,Blocks=2048\n\tLun 1 Type=nullio,Blocks=2048\n"+
		"Target iqn.2001-04.com.example:cmd-c\n\tLun 0 Type=nullio,Blocks=2048,Colour=red\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "reload failed; keeping the running configuration")
	})
	out, _ = dt.Run(t, 20*time.Second, iscsiLs, "-s", dt.Portal(port))
	if !strings.Contains(out, iqnB) || strings.Contains(out, "cmd-c") || strings.Count(out, "Lun:") != 3 {
		t.Fatalf("a refused reload changed the running config:\n%s", out)
	}
	// A clean file is applied. Wait for the listing to show it before
	// asking iscsi-ls: an iscsi-ls that logged in to B just before the
	// reload removed B would see its session closed and, as libiscsi
	// does, keep reconnecting to a target that is gone (1 s, 2 s, 3 s,
	// ... apart) past any time limit.
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio,Blocks=2048\n\tLun 1 Type=nullio,Blocks=2048\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "proc", "volume"))
		if strings.Contains(string(b), iqnB) || !strings.Contains(string(b), "lun:1 ") {
			return "reload not applied:\n" + string(b)
		}
		return ""
	})
	out, code = dt.Run(t, 20*time.Second, iscsiLs, "-s", dt.Portal(port))
	if code != 0 || strings.Contains(out, iqnB) || strings.Count(out, "Lun:") != 2 {
		t.Fatalf("after the reload: exit %d\n%s", code, out)
	}
}

// TestGetoptStyleOptions: IET's getopt accepts "-d1", "-fd 1" and
// "-c/path", as init scripts and OPTIONS lines write them.
func TestGetoptStyleOptions(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio,Blocks=2048\n")
	out, code := dt.Run(t, 20*time.Second, ietd, "-d1", "--check", "-c"+conf)
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("-d1 --check -c<file>: exit %d\n%s", code, out)
	}
	port := dt.FreePort(t)
	args := daemonArgs(dir, conf, port)[2:] // without "-c conf"
	d := dt.Start(t, port, ietd, append([]string{"-fd", "1", "-c" + conf}, args...)...)
	// -d 1 took effect: informational messages are logged.
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "level=info", "serving 1 target(s)")
	})
	out, code = dt.Run(t, 20*time.Second, ietd, "-fx")
	if code == 0 || !strings.Contains(out, "-fx") {
		t.Fatalf("-fx: exit %d\n%s", code, out)
	}
}

// noConfigArgs runs ietd without -c (the "configure through ietadm" mode
// Pacemaker uses); the test skips when this host has an ietd.conf.
func noConfigArgs(t *testing.T, dir string, port int) []string {
	t.Helper()
	for _, p := range []string{"/etc/iet/ietd.conf", "/etc/ietd.conf"} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists: ietd would read it", p)
		}
	}
	return daemonArgs(dir, "", port)[2:]
}

// TestACLWithoutConfigFile: with no ietd.conf, targets come from ietadm
// and initiators.allow still decides who may log in.
func TestACLWithoutConfigFile(t *testing.T) {
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	iscsiLs, iscsiInq := dt.Tool(t, "iscsi-ls"), dt.Tool(t, "iscsi-inq")
	dir := t.TempDir()
	// No rule for iqnA: with initiators.allow present it is denied to
	// everyone (IET's implicit deny).
	writeFile(t, filepath.Join(dir, "initiators.allow"), iqnB+" 127.0.0.1\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f", "-d", "1"}, noConfigArgs(t, dir, port)...)...)
	sock := filepath.Join(dir, "ietadm.sock")
	for _, args := range [][]string{
		{"--op", "new", "--tid=0", "--params", "Name=" + iqnA},
		{"--op", "new", "--tid=1", "--lun=0", "--params", "Type=nullio,Blocks=2048"},
	} {
		if out, code := dt.Run(t, 20*time.Second, ietadm, append([]string{"--socket", sock}, args...)...); code != 0 {
			t.Fatalf("ietadm %v: exit %d %s", args, code, out)
		}
	}
	out, code := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if code != 0 || strings.Contains(out, iqnA) {
		t.Fatalf("discovery lists a target initiators.allow denies: exit %d\n%s", code, out)
	}
	out, code = dt.Run(t, 20*time.Second, iscsiInq, dt.Portal(port)+"/"+iqnA+"/0")
	if code == 0 {
		t.Fatalf("login allowed although initiators.allow denies it:\n%s\n%s", out, d.Stderr.String())
	}
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "login denied", "implicit deny")
	})

	// Pacemaker's iSCSITarget appends a line and expects the next login
	// to see it: no reload.
	f, err := os.OpenFile(filepath.Join(dir, "initiators.allow"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(iqnA + " 127.0.0.1\n")
	f.Close()
	out, code = dt.Run(t, 20*time.Second, iscsiInq, dt.Portal(port)+"/"+iqnA+"/0")
	if code != 0 {
		t.Fatalf("login after the allow line was appended: exit %d\n%s\n%s", code, out, d.Stderr.String())
	}
	out, code = dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if code != 0 || !strings.Contains(out, iqnA) {
		t.Fatalf("discovery after the allow line was appended: exit %d\n%s", code, out)
	}
}

// TestACLFilesReadPerLogin: IET re-read the access-control files on every
// login and SendTargets; a broken edit is reported and the rules in force
// before stay.
func TestACLFilesReadPerLogin(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	iscsiLs, iscsiInq := dt.Tool(t, "iscsi-ls"), dt.Tool(t, "iscsi-inq")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio,Blocks=2048\nTarget "+iqnB+"\n\tLun 0 Type=nullio,Blocks=2048\n")
	allow := filepath.Join(dir, "initiators.allow")
	writeFile(t, allow, "ALL 127.0.0.1\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	login := func(iqn string) int {
		_, code := dt.Run(t, 20*time.Second, iscsiInq, dt.Portal(port)+"/"+iqn+"/0")
		return code
	}
	if login(iqnA) != 0 || login(iqnB) != 0 {
		t.Fatal("login refused with ALL 127.0.0.1")
	}
	// Refuse B from now on.
	writeFile(t, allow, iqnA+" 127.0.0.1\n"+iqnB+" 192.0.2.1\n")
	if login(iqnB) == 0 {
		t.Fatal("login to B allowed after initiators.allow stopped allowing it")
	}
	if login(iqnA) != 0 {
		t.Fatal("login to A refused")
	}
	out, _ := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if !strings.Contains(out, iqnA) || strings.Contains(out, iqnB) {
		t.Fatalf("discovery does not follow the edited file:\n%s", out)
	}
	// A broken edit applies as IET reads it (the item in error matches no
	// one), with one error naming the file and line.
	writeFile(t, allow, iqnA+" 127.0.0.1\nALL 127.0.0.1/99\n")
	for i := 0; i < 2; i++ {
		if login(iqnB) == 0 {
			t.Fatal("a broken initiators.allow let in what its item in error names")
		}
	}
	if login(iqnA) != 0 {
		t.Fatal("a broken initiators.allow refused what its good line allows")
	}
	logs := d.Stderr.String()
	if n := strings.Count(logs, "access-control file has errors"); n != 1 {
		t.Fatalf("error logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, allow+":2:") {
		t.Fatalf("error lacks file:line:\n%s", logs)
	}
	os.Remove(allow)
	if login(iqnB) != 0 {
		t.Fatal("login refused after initiators.allow was removed")
	}
}

// TestChangesAreAllOrNothing: an ietadm LUN whose file cannot be opened is
// refused with IET's errno and changes nothing; a SIGHUP reload that names
// a missing file for a running target keeps the running config entirely.
func TestChangesAreAllOrNothing(t *testing.T) {
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	readcap := dt.Tool(t, "iscsi-readcapacity16")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	sparse(t, a, 64<<20)
	sparse(t, b, 32<<20)
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+a+",Type=fileio\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	sock := filepath.Join(dir, "ietadm.sock")
	adm := func(args ...string) (string, int) {
		return dt.Run(t, 20*time.Second, ietadm, append([]string{"--socket", sock}, args...)...)
	}
	volumes := func() string { out, _ := adm("--op", "show", "--volumes"); return out }
	before := volumes()

	out, code := adm("--op", "new", "--tid=1", "--lun=1", "--params", "Path=/nonexistent,Type=fileio")
	if code != 254 || !strings.Contains(out, "No such file or directory.") || !strings.Contains(out, "/nonexistent") {
		t.Fatalf("LUN on a missing file: exit %d, want 254 (ENOENT)\n%s", code, out)
	}
	if after := volumes(); after != before {
		t.Fatalf("refused LUN changed the listing:\n%s\nwas\n%s", after, before)
	}
	// The next change does not trip over a half-added LUN.
	if out, code := adm("--op", "new", "--tid=1", "--lun=1", "--params", "Path="+b+",Type=fileio"); code != 0 {
		t.Fatalf("valid LUN: exit %d %s", code, out)
	}
	if strings.Contains(d.Stderr.String(), "reconfigure failed") {
		t.Fatalf("engine saw the refused LUN:\n%s", d.Stderr.String())
	}
	if out, code := adm("--op", "delete", "--tid=1", "--lun=1"); code != 0 {
		t.Fatalf("delete LUN: exit %d %s", code, out)
	}
	before = volumes()

	// Reload: LUN 0 now names a missing file, and a new target appears.
	missing := filepath.Join(dir, "missing.img")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+missing+",Type=fileio\n"+
		"Target "+iqnB+"\n\tLun 0 Type=nullio,Blocks=2048\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "level=error", "reload failed", conf+":2:", "missing.img")
	})
	if after := volumes(); after != before {
		t.Fatalf("failed reload changed the listing:\n%s\nwas\n%s", after, before)
	}
	// Initiators still get a.img (64 MiB: last LBA 131071).
	out, code = dt.Run(t, 20*time.Second, readcap, dt.Portal(port)+"/"+iqnA+"/0")
	if code != 0 || !strings.Contains(out, "131071") {
		t.Fatalf("LUN 0 after the failed reload: exit %d\n%s", code, out)
	}

	// The same reload with an existing file applies.
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+b+",Type=fileio\n"+
		"Target "+iqnB+"\n\tLun 0 Type=nullio,Blocks=2048\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(volumes(), "name:"+iqnB, "path:"+b)
	})
}

// TestSignalRightAfterReadiness: init scripts may signal the daemon as
// soon as the parent returns; SIGHUP must reload (not kill it) and
// SIGTERM must stop it in order (pid file removed), even at that moment.
func TestSignalRightAfterReadiness(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio,Blocks=2048\n")
	pidFile := filepath.Join(dir, "ietd.pid")
	for i := 0; i < 10; i++ {
		port := dt.FreePort(t)
		if out, code := dt.Run(t, 40*time.Second, ietd, daemonArgs(dir, conf, port)...); code != 0 {
			t.Fatalf("start: exit %d\n%s", code, out)
		}
		b, _ := os.ReadFile(pidFile)
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("pid file %q", b)
		}
		p, _ := os.FindProcess(pid)
		p.Signal(syscall.SIGHUP)
		time.Sleep(100 * time.Millisecond)
		// (A zombie answers signal 0: ask the listener instead.)
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 2*time.Second)
		if err != nil {
			p.Signal(syscall.SIGKILL)
			t.Fatalf("round %d: SIGHUP right after start killed the daemon: %v", i, err)
		}
		c.Close()
		p.Signal(syscall.SIGTERM)
		dt.Eventually(t, 15*time.Second, func() string {
			if _, err := os.Stat(pidFile); err == nil {
				return "pid file left behind after SIGTERM"
			}
			return ""
		})
	}
}

// TestTIDsAreNeverReused: neither ietadm nor a reload gives a new target
// the tid of a target that existed before (IET's kernel counter).
func TestTIDsAreNeverReused(t *testing.T) {
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	iqnC := "iqn.2001-04.com.example:cmd-c"
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio\nTarget "+iqnB+"\n\tLun 0 Type=nullio\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	sock := filepath.Join(dir, "ietadm.sock")
	adm := func(args ...string) string {
		out, code := dt.Run(t, 20*time.Second, ietadm, append([]string{"--socket", sock}, args...)...)
		if code != 0 {
			t.Fatalf("ietadm %v: exit %d %s", args, code, out)
		}
		return out
	}
	// The file drops B (tid 2) and adds C: C must not get tid 2.
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio\nTarget "+iqnC+"\n\tLun 0 Type=nullio\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(adm("--op", "show", "--volumes"), "tid:3 name:"+iqnC, "tid:1 name:"+iqnA)
	})
	// ietadm: tid 4 created and deleted; --tid=0 gives 5, not 4.
	adm("--op", "new", "--tid=4", "--params", "Name=iqn.2001-04.com.example:four")
	adm("--op", "delete", "--tid=4")
	adm("--op", "new", "--tid=0", "--params", "Name=iqn.2001-04.com.example:five")
	if out := adm("--op", "show", "--volumes"); !strings.Contains(out, "tid:5 name:iqn.2001-04.com.example:five") {
		t.Fatalf("--tid=0 after deleting tid 4:\n%s", out)
	}
	// And B, back in the file, gets a new tid too.
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio\nTarget "+iqnB+"\n\tLun 0 Type=nullio\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(adm("--op", "show", "--volumes"), "tid:6 name:"+iqnB, "tid:5 name:iqn.2001-04.com.example:five")
	})
}

// runAs runs a command as uid:gid (the test runs as root).
func runAs(t *testing.T, uid, gid int, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee) && ctx.Err() == nil:
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s as %d: %v\n%s", name, uid, err, out)
	return "", -1
}

// TestAdminSocketPeerCredentials: only root and the daemon's own user
// (after -u/-g) may use ietadm; others get IET's EPERM (exit 255).
func TestAdminSocketPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (switches users)")
	}
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	const nobody, other = 65534, 65533
	dir := t.TempDir()
	// Let the other users reach the socket and run the binaries.
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{ietadm, filepath.Dir(ietadm)} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s not usable by other users", p)
		}
	}
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio\n")
	if err := os.Chmod(conf, 0o644); err != nil {
		t.Fatal(err)
	}
	volumes := []string{"--op", "show", "--volumes"}

	// ietd as root: the socket is root's, mode 0600.
	rootDir := filepath.Join(dir, "root")
	os.Mkdir(rootDir, 0o755)
	port := dt.FreePort(t)
	dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(rootDir, conf, port)...)...)
	sock := filepath.Join(rootDir, "ietadm.sock")
	if out, code := dt.Run(t, 20*time.Second, ietadm, append([]string{"--socket", sock}, volumes...)...); code != 0 {
		t.Fatalf("root: exit %d %s", code, out)
	}
	out, code := runAs(t, nobody, nobody, ietadm, append([]string{"--socket", sock}, volumes...)...)
	if code != 255 || !strings.Contains(out, "Operation not permitted.") {
		t.Fatalf("nobody on a 0600 root socket: exit %d, want 255 (EPERM)\n%s", code, out)
	}
	// Past the file mode, SO_PEERCRED still refuses.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	out, code = runAs(t, nobody, nobody, ietadm, append([]string{"--socket", sock}, volumes...)...)
	if code != 255 || !strings.Contains(out, "Operation not permitted.") || strings.Contains(out, "tid:1") {
		t.Fatalf("nobody on an open socket: exit %d, want 255 and no answer\n%s", code, out)
	}

	// ietd -u/-g nobody: the socket is nobody's; nobody may use it.
	userDir := filepath.Join(dir, "user")
	os.Mkdir(userDir, 0o755)
	port = dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f", "-u", strconv.Itoa(nobody), "-g", strconv.Itoa(nobody)}, daemonArgs(userDir, conf, port)...)...)
	sock = filepath.Join(userDir, "ietadm.sock")
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody || st.Gid != nobody || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %d:%d %v, want %d:%d 0600", st.Uid, st.Gid, fi.Mode().Perm(), nobody, nobody)
	}
	out, code = runAs(t, nobody, nobody, ietadm, append([]string{"--socket", sock}, volumes...)...)
	if code != 0 || !strings.Contains(out, "tid:1 name:"+iqnA) {
		t.Fatalf("the daemon's user: exit %d\n%s", code, out)
	}
	if out, code := runAs(t, other, other, ietadm, append([]string{"--socket", sock}, volumes...)...); code != 255 {
		t.Fatalf("another user: exit %d, want 255\n%s", code, out)
	}
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if out, code := runAs(t, other, other, ietadm, append([]string{"--socket", sock}, volumes...)...); code != 255 || strings.Contains(out, "tid:1") {
		t.Fatalf("another user on an open socket: exit %d, want 255\n%s", code, out)
	}
	// The daemon logs the refusal after closing the connection: the
	// client may be back first.
	dt.Eventually(t, 5*time.Second, func() string {
		if !strings.Contains(d.Stderr.String(), "ietadm connection refused") {
			return "refusal not logged:\n" + d.Stderr.String()
		}
		return ""
	})
	// The state and listing directories were made for the daemon's user.
	if _, err := os.Stat(filepath.Join(userDir, "proc", "volume")); err != nil {
		dt.Eventually(t, 10*time.Second, func() string {
			if _, err := os.Stat(filepath.Join(userDir, "proc", "volume")); err != nil {
				return "volume listing not written under -u: " + err.Error()
			}
			return ""
		})
	}
	if strings.Contains(d.Stderr.String(), "state directory unavailable") {
		t.Fatalf("state directory not usable under -u:\n%s", d.Stderr.String())
	}
}

// TestJournalPriorities: when stderr is the journal (JOURNAL_STREAM names
// it), every log line carries its syslog priority.
func TestJournalPriorities(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	// An unknown keyword (a warning) and a missing backing file (an error:
	// the LUN is left out).
	writeFile(t, conf, "Target "+iqnA+"\n\tNoSuchKeyword 1\n\tLun 0 Path="+filepath.Join(dir, "missing.img")+",Type=fileio\n")
	stream, err := os.Create(filepath.Join(dir, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	fi, _ := stream.Stat()
	st := fi.Sys().(*syscall.Stat_t)
	run := func(journalStream string) string {
		stream.Truncate(0)
		stream.Seek(0, 0)
		cmd := exec.Command(ietd, append([]string{"-f"}, daemonArgs(dir, conf, dt.FreePort(t))...)...)
		cmd.Env = append(os.Environ(), "JOURNAL_STREAM="+journalStream, "INVOCATION_ID=0123456789abcdef")
		cmd.Stderr = stream
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The LUN is left out with an error line and the daemon goes on
		// (as IET): stop it once that line is out.
		var b []byte
		for i := 0; i < 200 && !strings.Contains(string(b), "LUN left out"); i++ {
			time.Sleep(50 * time.Millisecond)
			b, _ = os.ReadFile(stream.Name())
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		b, _ = os.ReadFile(stream.Name())
		return string(b)
	}
	out := run(fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	var warn, errLine bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		switch {
		case strings.HasPrefix(line, "<4>level=warning"):
			warn = true
		case strings.HasPrefix(line, "<3>level=error"):
			errLine = true
		case strings.HasPrefix(line, "level="):
			t.Errorf("log line without priority: %q", line)
		}
	}
	if !warn || !errLine {
		t.Fatalf("want <4> warning and <3> error lines:\n%s", out)
	}
	// stderr is not the journal (another file): no prefixes.
	if out := run(fmt.Sprintf("%d:%d", st.Dev, st.Ino+1)); strings.Contains(out, "<3>") || !strings.Contains(out, "level=error") {
		t.Fatalf("prefixes on a stream that is not the journal:\n%s", out)
	}
}

// As IET listed only the LUNs it attached, a LUN whose backing file
// cannot be opened is not in the volume listing (Pacemaker's monitor
// matches "lun:L ... path:P" there); once a reload finds the file, it is.
func TestVolumeListingShowsServedLUNsOnly(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	good, missing := filepath.Join(dir, "good.img"), filepath.Join(dir, "missing.img")
	if err := os.WriteFile(good, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+good+",Type=fileio\n\tLun 1 Path="+missing+",Type=fileio\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	adm := func(args ...string) string {
		out, _ := dt.Run(t, 20*time.Second, dt.Bin(t, "ietadm"), append([]string{"--socket", filepath.Join(dir, "ietadm.sock")}, args...)...)
		return out
	}
	for _, listing := range []func() string{
		func() string { return adm("--op", "show", "--volumes") },
		func() string { b, _ := os.ReadFile(filepath.Join(dir, "proc", "volume")); return string(b) },
	} {
		dt.Eventually(t, 10*time.Second, func() string {
			out := listing()
			if !strings.Contains(out, "\tlun:0 state:0 iotype:fileio iomode:wt blocks:2048 blocksize:512 path:"+good) {
				return "LUN 0 not listed:\n" + out
			}
			if strings.Contains(out, "lun:1") {
				return "LUN 1, whose file is missing, is listed:\n" + out
			}
			return ""
		})
	}
	if err := os.WriteFile(missing, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "proc", "volume"))
		return dt.Contains(string(b), "\tlun:1 state:0 iotype:fileio iomode:wt blocks:4096 blocksize:512 path:"+missing)
	})
}

// ietd on a NetBSD targets file it recognised by itself (no --dialect)
// reads auths at every login, as with --dialect netbsd and as NetBSD's
// iscsi-target did.
func TestDetectedNetBSDReadsAuthsPerLogin(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	inq := dt.Tool(t, "iscsi-inq")
	dir := t.TempDir()
	conf := filepath.Join(dir, "targets")
	writeFile(t, conf, "extent0 "+filepath.Join(dir, "img")+" 0 10MB\ntarget0 rw extent0\n")
	auths := filepath.Join(dir, "auths")
	writeFile(t, auths, "alice:chap:alicesecret123\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f", "--auths", auths}, daemonArgs(dir, conf, port)...)...)
	iqn := "iqn.1994-04.org.netbsd.iscsi-target:target0"
	login := func(user, secret string) int {
		t.Helper()
		return dt.CHAPLogin(t, inq, port, iqn, user, secret)
	}
	if code := login("alice", "alicesecret123"); code != 0 {
		t.Fatalf("alice from the file at start: exit %d\n%s", code, d.Stderr.String())
	}
	if login("bob", "bobsecret12345") == 0 {
		t.Fatal("bob logged in before he was in auths")
	}
	writeFile(t, auths, "alice:chap:alicesecret123\nbob:chap:bobsecret12345\n")
	if code := login("bob", "bobsecret12345"); code != 0 {
		t.Fatalf("bob after he was added to auths (no restart): exit %d", code)
	}
	writeFile(t, auths, "bob:chap:bobsecret12345\n")
	if login("alice", "alicesecret123") == 0 {
		t.Fatal("alice logged in after she was removed from auths")
	}
}

// A target added with ietadm under a NetBSD targets file is an IET target:
// its LUNs report IET's INQUIRY identity, while the file's targets keep
// NetBSD's (before, the new target took the config's dialect).
func TestIetadmTargetUnderNetBSDHasIETIdentity(t *testing.T) {
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	inq := dt.Tool(t, "iscsi-inq")
	dir := t.TempDir()
	conf := filepath.Join(dir, "targets")
	writeFile(t, conf, "extent0 "+filepath.Join(dir, "img")+" 0 10MB\ntarget0 rw extent0 0.0.0.0/0\n")
	sparse(t, filepath.Join(dir, "b.img"), 8<<20)
	port := dt.FreePort(t)
	dt.Start(t, port, ietd, append([]string{"-f", "--auths", os.DevNull}, daemonArgs(dir, conf, port)...)...)
	sock := filepath.Join(dir, "ietadm.sock")
	adm := func(args ...string) {
		t.Helper()
		if out, code := dt.Run(t, 20*time.Second, ietadm, append([]string{"--socket", sock}, args...)...); code != 0 {
			t.Fatalf("ietadm %v: exit %d %s", args, code, out)
		}
	}
	adm("--op", "new", "--tid=0", "--params", "Name="+iqnB)
	adm("--op", "new", "--tid=2", "--lun=0", "--params", "Path="+filepath.Join(dir, "b.img")+",Type=fileio")
	vendor := func(iqn string) string {
		t.Helper()
		out, code := dt.Run(t, 20*time.Second, inq, fmt.Sprintf("iscsi://127.0.0.1:%d/%s/0", port, iqn))
		if code != 0 {
			t.Fatalf("iscsi-inq %s: exit %d\n%s", iqn, code, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "Vendor:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "Vendor:"))
			}
		}
		t.Fatalf("iscsi-inq %s: no Vendor line\n%s", iqn, out)
		return ""
	}
	if v := vendor("iqn.1994-04.org.netbsd.iscsi-target:target0"); v != "NetBSD" {
		t.Errorf("target0 from the NetBSD file: vendor %q, want NetBSD", v)
	}
	if v := vendor(iqnB); v != "IET" {
		t.Errorf("target added with ietadm: vendor %q, want IET", v)
	}
}

// TestUnservableLUNChangesNothing: a LUN that opens but cannot be served
// (a 0-byte file; a 2 KiB file with BlockSize=4096) is refused by ietadm
// with EINVAL and a reason, and changes nothing (it was accepted, never
// served, and then blocked re-adding it with EEXIST). A reload that
// brings one is refused as a whole and says why; one left out at start
// is left out of the model too (ietadm can add that LUN), and reloads
// leave it out again with a warning while the file is unchanged and
// still unservable.
func TestUnservableLUNChangesNothing(t *testing.T) {
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	dir := t.TempDir()
	good, empty, small := filepath.Join(dir, "good.img"), filepath.Join(dir, "empty.img"), filepath.Join(dir, "small.img")
	sparse(t, good, 1<<20)
	sparse(t, empty, 0)
	sparse(t, small, 2048)
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+good+",Type=fileio\n\tLun 1 Path="+empty+",Type=fileio\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	sock := filepath.Join(dir, "ietadm.sock")
	adm := func(args ...string) (string, int) {
		return dt.Run(t, 20*time.Second, ietadm, append([]string{"--socket", sock}, args...)...)
	}
	volumes := func() string { out, _ := adm("--op", "show", "--volumes"); return out }
	// The port may be open before the line is out (a slow machine, a
	// -race build): wait for it.
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "LUN left out")
	})
	before := volumes()
	if strings.Contains(before, "lun:1") {
		t.Fatalf("LUN 1 listed:\n%s", before)
	}

	created := filepath.Join(dir, "new.img")
	for _, c := range []struct{ lun, params, why string }{
		{"2", "Path=" + empty, "smaller than one 512-byte block"},
		{"3", "Path=" + small + ",BlockSize=4096", "smaller than one 4096-byte block"},
		// Refused before anything is created (the check is a probe).
		{"4", "Path=" + created + ",Size=1000,Create=Yes,BlockSize=4096", "smaller than one 4096-byte block"},
		{"5", "Path=" + small + ",Size=3000,Create=Yes,BlockSize=4096", "of 3000 bytes is smaller than one 4096-byte block"}, // not extended
	} {
		out, code := adm("--op", "new", "--tid=1", "--lun="+c.lun, "--params", c.params)
		if code != 234 || !strings.Contains(out, "Invalid argument.") || !strings.Contains(out, c.why) {
			t.Fatalf("LUN %s (%s): exit %d, want 234 and %q\n%s", c.lun, c.params, code, c.why, out)
		}
		if after := volumes(); after != before {
			t.Fatalf("refused LUN changed the listing:\n%s\nwas\n%s", after, before)
		}
		if _, err := os.Stat(created); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LUN %s (%s), refused, left %s behind (%v)", c.lun, c.params, created, err)
		}
		if fi, err := os.Stat(small); err != nil || fi.Size() != 2048 {
			t.Fatalf("LUN %s (%s), refused, changed %s: %v", c.lun, c.params, small, err)
		}
		// Nothing was kept: the same LUN number on a good file is added.
		if out, code := adm("--op", "new", "--tid=1", "--lun="+c.lun, "--params", "Path="+good); code != 0 {
			t.Fatalf("LUN %s on a good file after the refusal: exit %d\n%s", c.lun, code, out)
		}
		if out, code := adm("--op", "delete", "--tid=1", "--lun="+c.lun); code != 0 {
			t.Fatalf("delete LUN %s: exit %d\n%s", c.lun, code, out)
		}
	}
	if strings.Contains(d.Stderr.String(), "reconfigure failed") {
		t.Fatalf("the engine saw a refused LUN:\n%s", d.Stderr.String())
	}
	// LUN 1, left out at start, is not in the model: adding it works.
	if out, code := adm("--op", "new", "--tid=1", "--lun=1", "--params", "Path="+good); code != 0 {
		t.Fatalf("LUN 1 (left out at start) through ietadm: exit %d, want 0\n%s", code, out)
	}
	if out, code := adm("--op", "delete", "--tid=1", "--lun=1"); code != 0 {
		t.Fatalf("delete LUN 1: exit %d\n%s", code, out)
	}
	before = volumes()

	// Reloads: a new target's LUN that cannot be served is reported and
	// nothing changes; LUN 1, left out at start and unchanged, is left
	// out again with a warning instead of failing the reload (as a
	// restart would leave it out).
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Path="+good+",Type=fileio\n\tLun 1 Path="+empty+",Type=fileio\n"+
		"Target "+iqnB+"\n\tLun 0 Path="+small+",Type=fileio,BlockSize=4096\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), "reload failed; keeping the running configuration",
			conf+":3:2: target "+iqnA+": LUN 1: backing store of 0 bytes is smaller than one 512-byte block: still left out, as at start",
			conf+":5:2: target "+iqnB+": LUN 0: backing store of 2048 bytes is smaller than one 4096-byte block")
	})
	if after := volumes(); after != before {
		t.Fatalf("refused reload changed the listing:\n%s\nwas\n%s", after, before)
	}
	// With target B's file fixed the reload goes through; LUN 1 is still
	// left out.
	sparse(t, small, 4096)
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(volumes(), "name:"+iqnB, "\tlun:0 state:0 iotype:fileio iomode:wt blocks:1 blocksize:4096 path:"+small)
	})
	if v := volumes(); strings.Contains(v, "path:"+empty) {
		t.Fatalf("LUN 1 on the empty file listed:\n%s", v)
	}
	// Once its file has a block, the same reload serves LUN 1.
	sparse(t, empty, 4096)
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(volumes(), "\tlun:1 state:0 iotype:fileio iomode:wt blocks:8 blocksize:512 path:"+empty,
			"name:"+iqnB, "\tlun:0 state:0 iotype:fileio iomode:wt blocks:1 blocksize:4096 path:"+small)
	})
}
