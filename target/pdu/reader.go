package pdu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
)

// Errors returned by Reader.
var (
	// ErrHeaderDigest means the header digest did not match; the PDU
	// boundary is no longer trustworthy and the connection must close.
	ErrHeaderDigest = errors.New("pdu: header digest mismatch")
	// ErrDataDigest means the data digest did not match; the data segment
	// was consumed, so the stream is still in sync.
	ErrDataDigest = errors.New("pdu: data digest mismatch")
	// ErrSegmentTooLong means a data segment exceeds the caller's limit.
	ErrSegmentTooLong = errors.New("pdu: data segment too long")
)

// MaxAHSLen is the largest possible AHS (TotalAHSLength is one byte of words).
const MaxAHSLen = 255 * 4

// Header is a received BHS with its AHS.
type Header struct {
	BHS
	AHS    [MaxAHSLen]byte
	AHSLen int
}

// AHSBytes returns the received AHS.
func (h *Header) AHSBytes() []byte { return h.AHS[:h.AHSLen] }

// Reader reads PDUs from a connection. Headers go through a small bufio
// buffer; data segments at least as large as that buffer are read
// straight into the caller's memory (bufio drains what it holds, then
// bypasses itself).
type Reader struct {
	br           *bufio.Reader
	HeaderDigest bool
	DataDigest   bool
	scratch      [8]byte
}

// ReaderBufSize is the bufio buffer size used by NewReader.
const ReaderBufSize = 16 << 10

// NewReader wraps r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, ReaderBufSize)}
}

// Buffered returns how many bytes are already buffered.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReadHeader reads a BHS, its AHS and the header digest (when enabled).
func (r *Reader) ReadHeader(h *Header) error {
	if _, err := io.ReadFull(r.br, h.BHS[:]); err != nil {
		return err
	}
	h.AHSLen = h.BHS.AHSLen()
	if h.AHSLen > 0 {
		if _, err := io.ReadFull(r.br, h.AHS[:h.AHSLen]); err != nil {
			return unexpected(err)
		}
	}
	if r.HeaderDigest {
		if _, err := io.ReadFull(r.br, r.scratch[:4]); err != nil {
			return unexpected(err)
		}
		c := UpdateCRC32C(0, h.BHS[:])
		if h.AHSLen > 0 {
			c = UpdateCRC32C(c, h.AHS[:h.AHSLen])
		}
		if GetDigest(r.scratch[:4]) != c {
			return ErrHeaderDigest
		}
	}
	return nil
}

// ReadData reads a data segment of len(dst) bytes into dst, then its
// padding and data digest. On ErrDataDigest the segment has been consumed.
func (r *Reader) ReadData(dst []byte) error {
	return r.ReadDataParts(dst, nil)
}

// ReadDataParts reads one data segment of len(a)+len(b) bytes into two
// destinations (used when immediate data straddles a buffer boundary).
// It is ReadData for the concatenation.
//
// With DataDigest on, the CRC is taken over each piece as it arrives, while
// the bytes the kernel just copied are still in cache, instead of in a
// second pass over the whole segment after it (which, at 256 KiB a segment,
// reads it back from memory).
func (r *Reader) ReadDataParts(a, b []byte) error {
	digest := r.DataDigest && len(a)+len(b) > 0
	var c uint32
	var err error
	if c, err = r.readFull(a, 0, digest); err != nil {
		return err
	}
	if c, err = r.readFull(b, c, digest); err != nil {
		return err
	}
	pad := PadLen(len(a) + len(b))
	n := pad
	if digest {
		n += DigestLen
	}
	if n == 0 {
		return nil
	}
	if _, err := io.ReadFull(r.br, r.scratch[:n]); err != nil {
		return unexpected(err)
	}
	if digest {
		c = UpdateCRC32C(c, r.scratch[:pad])
		if GetDigest(r.scratch[pad:n]) != c {
			return ErrDataDigest
		}
	}
	return nil
}

// readFull fills dst like io.ReadFull and, when digest is set, continues
// the CRC32C crc over every chunk right after it was read.
func (r *Reader) readFull(dst []byte, crc uint32, digest bool) (uint32, error) {
	off := 0
	for empty := 0; off < len(dst); {
		n, err := r.br.Read(dst[off:])
		if digest && n > 0 {
			crc = UpdateCRC32C(crc, dst[off:off+n])
		}
		off += n
		if off == len(dst) {
			break
		}
		if err != nil {
			return crc, unexpected(err)
		}
		if n == 0 {
			if empty++; empty > 100 {
				return crc, io.ErrNoProgress
			}
		}
	}
	return crc, nil
}

// Discard skips a data segment of n bytes with its padding and digest
// (used for PDUs whose data is not wanted, e.g. after an abort).
func (r *Reader) Discard(n int) error {
	total := n + PadLen(n)
	if r.DataDigest && n > 0 {
		total += DigestLen
	}
	if _, err := r.br.Discard(total); err != nil {
		return unexpected(err)
	}
	return nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// AppendPDU appends the wire form of one PDU to bufs: header (+ AHS is
// not supported for sending) with header digest, data, padding, data
// digest. Header bytes and digests are appended to arena, which is
// returned (grown if needed); the data slice is referenced, not copied.
// It allocates only when arena or bufs lack capacity.
func AppendPDU(bufs net.Buffers, arena []byte, h *BHS, data []byte, headerDigest, dataDigest bool) (net.Buffers, []byte) {
	var d uint32
	if dataDigest && len(data) > 0 {
		d = DataDigest(data)
	}
	return appendPDU(bufs, arena, h, data, headerDigest, dataDigest, d)
}

// AppendPDUDigested is AppendPDU with the data digest already computed
// (DataDigest(data)), e.g. by the goroutine that produced the data while
// it was still in cache.
func AppendPDUDigested(bufs net.Buffers, arena []byte, h *BHS, data []byte, headerDigest bool, digest uint32) (net.Buffers, []byte) {
	return appendPDU(bufs, arena, h, data, headerDigest, true, digest)
}

func appendPDU(bufs net.Buffers, arena []byte, h *BHS, data []byte, headerDigest, dataDigest bool, digest uint32) (net.Buffers, []byte) {
	start := len(arena)
	arena = append(arena, h[:]...)
	if headerDigest {
		// The CRC is taken over the copy in arena, not over *h: hash/crc32
		// (which crc32c.Update calls for short inputs) reaches its SSE4.2
		// code through a function variable, so a slice of *h passed to it
		// would make every caller's BHS escape to the heap (one allocation
		// per response).
		var d [4]byte
		PutDigest(d[:], CRC32C(arena[start:start+BHSLen]))
		arena = append(arena, d[:]...)
	}
	hdrEnd := len(arena)
	if len(data) == 0 {
		return append(bufs, arena[start:hdrEnd:hdrEnd]), arena
	}
	pad := PadLen(len(data))
	arena = append(arena, zeroPad[:pad]...)
	if dataDigest {
		var d [4]byte
		PutDigest(d[:], digest)
		arena = append(arena, d[:]...)
	}
	end := len(arena)
	bufs = append(bufs, arena[start:hdrEnd:hdrEnd], data)
	if end > hdrEnd {
		bufs = append(bufs, arena[hdrEnd:end:end])
	}
	return bufs, arena
}

// WireLen is the number of bytes AppendPDU produces for a PDU with n
// data bytes.
func WireLen(n int, headerDigest, dataDigest bool) int {
	l := BHSLen + n + PadLen(n)
	if headerDigest {
		l += DigestLen
	}
	if dataDigest && n > 0 {
		l += DigestLen
	}
	return l
}

// Describe renders a header for debug logs (allocates; keep off the hot path).
func Describe(h *BHS) string {
	return fmt.Sprintf("%s imm=%v flags=%#02x itt=%#x ttt=%#x sn=%d expsn=%d dlen=%d",
		h.Opcode(), h.Immediate(), h.Flags(), h.ITT(), h.TTT(), h.CmdSN(), h.ExpStatSN(), h.DataLen())
}
