package pdu

import (
	"encoding/binary"

	"github.com/ietgo/ietd/target/crc32c"
)

// DigestLen is the length of a header or data digest.
const DigestLen = 4

var zeroPad [4]byte

// CRC32C returns the CRC32C of p (RFC 7143 section 13.1 / RFC 3720 B.4).
func CRC32C(p []byte) uint32 { return crc32c.Checksum(p) }

// UpdateCRC32C continues a CRC32C over p.
func UpdateCRC32C(crc uint32, p []byte) uint32 { return crc32c.Update(crc, p) }

// DataDigest returns the digest of data followed by its padding.
func DataDigest(data []byte) uint32 {
	c := crc32c.Update(0, data)
	if p := PadLen(len(data)); p > 0 {
		c = crc32c.Update(c, zeroPad[:p])
	}
	return c
}

// PutDigest stores a digest in wire order (the CRC's least significant
// byte first, as RFC 3720 appendix B.4 shows).
func PutDigest(b []byte, crc uint32) { binary.LittleEndian.PutUint32(b, crc) }

// GetDigest reads a digest in wire order.
func GetDigest(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
