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

type recordAborter struct {
	calls []abortCall
}

type abortCall struct {
	lun     uint64
	nexuses []*Nexus
	keep    *Command
}

func (r *recordAborter) AbortTasks(lun uint64, ns []*Nexus, keep *Command) {
	r.calls = append(r.calls, abortCall{lun, ns, keep})
}

// PREEMPT AND ABORT asks the transport to abort the preempted nexuses'
// commands (not the PERSISTENT RESERVE OUT itself); PREEMPT does not.
func TestPreemptAndAbortAbortsPreemptedNexuses(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	rec := &recordAborter{}
	tg.SetTaskAborter(rec)
	do := func(n *Nexus, sa, typ byte, key, sak uint64) (Result, *Command) {
		c, p := prOut(sa, typ, key, sak)
		cmd := &Command{Nexus: n, CDB: c, DataOut: p, ExpectedLen: 24}
		return tg.Execute(t.Context(), cmd), cmd
	}
	do(a, 0, 0, 0, 0xa)
	do(b, 0, 0, 0, 0xb)
	do(a, 1, prWE, 0xa, 0)
	if r, _ := do(b, 4, prWE, 0xb, 0xa); r.Status != StatusGood || len(rec.calls) != 0 {
		t.Fatalf("PREEMPT: %+v, aborter called %d times", r, len(rec.calls))
	}
	run(tg, a, cdb(0, 6), nil) // REGISTRATIONS PREEMPTED
	do(a, 0, 0, 0, 0xa)        // a registers again
	r, cmd := do(b, 5, prEA, 0xb, 0xa)
	if r.Status != StatusGood || len(rec.calls) != 1 {
		t.Fatalf("PREEMPT AND ABORT: %+v, aborter called %d times", r, len(rec.calls))
	}
	if c := rec.calls[0]; c.lun != 0 || len(c.nexuses) != 1 || c.nexuses[0] != a || c.keep != cmd {
		t.Fatalf("aborted %+v, want a's commands on LUN 0 except the PR OUT", c)
	}
	// All-registrants, key 0: every registered nexus, the issuer's other
	// commands included.
	do(b, 3, 0, 0xb, 0) // CLEAR
	run(tg, a, cdb(0, 6), nil)
	do(a, 0, 0, 0, 0xa)
	do(b, 0, 0, 0, 0xb)
	do(a, 1, prEAAR, 0xa, 0)
	rec.calls = nil
	if r, _ := do(b, 5, prEAAR, 0xb, 0); r.Status != StatusGood || len(rec.calls) != 1 || len(rec.calls[0].nexuses) != 2 {
		t.Fatalf("PREEMPT AND ABORT of an all-registrants reservation: %+v %+v", r, rec.calls)
	}
}
