package scsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

type xcopyRig struct {
	tg   *Target
	a, b *Nexus
}

func newXcopyRig(t *testing.T, bs int, size int64) *xcopyRig {
	t.Helper()
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:xcopy")
	for i := uint64(0); i < 2; i++ {
		tc.LUNs = append(tc.LUNs, &config.LUN{Number: i, Type: "fileio", IOMode: "wb", BlockSize: bs,
			Store: &config.Store{Path: "m"}})
	}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) { return backing.NewMemory(size), nil }})
	if err != nil {
		t.Fatal(err)
	}
	x := &xcopyRig{tg: tg,
		a: &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tc.Name},
		b: &Nexus{ID: 2, InitiatorName: "iqn.b", ISID: [6]byte{2}, TargetName: tc.Name}}
	for _, n := range []*Nexus{x.a, x.b} {
		tg.NexusAttach(n)
		x.exec(n, 0, cdb(0, 6), nil)
		x.exec(n, 1, cdb(0, 6), nil)
	}
	return x
}

func (x *xcopyRig) exec(n *Nexus, lun uint64, c, out []byte) Result {
	cmd := &Command{Nexus: n, LUN: lun, CDB: c, DataOut: out, ExpectedLen: uint32(max(len(out), 1<<16))}
	return x.tg.Execute(context.Background(), cmd)
}

// list builds an EXTENDED COPY of n blocks from LUN src to LUN dst.
func (x *xcopyRig) list(src, dst uint64, n uint16) ([]byte, []byte) {
	desc := func(l *lun) []byte {
		d := make([]byte, 32)
		d[0] = 0xe4
		// As libiscsi does: the highest designator type; a 24-byte T10
		// vendor ID is cut to the 20 bytes the descriptor holds.
		ds := l.luDesignators()
		des := ds[len(ds)-1]
		d[4], d[5], d[7] = 0x01, des.typ, byte(len(des.val))
		copy(d[8:28], des.val)
		binary.BigEndian.PutUint32(d[28:], uint32(l.bs))
		return d
	}
	seg := make([]byte, 28)
	seg[0] = 0x02
	binary.BigEndian.PutUint16(seg[2:], 24)
	binary.BigEndian.PutUint16(seg[6:], 1)
	binary.BigEndian.PutUint16(seg[10:], n)
	p := make([]byte, 16)
	binary.BigEndian.PutUint16(p[2:], 64)
	binary.BigEndian.PutUint32(p[8:], 28)
	p = append(p, desc(x.tg.lun(src))...)
	p = append(p, desc(x.tg.lun(dst))...)
	p = append(p, seg...)
	c := cdb(0x83, 16)
	binary.BigEndian.PutUint32(c[10:], uint32(len(p)))
	return c, p
}

func (x *xcopyRig) pr(n *Nexus, lun uint64, sa, typ byte, key, sak uint64) Result {
	c, p := prOut(sa, typ, key, sak)
	return x.exec(n, lun, c, p)
}

// EXTENDED COPY obeys the copy targets' reservations for the copy
// manager's I_T nexus: a destination reserved Exclusive Access by another
// nexus is not written, a Write Exclusive source may be read.
func TestExtendedCopyHonoursOtherLUNsReservations(t *testing.T) {
	x := newXcopyRig(t, 512, 1<<20)
	marker := bytes.Repeat([]byte{0x11}, 512)
	x.exec(x.a, 1, rw16(0x8a, 0, 1, 0), marker)
	x.exec(x.b, 0, rw16(0x8a, 0, 1, 0), bytes.Repeat([]byte{0x22}, 512))
	x.pr(x.a, 1, 0, 0, 0, 0xa)
	if r := x.pr(x.a, 1, 1, prEA, 0xa, 0); r.Status != StatusGood {
		t.Fatal(r)
	}
	c, p := x.list(0, 1, 1)
	if r := x.exec(x.b, 0, c, p); r.Status != StatusReservationConflict {
		t.Fatalf("copy into a LUN another nexus holds EA: %+v", r)
	}
	if r := x.exec(x.a, 1, rw16(0x88, 0, 1, 0), nil); !bytes.Equal(r.Data, marker) {
		t.Fatal("the destination was written through the reservation")
	}
	// Source under EA of another nexus: reading it conflicts too.
	c, p = x.list(1, 0, 1)
	if r := x.exec(x.b, 0, c, p); r.Status != StatusReservationConflict {
		t.Fatalf("copy out of a LUN another nexus holds EA: %+v", r)
	}
	// Write Exclusive allows others to read: copy from it works.
	x.pr(x.a, 1, 3, 0, 0xa, 0) // CLEAR
	x.exec(x.b, 1, cdb(0, 6), nil)
	x.pr(x.a, 1, 0, 0, 0, 0xa)
	x.pr(x.a, 1, 1, prWE, 0xa, 0)
	if r := x.exec(x.b, 0, c, p); r.Status != StatusGood {
		t.Fatalf("copy out of a Write Exclusive LUN: %+v", r)
	}
	if r := x.exec(x.b, 0, rw16(0x88, 0, 1, 0), nil); !bytes.Equal(r.Data, marker) {
		t.Fatal("copy did not happen")
	}
	// SPC-2 RESERVE of the destination by another nexus.
	x.pr(x.a, 1, 3, 0, 0xa, 0)
	x.exec(x.b, 1, cdb(0, 6), nil)
	if r := x.exec(x.a, 0, cdb(0x16, 6), nil); r.Status != StatusGood {
		t.Fatalf("RESERVE(6): %+v", r)
	}
	c, p = x.list(1, 0, 1)
	if r := x.exec(x.b, 1, c, p); r.Status != StatusReservationConflict {
		t.Fatalf("copy into a LUN RESERVEd by another nexus: %+v", r)
	}
}

// A copy target that is stopped/ejected or has a unit attention pending
// for the nexus is unreachable (COPY ABORTED); the unit attention stays
// for the nexus's next command to that unit.
func TestExtendedCopyTargetState(t *testing.T) {
	x := newXcopyRig(t, 512, 1<<20)
	x.tg.lun(1).establishUA("", ascModeParamsChanged)
	c, p := x.list(0, 1, 1)
	if r := x.exec(x.a, 0, c, p); senseKey(r) != keyCopyAborted || senseASC(r) != ascCopyTargetUnreach {
		t.Fatalf("copy with a pending UA on the destination: %+v", r)
	}
	if r := x.exec(x.a, 1, cdb(0, 6), nil); senseASC(r) != ascModeParamsChanged {
		t.Fatalf("the UA was consumed by the copy: %+v", r)
	}
	if r := x.exec(x.a, 0, c, p); r.Status != StatusGood {
		t.Fatalf("copy after the UA was reported: %+v", r)
	}
	l1 := x.tg.lun(1)
	l1.mu.Lock()
	l1.ejected = true
	l1.mu.Unlock()
	if r := x.exec(x.a, 0, c, p); senseKey(r) != keyCopyAborted {
		t.Fatalf("copy into an ejected unit: %+v", r)
	}
}

// A segment longer than the MAXIMUM SEGMENT LENGTH we advertise (32 MiB)
// is refused.
func TestExtendedCopySegmentLimit(t *testing.T) {
	x := newXcopyRig(t, 4096, 64<<20)
	c, p := x.list(0, 1, uint16(xcopyMaxSegmentBytes/4096+1))
	r := x.exec(x.a, 0, c, p)
	if senseKey(r) != keyIllegalRequest || senseASC(r) != ascInvalidFieldParam {
		t.Fatalf("segment over the limit: %+v", r)
	}
	c, p = x.list(0, 1, uint16(xcopyMaxSegmentBytes/4096))
	if r := x.exec(x.a, 0, c, p); r.Status != StatusGood {
		t.Fatalf("segment at the limit: %+v", r)
	}
}

// EXTENDED COPY within one LUN onto an overlapping range above the source
// copies as memmove: what lands is the source as it was (chunks written
// first used to be read again as source).
func TestExtendedCopyOverlappingWithinALUN(t *testing.T) {
	x := newXcopyRig(t, 512, 4<<20)
	const n = 4096 // 2 MiB: two chunks
	data := make([]byte, (n+1)*512)
	for i := range data {
		data[i] = byte(i/512*7 + i%512)
	}
	if r := x.exec(x.a, 0, rw16(0x8a, 0, n+1, 0), data); r.Status != StatusGood {
		t.Fatalf("WRITE: %+v", r)
	}
	c, p := x.list(0, 0, n)
	binary.BigEndian.PutUint64(p[len(p)-8:], 1) // destination LBA 1
	if r := x.exec(x.a, 0, c, p); r.Status != StatusGood {
		t.Fatalf("EXTENDED COPY: %+v", r)
	}
	cmd := &Command{Nexus: x.a, LUN: 0, CDB: rw16(0x88, 1, n, 0), ExpectedLen: n * 512, Read: true}
	r := x.tg.Execute(context.Background(), cmd)
	if r.Status != StatusGood {
		t.Fatalf("READ: %+v", r)
	}
	if i := firstDiff(r.Data[:n*512], data[:n*512]); i >= 0 {
		t.Fatalf("block %d after the copy differs from source block %d as it was", 1+i/512, i/512)
	}
}

// Unit attentions for registrants are queued once per condition and
// bounded (a RESERVE/RELEASE loop queued one per RELEASE, without bound).
func TestRegistrantUnitAttentionsBounded(t *testing.T) {
	x := newXcopyRig(t, 512, 1<<20)
	if r := x.pr(x.a, 0, 0, 0, 0, 1); r.Status != StatusGood { // REGISTER key 1
		t.Fatalf("REGISTER a: %+v", r)
	}
	if r := x.pr(x.b, 0, 0, 0, 0, 2); r.Status != StatusGood {
		t.Fatalf("REGISTER b: %+v", r)
	}
	for i := 0; i < 200; i++ {
		if r := x.pr(x.a, 0, 1, 5, 1, 0); r.Status != StatusGood { // RESERVE type 5
			t.Fatalf("RESERVE %d: %+v", i, r)
		}
		if r := x.pr(x.a, 0, 2, 5, 1, 0); r.Status != StatusGood { // RELEASE
			t.Fatalf("RELEASE %d: %+v", i, r)
		}
	}
	l := x.tg.lun(0)
	l.mu.Lock()
	q := append([]asc(nil), l.ua[itKey(x.b)]...)
	l.mu.Unlock()
	if len(q) != 1 || q[0] != ascReservationsReleased {
		t.Fatalf("b's unit attentions after 200 RELEASEs: %v, want one RESERVATIONS RELEASED", q)
	}
}

// A target descriptor with an LU ID TYPE other than LUN is an invalid
// field in the parameter list, pointing at its byte and top bit (it was
// reported as a field of the CDB).
func TestExtendedCopyLUIDTypeIsAParameterField(t *testing.T) {
	x := newXcopyRig(t, 512, 1<<20)
	c, p := x.list(0, 1, 1)
	p[16+32+1] |= 0x40 // second target descriptor: LU ID TYPE 01b
	r := x.exec(x.a, 0, c, p)
	// SKSV, C/D 0 (parameter list), BPV, bit 7; field pointer 49.
	want := []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x26, 0x00, 0, 0x80 | 0x08 | 0x07, 0, 16 + 32 + 1}
	if r.Status != StatusCheckCondition || len(r.Sense) < 18 || !bytes.Equal(r.Sense[:18], want) {
		t.Fatalf("LU ID TYPE 01b: status %#x sense % x, want ILLEGAL REQUEST 26/00 pointing at byte %d bit 7", r.Status, r.Sense, 16+32+1)
	}
}
