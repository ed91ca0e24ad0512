package backing

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

func TestFileStoreAllocated(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(16 << 20)
	f.Close()
	st, err := Open(&config.LUN{Type: "fileio", IOMode: "wb", Store: &config.Store{Kind: config.StoreFile, Path: p}}, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, ok := st.(interface {
		Allocated(off, n int64) (bool, int64, error)
	})
	if !ok {
		t.Fatalf("%T does not report allocation", st)
	}
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 1
	}
	if _, err := st.WriteAt(buf, 4<<20); err != nil {
		t.Fatal(err)
	}
	mapped, run, err := a.Allocated(0, 16<<20)
	if err != nil || mapped || run != 4<<20 {
		t.Skipf("file system does not report holes (mapped=%v run=%d err=%v)", mapped, run, err)
	}
	mapped, run, err = a.Allocated(4<<20, 12<<20)
	if err != nil || !mapped || run != 1<<20 {
		t.Fatalf("data extent: mapped=%v run=%d err=%v", mapped, run, err)
	}
	if err := st.Unmap(4<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	mapped, run, err = a.Allocated(0, 16<<20)
	if err != nil || mapped || run != 16<<20 {
		t.Fatalf("after unmap: mapped=%v run=%d err=%v", mapped, run, err)
	}
}
