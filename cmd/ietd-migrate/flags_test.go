package main

import (
	"strings"
	"testing"
)

// iscsi_target_flags as rc.conf holds them: an unknown option is noted
// and skipped as iscsi-target skips it (not an error), and a continued
// line does not become a word.
func TestParseNetBSDFlagsAsIscsiTarget(t *testing.T) {
	a, err := parseNetBSDFlags("-x -b 4096 \\\n -s 8")
	if err != nil {
		t.Fatal(err)
	}
	if a.blockLen != 4096 || a.maxSessions != 8 {
		t.Errorf("-b %d -s %d, want 4096 and 8", a.blockLen, a.maxSessions)
	}
	if notes := strings.Join(a.notes, "\n"); !strings.Contains(notes, "iscsi_target_flags: ") || !strings.Contains(notes, "-x") {
		t.Errorf("no note of the unknown -x:\n%s", notes)
	}
	for in, want := range map[string][]string{
		"-b 4096 \\\n-D":           {"-b", "4096", "-D"},
		`-t "iqn.a\` + "\n" + `b"`: {"-t", "iqn.ab"},
	} {
		got, err := shellWords(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
