package scsi

import (
	"encoding/binary"
	"testing"
)

func readReservation(t *testing.T, tg *Target, n *Nexus) (typ byte, held bool) {
	t.Helper()
	rr := cdb(0x5e, 10)
	rr[1] = 1
	binary.BigEndian.PutUint16(rr[7:], 64)
	r := run(tg, n, rr, nil)
	if r.Status != StatusGood {
		t.Fatalf("READ RESERVATION: %+v", r)
	}
	if binary.BigEndian.Uint32(r.Data[4:]) == 0 {
		return 0, false
	}
	return r.Data[8+13] & 0x0f, true
}

// PREEMPT of a registrant's key (the one that created it) in an
// all-registrants reservation removes that registration only: the
// reservation stays while registrants remain (SPC-4 5.13.11.2.5).
func TestPreemptKeepsAllRegistrantsReservation(t *testing.T) {
	for _, typ := range []byte{prWEAR, prEAAR} {
		tg, a, b := newTestTarget(t, nil)
		do := func(n *Nexus, sa, typ byte, key, sak uint64) Result {
			c, p := prOut(sa, typ, key, sak)
			return run(tg, n, c, p)
		}
		do(a, 0, 0, 0, 0xa)
		do(b, 0, 0, 0, 0xb)
		if r := do(a, 1, typ, 0xa, 0); r.Status != StatusGood {
			t.Fatalf("reserve: %+v", r)
		}
		if r := do(b, 4, typ, 0xb, 0xa); r.Status != StatusGood {
			t.Fatalf("preempt a's key: %+v", r)
		}
		if got, held := readReservation(t, tg, b); !held || got != typ {
			t.Fatalf("type %d: reservation after PREEMPT of the creator's key: held=%v type=%d", typ, held, got)
		}
		if r := run(tg, a, cdb(0, 6), nil); senseASC(r) != ascRegistrationsPreempted {
			t.Fatalf("a not told: %+v", r)
		}
		if r := run(tg, b, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusGood {
			t.Fatalf("b (a registrant, so a holder) cannot write: %+v", r)
		}
		if r := run(tg, a, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusReservationConflict {
			t.Fatalf("a (unregistered) may write under %d: %+v", typ, r)
		}
		// The last registrant leaving releases it.
		if r := do(b, 0, 0, 0xb, 0); r.Status != StatusGood {
			t.Fatalf("unregister b: %+v", r)
		}
		if _, held := readReservation(t, tg, a); held {
			t.Fatal("all-registrants reservation outlived its last registrant")
		}
	}
}
