//go:build linux || netbsd || freebsd || openbsd || darwin

package crc32c

import (
	"math/rand"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoReadPastEnd checksums every input that ends right before an
// unmapped (PROT_NONE) page, from 0 bytes up to two pages, so a read of
// even one byte past the end faults. Lengths from 512 are folded where
// there is a fold, covering every round count to 8 KiB and every left-over
// length modulo 256 (and so modulo 16).
func TestNoReadPastEnd(t *testing.T) {
	ps := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 3*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer unix.Munmap(mem)
	if err := unix.Mprotect(mem[2*ps:], unix.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	data := mem[: 2*ps : 2*ps]
	rand.New(rand.NewSource(5)).Read(data)
	end := len(data)
	for n := 0; n <= end; n++ {
		p := data[end-n : end]
		c := uint32(n) * 0x9e3779b9
		if got, want := Update(c, p), reference(c, p); got != want {
			t.Fatalf("len %d ending at the guard page: %08x, want %08x", n, got, want)
		}
	}
	if useFold {
		for n := 256; n <= end; n += 256 {
			p := data[end-n : end]
			if got, want := fold(1, p), rawRef(1, p); got != want {
				t.Fatalf("fold len %d ending at the guard page: %08x, want %08x", n, got, want)
			}
		}
	}
}
