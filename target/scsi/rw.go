package scsi

import (
	"errors"
	"io"

	"github.com/ietgo/ietd/target/backing"
)

// rw is a decoded READ/WRITE-family CDB.
type rw struct {
	lba uint64
	n   uint64
	b1  byte // byte 1 flags (protect, DPO, FUA, ...)
}

func decodeRW(cdb []byte) rw {
	switch len(cdb) {
	case 6:
		n := uint64(cdb[4])
		return rw{lba: uint64(be24(cdb[1:]) & 0x1fffff), n: n}
	case 10:
		return rw{lba: uint64(be32(cdb[2:])), n: uint64(be16(cdb[7:])), b1: cdb[1]}
	case 12:
		return rw{lba: uint64(be32(cdb[2:])), n: uint64(be32(cdb[6:])), b1: cdb[1]}
	}
	return rw{lba: be64(cdb[2:]), n: uint64(be32(cdb[10:])), b1: cdb[1]}
}

// cdbLenOf is the CDB length implied by the opcode group.
func cdbLenOf(op byte) int {
	switch op >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 10
}

// rwCDB decodes with the length of the opcode (the transport may hand a
// 16-byte buffer for a 10-byte CDB).
func (c *cmdCtx) rwCDB() rw { return decodeRW(c.cdb[:cdbLenOf(c.cdb[0])]) }

// checkBlocks validates the range and transfer length of a READ, WRITE
// or VERIFY CDB (of length cl) and returns the transfer size in bytes.
func (c *cmdCtx) checkBlocks(a rw, cl int) (int, Result, bool) {
	if r, ok := c.checkRange(a.lba, a.n); !ok {
		return 0, r, false
	}
	if r, ok := c.checkXfer(a.n, xferField(cl)); !ok {
		return 0, r, false
	}
	return int(a.n << c.l.shift), Result{}, true
}

// checkRange validates lba/n against the capacity.
func (c *cmdCtx) checkRange(lba, n uint64) (Result, bool) {
	nb := c.l.capacity()
	if n > nb || lba > nb-n {
		return c.fail(senseLBARange), false
	}
	return Result{}, true
}

// checkXfer bounds a data transfer.
func (c *cmdCtx) checkXfer(n uint64, fieldByte int) (Result, bool) {
	if n<<c.l.shift > maxXferBlocksBytes || n > maxXferBlocksBytes {
		return c.fail(invalidCDB(fieldByte, -1)), false
	}
	return Result{}, true
}

func xferField(cdbLen int) int {
	switch cdbLen {
	case 6:
		return 4
	case 10:
		return 7
	case 12:
		return 6
	}
	return 10
}

func (c *cmdCtx) read() Result {
	a := c.rwCDB()
	cl := cdbLenOf(c.cdb[0])
	if cl == 6 && a.n == 0 {
		a.n = 256
	}
	if cl > 6 && a.b1&0xe0 != 0 { // RDPROTECT: no protection information
		return c.fail(invalidCDB(1, 7))
	}
	size, r, ok := c.checkBlocks(a, cl)
	if !ok {
		return r
	}
	if size == 0 {
		return Result{Status: StatusGood, XferLen: 0}
	}
	// Only what the initiator will take is read: the transport sends at
	// most ExpectedLen bytes and reports the rest as a residual. Reading
	// the whole CDB length instead allocated it outside the transport's
	// budget (a READ(16) of 65536 blocks with EDTL 512: 32 MiB).
	want := size
	if e := (int(c.cmd.ExpectedLen) + c.l.bs - 1) &^ (c.l.bs - 1); e < want {
		want = e
	}
	buf := c.cmd.DataIn
	if cap(buf) < want {
		buf = make([]byte, want)
	}
	buf = buf[:want]
	tok := c.l.locks.shared(a.lba, a.n)
	_, err := c.l.store.ReadAt(buf, int64(a.lba<<c.l.shift))
	c.l.locks.release(tok)
	if err != nil {
		return c.ioError(err, false)
	}
	return Result{Status: StatusGood, Data: buf, XferLen: size}
}

// dataOut returns the n-block payload the initiator sent, or a failure
// when it sent less than the CDB announces.
func (c *cmdCtx) dataOut(size int) ([]byte, Result, bool) {
	d := c.cmd.DataOut
	if len(d) < size {
		// The initiator sent less than the CDB announces (Expected Data
		// Transfer Length too small): the command is truncated to the
		// whole blocks received and the transport reports the overflow
		// as a residual.
		return d[:len(d)&^(c.l.bs-1)], Result{}, true
	}
	return d[:size], Result{}, true
}

func (c *cmdCtx) writeData(buf []byte, lba uint64, fua bool) (Result, bool) {
	off := int64(lba << c.l.shift)
	if err := writeAll(c.l.store, buf, off); err != nil {
		return c.ioError(err, true), false
	}
	if fua || !c.l.wc {
		if err := c.l.syncRange(off, int64(len(buf))); err != nil {
			return c.ioError(err, true), false
		}
	}
	return Result{}, true
}

// writeAll writes p at off: a store that wrote less than all of it
// without saying why (io.WriterAt forbids it) fails the write with
// io.ErrShortWrite, never GOOD for data that is not there.
func writeAll(s backing.Store, p []byte, off int64) error {
	n, err := s.WriteAt(p, off)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	return err
}

func (c *cmdCtx) write() Result {
	a := c.rwCDB()
	cl := cdbLenOf(c.cdb[0])
	if cl == 6 && a.n == 0 {
		a.n = 256
	}
	if cl > 6 && a.b1&0xe0 != 0 { // WRPROTECT
		return c.fail(invalidCDB(1, 7))
	}
	size, r, ok := c.checkBlocks(a, cl)
	if !ok {
		return r
	}
	if size == 0 {
		return Result{Status: StatusGood, XferLen: 0}
	}
	buf, r, ok := c.dataOut(size)
	if !ok {
		return r
	}
	if len(buf) > 0 {
		tok := c.l.locks.shared(a.lba, uint64(len(buf))>>c.l.shift)
		r, ok := c.writeData(buf, a.lba, a.b1&0x08 != 0)
		c.l.locks.release(tok)
		if !ok {
			return r
		}
	}
	return Result{Status: StatusGood, XferLen: size}
}

// miscompare builds MISCOMPARE sense with the offset of the first
// differing byte in INFORMATION.
func (c *cmdCtx) miscompare(off int) Result {
	s := senseData{key: keyMiscompare, asc: ascMiscompareVerify, info: uint64(off), hasInfo: true}
	return c.fail(s)
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// verify implements VERIFY 10/12/16 (and the verify half of WRITE AND
// VERIFY when bytchk is set).
func (c *cmdCtx) verify() Result {
	a := c.rwCDB()
	cl := cdbLenOf(c.cdb[0])
	if a.b1&0xe0 != 0 { // VRPROTECT
		return c.fail(invalidCDB(1, 7))
	}
	bytchk := (a.b1 >> 1) & 3
	if bytchk == 2 {
		return c.fail(invalidCDB(1, 2))
	}
	size, r, ok := c.checkBlocks(a, cl)
	if !ok {
		return r
	}
	if bytchk == 0 || a.n == 0 {
		return good()
	}
	want := c.cmd.DataOut
	xfer := size // the Data-Out the CDB asks for (residuals)
	if bytchk == 3 {
		xfer = c.l.bs
		if len(want) < c.l.bs {
			return c.fail(invalidCDB(xferField(cl), -1))
		}
		want = want[:c.l.bs]
	} else if len(want) < size {
		return c.fail(invalidCDB(xferField(cl), -1))
	}
	// The medium is read and compared a chunk at a time: BYTCHK 11b sends
	// one block for the whole range, so a buffer of the range's size would
	// be up to the transfer limit for 512 bytes of Data-Out.
	const chunk = 1 << 20
	have := make([]byte, min(size, chunk))
	tok := c.l.locks.shared(a.lba, a.n)
	defer c.l.locks.release(tok)
	base := int64(a.lba << c.l.shift)
	for off := 0; off < size; off += len(have) {
		h := have[:min(len(have), size-off)]
		if _, err := c.l.store.ReadAt(h, base+int64(off)); err != nil {
			return c.ioError(err, false)
		}
		if bytchk == 3 {
			for b := 0; b < len(h); b += c.l.bs {
				if i := firstDiff(h[b:b+c.l.bs], want); i >= 0 {
					return c.miscompare(off + b + i)
				}
			}
		} else if i := firstDiff(h, want[off:off+len(h)]); i >= 0 {
			return c.miscompare(off + i)
		}
	}
	return Result{Status: StatusGood, XferLen: xfer}
}

func (c *cmdCtx) writeVerify() Result {
	a := c.rwCDB()
	cl := cdbLenOf(c.cdb[0])
	if a.b1&0xe0 != 0 {
		return c.fail(invalidCDB(1, 7))
	}
	if a.b1&0x04 != 0 {
		// BYTCHK 10b and 11b are reserved for WRITE AND VERIFY (SBC-4;
		// one compare block makes no sense for data just written).
		return c.fail(invalidCDB(1, 2))
	}
	size, r, ok := c.checkBlocks(a, cl)
	if !ok {
		return r
	}
	if size == 0 {
		return Result{Status: StatusGood, XferLen: 0}
	}
	buf, r, ok := c.dataOut(size)
	if !ok {
		return r
	}
	if len(buf) == 0 {
		return Result{Status: StatusGood, XferLen: size}
	}
	tok := c.l.locks.shared(a.lba, uint64(len(buf))>>c.l.shift)
	defer c.l.locks.release(tok)
	if r, ok := c.writeData(buf, a.lba, true); !ok {
		return r
	}
	if (a.b1>>1)&1 != 0 { // BYTCHK: read back and compare
		have := make([]byte, len(buf))
		if _, err := c.l.store.ReadAt(have, int64(a.lba<<c.l.shift)); err != nil {
			return c.ioError(err, false)
		}
		if i := firstDiff(have, buf); i >= 0 {
			return c.miscompare(i)
		}
	}
	return Result{Status: StatusGood, XferLen: size}
}

// writeSame implements WRITE SAME 10/16 including UNMAP and NDOB.
func (c *cmdCtx) writeSame() Result {
	cdb := c.cdb
	var lba, n uint64
	ndob := false
	if cdb[0] == 0x41 {
		lba, n = uint64(be32(cdb[2:])), uint64(be16(cdb[7:]))
	} else {
		lba, n = be64(cdb[2:]), uint64(be32(cdb[10:]))
		ndob = cdb[1]&0x01 != 0
	}
	if cdb[1]&0xe0 != 0 {
		return c.fail(invalidCDB(1, 7))
	}
	anchor, unmap := cdb[1]&0x10 != 0, cdb[1]&0x08 != 0
	if anchor {
		return c.fail(invalidCDB(1, 4)) // ANC_SUP = 0
	}
	if n == 0 {
		// WSNZ=0: zero blocks means "to the last LBA".
		nb := c.l.capacity()
		if lba >= nb { // the LBA itself must exist
			return c.fail(senseLBARange)
		}
		n = nb - lba
	}
	if n > maxWriteSameBlocks {
		return c.fail(invalidCDB(xferField(cdbLenOf(cdb[0])), -1))
	}
	if r, ok := c.checkRange(lba, n); !ok {
		return r
	}
	var pattern []byte
	if !ndob {
		if len(c.cmd.DataOut) != c.l.bs {
			// WRITE SAME carries exactly one block.
			return c.fail(invalidCDB(xferField(cdbLenOf(cdb[0])), -1))
		}
		pattern = c.cmd.DataOut[:c.l.bs]
	} else {
		pattern = make([]byte, c.l.bs)
	}
	off, length := int64(lba<<c.l.shift), int64(n<<c.l.shift)
	tok := c.l.locks.shared(lba, n)
	defer c.l.locks.release(tok)
	if unmap && c.l.thin && allZero(pattern) {
		// UNMAP: deallocate, which SBC-3 allows only when a read of the
		// deallocated blocks returns the data pattern: ours read as zeros
		// (LBPRZ=1), so any other pattern is written.
		err := c.l.store.Unmap(off, length)
		if err == nil {
			if !c.l.wc {
				// As a write: durable before GOOD, and a failed sync
				// of the LUN before is reported (sticky).
				if err := c.l.syncRange(off, length); err != nil {
					return c.ioError(err, true)
				}
			}
			return good()
		}
		if !errors.Is(err, backing.ErrNotSupported) {
			return c.ioError(err, true)
		}
	}
	// Write the pattern in chunks of up to 1 MiB.
	chunk := 1 << 20
	if int64(chunk) > length {
		chunk = int(length)
	}
	buf := make([]byte, chunk)
	for i := 0; i < chunk; i += c.l.bs {
		copy(buf[i:], pattern)
	}
	for done := int64(0); done < length; {
		if err := c.ctx.Err(); err != nil {
			return c.ioError(err, true)
		}
		k := min(int64(chunk), length-done)
		if err := writeAll(c.l.store, buf[:k], off+done); err != nil {
			return c.ioError(err, true)
		}
		done += k
	}
	if !c.l.wc {
		if err := c.l.syncRange(off, length); err != nil {
			return c.ioError(err, true)
		}
	}
	return good()
}

func allZero(p []byte) bool {
	for _, b := range p {
		if b != 0 {
			return false
		}
	}
	return true
}

// unmapCmd implements UNMAP.
func (c *cmdCtx) unmapCmd() Result {
	cdb := c.cdb
	if cdb[1]&0x01 != 0 { // ANCHOR
		return c.fail(invalidCDB(1, 0))
	}
	plen := int(be16(cdb[7:]))
	if plen == 0 {
		return good()
	}
	if !c.l.thin {
		return c.fail(senseInvalidOpcode)
	}
	p := c.cmd.DataOut
	if len(p) < plen {
		plen = len(p)
	}
	if plen < 8 {
		return c.fail(senseParamLen)
	}
	p = p[:plen]
	bdl := int(be16(p[2:]))
	if bdl > plen-8 {
		bdl = (plen - 8)
	}
	bdl &^= 15
	if bdl/16 > maxUnmapDescs {
		return c.fail(invalidParam(2, -1))
	}
	nb := c.l.capacity()
	type ext struct{ lba, n uint64 }
	var exts []ext
	for i := 8; i+16 <= 8+bdl; i += 16 {
		lba, n := be64(p[i:]), uint64(be32(p[i+8:]))
		if n > nb || lba > nb-n {
			return c.fail(senseLBARange)
		}
		if n > 0 {
			exts = append(exts, ext{lba, n})
		}
	}
	lo, hi := nb, uint64(0) // the blocks unmapped: [lo, hi)
	for _, e := range exts {
		tok := c.l.locks.shared(e.lba, e.n)
		err := c.l.store.Unmap(int64(e.lba<<c.l.shift), int64(e.n<<c.l.shift))
		c.l.locks.release(tok)
		if err != nil {
			if errors.Is(err, backing.ErrNotSupported) {
				continue
			}
			return c.ioError(err, true)
		}
		lo, hi = min(lo, e.lba), max(hi, e.lba+e.n)
	}
	if !c.l.wc && hi > lo {
		// Write-through: as durable as a write, and a failed sync of
		// the LUN before is reported (sticky).
		if err := c.l.syncRange(int64(lo<<c.l.shift), int64((hi-lo)<<c.l.shift)); err != nil {
			return c.ioError(err, true)
		}
	}
	return good()
}

// compareAndWrite implements COMPARE AND WRITE atomically.
func (c *cmdCtx) compareAndWrite() Result {
	cdb := c.cdb
	if cdb[1]&0xe0 != 0 {
		return c.fail(invalidCDB(1, 7))
	}
	lba, n := be64(cdb[2:]), uint64(cdb[13])
	if n > maxCAWBlocks {
		return c.fail(invalidCDB(13, -1))
	}
	if r, ok := c.checkRange(lba, n); !ok {
		return r
	}
	if n == 0 {
		if c.cmd.ExpectedLen != 0 {
			// The CDB cannot say 256 blocks (one byte): data for more
			// than the field holds is an invalid NUMBER OF LOGICAL BLOCKS.
			return c.fail(invalidCDB(13, -1))
		}
		return good()
	}
	size := int(n << c.l.shift)
	if len(c.cmd.DataOut) != 2*size {
		// The Data-Out must hold exactly the verify and write blocks.
		return c.fail(invalidCDB(13, -1))
	}
	verify, data := c.cmd.DataOut[:size], c.cmd.DataOut[size:2*size]
	// Exclusive over the range: no other command, from any nexus, reads
	// or writes these blocks between the compare and the write.
	tok := c.l.locks.exclusive(lba, n)
	defer c.l.locks.release(tok)
	have := make([]byte, size)
	off := int64(lba << c.l.shift)
	if _, err := c.l.store.ReadAt(have, off); err != nil {
		return c.ioError(err, false)
	}
	if i := firstDiff(have, verify); i >= 0 {
		return c.miscompare(i)
	}
	if r, ok := c.writeData(data, lba, cdb[1]&0x08 != 0); !ok {
		return r
	}
	return Result{Status: StatusGood, XferLen: 2 * size}
}

// orWrite implements ORWRITE(16): new = old OR data, atomically.
func (c *cmdCtx) orWrite() Result {
	a := c.rwCDB()
	if a.b1&0xe0 != 0 {
		return c.fail(invalidCDB(1, 7))
	}
	if r, ok := c.checkRange(a.lba, a.n); !ok {
		return r
	}
	if r, ok := c.checkXfer(a.n, 10); !ok {
		return r
	}
	size := int(a.n << c.l.shift)
	if size == 0 {
		return good()
	}
	buf, r, ok := c.dataOut(size)
	if !ok {
		return r
	}
	if len(buf) == 0 {
		return Result{Status: StatusGood, XferLen: size}
	}
	tok := c.l.locks.exclusive(a.lba, uint64(len(buf))>>c.l.shift)
	defer c.l.locks.release(tok)
	have := make([]byte, len(buf))
	off := int64(a.lba << c.l.shift)
	if _, err := c.l.store.ReadAt(have, off); err != nil {
		return c.ioError(err, false)
	}
	for i := range have {
		have[i] |= buf[i]
	}
	if r, ok := c.writeData(have, a.lba, a.b1&0x08 != 0); !ok {
		return r
	}
	return Result{Status: StatusGood, XferLen: size}
}

// writeAtomic implements WRITE ATOMIC(16): the whole transfer is written
// under an exclusive range lock, so no other command (read or write, any
// nexus) sees or makes a torn result.
func (c *cmdCtx) writeAtomic() Result {
	cdb := c.cdb
	if cdb[1]&0xe0 != 0 {
		return c.fail(invalidCDB(1, 7))
	}
	lba, n := be64(cdb[2:]), uint64(be16(cdb[12:]))
	if be16(cdb[10:]) != 0 {
		// ATOMIC BOUNDARY: we advertise no maximum atomic transfer
		// length with boundary, so only single atomic writes.
		return c.fail(invalidCDB(10, -1))
	}
	if r, ok := c.checkRange(lba, n); !ok {
		return r
	}
	if n<<c.l.shift > maxAtomicBytes {
		return c.fail(invalidCDB(12, -1))
	}
	size := int(n << c.l.shift)
	if size == 0 {
		return good()
	}
	buf, r, ok := c.dataOut(size)
	if !ok {
		return r
	}
	if len(buf) == 0 {
		return Result{Status: StatusGood, XferLen: size}
	}
	// Exclusive: reads and writes of these blocks see all or nothing.
	tok := c.l.locks.exclusive(lba, uint64(len(buf))>>c.l.shift)
	defer c.l.locks.release(tok)
	if r, ok := c.writeData(buf, lba, cdb[1]&0x08 != 0); !ok {
		return r
	}
	return Result{Status: StatusGood, XferLen: size}
}

func (c *cmdCtx) prefetch() Result {
	var lba, n uint64
	if c.cdb[0] == 0x34 {
		lba, n = uint64(be32(c.cdb[2:])), uint64(be16(c.cdb[7:]))
	} else {
		lba, n = be64(c.cdb[2:]), uint64(be32(c.cdb[10:]))
	}
	if r, ok := c.checkRange(lba, n); !ok {
		return r
	}
	return good()
}

func (c *cmdCtx) syncCache() Result {
	var lba, n uint64
	if c.cdb[0] == 0x35 {
		lba, n = uint64(be32(c.cdb[2:])), uint64(be16(c.cdb[7:]))
	} else {
		lba, n = be64(c.cdb[2:]), uint64(be32(c.cdb[10:]))
	}
	if r, ok := c.checkRange(lba, n); !ok {
		return r
	}
	var err error
	if n == 0 {
		err = c.l.sync()
	} else {
		err = c.l.syncRange(int64(lba<<c.l.shift), int64(n<<c.l.shift))
	}
	if err != nil {
		return c.ioError(err, true)
	}
	return good()
}

// Allocator is implemented by stores that can tell allocated ranges from
// holes (GET LBA STATUS).
type Allocator interface {
	// Allocated reports whether off is backed by storage and how many
	// bytes from off share that state.
	Allocated(off, n int64) (mapped bool, run int64, err error)
}

func (c *cmdCtx) getLBAStatus() Result {
	cdb := c.cdb
	lba := be64(cdb[2:])
	alloc := int(be32(cdb[10:]))
	nb := c.l.capacity()
	if lba >= nb {
		return c.fail(senseLBARange)
	}
	maxDesc := 64
	if alloc > 8 {
		maxDesc = min(maxDesc, (alloc-8)/16)
	}
	if maxDesc < 1 {
		maxDesc = 1
	}
	d := make([]byte, 8, 8+16*maxDesc)
	al, _ := c.l.store.(Allocator)
	cur := lba
	for k := 0; k < maxDesc && cur < nb; k++ {
		mapped, runBlocks := true, nb-cur
		if al != nil {
			m, run, err := al.Allocated(int64(cur<<c.l.shift), int64((nb-cur)<<c.l.shift))
			if err == nil && run > 0 {
				mapped = m
				runBlocks = uint64(run) >> c.l.shift
				if runBlocks == 0 {
					runBlocks = 1
				}
				runBlocks = min(runBlocks, nb-cur)
			}
		}
		desc := make([]byte, 16)
		putBE64(desc, cur)
		n := min(runBlocks, 0xffffffff)
		putBE32(desc[8:], uint32(n))
		if !mapped {
			desc[12] = 1 // deallocated
		}
		d = append(d, desc...)
		cur += n
		if al == nil {
			break
		}
	}
	putBE32(d, uint32(len(d)-4))
	return dataIn(d, alloc)
}
