package scsi

import (
	"context"
	"errors"
)

func (c *cmdCtx) testUnitReady() Result { return good() }

func (c *cmdCtx) requestSense() Result {
	desc := c.cdb[1]&0x01 != 0
	alloc := int(c.cdb[4])
	if a, ok := c.l.popUA(c.key); ok {
		return dataIn(sense(keyUnitAttention, a).encode(desc), alloc)
	}
	c.l.mu.Lock()
	stopped, ejected := c.l.stopped, c.l.ejected
	sanitizing, progress := c.l.sanitize.running, c.l.sanitizeProgress()
	c.l.mu.Unlock()
	switch {
	case sanitizing:
		return dataIn(sanitizeInProgress(progress).encode(desc), alloc)
	case ejected:
		return dataIn(sense(keyNotReady, ascMediumNotPresent).encode(desc), alloc)
	case stopped:
		return dataIn(sense(keyNotReady, ascNotReadyInitRequired).encode(desc), alloc)
	}
	return dataIn(sense(keyNoSense, ascNone).encode(desc), alloc)
}

func (c *cmdCtx) readCapacity10() Result {
	cdb := c.cdb
	lba := be32(cdb[2:])
	pmi := cdb[8]&0x01 != 0
	if !pmi && lba != 0 {
		return c.fail(invalidCDB(2, -1))
	}
	nb := c.l.capacity()
	d := make([]byte, 8)
	last := nb - 1
	if last > 0xffffffff {
		last = 0xffffffff
	}
	putBE32(d, uint32(last))
	putBE32(d[4:], uint32(c.l.bs))
	return dataIn(d, 8)
}

func (c *cmdCtx) readCapacity16() Result {
	alloc := int(be32(c.cdb[10:]))
	d := make([]byte, 32)
	putBE64(d, c.l.capacity()-1)
	putBE32(d[8:], uint32(c.l.bs))
	if c.l.thin {
		d[14] = 0x80 | 0x40 // LBPME, LBPRZ
	}
	d[13] = c.l.physExp()
	return dataIn(d, alloc)
}

// physBlockBytes is the physical block size we report: files live on
// 4 KiB file system blocks, so a write of less than 4 KiB is a
// read-modify-write of the page cache, and a hole punched in less than
// 4 KiB frees nothing.
const physBlockBytes = 4096

// physExp is the LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT (READ
// CAPACITY(16)): 3 for 512-byte blocks, 0 from 4 KiB up. The Block
// Limits VPD page derives its granularities from it.
func (l *lun) physExp() byte {
	e := byte(0)
	for (l.bs << e) < physBlockBytes {
		e++
	}
	return e
}

// startStopUnit implements START STOP UNIT (with LOEJ on removable LUNs).
func (c *cmdCtx) startStopUnit() Result {
	cdb := c.cdb
	pc := cdb[4] >> 4
	loej, start := cdb[4]&0x02 != 0, cdb[4]&0x01 != 0
	if pc != 0 {
		// Power condition changes: accepted, START and LOEJ ignored.
		return good()
	}
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if loej {
		if !l.ident().removable {
			return c.fail(invalidCDB(4, 1))
		}
		for _, p := range l.prevent {
			if p {
				return c.fail(sense(keyIllegalRequest, ascMediumRemovalPrevented))
			}
		}
		if !start {
			l.ejected = true
			l.stopped = true
			return good()
		}
		l.ejected = false
		l.stopped = false
		return good()
	}
	if l.ejected && start {
		return c.fail(sense(keyNotReady, ascMediumNotPresent))
	}
	// A virtual disk has nothing to spin down: STOP is accepted and the
	// unit stays ready (as libiscsi and initiators expect).
	return good()
}

func (c *cmdCtx) preventAllow() Result {
	prevent := c.cdb[4] & 0x03
	l := c.l
	if !l.ident().removable {
		if prevent != 0 {
			return c.fail(invalidCDB(4, 0))
		}
		return good()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch prevent {
	case 0:
		delete(l.prevent, c.key)
	case 1:
		l.prevent[c.key] = true
	default:
		return c.fail(invalidCDB(4, 1))
	}
	return good()
}

// readDefectData answers READ DEFECT DATA (10/12): an empty list.
// Log pages (SPC-4 7.3): what a virtual disk can truthfully say.
const (
	logSupported = 0x00
	logTemp      = 0x0d
	logInfoExc   = 0x2f
)

var logPages = []byte{logSupported, logTemp, logInfoExc}

// logSense is LOG SENSE (SPC-4 6.6), which health monitors poll (ESXi,
// smartctl). A virtual disk has no temperature and predicts no failure:
// the Temperature page reports "not available" (0xff) and the
// Informational Exceptions page no exception, so that the poll succeeds
// without made-up numbers. Every page control gets the same values;
// nothing is counted, so there is nothing to save (SP) or reset. A
// PARAMETER POINTER past the page's last parameter is an invalid field.
func (c *cmdCtx) logSense() Result {
	cdb := c.cdb
	code, sub := cdb[2]&0x3f, cdb[3]
	ptr := int(be16(cdb[5:]))
	alloc := int(be16(cdb[7:]))
	if cdb[1]&0x01 != 0 { // SP
		return c.fail(invalidCDB(1, 0))
	}
	if sub != 0 {
		return c.fail(invalidCDB(3, -1))
	}
	// param is a log parameter: code, control byte (format and linking
	// 11b: binary list), value.
	param := func(pc uint16, value ...byte) []byte {
		return append([]byte{byte(pc >> 8), byte(pc), 0x03, byte(len(value))}, value...)
	}
	var params [][]byte
	switch code {
	case logSupported:
		if ptr != 0 {
			return c.fail(invalidCDB(5, -1))
		}
		params = [][]byte{logPages}
	case logTemp:
		params = [][]byte{param(0x0000, 0, 0xff), param(0x0001, 0, 0xff)}
	case logInfoExc:
		params = [][]byte{param(0x0000, 0, 0, 0xff)} // no ASC/ASCQ, temperature not available
	default:
		return c.fail(invalidCDB(2, 5))
	}
	page := []byte{code, 0, 0, 0}
	for _, p := range params {
		if code != logSupported && int(be16(p)) < ptr {
			continue // below the PARAMETER POINTER
		}
		page = append(page, p...)
	}
	if len(page) == 4 { // the pointer is past the last parameter
		return c.fail(invalidCDB(5, -1))
	}
	putBE16(page[2:], uint16(len(page)-4))
	return dataIn(page, alloc)
}

// formatUnit is FORMAT UNIT (SBC-3 5.3, mandatory). A virtual disk has no
// medium to format: with the default parameters (FMTDATA=0), or with a
// parameter list header carrying neither a defect list nor an
// initialization pattern (as sg_format sends it, IMMED or not), it
// completes at once and leaves the data as it is (SBC-3 promises nothing
// about what a formatted block reads; SANITIZE is the command that
// erases). Protection information (FMTPINFO, PROTECTION FIELD USAGE,
// P_I_INFORMATION), defect lists and initialization patterns are
// refused with a field pointer; the defect list format and CMPLST mean
// nothing without a defect list.
func (c *cmdCtx) formatUnit() Result {
	cdb := c.cdb
	if cdb[1]&0xc0 != 0 { // FMTPINFO
		return c.fail(invalidCDB(1, 7))
	}
	if cdb[1]&0x10 == 0 { // FMTDATA
		return c.formatted()
	}
	long := cdb[1]&0x20 != 0 // LONGLIST
	hdr := 4
	if long {
		hdr = 8
	}
	p := c.cmd.DataOut
	if len(p) < hdr {
		return c.fail(senseParamLen)
	}
	dll, dllAt := int(be16(p[2:])), 2
	if long {
		dll, dllAt = int(be32(p[4:])), 4
	}
	switch {
	case p[0]&0x07 != 0: // PROTECTION FIELD USAGE
		return c.fail(invalidParam(0, 2))
	case p[1]&0x08 != 0: // IP: an initialization pattern follows
		return c.fail(invalidParam(1, 3))
	case long && p[3] != 0: // P_I_INFORMATION, PROTECTION INTERVAL EXPONENT
		return c.fail(invalidParam(3, 7))
	case dll != 0:
		return c.fail(invalidParam(dllAt, -1))
	}
	return c.formatted()
}

// formatted ends a FORMAT UNIT that succeeds, saying that the data stayed.
func (c *cmdCtx) formatted() Result {
	c.l.t.log.WithField("lun", c.l.num).Info("FORMAT UNIT: done at once, data left as it was (IET refused the command; SANITIZE erases)")
	return good()
}

// sendDiagnostic is SEND DIAGNOSTIC (SPC-4 6.42, mandatory). The default
// self-test (SELFTEST=1) reads the first and the last logical block from
// the backing store; a store that cannot be read fails it with HARDWARE
// ERROR, LOGICAL UNIT FAILED SELF-TEST. Without SELFTEST and without a
// parameter list nothing is tested (good). The short and extended
// self-tests, which report in a self-test results log page, and
// diagnostic pages are not supported: INVALID FIELD IN CDB. DEVOFFL and
// UNITOFFL are ignored (the test takes nothing off line).
func (c *cmdCtx) sendDiagnostic() Result {
	cdb := c.cdb
	selfTest := cdb[1]&0x04 != 0
	switch {
	case cdb[1]>>5 != 0:
		return c.fail(invalidCDB(1, 7))
	case be16(cdb[3:]) != 0:
		return c.fail(invalidCDB(3, -1))
	case !selfTest:
		return good()
	}
	bs := int64(1) << c.l.shift
	buf := make([]byte, bs)
	for _, off := range []int64{0, int64(c.l.capacity()-1) * bs} {
		if _, err := c.l.store.ReadAt(buf, off); err != nil {
			if errors.Is(err, context.Canceled) {
				return c.ioError(err, false)
			}
			c.l.t.log.WithError(err).WithField("lun", c.l.num).Warn("SEND DIAGNOSTIC self-test: backing store read failed")
			return c.fail(sense(keyHardwareError, ascFailedSelfTest))
		}
	}
	return good()
}

func (c *cmdCtx) readDefectData() Result {
	cdb := c.cdb
	if cdb[0] == 0x37 {
		alloc := int(be16(cdb[7:]))
		d := make([]byte, 4)
		d[1] = cdb[2] & 0x1f // list format as requested, no lists
		return dataIn(d, alloc)
	}
	alloc := int(be32(cdb[6:]))
	d := make([]byte, 8)
	d[1] = cdb[1] & 0x1f
	return dataIn(d, alloc)
}

// Mode pages.
const (
	pageRWRecovery = 0x01
	pageCaching    = 0x08
	pageControl    = 0x0a
	pageInfoExc    = 0x1c
	pageAll        = 0x3f
)

// modePage renders page code pc for page control ctl (0 current, 1
// changeable, 2 default).
func (l *lun) modePage(code byte, ctl byte) []byte {
	switch code {
	case pageRWRecovery:
		p := make([]byte, 12)
		p[0], p[1] = pageRWRecovery, 10
		if ctl != 1 {
			p[2] = 0x80 // AWRE
		}
		return p
	case pageCaching:
		// WCE is the IOMode (wb: 1; wt, ro, nullio: 0) and RCD says the
		// target keeps no read cache (blockio's O_DIRECT, nullio). Neither
		// is changeable: a MODE SELECT that flips WCE (Linux: echo
		// "write back" > .../cache_type) is refused with INVALID FIELD IN
		// PARAMETER LIST; the cache mode is set with IOMode in the config,
		// which a reload applies.
		p := make([]byte, 20)
		p[0], p[1] = pageCaching, 18
		if ctl != 1 {
			if l.wc {
				p[2] |= 0x04 // WCE
			}
			if l.direct || l.cfg.Type == "nullio" {
				p[2] |= 0x01 // RCD
			}
		}
		return p
	case pageControl:
		p := make([]byte, 12)
		p[0], p[1] = pageControl, 10
		l.mu.Lock()
		dsense, swp := l.dsense, l.swp
		l.mu.Unlock()
		switch ctl {
		case 1:
			p[2] = 0x04 // D_SENSE changeable
			p[4] = 0x08 // SWP changeable
		case 0:
			if dsense {
				p[2] |= 0x04
			}
			if swp {
				p[4] |= 0x08
			}
			p[3] = 0x10 // queue algorithm modifier 1: unrestricted reordering
		default:
			p[3] = 0x10
		}
		// EXTENDED SELF-TEST COMPLETION TIME (bytes 10-11) stays 0:
		// SEND DIAGNOSTIC refuses the extended self-test, and FFFFh
		// (65535 s or more, which smartctl reported as the long
		// self-test duration) promised one.
		return p
	case pageInfoExc:
		p := make([]byte, 12)
		p[0], p[1] = pageInfoExc, 10
		return p
	}
	return nil
}

var modePages = []byte{pageRWRecovery, pageCaching, pageControl, pageInfoExc}

func (c *cmdCtx) modeSense() Result {
	cdb := c.cdb
	six := cdb[0] == 0x1a
	dbd := cdb[1]&0x08 != 0
	llbaa := !six && cdb[1]&0x10 != 0
	ctl := cdb[2] >> 6
	code := cdb[2] & 0x3f
	sub := cdb[3]
	var alloc int
	if six {
		alloc = int(cdb[4])
	} else {
		alloc = int(be16(cdb[7:]))
	}
	if ctl == 3 {
		return c.fail(sense(keyIllegalRequest, ascSavingNotSupported))
	}
	var pages []byte
	switch {
	case code == pageAll && (sub == 0 || sub == 0xff):
		for _, pc := range modePages {
			pages = append(pages, c.l.modePage(pc, ctl)...)
		}
	case sub != 0:
		return c.fail(invalidCDB(3, -1))
	default:
		p := c.l.modePage(code, ctl)
		if p == nil {
			return c.fail(invalidCDB(2, 5))
		}
		pages = p
	}
	var bd []byte
	if !dbd {
		nb := c.l.capacity()
		if llbaa {
			bd = make([]byte, 16)
			putBE64(bd, nb)
			putBE32(bd[12:], uint32(c.l.bs))
		} else {
			bd = make([]byte, 8)
			n := nb
			if n > 0xffffffff {
				n = 0xffffffff
			}
			putBE32(bd, uint32(n))
			putBE32(bd[4:], uint32(c.l.bs)&0xffffff)
		}
	}
	dev := byte(0x10) // DPOFUA
	if c.l.writeProtected() {
		dev |= 0x80
	}
	var d []byte
	if six {
		if len(bd) == 16 {
			bd = bd[:0]
		}
		d = make([]byte, 4, 4+len(bd)+len(pages))
		d[2] = dev
		d[3] = byte(len(bd))
		d = append(d, bd...)
		d = append(d, pages...)
		d[0] = byte(len(d) - 1)
	} else {
		d = make([]byte, 8, 8+len(bd)+len(pages))
		d[3] = dev
		if llbaa && len(bd) == 16 {
			d[4] = 0x01
		}
		putBE16(d[6:], uint16(len(bd)))
		d = append(d, bd...)
		d = append(d, pages...)
		putBE16(d, uint16(len(d)-2))
	}
	return dataIn(d, alloc)
}

func (c *cmdCtx) modeSelect() Result {
	cdb := c.cdb
	six := cdb[0] == 0x15
	var plen int
	if six {
		plen = int(cdb[4])
	} else {
		plen = int(be16(cdb[7:]))
	}
	if cdb[1]&0x01 != 0 { // SP
		return c.fail(sense(keyIllegalRequest, ascSavingNotSupported))
	}
	if plen == 0 {
		return good()
	}
	p := c.cmd.DataOut
	if len(p) < plen {
		return c.fail(senseParamLen)
	}
	p = p[:plen]
	hdr := 4
	var bdl int
	if six {
		if len(p) < 4 {
			return c.fail(senseParamLen)
		}
		bdl = int(p[3])
	} else {
		if len(p) < 8 {
			return c.fail(senseParamLen)
		}
		hdr = 8
		bdl = int(be16(p[6:]))
	}
	i := hdr + bdl
	if i > len(p) {
		return c.fail(senseParamLen)
	}
	l := c.l
	l.mu.Lock()
	newD, newSWP := l.dsense, l.swp
	l.mu.Unlock()
	for i < len(p) {
		if i+2 > len(p) {
			return c.fail(senseParamLen)
		}
		code := p[i] & 0x3f
		if p[i]&0x40 != 0 { // SPF: subpages not supported
			return c.fail(invalidParam(i, 6))
		}
		n := int(p[i+1]) + 2
		if i+n > len(p) {
			return c.fail(senseParamLen)
		}
		page := p[i : i+n]
		cur := l.modePage(code, 0)
		chg := l.modePage(code, 1)
		if cur == nil || len(cur) != n {
			return c.fail(invalidParam(i, -1))
		}
		for j := 2; j < n; j++ {
			if (page[j]^cur[j])&^chg[j] != 0 {
				return c.fail(invalidParam(i+j, -1))
			}
		}
		if code == pageControl {
			newD, newSWP = page[2]&0x04 != 0, page[4]&0x08 != 0
		}
		i += n
	}
	l.mu.Lock()
	if newD != l.dsense || newSWP != l.swp {
		l.dsense, l.swp = newD, newSWP
		// SPC-4 (MODE SELECT): every I_T nexus but the one the command
		// came on is told, other sessions of the same initiator too.
		l.establishUALocked(c.key, ascModeParamsChanged)
	}
	l.mu.Unlock()
	return good()
}
