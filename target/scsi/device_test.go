package scsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// newTestTarget builds a target with one 1 MiB memory LUN (thin).
func newTestTarget(t testing.TB, mutate func(*config.LUN)) (*Target, *Nexus, *Nexus) {
	t.Helper()
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:unit")
	lc := &config.LUN{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "mem"}}
	if mutate != nil {
		mutate(lc)
	}
	tc.LUNs = []*config.LUN{lc}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) {
		return backing.NewMemory(1 << 20), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetName: tc.Name}
	b := &Nexus{ID: 2, InitiatorName: "iqn.b", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}, TargetName: tc.Name}
	tg.NexusAttach(a)
	tg.NexusAttach(b)
	// Consume the power-on unit attentions.
	for _, n := range []*Nexus{a, b} {
		if r := run(tg, n, cdb(0x00, 6), nil); r.Status != StatusCheckCondition || senseKey(r) != keyUnitAttention {
			t.Fatalf("first command must report power-on UA, got %+v", r)
		}
	}
	return tg, a, b
}

func cdb(op byte, n int) []byte {
	c := make([]byte, n)
	c[0] = op
	return c
}

func run(tg *Target, n *Nexus, c []byte, out []byte) Result {
	cmd := &Command{Nexus: n, CDB: c, DataOut: out, ExpectedLen: uint32(len(out))}
	if len(out) == 0 {
		cmd.ExpectedLen = 1 << 20
	}
	return tg.Execute(context.Background(), cmd)
}

func senseKey(r Result) byte {
	if len(r.Sense) == 0 {
		return 0xff
	}
	if r.Sense[0]&0x7f == 0x72 {
		return r.Sense[1] & 0x0f
	}
	return r.Sense[2] & 0x0f
}

func senseASC(r Result) asc {
	if len(r.Sense) >= 4 && r.Sense[0]&0x7f == 0x72 {
		return asc(r.Sense[2])<<8 | asc(r.Sense[3])
	}
	if len(r.Sense) < 14 {
		return 0xffff
	}
	return asc(r.Sense[12])<<8 | asc(r.Sense[13])
}

func rw16(op byte, lba uint64, n uint32, flags byte) []byte {
	c := cdb(op, 16)
	c[1] = flags
	binary.BigEndian.PutUint64(c[2:], lba)
	binary.BigEndian.PutUint32(c[10:], n)
	return c
}

func TestSenseEncoding(t *testing.T) {
	s := invalidCDB(2, 5)
	f := s.encode(false)
	if f[0] != 0x70 || f[2] != keyIllegalRequest || f[7] != 10 || f[12] != 0x24 || f[13] != 0 {
		t.Fatalf("fixed sense % x", f)
	}
	if f[15] != 0x80|0x40|0x08|5 || binary.BigEndian.Uint16(f[16:]) != 2 {
		t.Fatalf("field pointer % x", f[15:18])
	}
	d := senseData{key: keyMiscompare, asc: ascMiscompareVerify, info: 27, hasInfo: true}.encode(true)
	if d[0] != 0x72 || d[1] != keyMiscompare || d[2] != 0x1d || d[7] != 12 || d[8] != 0 || binary.BigEndian.Uint64(d[12:]) != 27 {
		t.Fatalf("descriptor sense % x", d)
	}
}

func TestDecodeRW(t *testing.T) {
	c6 := []byte{0x08, 0x1f, 0xff, 0xff, 0x00, 0}
	if a := decodeRW(c6); a.lba != 0x1fffff || a.n != 0 {
		t.Fatalf("READ(6): %+v", a)
	}
	c10 := []byte{0x28, 0x08, 0, 0, 1, 0, 0, 0, 8, 0}
	if a := decodeRW(c10); a.lba != 256 || a.n != 8 || a.b1 != 0x08 {
		t.Fatalf("READ(10): %+v", a)
	}
	if a := decodeRW(rw16(0x88, 1<<40, 7, 0)); a.lba != 1<<40 || a.n != 7 {
		t.Fatalf("READ(16): %+v", a)
	}
	for op, want := range map[byte]int{0x08: 6, 0x28: 10, 0x5e: 10, 0xa8: 12, 0x88: 16} {
		if cdbLenOf(op) != want {
			t.Errorf("cdbLenOf(%#x) = %d", op, cdbLenOf(op))
		}
	}
}

func TestReadWriteBoundsAndFUA(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	data := bytes.Repeat([]byte{0xab}, 4096)
	if r := run(tg, a, rw16(0x8a, 10, 8, 0x08), data); r.Status != StatusGood {
		t.Fatalf("WRITE(16) FUA: %+v", r)
	}
	r := run(tg, a, rw16(0x88, 10, 8, 0), nil)
	if r.Status != StatusGood || !bytes.Equal(r.Data, data) {
		t.Fatalf("READ(16) returned %d bytes status %d", len(r.Data), r.Status)
	}
	// 1 MiB = 2048 blocks: LBA 2047 + 2 blocks is out of range.
	if r := run(tg, a, rw16(0x88, 2047, 2, 0), nil); senseASC(r) != ascLBAOutOfRange {
		t.Fatalf("beyond end: %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0x20), nil); senseASC(r) != ascInvalidFieldCDB {
		t.Fatalf("RDPROTECT must be refused: %+v", r)
	}
	// Residual truncation: 2 blocks announced, 1 sent.
	if r := run(tg, a, rw16(0x8a, 0, 2, 0), data[:512]); r.Status != StatusGood || r.XferLen != 1024 {
		t.Fatalf("short Data-Out: %+v", r)
	}
}

func TestCompareAndWriteAndVerify(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	old := bytes.Repeat([]byte{'A'}, 512)
	run(tg, a, rw16(0x8a, 5, 1, 0), old)
	caw := cdb(0x89, 16)
	binary.BigEndian.PutUint64(caw[2:], 5)
	caw[13] = 1
	newData := bytes.Repeat([]byte{'B'}, 512)
	if r := run(tg, a, caw, append(append([]byte{}, old...), newData...)); r.Status != StatusGood {
		t.Fatalf("CAW match: %+v", r)
	}
	bad := append([]byte{}, old...)
	bad[27] = 'C'
	r := run(tg, a, caw, append(bad, newData...))
	if senseKey(r) != keyMiscompare {
		t.Fatalf("CAW mismatch: %+v", r)
	}
	// INFORMATION = offset of the first differing byte (B vs A at 0).
	if binary.BigEndian.Uint32(r.Sense[3:]) != 0 {
		t.Fatalf("miscompare offset %d", binary.BigEndian.Uint32(r.Sense[3:]))
	}
	v := rw16(0x8f, 5, 1, 0x02) // VERIFY(16) BYTCHK=01
	if r := run(tg, a, v, newData); r.Status != StatusGood {
		t.Fatalf("VERIFY equal: %+v", r)
	}
	if r := run(tg, a, v, old); senseKey(r) != keyMiscompare {
		t.Fatalf("VERIFY different: %+v", r)
	}
	// WRITE AND VERIFY(16): BYTCHK 01b compares what it wrote; 10b and 11b
	// are reserved and write nothing.
	if r := run(tg, a, rw16(0x8e, 6, 1, 0x02), old); r.Status != StatusGood {
		t.Fatalf("WRITE AND VERIFY BYTCHK=01: %+v", r)
	}
	for _, flags := range []byte{0x04, 0x06} {
		r := run(tg, a, rw16(0x8e, 7, 1, flags), newData)
		if senseKey(r) != keyIllegalRequest || senseASC(r) != ascInvalidFieldCDB {
			t.Fatalf("WRITE AND VERIFY byte 1 %#x: %+v, want INVALID FIELD IN CDB", flags, r)
		}
	}
	got := make([]byte, 512)
	if r := run(tg, a, rw16(0x88, 7, 1, 0), nil); r.Status != StatusGood || len(r.Data) < 512 {
		t.Fatalf("READ(16) LBA 7: %+v", r)
	} else if copy(got, r.Data); bytes.Equal(got, newData) {
		t.Fatal("WRITE AND VERIFY with a reserved BYTCHK wrote its data")
	}
}

func TestUnitAttentionsAndReservations(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	// RESERVE(6) by a: b conflicts on I/O, INQUIRY still works.
	if r := run(tg, a, cdb(0x16, 6), nil); r.Status != StatusGood {
		t.Fatalf("RESERVE: %+v", r)
	}
	if r := run(tg, b, rw16(0x88, 0, 1, 0), nil); r.Status != StatusReservationConflict {
		t.Fatalf("b read under a's reservation: %+v", r)
	}
	inq := cdb(0x12, 6)
	inq[4] = 96
	if r := run(tg, b, inq, nil); r.Status != StatusGood {
		t.Fatalf("INQUIRY under reservation: %+v", r)
	}
	// Session loss releases it.
	tg.NexusDetach(a)
	if r := run(tg, b, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood {
		t.Fatalf("after a left: %+v", r)
	}
	// LU reset by b: every nexus, b's included, gets a UA.
	tg.NexusAttach(a)
	run(tg, a, cdb(0x00, 6), nil) // power-on UA
	if resp := tg.TaskManagement(TMFLogicalUnitReset, 0, b, nil); resp != 0 {
		t.Fatalf("LU reset response %d", resp)
	}
	if r := run(tg, a, cdb(0x00, 6), nil); senseASC(r) != ascBusDeviceReset {
		t.Fatalf("a after reset: %+v", r)
	}
	if r := run(tg, b, cdb(0x00, 6), nil); senseASC(r) != ascBusDeviceReset {
		t.Fatalf("issuer after reset: %+v", r)
	}
	if tg.TaskManagement(TMFLogicalUnitReset, 9, b, nil) != 2 {
		t.Fatal("reset of a missing LUN must answer 'LUN does not exist'")
	}
}

func prOut(sa, typ byte, key, sakey uint64) ([]byte, []byte) {
	c := cdb(0x5f, 10)
	c[1] = sa
	c[2] = typ
	binary.BigEndian.PutUint32(c[5:], 24)
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p, key)
	binary.BigEndian.PutUint64(p[8:], sakey)
	return c, p
}

func TestPersistentReservations(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	do := func(n *Nexus, sa, typ byte, key, sakey uint64) Result {
		c, p := prOut(sa, typ, key, sakey)
		return run(tg, n, c, p)
	}
	if r := do(a, 0, 0, 0, 0xa); r.Status != StatusGood {
		t.Fatalf("register a: %+v", r)
	}
	if r := do(b, 0, 0, 0, 0xb); r.Status != StatusGood {
		t.Fatalf("register b: %+v", r)
	}
	if r := do(b, 0, 0, 0x99, 0xc); r.Status != StatusReservationConflict {
		t.Fatalf("register with a wrong key must conflict: %+v", r)
	}
	if r := do(a, 1, prWE, 0xa, 0); r.Status != StatusGood {
		t.Fatalf("reserve WE: %+v", r)
	}
	// Write Exclusive: b may read but not write.
	if r := run(tg, b, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood {
		t.Fatalf("b read under WE: %+v", r)
	}
	if r := run(tg, b, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusReservationConflict {
		t.Fatalf("b write under WE: %+v", r)
	}
	if r := do(a, 2, prEA, 0xa, 0); senseASC(r) != ascInvalidReleasePR {
		t.Fatalf("release with wrong type: %+v", r)
	}
	// b preempts a: a loses its registration and gets a UA.
	if r := do(b, 4, prEA, 0xb, 0xa); r.Status != StatusGood {
		t.Fatalf("preempt: %+v", r)
	}
	if r := run(tg, a, cdb(0x00, 6), nil); senseASC(r) != ascRegistrationsPreempted {
		t.Fatalf("a after preempt: %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); r.Status != StatusReservationConflict {
		t.Fatalf("a read under b's EA: %+v", r)
	}
	// READ KEYS shows only b; READ RESERVATION shows EA held with key b.
	rk := cdb(0x5e, 10)
	binary.BigEndian.PutUint16(rk[7:], 64)
	r := run(tg, b, rk, nil)
	if r.Status != StatusGood || binary.BigEndian.Uint32(r.Data[4:]) != 8 || binary.BigEndian.Uint64(r.Data[8:]) != 0xb {
		t.Fatalf("READ KEYS % x", r.Data)
	}
	rk[1] = 1
	r = run(tg, b, rk, nil)
	if r.Data[8+13] != prEA || binary.BigEndian.Uint64(r.Data[8:]) != 0xb {
		t.Fatalf("READ RESERVATION % x", r.Data)
	}
	if r := do(b, 3, 0, 0xb, 0); r.Status != StatusGood {
		t.Fatalf("clear: %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood {
		t.Fatalf("after clear: %+v", r)
	}
}

func TestModeSelectSWPAndDSense(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	ms := cdb(0x1a, 6)
	ms[2] = pageControl
	ms[4] = 255
	r := run(tg, a, ms, nil)
	if r.Status != StatusGood {
		t.Fatalf("MODE SENSE: %+v", r)
	}
	page := append([]byte{}, r.Data[4+8:]...)
	page[4] |= 0x08 // SWP
	page[2] |= 0x04 // D_SENSE
	sel := cdb(0x15, 6)
	sel[1] = 0x10
	param := append([]byte{0, 0, 0, 0}, page...)
	sel[4] = byte(len(param))
	if r := run(tg, a, sel, param); r.Status != StatusGood {
		t.Fatalf("MODE SELECT: %+v", r)
	}
	// b (another initiator) is told; then writes are refused with
	// descriptor-format DATA PROTECT.
	if r := run(tg, b, cdb(0x00, 6), nil); senseASC(r) != ascModeParamsChanged {
		t.Fatalf("b after MODE SELECT: %+v", r)
	}
	r = run(tg, a, rw16(0x8a, 0, 1, 0), make([]byte, 512))
	if r.Sense[0] != 0x72 || senseKey(r) != keyDataProtect {
		t.Fatalf("write under SWP: % x", r.Sense)
	}
	// REPORT LUNS follows D_SENSE too.
	rl := cdb(0xa0, 12)
	rl[2], rl[9] = 0x05, 255 // a SELECT REPORT that does not exist
	if r := run(tg, a, rl, nil); len(r.Sense) == 0 || r.Sense[0] != 0x72 || senseKey(r) != keyIllegalRequest {
		t.Fatalf("REPORT LUNS with a bad SELECT REPORT under D_SENSE: %+v", r)
	}
	// Changing a non-changeable field is refused.
	page[2] |= 0x01
	if r := run(tg, a, sel, append([]byte{0, 0, 0, 0}, page...)); senseASC(r) != ascInvalidFieldParam {
		t.Fatalf("non-changeable bit: %+v", r)
	}
}

func TestIdentityIsStableAndIETCompatible(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	vpd := cdb(0x12, 6)
	vpd[1] = 1
	vpd[2] = 0x80
	vpd[4] = 255
	r := run(tg, a, vpd, nil)
	// IET 1.4.20: SN = hex(MD5(name || le32(lun))), 32 chars.
	if r.Status != StatusGood || len(r.Data) != 4+32 {
		t.Fatalf("VPD 80: %q", r.Data)
	}
	tg2, a2, _ := newTestTarget(t, nil)
	r2 := run(tg2, a2, vpd, nil)
	if !bytes.Equal(r.Data, r2.Data) {
		t.Fatal("serial differs between two instances of the same config")
	}
	tg3, a3, _ := newTestTarget(t, func(l *config.LUN) { l.ScsiSN = "SN-1"; l.Vendor = "ACME"; l.Product = "Disk" })
	r3 := run(tg3, a3, vpd, nil)
	if string(r3.Data[4:]) != "            SN-1" {
		t.Fatalf("configured serial %q", r3.Data[4:])
	}
	std := cdb(0x12, 6)
	std[4] = 96
	r3 = run(tg3, a3, std, nil)
	if string(r3.Data[8:16]) != "ACME    " || string(r3.Data[16:32]) != "Disk            " {
		t.Fatalf("vendor/product %q", r3.Data[8:32])
	}
}

func FuzzExecute(f *testing.F) {
	f.Add([]byte{0x12, 0, 0, 0, 96, 0}, []byte{})
	f.Add(rw16(0x8a, 0, 1, 0), make([]byte, 512))
	f.Add([]byte{0x5f, 0x00, 0x01, 0, 0, 0, 0, 0, 24, 0}, make([]byte, 24))
	f.Add([]byte{0x15, 0x10, 0, 0, 16, 0}, make([]byte, 16))
	f.Add([]byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, make([]byte, 24))
	f.Add([]byte{0x83, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 76, 0, 0}, make([]byte, 76))
	f.Add([]byte{0xa3, 0x0c, 0x82, 0x89, 0, 0, 0, 0, 1, 0, 0, 0}, []byte{})
	f.Add([]byte{0x88, 0, 0, 0}, []byte{})          // short READ(16)
	f.Add([]byte{0x5f, 0x07}, make([]byte, 24))     // short REGISTER AND MOVE
	f.Add([]byte{0x9e, 0x10, 0, 0, 0, 0}, []byte{}) // short READ CAPACITY(16)
	f.Add([]byte{0x12}, []byte{})
	f.Add([]byte{0x04, 0x30, 0, 0, 0, 0}, make([]byte, 8))         // FORMAT UNIT, long header
	f.Add([]byte{0x1d, 0x04, 0, 0, 0, 0}, []byte{})                // SEND DIAGNOSTIC self-test
	f.Add([]byte{0x4d, 0, 0x4d, 0, 0, 0, 1, 0x02, 0, 0}, []byte{}) // LOG SENSE temperature from 1
	tg, a, _ := newTestTarget(f, nil)
	f.Fuzz(func(t *testing.T, c []byte, out []byte) {
		if len(c) == 0 || len(c) > 32 || len(out) > 1<<16 {
			return
		}
		// Keep the fuzzer away from whole-LUN writes that only cost time.
		if c[0] == 0x48 {
			return
		}
		// The CDB as sent, of any length: a short CDB must be refused,
		// never read past.
		cmd := &Command{Nexus: a, CDB: c, DataOut: out, ExpectedLen: uint32(len(out))}
		r := tg.Execute(context.Background(), cmd)
		if r.Status == StatusCheckCondition && len(r.Sense) < 8 {
			t.Fatalf("CHECK CONDITION without sense for % x", c)
		}
	})
}

// A READ whose CDB asks for more than the initiator will take reads only
// what it takes (the rest is a residual), instead of allocating the CDB's
// length outside the transport's budget.
func TestReadLongerThanExpectedReadsOnlyWhatIsTaken(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	first := bytes.Repeat([]byte{'R'}, 512)
	if r := run(tg, a, rw16(0x8a, 0, 1, 0), first); r.Status != StatusGood {
		t.Fatalf("WRITE(16): %+v", r)
	}
	for _, edtl := range []uint32{512, 700, 0} {
		cmd := &Command{Nexus: a, CDB: rw16(0x88, 0, 2048, 0), ExpectedLen: edtl, Read: true}
		r := tg.Execute(context.Background(), cmd)
		want := (int(edtl) + 511) &^ 511
		if r.Status != StatusGood || r.XferLen != 2048*512 || len(r.Data) != want {
			t.Fatalf("EDTL %d: status %#x XferLen %d, %d bytes read; want GOOD, %d, %d", edtl, r.Status, r.XferLen, len(r.Data), 2048*512, want)
		}
		if edtl > 0 && !bytes.Equal(r.Data[:512], first) {
			t.Fatalf("EDTL %d: first block differs", edtl)
		}
	}
}

// Reinstatement: a new session of the same initiator port attaches before
// the old one detaches. The old one's late detach must not drop the new
// one's RESERVE(6); what the old one held went when the new one attached.
func TestLateDetachOfAReplacedNexus(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	if r := run(tg, a, cdb(0x16, 6), nil); r.Status != StatusGood {
		t.Fatalf("RESERVE by the old session: %+v", r)
	}
	a2 := &Nexus{ID: 3, InitiatorName: a.InitiatorName, ISID: a.ISID, TargetName: a.TargetName}
	tg.NexusAttach(a2)
	if r := run(tg, a2, cdb(0x00, 6), nil); r.Status != StatusCheckCondition || senseKey(r) != keyUnitAttention || senseASC(r) != ascITNexusLoss {
		t.Fatalf("new session's first command: %+v, want the UA I_T NEXUS LOSS OCCURRED", r)
	}
	if r := run(tg, b, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood {
		t.Fatalf("the old session's RESERVE survived its replacement: %+v", r)
	}
	if r := run(tg, a2, cdb(0x16, 6), nil); r.Status != StatusGood {
		t.Fatalf("RESERVE by the new session: %+v", r)
	}
	tg.NexusDetach(a) // the old session ends late
	if r := run(tg, b, rw16(0x88, 0, 1, 0), nil); r.Status != StatusReservationConflict {
		t.Fatalf("after the old session's late detach, another nexus: %+v, want RESERVATION CONFLICT", r)
	}
}

// A new nexus starts with POWER ON, RESET, OR BUS DEVICE RESET OCCURRED;
// one that reinstated a session of its initiator port (the old one
// already detached, as the transport does it) with I_T NEXUS LOSS
// OCCURRED.
func TestFirstUnitAttentionOfANexus(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	tur := cdb(0x00, 6)
	c := &Nexus{ID: 4, InitiatorName: "iqn.c", ISID: a.ISID, TargetName: a.TargetName}
	tg.NexusAttach(c)
	if r := run(tg, c, tur, nil); r.Status != StatusCheckCondition || senseASC(r) != ascPowerOnReset {
		t.Fatalf("first command of a new nexus: %+v, want UA 29h/00h", r)
	}
	tg.NexusDetach(a)
	a2 := &Nexus{ID: 3, InitiatorName: a.InitiatorName, ISID: a.ISID, TargetName: a.TargetName, Reinstated: true}
	tg.NexusAttach(a2)
	if r := run(tg, a2, tur, nil); r.Status != StatusCheckCondition || senseASC(r) != ascITNexusLoss {
		t.Fatalf("first command after reinstatement: %+v, want UA 29h/07h", r)
	}
	if r := run(tg, a2, tur, nil); r.Status != StatusGood {
		t.Fatalf("second command after reinstatement: %+v, want GOOD (one UA)", r)
	}
}

// After a CLEAR TASK SET the nexuses that lost commands get COMMANDS
// CLEARED BY ANOTHER INITIATOR, and only they (SAM-5 5.6, TAS 0): not a
// third nexus that had nothing in the task set, not the requester. (All
// other nexuses used to get it.)
func TestClearTaskSetUnitAttentionOnlyWhereCommandsWereCleared(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	c := &Nexus{ID: 4, InitiatorName: "iqn.c", ISID: a.ISID, TargetName: a.TargetName}
	tg.NexusAttach(c)
	tur := cdb(0x00, 6)
	run(tg, c, tur, nil) // its power-on UA
	if r := tg.TaskManagement(TMFClearTaskSet, 0, a, []*Nexus{b, a}); r != 0 {
		t.Fatalf("CLEAR TASK SET: response %d", r)
	}
	if r := run(tg, b, tur, nil); r.Status != StatusCheckCondition || senseASC(r) != ascCommandsClearedByAnother {
		t.Fatalf("b, which lost a command: %+v, want UA 2Fh/00h", r)
	}
	for _, n := range []*Nexus{a, c, b} {
		if r := run(tg, n, tur, nil); r.Status != StatusGood {
			t.Fatalf("%s: %+v, want GOOD", n.InitiatorName, r)
		}
	}
	if r := tg.TaskManagement(TMFClearTaskSet, 7, a, []*Nexus{b}); r != 2 {
		t.Fatalf("CLEAR TASK SET of a missing LUN: response %d, want 2", r)
	}
}

// A LUN whose store cannot be opened is left out, as IET did; the target
// is served with its other LUNs (it used to fail, and with it the daemon).
func TestUnopenableLUNIsLeftOut(t *testing.T) {
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:unit")
	tc.LUNs = []*config.LUN{
		{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "/nonexistent/disk"}},
		{Number: 1, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "mem"}},
	}
	tg, err := NewTarget(tc, Options{OpenStore: func(l *config.LUN) (backing.Store, error) {
		if l.Store.Path != "mem" {
			return nil, errors.New("open " + l.Store.Path + ": no such file or directory")
		}
		return backing.NewMemory(1 << 20), nil
	}})
	if err != nil {
		t.Fatalf("target with one unopenable LUN: %v", err)
	}
	defer tg.Close()
	if tg.lun(0) != nil || tg.lun(1) == nil {
		t.Fatalf("LUN 0 open %v, LUN 1 open %v; want only LUN 1", tg.lun(0) != nil, tg.lun(1) != nil)
	}
}

// VERIFY with BYTCHK 11b compares every block of the range with the one
// block sent, a chunk at a time (it used to build the whole range twice in
// memory), and reports the first differing byte of the range.
func TestVerifyOneBlockAgainstARange(t *testing.T) {
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:unit")
	tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "mem"}}}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) {
		return backing.NewMemory(4 << 20), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetName: tc.Name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0x00, 6), nil) // the power-on unit attention
	blk := bytes.Repeat([]byte{'V'}, 512)
	const n = 5000                                                         // over two 1 MiB chunks
	if r := run(tg, a, rw16(0x93, 0, n, 0), blk); r.Status != StatusGood { // WRITE SAME(16)
		t.Fatalf("WRITE SAME: %+v", r)
	}
	v := rw16(0x8f, 0, n, 0x06) // VERIFY(16) BYTCHK=11b
	if r := run(tg, a, v, blk); r.Status != StatusGood {
		t.Fatalf("VERIFY equal: %+v", r)
	}
	odd := append([]byte{}, blk...)
	odd[3] = 'W'
	if r := run(tg, a, rw16(0x8a, 4100, 1, 0), odd); r.Status != StatusGood {
		t.Fatalf("WRITE: %+v", r)
	}
	r := run(tg, a, v, blk)
	if senseKey(r) != keyMiscompare {
		t.Fatalf("VERIFY different: %+v", r)
	}
	if off := binary.BigEndian.Uint32(r.Sense[3:]); off != 4100*512+3 {
		t.Fatalf("miscompare at %d, want %d", off, 4100*512+3)
	}
}

// A service action this LUN does not offer (GET LBA STATUS without thin
// provisioning) is INVALID FIELD IN CDB: its operation code is supported.
// An operation code it does not offer (UNMAP) is INVALID COMMAND OPERATION
// CODE.
func TestDisabledServiceActionSense(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	tg.lun(0).thin = false
	gls := cdb(0x9e, 16)
	gls[1], gls[13] = 0x12, 32
	if r := run(tg, a, gls, nil); senseKey(r) != keyIllegalRequest || senseASC(r) != ascInvalidFieldCDB {
		t.Fatalf("GET LBA STATUS without thin provisioning: %+v", r)
	}
	if r := run(tg, a, cdb(0x42, 10), make([]byte, 24)); senseKey(r) != keyIllegalRequest || senseASC(r) != ascInvalidOpcode {
		t.Fatalf("UNMAP without thin provisioning: %+v", r)
	}
}

// writeProtectedStore is a store the system holds read-only (a block
// device set read-only), configured for writes.
type writeProtectedStore struct{ backing.Store }

func (writeProtectedStore) WriteProtected() bool { return true }

// A LUN configured for writes on a store the system holds read-only is
// served write-protected: the WP bit in MODE SENSE, DATA PROTECT / WRITE
// PROTECTED on a write, reads as usual.
func TestWriteProtectedStoreServedWriteProtected(t *testing.T) {
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:unit")
	lc := &config.LUN{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "dev"}}
	tc.LUNs = []*config.LUN{lc}
	mem := backing.NewMemory(1 << 20)
	want := bytes.Repeat([]byte{0xa5}, 512)
	if _, err := mem.WriteAt(want, 0); err != nil {
		t.Fatal(err)
	}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) {
		return writeProtectedStore{mem}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetName: tc.Name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0x00, 6), nil) // the power-on unit attention
	ms := cdb(0x1a, 6)
	ms[2], ms[4] = 0x3f, 255
	r := run(tg, a, ms, nil)
	if r.Status != StatusGood || len(r.Data) < 4 || r.Data[2]&0x80 == 0 {
		t.Fatalf("MODE SENSE: WP bit not set: %+v", r)
	}
	r = run(tg, a, rw16(0x8a, 0, 1, 0), make([]byte, 512))
	if senseKey(r) != keyDataProtect || senseASC(r) != ascWriteProtected {
		t.Fatalf("write: want DATA PROTECT / WRITE PROTECTED, got %+v", r)
	}
	r = run(tg, a, rw16(0x88, 0, 1, 0), nil)
	if r.Status != StatusGood || !bytes.Equal(r.Data, want) {
		t.Fatalf("read: %+v", r)
	}
	got := make([]byte, 512)
	if _, err := mem.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatal("the refused write changed the store")
	}
}
