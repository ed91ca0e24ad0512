//go:build linux

package backing

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

// immutable sets the immutable attribute (chattr +i), which refuses
// writes and new directory entries to root as well; the test is skipped
// where the file system or the capabilities do not allow it.
func immutable(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v %s", path, err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", path).Run() })
}

// A probe of a LUN that is not read-only refuses what a start's open for
// writing refuses, with the start's message: a file that cannot be
// written, a file to create in a directory that cannot take it. A
// read-only LUN on the same files is served by both.
func TestProbeRefusesWhatAStartCannotWrite(t *testing.T) {
	dir := t.TempDir()
	ok := newTempFile(t, 1<<20)
	locked := filepath.Join(dir, "locked.img")
	if err := os.WriteFile(locked, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	lockedDir := filepath.Join(dir, "locked")
	if err := os.Mkdir(lockedDir, 0o700); err != nil {
		t.Fatal(err)
	}
	immutable(t, locked)
	immutable(t, lockedDir)
	create := func(p, iomode string) *config.LUN {
		return &config.LUN{Type: "fileio", IOMode: iomode, Store: &config.Store{Kind: config.StoreFile,
			Path: p, Size: 1 << 20, Create: true}}
	}
	for _, c := range []struct {
		name    string
		l       *config.LUN
		refused bool
	}{
		{"writable file", fileLUN(ok, "fileio", ""), false},
		{"writable file, new in a writable directory", create(filepath.Join(dir, "new.img"), ""), false},
		{"immutable file", fileLUN(locked, "fileio", ""), true},
		{"immutable file wb", fileLUN(locked, "fileio", "wb"), true},
		{"immutable file ro", fileLUN(locked, "fileio", "ro"), false},
		{"immutable file, Create", create(locked, ""), true},
		{"new file in an immutable directory", create(filepath.Join(lockedDir, "new.img"), ""), true},
	} {
		_, perr := Open(c.l, OpenOptions{Probe: true})
		if (perr != nil) != c.refused {
			t.Errorf("%s: probe: %v, want refused %v", c.name, perr, c.refused)
			continue
		}
		s, err := Open(c.l, OpenOptions{})
		if err == nil {
			s.Close()
		}
		if (err != nil) != c.refused {
			t.Errorf("%s: start: %v, want refused %v", c.name, err, c.refused)
			continue
		}
		if err != nil {
			t.Logf("%s: %v", c.name, err)
		}
		if err != nil && perr.Error() != err.Error() {
			t.Errorf("%s: probe says\n\t%v\na start\n\t%v", c.name, perr, err)
		}
	}
	if _, err := os.Stat(filepath.Join(lockedDir, "new.img")); !os.IsNotExist(err) {
		t.Fatalf("a file was created in the immutable directory: %v", err)
	}
}
