package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestPIDFileRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ietd.pid")
	p, err := CreatePIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("pid file holds %q (%v), want our pid %d", b, err, os.Getpid())
	}
	if err := p.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("pid file still there after Remove: %v", err)
	}
}

// A daemon started with -u runs as a user who may not delete the pid
// file from /var/run: it empties the file instead, so that no stale pid
// is left for an init script to signal, and says so.
func TestPIDFileEmptiedWhenItCannotBeRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ietd.pid")
	p, err := CreatePIDFile(path)
	if err != nil {
		t.Fatal(err)
	}
	removeFile = func(string) error { return &os.PathError{Op: "remove", Path: path, Err: syscall.EACCES} }
	defer func() { removeFile = os.Remove }()
	err = p.Remove()
	if err == nil || !strings.Contains(err.Error(), "emptied instead") {
		t.Fatalf("Remove: %v, want a permission error saying the file was emptied", err)
	}
	b, rerr := os.ReadFile(path)
	if rerr != nil || len(b) != 0 {
		t.Fatalf("pid file holds %q (%v), want it empty", b, rerr)
	}
	// The lock is released: the next start takes the file over.
	q, err := CreatePIDFile(path)
	if err != nil {
		t.Fatalf("next start: %v", err)
	}
	removeFile = os.Remove
	if err := q.Remove(); err != nil {
		t.Fatal(err)
	}
}

// A second daemon on the same state directory is refused, naming the
// first one's pid; once the first is gone the directory can be taken.
func TestStateDirLockedByOneDaemon(t *testing.T) {
	dir := t.TempDir()
	first, err := LockStateDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = LockStateDir(dir)
	if !errors.Is(err, ErrStateDirLocked) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) ||
		!strings.Contains(err.Error(), dir) {
		t.Fatalf("second lock: %v", err)
	}
	first.Close()
	again, err := LockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after the first released it: %v", err)
	}
	again.Close()
	if fi, err := os.Stat(filepath.Join(dir, "lock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v", fi, err)
	}
}
