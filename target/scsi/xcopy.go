package scsi

import "bytes"

// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS between LUNs of this
// target (SPC-4 6.4, 6.18).

const (
	xcopyMaxTargetDescs  = 8
	xcopyMaxSegmentDescs = 8
	xcopyMaxListLen      = 1024
	xcopyMaxSegmentBytes = 32 << 20

	ascTooManyTargetDescs   asc = 0x2606
	ascUnsuppTargetDescType asc = 0x2607
	ascTooManySegmentDescs  asc = 0x2608
	ascUnsuppSegDescType    asc = 0x2609
	ascCopyTargetUnreach    asc = 0x0d02
)

// copyStatus is what RECEIVE COPY RESULTS (COPY STATUS) reports for a
// held list identifier.
type copyStatus struct {
	segments uint16
	blocks   uint32
	failed   bool
}

func copyAborted(a asc) senseData { return senseData{key: keyCopyAborted, asc: a} }

// luDesig is one logical-unit designator of VPD page 0x83.
type luDesig struct {
	typ byte // DESIGNATOR TYPE
	val []byte
}

// luDesignators returns the logical-unit designators of the LUN (as in VPD
// page 0x83) for matching EXTENDED COPY target descriptors.
func (l *lun) luDesignators() []luDesig {
	id := l.ident()
	ds := []luDesig{{typ: 1, val: id.t10()}}
	if id.naa != nil {
		ds = append(ds, luDesig{typ: 3, val: id.naa})
	}
	return ds
}

// matches reports whether an identification descriptor CSCD descriptor
// names d: typ and dl are its DESIGNATOR TYPE and LENGTH, field its 20
// designator bytes. A T10 vendor ID designator (24 bytes, the only one of
// an IET LUN) does not fit in those 20 bytes; copy managers that use it
// anyway (libiscsi's) send its first 20 bytes with length 24, and those
// are compared (the caller requires a single unit to match).
func (d luDesig) matches(typ byte, dl int, field []byte) bool {
	if d.typ != typ || len(d.val) != dl {
		return false
	}
	if dl <= len(field) {
		return bytes.Equal(d.val, field[:dl])
	}
	return bytes.Equal(d.val[:len(field)], field)
}

func (c *cmdCtx) extendedCopy() Result {
	cdb := c.cdb
	plen := int(be32(cdb[10:]))
	if plen == 0 {
		return good()
	}
	if plen > xcopyMaxListLen+16 {
		return c.fail(senseParamLen)
	}
	p := c.cmd.DataOut
	if len(p) < plen || plen < 16 {
		return c.fail(senseParamLen)
	}
	p = p[:plen]
	listID := p[0]
	usage := (p[1] >> 3) & 0x03
	tlen := int(be16(p[2:]))
	slen := int(be32(p[8:]))
	inline := int(be32(p[12:]))
	if inline != 0 {
		return c.fail(invalidParam(12, -1))
	}
	if 16+tlen+slen > len(p) {
		return c.fail(senseParamLen)
	}
	if tlen%32 != 0 {
		return c.fail(invalidParam(2, -1))
	}
	if tlen/32 > xcopyMaxTargetDescs {
		return c.fail(sense(keyIllegalRequest, ascTooManyTargetDescs))
	}
	// Count segment descriptors first (their lengths are self-described).
	var segs [][]byte
	var segOff []int // offset of each in the parameter list
	for i := 16 + tlen; i < 16+tlen+slen; {
		if i+4 > len(p) {
			return c.fail(senseParamLen)
		}
		n := int(be16(p[i+2:])) + 4
		if i+n > len(p) {
			return c.fail(senseParamLen)
		}
		segs = append(segs, p[i:i+n])
		segOff = append(segOff, i)
		i += n
	}
	if len(segs) > xcopyMaxSegmentDescs {
		return c.fail(sense(keyIllegalRequest, ascTooManySegmentDescs))
	}
	// Resolve target descriptors to LUNs.
	type tgt struct {
		l   *lun
		nul bool
	}
	var tgts []tgt
	for i := 16; i < 16+tlen; i += 32 {
		d := p[i : i+32]
		if d[0] != 0xe4 {
			return c.fail(sense(keyIllegalRequest, ascUnsuppTargetDescType))
		}
		if (d[1]>>6)&0x03 != 0 { // LU ID TYPE (bits 7-6) other than LUN
			return c.fail(invalidParam(i+1, 7))
		}
		nul := d[1]&0x20 != 0
		dtyp, dl := d[5]&0x0f, int(d[7])
		if dl > 24 {
			return c.fail(invalidParam(i+7, -1))
		}
		var found *lun
		ambiguous := false
		c.l.t.mu.RLock()
		for _, cand := range c.l.t.luns {
			for _, des := range cand.luDesignators() {
				if des.matches(dtyp, dl, d[8:28]) {
					if found != nil && found != cand {
						ambiguous = true
					}
					found = cand
				}
			}
		}
		if ambiguous {
			found = nil // names no single unit: unreachable
		}
		if found != nil {
			// The copy uses the unit: a reload must not close its store
			// under it.
			found.refs.Add(1)
			defer found.release()
		}
		c.l.t.mu.RUnlock()
		tgts = append(tgts, tgt{l: found, nul: nul})
	}
	st := copyStatus{}
	defer func() {
		if usage != 3 {
			c.l.mu.Lock()
			if c.l.copies == nil {
				c.l.copies = map[string]copyStatus{}
			}
			c.l.copies[copyKey(c.key, listID)] = st
			c.l.mu.Unlock()
		}
	}()
	for k, s := range segs {
		if s[0] != 0x02 { // only block device to block device
			st.failed = true
			return c.fail(sense(keyIllegalRequest, ascUnsuppSegDescType))
		}
		if len(s) < 28 {
			st.failed = true
			return c.fail(invalidParam(16+tlen, -1))
		}
		si, di := int(be16(s[4:])), int(be16(s[6:]))
		n := uint64(be16(s[10:]))
		srcLBA, dstLBA := be64(s[12:]), be64(s[20:])
		if si >= len(tgts) || di >= len(tgts) || tgts[si].l == nil || tgts[di].l == nil || tgts[si].nul || tgts[di].nul {
			st.failed = true
			return c.fail(copyAborted(ascCopyTargetUnreach))
		}
		src, dst := tgts[si].l, tgts[di].l
		if n > src.capacity() || srcLBA > src.capacity()-n || n > dst.capacity() || dstLBA > dst.capacity()-n {
			st.failed = true
			// Beyond the end of a copy target: COPY ABORTED with no
			// additional sense (what initiators' copy managers expect).
			return c.fail(copyAborted(ascNone))
		}
		if src.bs != dst.bs {
			st.failed = true
			return c.fail(copyAborted(ascInvalidFieldParam))
		}
		if n<<src.shift > xcopyMaxSegmentBytes {
			// Beyond the MAXIMUM SEGMENT LENGTH we report.
			st.failed = true
			return c.fail(invalidParam(segOff[k]+10, -1))
		}
		// The copy manager reads the source and writes the destination
		// for this I_T nexus: each unit's reservations, medium state and
		// write protection apply as if the nexus sent READ and WRITE.
		if r, ok := c.copyTargetUsable(src, false); !ok {
			st.failed = true
			return r
		}
		if r, ok := c.copyTargetUsable(dst, true); !ok {
			st.failed = true
			return r
		}
		total := int64(n << src.shift)
		chunk := int64(1 << 20)
		buf := make([]byte, min(chunk, max(total, 1)))
		// Within one unit, a destination above an overlapping source is
		// copied from the end (as memmove), or the first chunks written
		// would be read again as source.
		backwards := src == dst && dstLBA > srcLBA && dstLBA < srcLBA+n
		// A SANITIZE started between two chunks ends the copy: the rest
		// would put old data on the sanitized medium.
		genS, genD := src.sanitizeGen.Load(), dst.sanitizeGen.Load()
		nchunks := (total + chunk - 1) / chunk
		for i := int64(0); i < nchunks; i++ {
			if err := c.ctx.Err(); err != nil {
				st.failed = true
				return c.ioError(err, true)
			}
			ci := i
			if backwards {
				ci = nchunks - 1 - i
			}
			done := ci * chunk
			k := min(chunk, total-done)
			// One range at a time (a command never holds two ranges of
			// one unit: that could deadlock against an exclusive one).
			blk := uint64(done) >> src.shift
			tok := src.locks.shared(srcLBA+blk, uint64(k)>>src.shift)
			if src.sanitizeGen.Load() != genS {
				src.locks.release(tok)
				st.failed = true
				return c.fail(copyAborted(ascCopyTargetUnreach))
			}
			_, err := src.store.ReadAt(buf[:k], int64(srcLBA<<src.shift)+done)
			src.locks.release(tok)
			if err != nil {
				st.failed = true
				return c.fail(copyAborted(ascUnrecoveredReadError))
			}
			tok = dst.locks.shared(dstLBA+blk, uint64(k)>>dst.shift)
			if dst.sanitizeGen.Load() != genD {
				dst.locks.release(tok)
				st.failed = true
				return c.fail(copyAborted(ascCopyTargetUnreach))
			}
			err = writeAll(dst.store, buf[:k], int64(dstLBA<<dst.shift)+done)
			dst.locks.release(tok)
			if err != nil {
				st.failed = true
				return c.fail(copyAborted(ascWriteError))
			}
		}
		if !dst.wc {
			if err := dst.syncRange(int64(dstLBA<<dst.shift), total); err != nil {
				st.failed = true
				return c.fail(copyAborted(ascWriteError))
			}
		}
		st.segments++
		st.blocks += uint32(n)
	}
	return good()
}

// Conflict classes of the copy manager's reads and writes.
var (
	copyReadDesc  = &opDesc{name: "EXTENDED COPY source", flags: fMedium | fRead}
	copyWriteDesc = &opDesc{name: "EXTENDED COPY destination", flags: fMedium | fWrite | fData}
)

// copyTargetUsable checks a copy target unit (source or destination) for
// the I_T nexus of the EXTENDED COPY. The unit the command was sent to
// passed these checks on dispatch. A persistent or SPC-2 reservation that
// would refuse the nexus a READ (source) or WRITE (destination) ends the
// command with RESERVATION CONFLICT; a unit that is not ready, is being
// sanitized, or has a unit attention pending for the nexus (left for the
// nexus's own commands to that unit to report) is an unreachable copy
// target (COPY ABORTED, 0D/02); a write-protected destination is DATA
// PROTECT.
func (c *cmdCtx) copyTargetUsable(l *lun, write bool) (Result, bool) {
	if l == c.l {
		return Result{}, true
	}
	d := copyReadDesc
	if write {
		d = copyWriteDesc
	}
	if l.conflicts(c, d) {
		return c.conflict(), false
	}
	l.mu.Lock()
	unready := l.stopped || l.ejected || l.sanitize.running || l.sanitize.failed || len(l.ua[c.key]) > 0
	l.mu.Unlock()
	if unready {
		return c.fail(copyAborted(ascCopyTargetUnreach)), false
	}
	if write && l.writeProtected() {
		return c.fail(senseWriteProt), false
	}
	return Result{}, true
}

func copyKey(nexus string, id byte) string { return nexus + "#" + string(rune(id)) }

func (c *cmdCtx) receiveCopyResults() Result {
	cdb := c.cdb
	sa := cdb[1] & 0x1f
	alloc := int(be32(cdb[10:]))
	switch sa {
	case 0x03: // OPERATING PARAMETERS
		d := make([]byte, 44+2)
		putBE32(d, uint32(len(d)-4))
		d[4] = 0x01 // SNLID
		putBE16(d[8:], xcopyMaxTargetDescs)
		putBE16(d[10:], xcopyMaxSegmentDescs)
		putBE32(d[12:], xcopyMaxListLen)
		putBE32(d[16:], xcopyMaxSegmentBytes)
		putBE16(d[34:], 1) // total concurrent copies
		d[36] = 1          // maximum concurrent copies
		d[37] = 9          // data segment granularity 2^9
		d[38] = 9
		d[39] = 9
		d[43] = 2 // implemented descriptor list length
		d[44], d[45] = 0x02, 0xe4
		return dataIn(d, alloc)
	case 0x00: // COPY STATUS
		id := cdb[2]
		c.l.mu.Lock()
		st, ok := c.l.copies[copyKey(c.key, id)]
		c.l.mu.Unlock()
		if !ok {
			return c.fail(invalidCDB(2, -1))
		}
		d := make([]byte, 12)
		putBE32(d, 8)
		if st.failed {
			d[4] = 0x02
		} else {
			d[4] = 0x01
		}
		putBE16(d[5:], st.segments)
		d[7] = 0xf1 // transfer count in logical blocks
		putBE32(d[8:], st.blocks)
		return dataIn(d, alloc)
	}
	return c.fail(invalidCDB(1, 4))
}

// thirdPartyCopyVPD is VPD page 0x8F: the supported commands descriptor.
func (l *lun) thirdPartyCopyVPD() []byte {
	cmds := []byte{
		0x83, 1, 0x00, // EXTENDED COPY (LID1)
		0x84, 2, 0x00, 0x03, // RECEIVE COPY RESULTS: COPY STATUS, OPERATING PARAMETERS
	}
	body := []byte{byte(len(cmds))}
	body = append(body, cmds...)
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	desc := make([]byte, 4, 4+len(body))
	putBE16(desc, 0x0001) // supported commands
	putBE16(desc[2:], uint16(len(body)))
	return append(desc, body...)
}
