package backing

import (
	"bytes"
	"os"
	"testing"
)

// After Close, a FileStore never operates on its old descriptor number:
// the process may have reused it for another file (here: the next file
// opened gets it), and punching a hole or syncing there would hit that
// file. Every operation fails instead.
func TestClosedFileStoreDoesNotTouchReusedDescriptor(t *testing.T) {
	a := mustOpenFile(t, fileOptions{Path: newTempFile(t, 1<<20)})
	oldFD := a.f.Fd()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	p := newTempFile(t, 0)
	data := bytes.Repeat([]byte{0x77}, 1<<16)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if other.Fd() != oldFD {
		t.Logf("descriptor %d not reused (got %d): the checks still run", oldFD, other.Fd())
	}
	if err := a.Unmap(0, 1<<16); err == nil {
		t.Error("Unmap after Close succeeded")
	}
	if err := a.Sync(); err == nil {
		t.Error("Sync after Close succeeded")
	}
	if err := a.SyncRange(0, 4096); err == nil {
		t.Error("SyncRange after Close succeeded")
	}
	if _, err := a.Refresh(); err == nil {
		t.Error("Refresh after Close succeeded")
	}
	if _, err := a.WriteAt(make([]byte, 512), 0); err == nil {
		t.Error("WriteAt after Close succeeded")
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file that reused the descriptor was changed (err %v)", err)
	}
}
