package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dt "github.com/ietgo/ietd/cmd/internal/daemontest"
)

// TestSeedExtent is the NetBSD seed case: `extent0 FILE 0 100MB` and
// `target0 rw extent0` create the file sparse and serve it to anyone.
func TestSeedExtent(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	inq := dt.Tool(t, "iscsi-readcapacity16")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	dir := t.TempDir()
	img := filepath.Join(dir, "iscsi-target0")
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+img+" 0 100MB\n\ntarget0 rw extent0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auths := filepath.Join(dir, "auths") // empty: no CHAP accounts
	if err := os.WriteFile(auths, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	d := dt.Start(t, port, bin, "-D", "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
		"--auths", auths, "--pid-file", filepath.Join(dir, "iscsi-target.pid"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatalf("extent file not created: %v", err)
	}
	if fi.Size() != 100<<20 {
		t.Fatalf("extent file size %d, want %d", fi.Size(), 100<<20)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > 1<<20 {
		t.Fatalf("extent file is not sparse: %d bytes allocated", st.Blocks*512)
	}
	out, code := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	iqn := "iqn.1994-04.org.netbsd.iscsi-target:target0"
	if code != 0 || !strings.Contains(out, iqn) {
		t.Fatalf("iscsi-ls: exit %d\n%s", code, out)
	}
	out, code = dt.Run(t, 20*time.Second, inq, dt.Portal(port)+"/"+iqn+"/0")
	// 100 MB = 204800 blocks of 512 bytes: last LBA 204799.
	if code != 0 || !strings.Contains(out, "204799") {
		t.Fatalf("read capacity: exit %d\n%s", code, out)
	}
	d.Signal(syscall.SIGTERM)
	if !d.WaitExit(15 * time.Second) {
		t.Fatal("iscsi-target did not stop on SIGTERM")
	}
}

func TestVersionAndBadBlockLength(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	out, code := dt.Run(t, 10*time.Second, bin, "-V")
	if code != 0 || !strings.Contains(out, "netbsd-iscsi") {
		t.Fatalf("-V: exit %d %q", code, out)
	}
	out, code = dt.Run(t, 10*time.Second, bin, "-b", "3000", "-D", "-f", "/nonexistent")
	if code != 1 || !strings.Contains(out, "Invalid block len 3000") {
		t.Fatalf("-b 3000: exit %d %q", code, out)
	}
}

// TestBadLinesSkipped: as NetBSD, a bad target line is reported and
// skipped, and the daemon refuses to start only when no target is left.
func TestBadLinesSkipped(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	img := filepath.Join(dir, "disk0")
	if err := os.WriteFile(targets, []byte("extent0 "+img+" 0 1MB\nextent1 "+dir+"/disk1 0 1P\n"+
		"target0 rw extent0 0/0\ntarget1 rw extent1 0/0\ntarget2 rw extent0 10.0.0.0/40\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := func(port int) []string {
		return []string{"-D", "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
			"--auths", os.DevNull, "--pid-file", filepath.Join(dir, "iscsi-target.pid"),
			"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state")}
	}
	port := dt.FreePort(t)
	d := dt.Start(t, port, bin, args(port)...)
	for _, want := range []string{
		`:2:` + strconv.Itoa(len("extent1 "+dir+"/disk1 0 ")+1) + `: error: extent extent1: length \"1P\": unknown unit \"P\"`,
		`level=error msg="` + targets + `:4:1: error: target target1 is left out (the errors on its line)"`,
		`level=error msg="` + targets + `:5:1: error: target target2 is left out (the errors on its line)"`,
	} {
		if !strings.Contains(d.Stderr.String(), want) {
			t.Fatalf("log lacks %q:\n%s", want, d.Stderr.String())
		}
	}
	out, code := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if code != 0 || !strings.Contains(out, "iscsi-target:target0 ") || strings.Contains(out, "target1") || strings.Contains(out, "target2") {
		t.Fatalf("iscsi-ls: exit %d\n%s", code, out)
	}
	d.Signal(syscall.SIGTERM)
	if !d.WaitExit(15 * time.Second) {
		t.Fatal("iscsi-target did not stop on SIGTERM")
	}

	// No valid target: refused, as NetBSD ("No targets to initialise").
	if err := os.WriteFile(targets, []byte("extent1 "+dir+"/disk1 0 1P\ntarget1 rw extent1 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = dt.Run(t, 20*time.Second, bin, args(dt.FreePort(t))...)
	if code == 0 || !strings.Contains(out, "no target left to serve") {
		t.Fatalf("start without a valid target: exit %d\n%s", code, out)
	}
}

// TestClusteredOptions: NetBSD's getopt accepts "-DV", "-4D" and attached
// values ("-b4096", "-f/etc/iscsi/targets").
func TestClusteredOptions(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	out, code := dt.Run(t, 10*time.Second, bin, "-DV")
	if code != 0 || !strings.Contains(out, "netbsd-iscsi") {
		t.Fatalf("-DV: exit %d %q", code, out)
	}
	out, code = dt.Run(t, 10*time.Second, bin, "-Db3000", "-f/nonexistent")
	if code != 1 || !strings.Contains(out, "Invalid block len 3000") {
		t.Fatalf("-Db3000: exit %d %q", code, out)
	}
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(dir, "e0")+" 0 1MB\ntarget0 rw extent0 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auths"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	// -4D: IPv4 only, foreground (it must not detach: Start watches it).
	d := dt.Start(t, port, bin, "-4D", "-f"+targets, "-p"+strconv.Itoa(port), "--address", "127.0.0.1",
		"--auths", filepath.Join(dir, "auths"), "--pid-file", filepath.Join(dir, "pid"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(d.Cmd.Process.Pid) {
		t.Fatalf("pid file %q (%v): -D did not keep it in the foreground", b, err)
	}
}

// TestNetmaskIPv6: an IPv4 netmask admits no native IPv6 initiator, in
// discovery or at login; "any" admits everyone.
func TestNetmaskIPv6(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	iscsiLs, iscsiInq := dt.Tool(t, "iscsi-ls"), dt.Tool(t, "iscsi-inq")
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		l.Close()
	}
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(dir, "e0")+" 0 1MB\n"+
		"extent1 "+filepath.Join(dir, "e1")+" 0 1MB\n"+
		"target0 rw extent0 127.0.0.0/8\ntarget1 rw extent1 any\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auths"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	d := dt.Start(t, port, bin, "-D", "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1", "--address", "::1",
		"--auths", filepath.Join(dir, "auths"), "--pid-file", filepath.Join(dir, "pid"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	const base = "iqn.1994-04.org.netbsd.iscsi-target:"
	v4, v6 := dt.Portal(port), fmt.Sprintf("iscsi://[::1]:%d", port)
	out, code := dt.Run(t, 20*time.Second, iscsiLs, v4)
	if code != 0 || dt.Contains(out, base+"target0", base+"target1") != "" {
		t.Fatalf("IPv4 discovery: exit %d\n%s", code, out)
	}
	out, code = dt.Run(t, 20*time.Second, iscsiLs, v6)
	if code != 0 || !strings.Contains(out, base+"target1") || strings.Contains(out, base+"target0") {
		t.Fatalf("IPv6 discovery must list target1 only: exit %d\n%s", code, out)
	}
	for i := 0; i < 3; i++ {
		if out, code := dt.Run(t, 20*time.Second, iscsiInq, v6+"/"+base+"target0/0"); code == 0 {
			t.Fatalf("IPv6 login to a target with an IPv4 netmask succeeded:\n%s", out)
		}
	}
	// One warning per initiator and target and minute, however often it
	// retries (iscsi-target logs warnings by default).
	logs := d.Stderr.String()
	if n := strings.Count(logs, "level=warning msg=\"netmask: login refused"); n != 1 {
		t.Fatalf("%d login refusal warnings for 3 refused logins, want 1:\n%s", n, logs)
	}
	if n := strings.Count(logs, "level=warning msg=\"netmask: target left out of a discovery answer"); n != 1 {
		t.Fatalf("%d discovery warnings, want 1:\n%s", n, logs)
	}
	for _, url := range []string{v6 + "/" + base + "target1/0", v4 + "/" + base + "target0/0"} {
		if out, code := dt.Run(t, 20*time.Second, iscsiInq, url); code != 0 {
			t.Fatalf("%s: exit %d\n%s\n%s", url, code, out, d.Stderr.String())
		}
	}
}

// TestRelativePathsDetached: NetBSD's iscsi-target reads -f and opens its
// extents before daemon(3) changes to /, so `iscsi-target -f targets` with
// `extent0 disk.img 0 1MB` works from the directory holding them. The
// detached daemon runs in / and must still find them there.
func TestRelativePathsDetached(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	inq := dt.Tool(t, "iscsi-readcapacity16")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "targets"), []byte("extent0 disk.img 0 1MB\ntarget0 rw extent0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "auths"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	dt.KillFromPIDFile(t, filepath.Join(dir, "pid"))
	cmd := exec.Command(bin, "-f", "targets", "-p", strconv.Itoa(port), "--address", "127.0.0.1",
		"--auths", "auths", "--pid-file", filepath.Join(dir, "pid"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("detached start from %s: %v\n%s", dir, err, out)
	}
	p := dt.Detached(t, filepath.Join(dir, "pid"))
	fi, err := os.Stat(filepath.Join(dir, "disk.img"))
	if err != nil || fi.Size() != 1<<20 {
		t.Fatalf("extent not created in the start directory: %v", err)
	}
	if _, err := os.Stat("/disk.img"); err == nil {
		t.Errorf("/disk.img exists: the extent may have been made in / (remove it if it is not yours)")
	}
	iqn := "iqn.1994-04.org.netbsd.iscsi-target:target0"
	out2, code := dt.Run(t, 20*time.Second, inq, dt.Portal(port)+"/"+iqn+"/0")
	// 1 MB = 2048 blocks of 512 bytes: last LBA 2047.
	if code != 0 || !strings.Contains(out2, "2047") {
		t.Fatalf("read capacity: exit %d\n%s", code, out2)
	}
	p.Signal(syscall.SIGTERM)
	dt.Eventually(t, 15*time.Second, func() string {
		if p.Signal(syscall.Signal(0)) == nil {
			return "iscsi-target still running after SIGTERM"
		}
		return ""
	})
}

// NetBSD's iscsi-target opened auths on every CHAP exchange: a user added
// to the file logs in without a restart, a removed one no longer does.
func TestAuthsReadAtEachLogin(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	inq := dt.Tool(t, "iscsi-inq")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(dir, "img")+" 0 10MB\ntarget0 rw extent0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auths := filepath.Join(dir, "auths")
	if err := os.WriteFile(auths, []byte("alice:chap:alicesecret123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	d := dt.Start(t, port, bin, "-D", "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
		"--auths", auths, "--pid-file", filepath.Join(dir, "pid"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	iqn := "iqn.1994-04.org.netbsd.iscsi-target:target0"
	login := func(user, secret string) int {
		t.Helper()
		return dt.CHAPLogin(t, inq, port, iqn, user, secret)
	}
	if code := login("alice", "alicesecret123"); code != 0 {
		t.Fatalf("alice from the file at start: exit %d", code)
	}
	if code := login("bob", "bobsecret12345"); code == 0 {
		t.Fatal("bob logged in before he was in auths")
	}
	if err := os.WriteFile(auths, []byte("alice:chap:alicesecret123\nbob:chap:bobsecret12345\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := login("bob", "bobsecret12345"); code != 0 {
		t.Fatalf("bob after he was added to auths (no restart): exit %d", code)
	}
	if code := login("bob", "wrongsecret123"); code == 0 {
		t.Fatal("bob logged in with a wrong secret")
	}
	if err := os.WriteFile(auths, []byte("bob:chap:bobsecret12345\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := login("alice", "alicesecret123"); code == 0 {
		t.Fatal("alice logged in after she was removed from auths")
	}
	// A missing file: no users, so (as NetBSD, which never required
	// CHAP) the login goes on without CHAP; the daemon stays (NetBSD's
	// exited).
	if err := os.Remove(auths); err != nil {
		t.Fatal(err)
	}
	if code := login("bob", "bobsecret12345"); code != 0 {
		t.Fatalf("login with auths gone: exit %d", code)
	}
	if d.WaitExit(200 * time.Millisecond) {
		t.Fatalf("iscsi-target exited when auths went away: %v", d.ExitErr())
	}
	d.Signal(syscall.SIGTERM)
	if !d.WaitExit(15 * time.Second) {
		t.Fatal("iscsi-target did not stop on SIGTERM")
	}
}

// --check names a missing extent at its own line and says what NetBSD
// did with it (refused to start), not what IET did; it is an error (exit
// 1), as for NetBSD.
func TestCheckMissingExtent(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	missing := filepath.Join(dir, "nodir", "img")
	if err := os.WriteFile(targets, []byte("# c\nextent0 "+missing+" 0 10MB\ntarget0 ro extent0 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auths := filepath.Join(dir, "auths")
	if err := os.WriteFile(auths, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := dt.Run(t, 20*time.Second, bin, "--check", "-f", targets, "--auths", auths)
	want := targets + ":2:1: error: LUN 0 of target iqn.1994-04.org.netbsd.iscsi-target:target0: stat " + missing
	if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "(NetBSD's iscsi-target refused to start)") {
		t.Fatalf("--check output lacks %q and NetBSD's behaviour:\n%s", want, out)
	}
}

// TestDetachedStartPrintsDiagnostics: started without -D, the parent
// prints every start-up error and warning on its stderr before it returns
// (NetBSD parses before daemon(3)); the child's stderr is /dev/null and
// there may be no syslog. The daemon still serves the good target.
func TestDetachedStartPrintsDiagnostics(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(dir, "e0")+" 0 1MB\n"+
		"target0 rw extent0 0/0\ntarget1 rw extent9 0/0\ntarget2 RW extent0 any\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	dt.KillFromPIDFile(t, filepath.Join(dir, "pid"))
	out, code := dt.Run(t, 40*time.Second, bin, "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
		"-s", "500", "--auths", os.DevNull, "--pid-file", filepath.Join(dir, "pid"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	if code != 0 {
		t.Fatalf("detached start: exit %d\n%s", code, out)
	}
	p := dt.Detached(t, filepath.Join(dir, "pid"))
	defer func() {
		p.Signal(syscall.SIGTERM)
		dt.Eventually(t, 15*time.Second, func() string {
			if p.Signal(syscall.Signal(0)) == nil {
				return "iscsi-target still running after SIGTERM"
			}
			return ""
		})
	}()
	if msg := dt.Contains(out,
		targets+`:3:1: error: target target1 is left out`,
		targets+`:3:12: error: no device or extent found for "extent9"`,
		targets+`:4:9: warning: unknown flag "RW": read-write (as NetBSD)`,
		"iscsi-target: warning: -s 500 ignored (1..127); using 16\n"); msg != "" {
		t.Fatal(msg)
	}
	if n := strings.Count(out, "-s 500 ignored"); n != 1 {
		t.Fatalf("the -s warning is printed %d times:\n%s", n, out)
	}
}

// TestTargetWithoutLUNNotDiscovered: a NetBSD target whose only LUN a
// start leaves out (a missing read-only file: NetBSD refused to start) is
// not listed in discovery, since nothing can be used through it; the
// others are served. (An IET target with no LUN is still listed, as IET.)
func TestTargetWithoutLUNNotDiscovered(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(dir, "missing")+" 0 1MB\nextent1 "+filepath.Join(dir, "e1")+" 0 1MB\n"+
		"target0 ro extent0 0/0\ntarget1 rw extent1 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	d := dt.Start(t, port, bin, "-D", "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
		"--auths", os.DevNull, "--pid-file", filepath.Join(dir, "pid"),
		"--admin-socket", filepath.Join(dir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	out, code := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if code != 0 || !strings.Contains(out, "iscsi-target:target1") || strings.Contains(out, "iscsi-target:target0") {
		t.Fatalf("iscsi-ls: exit %d\n%s", code, out)
	}
	d.Signal(syscall.SIGTERM)
	if !d.WaitExit(15 * time.Second) {
		t.Fatal("iscsi-target did not stop on SIGTERM")
	}
	if msg := dt.Contains(d.Stderr.String(), "level=error", "LUN left out", "not listed in discovery"); msg != "" {
		t.Fatal(msg)
	}
}

// TestPIDFileAndAdminSocketOptional: NetBSD only printed a message when
// it could not write its pid file: a pid file or admin socket that
// cannot be created is warned and the target serves; a pid file locked
// by a running instance still refuses the start.
func TestPIDFileAndAdminSocketOptional(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(dir, "e0")+" 0 1MB\ntarget0 rw extent0 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	port := dt.FreePort(t)
	d := dt.Start(t, port, bin, "-D", "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
		"--auths", os.DevNull, "--pid-file", filepath.Join(dir, "nodir", "pid"),
		"--admin-socket", filepath.Join(notDir, "admin.sock"), "--state-dir", filepath.Join(dir, "state"))
	out, code := dt.Run(t, 20*time.Second, iscsiLs, dt.Portal(port))
	if code != 0 || !strings.Contains(out, "iscsi-target:target0") {
		t.Fatalf("iscsi-ls: exit %d\n%s", code, out)
	}
	if msg := dt.Contains(d.Stderr.String(), "level=warning", "running without a pid file", filepath.Join(dir, "nodir", "pid"),
		"running without the admin socket: ietadm cannot reach this daemon"); msg != "" {
		t.Fatal(msg)
	}

	// A running instance's pid file still refuses a second one.
	pid := filepath.Join(dir, "pid")
	port2 := dt.FreePort(t)
	d2 := dt.Start(t, port2, bin, "-D", "-f", targets, "-p", strconv.Itoa(port2), "--address", "127.0.0.1",
		"--auths", os.DevNull, "--pid-file", pid, "--admin-socket", "", "--state-dir", filepath.Join(dir, "state2"))
	port3 := dt.FreePort(t)
	out, code = dt.Run(t, 20*time.Second, bin, "-D", "-f", targets, "-p", strconv.Itoa(port3), "--address", "127.0.0.1",
		"--auths", os.DevNull, "--pid-file", pid, "--admin-socket", "", "--state-dir", filepath.Join(dir, "state3"))
	if code != 1 || !strings.Contains(out, "another instance is already running") {
		t.Fatalf("second instance: exit %d\n%s", code, out)
	}
	for _, p := range []*dt.Proc{d, d2} {
		p.Signal(syscall.SIGTERM)
		if !p.WaitExit(15 * time.Second) {
			t.Fatal("iscsi-target did not stop on SIGTERM")
		}
	}
}

// TestUnknownOptionsWarned: NetBSD's getopt complains about an unknown
// option and the program carries on (iscsi_target_flags left over from
// another tool must not stop the service): a warning each, and the
// options after them are read.
func TestUnknownOptionsWarned(t *testing.T) {
	bin := dt.Bin(t, "iscsi-target")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(dir, "e0")+" 0 1MB\ntarget0 rw extent0 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := dt.Run(t, 20*time.Second, bin, "-x", "-u", "foo", "-d", "--check", "-f", targets, "--auths", os.DevNull)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if msg := dt.Contains(out, "iscsi-target: warning: unknown option -x ignored\n",
		`iscsi-target: warning: unknown option -u ignored, and the word "foo" after it`,
		"iscsi-target: warning: unknown option -d ignored\n", targets+": ok (netbsd, 1 target(s), 1 LUN(s))"); msg != "" {
		t.Fatal(msg)
	}
	if strings.Contains(out, "USAGE") {
		t.Fatalf("usage printed:\n%s", out)
	}
}
