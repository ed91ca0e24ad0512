package service

import (
	"os"
	"strings"
	"syscall"
)

// SysmonGodebug is the GODEBUG setting the daemons run with (see
// keepSysmonAwake): with schedtrace set, the Go runtime's monitor thread
// never enters its deep sleep, so the first system call of every burst of
// I/O no longer wakes it (a futex wake) and sets it polling every 20 µs
// for a millisecond. Under 4k I/O on two cores that was a quarter of
// ietd's context switches and a tenth of its CPU. The value is the largest
// the runtime takes (24.8 days in milliseconds): a trace line on stderr is
// due only once the host's monotonic clock passes it, at start and then
// every 24.8 days.
const SysmonGodebug = "schedtrace=2147483647"

// The runtime reads schedtrace only at start-up (no //go:debug directive
// or API sets it), and a default linked into the binary would also reach
// --check, --version and --help: on a host up for 24.8 days those would
// print the trace line. So the daemon, and only the daemon, re-executes
// itself once with the setting in its environment.

// sysmonEnv returns the environment to re-execute with, or nil when
// GODEBUG already sets schedtrace (the re-executed daemon, or a user's
// choice such as schedtrace=0).
func sysmonEnv(environ []string) []string {
	cur, had := "", false
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			cur, had = v, true
			continue
		}
		out = append(out, kv)
	}
	if _, set := lastSetting(cur, "schedtrace"); set {
		return nil
	}
	v := SysmonGodebug
	if had && strings.TrimSpace(cur) != "" {
		v = cur + "," + v
	}
	return append(out, "GODEBUG="+v)
}

// keepSysmonAwake re-executes the running daemon (same pid, arguments and
// open descriptors) with SysmonGodebug added to GODEBUG, unless GODEBUG
// sets schedtrace already. It returns only when it did not re-execute:
// nil when nothing was needed, else why it could not.
func keepSysmonAwake() error {
	env := sysmonEnv(os.Environ())
	if env == nil {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, env)
}

// lastSetting returns the last key=value of a GODEBUG list (the runtime
// applies them left to right).
func lastSetting(list, key string) (string, bool) {
	v, found := "", false
	for _, f := range strings.Split(list, ",") {
		if k, val, ok := strings.Cut(strings.TrimSpace(f), "="); ok && k == key {
			v, found = val, true
		}
	}
	return v, found
}

// sysmonNote is the debug line Start logs about the setting: the
// schedtrace the runtime started with (from GODEBUG) and, when the
// re-execution failed, why.
func sysmonNote(godebug string, reexecErr error) string {
	v, ok := lastSetting(godebug, "schedtrace")
	switch {
	case reexecErr != nil:
		return "Go runtime: sysmon deep sleep on (re-executing with GODEBUG=" + SysmonGodebug +
			" failed: " + reexecErr.Error() + ")"
	case !ok || v == "" || v == "0" || strings.HasPrefix(v, "-"):
		return "Go runtime: sysmon deep sleep on (GODEBUG schedtrace=" + v + ")"
	}
	return "Go runtime: sysmon kept out of deep sleep (GODEBUG schedtrace=" + v + ")"
}
