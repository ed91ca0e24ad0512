package service

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestSysmonEnv(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string // nil: no re-execution
	}{
		{[]string{"PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=" + SysmonGodebug}},
		{[]string{"GODEBUG=", "A=1"}, []string{"A=1", "GODEBUG=" + SysmonGodebug}},
		{[]string{"GODEBUG=gctrace=1", "A=1"}, []string{"A=1", "GODEBUG=gctrace=1," + SysmonGodebug}},
		// Already set, by the first execution or by the user: kept.
		{[]string{"GODEBUG=" + SysmonGodebug}, nil},
		{[]string{"GODEBUG=schedtrace=0"}, nil},
		{[]string{"GODEBUG=gctrace=1, schedtrace=5"}, nil},
		// Only the variable named GODEBUG counts.
		{[]string{"XGODEBUG=schedtrace=0"}, []string{"XGODEBUG=schedtrace=0", "GODEBUG=" + SysmonGodebug}},
	} {
		got := sysmonEnv(c.in)
		if (got == nil) != (c.want == nil) || !slices.Equal(got, c.want) {
			t.Errorf("sysmonEnv(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// The re-executed environment needs no further re-execution.
	if again := sysmonEnv(sysmonEnv([]string{"GODEBUG=gctrace=1"})); again != nil {
		t.Errorf("second pass re-executes: %q", again)
	}
}

func TestSysmonNote(t *testing.T) {
	for _, c := range []struct {
		godebug string
		err     error
		want    string
	}{
		{SysmonGodebug, nil, "kept out of deep sleep (GODEBUG schedtrace=2147483647)"},
		{"gctrace=1,schedtrace=7", nil, "kept out of deep sleep (GODEBUG schedtrace=7)"},
		{"schedtrace=0", nil, "deep sleep on (GODEBUG schedtrace=0)"},
		{"", errors.New("exec: no such file"), "deep sleep on (re-executing with GODEBUG=" + SysmonGodebug + " failed: exec: no such file)"},
	} {
		if got := sysmonNote(c.godebug, c.err); !strings.HasSuffix(got, c.want) {
			t.Errorf("sysmonNote(%q, %v) = %q, want it to end %q", c.godebug, c.err, got, c.want)
		}
	}
}
