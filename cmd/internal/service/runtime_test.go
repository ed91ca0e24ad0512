package service

import (
	"debug/buildinfo"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestSysmonSetting(t *testing.T) {
	const def = "-X=runtime.godebugDefault=" + SysmonGodebug
	for _, c := range []struct {
		env, ldflags, value, from string
	}{
		{"", "", "", ""},
		{"", def, "2147483647", "build"},
		{"", "-s -w " + def + " -X main.x=1", "2147483647", "build"},
		{"", "-X=runtime.godebugDefault=httpmuxgo121=1,schedtrace=5", "5", "build"},
		{"", "-X=runtime.godebugDefault=httpmuxgo121=1", "", ""},
		{"schedtrace=0", def, "0", "GODEBUG"},
		{"gctrace=1, schedtrace=7,schedtrace=9", def, "9", "GODEBUG"},
		{"gctrace=1", def, "2147483647", "build"},
	} {
		v, from := sysmonSetting(c.env, c.ldflags)
		if v != c.value || from != c.from {
			t.Errorf("sysmonSetting(%q, %q) = %q, %q; want %q, %q", c.env, c.ldflags, v, from, c.value, c.from)
		}
	}
	if n := sysmonNote("0", "GODEBUG"); !strings.Contains(n, "deep sleep on (schedtrace=0 from the GODEBUG") {
		t.Errorf("schedtrace=0: %q", n)
	}
	if n := sysmonNote("", ""); !strings.Contains(n, "deep sleep on (built without") {
		t.Errorf("schedtrace=0: %q", n)
	}
	if n := sysmonNote("2147483647", "build"); !strings.Contains(n, "kept out of deep sleep") || !strings.Contains(n, "build") {
		t.Errorf("linked in: %q", n)
	}
}

// The Makefile links SysmonGodebug into the two daemons and only those:
// a client (ietadm) on a host up for more than 24.8 days would print the
// runtime's trace line.
func TestMakeBuildLinksSysmonSetting(t *testing.T) {
	mk, err := os.ReadFile("../../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^DAEMON_GODEBUG\s*:=\s*(\S+)$`).FindSubmatch(mk)
	if m == nil || string(m[1]) != SysmonGodebug {
		t.Fatalf("Makefile DAEMON_GODEBUG = %q, want %q", m, SysmonGodebug)
	}
	dir := os.Getenv("IETD_BIN_DIR")
	if dir == "" {
		t.Skip("IETD_BIN_DIR not set: no built binaries to inspect")
	}
	for name, want := range map[string]string{"ietd": "2147483647", "iscsi-target": "2147483647", "ietadm": "", "ietd-migrate": ""} {
		bi, err := buildinfo.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		ld := ""
		for _, s := range bi.Settings {
			if s.Key == "-ldflags" {
				ld = s.Value
			}
		}
		if v, _ := sysmonSetting("", ld); v != want {
			t.Errorf("%s: schedtrace %q linked in, want %q (-ldflags %q)", name, v, want, ld)
		}
	}
}
