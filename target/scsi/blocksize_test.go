package scsi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// A LUN of 8192-byte blocks (NetBSD's iscsi-target -b 8192, and ietd.conf
// BlockSize=8192 since the migration keeps it) is served whole: READ
// CAPACITY reports the block length, a block written at LBA n is read
// back at LBA n, and a read whose transport buffer was sized for smaller
// blocks still returns every byte.
func TestBlockSize8192(t *testing.T) {
	const bs = 8192
	x := newXcopyRig(t, bs, 1<<20)
	rc := cdb(0x9e, 16)
	rc[1] = 0x10
	binary.BigEndian.PutUint32(rc[10:], 32)
	r := x.exec(x.a, 0, rc, nil)
	if r.Status != StatusGood || binary.BigEndian.Uint64(r.Data) != (1<<20)/bs-1 || binary.BigEndian.Uint32(r.Data[8:]) != bs || r.Data[13] != 0 {
		t.Fatalf("READ CAPACITY(16): status %d % x", r.Status, r.Data)
	}
	pat := bytes.Repeat([]byte("0123456789abcdef"), 2*bs/16)
	w := cdb(0x2a, 10)
	binary.BigEndian.PutUint32(w[2:], 3)
	binary.BigEndian.PutUint16(w[7:], 2)
	if r := x.exec(x.a, 0, w, pat); r.Status != StatusGood || r.XferLen != 2*bs {
		t.Fatalf("WRITE(10): %+v", r)
	}
	rd := cdb(0x28, 10)
	binary.BigEndian.PutUint32(rd[2:], 3)
	binary.BigEndian.PutUint16(rd[7:], 2)
	cmd := &Command{Nexus: x.a, LUN: 0, CDB: rd, ExpectedLen: 2 * bs, DataIn: make([]byte, 0, bs)}
	if r := x.tg.Execute(t.Context(), cmd); r.Status != StatusGood || !bytes.Equal(r.Data, pat) {
		t.Fatalf("READ(10) of LBA 3-4: status %d, %d bytes, equal %v", r.Status, len(r.Data), bytes.Equal(r.Data, pat))
	}
	binary.BigEndian.PutUint32(rd[2:], 4)
	binary.BigEndian.PutUint16(rd[7:], 1)
	if r := x.exec(x.a, 0, rd, nil); r.Status != StatusGood || !bytes.Equal(r.Data[:bs], pat[bs:]) {
		t.Fatalf("READ(10) of LBA 4: status %d", r.Status)
	}
}
