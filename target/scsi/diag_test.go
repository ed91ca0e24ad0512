package scsi

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// failingReadStore fails every read once broken is set.
type failingReadStore struct {
	backing.Store
	broken *atomic.Bool
}

func (s failingReadStore) ReadAt(p []byte, off int64) (int, error) {
	if s.broken.Load() {
		return 0, errors.Join(backing.ErrIO, errors.New("injected read error"))
	}
	return s.Store.ReadAt(p, off)
}

// SEND DIAGNOSTIC (SPC-4 6.42, mandatory): the default self-test reads the
// store and fails with HARDWARE ERROR, LOGICAL UNIT FAILED SELF-TEST when
// it cannot; no test without SELFTEST; self-test codes and parameter
// lists are refused; REPORT SUPPORTED OPERATION CODES lists it.
func TestSendDiagnostic(t *testing.T) {
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:unit")
	tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "mem"}}}
	var broken atomic.Bool
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) {
		return failingReadStore{backing.NewMemory(1 << 20), &broken}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetName: tc.Name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0x00, 6), nil) // the power-on unit attention
	diag := func(b1 byte, plen uint16) []byte {
		c := cdb(0x1d, 6)
		c[1] = b1
		putBE16(c[3:], plen)
		return c
	}
	for _, tc := range []struct {
		name  string
		cdb   []byte
		key   byte
		asc   asc
		sksAt int // byte the sense-key-specific field points at, or -1
	}{
		{"default self-test", diag(0x04, 0), keyNoSense, ascNone, -1},
		{"default self-test, DEVOFFL UNITOFFL", diag(0x07, 0), keyNoSense, ascNone, -1},
		{"no test", diag(0, 0), keyNoSense, ascNone, -1},
		{"PF, no page", diag(0x10, 0), keyNoSense, ascNone, -1},
		{"background short self-test", diag(1<<5, 0), keyIllegalRequest, ascInvalidFieldCDB, 1},
		{"foreground extended self-test", diag(6<<5, 0), keyIllegalRequest, ascInvalidFieldCDB, 1},
		{"diagnostic page", diag(0x10, 8), keyIllegalRequest, ascInvalidFieldCDB, 3},
		{"self-test with a parameter list", diag(0x04, 4), keyIllegalRequest, ascInvalidFieldCDB, 3},
	} {
		r := run(tg, a, tc.cdb, nil)
		if tc.key == keyNoSense {
			if r.Status != StatusGood {
				t.Errorf("%s: %+v", tc.name, r)
			}
			continue
		}
		if senseKey(r) != tc.key || senseASC(r) != tc.asc {
			t.Errorf("%s: sense %x/%04x, want %x/%04x", tc.name, senseKey(r), senseASC(r), tc.key, tc.asc)
			continue
		}
		if len(r.Sense) < 18 || r.Sense[15]&0x80 == 0 || int(be16(r.Sense[16:])) != tc.sksAt {
			t.Errorf("%s: field pointer %x, want byte %d", tc.name, r.Sense, tc.sksAt)
		}
	}

	broken.Store(true)
	r := run(tg, a, diag(0x04, 0), nil)
	if senseKey(r) != keyHardwareError || senseASC(r) != ascFailedSelfTest {
		t.Fatalf("self-test on an unreadable store: sense %x/%04x, want 4/3e03", senseKey(r), senseASC(r))
	}
	if r := run(tg, a, diag(0, 0), nil); r.Status != StatusGood {
		t.Fatalf("no test on an unreadable store: %+v", r)
	}
	broken.Store(false)

	rsoc := cdb(0xa3, 12)
	rsoc[1], rsoc[2], rsoc[3] = 0x0c, 1, 0x1d // one command, no service action
	putBE32(rsoc[6:], 64)
	r = run(tg, a, rsoc, nil)
	if r.Status != StatusGood || len(r.Data) < 10 || r.Data[1]&0x07 != 3 || r.Data[4] != 0x1d || r.Data[5]&0xe4 != 0xe4 {
		t.Fatalf("REPORT SUPPORTED OPERATION CODES for SEND DIAGNOSTIC: %+v", r)
	}
}
