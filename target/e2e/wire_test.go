//go:build linux

package e2e

// An independent implementation of the iSCSI PDU framing (RFC 7143
// section 11): basic header segment, AHS, digests and padding. It does not
// import target/pdu on purpose.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Opcodes (RFC 7143 section 11.1.1).
const (
	opNOPOut      = 0x00
	opSCSICmd     = 0x01
	opTMFReq      = 0x02
	opLoginReq    = 0x03
	opTextReq     = 0x04
	opDataOut     = 0x05
	opLogoutReq   = 0x06
	opSNACKReq    = 0x10
	opNOPIn       = 0x20
	opSCSIResp    = 0x21
	opTMFResp     = 0x22
	opLoginResp   = 0x23
	opTextResp    = 0x24
	opDataIn      = 0x25
	opLogoutResp  = 0x26
	opR2T         = 0x31
	opAsyncMsg    = 0x32
	opReject      = 0x3f
	opImmediate   = 0x40
	bhsLen        = 48
	noTag         = 0xffffffff
	maxReadDSL    = 1 << 24 // our own bound on what we accept from a target
	flagFinal     = 0x80
	flagRead      = 0x40
	flagWrite     = 0x20
	taskSimple    = 0x01
	loginTransit  = 0x80
	loginContinue = 0x40
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bhs is one basic header segment with field accessors.
type bhs [bhsLen]byte

func (b *bhs) opcode() byte            { return b[0] & 0x3f }
func (b *bhs) immediate() bool         { return b[0]&opImmediate != 0 }
func (b *bhs) flags() byte             { return b[1] }
func (b *bhs) ahsWords() int           { return int(b[4]) }
func (b *bhs) dataLen() int            { return int(b[5])<<16 | int(b[6])<<8 | int(b[7]) }
func (b *bhs) u32(off int) uint32      { return binary.BigEndian.Uint32(b[off:]) }
func (b *bhs) itt() uint32             { return b.u32(16) }
func (b *bhs) put32(off int, v uint32) { binary.BigEndian.PutUint32(b[off:], v) }
func (b *bhs) setDataLen(n int) {
	b[5], b[6], b[7] = byte(n>>16), byte(n>>8), byte(n)
}
func (b *bhs) setLUN(lun uint64) {
	// Peripheral device addressing for LUN < 256, flat space above.
	var v uint64
	if lun < 256 {
		v = lun << 48
	} else {
		v = (0x4000 | (lun & 0x3fff)) << 48
	}
	binary.BigEndian.PutUint64(b[8:], v)
}

// pdu is one PDU: header, optional AHS and data (unpadded).
type pdu struct {
	h    bhs
	ahs  []byte
	data []byte
}

func (p *pdu) String() string {
	return fmt.Sprintf("op=%#x flags=%#x itt=%#x dsl=%d", p.h.opcode(), p.h.flags(), p.h.itt(), len(p.data))
}

func pad4(n int) int { return (4 - n%4) % 4 }

// encodePDU renders p (the data length field is set from p.data, the AHS
// length from p.ahs) with the digests asked for.
func encodePDU(p *pdu, headerDigest, dataDigest bool) []byte {
	h := p.h
	h[4] = byte(len(p.ahs) / 4)
	h.setDataLen(len(p.data))
	return encodeRaw(h[:], p.ahs, p.data, headerDigest, dataDigest)
}

// encodeRaw renders a header exactly as given (for lies about lengths).
func encodeRaw(h, ahs, data []byte, headerDigest, dataDigest bool) []byte {
	var buf bytes.Buffer
	buf.Write(h)
	buf.Write(ahs)
	if headerDigest {
		buf.Write(le32(crc32.Checksum(buf.Bytes(), castagnoli)))
	}
	if len(data) > 0 {
		start := buf.Len()
		buf.Write(data)
		buf.Write(make([]byte, pad4(len(data))))
		if dataDigest {
			buf.Write(le32(crc32.Checksum(buf.Bytes()[start:], castagnoli)))
		}
	}
	return buf.Bytes()
}

func le32(v uint32) []byte {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	return b[:]
}

var errDigest = errors.New("digest mismatch")

// readPDU reads one PDU from r, checking digests when they are on.
func readPDU(r io.Reader, headerDigest, dataDigest bool) (*pdu, error) {
	p := &pdu{}
	if _, err := io.ReadFull(r, p.h[:]); err != nil {
		return nil, err
	}
	if n := p.h.ahsWords() * 4; n > 0 {
		p.ahs = make([]byte, n)
		if _, err := io.ReadFull(r, p.ahs); err != nil {
			return nil, err
		}
	}
	if headerDigest {
		var d [4]byte
		if _, err := io.ReadFull(r, d[:]); err != nil {
			return nil, err
		}
		c := crc32.Update(crc32.Checksum(p.h[:], castagnoli), castagnoli, p.ahs)
		if binary.LittleEndian.Uint32(d[:]) != c {
			return nil, fmt.Errorf("header %w", errDigest)
		}
	}
	n := p.h.dataLen()
	if n > maxReadDSL {
		return nil, fmt.Errorf("data segment length %d too large", n)
	}
	if n > 0 {
		buf := make([]byte, n+pad4(n))
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		if dataDigest {
			var d [4]byte
			if _, err := io.ReadFull(r, d[:]); err != nil {
				return nil, err
			}
			if binary.LittleEndian.Uint32(d[:]) != crc32.Checksum(buf, castagnoli) {
				return nil, fmt.Errorf("data %w", errDigest)
			}
		}
		p.data = buf[:n]
	}
	return p, nil
}

// keyValue is one text key=value pair in order.
type keyValue struct{ k, v string }

// encodeKeys renders key=value pairs, each NUL-terminated.
func encodeKeys(kvs []keyValue) []byte {
	var b bytes.Buffer
	for _, kv := range kvs {
		b.WriteString(kv.k)
		b.WriteByte('=')
		b.WriteString(kv.v)
		b.WriteByte(0)
	}
	return b.Bytes()
}

// decodeKeys parses NUL-separated key=value text; a pair without '=' is an
// error (RFC 7143 section 6.1).
func decodeKeys(data []byte) ([]keyValue, error) {
	var out []keyValue
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		var item []byte
		if i < 0 {
			item, data = data, nil
		} else {
			item, data = data[:i], data[i+1:]
		}
		if len(item) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(item), "=")
		if !ok {
			return out, fmt.Errorf("text item %q has no '='", item)
		}
		out = append(out, keyValue{k, v})
	}
	return out, nil
}

func lookupKey(kvs []keyValue, k string) (string, bool) {
	for _, kv := range kvs {
		if kv.k == k {
			return kv.v, true
		}
	}
	return "", false
}

// senseInfo is the decoded part of fixed or descriptor sense data.
type senseInfo struct {
	key, asc, ascq byte
}

func (s senseInfo) String() string {
	return fmt.Sprintf("sense key %#x asc/ascq %#02x/%#02x", s.key, s.asc, s.ascq)
}

// parseSense decodes sense data (without the 2-byte SenseLength prefix).
func parseSense(b []byte) (senseInfo, bool) {
	if len(b) < 1 {
		return senseInfo{}, false
	}
	switch b[0] & 0x7f {
	case 0x70, 0x71:
		if len(b) < 14 {
			return senseInfo{}, false
		}
		return senseInfo{key: b[2] & 0x0f, asc: b[12], ascq: b[13]}, true
	case 0x72, 0x73:
		if len(b) < 4 {
			return senseInfo{}, false
		}
		return senseInfo{key: b[1] & 0x0f, asc: b[2], ascq: b[3]}, true
	}
	return senseInfo{}, false
}
