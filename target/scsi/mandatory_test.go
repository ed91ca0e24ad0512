package scsi

import (
	"bytes"
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

// FORMAT UNIT (SBC-3 5.3, mandatory) completes at once without changing
// the data, with the default parameters or a parameter list header that
// asks for nothing a virtual disk lacks; protection information, defect
// lists and initialization patterns are refused with a field pointer; a
// write-protected LUN refuses it.
func TestFormatUnit(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	want := bytes.Repeat([]byte{0x5a}, 512)
	if r := run(tg, a, rw16(0x8a, 7, 1, 0), want); r.Status != StatusGood {
		t.Fatalf("write: %+v", r)
	}
	format := func(b1 byte) []byte {
		c := cdb(0x04, 6)
		c[1] = b1
		return c
	}
	const fmtdata, longlist = 0x10, 0x20
	for _, tc := range []struct {
		name   string
		cdb    []byte
		param  []byte
		asc    asc // ascNone: good
		isCDB  bool
		sksAt  int
		sksBit int // -1: no bit pointer
	}{
		{"default parameters", format(0), nil, ascNone, false, 0, -1},
		{"default parameters, CMPLST and a defect list format", format(0x0d), nil, ascNone, false, 0, -1},
		{"short header, IMMED", format(fmtdata), []byte{0, 0x02, 0, 0}, ascNone, false, 0, -1},
		{"short header, FOV DCRT", format(fmtdata), []byte{0, 0xa0, 0, 0}, ascNone, false, 0, -1},
		{"long header", format(fmtdata | longlist), []byte{0, 0x02, 0, 0, 0, 0, 0, 0}, ascNone, false, 0, -1},
		{"FMTPINFO", format(0x40), nil, ascInvalidFieldCDB, true, 1, 7},
		{"protection field usage", format(fmtdata), []byte{0x01, 0, 0, 0}, ascInvalidFieldParam, false, 0, 2},
		{"initialization pattern", format(fmtdata), []byte{0, 0x08, 0, 4, 0, 0, 0, 0}, ascInvalidFieldParam, false, 1, 3},
		{"P_I_INFORMATION", format(fmtdata | longlist), []byte{0, 0, 0, 0x10, 0, 0, 0, 0}, ascInvalidFieldParam, false, 3, 7},
		{"short defect list", format(fmtdata), []byte{0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0}, ascInvalidFieldParam, false, 2, -1},
		{"long defect list", format(fmtdata | longlist), []byte{0, 0, 0, 0, 0, 0, 0, 8}, ascInvalidFieldParam, false, 4, -1},
		{"header cut short", format(fmtdata), []byte{0, 0}, ascParamListLength, false, -1, -1},
	} {
		r := run(tg, a, tc.cdb, tc.param)
		if tc.asc == ascNone {
			if r.Status != StatusGood {
				t.Errorf("%s: %+v", tc.name, r)
			}
			continue
		}
		if senseKey(r) != keyIllegalRequest || senseASC(r) != tc.asc {
			t.Errorf("%s: sense %x/%04x, want 5/%04x", tc.name, senseKey(r), senseASC(r), tc.asc)
			continue
		}
		if tc.sksAt < 0 {
			continue
		}
		sks := r.Sense[15:18]
		wantFlags := byte(0x80)
		if tc.isCDB {
			wantFlags |= 0x40
		}
		if tc.sksBit >= 0 {
			wantFlags |= 0x08 | byte(tc.sksBit)
		}
		if sks[0] != wantFlags || int(be16(sks[1:])) != tc.sksAt {
			t.Errorf("%s: sense-key specific % x, want %02x and byte %d", tc.name, sks, wantFlags, tc.sksAt)
		}
	}
	if r := run(tg, a, rw16(0x88, 7, 1, 0), nil); r.Status != StatusGood || !bytes.Equal(r.Data, want) {
		t.Fatalf("data after FORMAT UNIT: %+v", r)
	}

	ro, b, _ := newTestTarget(t, func(lc *config.LUN) { lc.IOMode = "ro" })
	if r := run(ro, b, format(0), nil); senseKey(r) != keyDataProtect || senseASC(r) != ascWriteProtected {
		t.Fatalf("FORMAT UNIT on a read-only LUN: sense %x/%04x, want 7/2700", senseKey(r), senseASC(r))
	}
}

// LOG SENSE serves the supported pages list, a Temperature page saying
// "not available" and an Informational Exceptions page with no exception;
// other pages, subpages, SP and a parameter pointer past the end are
// invalid fields; the allocation length truncates.
func TestLogSense(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	logSense := func(b1, page, sub byte, ptr, alloc uint16) []byte {
		c := cdb(0x4d, 10)
		c[1], c[2], c[3] = b1, page, sub
		putBE16(c[5:], ptr)
		putBE16(c[7:], alloc)
		return c
	}
	for _, tc := range []struct {
		name string
		cdb  []byte
		want []byte
	}{
		{"supported pages", logSense(0, 0x00, 0, 0, 512), []byte{0x00, 0, 0, 3, 0x00, 0x0d, 0x2f}},
		{"temperature", logSense(0, 0x0d, 0, 0, 512), []byte{0x0d, 0, 0, 12, 0, 0, 3, 2, 0, 0xff, 0, 1, 3, 2, 0, 0xff}},
		{"temperature, cumulative page control", logSense(0, 0x40|0x0d, 0, 0, 512), []byte{0x0d, 0, 0, 12, 0, 0, 3, 2, 0, 0xff, 0, 1, 3, 2, 0, 0xff}},
		{"temperature from parameter 1", logSense(0, 0x0d, 0, 1, 512), []byte{0x0d, 0, 0, 6, 0, 1, 3, 2, 0, 0xff}},
		{"informational exceptions", logSense(0, 0x2f, 0, 0, 512), []byte{0x2f, 0, 0, 7, 0, 0, 3, 3, 0, 0, 0xff}},
		{"truncated", logSense(0, 0x00, 0, 0, 4), []byte{0x00, 0, 0, 3}},
	} {
		r := run(tg, a, tc.cdb, nil)
		if r.Status != StatusGood || !bytes.Equal(r.Data, tc.want) {
			t.Errorf("%s: %+v, want data % x", tc.name, r, tc.want)
		}
	}
	for _, tc := range []struct {
		name  string
		cdb   []byte
		sksAt int
	}{
		{"unknown page", logSense(0, 0x02, 0, 0, 512), 2},
		{"subpage", logSense(0, 0x0d, 1, 0, 512), 3},
		{"SP", logSense(0x01, 0x0d, 0, 0, 512), 1},
		{"pointer past the last parameter", logSense(0, 0x0d, 0, 2, 512), 5},
		{"pointer on the supported pages", logSense(0, 0x00, 0, 1, 512), 5},
	} {
		r := run(tg, a, tc.cdb, nil)
		if senseKey(r) != keyIllegalRequest || senseASC(r) != ascInvalidFieldCDB || int(be16(r.Sense[16:])) != tc.sksAt {
			t.Errorf("%s: sense %x, want INVALID FIELD IN CDB at byte %d", tc.name, r.Sense, tc.sksAt)
		}
	}
}
