package initscripts

import (
	"bytes"
	"context"
	"errors"
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
)

// fakeDaemonScript is a stand-in for ietd (mode "ietd": -c FILE, -f =
// foreground) or iscsi-target (mode "netbsd": -f FILE, -D = foreground).
// It records every command line in $STATE/calls, answers --check by
// looking for the word BAD in the config file, refuses to start when the
// config holds FAIL, and otherwise detaches a child that writes the pid
// file, records SIGHUP in $STATE/reloads and removes the pid file on
// SIGTERM. The parent exits 0 only once the pid file names the child. As ietd's,
// the child holds a lock on its pid file (when flock(1) is installed) and
// runs under the daemon's name (it is the script run again), which is what
// the scripts check before they signal a pid. A config holding SLOWSTOP
// makes it take 4 s to exit on SIGTERM, NOTERM makes it ignore SIGTERM;
// it records a clean exit in $STATE/exits.
const fakeDaemonScript = `#!/bin/sh
state=@STATE@
mode=@MODE@
if [ "$1" = __child ]; then
	pidfile=$2 stop=$3
	case "$stop" in
	slow) trap 'sleep 4; echo $$ >>"$state/exits"; rm -f "$pidfile"; exit 0' TERM ;;
	ignore) trap '' TERM ;;
	*) trap 'echo $$ >>"$state/exits"; rm -f "$pidfile"; exit 0' TERM ;;
	esac
	trap 'echo hup >>"$state/reloads"' HUP
	echo $$ >>"$state/pids"
	echo $$ >"$pidfile.tmp"
	exec 9<"$pidfile.tmp"
	if command -v flock >/dev/null 2>&1; then flock -n 9; fi
	mv "$pidfile.tmp" "$pidfile"
	while :; do sleep 0.2 & wait $!; done
fi
pidfile=/nonexistent/default.pid
config=
check=
printf '%s\n' "$*" >>"$state/calls"
while [ $# -gt 0 ]; do
	case "$1" in
	--pid-file) pidfile=$2; shift ;;
	--admin-socket|-a|-p|-d|-u|-g|--state-dir|--acl-dir|--proc-dir|--dialect) shift ;;
	-c|--config) config=$2; shift ;;
	-f) if [ "$mode" = netbsd ]; then config=$2; shift; fi ;;
	--check) check=1 ;;
	esac
	shift
done
if [ -n "$check" ]; then
	if [ -n "$config" ] && grep -q BAD "$config"; then
		echo "config: line 1: BAD entry" >&2
		exit 1
	fi
	exit 0
fi
if [ -n "$config" ] && grep -q FAIL "$config"; then
	echo "cannot start: FAIL in $config" >&2
	exit 1
fi
stop=
if [ -n "$config" ] && grep -q SLOWSTOP "$config"; then stop=slow; fi
if [ -n "$config" ] && grep -q NOTERM "$config"; then stop=ignore; fi
"$0" __child "$pidfile" "$stop" </dev/null >/dev/null 2>&1 &
child=$!
i=0
while [ "$(cat "$pidfile" 2>/dev/null)" != "$child" ]; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then echo "no pid file" >&2; exit 1; fi
	sleep 0.05
done
exit 0
`

// fakeDaemon writes the fake daemon into dir and returns its path and
// the directory where it records what happened.
func fakeDaemon(t *testing.T, dir, mode string) (bin, state string) {
	t.Helper()
	state = filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "fake-"+mode)
	body := strings.NewReplacer("@STATE@", shellQuote(state), "@MODE@", mode).Replace(fakeDaemonScript)
	if err := os.WriteFile(bin, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killRecorded(t, filepath.Join(state, "pids")) })
	return bin, state
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// killRecorded stops, by pid, every fake daemon process that is still
// alive (a test that failed half-way leaves them behind).
func killRecorded(t *testing.T, pidsFile string) {
	data, err := os.ReadFile(pidsFile)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && alive(pid) {
			t.Logf("killing leftover pid %d", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

type runResult struct {
	out  string
	code int
}

// runScript runs `shell script args...` with a minimal environment plus
// env, bounded by a timeout.
func runScript(t *testing.T, shell, script string, env []string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, append([]string{script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "LANG=C"}, env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = 5 * time.Second
	began := time.Now()
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("%s %s %v: %v\n%s", shell, script, args, err, buf.String())
	}
	t.Logf("%s %s %s -> %d (%v)\n%s", shell, filepath.Base(script), strings.Join(args, " "), code, time.Since(began).Round(time.Millisecond), buf.String())
	return runResult{out: buf.String(), code: code}
}

// readPID returns the pid stored in path, or 0.
func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func countLines(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return len(strings.Fields(string(data)))
}

// numLines is the number of lines in path (0 when it does not exist).
func numLines(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

func lastLine(path string) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	return lines[len(lines)-1]
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago:
// the first free one of $IETD_TEST_PORTS ("3495-3499") when that is set
// (a shared machine hands out port ranges), else one the system picks.
func freePort(t *testing.T) int {
	t.Helper()
	if r := os.Getenv("IETD_TEST_PORTS"); r != "" {
		lo, hi, _ := strings.Cut(r, "-")
		first, err1 := strconv.Atoi(lo)
		last, err2 := strconv.Atoi(hi)
		if hi == "" {
			last, err2 = first, nil
		}
		if err1 != nil || err2 != nil || first < 1 || last < first || last > 65535 {
			t.Fatalf("IETD_TEST_PORTS=%q: want PORT or FIRST-LAST", r)
		}
		for p := first; p <= last; p++ {
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				l.Close()
				return p
			}
		}
		t.Fatalf("no free port in IETD_TEST_PORTS=%s", r)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// realBin returns $IETD_BIN_DIR/name or skips.
func realBin(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("IETD_BIN_DIR")
	if dir == "" {
		t.Skip("IETD_BIN_DIR not set: real daemon not tested")
	}
	p := filepath.Join(dir, name)
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		t.Skipf("%s not built", p)
	}
	return p
}

// syscallKill sends SIGTERM, then SIGKILL if the process is still there
// after a second.
func syscallKill(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return err
	}
	if waitFor(time.Second, func() bool { return !alive(pid) }) {
		return nil
	}
	return syscall.Kill(pid, syscall.SIGKILL)
}
