package scsi

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// opDesc describes one supported command (and service action).
type opDesc struct {
	op     byte
	sa     uint16
	hasSA  bool
	name   string
	cdbLen int
	flags  uint
	fn     func(*cmdCtx) Result
	// enabled, when set, says whether the LUN supports the command
	// (thin provisioning, removable medium).
	enabled func(l *lun) bool
}

const (
	fNoUA        uint = 1 << iota // not blocked by unit attentions
	fMedium                       // needs a started unit with medium
	fRead                         // reads the medium (PR conflict class)
	fWrite                        // changes the medium or LU state (PR conflict class)
	fData                         // writes data: refused on write-protected LUNs
	fResvAllowed                  // allowed while another nexus holds RESERVE(6)
	fLegacyResv                   // RESERVE/RELEASE (6/10)
)

var opTable []*opDesc

func init() {
	rd := fMedium | fRead
	wr := fMedium | fWrite | fData
	thin := func(l *lun) bool { return l.thin }
	opTable = []*opDesc{
		{op: 0x00, name: "TEST UNIT READY", cdbLen: 6, flags: fMedium, fn: (*cmdCtx).testUnitReady},
		{op: 0x03, name: "REQUEST SENSE", cdbLen: 6, flags: fNoUA | fResvAllowed, fn: (*cmdCtx).requestSense},
		{op: 0x04, name: "FORMAT UNIT", cdbLen: 6, flags: wr, fn: (*cmdCtx).formatUnit},
		{op: 0x08, name: "READ(6)", cdbLen: 6, flags: rd, fn: (*cmdCtx).read},
		{op: 0x0a, name: "WRITE(6)", cdbLen: 6, flags: wr, fn: (*cmdCtx).write},
		{op: 0x12, name: "INQUIRY", cdbLen: 6, flags: fNoUA | fResvAllowed, fn: (*cmdCtx).inquiry},
		{op: 0x15, name: "MODE SELECT(6)", cdbLen: 6, flags: fWrite, fn: (*cmdCtx).modeSelect},
		{op: 0x16, name: "RESERVE(6)", cdbLen: 6, flags: fLegacyResv, fn: (*cmdCtx).reserve6},
		{op: 0x17, name: "RELEASE(6)", cdbLen: 6, flags: fLegacyResv | fResvAllowed, fn: (*cmdCtx).release6},
		{op: 0x1a, name: "MODE SENSE(6)", cdbLen: 6, flags: fRead, fn: (*cmdCtx).modeSense},
		{op: 0x1b, name: "START STOP UNIT", cdbLen: 6, flags: fWrite, fn: (*cmdCtx).startStopUnit},
		{op: 0x1d, name: "SEND DIAGNOSTIC", cdbLen: 6, flags: fMedium | fWrite, fn: (*cmdCtx).sendDiagnostic},
		{op: 0x1e, name: "PREVENT ALLOW MEDIUM REMOVAL", cdbLen: 6, flags: 0, fn: (*cmdCtx).preventAllow},
		{op: 0x25, name: "READ CAPACITY(10)", cdbLen: 10, flags: fMedium, fn: (*cmdCtx).readCapacity10},
		{op: 0x28, name: "READ(10)", cdbLen: 10, flags: rd, fn: (*cmdCtx).read},
		{op: 0x2a, name: "WRITE(10)", cdbLen: 10, flags: wr, fn: (*cmdCtx).write},
		{op: 0x2e, name: "WRITE AND VERIFY(10)", cdbLen: 10, flags: wr, fn: (*cmdCtx).writeVerify},
		{op: 0x2f, name: "VERIFY(10)", cdbLen: 10, flags: rd, fn: (*cmdCtx).verify},
		{op: 0x34, name: "PRE-FETCH(10)", cdbLen: 10, flags: rd, fn: (*cmdCtx).prefetch},
		{op: 0x35, name: "SYNCHRONIZE CACHE(10)", cdbLen: 10, flags: fMedium | fWrite, fn: (*cmdCtx).syncCache},
		{op: 0x37, name: "READ DEFECT DATA(10)", cdbLen: 10, flags: fRead, fn: (*cmdCtx).readDefectData},
		{op: 0x41, name: "WRITE SAME(10)", cdbLen: 10, flags: wr, fn: (*cmdCtx).writeSame},
		{op: 0x42, name: "UNMAP", cdbLen: 10, flags: wr, fn: (*cmdCtx).unmapCmd, enabled: thin},
		{op: 0x48, sa: 0x01, hasSA: true, name: "SANITIZE OVERWRITE", cdbLen: 10, flags: wr, fn: (*cmdCtx).sanitize},
		{op: 0x48, sa: 0x02, hasSA: true, name: "SANITIZE BLOCK ERASE", cdbLen: 10, flags: wr, fn: (*cmdCtx).sanitize, enabled: thin},
		{op: 0x48, sa: 0x1f, hasSA: true, name: "SANITIZE EXIT FAILURE MODE", cdbLen: 10, flags: wr, fn: (*cmdCtx).sanitize},
		{op: 0x4d, name: "LOG SENSE", cdbLen: 10, flags: fResvAllowed, fn: (*cmdCtx).logSense},
		{op: 0x55, name: "MODE SELECT(10)", cdbLen: 10, flags: fWrite, fn: (*cmdCtx).modeSelect},
		{op: 0x56, name: "RESERVE(10)", cdbLen: 10, flags: fLegacyResv, fn: (*cmdCtx).reserve6},
		{op: 0x57, name: "RELEASE(10)", cdbLen: 10, flags: fLegacyResv | fResvAllowed, fn: (*cmdCtx).release6},
		{op: 0x5a, name: "MODE SENSE(10)", cdbLen: 10, flags: fRead, fn: (*cmdCtx).modeSense},
		{op: 0x5e, sa: 0x00, hasSA: true, name: "PERSISTENT RESERVE IN READ KEYS", cdbLen: 10, flags: fResvAllowed, fn: (*cmdCtx).prIn},
		{op: 0x5e, sa: 0x01, hasSA: true, name: "PERSISTENT RESERVE IN READ RESERVATION", cdbLen: 10, flags: fResvAllowed, fn: (*cmdCtx).prIn},
		{op: 0x5e, sa: 0x02, hasSA: true, name: "PERSISTENT RESERVE IN REPORT CAPABILITIES", cdbLen: 10, flags: fResvAllowed, fn: (*cmdCtx).prIn},
		{op: 0x5e, sa: 0x03, hasSA: true, name: "PERSISTENT RESERVE IN READ FULL STATUS", cdbLen: 10, flags: fResvAllowed, fn: (*cmdCtx).prIn},
		{op: 0x5f, sa: 0x00, hasSA: true, name: "PERSISTENT RESERVE OUT REGISTER", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x5f, sa: 0x01, hasSA: true, name: "PERSISTENT RESERVE OUT RESERVE", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x5f, sa: 0x02, hasSA: true, name: "PERSISTENT RESERVE OUT RELEASE", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x5f, sa: 0x03, hasSA: true, name: "PERSISTENT RESERVE OUT CLEAR", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x5f, sa: 0x04, hasSA: true, name: "PERSISTENT RESERVE OUT PREEMPT", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x5f, sa: 0x05, hasSA: true, name: "PERSISTENT RESERVE OUT PREEMPT AND ABORT", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x5f, sa: 0x06, hasSA: true, name: "PERSISTENT RESERVE OUT REGISTER AND IGNORE EXISTING KEY", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x5f, sa: 0x07, hasSA: true, name: "PERSISTENT RESERVE OUT REGISTER AND MOVE", cdbLen: 10, fn: (*cmdCtx).prOut},
		{op: 0x83, sa: 0x00, hasSA: true, name: "EXTENDED COPY(LID1)", cdbLen: 16, flags: fMedium | fWrite | fData, fn: (*cmdCtx).extendedCopy},
		{op: 0x84, sa: 0x00, hasSA: true, name: "RECEIVE COPY RESULTS COPY STATUS", cdbLen: 16, flags: fResvAllowed, fn: (*cmdCtx).receiveCopyResults},
		{op: 0x84, sa: 0x03, hasSA: true, name: "RECEIVE COPY RESULTS OPERATING PARAMETERS", cdbLen: 16, flags: fResvAllowed, fn: (*cmdCtx).receiveCopyResults},
		{op: 0x88, name: "READ(16)", cdbLen: 16, flags: rd, fn: (*cmdCtx).read},
		{op: 0x89, name: "COMPARE AND WRITE", cdbLen: 16, flags: wr | fRead, fn: (*cmdCtx).compareAndWrite},
		{op: 0x8a, name: "WRITE(16)", cdbLen: 16, flags: wr, fn: (*cmdCtx).write},
		{op: 0x8b, name: "ORWRITE(16)", cdbLen: 16, flags: wr | fRead, fn: (*cmdCtx).orWrite},
		{op: 0x8e, name: "WRITE AND VERIFY(16)", cdbLen: 16, flags: wr, fn: (*cmdCtx).writeVerify},
		{op: 0x8f, name: "VERIFY(16)", cdbLen: 16, flags: rd, fn: (*cmdCtx).verify},
		{op: 0x90, name: "PRE-FETCH(16)", cdbLen: 16, flags: rd, fn: (*cmdCtx).prefetch},
		{op: 0x91, name: "SYNCHRONIZE CACHE(16)", cdbLen: 16, flags: fMedium | fWrite, fn: (*cmdCtx).syncCache},
		{op: 0x93, name: "WRITE SAME(16)", cdbLen: 16, flags: wr, fn: (*cmdCtx).writeSame},
		{op: 0x9c, name: "WRITE ATOMIC(16)", cdbLen: 16, flags: wr, fn: (*cmdCtx).writeAtomic},
		{op: 0x9e, sa: 0x10, hasSA: true, name: "READ CAPACITY(16)", cdbLen: 16, flags: fMedium, fn: (*cmdCtx).readCapacity16},
		{op: 0x9e, sa: 0x12, hasSA: true, name: "GET LBA STATUS", cdbLen: 16, flags: fMedium | fRead, fn: (*cmdCtx).getLBAStatus, enabled: thin},
		{op: 0xa0, name: "REPORT LUNS", cdbLen: 12, flags: fNoUA | fResvAllowed, fn: (*cmdCtx).reportLUNsCmd},
		{op: 0xa3, sa: 0x0c, hasSA: true, name: "REPORT SUPPORTED OPERATION CODES", cdbLen: 12, flags: fRead | fResvAllowed, fn: (*cmdCtx).reportOpcodes},
		{op: 0xa3, sa: 0x0d, hasSA: true, name: "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", cdbLen: 12, flags: fRead | fResvAllowed, fn: (*cmdCtx).reportTMFs},
		{op: 0xa8, name: "READ(12)", cdbLen: 12, flags: rd, fn: (*cmdCtx).read},
		{op: 0xaa, name: "WRITE(12)", cdbLen: 12, flags: wr, fn: (*cmdCtx).write},
		{op: 0xae, name: "WRITE AND VERIFY(12)", cdbLen: 12, flags: wr, fn: (*cmdCtx).writeVerify},
		{op: 0xaf, name: "VERIFY(12)", cdbLen: 12, flags: rd, fn: (*cmdCtx).verify},
		{op: 0xb7, name: "READ DEFECT DATA(12)", cdbLen: 12, flags: fRead, fn: (*cmdCtx).readDefectData},
	}
}

// hasServiceActions reports whether op is dispatched on a service action.
func hasServiceActions(op byte) bool {
	for _, d := range opTable {
		if d.op == op && d.hasSA {
			return true
		}
	}
	return false
}

func serviceAction(cdb []byte) uint16 {
	if len(cdb) < 2 {
		return 0
	}
	return uint16(cdb[1] & 0x1f)
}

// lookupOp finds the descriptor of a CDB (nil when unsupported).
func lookupOp(op byte, cdb []byte) *opDesc {
	sa := serviceAction(cdb)
	for _, d := range opTable {
		if d.op != op {
			continue
		}
		if d.hasSA && d.sa != sa {
			continue
		}
		return d
	}
	return nil
}

func (d *opDesc) supported(l *lun) bool { return d.enabled == nil || d.enabled(l) }

func (c *cmdCtx) reportLUNsCmd() Result { return c.l.t.reportLUNs(c.cmd, c.desc) }

// ff is four bytes of 0xff (a 32-bit field the device server reads).
var ff = []byte{0xff, 0xff, 0xff, 0xff}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// cdbUsage is the CDB USAGE DATA of REPORT SUPPORTED OPERATION CODES
// (SPC-4 6.35): for each CDB byte, the bits the device server looks at.
// Reserved bits, and bits we ignore (GROUP NUMBER, RARC, IMMED of
// PRE-FETCH and SYNCHRONIZE CACHE, PF, ...), are zero; so is the CONTROL
// byte (NACA and LINK are not supported). DPO and FUA are marked where
// the CDB has them: MODE SENSE reports DPOFUA=1 (SBC-3: both supported;
// DPO is a caching hint we may follow by doing nothing, FUA writes sync,
// FUA reads come from the file's coherent page cache or the device). Byte 1 of a
// service-action command gets its service action in usageData.
var cdbUsage = map[byte][]byte{
	0x00: {0x00, 0, 0, 0, 0, 0},
	0x03: {0x03, 0x01, 0, 0, 0xff, 0},
	0x04: {0x04, 0xf0, 0, 0, 0, 0},
	0x08: {0x08, 0x1f, 0xff, 0xff, 0xff, 0},
	0x0a: {0x0a, 0x1f, 0xff, 0xff, 0xff, 0},
	0x12: {0x12, 0x03, 0xff, 0xff, 0xff, 0},
	0x15: {0x15, 0x01, 0, 0, 0xff, 0},
	0x16: {0x16, 0, 0, 0, 0, 0},
	0x17: {0x17, 0, 0, 0, 0, 0},
	0x1a: {0x1a, 0x08, 0xff, 0xff, 0xff, 0},
	0x1b: {0x1b, 0, 0, 0, 0xf3, 0},
	0x1d: {0x1d, 0xe4, 0, 0xff, 0xff, 0},
	0x1e: {0x1e, 0, 0, 0, 0x03, 0},
	0x25: cat([]byte{0x25, 0}, ff, []byte{0, 0, 0x01, 0}),
	0x28: cat([]byte{0x28, 0xf8}, ff, []byte{0, 0xff, 0xff, 0}),
	0x2a: cat([]byte{0x2a, 0xf8}, ff, []byte{0, 0xff, 0xff, 0}),
	0x2e: cat([]byte{0x2e, 0xf2}, ff, []byte{0, 0xff, 0xff, 0}),
	0x2f: cat([]byte{0x2f, 0xf6}, ff, []byte{0, 0xff, 0xff, 0}),
	0x34: cat([]byte{0x34, 0}, ff, []byte{0, 0xff, 0xff, 0}),
	0x35: cat([]byte{0x35, 0}, ff, []byte{0, 0xff, 0xff, 0}),
	0x37: {0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0},
	0x41: cat([]byte{0x41, 0xf8}, ff, []byte{0, 0xff, 0xff, 0}),
	0x42: {0x42, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, 0},
	0x48: {0x48, 0xa0, 0, 0, 0, 0, 0, 0xff, 0xff, 0},
	0x4d: {0x4d, 0x01, 0x3f, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0},
	0x55: {0x55, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, 0},
	0x56: {0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	0x57: {0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	0x5a: {0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, 0},
	0x5e: {0x5e, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0},
	0x5f: cat([]byte{0x5f, 0, 0, 0, 0}, ff, []byte{0}),
	0x83: cat([]byte{0x83, 0}, make([]byte, 8), ff, []byte{0, 0}),
	0x84: cat([]byte{0x84, 0, 0xff}, make([]byte, 7), ff, []byte{0, 0}),
	0x88: cat([]byte{0x88, 0xf8}, ff, ff, ff, []byte{0, 0}),
	0x89: cat([]byte{0x89, 0xf8}, ff, ff, []byte{0, 0, 0, 0xff, 0, 0}),
	0x8a: cat([]byte{0x8a, 0xf8}, ff, ff, ff, []byte{0, 0}),
	0x8b: cat([]byte{0x8b, 0xf8}, ff, ff, ff, []byte{0, 0}),
	0x8e: cat([]byte{0x8e, 0xf2}, ff, ff, ff, []byte{0, 0}),
	0x8f: cat([]byte{0x8f, 0xf6}, ff, ff, ff, []byte{0, 0}),
	0x90: cat([]byte{0x90, 0}, ff, ff, ff, []byte{0, 0}),
	0x91: cat([]byte{0x91, 0}, ff, ff, ff, []byte{0, 0}),
	0x93: cat([]byte{0x93, 0xf9}, ff, ff, ff, []byte{0, 0}),
	0x9c: cat([]byte{0x9c, 0xf8}, ff, ff, ff, []byte{0, 0}),
	0x9e: cat([]byte{0x9e, 0}, ff, ff, ff, []byte{0, 0}),
	0xa0: cat([]byte{0xa0, 0, 0xff, 0, 0, 0}, ff, []byte{0, 0}),
	0xa3: cat([]byte{0xa3, 0, 0x87, 0xff, 0xff, 0xff}, ff, []byte{0, 0}),
	0xa8: cat([]byte{0xa8, 0xf8}, ff, ff, []byte{0, 0}),
	0xaa: cat([]byte{0xaa, 0xf8}, ff, ff, []byte{0, 0}),
	0xae: cat([]byte{0xae, 0xf2}, ff, ff, []byte{0, 0}),
	0xaf: cat([]byte{0xaf, 0xf6}, ff, ff, []byte{0, 0}),
	0xb7: cat([]byte{0xb7, 0x1f, 0, 0, 0, 0}, ff, []byte{0, 0}),
}

// usageData is the CDB usage bitmap of REPORT SUPPORTED OPERATION CODES
// for one command (and service action).
func usageData(d *opDesc) []byte {
	u := append([]byte(nil), cdbUsage[d.op]...)
	if len(u) != d.cdbLen {
		u = make([]byte, d.cdbLen) // (a test keeps the table complete)
		u[0] = d.op
	}
	if d.hasSA {
		u[1] |= byte(d.sa)
	}
	switch {
	case d.op == 0x5f && (d.sa == 1 || d.sa == 2 || d.sa == 4 || d.sa == 5):
		u[2] = 0xff // SCOPE and TYPE
	case d.op == 0x84 && d.sa != 0:
		u[2] = 0 // LIST IDENTIFIER: COPY STATUS only
	case d.op == 0x9e && d.sa == 0x10:
		clear(u[2:10]) // READ CAPACITY(16): LOGICAL BLOCK ADDRESS and PMI ignored
	case d.op == 0xa3 && d.sa == 0x0d:
		u[2], u[3], u[4], u[5] = 0x80, 0, 0, 0 // REPD
	}
	return u
}

func (c *cmdCtx) reportOpcodes() Result {
	cdb := c.cdb
	rctd := cdb[2]&0x80 != 0
	opt := cdb[2] & 0x07
	reqOp := cdb[3]
	reqSA := be16(cdb[4:])
	alloc := int(be32(cdb[6:]))
	timeouts := func() []byte {
		t := make([]byte, 12)
		putBE16(t, 10)
		putBE32(t[4:], 0)  // nominal processing timeout: not specified
		putBE32(t[8:], 60) // recommended timeout (s)
		return t
	}
	switch opt {
	case 0:
		d := make([]byte, 4)
		for _, od := range opTable {
			if !od.supported(c.l) {
				continue
			}
			e := make([]byte, 8)
			e[0] = od.op
			if od.hasSA {
				putBE16(e[2:], od.sa)
				e[5] |= 0x01 // SERVACTV
			}
			if rctd {
				e[5] |= 0x02 // CTDP
			}
			putBE16(e[6:], uint16(od.cdbLen))
			d = append(d, e...)
			if rctd {
				d = append(d, timeouts()...)
			}
		}
		putBE32(d, uint32(len(d)-4))
		return dataIn(d, alloc)
	case 1, 2, 3:
		var found *opDesc
		saCmd := hasServiceActions(reqOp)
		switch {
		case opt == 1 && saCmd:
			return c.fail(invalidCDB(3, -1))
		case opt == 2 && !saCmd:
			return c.fail(invalidCDB(3, -1))
		}
		for _, od := range opTable {
			if od.op != reqOp || !od.supported(c.l) {
				continue
			}
			if od.hasSA && od.sa != reqSA {
				continue
			}
			found = od
			break
		}
		d := make([]byte, 4)
		if found == nil {
			d[1] = 0x01 // not supported
			return dataIn(d, alloc)
		}
		d[1] = 0x03 // supported, standard
		if rctd {
			d[1] |= 0x80
		}
		u := usageData(found)
		putBE16(d[2:], uint16(len(u)))
		d = append(d, u...)
		if rctd {
			d = append(d, timeouts()...)
		}
		return dataIn(d, alloc)
	}
	return c.fail(invalidCDB(2, 2))
}

func (c *cmdCtx) reportTMFs() Result {
	alloc := int(be32(c.cdb[6:]))
	repd := c.cdb[2]&0x80 != 0
	d := make([]byte, 4)
	// ABORT TASK, ABORT TASK SET, CLEAR ACA, CLEAR TASK SET, LU RESET,
	// (no QUERY TASK), TARGET RESET.
	d[0] = 0x80 | 0x40 | 0x20 | 0x10 | 0x08 | 0x02
	if repd {
		d = append(d, make([]byte, 12)...)
		d[3] = 0x0c
	}
	return dataIn(d, alloc)
}

// sanitize implements SANITIZE OVERWRITE, BLOCK ERASE and EXIT FAILURE
// MODE (SBC-3 4.11, 5.30). While a sanitize runs, every command but
// INQUIRY, REPORT LUNS and REQUEST SENSE (which reports the progress)
// gets NOT READY / SANITIZE IN PROGRESS. A sanitize that does not
// complete (I/O error, abort) leaves the unit in sanitize failure mode:
// medium access gets MEDIUM ERROR / SANITIZE COMMAND FAILED until a
// sanitize completes, or EXIT FAILURE MODE when the failed one had AUSE
// set. With IMMED the command returns once the CDB and parameters are
// checked; either way the operation runs on if the command is aborted.
func (c *cmdCtx) sanitize() Result {
	cdb := c.cdb
	immed, ause := cdb[1]&0x80 != 0, cdb[1]&0x20 != 0
	sa := cdb[1] & 0x1f
	plen := int(be16(cdb[7:]))
	l := c.l
	nb := l.capacity()
	total := int64(nb << l.shift)
	if cdb[1]&0x40 != 0 {
		return c.fail(invalidCDB(1, 6))
	}
	for i := 2; i <= 6; i++ {
		if cdb[i] != 0 {
			return c.fail(invalidCDB(i, -1))
		}
	}
	var op func(ctx context.Context, progress func(done int64)) error
	switch sa {
	case 0x1f:
		if plen != 0 {
			return c.fail(invalidCDB(7, -1))
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.sanitize.failed && !l.sanitize.ause {
			// The failed sanitize did not allow leaving failure mode.
			return c.fail(invalidCDB(1, 4))
		}
		l.sanitize.failed = false
		return good()
	case 0x02:
		if plen != 0 {
			return c.fail(invalidCDB(7, -1))
		}
		op = func(context.Context, func(int64)) error { return l.store.Unmap(0, total) }
	case 0x01:
		if plen < 5 || plen > l.bs+4 {
			return c.fail(invalidCDB(7, -1))
		}
		p := c.cmd.DataOut
		if len(p) < plen {
			return c.fail(senseParamLen)
		}
		p = p[:plen]
		owcount := p[0] & 0x1f
		patLen := int(be16(p[2:]))
		if owcount == 0 {
			return c.fail(invalidParam(0, 4))
		}
		if patLen == 0 || patLen > l.bs || patLen != plen-4 {
			return c.fail(invalidParam(2, -1))
		}
		pattern := append([]byte(nil), p[4:4+patLen]...)
		invert := p[0]&0x80 != 0
		op = func(ctx context.Context, progress func(int64)) error {
			return l.overwrite(ctx, total, pattern, int(owcount), invert, progress)
		}
	default:
		return c.fail(invalidCDB(1, 4))
	}
	l.mu.Lock()
	if l.sanitize.running {
		l.mu.Unlock()
		return c.fail(sanitizeInProgress(l.sanitizeProgress()))
	}
	work := max(total*int64(max(1, passes(c))), 1)
	l.sanitize.running, l.sanitize.done, l.sanitize.total = true, 0, work
	l.sanitizeGen.Add(1)
	l.mu.Unlock()
	log := l.t.log.WithField("lun", l.num)
	if c.cmd.Nexus != nil {
		log = log.WithField("initiator", c.cmd.Nexus.InitiatorName)
	}
	// Every byte of the LUN goes: that is said at the default level, with
	// who asked; the progress of an overwrite at info level.
	// The goroutine below outlives the command (IMMED) and with it c,
	// which goes back to a pool: nothing of c is read there.
	name := sanitizeName(sa, c)
	log.Warnf("SANITIZE %s started: the LUN's %d bytes are erased (NOT READY, SANITIZE IN PROGRESS until it ends)", name, total)
	run := func(ctx context.Context) error {
		start := time.Now()
		// Commands admitted before the sanitize began finish first.
		tok := l.locks.exclusive(0, nb)
		rep := sanitizeReporter{log: log, total: work, start: start}
		err := op(ctx, func(done int64) {
			l.mu.Lock()
			l.sanitize.done = done
			l.mu.Unlock()
			rep.progress(done, time.Now())
		})
		if err == nil {
			err = l.sync()
		}
		l.locks.release(tok)
		l.mu.Lock()
		l.sanitize.running = false
		l.sanitize.failed = err != nil
		l.sanitize.ause = ause
		l.mu.Unlock()
		if err != nil {
			log.WithError(err).Error("SANITIZE failed: the unit is in sanitize failure mode")
		} else {
			log.Warnf("SANITIZE %s done in %v", name, time.Since(start).Round(time.Millisecond))
		}
		return err
	}
	// The operation runs on its own: it goes on when the command is
	// aborted or the nexus resets (SBC-3), and ends only when done, on an
	// error, or when the store is retired (a reload or shutdown). The
	// unit's store stays open until then.
	l.refs.Add(1)
	done := make(chan error, 1)
	go func() {
		defer l.release()
		done <- run(l.bg)
	}()
	if immed {
		return good()
	}
	select {
	case err := <-done:
		if err != nil {
			return c.ioError(err, true)
		}
		return good()
	case <-c.ctx.Done():
		return c.ioError(c.ctx.Err(), true)
	}
}

// sanitizeName names a SANITIZE service action for the log.
func sanitizeName(sa byte, c *cmdCtx) string {
	if sa == 0x01 {
		return fmt.Sprintf("OVERWRITE (%d pass(es))", passes(c))
	}
	return "BLOCK ERASE"
}

// sanitizeReporter logs the progress of a long sanitize at info level:
// every tenth of the work, but not more often than every 10 s, nor for
// one that is over within the first 10 s.
type sanitizeReporter struct {
	log   *logrus.Entry
	total int64
	start time.Time
	last  time.Time // of the last line logged
	tenth int64     // tenths reported
}

const sanitizeReportEvery = 10 * time.Second

func (r *sanitizeReporter) progress(done int64, now time.Time) {
	if r.total <= 0 {
		return
	}
	tenth := done * 10 / r.total
	if tenth <= r.tenth || tenth >= 10 {
		return
	}
	since := r.last
	if since.IsZero() {
		since = r.start
	}
	if now.Sub(since) < sanitizeReportEvery {
		return
	}
	r.tenth, r.last = tenth, now
	if !r.log.Logger.IsLevelEnabled(logrus.InfoLevel) {
		return
	}
	el := now.Sub(r.start)
	left := time.Duration(float64(el) * float64(r.total-done) / float64(done))
	r.log.Infof("SANITIZE %d%% done (%v so far, about %v left)", tenth*10, el.Round(time.Second), left.Round(time.Second))
}

// passes is the number of overwrite passes of a SANITIZE OVERWRITE.
func passes(c *cmdCtx) int {
	if c.cdb[1]&0x1f != 0x01 || len(c.cmd.DataOut) == 0 {
		return 1
	}
	return int(c.cmd.DataOut[0] & 0x1f)
}

// overwrite writes pattern over the first total bytes count times (the
// pattern inverted every other pass with invert).
func (l *lun) overwrite(ctx context.Context, total int64, pattern []byte, count int, invert bool, progress func(int64)) error {
	chunk := 1 << 20
	if int64(chunk) > total {
		chunk = int(total)
	}
	buf := make([]byte, chunk)
	var done int64
	for pass := 0; pass < count; pass++ {
		pat := pattern
		if invert && pass%2 == 1 {
			pat = make([]byte, len(pattern))
			for i := range pattern {
				pat[i] = ^pattern[i]
			}
		}
		// Each logical block starts with the pattern, repeated to fill
		// it (SBC-3 SANITIZE OVERWRITE): with a pattern length that
		// does not divide the block length it restarts at every block.
		for i := 0; i < l.bs; i += len(pat) {
			copy(buf[i:l.bs], pat)
		}
		for i := l.bs; i < chunk; i += l.bs {
			copy(buf[i:], buf[:l.bs])
		}
		for off := int64(0); off < total; {
			if err := ctx.Err(); err != nil {
				return err
			}
			k := min(int64(chunk), total-off)
			if _, err := l.store.WriteAt(buf[:k], off); err != nil {
				return err
			}
			off += k
			done += k
			progress(done)
		}
	}
	return nil
}

// sanitizeProgress is the progress indication (0..65535) of the running
// sanitize (under l.mu).
func (l *lun) sanitizeProgress() uint16 {
	s := &l.sanitize
	if s.total <= 0 {
		return 0
	}
	return uint16(min(s.done*65536/s.total, 65535))
}

// sanitizeInProgress is NOT READY / SANITIZE IN PROGRESS with a progress
// indication in the sense-key specific field.
func sanitizeInProgress(progress uint16) senseData {
	s := senseData{key: keyNotReady, asc: ascNotReadySanitize, hasSKS: true}
	s.sks[0] = 0x80
	putBE16(s.sks[1:], progress)
	return s
}
