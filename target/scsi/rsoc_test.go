package scsi

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Every supported command has CDB usage data of its CDB length, with its
// operation code (and service action) in place.
func TestUsageDataTable(t *testing.T) {
	for _, d := range opTable {
		u := cdbUsage[d.op]
		if len(u) != d.cdbLen || u[0] != d.op {
			t.Errorf("%s: usage table entry % x for a %d-byte CDB", d.name, u, d.cdbLen)
		}
		got := usageData(d)
		if d.hasSA && got[1]&0x1f != byte(d.sa) {
			t.Errorf("%s: service action bits % x", d.name, got[1])
		}
		if got[len(got)-1] != 0 {
			t.Errorf("%s: CONTROL byte claims NACA/LINK support", d.name)
		}
	}
}

func rsocOne(t *testing.T, tg *Target, n *Nexus, op byte, sa uint16) []byte {
	t.Helper()
	c := cdb(0xa3, 12)
	c[1] = 0x0c
	c[2] = 1
	if sa != 0xffff {
		c[2] = 2
		binary.BigEndian.PutUint16(c[4:], sa)
	}
	c[3] = op
	binary.BigEndian.PutUint32(c[6:], 64)
	r := run(tg, n, c, nil)
	if r.Status != StatusGood || r.Data[1]&0x07 != 0x03 {
		t.Fatalf("RSOC %#x/%#x: %+v", op, sa, r)
	}
	return r.Data[4 : 4+int(binary.BigEndian.Uint16(r.Data[2:]))]
}

// The usage data mark only bits the device server examines: TEST UNIT
// READY has none, PERSISTENT RESERVE OUT looks at SCOPE/TYPE only for the
// service actions that take them, READ ignores RARC and the group.
func TestUsageDataMarksOnlyExaminedBits(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	for _, c := range []struct {
		op   byte
		sa   uint16
		want []byte
	}{
		{0x00, 0xffff, []byte{0x00, 0, 0, 0, 0, 0}},
		{0x5f, 0x01, []byte{0x5f, 0x01, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0}},
		{0x5f, 0x00, []byte{0x5f, 0x00, 0x00, 0, 0, 0xff, 0xff, 0xff, 0xff, 0}},
		{0x28, 0xffff, []byte{0x28, 0xf8, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0}},
		{0x2f, 0xffff, []byte{0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, 0}},
	} {
		if got := rsocOne(t, tg, a, c.op, c.sa); !bytes.Equal(got, c.want) {
			t.Errorf("usage of %#x/%#x: % x, want % x", c.op, c.sa, got, c.want)
		}
	}
}
