package backing

import (
	"errors"
	"os"
	"syscall"
	"testing"
)

// storeCase builds a store of the given size with its own reference view.
type storeCase struct {
	name     string
	build    func(t *testing.T, size int64) Store
	canUnmap bool
	align    int64 // required request alignment in checkOps (1 = any)
}

func storeCases() []storeCase {
	file := func(direct, wt bool) func(t *testing.T, size int64) Store {
		return func(t *testing.T, size int64) Store {
			return mustOpenFile(t, fileOptions{Path: newTempFile(t, size), Direct: direct, WriteThrough: wt})
		}
	}
	return []storeCase{
		{name: "memory", canUnmap: true, align: 1, build: func(t *testing.T, size int64) Store { return NewMemory(size) }},
		{name: "fileio-wb", canUnmap: true, align: 1, build: file(false, false)},
		{name: "fileio-wt", canUnmap: true, align: 1, build: file(false, true)},
		{name: "blockio-file", canUnmap: true, align: 1, build: file(true, false)},
		{name: "window", canUnmap: true, align: 1, build: func(t *testing.T, size int64) Store {
			p := newTempFile(t, 3*size)
			return mustOpenFile(t, fileOptions{Path: p, Offset: size, Size: size})
		}},
		{name: "concat", canUnmap: true, align: 1, build: func(t *testing.T, size int64) Store {
			a := size / 3
			b := size / 4
			return NewConcat(
				mustOpenFile(t, fileOptions{Path: newTempFile(t, a)}),
				NewMemory(b),
				mustOpenFile(t, fileOptions{Path: newTempFile(t, 2*size), Offset: 4096, Size: size - a - b}),
			)
		}},
		{name: "mirror", canUnmap: true, align: 1, build: func(t *testing.T, size int64) Store {
			return NewMirror(nil,
				MirrorMember{Name: "a", Store: mustOpenFile(t, fileOptions{Path: newTempFile(t, size)})},
				MirrorMember{Name: "b", Store: NewMemory(size)},
			)
		}},
		{name: "limit", canUnmap: true, align: 1, build: func(t *testing.T, size int64) Store {
			return NewLimit(NewMemory(2*size), size, false)
		}},
		{name: "faulty", canUnmap: true, align: 1, build: func(t *testing.T, size int64) Store {
			return NewFaulty(NewMemory(size))
		}},
	}
}

func TestStoresAgainstReference(t *testing.T) {
	const size = 1<<20 + 3*4096
	for _, c := range storeCases() {
		t.Run(c.name, func(t *testing.T) {
			s := c.build(t, size)
			checkOps(t, s, make([]byte, size), 1, 300, 200_000, c.align, c.canUnmap)
			if err := s.Sync(); err != nil {
				t.Fatalf("Sync: %v", err)
			}
		})
	}
}

func TestStoresBounds(t *testing.T) {
	const size = 64 << 10
	for _, c := range storeCases() {
		t.Run(c.name, func(t *testing.T) {
			s := c.build(t, size)
			buf := make([]byte, 4096)
			for _, off := range []int64{-1, size - 4095, size, size + 1, 1 << 62} {
				_, err := s.ReadAt(buf, off)
				expectErr(t, "ReadAt", err, ErrRange)
				_, err = s.WriteAt(buf, off)
				expectErr(t, "WriteAt", err, ErrRange)
				expectErr(t, "Unmap", s.Unmap(off, 4096), ErrRange)
				expectErr(t, "SyncRange", s.SyncRange(off, 4096), ErrRange)
			}
			expectErr(t, "Unmap negative length", s.Unmap(0, -1), ErrRange)
			// The last bytes and zero-length requests at the end are fine.
			mustWrite(t, s, buf, size-4096)
			mustRead(t, s, 4096, size-4096)
			if _, err := s.ReadAt(nil, size); err != nil {
				t.Fatalf("zero-length read at end: %v", err)
			}
			if err := s.Unmap(size, 0); err != nil {
				t.Fatalf("zero-length unmap at end: %v", err)
			}
		})
	}
}

func TestUnmapReadsZeros(t *testing.T) {
	const size = 1 << 20
	for _, c := range storeCases() {
		t.Run(c.name, func(t *testing.T) {
			s := c.build(t, size)
			data := pattern(7, size)
			mustWrite(t, s, data, 0)
			// Whole 64 KiB chunks plus partial pages at both ends.
			off, n := int64(4096*3+100), int64(300_000)
			if err := s.Unmap(off, n); err != nil {
				if errors.Is(err, ErrNotSupported) {
					t.Skipf("file system cannot punch holes: %v", err)
				}
				t.Fatal(err)
			}
			clear(data[off : off+n])
			equalBytes(t, "after unmap", mustRead(t, s, size, 0), data)
		})
	}
}

func TestFileUnmapDeallocates(t *testing.T) {
	const size = 8 << 20
	p := newTempFile(t, size)
	s := mustOpenFile(t, fileOptions{Path: p})
	mustWrite(t, s, pattern(1, size), 0)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	before := allocated(t, p)
	if err := s.Unmap(1<<20, 4<<20); err != nil {
		t.Skipf("punch hole unsupported here: %v", err)
	}
	after := allocated(t, p)
	if after > before-3<<20 {
		t.Fatalf("allocation %d -> %d: hole not punched", before, after)
	}
	if st, _ := os.Stat(p); st.Size() != size {
		t.Fatalf("size changed to %d", st.Size())
	}
}

func allocated(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func TestFileReadOnly(t *testing.T) {
	p := newTempFile(t, 1<<20)
	rw := mustOpenFile(t, fileOptions{Path: p})
	data := pattern(3, 8192)
	mustWrite(t, rw, data, 4096)
	if err := os.Chmod(p, 0o444); err != nil {
		t.Fatal(err)
	}
	s := mustOpenFile(t, fileOptions{Path: p, ReadOnly: true, WriteThrough: true})
	equalBytes(t, "ro read", mustRead(t, s, 8192, 4096), data)
	_, err := s.WriteAt(data, 0)
	expectErr(t, "ro write", err, ErrReadOnly)
	expectErr(t, "ro unmap", s.Unmap(0, 4096), ErrReadOnly)
	if err := s.Sync(); err != nil {
		t.Fatalf("ro sync: %v", err)
	}
	if s.WriteCacheEnabled() {
		t.Fatal("read-only store claims a write cache")
	}
	equalBytes(t, "data intact", mustRead(t, s, 8192, 4096), data)
}

func TestReadOnlyBadFDClassified(t *testing.T) {
	// The OS refusing a write on a read-only descriptor (EBADF) is a
	// read-only error, not an I/O error.
	err := opError("write", "x", 0, 1, &os.PathError{Op: "write", Path: "x", Err: syscall.EBADF}, true)
	expectErr(t, "EBADF on ro", err, ErrReadOnly)
	expectErr(t, "EBADF on ro keeps cause", err, syscall.EBADF)
	if errors.Is(opError("write", "x", 0, 1, syscall.EBADF, false), ErrReadOnly) {
		t.Fatal("EBADF on a read-write store classified read-only")
	}
}

func TestErrorClassification(t *testing.T) {
	cases := []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.ENOSPC, ErrNoSpace},
		{syscall.EDQUOT, ErrNoSpace},
		{syscall.EIO, ErrIO},
		{syscall.EROFS, ErrReadOnly},
		{syscall.EOPNOTSUPP, ErrNotSupported},
	}
	for _, c := range cases {
		cause := &os.PathError{Op: "pwrite", Path: "/x", Err: c.errno}
		err := opError("write", "/x", 512, 4096, cause, false)
		expectErr(t, c.errno.Error(), err, c.want)
		expectErr(t, c.errno.Error()+" cause", err, c.errno)
		var pe *os.PathError
		if !errors.As(err, &pe) {
			t.Fatalf("%v: *os.PathError not reachable", err)
		}
	}
	if k := classify(syscall.EINTR, false); k != nil {
		t.Fatalf("EINTR classified as %v", k)
	}
}

func TestFileWindowDoesNotTouchOutside(t *testing.T) {
	const total = 1 << 20
	p := newTempFile(t, total)
	whole := mustOpenFile(t, fileOptions{Path: p})
	orig := pattern(11, total)
	mustWrite(t, whole, orig, 0)

	off, size := int64(100_000), int64(300_001) // deliberately unaligned
	w := mustOpenFile(t, fileOptions{Path: p, Offset: off, Size: size})
	if w.Size() != size {
		t.Fatalf("window size %d, want %d", w.Size(), size)
	}
	data := pattern(12, int(size))
	mustWrite(t, w, data, 0)
	if err := w.Unmap(0, 4096); err != nil && !errors.Is(err, ErrNotSupported) {
		t.Fatal(err)
	}
	clear(data[:4096])
	want := append([]byte(nil), orig...)
	copy(want[off:], data)
	equalBytes(t, "file", mustRead(t, whole, total, 0), want)
	equalBytes(t, "window", mustRead(t, w, int(size), 0), data)
}

func TestFileWindowPastEOFReadsZeros(t *testing.T) {
	p := newTempFile(t, 4096)
	w := mustOpenFile(t, fileOptions{Path: p, Offset: 0, Size: 1 << 20})
	equalBytes(t, "zeros", mustRead(t, w, 8192, 1<<19), make([]byte, 8192))
	data := pattern(5, 512)
	mustWrite(t, w, data, 1<<20-512)
	if st, _ := os.Stat(p); st.Size() != 1<<20 {
		t.Fatalf("file grew to %d, want exactly the window end", st.Size())
	}
	equalBytes(t, "tail", mustRead(t, w, 512, 1<<20-512), data)
}

func TestOpenFileErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := openFile(fileOptions{Path: dir + "/missing"})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	_, err = openFile(fileOptions{Path: dir})
	if err == nil {
		t.Fatal("opening a directory succeeded")
	}
	p := newTempFile(t, 4096)
	_, err = openFile(fileOptions{Path: p, Offset: 8192})
	expectErr(t, "offset past end", err, ErrRange)
	_, err = openFile(fileOptions{Path: p, Offset: -1, Size: 10})
	expectErr(t, "negative offset", err, ErrRange)
}

func TestNullStore(t *testing.T) {
	s := NewNull(1<<20, false)
	p := pattern(1, 4096)
	mustWrite(t, s, p, 0)
	equalBytes(t, "null reads zeros", mustRead(t, s, 4096, 0), make([]byte, 4096))
	buf := pattern(2, 4096)
	if _, err := s.ReadAt(buf, 4096); err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "null clears caller buffer", buf, make([]byte, 4096))
	_, err := s.WriteAt(p, 1<<20)
	expectErr(t, "null bounds", err, ErrRange)
	ro := NewNull(1<<20, true)
	_, err = ro.WriteAt(p, 0)
	expectErr(t, "null ro", err, ErrReadOnly)
	expectErr(t, "null ro unmap", ro.Unmap(0, 1), ErrReadOnly)
	if err := s.Unmap(0, 1<<20); err != nil {
		t.Fatal(err)
	}
}

func TestMemorySparse(t *testing.T) {
	const size = 100 << 30
	s := NewMemory(size).(*MemoryStore)
	if s.Size() != size {
		t.Fatalf("size %d", s.Size())
	}
	data := pattern(1, 3*memChunk)
	mustWrite(t, s, data, size-int64(len(data))-100)
	if got := s.AllocatedBytes(); got != 4*memChunk {
		t.Fatalf("allocated %d bytes, want %d", got, 4*memChunk)
	}
	equalBytes(t, "tail", mustRead(t, s, len(data), size-int64(len(data))-100), data)
	if err := s.Unmap(size-5*memChunk, 5*memChunk); err != nil {
		t.Fatal(err)
	}
	if got := s.AllocatedBytes(); got != 0 {
		t.Fatalf("allocated %d bytes after unmap, want 0", got)
	}
}

// TestDirectLargeUnaligned sends requests larger than one bounce buffer,
// unaligned in offset, length and memory, through O_DIRECT.
func TestDirectLargeUnaligned(t *testing.T) {
	const size = 8 << 20
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, size), Direct: true})
	if !s.Direct() {
		t.Skip("O_DIRECT not available")
	}
	ref := make([]byte, size)
	for i, c := range []struct{ off, n int64 }{{1, 3<<20 + 5}, {4096, 2 << 20}, {size - 3<<20 - 7, 3 << 20}} {
		buf := make([]byte, c.n+1)
		p := buf[1:]
		copy(p, pattern(int64(i), int(c.n)))
		mustWrite(t, s, p, c.off)
		copy(ref[c.off:], p)
		got := make([]byte, c.n+3)[3:]
		if _, err := s.ReadAt(got, c.off); err != nil {
			t.Fatal(err)
		}
		equalBytes(t, "large", got, ref[c.off:c.off+c.n])
	}
	equalBytes(t, "whole", mustRead(t, s, size, 0), ref)
}
