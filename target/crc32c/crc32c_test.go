package crc32c

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand"
	"strings"
	"testing"
)

func reference(crc uint32, p []byte) uint32 { return crc32.Update(crc, table, p) }

// TestUpdateMatchesHashCRC32 covers every length up to 5000 bytes (all the
// fold's round counts and left-overs up to there) at every alignment
// modulo 8, with random data and starting CRCs, and a few large inputs.
func TestUpdateMatchesHashCRC32(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	buf := make([]byte, 5000+8)
	for n := 0; n <= 5000; n++ {
		r.Read(buf)
		p := buf[n%8 : n%8+n]
		c := r.Uint32()
		if got, want := Update(c, p), reference(c, p); got != want {
			t.Fatalf("len %d at %d: Update %08x, hash/crc32 %08x", n, n%8, got, want)
		}
	}
	for _, n := range []int{64 << 10, 256<<10 + 4, 1 << 20} {
		p := make([]byte, n)
		r.Read(p)
		if got, want := Checksum(p), reference(0, p); got != want {
			t.Fatalf("len %d: Checksum %08x, hash/crc32 %08x", n, got, want)
		}
	}
}

// TestKnownValue is RFC 3720 appendix B.4's 32 bytes of zeros.
func TestKnownValue(t *testing.T) {
	if got := Checksum(make([]byte, 32)); got != 0x8a9136aa {
		t.Fatalf("CRC32C of 32 zero bytes: %08x, want 8a9136aa", got)
	}
	zeros := make([]byte, 4096)
	if got, want := Checksum(zeros), reference(0, zeros); got != want {
		t.Fatalf("4096 zero bytes: %08x, want %08x", got, want)
	}
}

// TestFoldModel runs the fold's arithmetic in Go (a bitwise carry-less
// multiply, one 128-bit lane folded 128 bits at a time with foldPair(128))
// on every platform, so the constants and the reduction are checked even
// where the assembly does not run.
func TestFoldModel(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for n := 16; n <= 1024; n += 16 {
		p := make([]byte, n)
		r.Read(p)
		c := r.Uint32()
		if got, want := ^modelFold(^c, p), reference(c, p); got != want {
			t.Fatalf("len %d: model %08x, hash/crc32 %08x", n, got, want)
		}
	}
}

func clmul(a, b uint64) (lo, hi uint64) {
	for i := 0; i < 64; i++ {
		if b&(1<<i) != 0 {
			lo ^= a << i
			if i > 0 {
				hi ^= a >> (64 - i)
			}
		}
	}
	return lo, hi
}

// modelFold is rawUpdate(c, p) for len(p) a non-zero multiple of 16.
func modelFold(c uint32, p []byte) uint32 {
	q0 := binary.LittleEndian.Uint64(p) ^ uint64(c)
	q1 := binary.LittleEndian.Uint64(p[8:])
	k := foldPair(128)
	for off := 16; off < len(p); off += 16 {
		a0, a1 := clmul(q0, k[0])
		b0, b1 := clmul(q1, k[1])
		q0 = a0 ^ b0 ^ binary.LittleEndian.Uint64(p[off:])
		q1 = a1 ^ b1 ^ binary.LittleEndian.Uint64(p[off+8:])
	}
	var lane [16]byte
	binary.LittleEndian.PutUint64(lane[:], q0)
	binary.LittleEndian.PutUint64(lane[8:], q1)
	return ^reference(^uint32(0), lane[:]) // rawUpdate(0, lane)
}

func FuzzUpdate(f *testing.F) {
	f.Add(uint32(0), make([]byte, 512))
	f.Add(uint32(0xffffffff), make([]byte, 1000))
	f.Add(uint32(7), []byte("iSCSI"))
	f.Fuzz(func(t *testing.T, crc uint32, p []byte) {
		if got, want := Update(crc, p), reference(crc, p); got != want {
			t.Fatalf("len %d: Update %08x, hash/crc32 %08x", len(p), got, want)
		}
	})
}

func benchmark(b *testing.B, n int, f func(uint32, []byte) uint32) {
	p := make([]byte, n)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		f(0, p)
	}
}

func BenchmarkUpdate512(b *testing.B)      { benchmark(b, 512, Update) }
func BenchmarkUpdate4K(b *testing.B)       { benchmark(b, 4096, Update) }
func BenchmarkUpdate256K(b *testing.B)     { benchmark(b, 256<<10, Update) }
func BenchmarkHashCRC32_512(b *testing.B)  { benchmark(b, 512, reference) }
func BenchmarkHashCRC32_4K(b *testing.B)   { benchmark(b, 4096, reference) }
func BenchmarkHashCRC32_256K(b *testing.B) { benchmark(b, 256<<10, reference) }

func TestImplementationSaysWhich(t *testing.T) {
	if got := Implementation(); strings.Contains(got, "AVX-512") != useFold {
		t.Fatalf("Implementation() = %q with useFold %v", got, useFold)
	}
}
