package crc32c

import (
	"hash/crc32"
	"math/rand"
	"testing"
)

// rawRef is the CRC register without hash/crc32's inversions:
// (c·x^(8·len(p)) + p·x^32) mod P, bits reflected.
func rawRef(c uint32, p []byte) uint32 { return ^crc32.Update(^c, table, p) }

// xPowByCRC derives x^n mod P (n >= 32) from hash/crc32's table alone, as
// a reflected 32-bit value: a message of L bytes whose only set bit is bit
// b of its first byte is the polynomial x^(8L-1-b), and the raw register
// after it from 0 is that times x^32 mod P.
func xPowByCRC(n int) uint32 {
	m := n - 32 // = 8L-1-b, 0 <= b < 8
	l := m/8 + 1
	b := 8*l - 1 - m
	p := make([]byte, l)
	p[0] = 1 << b
	return rawRef(0, p)
}

// TestFoldConstsIndependent checks the fold's operands against x^n mod P
// derived through hash/crc32 rather than through xPowMod: an operand has
// x^i at bit 63-i, a reflected CRC value x^i at bit 31-i.
func TestFoldConstsIndependent(t *testing.T) {
	for i, d := range []int{2048, 512, 384, 256, 128} {
		hi, lo := uint64(xPowByCRC(d+63))<<32, uint64(xPowByCRC(d-1))<<32
		if foldConsts[2*i] != hi || foldConsts[2*i+1] != lo {
			t.Errorf("fold by %d bits: operands %016x %016x, want %016x %016x",
				d, foldConsts[2*i], foldConsts[2*i+1], hi, lo)
		}
	}
	if foldConsts[10] != 0 || foldConsts[11] != 0 {
		t.Errorf("last lane's pair %016x %016x, want zeros", foldConsts[10], foldConsts[11])
	}
	// xPowMod itself, against the derivation, over a range of exponents.
	for n := 32; n < 4200; n++ {
		if got, want := xPowMod(n), xPowByCRC(n); operand(got) != uint64(want)<<32 {
			t.Fatalf("x^%d mod P: xPowMod %08x (operand %016x), via hash/crc32 %08x", n, got, operand(got), want)
		}
	}
}

// TestChainedUpdates splits inputs that the fold takes whole into pieces
// that it takes in part, partly or not at all, and checks that chaining
// Update over the pieces, from a non-zero CRC, equals one Update over the
// whole and hash/crc32.
func TestChainedUpdates(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	p := make([]byte, 8192+300)
	r.Read(p)
	cuts := []int{0, 1, 15, 16, 17, 255, 256, 257, 511, 512, 513, 767, 768, 1000, 4096, 4097, 8192}
	for _, n := range []int{512, 513, 768, 1023, 4096, 4096 + 48, 8192 + 300} {
		whole := p[:n]
		c := r.Uint32()
		want := reference(c, whole)
		if got := Update(c, whole); got != want {
			t.Fatalf("len %d whole: %08x, want %08x", n, got, want)
		}
		for _, a := range cuts {
			for _, b := range cuts {
				if a > b || b > n {
					continue
				}
				got := Update(Update(Update(c, whole[:a]), whole[a:b]), whole[b:])
				if got != want {
					t.Fatalf("len %d cut at %d and %d: %08x, want %08x", n, a, b, got, want)
				}
			}
		}
	}
	if got := Update(0x12345678, nil); got != 0x12345678 {
		t.Fatalf("Update of nothing changed the CRC: %08x", got)
	}
}

// TestFoldDirect calls the fold itself (where there is one) at every
// multiple of 256 up to 8 KiB and every start modulo 64, against the raw
// register from hash/crc32, including the starting values 0 and ^0.
func TestFoldDirect(t *testing.T) {
	if !useFold {
		t.Skip("no fold here: " + Implementation())
	}
	r := rand.New(rand.NewSource(4))
	buf := make([]byte, 8192+64)
	r.Read(buf)
	for n := 256; n <= 8192; n += 256 {
		for off := 0; off < 64; off++ {
			p := buf[off : off+n]
			for _, c := range []uint32{0, ^uint32(0), r.Uint32()} {
				if got, want := fold(c, p), rawRef(c, p); got != want {
					t.Fatalf("fold len %d at %d from %08x: %08x, want %08x", n, off, c, got, want)
				}
			}
		}
	}
}
