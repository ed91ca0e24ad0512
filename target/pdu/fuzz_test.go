package pdu

import (
	"bytes"
	"testing"
)

// FuzzPDU feeds arbitrary bytes to the reader: it must never panic, and a
// PDU it accepts must re-encode to the same header.
func FuzzPDU(f *testing.F) {
	f.Add(buildPDU(f, OpSCSICmd, []byte("abc"), false, false), false, false)
	f.Add(buildPDU(f, OpDataOut, make([]byte, 9), true, true), true, true)
	f.Add(buildPDU(f, OpNOPOut, nil, true, false), true, false)
	f.Add([]byte{0x01, 0x80, 0, 0, 3, 0, 0, 1}, false, false)
	f.Fuzz(func(t *testing.T, wire []byte, hd, dd bool) {
		r := NewReader(bytes.NewReader(wire))
		r.HeaderDigest, r.DataDigest = hd, dd
		var h Header
		for i := 0; i < 4; i++ {
			if err := r.ReadHeader(&h); err != nil {
				return
			}
			n := h.DataLen()
			if n > 1<<20 {
				if err := r.Discard(n); err != nil {
					return
				}
				continue
			}
			data := make([]byte, n)
			if err := r.ReadData(data); err != nil {
				return
			}
			if h.AHSLen == 0 {
				bufs, _ := AppendPDU(nil, nil, &h.BHS, data, hd, dd)
				if !bytes.Equal(bufs[0][:BHSLen], h.BHS[:]) {
					t.Fatal("re-encoded header differs")
				}
			}
		}
	})
}

// FuzzDecodeBHS checks the header accessors on arbitrary headers.
func FuzzDecodeBHS(f *testing.F) {
	f.Add(make([]byte, BHSLen))
	f.Add(bytes.Repeat([]byte{0xff}, BHSLen))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < BHSLen {
			return
		}
		var h BHS
		copy(h[:], b)
		_ = Describe(&h)
		if h.DataLen() >= 1<<24 || h.AHSLen() > MaxAHSLen {
			t.Fatal("field out of range")
		}
		n := h.DataLen()
		h.SetDataLen(n)
		if h.DataLen() != n || h.AHSLen() != 0 {
			t.Fatal("SetDataLen round trip")
		}
		_ = DecodeLUN(h.LUNField())
	})
}
