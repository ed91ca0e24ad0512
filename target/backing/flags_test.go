//go:build linux

package backing

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openFlags reads the kernel's view of a descriptor's open flags.
func openFlags(t *testing.T, fd int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Skipf("no /proc fdinfo: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal("no flags line in fdinfo")
	return 0
}

// TestIOModeOpenFlags checks that write-through really is synchronous at
// the kernel level, and that blockio really bypasses the page cache.
func TestIOModeOpenFlags(t *testing.T) {
	p := newTempFile(t, 1<<20)
	cases := []struct {
		name string
		o    fileOptions
		want int // flags that must be set
		deny int // flags that must not be set
		acc  int
	}{
		// A write-through regular file: the combiner syncs each batch
		// (TestWriteThroughSyncsEveryWrite), not O_DSYNC.
		{"wt", fileOptions{Path: p, WriteThrough: true}, 0, unix.O_DSYNC | unix.O_DIRECT, unix.O_RDWR},
		{"wb", fileOptions{Path: p}, 0, unix.O_DSYNC | unix.O_DIRECT, unix.O_RDWR},
		{"ro", fileOptions{Path: p, ReadOnly: true, WriteThrough: true}, 0, unix.O_DSYNC, unix.O_RDONLY},
		{"blockio-wt", fileOptions{Path: p, Direct: true, WriteThrough: true}, unix.O_DIRECT | unix.O_DSYNC, 0, unix.O_RDWR},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustOpenFile(t, c.o)
			if c.o.Direct && !s.Direct() {
				t.Skip("O_DIRECT not available on this file system")
			}
			fl := openFlags(t, int(s.f.Fd()))
			if fl&c.want != c.want || fl&c.deny != 0 || fl&unix.O_ACCMODE != c.acc {
				t.Fatalf("flags %#o: want %#o set, %#o clear, access mode %d", fl, c.want, c.deny, c.acc)
			}
			if got := s.WriteCacheEnabled(); got != (c.name == "wb") {
				t.Fatalf("WriteCacheEnabled = %v", got)
			}
		})
	}
}

// A write-through buffered file completes no write before an fdatasync
// that started after the write's data was in the file.
func TestWriteThroughSyncsEveryWrite(t *testing.T) {
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, 1<<20), WriteThrough: true})
	if s.comb == nil || s.comb.sync == nil {
		t.Fatal("a write-through regular file has no syncing write combiner")
	}
	want := pattern(3, 4096)
	syncs := 0
	s.datasync = func() error {
		syncs++
		// What this sync covers: the write must be in the file already.
		got := make([]byte, len(want))
		if _, err := s.f.ReadAt(got, 4096); err != nil || string(got) != string(want) {
			t.Error("fdatasync ran before the write's data was in the file")
		}
		return nil
	}
	for i := 1; i <= 3; i++ {
		mustWrite(t, s, want, 4096)
		if syncs != i {
			t.Fatalf("after %d writes, %d syncs", i, syncs)
		}
	}
}
