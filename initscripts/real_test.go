package initscripts

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// realDaemon is what the real-binary tests need to know besides the
// service: where it listens and how to ask it for its volume listing.
type realDaemon struct {
	port    int
	ietadm  string // "" when not built
	socket  string
	addName string        // a target name that appears after addTarget + reload
	add     func()        // append a target to the configuration
	corrupt func() func() // break the configuration; returns the repair
}

func dialable(port int) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func volumes(t *testing.T, d realDaemon) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, d.ietadm, "--socket", d.socket, "--op", "show", "--volumes").CombinedOutput()
	if err != nil {
		t.Logf("ietadm --op show --volumes: %v: %s", err, out)
	}
	return string(out)
}

// realLifecycle drives a script with the real daemon: start (listening,
// pid file), status, reload picking up a new target, a refused bad
// reload, stop (process gone, pid file removed, port closed).
func realLifecycle(t *testing.T, s service, d realDaemon) {
	t.Helper()
	pidfile := s.pidfile
	t.Cleanup(func() {
		if pid := readPID(pidfile); pid > 1 && alive(pid) {
			t.Logf("stopping leftover daemon %d", pid)
			_ = syscallKill(pid)
		}
	})
	if r := s.run(t, "start"); r.code != 0 {
		if strings.Contains(r.out, "not implemented") {
			t.Skipf("the daemon cannot serve this configuration yet: %s", r.out)
		}
		t.Fatalf("start with the real daemon failed (%d): %s", r.code, r.out)
	}
	pid := readPID(s.pidfile)
	if pid <= 1 || !alive(pid) {
		t.Fatalf("pid file holds %d, not a live daemon", pid)
	}
	if !waitFor(5*time.Second, func() bool { return dialable(d.port) }) {
		t.Fatalf("daemon %d is not listening on 127.0.0.1:%d after start returned", pid, d.port)
	}
	if s.hasStatus {
		if r := s.run(t, "status"); r.code != 0 || !strings.Contains(r.out, strconv.Itoa(pid)) {
			t.Fatalf("status = %d %q", r.code, r.out)
		}
	}

	d.add()
	if r := s.run(t, s.reloadAction); r.code != 0 {
		t.Fatalf("%s failed (%d): %s", s.reloadAction, r.code, r.out)
	}
	if d.ietadm != "" && d.addName != "" {
		if !waitFor(10*time.Second, func() bool { return strings.Contains(volumes(t, d), d.addName) }) {
			t.Fatalf("target %s not served after %s:\n%s", d.addName, s.reloadAction, volumes(t, d))
		}
	}
	if s.checksReload {
		repair := d.corrupt()
		if r := s.run(t, s.reloadAction); r.code == 0 {
			t.Fatalf("%s accepted a broken configuration: %s", s.reloadAction, r.out)
		}
		repair()
	}
	if !alive(pid) || readPID(s.pidfile) != pid || !dialable(d.port) {
		t.Fatalf("daemon %d did not survive the reloads", pid)
	}

	if r := s.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop failed (%d): %s", r.code, r.out)
	}
	if !waitFor(10*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("daemon %d alive after stop", pid)
	}
	if _, err := os.Stat(s.pidfile); !os.IsNotExist(err) {
		t.Fatalf("pid file left behind by the real daemon (err=%v)", err)
	}
	if dialable(d.port) {
		t.Fatalf("port %d still open after stop", d.port)
	}
	if s.hasStatus {
		if r := s.run(t, "status"); r.code != s.statusStopped {
			t.Fatalf("status after stop = %d, want %d", r.code, s.statusStopped)
		}
	}
}

func sparseFile(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// ietdSetup writes an ietd.conf with one target and returns the daemon
// description and the options string for the scripts.
func ietdSetup(t *testing.T, dir string) (conf, options string, d realDaemon) {
	t.Helper()
	img := filepath.Join(dir, "disk0.img")
	sparseFile(t, img, 4<<20)
	conf = filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target iqn.2001-04.com.example:init.disk0\n\tLun 0 Path="+img+",Type=fileio\n")
	acl := filepath.Join(dir, "acl")
	stateDir := filepath.Join(dir, "state-real")
	procDir := filepath.Join(dir, "proc")
	for _, p := range []string{acl, stateDir, procDir} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d.port = freePort(t)
	d.socket = filepath.Join(dir, "ietd.sock")
	if p := filepath.Join(os.Getenv("IETD_BIN_DIR"), "ietadm"); fileExecutable(p) {
		d.ietadm = p
	}
	d.addName = "iqn.2001-04.com.example:init.disk1"
	d.add = func() {
		data, _ := os.ReadFile(conf)
		writeFile(t, conf, string(data)+"Target "+d.addName+"\n\tLun 0 Type=nullio,Blocks=2048\n")
	}
	d.corrupt = func() func() {
		data, _ := os.ReadFile(conf)
		writeFile(t, conf, string(data)+"Target iqn.2001-04.com.example:init.bad\n\tLun 0 Path="+filepath.Join(dir, "no-such-dir", "x")+",Type=blockio,Bogus=1\n\tMaxSessions notanumber\n")
		return func() { writeFile(t, conf, string(data)) }
	}
	options = "-a 127.0.0.1 -p " + strconv.Itoa(d.port) + " --acl-dir " + acl + " --state-dir " + stateDir + " --proc-dir " + procDir
	return conf, options, d
}

func fileExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func TestRealIetdRedHatScript(t *testing.T) {
	ietd := realBin(t, "ietd")
	bash := needTool(t, "bash")
	dir := t.TempDir()
	conf, options, d := ietdSetup(t, dir)
	s := service{
		shell: bash, script: "redhat/iscsi-target", pidfile: filepath.Join(dir, "ietd.pid"), config: conf,
		statusStopped: 3, checksReload: true, hasStatus: true, reloadAction: "reload",
	}
	s.env = []string{"DAEMON=" + ietd, "PIDFILE=" + s.pidfile, "ADMIN_SOCKET=" + d.socket, "CONFIG=" + conf,
		"SYSCONFIG_DIR=" + filepath.Join(dir, "none"), "LOCKFILE=" + filepath.Join(dir, "subsys"), "OPTIONS=" + options, "STOP_TIMEOUT=15"}
	realLifecycle(t, s, d)
	realPidFileAndFailures(t, s, d)
}

// TestRealIetdNoTargets runs the Red Hat script against the real ietd with
// a configuration without targets, which needs nothing from the storage
// and SCSI layers: start, status, reload, a refused reload, stop.
func TestRealIetdNoTargets(t *testing.T) {
	ietd := realBin(t, "ietd")
	bash := needTool(t, "bash")
	dir := t.TempDir()
	_, options, d := ietdSetup(t, dir)
	conf := filepath.Join(dir, "empty.conf")
	writeFile(t, conf, "# no targets yet\nIncomingUser discovery secretsecret12\n")
	d.addName = ""
	d.add = func() {
		data, _ := os.ReadFile(conf)
		writeFile(t, conf, string(data)+"# reloaded\n")
	}
	d.corrupt = func() func() {
		data, _ := os.ReadFile(conf)
		writeFile(t, conf, string(data)+"Target iqn.2001-04.com.example:bad\n\tMaxSessions notanumber\n\tLun 0 Type=nullio,Path=/x\n")
		return func() { writeFile(t, conf, string(data)) }
	}
	s := service{
		shell: bash, script: "redhat/iscsi-target", pidfile: filepath.Join(dir, "ietd.pid"), config: conf,
		statusStopped: 3, checksReload: true, hasStatus: true, reloadAction: "reload",
	}
	s.env = []string{"DAEMON=" + ietd, "PIDFILE=" + s.pidfile, "ADMIN_SOCKET=" + d.socket, "CONFIG=" + conf,
		"SYSCONFIG_DIR=" + filepath.Join(dir, "none"), "LOCKFILE=" + filepath.Join(dir, "subsys"), "OPTIONS=" + options, "STOP_TIMEOUT=15"}
	realLifecycle(t, s, d)
}

// realPidFileAndFailures runs a script with the real ietd over a pid file
// that names a live process which is not ietd (a stale pid reused): start
// must start ietd (which takes the pid file over) and stop must stop ietd
// and nothing else. Then a start that cannot succeed (the port is taken)
// must fail, show ietd's reason and leave nothing running.
func realPidFileAndFailures(t *testing.T, s service, d realDaemon) {
	t.Helper()
	t.Cleanup(func() {
		if pid := readPID(s.pidfile); pid > 1 && alive(pid) {
			_ = syscallKill(pid)
		}
	})
	other := foreignProcess(t)
	writeFile(t, s.pidfile, strconv.Itoa(other)+"\n")
	if r := s.run(t, "start"); r.code != 0 || strings.Contains(r.out, "already running") {
		t.Fatalf("start over another process's pid = %d %q", r.code, r.out)
	}
	pid := readPID(s.pidfile)
	if pid == other || !alive(pid) || !waitFor(5*time.Second, func() bool { return dialable(d.port) }) {
		t.Fatalf("ietd not running after start (pid file %d, other %d)", pid, other)
	}
	if r := s.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop = %d %q", r.code, r.out)
	}
	if !waitFor(10*time.Second, func() bool { return !alive(pid) }) || !alive(other) {
		t.Fatalf("after stop: ietd %d alive=%v, the other process %d alive=%v", pid, alive(pid), other, alive(other))
	}

	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(d.port))
	if err != nil {
		t.Skipf("cannot occupy port %d: %v", d.port, err)
	}
	defer l.Close()
	r := s.run(t, "start")
	if r.code == 0 || !strings.Contains(r.out, "address already in use") {
		t.Fatalf("start on a taken port = %d %q, want a failure naming the reason", r.code, r.out)
	}
	if pid := readPID(s.pidfile); pid > 1 && alive(pid) {
		t.Fatalf("a failed start left ietd %d running", pid)
	}
	if s.hasStatus {
		if r := s.run(t, "status"); r.code != s.statusStopped {
			t.Fatalf("status after a failed start = %d, want %d", r.code, s.statusStopped)
		}
	}
}

func TestRealIetdDebianScript(t *testing.T) {
	ietd := realBin(t, "ietd")
	bash := needTool(t, "bash")
	dir := t.TempDir()
	conf, options, d := ietdSetup(t, dir)
	defaults := filepath.Join(dir, "default")
	if err := os.MkdirAll(defaults, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(defaults, "iscsitarget"), "ISCSITARGET_ENABLE=true\nISCSITARGET_OPTIONS=\""+options+"\"\nISCSITARGET_MAX_SLEEP=15\n")
	s := service{
		shell: bash, script: "debian/iscsitarget", pidfile: filepath.Join(dir, "ietd.pid"), config: conf,
		statusStopped: 3, checksReload: true, hasStatus: true, reloadAction: "reload",
	}
	s.env = []string{"DAEMON=" + ietd, "PIDFILE=" + s.pidfile, "ADMIN_SOCKET=" + d.socket, "CONFIG=" + conf,
		"DEFAULT_DIR=" + defaults, "LSB_FUNCTIONS=/nonexistent"}
	realLifecycle(t, s, d)
	realPidFileAndFailures(t, s, d)
}

func TestRealIscsiTargetRcScript(t *testing.T) {
	bin := realBin(t, "iscsi-target")
	sh := needTool(t, "sh")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	disk0 := filepath.Join(dir, "iscsi-target0")
	writeFile(t, targets, "extent0 "+disk0+" 0 1MB\ntarget0 rw extent0 0/0\n")
	subr, err := filepath.Abs("testdata/rc.subr")
	if err != nil {
		t.Fatal(err)
	}
	d := realDaemon{port: freePort(t), socket: filepath.Join(dir, "it.sock"), addName: "iqn.1994-04.org.netbsd.iscsi-target:target1"}
	if p := filepath.Join(os.Getenv("IETD_BIN_DIR"), "ietadm"); fileExecutable(p) {
		d.ietadm = p
	}
	d.add = func() {
		data, _ := os.ReadFile(targets)
		writeFile(t, targets, string(data)+"extent1 "+filepath.Join(dir, "iscsi-target1")+" 0 1MB\ntarget1 rw extent1 127.0.0.0/8\n")
	}
	d.corrupt = func() func() {
		data, _ := os.ReadFile(targets)
		writeFile(t, targets, string(data)+"target9 rw no-such-extent 0/0\n")
		return func() { writeFile(t, targets, string(data)) }
	}
	rcconf := filepath.Join(dir, "rc.conf")
	writeFile(t, rcconf, "iscsi_target=YES\niscsi_target_flags=\"--address 127.0.0.1 -p "+strconv.Itoa(d.port)+" --state-dir "+filepath.Join(dir, "st")+"\"\n")
	s := service{
		shell: sh, script: "netbsd/iscsi_target", pidfile: filepath.Join(dir, "iscsi-target.pid"), config: targets,
		statusStopped: 1, checksReload: true, hasStatus: true, reloadAction: "reload",
	}
	s.env = []string{"DAEMON=" + bin, "PIDFILE=" + s.pidfile, "CONFIG=" + targets, "ADMIN_SOCKET=" + d.socket,
		"RC_SUBR=" + subr, "RC_CONF=" + rcconf}
	realLifecycle(t, s, d)
	st, err := os.Stat(disk0)
	if err != nil || st.Size() != 1<<20 {
		t.Fatalf("backing file %s: %v size %d, want created with 1 MiB", disk0, err, sizeOf(st))
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return -1
	}
	return st.Size()
}

func TestRealIetdSolarisMethod(t *testing.T) {
	ietd := realBin(t, "ietd")
	sh := needTool(t, "sh")
	dir := t.TempDir()
	conf, options, d := ietdSetup(t, dir)
	s := service{
		shell: sh, script: "solaris/svc-iscsi-target", pidfile: filepath.Join(dir, "ietd.pid"), config: conf,
		checksReload: true, reloadAction: "refresh",
	}
	s.env = []string{"DAEMON=" + ietd, "PIDFILE=" + s.pidfile, "ADMIN_SOCKET=" + d.socket, "CONFIG=" + conf,
		"OPTIONS=" + options, "SMF_INCLUDE=/nonexistent", "STOP_TIMEOUT=15"}
	realLifecycle(t, s, d)
}
