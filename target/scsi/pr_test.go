package scsi

import (
	"encoding/binary"
	"encoding/hex"
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

// RESERVE/RELEASE(6) while persistent reservation registrations exist
// (SPC-4 5.7.3 with CRH=1): from a holder, or a registrant under a
// registrants-only/all-registrants reservation, GOOD and nothing
// changes; otherwise registrations make them conflict (SPC-2 5.5.1).
func TestReserve6WithPersistentRegistrations(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	do := func(n *Nexus, sa, typ byte, key, sak uint64) Result {
		c, p := prOut(sa, typ, key, sak)
		return run(tg, n, c, p)
	}
	reserve := func(n *Nexus) Result { return run(tg, n, cdb(0x16, 6), nil) }
	release := func(n *Nexus) Result { return run(tg, n, cdb(0x17, 6), nil) }
	do(a, 0, 0, 0, 0xa)
	for _, n := range []*Nexus{a, b} {
		if r := reserve(n); r.Status != StatusReservationConflict {
			t.Fatalf("RESERVE(6) with registrations and no reservation from %d: %+v", n.ID, r)
		}
	}
	if r := do(a, 1, prWE, 0xa, 0); r.Status != StatusGood {
		t.Fatal(r)
	}
	if r := reserve(a); r.Status != StatusGood {
		t.Fatalf("RESERVE(6) from the PR holder: %+v", r)
	}
	if r := run(tg, b, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood {
		t.Fatalf("the holder's RESERVE(6) established an SPC-2 reservation: %+v", r)
	}
	if r := release(a); r.Status != StatusGood {
		t.Fatalf("RELEASE(6) from the PR holder: %+v", r)
	}
	if typ, held := readReservation(t, tg, a); !held || typ != prWE {
		t.Fatal("RELEASE(6) released the persistent reservation")
	}
	for _, r := range []Result{reserve(b), release(b)} {
		if r.Status != StatusReservationConflict {
			t.Fatalf("RESERVE/RELEASE(6) from an unregistered nexus under PR: %+v", r)
		}
	}
	// Registrants only: a registered non-holder gets GOOD, no change.
	do(a, 2, prWE, 0xa, 0) // RELEASE
	do(b, 0, 0, 0, 0xb)
	do(a, 1, prWERO, 0xa, 0)
	if r := reserve(b); r.Status != StatusGood {
		t.Fatalf("RESERVE(6) from a registrant under WERO: %+v", r)
	}
	// No registrations left: SPC-2 rules again.
	do(a, 3, 0, 0xa, 0) // CLEAR
	run(tg, b, cdb(0, 6), nil)
	if r := reserve(b); r.Status != StatusGood {
		t.Fatalf("RESERVE(6) without registrations: %+v", r)
	}
	if r := reserve(a); r.Status != StatusReservationConflict {
		t.Fatalf("RESERVE(6) while another nexus holds it: %+v", r)
	}
	if r := release(a); r.Status != StatusGood {
		t.Fatalf("RELEASE(6) from a non-holder must be GOOD (SPC-2): %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); r.Status != StatusReservationConflict {
		t.Fatalf("a non-holder's RELEASE released b's reservation: %+v", r)
	}
}

// registerAndMove builds PERSISTENT RESERVE OUT REGISTER AND MOVE to the
// iSCSI initiator port tid ("name,i,0x<isid>" or, format 00b, a name).
func registerAndMove(key, sak uint64, unreg bool, relPort uint16, format byte, tid string) ([]byte, []byte) {
	name := append([]byte(tid), 0)
	for len(name)%4 != 0 {
		name = append(name, 0)
	}
	t := append([]byte{format<<6 | 0x05, 0, 0, byte(len(name))}, name...)
	p := make([]byte, 24, 24+len(t))
	binary.BigEndian.PutUint64(p, key)
	binary.BigEndian.PutUint64(p[8:], sak)
	if unreg {
		p[17] |= 0x02
	}
	binary.BigEndian.PutUint16(p[18:], relPort)
	binary.BigEndian.PutUint32(p[20:], uint32(len(t)))
	p = append(p, t...)
	c := cdb(0x5f, 10)
	c[1] = 0x07
	binary.BigEndian.PutUint32(c[5:], uint32(len(p)))
	return c, p
}

func portName(n *Nexus) string {
	return n.InitiatorName + ",i,0x" + hex.EncodeToString(n.ISID[:])
}

// REGISTER AND MOVE moves the reservation to another initiator on our
// (single) target port (SPC-4 5.13.8).
func TestRegisterAndMove(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	do := func(n *Nexus, sa, typ byte, key, sak uint64) Result {
		c, p := prOut(sa, typ, key, sak)
		return run(tg, n, c, p)
	}
	ram := func(n *Nexus, key, sak uint64, unreg bool, relPort uint16, format byte, tid string) Result {
		c, p := registerAndMove(key, sak, unreg, relPort, format, tid)
		return run(tg, n, c, p)
	}
	if r := ram(a, 0, 0xbb, false, 1, 1, portName(b)); r.Status != StatusReservationConflict {
		t.Fatalf("from an unregistered nexus: %+v", r)
	}
	do(a, 0, 0, 0, 0xa)
	if r := ram(a, 0xa, 0xbb, false, 1, 1, portName(b)); senseASC(r) != ascInvalidFieldCDB {
		t.Fatalf("without a reservation: %+v", r)
	}
	do(a, 1, prWE, 0xa, 0)
	for name, r := range map[string]Result{
		"service action key 0":     ram(a, 0xa, 0, false, 1, 1, portName(b)),
		"to itself":                ram(a, 0xa, 0xbb, false, 1, 1, portName(a)),
		"another target port":      ram(a, 0xa, 0xbb, false, 2, 1, portName(b)),
		"not an iSCSI TransportID": ram(a, 0xa, 0xbb, false, 1, 1, "x"),
	} {
		if senseASC(r) != ascInvalidFieldParam {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if r := ram(a, 0xa, 0xbb, false, 1, 1, portName(b)); r.Status != StatusGood {
		t.Fatalf("REGISTER AND MOVE: %+v", r)
	}
	rr := cdb(0x5e, 10)
	rr[1] = 1
	binary.BigEndian.PutUint16(rr[7:], 64)
	if r := run(tg, b, rr, nil); binary.BigEndian.Uint64(r.Data[8:]) != 0xbb || r.Data[8+13] != prWE {
		t.Fatalf("reservation after the move: % x", r.Data)
	}
	if r := run(tg, b, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusGood {
		t.Fatalf("the new holder cannot write: %+v", r)
	}
	if r := run(tg, a, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusReservationConflict {
		t.Fatalf("the old holder (still registered) may write under WE: %+v", r)
	}
	if r := ram(a, 0xa, 0xaa, false, 1, 1, portName(b)); r.Status != StatusReservationConflict {
		t.Fatalf("from a registered non-holder: %+v", r)
	}
	// Back to a, format 00b (device name: a has one session), UNREG.
	if r := ram(b, 0xbb, 0xa2, true, 1, 0, a.InitiatorName); r.Status != StatusGood {
		t.Fatalf("REGISTER AND MOVE with UNREG: %+v", r)
	}
	rk := cdb(0x5e, 10)
	binary.BigEndian.PutUint16(rk[7:], 64)
	r := run(tg, a, rk, nil)
	if binary.BigEndian.Uint32(r.Data[4:]) != 8 || binary.BigEndian.Uint64(r.Data[8:]) != 0xa2 {
		t.Fatalf("keys after the move back with UNREG: % x", r.Data)
	}
	// All-registrants reservations cannot be moved.
	do(a, 2, prWE, 0xa2, 0)
	do(a, 1, prWEAR, 0xa2, 0)
	if r := ram(a, 0xa2, 0xbb, false, 1, 1, portName(b)); r.Status != StatusReservationConflict {
		t.Fatalf("moving an all-registrants reservation: %+v", r)
	}
}

// Commands whose reservation class SPC-4 table 62 and SBC-3 table 13 set
// apart: MODE SENSE and REPORT SUPPORTED OPERATION CODES read (allowed
// under Write Exclusive, conflict under Exclusive Access), PREVENT ALLOW
// MEDIUM REMOVAL conflicts only when it prevents, START STOP UNIT is
// allowed when it starts the unit. From an unregistered nexus.
func TestReservationClassesOfNonMediumCommands(t *testing.T) {
	modeSense := cdb(0x1a, 6)
	modeSense[2], modeSense[4] = 0x3f, 0xff
	rsoc := cdb(0xa3, 12)
	rsoc[1] = 0x0c
	binary.BigEndian.PutUint32(rsoc[6:], 4096)
	prevent := func(p byte) []byte { c := cdb(0x1e, 6); c[4] = p; return c }
	startStop := func(b byte) []byte { c := cdb(0x1b, 6); c[4] = b; return c }
	for _, c := range []struct {
		name         string
		cdb          []byte
		underWE      bool // conflict under Write Exclusive
		underEA      bool // conflict under Exclusive Access
		underWERO    bool // conflict under WE Registrants Only (b unregistered)
		registeredOK bool // allowed from a registrant under EA Registrants Only
	}{
		{"MODE SENSE(6)", modeSense, false, true, false, true},
		{"REPORT SUPPORTED OPERATION CODES", rsoc, false, true, false, true},
		{"PREVENT ALLOW (allow)", prevent(0), false, false, false, true},
		{"PREVENT ALLOW (prevent)", prevent(1), true, true, true, true},
		{"START STOP UNIT (start)", startStop(0x01), false, false, false, true},
		{"START STOP UNIT (stop)", startStop(0x00), true, true, true, true},
		{"START STOP UNIT (power condition)", startStop(0x31), true, true, true, true},
	} {
		for _, r := range []struct {
			typ  byte
			want bool
		}{{prWE, c.underWE}, {prEA, c.underEA}, {prWERO, c.underWERO}} {
			tg, a, b := newTestTarget(t, nil)
			ca, pa := prOut(0, 0, 0, 0xa)
			run(tg, a, ca, pa)
			ca, pa = prOut(1, r.typ, 0xa, 0)
			if res := run(tg, a, ca, pa); res.Status != StatusGood {
				t.Fatalf("reserve type %d: %+v", r.typ, res)
			}
			run(tg, b, cdb(0, 6), nil) // take the unit attention, if any
			res := run(tg, b, c.cdb, nil)
			if got := res.Status == StatusReservationConflict; got != r.want {
				t.Errorf("%s under type %d from an unregistered nexus: conflict %v, want %v (%+v)", c.name, r.typ, got, r.want, res)
			}
		}
		tg, a, b := newTestTarget(t, nil)
		for _, n := range []struct {
			n   *Nexus
			key uint64
		}{{a, 0xa}, {b, 0xb}} {
			ca, pa := prOut(0, 0, 0, n.key)
			run(tg, n.n, ca, pa)
		}
		ca, pa := prOut(1, prEARO, 0xa, 0)
		run(tg, a, ca, pa)
		run(tg, b, cdb(0, 6), nil)
		if res := run(tg, b, c.cdb, nil); (res.Status != StatusReservationConflict) != c.registeredOK {
			t.Errorf("%s under EA Registrants Only from a registrant: %+v", c.name, res)
		}
	}
}

// A target has one target port, so REPORT CAPABILITIES says ATP_C=1 and
// a REGISTER with ALL_TG_PT=1 registers the nexus as one without it
// would (SPC-4 6.17.2: a device server without ATP_C would refuse it).
func TestRegisterAllTargetPorts(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	rc := cdb(0x5e, 10)
	rc[1] = 2
	binary.BigEndian.PutUint16(rc[7:], 8)
	if r := run(tg, a, rc, nil); r.Status != StatusGood || r.Data[2]&0x04 == 0 {
		t.Fatalf("REPORT CAPABILITIES: ATP_C not set: %+v", r)
	}
	for _, sa := range []byte{0, 6} {
		c, p := prOut(sa, 0, 0, 0xa1+uint64(sa))
		p[20] |= 0x04
		n := a
		if sa == 6 {
			n = b
		}
		if r := run(tg, n, c, p); r.Status != StatusGood {
			t.Fatalf("service action %d with ALL_TG_PT=1: %+v", sa, r)
		}
	}
	want := "00 00 00 02 00 00 00 10 00 00 00 00 00 00 00 a1 00 00 00 00 00 00 00 a7 / 00 00 00 02 00 00 00 00"
	if got := prView(t, tg, a); got != want {
		t.Fatalf("keys after ALL_TG_PT registrations:\n%s\nwant\n%s", got, want)
	}
	// The registration is the nexus's: it reserves and writes as any.
	c, p := prOut(1, prWE, 0xa1, 0)
	p[20] |= 0x04 // ignored outside REGISTER
	if r := run(tg, a, c, p); r.Status != StatusGood {
		t.Fatalf("reserve by an ALL_TG_PT registrant: %+v", r)
	}
	if r := run(tg, b, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusReservationConflict {
		t.Fatalf("b wrote under a's Write Exclusive: %+v", r)
	}
}
