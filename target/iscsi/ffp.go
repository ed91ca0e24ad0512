package iscsi

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
)

var (
	errProtocol    = errors.New("iscsi: protocol error")
	errConnClosing = errors.New("iscsi: connection closing")
)

// ffpLoop is the reader of the full feature phase.
func (c *conn) ffpLoop() error {
	for {
		c.waitRoom()
		if err := c.rd.ReadHeader(&c.hdr); err != nil {
			return err
		}
		c.lastRecv.Store(time.Now().UnixNano())
		h := &c.hdr.BHS
		if n := h.DataLen(); n > c.recvLimit && n > 8192 {
			c.reject(h, rejectProtocolError)
			return fmt.Errorf("%w: data segment of %d bytes exceeds %d", errProtocol, n, c.recvLimit)
		}
		var err error
		switch h.Opcode() {
		case pdu.OpSCSICmd:
			if c.sess.discovery {
				err = c.rejectAndDiscard(h, rejectProtocolError)
			} else {
				err = c.handleCommand(h)
			}
		case pdu.OpDataOut:
			if c.sess.discovery {
				err = c.rejectAndDiscard(h, rejectProtocolError)
			} else {
				err = c.handleDataOut(h)
			}
		case pdu.OpNOPOut:
			err = c.handleNOPOut(h)
		case pdu.OpTextReq:
			err = c.handleText(h)
		case pdu.OpTMFReq:
			if c.sess.discovery {
				err = c.rejectAndDiscard(h, rejectProtocolError)
			} else {
				err = c.handleTMF(h)
			}
		case pdu.OpLogoutReq:
			err = c.handleLogout(h)
		case pdu.OpLoginReq:
			err = c.rejectAndDiscard(h, rejectProtocolError)
		default:
			err = c.rejectAndDiscard(h, rejectNotSupported)
		}
		if err != nil {
			return err
		}
		if c.sess.released {
			// A CmdSN gap filled: held commands and parked TMFs go.
			c.sess.release()
		}
	}
}

func (c *conn) rejectAndDiscard(h *pdu.BHS, reason byte) error {
	c.reject(h, reason)
	return c.discard(h.DataLen())
}

func (c *conn) discard(n int) error {
	err := c.rd.Discard(n)
	return err
}

// readSmall reads a small data segment (NOP, Text, TMF) into a new buffer.
func (c *conn) readSmall(n int) ([]byte, error) {
	b := make([]byte, n)
	return b, c.rd.ReadData(b)
}

// consumeCmdSN applies CmdSN rules to a non-command request that does
// not stay in flight (NOP-Out, Text, TMF, Logout).
func (c *conn) consumeCmdSN(h *pdu.BHS) bool {
	if h.Immediate() {
		return true
	}
	return c.sess.receiveEnded(h.CmdSN())
}

func (c *conn) handleNOPOut(h *pdu.BHS) error {
	data, err := c.readSmall(h.DataLen())
	if errors.Is(err, pdu.ErrDataDigest) {
		c.reject(h, rejectDataDigest)
		return nil
	} else if err != nil {
		return err
	}
	if ttt := h.TTT(); ttt != pdu.ReservedTag {
		c.pingTTT.CompareAndSwap(ttt, 0)
	}
	itt := h.ITT()
	if itt == pdu.ReservedTag {
		return nil
	}
	if !c.consumeCmdSN(h) {
		return nil
	}
	if limit := int(c.sendLimit.Load()); len(data) > limit {
		data = data[:limit]
	}
	var o outPDU
	o.bhs.SetOpcode(pdu.OpNOPIn)
	o.bhs.SetFlags(pdu.FlagFinal)
	o.bhs.SetLUNField(h.LUNField())
	o.bhs.SetU32(pdu.OffITT, itt)
	o.bhs.SetU32(pdu.OffTTT, pdu.ReservedTag)
	o.data = data
	o.stat = statAdvance
	c.enqueue(o)
	return nil
}

func (c *conn) handleCommand(h *pdu.BHS) error {
	ss := c.sess
	if h.Immediate() {
		// Immediate commands skip the window: bound them per session
		// (RFC 7143 11.17.1 reason 0x06).
		if ss.immediate.Load() >= maxImmediateCommands {
			return c.rejectAndDiscard(h, rejectImmediate)
		}
	} else if !ss.acceptCmdSN(h.CmdSN()) {
		// Outside the window: silently ignored (RFC 7143 4.2.2.1).
		return c.discard(h.DataLen())
	}
	if n := h.DataLen(); n > 0 && (!c.params.ImmediateData || n > c.params.FirstBurstLength) {
		// Immediate data not negotiated, or more than FirstBurstLength:
		// a protocol error (RFC 7143 13.10, 13.14). The command does not
		// run; its CmdSN is used up.
		if !h.Immediate() {
			ss.openSlot(nil)
		}
		return c.rejectAndDiscard(h, rejectProtocolError)
	}
	fl := h.Flags()
	t := &task{
		ss: ss, itt: h.ITT(), cmdSN: h.CmdSN(), immediate: h.Immediate(),
		lunRaw: h.LUNField(), read: fl&pdu.FlagRead != 0, write: fl&pdu.FlagWrite != 0,
		edtl: h.TTT(),
	}
	if t.immediate {
		ss.immediate.Add(1) // given back by finish
	}
	t.lun = pdu.DecodeLUN(t.lunRaw)
	copy(t.cdb[:], h.CDB())
	cdb := t.cdb[:]
	if ahs := c.hdr.AHSBytes(); len(ahs) >= 4 && ahs[2] == 1 { // extended CDB AHS
		// AHSLength l counts the reserved byte and the l-1 CDB bytes
		// after it (RFC 7143 11.2.2.3): they are ahs[4:3+l].
		l := int(ahs[0])<<8 | int(ahs[1])
		if l > 1 && 3+l <= len(ahs) {
			cdb = append(append([]byte(nil), t.cdb[:]...), ahs[4:3+l]...)
		}
	}
	t.cmd = scsi.Command{Nexus: ss.nexus, LUN: t.lun, CDB: cdb, Attr: scsi.TaskAttr(fl & 7),
		Tag: t.itt, ExpectedLen: t.edtl, Read: t.read, Write: t.write}
	n := h.DataLen()
	if !t.write || t.edtl == 0 || t.edtl > maxCommandBuffer {
		if err := c.discard(n); err != nil {
			t.finish()
			return err
		}
		// Complete at once: the workers' from the start (a TMF of
		// another session aborting it leaves it to them).
		t.dispatched.Store(true)
		if !ss.addTask(t) {
			t.finish()
			c.reject(h, rejectInvalidPDU)
			return nil
		}
		ss.enterTaskSet(t)
		if t.edtl > maxCommandBuffer {
			// Refuse absurd transfers instead of allocating them.
			c.failTask(t, 0x05, 0x24, 0x00) // ILLEGAL REQUEST, INVALID FIELD IN CDB
			return nil
		}
		ss.dispatch(t)
		return nil
	}
	// Charge the data budget. Waiting here stops reading the socket, so
	// the initiator's data stays in its own and the kernel's buffers; but
	// a reader must not wait while writes of its session wait for the
	// Data-Out behind it. Then, when only immediate data comes
	// unsolicited, it takes in just that and defers the rest: the R2Ts go
	// out once memory frees (memBudget.deferGrant).
	//
	// The task is registered only once its immediate data is in: until
	// then no one else (a TMF of another session) can see its buffer.
	p := &c.params
	first := uint32(0)
	if !p.InitialR2T && !h.Final() {
		// F=0: unsolicited Data-Out follows, up to FirstBurstLength;
		// F=1 says none does (RFC 7143 11.3.1): the R2Ts start right
		// after the immediate data.
		first = min(uint32(p.FirstBurstLength), t.edtl)
	}
	imm := uint32(min(n, int(t.edtl)))
	need, deferred := int64(t.edtl), false
	if !ss.srv.mem.tryAcquire(ss, need) {
		if first == 0 && imm < t.edtl && ss.awaitingAny() {
			need, deferred = int64(imm), true
			ss.srv.mem.force(ss, need)
		} else if !ss.srv.mem.acquireReader(t, need, ss.awaitingAny, c.isClosing) {
			t.finish()
			return errConnClosing
		}
	}
	t.charged = need
	t.cov.limit = p.MaxOutstandingR2T + 2
	if need > 0 {
		t.outBuf = ss.srv.pool.Get(int(need))
	}
	// Immediate data.
	if n > 0 {
		m := int(imm)
		err := c.rd.ReadDataParts(t.outBuf[:m], nil)
		if n > m {
			// More immediate data than EDTL: keep the stream in sync.
			if err == nil {
				err = c.discardExtra(t.outBuf[:m], n-m)
			}
		}
		if errors.Is(err, pdu.ErrDataDigest) {
			c.reject(h, rejectDataDigest)
			t.finish()
			return fmt.Errorf("%w: data digest error on immediate data", errProtocol)
		} else if err != nil {
			t.finish()
			return err
		}
		t.received = uint32(m)
		t.cov.add(0, uint32(m))
	}
	t.unsolEnd = max(first, t.received)
	t.nextR2T = t.unsolEnd
	complete := t.received >= t.edtl
	if complete {
		t.cmd.DataOut = t.outBuf[:t.edtl]
		t.dispatched.Store(true)
	}
	if !ss.addTask(t) {
		t.finish()
		c.reject(h, rejectInvalidPDU)
		return nil
	}
	ss.enterTaskSet(t)
	if complete {
		ss.dispatch(t)
		return nil
	}
	if deferred {
		t.deferred.Store(true)
		ss.srv.mem.deferGrant(t, int64(t.edtl)-need, need)
		return nil
	}
	t.mu.Lock()
	if !t.ended.Load() { // not aborted by another session meanwhile
		if t.unsolEnd > t.received {
			// Unsolicited Data-Out is due now (R2Ts are stamped when
			// the writer has sent them).
			t.dataOutWait.Store(c.lastRecv.Load())
		}
		t.awaiting.Store(true)
		c.sendR2Ts(t)
	}
	t.mu.Unlock()
	return nil
}

// grant gives a deferred write the rest of its buffer (n more bytes of
// budget, already counted) and sends its R2Ts. Called by whoever freed
// the memory, on any goroutine.
func (t *task) grant(n int64) {
	ss := t.ss
	t.mu.Lock()
	if t.ended.Load() {
		t.mu.Unlock()
		ss.srv.mem.release(ss, n) // not under t.mu: it may grant others
		return
	}
	defer t.mu.Unlock()
	buf := ss.srv.pool.Get(int(t.edtl))
	if t.outBuf != nil {
		copy(buf, t.outBuf[:t.received])
		if t.reading {
			// The reader is in a Data-Out of this task (one it skips:
			// a deferred write has no R2T out and no unsolicited
			// window). Should it ever read into the old buffer, that
			// buffer must not go back to the pool under it, and the
			// command must not run on the copy: let the GC have it
			// and fail the command.
			t.dataErr = true
		} else {
			ss.srv.pool.Put(t.outBuf)
		}
	}
	t.outBuf = buf
	t.charged += n
	t.deferred.Store(false)
	t.awaiting.Store(true)
	if c := ss.connection(); c != nil {
		c.sendR2Ts(t)
	}
	ss.srv.mem.wakeReader(ss) // its reader may wait while none of its writes awaited Data-Out
}

// failTask ends a write command without executing it: CHECK CONDITION
// with the given sense key and additional sense code.
func (c *conn) failTask(t *task, key, asc, ascq byte) {
	t.write = false
	t.cmd.Write = false
	t.dispatched.Store(true)
	t.res = scsi.Result{Status: scsi.StatusCheckCondition, XferLen: -1,
		Sense: []byte{0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0}}
	t.responded = true
	t.releaseSlot()
	c.enqueueTask(t)
}

// discardExtra is used when immediate data exceeded EDTL; digests are not
// checked for the split case (the command fails anyway).
func (c *conn) discardExtra(_ []byte, extra int) error {
	return c.rd.Discard(extra)
}

// sendR2Ts issues R2Ts up to MaxOutstandingR2T (under t.mu). A deferred
// write has no buffer for them yet: grant sends them.
func (c *conn) sendR2Ts(t *task) {
	if t.deferred.Load() {
		return
	}
	p := &c.params
	maxOut := max(p.MaxOutstandingR2T, 1)
	burst := uint32(max(p.MaxBurstLength, 512))
	for len(t.r2ts) < maxOut && len(t.resolicit) > 0 {
		g := &t.resolicit[0]
		l := min(burst, g.end-g.start)
		c.sendR2T(t, g.start, l)
		if g.start += l; g.start == g.end {
			t.resolicit = t.resolicit[1:]
		}
	}
	for len(t.r2ts) < maxOut && t.nextR2T < t.edtl {
		l := min(burst, t.edtl-t.nextR2T)
		c.sendR2T(t, t.nextR2T, l)
		t.nextR2T += l
	}
}

// sendR2T solicits [off, off+l) (under t.mu).
func (c *conn) sendR2T(t *task, off, l uint32) {
	r := r2tState{ttt: c.sess.nextTTT(), offset: off, length: l}
	t.r2ts = append(t.r2ts, r)
	var o outPDU
	o.bhs.SetOpcode(pdu.OpR2T)
	o.bhs.SetFlags(pdu.FlagFinal)
	o.bhs.SetLUNField(t.lunRaw)
	o.bhs.SetU32(pdu.OffITT, t.itt)
	o.bhs.SetU32(pdu.OffTTT, r.ttt)
	o.bhs.SetU32(pdu.OffDataSN, t.r2tSN)
	o.bhs.SetU32(pdu.OffBufOffset, r.offset)
	o.bhs.SetU32(pdu.OffResidual, r.length)
	o.stat = statCarry
	o.r2t = t
	t.r2tSN++
	c.enqueue(o)
}

func (c *conn) handleDataOut(h *pdu.BHS) error {
	ss := c.sess
	n := h.DataLen()
	t := ss.task(h.ITT())
	if t == nil || t.dispatched.Load() || t.isAborted() || !t.write {
		// Unknown or aborted task: drop the data.
		return c.discard(n)
	}
	c.lastDataOut.Store(c.lastRecv.Load())
	off, ttt, dsn := h.BufferOffset(), h.TTT(), h.DataSN()
	if uint64(off)+uint64(n) > uint64(t.edtl) {
		c.reject(h, rejectInvalidPDU)
		return fmt.Errorf("%w: Data-Out beyond the expected length", errProtocol)
	}
	// t.mu: a deferred write's R2T state and buffer are set by grant,
	// and a TMF of another session may finish the task.
	t.mu.Lock()
	if t.ended.Load() {
		t.mu.Unlock()
		return c.discard(n)
	}
	var seq *r2tState
	if ttt == pdu.ReservedTag {
		if off+uint32(n) > t.unsolEnd {
			t.mu.Unlock()
			c.reject(h, rejectProtocolError)
			return fmt.Errorf("%w: unsolicited Data-Out beyond FirstBurstLength (offset %d)", errProtocol, off)
		}
		if t.unsolDone {
			t.mu.Unlock()
			c.reject(h, rejectProtocolError)
			return fmt.Errorf("%w: unsolicited Data-Out after the one with the F bit (offset %d)", errProtocol, off)
		}
		if dsn != t.unsolDataSN {
			t.dataErr = true // an implied digest error (RFC 7143 7.8)
		}
		t.unsolDataSN++
		t.unsolDone = h.Final()
	} else {
		for i := range t.r2ts {
			if t.r2ts[i].ttt == ttt {
				seq = &t.r2ts[i]
			}
		}
		if seq == nil || off < seq.offset || off+uint32(n) > seq.offset+seq.length {
			// A TTT no R2T of the task has, or a buffer offset out of
			// its R2T: "invalid PDU field" (RFC 7143 11.17.1, note 2).
			t.mu.Unlock()
			c.reject(h, rejectInvalidPDU)
			return fmt.Errorf("%w: Data-Out does not match its R2T (offset %d)", errProtocol, off)
		}
		if dsn != seq.dataSN {
			t.dataErr = true // an implied digest error (RFC 7143 7.8)
		}
		seq.dataSN++
	}
	if uint64(off)+uint64(n) > uint64(len(t.outBuf)) {
		// Only a deferred write's buffer is shorter than EDTL, and it
		// has no R2T out and no unsolicited window left.
		t.mu.Unlock()
		c.reject(h, rejectProtocolError)
		return fmt.Errorf("%w: Data-Out for a write not yet given its buffer (offset %d)", errProtocol, off)
	}
	overlap := !t.cov.add(off, uint32(n))
	if overlap {
		// The same bytes twice: the count of received bytes would reach
		// the expected length with a gap left, and the gap (pooled
		// memory, an earlier command's data) would be written. At
		// ErrorRecoveryLevel 0 nothing resends data: the command fails,
		// and the stray bytes are skipped, not read into its buffer.
		t.dataOverlap = true
	}
	dst := t.outBuf[off : off+uint32(n)]
	t.reading = true
	t.mu.Unlock()
	var err error
	if overlap {
		err = c.discard(n)
	} else {
		err = c.rd.ReadData(dst)
	}
	t.mu.Lock()
	if t.endRead() {
		// Finished meanwhile (aborted by a TMF of another session).
		t.mu.Unlock()
		if errors.Is(err, pdu.ErrDataDigest) {
			err = nil
		}
		return err
	}
	if errors.Is(err, pdu.ErrDataDigest) {
		// RFC 7143 7.8: reject and discard; the task ends with CHECK
		// CONDITION once all its data arrived (the connection stays).
		c.reject(h, rejectDataDigest)
		t.dataErr = true
	} else if err != nil {
		t.mu.Unlock()
		return err
	}
	t.received += uint32(n)
	// seqStart, seqEnd: the range of the sequence this PDU ends (F=1).
	var seqStart, seqEnd uint32
	if seq != nil {
		seq.received += uint32(n)
		if seq.received >= seq.length || h.Final() {
			// Sequence complete: retire it and solicit more.
			seqStart, seqEnd = seq.offset, seq.offset+seq.length
			for i := range t.r2ts {
				if &t.r2ts[i] == seq {
					t.r2ts = append(t.r2ts[:i], t.r2ts[i+1:]...)
					break
				}
			}
		}
	} else if h.Final() {
		seqStart, seqEnd = 0, t.unsolEnd
	}
	if seqEnd > seqStart && t.received < t.edtl {
		// A sequence ended with bytes of its range not sent (F=1
		// early): nothing else would ask for them and the command
		// would wait until the initiator gave up. Ask again.
		t.cov.holes(seqStart, seqEnd, func(g span) {
			t.resolicit = append(t.resolicit, g)
		})
		if len(t.resolicit) > 0 && c.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			c.log.WithField("itt", t.itt).Debugf("Data-Out sequence %d-%d ended with data missing; soliciting %v again", seqStart, seqEnd, t.resolicit)
		}
	}
	if t.received >= t.edtl {
		t.awaiting.Store(false)
		if !t.dataErr && !t.dataOverlap {
			t.cmd.DataOut = t.outBuf[:t.edtl]
		}
		t.dispatched.Store(true)
		t.mu.Unlock() // dispatch and failTask may end the task (finish takes t.mu)
		if t.dataErr {
			// Lost or damaged Data-Out: never write it.
			c.failTask(t, 0x0b, 0x47, 0x05) // ABORTED COMMAND, PROTOCOL SERVICE CRC ERROR
			return nil
		}
		if t.dataOverlap {
			if c.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
				c.log.WithField("itt", t.itt).Debug("Data-Out overlapped data already received; command failed, nothing written")
			}
			c.failTask(t, 0x0b, 0x4b, 0x00) // ABORTED COMMAND, DATA PHASE ERROR
			return nil
		}
		ss.dispatch(t)
		return nil
	}
	if seq != nil || (ttt == pdu.ReservedTag && h.Final()) {
		c.sendR2Ts(t)
	}
	t.mu.Unlock()
	return nil
}

func (c *conn) handleText(h *pdu.BHS) error {
	data, err := c.readSmall(h.DataLen())
	if errors.Is(err, pdu.ErrDataDigest) {
		c.reject(h, rejectDataDigest)
		return nil
	} else if err != nil {
		return err
	}
	if !c.consumeCmdSN(h) {
		return nil
	}
	cont := h.Flags()&pdu.FlagContinue != 0
	if cont && h.Final() {
		// RFC 7143 11.10.2: a Text Request with C=1 MUST have F=0.
		c.textRest, c.textPending = nil, nil
		return c.rejectSmall(h, rejectProtocolError)
	}
	var answer []byte
	ttt := h.TTT()
	// A continuation names the ITT and the TTT of the exchange it
	// continues (RFC 7143 11.10.4); anything else starts a new one.
	ours := ttt != pdu.ReservedTag && ttt == c.textTTT && h.ITT() == c.textITT
	if ours && c.textRest != nil {
		answer, c.textRest = c.textRest, nil
	} else {
		c.textRest = nil
		if ours && c.textPending != nil {
			// The next part of the initiator's text (it set C=1).
			if len(c.textPending)+len(data) > maxTextPending {
				c.textPending = nil
				return c.rejectSmall(h, rejectProtocolError)
			}
			data = append(c.textPending, data...)
		}
		c.textPending = nil
		if cont {
			// More text follows: an empty answer with F=0 and a
			// target transfer tag asks for it (RFC 7143 6.2).
			if len(data) > maxTextPending {
				return c.rejectSmall(h, rejectProtocolError)
			}
			c.textPending = data
			if c.textPending == nil {
				c.textPending = []byte{}
			}
			c.textTTT, c.textITT = c.sess.nextTTT(), h.ITT()
			var o outPDU
			o.bhs.SetOpcode(pdu.OpTextResp)
			o.bhs.SetU32(pdu.OffITT, h.ITT())
			o.bhs.SetLUNField(h.LUNField())
			o.bhs.SetU32(pdu.OffTTT, c.textTTT)
			o.stat = statAdvance
			c.enqueue(o)
			return nil
		}
		kvs, err := login.ParseKeys(data)
		if err != nil {
			return c.rejectSmall(h, rejectProtocolError)
		}
		newLimit, listed := 0, false
		for _, kv := range kvs {
			if kv.Key == "SendTargets" {
				if listed {
					// One listing per request: repeating the key must
					// not multiply the answer (and the ACL checks).
					answer = login.AppendKey(answer, kv.Key, "Reject")
					continue
				}
				listed = true
				answer = append(answer, c.sendTargets(kv.Value)...)
				continue
			}
			a := login.NegotiateFullFeature(kv.Key, kv.Value)
			if a.Value != "" {
				answer = login.AppendKey(answer, kv.Key, a.Value)
			}
			if a.MaxRecvDSL > 0 {
				newLimit = a.MaxRecvDSL
			}
		}
		if newLimit > 0 {
			// The initiator declared a new MaxRecvDataSegmentLength
			// (RFC 7143 13.12: Use ALL); our configured
			// MaxXmitDataSegmentLength still caps what we send.
			c.params.InitiatorMaxRecvDSL = newLimit
			c.sendLimit.Store(int32(c.params.SendSegmentLimit()))
			if c.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
				c.log.WithField("MaxRecvDataSegmentLength", newLimit).Debug("initiator declared a new MaxRecvDataSegmentLength")
			}
		}
	}
	var o outPDU
	o.bhs.SetOpcode(pdu.OpTextResp)
	o.bhs.SetU32(pdu.OffITT, h.ITT())
	o.bhs.SetLUNField(h.LUNField())
	if limit := int(c.sendLimit.Load()); len(answer) > limit {
		// Split at a key boundary when possible.
		cut := limit
		for i := cut - 1; i > 0; i-- {
			if answer[i] == 0 {
				cut = i + 1
				break
			}
		}
		c.textRest = answer[cut:]
		answer = answer[:cut]
		c.textTTT, c.textITT = c.sess.nextTTT(), h.ITT()
		o.bhs.SetFlags(pdu.FlagContinue)
		o.bhs.SetU32(pdu.OffTTT, c.textTTT)
	} else if !h.Final() {
		// RFC 7143 11.11.1: the answer to a request with F=0 (the
		// initiator has more to negotiate) has F=0 too, and with it a
		// target transfer tag the next request of the exchange names.
		c.textTTT, c.textITT = c.sess.nextTTT(), h.ITT()
		o.bhs.SetU32(pdu.OffTTT, c.textTTT)
	} else {
		o.bhs.SetFlags(pdu.FlagFinal)
		o.bhs.SetU32(pdu.OffTTT, pdu.ReservedTag)
	}
	o.data = answer
	o.stat = statAdvance
	c.enqueue(o)
	return nil
}

// maxTextPending bounds the text of one Text Request sequence the
// initiator continues over C=1 PDUs.
const maxTextPending = 64 << 10

func (c *conn) rejectSmall(h *pdu.BHS, reason byte) error {
	c.reject(h, reason)
	return nil
}

// sendTargets builds the SendTargets answer (RFC 7143 appendix C).
func (c *conn) sendTargets(value string) []byte {
	s := c.srv
	cfg := s.Config()
	portals := s.portals(c.local, c.port)
	access := s.opts.ACL.For(cfg)
	var out []byte
	allowed := make([]netip.AddrPort, 0, len(portals))
	for _, t := range cfg.TargetsNewestFirst() {
		switch {
		case value == "All":
		case value == "" && !c.sess.discovery:
			if !sameName(t.Name, c.sess.target) {
				continue
			}
		case !sameName(t.Name, value):
			continue
		}
		if len(t.LUNs) == 0 && t.IdentityDialect() == config.DialectNetBSD {
			// A NetBSD target whose LUN the start left out: NetBSD
			// refused to start, and nothing can be used through it.
			// (IET lists a target with no LUN, e.g. made with ietadm.)
			continue
		}
		if ok, _ := access.InitiatorAllowed(t, c.sess.initiator, c.peer, c.sess.discovery); !ok {
			continue
		}
		allowed = allowed[:0]
		for _, p := range portals {
			if access.PortalAllowed(t, p.Addr()) {
				allowed = append(allowed, p)
			}
		}
		if len(allowed) == 0 {
			// Reachable through none of our portals (targets.allow):
			// not listed at all (a TargetName without a TargetAddress
			// told the initiator to log in where it is refused).
			continue
		}
		out = login.AppendKey(out, "TargetName", t.Name)
		for _, p := range allowed {
			out = login.AppendKey(out, "TargetAddress", p.String()+",1")
		}
	}
	return out
}

// sameName compares iSCSI names: they are case-insensitive (RFC 3722
// folds them to lower case; IET compares them without case).
func sameName(a, b string) bool { return strings.EqualFold(a, b) }

// portals lists the addresses to advertise: this connection's local
// address first, then every other listening address (wildcard listeners
// expand to the host's non-loopback addresses of the family).
func (s *Server) portals(local netip.Addr, port int) []netip.AddrPort {
	out := []netip.AddrPort{netip.AddrPortFrom(local.WithZone(""), uint16(port))}
	seen := map[netip.AddrPort]bool{out[0]: true}
	add := func(a netip.Addr, p uint16) {
		ap := netip.AddrPortFrom(a.Unmap().WithZone(""), p)
		if !seen[ap] {
			seen[ap] = true
			out = append(out, ap)
		}
	}
	s.mu.Lock()
	var addrs []netip.AddrPort
	for l := range s.listeners {
		if ap, err := netip.ParseAddrPort(l.Addr().String()); err == nil {
			addrs = append(addrs, ap)
		}
	}
	s.mu.Unlock()
	// The listeners are a map: a fixed order keeps the answer stable.
	slices.SortFunc(addrs, func(a, b netip.AddrPort) int { return a.Compare(b) })
	for _, ap := range addrs {
		if !ap.Addr().IsUnspecified() {
			add(ap.Addr(), ap.Port())
			continue
		}
		for _, ia := range interfaceAddrs() {
			if ia.IsLoopback() || ia.IsLinkLocalUnicast() || ia.Is4() != local.Is4() {
				continue
			}
			add(ia, ap.Port())
		}
	}
	return out
}

func (c *conn) handleLogout(h *pdu.BHS) error {
	if err := c.discard(h.DataLen()); err != nil {
		return err
	}
	if c.loggingOut {
		// One logout drains the tasks and ends the connection; more
		// would each start a drain of their own (a goroutine apiece).
		return nil
	}
	if !c.consumeCmdSN(h) {
		return nil // outside the window or a duplicate: ignored (RFC 7143 4.2.2.1)
	}
	reason := h.Flags() & 0x7f
	var o outPDU
	o.bhs.SetOpcode(pdu.OpLogoutResp)
	o.bhs.SetFlags(pdu.FlagFinal)
	o.bhs.SetU32(pdu.OffITT, h.ITT())
	o.stat = statAdvance
	switch {
	case reason == 2:
		o.bhs[2] = 2 // connection recovery is not supported (ERL 0)
		c.enqueue(o)
		return nil
	case reason == 1 && h.U16(20) != c.cid:
		o.bhs[2] = 1 // CID not found
		c.enqueue(o)
		return nil
	}
	o.bhs.SetU16(40, uint16(c.params.DefaultTime2Wait))
	o.closeAfter = true
	c.loggingOut = true
	ss := c.sess
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), logoutDrainTimeout)
		defer cancel()
		waitTasks(ctx, ss.allTasks())
		c.enqueue(o)
	}()
	return nil
}

func (ss *session) allTasks() []*task {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]*task, 0, len(ss.tasks))
	for _, t := range ss.tasks {
		out = append(out, t)
	}
	return out
}

// At most maxPendingTMFs TMFs of a session wait at once for the tasks
// they affect (more are rejected).
const maxPendingTMFs = 16

// TMF response codes.
const (
	tmfComplete     = 0
	tmfNoTask       = 1
	tmfNoLUN        = 2
	tmfNoReassign   = 4
	tmfNotSupported = 5
	tmfRejected     = 255
)

func (c *conn) handleTMF(h *pdu.BHS) error {
	if err := c.discard(h.DataLen()); err != nil {
		return err
	}
	ss := c.sess
	if !c.consumeCmdSN(h) {
		return nil
	}
	fn := scsi.TMF(h.Flags() & 0x7f)
	lun := pdu.DecodeLUN(h.LUNField())
	var o outPDU
	o.bhs.SetOpcode(pdu.OpTMFResp)
	o.bhs.SetFlags(pdu.FlagFinal)
	o.bhs.SetU32(pdu.OffITT, h.ITT())
	o.stat = statAdvance
	if ss.tmfs.Load() >= maxPendingTMFs {
		o.bhs[2] = tmfRejected
		c.enqueue(o)
		return nil
	}
	switch fn {
	case scsi.TMFAbortTask:
		rtt := h.TTT()
		// The task is named by its I_T_L_Q nexus (SAM-5 7.2): a task
		// with that tag on another LUN is not the one referenced.
		victims := ss.matchTasks(func(t *task) bool { return t.itt == rtt && t.lun == lun })
		response := byte(tmfComplete)
		if len(victims) == 0 {
			response = ss.receiveUnseen(h.U32(pdu.OffMaxCmdSN), h.CmdSN())
		}
		for _, t := range victims {
			ss.abortTask(t)
		}
		c.respondTMF(o, fn, lun, victims, response, false)
	case scsi.TMFAbortTaskSet, scsi.TMFClearTaskSet, scsi.TMFLogicalUnitReset,
		scsi.TMFTargetWarmReset, scsi.TMFTargetColdReset:
		// The tasks affected are those below the TMF's CmdSN (the
		// next one for an immediate TMF): all of them must have come
		// in first (RFC 7143 11.6.2), so a TMF beyond a gap waits.
		sn := h.CmdSN()
		need := sn
		if !h.Immediate() {
			need++
		}
		if !pdu.SNLess(ss.expCmdSN.Load(), need) {
			c.taskSetTMF(o, fn, lun, nil)
			return nil
		}
		ss.tmfs.Add(1) // counted while parked too
		if !ss.park(need, func() { ss.tmfs.Add(-1); c.taskSetTMF(o, fn, lun, &sn) }) {
			ss.tmfs.Add(-1)
			o.bhs[2] = tmfRejected
			c.enqueue(o)
		}
	case scsi.TMFClearACA:
		c.respondTMF(o, fn, lun, nil, tmfComplete, true)
	case scsi.TMFTaskReassign:
		o.bhs[2] = tmfNoReassign
		c.enqueue(o)
	default:
		// RFC 7144's QUERY TASK, QUERY TASK SET, I_T NEXUS RESET and
		// QUERY ASYNCHRONOUS EVENT (9-12) need iSCSIProtocolLevel 2 (we
		// answer 1); the other codes are unassigned. Either way the
		// function is one this target does not support.
		o.bhs[2] = tmfNotSupported
		c.enqueue(o)
	}
	return nil
}

// taskSetTMF aborts the tasks a task-set TMF affects and responds once
// they ended. ABORT TASK SET affects the requester's tasks on the LU;
// CLEAR TASK SET and LOGICAL UNIT RESET every session's on the LU; TARGET
// WARM and COLD RESET every session's on the target, and a cold reset
// then closes every connection to the target (RFC 7143 11.5.1). With
// below set (a TMF that waited for a CmdSN gap), the requester's
// non-immediate commands at or beyond *below came after it and stay.
// Runs on the reader.
func (c *conn) taskSetTMF(o outPDU, fn scsi.TMF, lun uint64, below *uint32) {
	ss := c.sess
	onLUN := func(t *task) bool { return t.lun == lun }
	if fn == scsi.TMFTargetWarmReset || fn == scsi.TMFTargetColdReset {
		onLUN = func(*task) bool { return true }
	}
	mine := func(t *task) bool {
		return onLUN(t) && (below == nil || t.immediate || pdu.SNLess(t.cmdSN, *below))
	}
	victims := ss.matchTasks(mine)
	if fn != scsi.TMFAbortTaskSet {
		for _, other := range c.srv.sessionsOfDevice(ss.dev) {
			if other != ss {
				victims = append(victims, other.matchTasks(onLUN)...)
			}
		}
	}
	for _, t := range victims {
		t.ss.abortTask(t)
	}
	c.respondTMF(o, fn, lun, victims, tmfComplete, true)
}

// respondTMF sends the TMF response once the victims ended (bounded):
// the SCSI layer's answer when callSCSI, else response. RFC 7143 11.5.1
// also has the target wait until the initiator acknowledged (ExpStatSN)
// every response sent before it on the connections sharing the task set.
// With one connection a session, the requester's earlier responses
// precede this one on the same TCP stream, so it has taken them in before
// it reads this one; other sessions' responses go to other initiators,
// and nothing the requester sees depends on when those are acknowledged.
// So the wait is not done (it would hold every LUN RESET on the slowest
// initiator's next PDU). After a TARGET
// COLD RESET the target's other sessions are closed and the requester's
// connection closes after the response.
func (c *conn) respondTMF(o outPDU, fn scsi.TMF, lun uint64, victims []*task, response byte, callSCSI bool) {
	ss := c.sess
	dev := ss.dev
	nexus := ss.nexus
	cold := fn == scsi.TMFTargetColdReset
	o.closeAfter = cold
	ss.tmfs.Add(1)
	go func() {
		defer ss.tmfs.Add(-1)
		// No time limit: FUNCTION COMPLETE promises the victims have
		// no effect any more (SAM-5 7.1). A connection that closes
		// meanwhile needs no answer.
		if !waitTasksEnded(c.wdone, victims, c.log, fn.String()) {
			return
		}
		if callSCSI {
			response = dev.TaskManagement(fn, lun, nexus, otherNexuses(victims, ss))
		}
		o.bhs[2] = response
		c.enqueue(o)
		if cold {
			for _, other := range c.srv.sessionsOfDevice(dev) {
				if other != ss {
					other.close()
				}
			}
		}
	}()
}

// otherNexuses lists, once each, the nexuses of the sessions other than ss
// that victims belong to.
func otherNexuses(victims []*task, ss *session) []*scsi.Nexus {
	var out []*scsi.Nexus
	for _, t := range victims {
		if t.ss != ss && t.ss.nexus != nil && !slices.Contains(out, t.ss.nexus) {
			out = append(out, t.ss.nexus)
		}
	}
	return out
}

var interfaceAddrs = func() []netip.Addr {
	return hostAddrs()
}
