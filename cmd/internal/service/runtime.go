package service

import (
	"runtime/debug"
	"strings"
)

// SysmonGodebug is the GODEBUG setting `make build` links into the daemons
// (Makefile DAEMON_GODEBUG): with schedtrace set, the Go runtime's monitor
// thread never enters its deep sleep, so the first system call of every
// burst of I/O no longer wakes it (a futex wake) and sets it polling every
// 20 µs for a millisecond. Under 4k I/O on two cores that was a quarter of
// ietd's context switches and a tenth of its CPU. The value is the largest
// the runtime takes (24.8 days in milliseconds): a trace line on stderr is
// due only once the host's monotonic clock passes it, at start and then
// every 24.8 days.
const SysmonGodebug = "schedtrace=2147483647"

// sysmonSetting reports the schedtrace the runtime started with and where
// it came from ("GODEBUG" or "build"); "" when none (the deep sleep is on).
// The environment overrides the linked-in default, as in the runtime.
func sysmonSetting(env string, ldflags string) (value, from string) {
	if v, ok := lastSetting(env, "schedtrace"); ok {
		return v, "GODEBUG"
	}
	const key = "runtime.godebugDefault="
	if i := strings.Index(ldflags, key); i >= 0 {
		def := ldflags[i+len(key):]
		if j := strings.IndexAny(def, " '\""); j >= 0 {
			def = def[:j]
		}
		if v, ok := lastSetting(def, "schedtrace"); ok {
			return v, "build"
		}
	}
	return "", ""
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

// buildLdflags returns the -ldflags the running binary was built with.
func buildLdflags() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "-ldflags" {
			return s.Value
		}
	}
	return ""
}

// sysmonNote is the debug line Start logs about the setting.
func sysmonNote(value, from string) string {
	if value == "" || value == "0" || strings.HasPrefix(value, "-") {
		why := "built without `make build`'s -ldflags"
		if from != "" {
			why = "schedtrace=" + value + " from the " + from
		}
		return "Go runtime: sysmon deep sleep on (" + why + "; GODEBUG=" + SysmonGodebug +
			" keeps it off, see ietd(8) ENVIRONMENT)"
	}
	return "Go runtime: sysmon kept out of deep sleep (schedtrace=" + value + " from the " + from + ")"
}
