package statefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteReplacesAndLeavesNoTemporary(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	p := filepath.Join(dir, "x.json")
	for _, want := range []string{"first", "second"} {
		if err := Write(p, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Fatalf("read %q, %v; want %q", b, err, want)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("directory holds %d entries, want only the file", len(es))
	}
}

// Read refuses what is not a small regular file with an error naming it,
// and never blocks (a FIFO is not opened).
func TestReadRefusesWhatIsNotAStateFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	f, _ := os.Create(big)
	f.Truncate(MaxSize + 1)
	f.Close()
	link := filepath.Join(dir, "link")
	os.Symlink("/dev/zero", link)
	for _, p := range []string{fifo, big, link, dir} {
		if _, err := Read(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Read(%s): %v", p, err)
		}
	}
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("state"), 0o600)
	if b, err := Read(ok); err != nil || string(b) != "state" {
		t.Fatalf("Read: %q, %v", b, err)
	}
}

// A write that cannot be made is an error and leaves no temporary file;
// Remove of a missing file is not an error.
func TestWriteAndRemoveErrors(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o600)
	if err := Write(filepath.Join(notDir, "x.json"), []byte("x")); err == nil {
		t.Fatal("write under a file succeeded")
	}
	p := filepath.Join(dir, "x.json")
	if err := Write(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := Remove(p); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("directory holds %d entries", len(es))
	}
}

func TestNameIsReadableUniqueAndBounded(t *testing.T) {
	a, b := Name("iqn.2026-01.org.x:a:b"), Name("iqn.2026-01.org.x:a_b")
	if a == b {
		t.Fatalf("a:b and a_b both %s", a)
	}
	if !strings.HasPrefix(a, "iqn.2026-01.org.x_a_b.") {
		t.Fatalf("not readable: %s", a)
	}
	if n := Name(strings.Repeat("\u00e9/", 200)); len(n) > 180 || strings.ContainsAny(n, "/\x00") {
		t.Fatalf("name of %d bytes: %q", len(n), n)
	}
	if Name("..") == ".." || strings.Contains(Name("../x"), "/") {
		t.Fatal("a name escapes its directory")
	}
}
