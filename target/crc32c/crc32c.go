package crc32c

import "hash/crc32"

var table = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC32C of p.
func Checksum(p []byte) uint32 { return Update(0, p) }

// Update returns the CRC32C of the data crc was computed over followed by
// p, as crc32.Update(crc, crc32.MakeTable(crc32.Castagnoli), p) does.
func Update(crc uint32, p []byte) uint32 {
	if useFold && len(p) >= foldMin {
		n := len(p) &^ (foldBlock - 1)
		crc = ^fold(^crc, p[:n])
		p = p[n:]
	}
	return crc32.Update(crc, table, p)
}

// Implementation says how Update computes, for a debug log line.
func Implementation() string {
	if useFold {
		return "CRC32C folded with AVX-512 VPCLMULQDQ from 512 bytes, hash/crc32 below"
	}
	return "CRC32C by hash/crc32"
}

// foldMin is the shortest input worth folding (below it the fold's
// combining steps cost more than hash/crc32's loop saves); foldBlock is
// what one round of the fold consumes.
const (
	foldMin   = 512
	foldBlock = 256
)

// The fold works on the CRC's register without hash/crc32's inversions:
// rawUpdate(c, p) = (c·x^(8·len(p)) + p·x^32) mod P, bits reflected.

// xPowMod returns x^n mod P, P the Castagnoli polynomial, in normal bit
// order (bit i is the coefficient of x^i).
func xPowMod(n int) uint32 {
	r := uint64(1)
	for i := 0; i < n; i++ {
		r <<= 1
		if r&(1<<32) != 0 {
			r ^= 1<<32 | 0x1EDC6F41
		}
	}
	return uint32(r)
}

// operand turns a polynomial of degree below 32 into a 64-bit operand of a
// carry-less multiply in the CRC's reflected order (x^i at bit 63-i).
func operand(k uint32) uint64 {
	var o uint64
	for i := 0; i < 32; i++ {
		if k&(1<<i) != 0 {
			o |= 1 << (63 - i)
		}
	}
	return o
}

// foldPair returns the two operands that move a 128-bit lane d bits on.
// The lane's first quadword holds the higher-degree half A1 (A = A1·x^64 +
// A0), so A·x^d ≡ A1·x^(d+64) + A0·x^d; a reflected product comes out
// multiplied by x once more, hence x^(d+63) and x^(d-1).
func foldPair(d int) [2]uint64 {
	return [2]uint64{operand(xPowMod(d + 63)), operand(xPowMod(d - 1))}
}

// foldConsts are the fold's operand pairs: 2048 bits (from one 256-byte
// round to the next), 512 (one accumulator into the next), and 384, 256 and
// 128 (the four lanes of the last accumulator into its last), then a zero
// pair for that last lane.
var foldConsts = func() (k [12]uint64) {
	for i, d := range []int{2048, 512, 384, 256, 128} {
		p := foldPair(d)
		k[2*i], k[2*i+1] = p[0], p[1]
	}
	return k
}()
