package initscripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// service describes how to drive one script through its life cycle.
type service struct {
	shell, script string
	env           []string
	pidfile       string
	state         string // fake daemon's record directory ("" for a real daemon)
	config        string
	statusStopped int  // exit status of "status" when stopped
	checksReload  bool // reload runs "--check" first and refuses a bad config
	hasStatus     bool
	reloadAction  string
}

func (s service) run(t *testing.T, args ...string) runResult {
	t.Helper()
	return runScript(t, s.shell, s.script, s.env, args...)
}

// lifecycle starts the service, checks status and the pid file, reloads
// (a good and, when the script validates, a bad config), stops it and
// checks that the daemon is gone with its pid file. It returns the pid
// the daemon had.
func lifecycle(t *testing.T, s service) int {
	t.Helper()
	if s.hasStatus {
		if r := s.run(t, "status"); r.code != s.statusStopped {
			t.Fatalf("status before start = %d, want %d", r.code, s.statusStopped)
		}
	}
	if r := s.run(t, "start"); r.code != 0 {
		t.Fatalf("start failed (%d): %s", r.code, r.out)
	}
	pid := readPID(s.pidfile)
	if pid <= 1 || !alive(pid) {
		t.Fatalf("after start: pid file %s holds %d, not a live process", s.pidfile, pid)
	}
	if s.hasStatus {
		r := s.run(t, "status")
		if r.code != 0 || !strings.Contains(r.out, strconv.Itoa(pid)) {
			t.Fatalf("status while running = %d %q, want 0 naming pid %d", r.code, r.out, pid)
		}
	}

	reloads := filepath.Join(s.state, "reloads")
	if r := s.run(t, s.reloadAction); r.code != 0 {
		t.Fatalf("%s failed (%d): %s", s.reloadAction, r.code, r.out)
	}
	if s.state != "" && !waitFor(5*time.Second, func() bool { return countLines(reloads) == 1 }) {
		t.Fatalf("daemon did not see SIGHUP after %s (reloads=%d)", s.reloadAction, countLines(reloads))
	}
	if s.checksReload && s.config != "" {
		good, err := os.ReadFile(s.config)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, s.config, string(good)+"\nBAD line\n")
		if r := s.run(t, s.reloadAction); r.code == 0 {
			t.Fatalf("%s with a bad config succeeded: %s", s.reloadAction, r.out)
		}
		if s.state != "" {
			time.Sleep(200 * time.Millisecond)
			if n := countLines(reloads); n != 1 {
				t.Fatalf("bad config was signalled to the daemon (reloads=%d)", n)
			}
			if !strings.Contains(lastLine(filepath.Join(s.state, "calls")), "--check") {
				t.Fatalf("reload did not run the daemon's --check")
			}
		}
		writeFile(t, s.config, string(good))
	}
	if !alive(pid) || readPID(s.pidfile) != pid {
		t.Fatalf("daemon %d died or pid file changed across reload", pid)
	}

	if r := s.run(t, "stop"); r.code != 0 {
		t.Fatalf("stop failed (%d): %s", r.code, r.out)
	}
	if !waitFor(5*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("daemon %d still alive after stop", pid)
	}
	if _, err := os.Stat(s.pidfile); !os.IsNotExist(err) {
		t.Fatalf("pid file %s left after stop (err=%v)", s.pidfile, err)
	}
	if s.hasStatus {
		if r := s.run(t, "status"); r.code != s.statusStopped {
			t.Fatalf("status after stop = %d, want %d", r.code, s.statusStopped)
		}
	}
	return pid
}

const sampleIETConfig = "Target iqn.2001-04.com.example:disk0\n\tLun 0 Path=/dev/null,Type=fileio\n"

func TestRedHatScript(t *testing.T) {
	bash := needTool(t, "bash")
	dir := t.TempDir()
	bin, state := fakeDaemon(t, dir, "ietd")
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, sampleIETConfig)
	sysconfig := filepath.Join(dir, "sysconfig")
	if err := os.MkdirAll(sysconfig, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sysconfig, "iscsi-target"), `OPTIONS="-a 127.0.0.1 -p 3999"`+"\n")
	lock := filepath.Join(dir, "lock", "subsys", "iscsi-target")
	s := service{
		shell: bash, script: "redhat/iscsi-target",
		pidfile: filepath.Join(dir, "ietd.pid"), state: state, config: conf,
		statusStopped: 3, checksReload: true, hasStatus: true, reloadAction: "reload",
	}
	s.env = []string{"DAEMON=" + bin, "PIDFILE=" + s.pidfile, "ADMIN_SOCKET=" + filepath.Join(dir, "ietd.sock"),
		"CONFIG=" + conf, "SYSCONFIG_DIR=" + sysconfig, "LOCKFILE=" + lock, "STOP_TIMEOUT=5"}

	t.Run("lifecycle", func(t *testing.T) { lifecycle(t, s) })

	t.Run("arguments and lock", func(t *testing.T) {
		if r := s.run(t, "start"); r.code != 0 {
			t.Fatalf("start: %d %s", r.code, r.out)
		}
		defer s.run(t, "stop")
		want := "--pid-file " + s.pidfile + " --admin-socket " + filepath.Join(dir, "ietd.sock") + " -c " + conf + " -a 127.0.0.1 -p 3999"
		if got := lastLine(filepath.Join(state, "calls")); got != want {
			t.Fatalf("daemon arguments\n got %q\nwant %q", got, want)
		}
		if _, err := os.Stat(lock); err != nil {
			t.Fatalf("subsys lock not created: %v", err)
		}
		pid := readPID(s.pidfile)
		calls := countLines(filepath.Join(state, "calls"))
		r := s.run(t, "start")
		if r.code != 0 || !strings.Contains(r.out, "already running") {
			t.Fatalf("second start = %d %q, want 0 and 'already running'", r.code, r.out)
		}
		if readPID(s.pidfile) != pid || countLines(filepath.Join(state, "calls")) != calls {
			t.Fatalf("second start launched another daemon")
		}
		// condrestart on a running service gives a new daemon.
		if r := s.run(t, "condrestart"); r.code != 0 {
			t.Fatalf("condrestart: %d", r.code)
		}
		npid := readPID(s.pidfile)
		if npid == pid || !alive(npid) || alive(pid) {
			t.Fatalf("condrestart: old pid %d (alive=%v) new pid %d (alive=%v)", pid, alive(pid), npid, alive(npid))
		}
		if r := s.run(t, "stop"); r.code != 0 {
			t.Fatal("stop failed")
		}
		if _, err := os.Stat(lock); !os.IsNotExist(err) {
			t.Fatalf("subsys lock left after stop")
		}
	})

	t.Run("stopped service", func(t *testing.T) {
		calls := countLines(filepath.Join(state, "calls"))
		if r := s.run(t, "condrestart"); r.code != 0 {
			t.Fatalf("condrestart when stopped = %d", r.code)
		}
		if r := s.run(t, "stop"); r.code != 0 {
			t.Fatalf("stop when stopped = %d", r.code)
		}
		if r := s.run(t, "reload"); r.code != 7 {
			t.Fatalf("reload when stopped = %d, want 7 (not running)", r.code)
		}
		if countLines(filepath.Join(state, "calls")) != calls {
			t.Fatal("condrestart/stop/reload of a stopped service ran the daemon")
		}
	})

	t.Run("stale pid file", func(t *testing.T) {
		writeFile(t, s.pidfile, strconv.Itoa(deadPID(t))+"\n")
		defer os.Remove(s.pidfile)
		if r := s.run(t, "status"); r.code != 1 || !strings.Contains(r.out, "dead but pid file exists") {
			t.Fatalf("status with stale pid file = %d %q, want 1", r.code, r.out)
		}
	})

	t.Run("failed start", func(t *testing.T) {
		writeFile(t, conf, sampleIETConfig+"FAIL\n")
		defer writeFile(t, conf, sampleIETConfig)
		r := s.run(t, "start")
		if r.code == 0 || !strings.Contains(r.out, "FAILED") {
			t.Fatalf("start with a failing daemon = %d %q, want non-zero and FAILED", r.code, r.out)
		}
		if _, err := os.Stat(lock); !os.IsNotExist(err) {
			t.Fatalf("subsys lock created for a failed start")
		}
	})

	t.Run("usage", func(t *testing.T) {
		if r := s.run(t, "bogus"); r.code != 2 || !strings.Contains(r.out, "Usage") {
			t.Fatalf("unknown action = %d %q", r.code, r.out)
		}
	})

	pidFileSafety(t, s, 1)

	t.Run("force-reload", func(t *testing.T) {
		// Stopped: nothing to do (the original's try-restart).
		before := numLines(filepath.Join(state, "calls"))
		if r := s.run(t, "force-reload"); r.code != 0 || numLines(filepath.Join(state, "calls")) != before {
			t.Fatalf("force-reload when stopped = %d, daemon runs %d->%d", r.code, before, numLines(filepath.Join(state, "calls")))
		}
		if r := s.run(t, "start"); r.code != 0 {
			t.Fatal("start failed")
		}
		defer s.run(t, "stop")
		forceReloadsInPlace(t, s, state)
	})

	t.Run("stop is bounded", func(t *testing.T) {
		writeFile(t, conf, sampleIETConfig+"NOTERM\n")
		defer writeFile(t, conf, sampleIETConfig)
		quick := s
		quick.env = append(append([]string(nil), s.env...), "STOP_TIMEOUT=1")
		if r := quick.run(t, "start"); r.code != 0 {
			t.Fatal("start failed")
		}
		pid := readPID(s.pidfile)
		began := time.Now()
		if r := quick.run(t, "stop"); r.code != 0 {
			t.Fatalf("stop = %d", r.code)
		}
		if !waitFor(2*time.Second, func() bool { return !alive(pid) }) {
			t.Fatalf("a daemon ignoring SIGTERM is still alive after stop")
		}
		if d := time.Since(began); d < time.Second || d > 10*time.Second {
			t.Fatalf("stop took %v with STOP_TIMEOUT=1", d)
		}
		if _, err := os.Stat(s.pidfile); !os.IsNotExist(err) {
			t.Fatalf("pid file of the killed daemon left behind")
		}
	})
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	r := runScript(t, "sh", "-c", nil, "echo $$")
	pid, err := strconv.Atoi(strings.TrimSpace(r.out[strings.LastIndex(strings.TrimSpace(r.out), "\n")+1:]))
	if err != nil || alive(pid) {
		t.Fatalf("could not get a dead pid from %q", r.out)
	}
	return pid
}

func TestDebianScript(t *testing.T) {
	bash := needTool(t, "bash")
	dir := t.TempDir()
	bin, state := fakeDaemon(t, dir, "ietd")
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, sampleIETConfig)
	defaults := filepath.Join(dir, "default")
	if err := os.MkdirAll(defaults, 0o755); err != nil {
		t.Fatal(err)
	}
	setDefaults := func(enable, options string) {
		writeFile(t, filepath.Join(defaults, "iscsitarget"),
			"ISCSITARGET_ENABLE="+enable+"\nISCSITARGET_OPTIONS=\""+options+"\"\nISCSITARGET_MAX_SLEEP=5\n")
	}
	s := service{
		shell: bash, script: "debian/iscsitarget",
		pidfile: filepath.Join(dir, "ietd.pid"), state: state, config: conf,
		statusStopped: 3, checksReload: true, hasStatus: true, reloadAction: "force-reload",
	}
	s.env = []string{"DAEMON=" + bin, "PIDFILE=" + s.pidfile, "ADMIN_SOCKET=" + filepath.Join(dir, "ietd.sock"),
		"CONFIG=" + conf, "DEFAULT_DIR=" + defaults, "LSB_FUNCTIONS=/nonexistent"}
	calls := filepath.Join(state, "calls")

	t.Run("disabled", func(t *testing.T) {
		setDefaults("false", "")
		r := s.run(t, "start")
		if r.code != 0 || !strings.Contains(r.out, "not enabled") {
			t.Fatalf("start when disabled = %d %q, want 0 and a warning", r.code, r.out)
		}
		if countLines(calls) != 0 || readPID(s.pidfile) != 0 {
			t.Fatal("disabled service started the daemon")
		}
	})
	t.Run("bad enable value", func(t *testing.T) {
		setDefaults("yes", "")
		r := s.run(t, "start")
		if r.code != 1 || !strings.Contains(r.out, "must be either 'true' or 'false'") {
			t.Fatalf("start with ENABLE=yes = %d %q, want 1", r.code, r.out)
		}
	})

	setDefaults("true", "-a 127.0.0.1 -d 1")
	t.Run("lifecycle", func(t *testing.T) { lifecycle(t, s) })
	t.Run("options and restart", func(t *testing.T) {
		if r := s.run(t, "start"); r.code != 0 {
			t.Fatalf("start: %d", r.code)
		}
		defer s.run(t, "stop")
		want := "--pid-file " + s.pidfile + " --admin-socket " + filepath.Join(dir, "ietd.sock") + " -c " + conf + " -a 127.0.0.1 -d 1"
		if got := lastLine(calls); got != want {
			t.Fatalf("daemon arguments\n got %q\nwant %q", got, want)
		}
		pid := readPID(s.pidfile)
		if r := s.run(t, "restart"); r.code != 0 {
			t.Fatalf("restart: %d", r.code)
		}
		npid := readPID(s.pidfile)
		if npid == pid || alive(pid) || !alive(npid) {
			t.Fatalf("restart: old %d alive=%v, new %d alive=%v", pid, alive(pid), npid, alive(npid))
		}
	})
	pidFileSafety(t, s, 1)

	t.Run("restart when disabled", func(t *testing.T) {
		if r := s.run(t, "start"); r.code != 0 {
			t.Fatal("start failed")
		}
		pid := readPID(s.pidfile)
		setDefaults("false", "-a 127.0.0.1 -d 1")
		defer setDefaults("true", "-a 127.0.0.1 -d 1")
		before := numLines(calls)
		r := s.run(t, "restart")
		if r.code != 0 || !strings.Contains(r.out, "not enabled") {
			t.Fatalf("restart when disabled = %d %q, want 0 and the warning", r.code, r.out)
		}
		if !waitFor(5*time.Second, func() bool { return !alive(pid) }) || numLines(calls) != before {
			t.Fatalf("restart when disabled: daemon %d alive=%v, daemon runs %d->%d (want stopped, not started)", pid, alive(pid), before, numLines(calls))
		}
	})

	t.Run("force-reload", func(t *testing.T) {
		// Stopped: started, as the original's force-reload (= restart).
		if r := s.run(t, "force-reload"); r.code != 0 || !alive(readPID(s.pidfile)) {
			t.Fatalf("force-reload when stopped = %d %q, want the daemon started", r.code, r.out)
		}
		defer s.run(t, "stop")
		forceReloadsInPlace(t, s, state)
	})

	t.Run("daemon not installed", func(t *testing.T) {
		// Removed but not purged: the script stays and must not fail.
		gone := append([]string{"DAEMON=" + filepath.Join(dir, "not-installed")}, s.env[1:]...)
		r := runScript(t, bash, s.script, gone, "start")
		if r.code != 0 || !strings.Contains(r.out, "not installed") {
			t.Fatalf("start without the daemon = %d %q, want 0 and a warning", r.code, r.out)
		}
		if r := runScript(t, bash, s.script, gone, "stop"); r.code != 0 {
			t.Fatalf("stop without the daemon = %d", r.code)
		}
	})

	t.Run("original MAX_SLEEP does not cut the logout short", func(t *testing.T) {
		// The original's defaults file has ISCSITARGET_MAX_SLEEP=3.
		writeFile(t, filepath.Join(defaults, "iscsitarget"), "ISCSITARGET_ENABLE=true\nISCSITARGET_MAX_SLEEP=3\n")
		defer setDefaults("true", "-a 127.0.0.1 -d 1")
		writeFile(t, conf, sampleIETConfig+"SLOWSTOP\n")
		defer writeFile(t, conf, sampleIETConfig)
		if r := s.run(t, "start"); r.code != 0 {
			t.Fatal("start failed")
		}
		pid := readPID(s.pidfile)
		if r := s.run(t, "stop"); r.code != 0 {
			t.Fatalf("stop = %d", r.code)
		}
		if alive(pid) {
			t.Fatalf("stop returned while the daemon %d still ran", pid)
		}
		if data, _ := os.ReadFile(filepath.Join(state, "exits")); !strings.Contains(string(data), strconv.Itoa(pid)+"\n") {
			t.Fatalf("daemon %d was killed before it finished its 4 s shutdown (exits: %q)", pid, data)
		}
	})

	t.Run("real lsb functions", func(t *testing.T) {
		if _, err := os.Stat("/lib/lsb/init-functions"); err != nil {
			t.Skip("/lib/lsb/init-functions not installed")
		}
		ls := s
		ls.env = append(append([]string(nil), s.env[:len(s.env)-1]...), "LSB_FUNCTIONS=/lib/lsb/init-functions")
		ls.state = ""
		ls.checksReload = false
		lifecycle(t, ls)
	})
}

func TestNetBSDRcScript(t *testing.T) {
	sh := needTool(t, "sh")
	dir := t.TempDir()
	bin, state := fakeDaemon(t, dir, "netbsd")
	targets := filepath.Join(dir, "targets")
	writeFile(t, targets, "extent0 /tmp/iscsi-target0 0 100MB\ntarget0 rw extent0 0.0.0.0/0\n")
	rcconf := filepath.Join(dir, "rc.conf")
	subr, err := filepath.Abs("testdata/rc.subr")
	if err != nil {
		t.Fatal(err)
	}
	s := service{
		shell: sh, script: "netbsd/iscsi_target",
		pidfile: filepath.Join(dir, "iscsi-target.pid"), state: state, config: targets,
		statusStopped: 1, checksReload: true, hasStatus: true, reloadAction: "reload",
	}
	s.env = []string{"DAEMON=" + bin, "PIDFILE=" + s.pidfile, "CONFIG=" + targets,
		"ADMIN_SOCKET=" + filepath.Join(dir, "it.sock"), "RC_SUBR=" + subr, "RC_CONF=" + rcconf}
	calls := filepath.Join(state, "calls")

	t.Run("not enabled", func(t *testing.T) {
		writeFile(t, rcconf, "iscsi_target=NO\n")
		r := s.run(t, "start")
		if !strings.Contains(r.out, "is not enabled") || countLines(calls) != 0 {
			t.Fatalf("start with iscsi_target=NO: %q, daemon calls %d", r.out, countLines(calls))
		}
	})
	t.Run("forcestart", func(t *testing.T) {
		if r := s.run(t, "forcestart"); r.code != 0 || readPID(s.pidfile) == 0 {
			t.Fatalf("forcestart = %d %q", r.code, r.out)
		}
		if r := s.run(t, "forcestop"); r.code != 0 || readPID(s.pidfile) != 0 {
			t.Fatalf("forcestop = %d %q", r.code, r.out)
		}
	})

	writeFile(t, rcconf, "iscsi_target=YES\niscsi_target_flags=\"-p 3999 -b 4096\"\n")
	t.Run("lifecycle", func(t *testing.T) { lifecycle(t, s) })
	t.Run("arguments", func(t *testing.T) {
		if r := s.run(t, "start"); r.code != 0 {
			t.Fatalf("start: %d", r.code)
		}
		defer s.run(t, "stop")
		want := "-p 3999 -b 4096 -f " + targets + " --pid-file " + s.pidfile + " --admin-socket " + filepath.Join(dir, "it.sock")
		if got := lastLine(calls); got != want {
			t.Fatalf("daemon arguments\n got %q\nwant %q", got, want)
		}
		if r := s.run(t, "reload"); r.code != 0 {
			t.Fatalf("reload: %d", r.code)
		}
		if got := lastLine(calls); got != "--check "+want {
			t.Fatalf("reload's check\n got %q\nwant %q", got, "--check "+want)
		}
		if r := s.run(t, "start"); r.code == 0 || !strings.Contains(r.out, "already running") {
			t.Fatalf("second start = %d %q, want an 'already running' error", r.code, r.out)
		}
	})
	t.Run("default paths give the historical command line", func(t *testing.T) {
		env := []string{"DAEMON=" + bin, "RC_SUBR=" + subr, "RC_CONF=" + rcconf}
		// /etc/iscsi/targets is (normally) absent here: rc.subr must
		// refuse before running anything.
		if _, err := os.Stat("/etc/iscsi/targets"); err == nil {
			t.Skip("/etc/iscsi/targets exists on this host")
		}
		before := countLines(calls)
		r := runScript(t, sh, s.script, env, "start")
		if r.code == 0 || !strings.Contains(r.out, "/etc/iscsi/targets is not readable") {
			t.Fatalf("start without the targets file = %d %q", r.code, r.out)
		}
		if countLines(calls) != before {
			t.Fatal("daemon ran without its required file")
		}
	})
}

func TestSolarisMethod(t *testing.T) {
	sh := needTool(t, "sh")
	dir := t.TempDir()
	bin, state := fakeDaemon(t, dir, "ietd")
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, sampleIETConfig)
	s := service{
		shell: sh, script: "solaris/svc-iscsi-target",
		pidfile: filepath.Join(dir, "ietd.pid"), state: state, config: conf,
		checksReload: true, reloadAction: "refresh",
	}
	s.env = []string{"DAEMON=" + bin, "PIDFILE=" + s.pidfile, "CONFIG=" + conf,
		"ADMIN_SOCKET=" + filepath.Join(dir, "ietd.sock"), "OPTIONS=-p 3999", "SMF_INCLUDE=/nonexistent", "STOP_TIMEOUT=5"}
	lifecycle(t, s)
	want := "--pid-file " + s.pidfile + " --admin-socket " + filepath.Join(dir, "ietd.sock") + " -c " + conf + " -p 3999"
	calls := filepath.Join(state, "calls")
	data, _ := os.ReadFile(calls)
	if !strings.Contains(string(data), want+"\n") {
		t.Fatalf("method did not start the daemon with %q; calls:\n%s", want, data)
	}
	writeFile(t, conf, sampleIETConfig+"FAIL\n")
	if r := s.run(t, "start"); r.code != 95 {
		t.Fatalf("start with a failing daemon = %d, want SMF_EXIT_ERR_FATAL (95)", r.code)
	}
	// A pid file naming a live process that is not the daemon: stop
	// leaves it alone, start starts the daemon.
	writeFile(t, conf, sampleIETConfig)
	other := foreignProcess(t)
	writeFile(t, s.pidfile, strconv.Itoa(other)+"\n")
	if r := s.run(t, "stop"); r.code != 0 || !alive(other) {
		t.Fatalf("stop with another process's pid = %d; pid %d alive=%v", r.code, other, alive(other))
	}
	if r := s.run(t, "start"); r.code != 0 {
		t.Fatalf("start over another process's pid = %d", r.code)
	}
	if pid := readPID(s.pidfile); pid == other || !alive(pid) {
		t.Fatalf("start did not start the daemon (pid file %d)", pid)
	}
	if r := s.run(t, "stop"); r.code != 0 || !alive(other) {
		t.Fatalf("stop = %d; pid %d alive=%v", r.code, other, alive(other))
	}
	writeFile(t, conf, sampleIETConfig+"FAIL\n")
	missing := append([]string{"DAEMON=" + filepath.Join(dir, "missing")}, s.env[1:]...)
	if r := runScript(t, sh, s.script, missing, "start"); r.code != 96 {
		t.Fatalf("start with a missing daemon = %d, want SMF_EXIT_ERR_CONFIG (96)", r.code)
	}

	// Under SMF the settings come from the ietd property group, read with
	// svcprop (which escapes blanks with backslashes).
	writeFile(t, conf, sampleIETConfig)
	svcprop := filepath.Join(dir, "svcprop")
	writeFile(t, svcprop, "#!/bin/sh\n"+
		"[ \"$1 $2 $4\" = \"-c -p svc:/network/iscsi-target:default\" ] || exit 1\n"+
		"case \"$3\" in\n"+
		"ietd/daemon) echo "+shellQuote(bin)+" ;;\n"+
		"ietd/config) echo "+shellQuote(conf)+" ;;\n"+
		"ietd/options) echo '-d\\ 1\\ -p\\ 3998' ;;\n"+
		"ietd/pidfile) echo "+shellQuote(s.pidfile)+" ;;\n"+
		"ietd/admin_socket) echo '\"\"' ;;\n"+
		"*) exit 1 ;;\n"+
		"esac\n")
	if err := os.Chmod(svcprop, 0o755); err != nil {
		t.Fatal(err)
	}
	smf := []string{"SMF_FMRI=svc:/network/iscsi-target:default", "SVCPROP=" + svcprop, "SMF_INCLUDE=/nonexistent", "STOP_TIMEOUT=5"}
	if r := runScript(t, sh, s.script, smf, "start"); r.code != 0 {
		t.Fatalf("start under SMF = %d", r.code)
	}
	defer runScript(t, sh, s.script, smf, "stop")
	want = "--pid-file " + s.pidfile + " --admin-socket /var/run/ietd.sock -c " + conf + " -d 1 -p 3998"
	if got := lastLine(calls); got != want {
		t.Fatalf("daemon arguments from SMF properties\n got %q\nwant %q", got, want)
	}
	if r := runScript(t, sh, s.script, smf, "stop"); r.code != 0 || readPID(s.pidfile) != 0 && alive(readPID(s.pidfile)) {
		t.Fatalf("stop under SMF = %d", r.code)
	}
}

// foreignProcess starts a process that is not the daemon (sleep) and
// returns its pid; it is killed when the test ends.
func foreignProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(needTool(t, "sleep"), "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

// pidFileSafety drives a SysV script through the pid files a host can be
// left with: one naming a live process that is not the daemon (a stale
// pid reused), and an empty one (what ietd leaves when, running as
// another user, it may not remove its pid file). notRunningButFile is the
// status exit code for a pid file without a daemon behind it.
func pidFileSafety(t *testing.T, s service, notRunningButFile int) {
	t.Helper()
	calls := filepath.Join(s.state, "calls")

	t.Run("pid file of another process", func(t *testing.T) {
		other := foreignProcess(t)
		writeFile(t, s.pidfile, strconv.Itoa(other)+"\n")
		if r := s.run(t, "status"); r.code != notRunningButFile {
			t.Fatalf("status with another process's pid = %d %q, want %d", r.code, r.out, notRunningButFile)
		}
		if r := s.run(t, "reload"); r.code != 7 {
			t.Fatalf("reload with another process's pid = %d, want 7 (not running)", r.code)
		}
		if r := s.run(t, "stop"); r.code != 0 {
			t.Fatalf("stop = %d %q", r.code, r.out)
		}
		if !alive(other) {
			t.Fatalf("stop signalled pid %d, which is not the daemon", other)
		}
		if _, err := os.Stat(s.pidfile); !os.IsNotExist(err) {
			t.Fatalf("stop left the stale pid file (err=%v)", err)
		}
		// start is not fooled into "already running" either.
		writeFile(t, s.pidfile, strconv.Itoa(other)+"\n")
		before := numLines(calls)
		if r := s.run(t, "start"); r.code != 0 || strings.Contains(r.out, "already running") {
			t.Fatalf("start with another process's pid = %d %q, want a real start", r.code, r.out)
		}
		pid := readPID(s.pidfile)
		if numLines(calls) != before+1 || pid == other || !alive(pid) {
			t.Fatalf("start did not start the daemon (calls %d->%d, pid file %d)", before, numLines(calls), pid)
		}
		if r := s.run(t, "stop"); r.code != 0 || !waitFor(5*time.Second, func() bool { return !alive(pid) }) {
			t.Fatalf("stop = %d, daemon %d alive=%v", r.code, pid, alive(pid))
		}
		if !alive(other) {
			t.Fatalf("pid %d was killed", other)
		}
	})

	t.Run("empty pid file", func(t *testing.T) {
		writeFile(t, s.pidfile, "")
		if r := s.run(t, "status"); r.code != 3 {
			t.Fatalf("status with an empty pid file = %d %q, want 3 (not running)", r.code, r.out)
		}
		if r := s.run(t, "stop"); r.code != 0 {
			t.Fatalf("stop with an empty pid file = %d", r.code)
		}
		writeFile(t, s.pidfile, "")
		if r := s.run(t, "start"); r.code != 0 || !alive(readPID(s.pidfile)) {
			t.Fatalf("start over an empty pid file = %d %q", r.code, r.out)
		}
		if r := s.run(t, "stop"); r.code != 0 {
			t.Fatalf("stop = %d", r.code)
		}
	})

	// Without flock(1) the scripts compare the process's name with the
	// daemon's: the fake daemon runs under its own file name.
	t.Run("without flock", func(t *testing.T) {
		if _, err := os.Stat("/proc/self/comm"); err != nil {
			t.Skip("no /proc/PID/comm")
		}
		nf := s
		nf.env = append(append([]string(nil), s.env...), "FLOCK=/nonexistent/flock")
		other := foreignProcess(t)
		writeFile(t, s.pidfile, strconv.Itoa(other)+"\n")
		if r := nf.run(t, "stop"); r.code != 0 || !alive(other) {
			t.Fatalf("stop = %d; pid %d alive=%v", r.code, other, alive(other))
		}
		if r := nf.run(t, "start"); r.code != 0 {
			t.Fatalf("start = %d %q", r.code, r.out)
		}
		pid := readPID(s.pidfile)
		if r := nf.run(t, "status"); r.code != 0 || !strings.Contains(r.out, strconv.Itoa(pid)) {
			t.Fatalf("status without flock = %d %q, want 0 naming %d", r.code, r.out, pid)
		}
		if r := nf.run(t, "stop"); r.code != 0 || !waitFor(5*time.Second, func() bool { return !alive(pid) }) {
			t.Fatalf("stop without flock = %d, daemon %d alive=%v", r.code, pid, alive(pid))
		}
	})
}

// forceReloadsInPlace: force-reload of the running (fake) daemon reloads
// it (one more SIGHUP in state/reloads) and keeps its pid.
func forceReloadsInPlace(t *testing.T, s service, state string) {
	t.Helper()
	pid := readPID(s.pidfile)
	hups := countLines(filepath.Join(state, "reloads"))
	if r := s.run(t, "force-reload"); r.code != 0 {
		t.Fatalf("force-reload = %d", r.code)
	}
	if !waitFor(5*time.Second, func() bool { return countLines(filepath.Join(state, "reloads")) == hups+1 }) || readPID(s.pidfile) != pid {
		t.Fatalf("force-reload of a running daemon did not reload it in place")
	}
}
