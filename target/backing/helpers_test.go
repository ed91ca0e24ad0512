package backing

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// newTempFile creates a file of size bytes (sparse) in a test directory.
func newTempFile(t testing.TB, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOpenFile(t testing.TB, o fileOptions) *FileStore {
	t.Helper()
	s, err := openFile(o)
	if err != nil {
		t.Fatalf("openFile(%+v): %v", o, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pattern returns n deterministic pseudo-random bytes.
func pattern(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func mustWrite(t testing.TB, s Store, p []byte, off int64) {
	t.Helper()
	n, err := s.WriteAt(p, off)
	if err != nil || n != len(p) {
		t.Fatalf("WriteAt(len %d, off %d) = %d, %v", len(p), off, n, err)
	}
}

func mustRead(t testing.TB, s Store, n int, off int64) []byte {
	t.Helper()
	p := make([]byte, n)
	got, err := s.ReadAt(p, off)
	if err != nil || got != n {
		t.Fatalf("ReadAt(len %d, off %d) = %d, %v", n, off, got, err)
	}
	return p
}

func expectErr(t testing.TB, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %v, want %v", what, err, kind)
	}
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("%s: data differs at byte %d (len got %d want %d)", what, i, len(got), len(want))
	}
}

// checkOps drives s and a flat reference buffer with the same random
// operations and compares every read.
func checkOps(t testing.TB, s Store, ref []byte, seed int64, ops int, maxLen int, align int64, canUnmap bool) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	size := int64(len(ref))
	if s.Size() != size {
		t.Fatalf("Size = %d, want %d", s.Size(), size)
	}
	for i := 0; i < ops; i++ {
		n := int64(rng.Intn(maxLen) + 1)
		if n > size {
			n = size
		}
		off := rng.Int63n(size - n + 1)
		if align > 1 {
			off -= off % align
			n = max(align, n-n%align)
		}
		switch op := rng.Intn(10); {
		case op < 4:
			p := pattern(rng.Int63(), int(n))
			mustWrite(t, s, p, off)
			copy(ref[off:off+n], p)
		case op < 8:
			// Read into a deliberately misaligned slice half the time.
			buf := make([]byte, n+1)
			p := buf[:n]
			if rng.Intn(2) == 0 {
				p = buf[1 : n+1]
			}
			got, err := s.ReadAt(p, off)
			if err != nil || int64(got) != n {
				t.Fatalf("op %d ReadAt(%d,+%d) = %d, %v", i, off, n, got, err)
			}
			equalBytes(t, "read", p, ref[off:off+n])
		case op == 8 && canUnmap:
			if err := s.Unmap(off, n); err != nil {
				t.Fatalf("op %d Unmap(%d,+%d): %v", i, off, n, err)
			}
			clear(ref[off : off+n])
		default:
			if err := s.SyncRange(off, n); err != nil {
				t.Fatalf("op %d SyncRange(%d,+%d): %v", i, off, n, err)
			}
		}
	}
	equalBytes(t, "final", mustRead(t, s, int(size), 0), ref)
}
