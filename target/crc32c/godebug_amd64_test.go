package crc32c

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestGodebugOff(t *testing.T) {
	for _, c := range []struct {
		godebug string
		off     bool
	}{
		{"", false},
		{"cpu.vpclmulqdq=off", true},
		{"madvdontneed=1,cpu.vpclmulqdq=off", true},
		{"cpu.vpclmulqdq=off,cpu.vpclmulqdq=on", false},
		{"cpu.vpclmulqdq=on,cpu.vpclmulqdq=off", true},
		{"cpu.vpclmulqdqx=off", false},
		{"xcpu.vpclmulqdq=off", false},
	} {
		if got := godebugOff(c.godebug, "vpclmulqdq"); got != c.off {
			t.Errorf("godebugOff(%q) = %v, want %v", c.godebug, got, c.off)
		}
	}
}

// TestGODEBUGTurnsFoldOff runs this test binary again under each GODEBUG
// setting that turns off an extension the fold needs and checks that it
// then says hash/crc32 (and that the same binary without it folds).
func TestGODEBUGTurnsFoldOff(t *testing.T) {
	if os.Getenv("CRC32C_TEST_IMPL") == "1" {
		t.Log("implementation: " + Implementation())
		return
	}
	if !useFold || testing.Short() {
		t.Skip("no fold here, or -short")
	}
	impl := func(godebug string) string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestGODEBUGTurnsFoldOff$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "CRC32C_TEST_IMPL=1", "GODEBUG="+godebug)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GODEBUG=%s: %v\n%s", godebug, err, out)
		}
		_, rest, ok := strings.Cut(string(out), "implementation: ")
		if !ok {
			t.Fatalf("GODEBUG=%s: no implementation line in\n%s", godebug, out)
		}
		line, _, _ := strings.Cut(rest, "\n")
		return line
	}
	if got := impl(""); !strings.Contains(got, "AVX-512") {
		t.Fatalf("without GODEBUG: %q, want the fold", got)
	}
	for _, g := range []string{
		"cpu.avx512=off", "cpu.avx512f=off", "cpu.avx512vpclmulqdq=off",
		"cpu.vpclmulqdq=off", "cpu.avx=off", "cpu.avx2=off", "cpu.sse42=off", "cpu.all=off",
	} {
		if got := impl(g); strings.Contains(got, "AVX-512") {
			t.Errorf("GODEBUG=%s: %q, want hash/crc32", g, got)
		}
	}
}
