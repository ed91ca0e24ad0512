//go:build linux

package e2e

import (
	"bytes"
	"testing"
)

// FuzzClientDecoder feeds arbitrary bytes to the test initiator's own PDU,
// text-key and sense decoders: whatever a broken target sends, the tests'
// client must fail cleanly, never panic. Valid PDUs must round-trip.
func FuzzClientDecoder(f *testing.F) {
	login := &pdu{data: encodeKeys([]keyValue{{"TargetName", "iqn.x"}, {"HeaderDigest", "None"}})}
	login.h[0] = opLoginResp
	f.Add(encodePDU(login, false, false), false, false)
	f.Add(encodePDU(login, true, true), true, true)
	f.Add([]byte{0x21, 0x80, 0, 0x02, 1, 0, 0, 2}, false, false)
	f.Add(bytes.Repeat([]byte{0xff}, 60), true, false)
	f.Fuzz(func(t *testing.T, b []byte, hd, dd bool) {
		p, err := readPDU(bytes.NewReader(b), hd, dd)
		if err != nil {
			return
		}
		decodeKeys(p.data)
		if len(p.data) >= 2 {
			parseSense(p.data[2:])
		}
		again, err := readPDU(bytes.NewReader(encodePDU(p, hd, dd)), hd, dd)
		if err != nil {
			t.Fatalf("re-encoded PDU does not decode: %v", err)
		}
		if again.h != p.h || !bytes.Equal(again.ahs, p.ahs) || !bytes.Equal(again.data, p.data) {
			t.Fatalf("round trip changed the PDU: %v vs %v", p, again)
		}
	})
}

// TestWireRoundTrip checks the framing against hand-computed values: a
// 5-byte data segment is padded to 8, and CRC32C of 32 zero bytes is the
// RFC 3720 B.4 test vector 0x8a9136aa (sent little-endian).
func TestWireRoundTrip(t *testing.T) {
	p := &pdu{data: []byte("hello")}
	p.h[0] = opNOPOut
	b := encodePDU(p, false, false)
	if len(b) != bhsLen+8 || b[7] != 5 {
		t.Fatalf("bad framing: len %d dsl %d", len(b), b[7])
	}
	got := encodeRaw(make([]byte, 32), nil, nil, true, false)
	if d := got[32:]; !bytes.Equal(d, []byte{0xaa, 0x36, 0x91, 0x8a}) {
		t.Fatalf("CRC32C of 32 zeros = % x, want aa 36 91 8a", d)
	}
	kvs, err := decodeKeys(encodeKeys([]keyValue{{"A", "1"}, {"B", ""}}))
	if err != nil || len(kvs) != 2 || kvs[1].k != "B" || kvs[1].v != "" {
		t.Fatalf("keys: %v %v", kvs, err)
	}
	if _, err := decodeKeys([]byte("novalue\x00")); err == nil {
		t.Fatal("key without '=' accepted")
	}
}
