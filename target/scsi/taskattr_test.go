package scsi

import (
	"context"
	"testing"
)

// INQUIRY reports NormACA 0 and the Control mode page no ACA support: a
// command with the ACA task attribute, or a reserved one, is refused with
// INVALID FIELD IN CDB and does not run (before, it ran as SIMPLE); the
// other attributes run. Its pending unit attention stays for the next
// command.
func TestACATaskAttributeRefused(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	inq := cdb(0x12, 6)
	inq[4] = 36
	if r := run(tg, a, inq, nil); r.Status != StatusGood || r.Data[3]&0x20 != 0 {
		t.Fatalf("INQUIRY: status %d NormACA set", r.Status)
	}
	write := rw16(0x8a, 0, 1, 0)
	data := make([]byte, 512)
	data[0] = 0xaa
	tg.TaskManagement(TMFLogicalUnitReset, 0, a, nil) // a unit attention for a
	for _, attr := range []TaskAttr{ACA, 5, 6, 7} {
		cmd := &Command{Nexus: a, CDB: write, DataOut: data, ExpectedLen: 512, Write: true, Attr: attr}
		r := tg.Execute(context.Background(), cmd)
		if r.Status != StatusCheckCondition || senseKey(r) != keyIllegalRequest || senseASC(r) != ascInvalidFieldCDB {
			t.Fatalf("attribute %d: status %d sense %x/%04x, want ILLEGAL REQUEST, INVALID FIELD IN CDB", attr, r.Status, senseKey(r), senseASC(r))
		}
	}
	if r := run(tg, a, cdb(0x00, 6), nil); senseASC(r) != ascBusDeviceReset {
		t.Fatalf("the unit attention was used up by a refused command: %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood || r.Data[0] != 0 {
		t.Fatalf("a command with the ACA attribute wrote: status %d byte %#x", r.Status, r.Data[0])
	}
	for _, attr := range []TaskAttr{Untagged, Simple, Ordered, HeadOfQ} {
		cmd := &Command{Nexus: a, CDB: cdb(0x00, 6), Attr: attr}
		if r := tg.Execute(context.Background(), cmd); r.Status != StatusGood {
			t.Fatalf("TEST UNIT READY with attribute %d: %+v", attr, r)
		}
	}
}

// NACA set in the CONTROL byte without NormACA: INVALID FIELD IN CDB with
// the field pointer at the CONTROL byte, bit 2 (SAM-5 5.2); the command
// does not run.
func TestNACABitRefused(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	for _, c := range [][]byte{cdb(0x00, 6), rw16(0x8a, 0, 1, 0), cdb(0x25, 10)} {
		c = append([]byte(nil), c...)
		c[len(c)-1] |= 0x04
		data := []byte(nil)
		if c[0] == 0x8a {
			data = make([]byte, 512)
			data[0] = 0xbb
		}
		r := run(tg, a, c, data)
		if r.Status != StatusCheckCondition || senseASC(r) != ascInvalidFieldCDB || len(r.Sense) < 18 {
			t.Fatalf("op %#x with NACA: status %d sense %x", c[0], r.Status, r.Sense)
		}
		if sks := r.Sense[15:18]; sks[0] != 0xca || int(sks[1])<<8|int(sks[2]) != len(c)-1 {
			t.Fatalf("op %#x with NACA: field pointer % x, want C/D, BPV, bit 2 at byte %d", c[0], sks, len(c)-1)
		}
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood || r.Data[0] != 0 {
		t.Fatalf("the WRITE with NACA wrote: status %d byte %#x", r.Status, r.Data[0])
	}
}

// CLEAR ACA: complete (there is never an ACA to clear) on a LUN that
// exists, "LUN does not exist" on one that does not.
func TestClearACAResponse(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	if r := tg.TaskManagement(TMFClearACA, 0, a, nil); r != 0 {
		t.Fatalf("CLEAR ACA on LUN 0: %d, want 0", r)
	}
	if r := tg.TaskManagement(TMFClearACA, 5, a, nil); r != 2 {
		t.Fatalf("CLEAR ACA on a missing LUN: %d, want 2 (LUN does not exist)", r)
	}
}
