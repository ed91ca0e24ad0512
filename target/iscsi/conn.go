package iscsi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
)

// Reject reasons (RFC 7143 11.17.1).
const (
	rejectDataDigest    = 0x02
	rejectProtocolError = 0x04
	rejectNotSupported  = 0x05
	rejectImmediate     = 0x06 // too many immediate commands
	rejectInvalidPDU    = 0x09
	writeTimeout        = 30 * time.Second
	maxCommandBuffer    = 64 << 20
	// maxImmediateCommands bounds the immediate SCSI commands of a
	// session in flight (they are outside the CmdSN window).
	maxImmediateCommands = 8
	maxLoginSegment      = login.MaxLoginSegment
	logoutDrainTimeout   = 10 * time.Second
	asyncLogoutWaitSecs  = 3
	asyncEventLogoutReq  = 1
	statNone             = 0
	statAdvance          = 1
	statCarry            = 2
)

// outPDU is one queued response. Task responses are expanded by the
// writer into Data-In PDUs and/or a SCSI Response.
type outPDU struct {
	bhs        pdu.BHS
	data       []byte
	stat       uint8
	task       *task
	r2t        *task // an R2T of this write: stamped when on the wire
	closeAfter bool
	// flush marks no PDU: the writer closes the connection once
	// everything queued before it is on the wire.
	flush bool
}

// conn is one TCP connection: a reader (the serve goroutine) and a writer
// goroutine. The writer alone owns StatSN.
type conn struct {
	srv *Server
	nc  net.Conn
	log *logrus.Entry
	rd  *pdu.Reader
	hdr pdu.Header
	// wbufs is what writeBatch hands to WriteTo (writer goroutine only):
	// a local net.Buffers would escape through the io.Writer and cost
	// one allocation per batch.
	wbufs net.Buffers
	local netip.Addr
	peer  netip.Addr
	port  int

	sess   *session
	cid    uint16
	params login.Params
	hd, dd bool
	// sendLimit is the largest data segment we may send: the
	// initiator's MaxRecvDataSegmentLength, which it may declare again
	// in the full feature phase (read by the writer and the workers).
	sendLimit atomic.Int32
	burst     int // MaxBurstLength: the longest Data-In sequence
	recvLimit int

	wmu   sync.Mutex
	wcond *sync.Cond
	// wroom wakes a reader waiting for the queue to drain (waitRoom);
	// roomWait says one waits, qbytes counts the data queued.
	wroom    *sync.Cond
	roomWait bool
	qbytes   int
	qfull    atomic.Bool // queue over its bounds (set and cleared under wmu)
	queue    []outPDU
	wclosed  bool
	statSN   uint32 // writer-owned after login
	wdone    chan struct{}

	closing   atomic.Bool
	closeOnce sync.Once

	lastRecv   atomic.Int64
	pingTTT    atomic.Uint32 // outstanding ping TTT (0 = none)
	pingSentAt atomic.Int64
	// lastDataOut is when the last Data-Out for a known task came (unix
	// ns); wbusy is when the writer last made progress on the batch it
	// is writing (0 while it writes nothing). For Server.watchBudget.
	lastDataOut atomic.Int64
	wbusy       atomic.Int64

	loggingOut bool // a Logout is draining the tasks (reader only)

	textRest []byte // SendTargets answer still to send
	// textPending is the initiator's text so far while it sends more
	// (Text Requests with C=1), at most maxTextPending bytes.
	textPending []byte
	// textTTT and textITT name the exchange textRest or textPending
	// belongs to.
	textTTT, textITT uint32
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{srv: s, nc: nc, wdone: make(chan struct{})}
	c.wcond = sync.NewCond(&c.wmu)
	c.wroom = sync.NewCond(&c.wmu)
	c.rd = pdu.NewReader(nc)
	if ap, err := netip.ParseAddrPort(nc.LocalAddr().String()); err == nil {
		c.local, c.port = ap.Addr().Unmap(), int(ap.Port())
	}
	if ap, err := netip.ParseAddrPort(nc.RemoteAddr().String()); err == nil {
		c.peer = ap.Addr().Unmap()
	}
	c.log = s.log.WithFields(logrus.Fields{"peer": nc.RemoteAddr().String()})
	return c
}

func (c *conn) isClosing() bool { return c.closing.Load() }

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.closing.Store(true)
		c.nc.Close()
		c.wmu.Lock()
		c.wclosed = true
		c.wcond.Broadcast()
		c.wroom.Broadcast()
		c.wmu.Unlock()
	})
}

func (c *conn) serve() {
	defer c.srv.connDone(c)
	// Connections still logging in are bounded: a client that opens
	// many and never finishes must not hold the daemon's memory.
	ok, evicted, full := c.srv.loggingIn.acquire(c)
	if !ok || evicted != nil {
		if now := time.Now().UnixNano(); now-c.srv.lastLoginFull.Load() > int64(time.Second) {
			c.srv.lastLoginFull.Store(now)
			if !ok {
				c.log.Warnf("%d connections are logging in already (MaxLoggingIn): new ones are closed until some finish", full)
			} else {
				c.log.Warnf("every login slot (MaxLoggingIn) is taken, most of them by %s: its oldest login is closed to let another initiator in", evicted.peer)
			}
		}
	}
	if !ok {
		c.close()
		return
	}
	if evicted != nil {
		evicted.close()
	}
	err := c.loginPhase()
	c.srv.loggingIn.release(c)
	if err != nil {
		if !errors.Is(err, io.EOF) {
			c.log.WithError(err).Info("login ended")
		}
		c.close()
		if c.sess != nil {
			c.sess.end()
		}
		return
	}
	ss := c.sess
	c.log = c.log.WithFields(logrus.Fields{"initiator": ss.initiator, "tsih": ss.tsih})
	// The idle clock of the pinger starts with the full feature phase
	// (zero would make the first ping go out at the first tick).
	c.lastRecv.Store(time.Now().UnixNano())
	go c.writer()
	if ts := ss.tgt.Load(); ts != nil && ts.cfg.NOPInterval > 0 {
		go c.pinger(ts.cfg.NOPInterval, ts.cfg.NOPTimeout)
	}
	err = c.ffpLoop()
	if err != nil && !errors.Is(err, io.EOF) && !c.isClosing() {
		c.log.WithError(err).Info("connection ended")
	}
	if errors.Is(err, errProtocol) {
		// We end the connection: the Reject queued for the offending
		// PDU (and responses before it) go out first.
		c.flushAndClose()
	}
	c.close()
	<-c.wdone
	ss.end()
}

// flushAndClose has the writer send what is queued, then close; bounded
// by the write timeout.
func (c *conn) flushAndClose() {
	c.enqueue(outPDU{flush: true, closeAfter: true})
	t := time.NewTimer(writeTimeout)
	defer t.Stop()
	select {
	case <-c.wdone:
	case <-t.C:
	}
}

// loginPhase runs the login exchange synchronously on the connection.
func (c *conn) loginPhase() error {
	c.nc.SetDeadline(time.Now().Add(c.srv.opts.LoginTimeout))
	defer c.nc.SetDeadline(time.Time{})
	s := c.srv
	m := login.New(login.Env{
		LookupTarget: func(name, ini string) (*config.Target, login.Status) {
			ts, st := s.lookupTarget(name, ini, c.local, c.peer)
			if ts == nil {
				return nil, st
			}
			return ts.cfg, st
		},
		Discovery:   s.Config().Discovery,
		Accounts:    s.opts.Accounts,
		TPGT:        1,
		JoinSession: s.joinSession,
		Admit:       func(r *login.Result) (uint16, login.Status) { return s.admit(c, r) },
		Log:         c.log,
	})
	first := true
	var cmdSN uint32
	var last login.Request // the latest Login Request (ISID, TSIH, ITT)
	for {
		if err := c.rd.ReadHeader(&c.hdr); err != nil {
			return err
		}
		h := &c.hdr.BHS
		if h.Opcode() != pdu.OpLoginReq {
			if first {
				// RFC 7143 6.3: a PDU other than a Login Request
				// before the login started ends the connection at once.
				return fmt.Errorf("%s before login completed", h.Opcode())
			}
			// Once the login started, the target MUST answer a Login
			// reject "invalid during login" (0x020b) and disconnect.
			return c.loginInvalid(h, &last, cmdSN)
		}
		n := h.DataLen()
		if n > maxLoginSegment {
			return errors.New("login data segment too long")
		}
		data := make([]byte, n)
		if err := c.rd.ReadData(data); err != nil {
			return err
		}
		if first {
			c.statSN = h.ExpStatSN()
			cmdSN = h.CmdSN()
			c.cid = h.U16(20)
			first = false
		}
		fl := h.Flags()
		var req login.Request
		req.Transit = fl&pdu.FlagTransit != 0
		req.Continue = fl&pdu.FlagContinue != 0
		req.CSG = int(fl>>2) & 3
		req.NSG = int(fl) & 3
		req.VersionMax, req.VersionMin = h[2], h[3]
		copy(req.ISID[:], h[8:14])
		req.TSIH = h.U16(14)
		req.CID = h.U16(20)
		req.ITT = h.ITT()
		req.Data = data
		last = req
		resp := m.Step(req)

		f := byte(resp.CSG&3) << 2
		if resp.Transit {
			f |= pdu.FlagTransit | byte(resp.NSG&3)
		}
		if resp.Continue {
			f |= pdu.FlagContinue
		}
		r := c.loginResponse(f, &req, resp.TSIH, cmdSN, resp.Status)
		r.SetDataLen(len(resp.Data))
		if resp.Done && !resp.Failed && !c.srv.loggingIn.release(c) {
			// Another initiator took this login's slot (loginSlots):
			// fail it now rather than close it once it succeeded.
			return errors.New("login closed: its slot went to another initiator (MaxLoggingIn)")
		}
		bufs, _ := pdu.AppendPDU(nil, nil, &r, resp.Data, false, false)
		if _, err := bufs.WriteTo(c.nc); err != nil {
			return err
		}
		if resp.Failed {
			return fmt.Errorf("login failed: %s: %s", resp.Status, m.FailReason)
		}
		if resp.Done {
			res := m.Result()
			c.params = res.Params
			c.hd, c.dd = res.Params.HeaderDigest, res.Params.DataDigest
			c.rd.HeaderDigest, c.rd.DataDigest = c.hd, c.dd
			c.sendLimit.Store(int32(res.Params.SendSegmentLimit()))
			c.burst = max(res.Params.MaxBurstLength, 512)
			c.recvLimit = res.Params.TargetMaxRecvDSL
			if c.sess == nil {
				return errors.New("login finished without a session")
			}
			c.sess.start(c, cmdSN)
			if !c.sess.discovery {
				c.srv.sessionsChanged()
			}
			c.log.WithFields(logrus.Fields{"type": res.SessionType, "target": res.TargetName,
				"initiator": res.InitiatorName}).Info("login complete")
			return nil
		}
	}
}

// loginResponse is the header of a Login Response to req with flags f
// (T, C, CSG, NSG), TSIH tsih and status st; it takes the next StatSN.
func (c *conn) loginResponse(f byte, req *login.Request, tsih uint16, cmdSN uint32, st login.Status) pdu.BHS {
	var r pdu.BHS
	r.SetOpcode(pdu.OpLoginResp)
	r.SetFlags(f)
	copy(r[8:14], req.ISID[:])
	r.SetU16(14, tsih)
	r.SetU32(pdu.OffITT, req.ITT)
	r.SetU32(pdu.OffCmdSN, c.statSN)
	c.statSN++
	r.SetU32(pdu.OffExpStatSN, cmdSN)
	r.SetU32(pdu.OffMaxCmdSN, cmdSN)
	r[36], r[37] = st.Class(), st.Detail()
	return r
}

// loginInvalid answers a PDU other than a Login Request that came during
// the login (h) with a Login Response of status 0x020b "invalid during
// login" for the login's latest request (last), as RFC 7143 6.3
// requires, and returns the error that ends the connection. The PDU's
// data segment, when small, is read first so that closing does not
// reset the connection before the response is read.
func (c *conn) loginInvalid(h *pdu.BHS, last *login.Request, cmdSN uint32) error {
	op := h.Opcode()
	if n := h.DataLen(); n <= maxLoginSegment {
		if err := c.rd.Discard(n); err != nil {
			return err
		}
	}
	st := login.StatusInvalidDuringLogin
	r := c.loginResponse(byte(last.CSG&3)<<2, last, last.TSIH, cmdSN, st)
	bufs, _ := pdu.AppendPDU(nil, nil, &r, nil, false, false)
	if _, err := bufs.WriteTo(c.nc); err != nil {
		return err
	}
	return fmt.Errorf("login failed: %s: %s during login", st, op)
}

// enqueue queues a response for the writer.
func (c *conn) enqueue(o outPDU) {
	c.wmu.Lock()
	if c.wclosed {
		c.wmu.Unlock()
		if o.task != nil {
			o.task.finish()
		}
		return
	}
	c.queue = append(c.queue, o)
	c.qbytes += len(o.data)
	if len(c.queue) >= maxQueuedPDUs || c.qbytes >= maxQueuedBytes {
		c.qfull.Store(true)
	}
	if len(c.queue) == 1 {
		c.wcond.Signal()
	}
	c.wmu.Unlock()
}

// Bounds of what the reader lets queue up for the writer before it stops
// reading (waitRoom): NOP-In echoes, Text answers and Rejects are queued
// for every request read, and an initiator that sends without reading
// would otherwise grow the queue without bound (8 KiB NOP-Outs: about a
// GB in four seconds). Task responses are bounded by the CmdSN window.
const (
	maxQueuedPDUs  = 1024
	maxQueuedBytes = 4 << 20
)

// waitRoom blocks the reader while the writer's queue is over its bounds:
// the initiator then meets TCP back-pressure, and a writer stuck on it
// ends the connection after writeTimeout (close wakes this).
func (c *conn) waitRoom() {
	if !c.qfull.Load() {
		return // the common case: no lock per PDU
	}
	c.wmu.Lock()
	for (len(c.queue) >= maxQueuedPDUs || c.qbytes >= maxQueuedBytes) && !c.wclosed {
		c.roomWait = true
		c.wroom.Wait()
	}
	c.wmu.Unlock()
}

func (c *conn) enqueueTask(t *task) { c.enqueue(outPDU{task: t}) }

// maxYieldBatch: the writer yields once to executing commands when it has
// fewer responses than this queued.
const maxYieldBatch = 8

func (c *conn) writer() {
	defer close(c.wdone)
	var batch []outPDU
	var bufs net.Buffers
	arena := make([]byte, 0, 8192)
	for {
		c.wmu.Lock()
		for len(c.queue) == 0 && !c.wclosed {
			c.wcond.Wait()
		}
		if c.wclosed {
			q := c.queue
			c.queue = nil
			c.wmu.Unlock()
			for _, o := range q {
				if o.task != nil {
					o.task.finish()
				}
			}
			return
		}
		if len(c.queue) < maxYieldBatch && c.sess != nil && c.sess.executing.Load() > 0 {
			// Commands are still executing: let them finish and join
			// this batch (one writev, one wake-up of the initiator).
			c.wmu.Unlock()
			runtime.Gosched()
			c.wmu.Lock()
		}
		batch, c.queue = c.queue, batch[:0]
		c.qbytes = 0
		c.qfull.Store(false)
		if c.roomWait {
			c.roomWait = false
			c.wroom.Broadcast()
		}
		c.wmu.Unlock()

		bufs, arena = bufs[:0], arena[:0]
		closeAfter := false
		for i := range batch {
			if !batch[i].flush {
				bufs, arena = c.appendOut(bufs, arena, &batch[i])
			}
			closeAfter = closeAfter || batch[i].closeAfter
		}
		err := c.writeBatch(bufs)
		var sent int64
		for i := range batch {
			if batch[i].task != nil {
				batch[i].task.finish()
			} else if t := batch[i].r2t; t != nil && err == nil {
				if sent == 0 {
					sent = time.Now().UnixNano()
				}
				t.dataOutWait.Store(sent)
			}
			batch[i] = outPDU{}
		}
		if err != nil || closeAfter {
			c.close()
		}
	}
}

// writeProgress is how often a writer blocked on a full socket checks
// whether any of its batch went out (c.wbusy); a batch gets writeTimeout
// in all.
const writeProgress = initiatorStallLimit / 4

// writeBatch writes one batch (one writev, repeated only when the socket
// is full), within writeTimeout.
func (c *conn) writeBatch(bufs net.Buffers) error {
	now := time.Now()
	end := now.Add(writeTimeout)
	c.wbusy.Store(now.UnixNano())
	defer c.wbusy.Store(0)
	for {
		d := now.Add(writeProgress)
		if d.After(end) {
			d = end
		}
		c.nc.SetWriteDeadline(d)
		c.wbufs = bufs
		n, err := c.wbufs.WriteTo(c.nc)
		bufs, c.wbufs = c.wbufs, nil
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		now = time.Now()
		if !now.Before(end) {
			return err
		}
		if n > 0 {
			c.wbusy.Store(now.UnixNano())
		}
	}
}

func (c *conn) fillSN(h *pdu.BHS, mode uint8) {
	switch mode {
	case statAdvance:
		h.SetU32(pdu.OffCmdSN, c.statSN)
		c.statSN++
	case statCarry:
		h.SetU32(pdu.OffCmdSN, c.statSN)
	}
	h.SetU32(pdu.OffExpStatSN, c.sess.expCmdSN.Load())
	h.SetU32(pdu.OffMaxCmdSN, c.sess.maxCmdSN.Load())
}

func (c *conn) appendOut(bufs net.Buffers, arena []byte, o *outPDU) (net.Buffers, []byte) {
	if o.task == nil {
		c.fillSN(&o.bhs, o.stat)
		o.bhs.SetDataLen(len(o.data))
		return pdu.AppendPDU(bufs, arena, &o.bhs, o.data, c.hd, c.dd)
	}
	t := o.task
	res := &t.res
	edtl := int(t.edtl)
	var flags byte
	var residual uint32
	want := res.XferLen
	if want < 0 && t.read {
		want = len(res.Data)
	}
	if want < 0 && res.Status == scsi.StatusGood {
		// No transfer length from the device. A write-type command
		// (WRITE SAME, UNMAP, MODE SELECT, PERSISTENT RESERVE OUT, ...)
		// that succeeded took all the Data-Out the initiator sent: no
		// residual; otherwise nothing was to move.
		if t.write {
			want = edtl
		} else {
			want = 0
		}
	}
	if want >= 0 {
		if want > edtl {
			flags, residual = pdu.FlagOver, uint32(want-edtl)
		} else if want < edtl {
			flags, residual = pdu.FlagUnder, uint32(edtl-want)
		}
	}
	var data []byte
	if t.read {
		data = t.dataIn()
	}
	collapse := len(data) > 0 && res.Status == scsi.StatusGood && len(res.Sense) == 0
	limit := int(c.sendLimit.Load())
	if t.segLimit > 0 {
		limit = t.segLimit // the digests were taken for these segments
	}
	var h pdu.BHS
	// Data-In sequences of at most MaxBurstLength, each ending with the
	// F bit (RFC 7143 13.13); DataSN runs on across them.
	seqEnd := min(c.burst, len(data))
	for off, sn := 0, uint32(0); off < len(data); sn++ {
		n := min(limit, seqEnd-off)
		last := off+n == len(data)
		h.Reset()
		h.SetOpcode(pdu.OpDataIn)
		f := byte(0)
		if off+n == seqEnd {
			f |= pdu.FlagFinal
			seqEnd = min(seqEnd+c.burst, len(data))
		}
		if last {
			if collapse {
				f |= pdu.FlagStatus | flags
				h[3] = res.Status
				h.SetU32(pdu.OffResidual, residual)
			}
		}
		h.SetFlags(f)
		h.SetLUNField(t.lunRaw)
		h.SetU32(pdu.OffITT, t.itt)
		h.SetU32(pdu.OffTTT, pdu.ReservedTag)
		mode := uint8(statNone)
		if last && collapse {
			mode = statAdvance
		}
		c.fillSN(&h, mode)
		h.SetU32(pdu.OffDataSN, sn)
		h.SetU32(pdu.OffBufOffset, uint32(off))
		h.SetDataLen(n)
		if c.dd && int(sn) < len(t.digests) {
			bufs, arena = pdu.AppendPDUDigested(bufs, arena, &h, data[off:off+n], c.hd, t.digests[sn])
		} else {
			bufs, arena = pdu.AppendPDU(bufs, arena, &h, data[off:off+n], c.hd, c.dd)
		}
		off += n
		if last {
			t.dataSN = sn + 1
		}
	}
	if collapse {
		return bufs, arena
	}
	h.Reset()
	h.SetOpcode(pdu.OpSCSIResp)
	h.SetFlags(pdu.FlagFinal | flags)
	h[2] = 0 // command completed at target
	h[3] = res.Status
	h.SetU32(pdu.OffITT, t.itt)
	c.fillSN(&h, statAdvance)
	h.SetU32(pdu.OffDataSN, t.dataSN)
	h.SetU32(pdu.OffResidual, residual)
	var sense []byte
	if len(res.Sense) > 0 {
		start := len(arena)
		arena = append(arena, byte(len(res.Sense)>>8), byte(len(res.Sense)))
		arena = append(arena, res.Sense...)
		sense = arena[start:len(arena):len(arena)]
	}
	h.SetDataLen(len(sense))
	return pdu.AppendPDU(bufs, arena, &h, sense, c.hd, c.dd)
}

// pinger sends NOP-In pings on idle connections and closes the
// connection when a ping goes unanswered for the timeout.
func (c *conn) pinger(interval, timeout int) {
	if timeout <= 0 || timeout > interval {
		timeout = interval
	}
	iv := time.Duration(interval) * time.Second
	to := time.Duration(timeout) * time.Second
	tick := time.NewTicker(min(iv, to) / 2)
	defer tick.Stop()
	var ttt uint32 = 0x10000
	for {
		select {
		case <-c.wdone:
			return
		case now := <-tick.C:
			if c.pingTTT.Load() != 0 {
				if now.Sub(time.Unix(0, c.pingSentAt.Load())) >= to {
					c.log.Warn("NOP-Out timeout, closing connection")
					c.close()
					return
				}
				continue
			}
			if now.Sub(time.Unix(0, c.lastRecv.Load())) < iv {
				continue
			}
			ttt++
			if ttt == pdu.ReservedTag {
				ttt = 0x10000
			}
			c.pingSentAt.Store(now.UnixNano())
			c.pingTTT.Store(ttt)
			var o outPDU
			o.bhs.SetOpcode(pdu.OpNOPIn)
			o.bhs.SetFlags(pdu.FlagFinal)
			o.bhs.SetU32(pdu.OffITT, pdu.ReservedTag)
			o.bhs.SetU32(pdu.OffTTT, ttt)
			o.stat = statCarry
			c.enqueue(o)
		}
	}
}

// requestLogout asks the initiator to log out (Shutdown).
func (c *conn) requestLogout() {
	ss := c.sess
	if ss == nil || ss.discovery || c.wclosedNow() {
		c.close()
		return
	}
	var o outPDU
	o.bhs.SetOpcode(pdu.OpAsync)
	o.bhs.SetFlags(pdu.FlagFinal)
	o.bhs.SetU32(pdu.OffITT, pdu.ReservedTag)
	o.bhs[36] = asyncEventLogoutReq
	o.bhs.SetU16(42, asyncLogoutWaitSecs)
	o.stat = statAdvance
	c.enqueue(o)
}

func (c *conn) wclosedNow() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wclosed
}

func (c *conn) reject(h *pdu.BHS, reason byte) {
	var o outPDU
	o.bhs.SetOpcode(pdu.OpReject)
	o.bhs.SetFlags(pdu.FlagFinal)
	o.bhs[2] = reason
	o.bhs.SetU32(pdu.OffITT, pdu.ReservedTag)
	o.data = append([]byte(nil), h[:]...)
	o.stat = statAdvance
	c.enqueue(o)
}

// waitTasks waits until every listed task has finished or ctx ends.
func waitTasks(ctx context.Context, ts []*task) {
	for _, t := range ts {
		select {
		case <-t.sig.endedCh():
		case <-ctx.Done():
			return
		}
	}
}

// waitTasksEnded waits, without a time limit, until every listed task
// has returned from the device, or until stop is closed (nil: never);
// it reports whether they all ended. An aborted command still in the
// store could otherwise land after the initiator was told it is gone,
// over a newer write to the same blocks. Every slowWarn it logs what it
// is still waiting for.
func waitTasksEnded(stop <-chan struct{}, ts []*task, log *logrus.Entry, what string) bool {
	tick := time.NewTicker(slowWarn)
	defer tick.Stop()
	start := time.Now()
	for _, t := range ts {
		for waiting := true; waiting; {
			select {
			case <-t.sig.endedCh():
				waiting = false
			case <-stop:
				return false
			case <-tick.C:
				if log != nil {
					log.WithField("itt", t.itt).Warnf("%s waits for a command the store has not answered for %s; it is answered once the command ends",
						what, time.Since(start).Round(time.Second))
				}
			}
		}
	}
	return true
}

// slowWarn is how often a wait for aborted commands is logged (a
// variable for tests).
var slowWarn = 30 * time.Second
