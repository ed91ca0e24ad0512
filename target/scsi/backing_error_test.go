package scsi

import (
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// Backing store failures reach the initiator as the right CHECK
// CONDITION: EIO on read is MEDIUM ERROR / UNRECOVERED READ ERROR, EIO on
// write MEDIUM ERROR / WRITE ERROR, ENOSPC DATA PROTECT / SPACE
// ALLOCATION FAILED WRITE PROTECT; the rest of the LUN and the other LUN
// keep working.
func TestBackingErrorsMapToSense(t *testing.T) {
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:faults")
	tc.LUNs = []*config.LUN{
		{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "faulty"}},
		{Number: 1, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "good"}},
	}
	faulty := backing.NewFaulty(backing.NewMemory(1 << 20))
	faulty.FailEIO(100*512, 8*512)
	faulty.FailENOSPC(200*512, 8*512)
	tg, err := NewTarget(tc, Options{OpenStore: func(l *config.LUN) (backing.Store, error) {
		if l.Number == 0 {
			return faulty, nil
		}
		return backing.NewMemory(1 << 20), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetName: tc.Name}
	tg.NexusAttach(n)
	exec := func(lun uint64, c []byte, out []byte) Result {
		cmd := &Command{Nexus: n, LUN: lun, CDB: c, DataOut: out, ExpectedLen: uint32(len(out))}
		if out == nil {
			cmd.ExpectedLen = 1 << 20
			cmd.DataIn = make([]byte, 1<<20)
		}
		return tg.Execute(t.Context(), cmd)
	}
	for _, lun := range []uint64{0, 1} { // power-on unit attentions
		exec(lun, cdb(0x00, 6), nil)
	}
	block := make([]byte, 512)
	cases := []struct {
		name string
		lun  uint64
		cdb  []byte
		out  []byte
		key  byte
		asc  asc
	}{
		{"read EIO", 0, rw16(0x88, 100, 1, 0), nil, keyMediumError, ascUnrecoveredReadError},
		{"write EIO", 0, rw16(0x8a, 104, 1, 0), block, keyMediumError, ascWriteError},
		{"write ENOSPC", 0, rw16(0x8a, 200, 1, 0), block, keyDataProtect, ascSpaceAllocFailedWP},
		{"read beside the fault", 0, rw16(0x88, 0, 8, 0), nil, 0, 0},
		{"write beside the fault", 0, rw16(0x8a, 300, 1, 0), block, 0, 0},
		{"other LUN read", 1, rw16(0x88, 100, 1, 0), nil, 0, 0},
		{"other LUN write", 1, rw16(0x8a, 200, 1, 0), block, 0, 0},
	}
	for _, c := range cases {
		r := exec(c.lun, c.cdb, c.out)
		if c.key == 0 {
			if r.Status != StatusGood {
				t.Errorf("%s: status %#x sense % x, want GOOD", c.name, r.Status, r.Sense)
			}
			continue
		}
		if r.Status != StatusCheckCondition || senseKey(r) != c.key || senseASC(r) != c.asc {
			t.Errorf("%s: status %#x key %#x asc %04x, want CHECK CONDITION %#x/%04x",
				c.name, r.Status, senseKey(r), uint16(senseASC(r)), c.key, uint16(c.asc))
		}
	}
	if got := faulty.Counts(); got == (backing.FaultCounts{}) {
		t.Error("no fault was injected: the test proved nothing")
	}
}

// A RAID1 LUN that runs out of space on both legs answers DATA PROTECT /
// SPACE ALLOCATION FAILED and stays a healthy mirror (StoreHealth), where
// it used to fail both members and with them the LUN.
func TestMirrorDiskFullIsDataProtect(t *testing.T) {
	a, b := backing.NewFaulty(backing.NewMemory(1<<20)), backing.NewFaulty(backing.NewMemory(1<<20))
	a.FailENOSPC(100*512, 512)
	b.FailENOSPC(100*512, 512)
	m := backing.NewMirror(nil, backing.MirrorMember{Name: "ext0", Store: a}, backing.MirrorMember{Name: "ext1", Store: b})
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:raid1")
	tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "m"}}}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) { return m, nil }})
	if err != nil {
		t.Fatal(err)
	}
	n := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tc.Name}
	tg.NexusAttach(n)
	run(tg, n, cdb(0, 6), nil)
	r := run(tg, n, rw16(0x8a, 100, 1, 0), make([]byte, 512))
	if senseKey(r) != keyDataProtect || senseASC(r) != ascSpaceAllocFailedWP {
		t.Fatalf("write on full legs: %+v", r)
	}
	if r := run(tg, n, rw16(0x88, 0, 8, 0), nil); r.Status != StatusGood {
		t.Fatalf("read after disk full: %+v", r)
	}
	h := tg.StoreHealth(0)
	if len(h) != 1 || len(h[0]) != 2 || h[0][0].Failed || h[0][1].Failed {
		t.Fatalf("StoreHealth after disk full: %+v", h)
	}
	if tg.StoreHealth(7) != nil {
		t.Fatal("StoreHealth of a missing LUN")
	}
}
