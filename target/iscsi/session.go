package iscsi

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// session is one iSCSI session (an I_T nexus) with its single connection.
type session struct {
	srv       *Server
	tgt       *targetState // nil for discovery
	tid       int
	tsih      uint16
	isid      [6]byte
	initiator string
	target    string
	discovery bool
	params    login.Params
	nexus     *scsi.Nexus
	queued    int

	// Command window, readable without the lock for PDU headers.
	expCmdSN atomic.Uint32
	maxCmdSN atomic.Uint32
	withheld atomic.Uint32 // window slots held back under memory pressure

	mu    sync.Mutex
	conn  *conn
	tasks map[uint32]*task // by ITT
	ahead map[uint32]bool  // CmdSNs received beyond a gap
	ttt   uint32
	ended bool

	work    chan *task
	workers sync.WaitGroup
	endedCh chan struct{}
}

func newSession(s *Server, ts *targetState, r *login.Result, tsih uint16) *session {
	ss := &session{
		srv: s, tgt: ts, tsih: tsih, isid: r.ISID, initiator: r.InitiatorName, target: r.TargetName,
		discovery: r.SessionType == login.SessionDiscovery, params: r.Params,
		tasks: map[uint32]*task{}, ahead: map[uint32]bool{}, endedCh: make(chan struct{}),
	}
	ss.queued = 1
	if ts != nil {
		ss.tid = ts.cfg.TID
		ss.queued = ts.cfg.QueuedCommands
		if ss.queued < 1 {
			ss.queued = 32
		}
		ss.nexus = &scsi.Nexus{
			ID: s.nexusID.Add(1), InitiatorName: r.InitiatorName, ISID: r.ISID,
			TargetName: r.TargetName, TPGT: 1, RelativePort: 1,
		}
	}
	return ss
}

// start begins the full feature phase with the first CmdSN.
func (ss *session) start(c *conn, cmdSN uint32) {
	ss.mu.Lock()
	ss.conn = c
	ss.mu.Unlock()
	ss.expCmdSN.Store(cmdSN)
	// Slow start: the window opens at initialWindow and grows by one
	// more slot per command that ends while memory is not pressed (the
	// rest start out withheld), so sessions that log in together cannot
	// push their full windows of immediate data at once.
	first := min(ss.queued, initialWindow)
	ss.maxCmdSN.Store(cmdSN + uint32(first) - 1)
	ss.withheld.Store(uint32(ss.queued - first))
	if ss.tgt != nil {
		ss.tgt.dev.NexusAttach(ss.nexus)
		ss.work = make(chan *task, 2*ss.queued+16)
		for i := 0; i < ss.queued; i++ {
			ss.workers.Add(1)
			go ss.worker()
		}
	}
}

func (ss *session) sid() uint64 {
	var b [8]byte
	copy(b[:6], ss.isid[:])
	return binary.BigEndian.Uint64(b[:]) | uint64(ss.tsih)
}

func (ss *session) connection() *conn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.conn
}

func (ss *session) info() SessionInfo {
	si := SessionInfo{TID: ss.tid, TargetName: ss.target, SID: ss.sid(), InitiatorName: ss.initiator,
		Params: ss.params.Map()}
	if c := ss.connection(); c != nil {
		dg := func(b bool) string {
			if b {
				return "CRC32C"
			}
			return "NONE"
		}
		st := "active"
		if c.isClosing() {
			st = "closing"
		}
		si.Conns = append(si.Conns, ConnInfo{CID: c.cid, IP: c.peer.String(), State: st,
			HeaderDigest: dg(ss.params.HeaderDigest), DataDigest: dg(ss.params.DataDigest)})
	}
	return si
}

// close ends the session by closing its connection.
func (ss *session) close() {
	if c := ss.connection(); c != nil {
		c.close()
		return
	}
	ss.end()
}

// wait waits until the session has ended (bounded).
func (ss *session) wait(d time.Duration) {
	select {
	case <-ss.endedCh:
	case <-time.After(d):
	}
}

// end tears the session down after its connection is gone: aborts
// in-flight tasks, waits for the workers, detaches the nexus.
func (ss *session) end() {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	ss.ended = true
	for _, t := range ss.tasks {
		t.abort()
	}
	ss.mu.Unlock()
	if ss.work != nil {
		close(ss.work)
		ss.workers.Wait()
	}
	if ss.tgt != nil {
		ss.tgt.dev.NexusDetach(ss.nexus)
	}
	ss.srv.removeSession(ss)
	close(ss.endedCh)
}

// acceptCmdSN applies the CmdSN rules to a non-immediate command and
// reports whether it is inside the window (RFC 7143 4.2.2.1).
func (ss *session) acceptCmdSN(sn uint32) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	exp, max := ss.expCmdSN.Load(), ss.maxCmdSN.Load()
	if pdu.SNLess(sn, exp) || pdu.SNLess(max, sn) {
		return false
	}
	if sn != exp {
		if ss.ahead[sn] {
			return false // duplicate
		}
		ss.ahead[sn] = true
		return true
	}
	exp++
	for ss.ahead[exp] {
		delete(ss.ahead, exp)
		exp++
	}
	ss.expCmdSN.Store(exp)
	return true
}

// openSlot widens the window by one after a non-immediate command ended.
// Under memory pressure the slot is held back instead, as long as other
// commands of the session are in flight (their responses carry MaxCmdSN,
// so the initiator always learns of slots given back, and a session is
// never left without a slot).
//
// Slots held back come back one at a time (one more with each command
// that ends, and one per session on each release of memory), never all
// at once: giving a whole window back the moment pressure eases let
// every session push a window of immediate data together, and memory
// overshot the budget severalfold.
func (ss *session) openSlot(ending *task) {
	if ss.srv.mem.pressed() && ss.busyBesides(ending) {
		ss.withheld.Add(1)
		ss.srv.mem.hold(ss)
		return
	}
	ss.maxCmdSN.Add(1 + ss.takeWithheld())
}

// initialWindow is the CmdSN window a session starts with (QueuedCommands
// when smaller); slow start in session.start.
const initialWindow = 8

// reopenSlots gives back one slot held back under pressure.
func (ss *session) reopenSlots() {
	if ss.takeWithheld() > 0 {
		ss.maxCmdSN.Add(1)
	}
}

// takeWithheld takes one withheld slot, if any (0 or 1).
func (ss *session) takeWithheld() uint32 {
	for {
		n := ss.withheld.Load()
		if n == 0 {
			return 0
		}
		if ss.withheld.CompareAndSwap(n, n-1) {
			return 1
		}
	}
}

// busyBesides reports whether the session has commands other than t
// whose responses are still to come (and will carry MaxCmdSN).
func (ss *session) busyBesides(t *task) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, o := range ss.tasks {
		if o != t && !o.immediate && !o.slotFreed.Load() {
			return true
		}
	}
	return false
}

// addTask registers a task by ITT; false if the ITT is in use.
func (ss *session) addTask(t *task) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		return false
	}
	if _, dup := ss.tasks[t.itt]; dup {
		return false
	}
	ss.tasks[t.itt] = t
	return true
}

func (ss *session) task(itt uint32) *task {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.tasks[itt]
}

func (ss *session) removeTask(t *task) {
	ss.mu.Lock()
	if ss.tasks[t.itt] == t {
		delete(ss.tasks, t.itt)
	}
	ss.mu.Unlock()
}

func (ss *session) nextTTT() uint32 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.ttt++
	if ss.ttt == pdu.ReservedTag {
		ss.ttt = 1
	}
	return ss.ttt
}

// dispatch hands a task whose data is complete to the workers.
func (ss *session) dispatch(t *task) {
	select {
	case ss.work <- t:
	default:
		// More tasks than the queue holds (immediate commands beyond
		// the window): run it without blocking the reader.
		ss.workers.Add(1)
		go func() { defer ss.workers.Done(); ss.run(t) }()
	}
}

func (ss *session) worker() {
	defer ss.workers.Done()
	for t := range ss.work {
		ss.run(t)
	}
}

func (ss *session) run(t *task) {
	// executing before the abort check, cleared once Execute returns:
	// abortNexusTasks sets aborted, then reads executing, so it either
	// stops the task here or waits for its Execute (see abort.go).
	t.executing.Store(true)
	if t.isAborted() {
		t.executing.Store(false)
		t.finish()
		return
	}
	if t.read && t.edtl > 0 {
		// Wait for room in the server's data budget (bounded memory
		// under many sessions of large reads).
		if !ss.srv.mem.acquire(t.ctx, int64(t.edtl)) {
			t.executing.Store(false)
			t.finish()
			return
		}
		t.charged += int64(t.edtl)
		t.inBuf = ss.srv.pool.Get(int(t.edtl))
		t.cmd.DataIn = t.inBuf
	}
	t.res = ss.tgt.dev.Execute(t.ctx, &t.cmd)
	t.executing.Store(false)
	if t.isAborted() {
		t.finish()
		return
	}
	c := ss.connection()
	if c == nil {
		t.finish()
		return
	}
	if c.dd && t.read {
		t.digests = dataInDigests(t.digestBuf[:0], t.dataIn(), c.sendLimit)
	}
	t.responded = true
	t.releaseSlot()
	c.enqueueTask(t)
}

// task is one SCSI command in flight.
type task struct {
	ss        *session
	itt       uint32
	cmdSN     uint32
	immediate bool
	lun       uint64
	lunRaw    uint64
	read      bool
	write     bool
	edtl      uint32
	cmd       scsi.Command
	cdb       [16]byte
	// mu guards outBuf, charged, ended and the R2T state of a write that
	// can be granted its buffer by another goroutine (deferred).
	mu       sync.Mutex
	outBuf   []byte      // Data-Out destination (pooled)
	charged  int64       // bytes held in the server's data budget
	ended    atomic.Bool // finished: buffers and budget given back
	deferred atomic.Bool // R2Ts wait for data budget (memBudget.deferGrant)
	awaiting atomic.Bool // R2Ts or unsolicited data outstanding
	inBuf    []byte      // Data-In buffer (pooled)
	res      scsi.Result

	// Data-Out state (reader goroutine only).
	received    uint32 // bytes received
	unsolEnd    uint32 // end of the unsolicited window
	unsolDataSN uint32
	dataErr     bool   // a Data-Out was lost or damaged: fail, do not write
	nextR2T     uint32 // next offset to solicit
	r2tSN       uint32
	r2ts        []r2tState
	dispatched  bool
	dataSN      uint32 // Data-In PDUs sent (writer)
	// digests holds the data digest of each Data-In PDU when DataDigest
	// is on, computed by the worker right after the read (data in cache,
	// CRC off the connection's single writer); digestBuf backs it.
	digests   []uint32
	digestBuf [8]uint32

	ctx       context.Context
	cancel    context.CancelFunc
	aborted   atomic.Bool
	executing atomic.Bool // in run, between the abort check and Execute's return
	slotFreed atomic.Bool
	responded bool
	done      chan struct{}
	once      sync.Once
}

type r2tState struct {
	ttt      uint32
	offset   uint32
	length   uint32
	received uint32
	dataSN   uint32
}

func (t *task) abort() {
	t.aborted.Store(true)
	t.cancel()
}

func (t *task) isAborted() bool { return t.aborted.Load() }

// releaseSlot opens the CmdSN window slot of a non-immediate task once.
func (t *task) releaseSlot() {
	if !t.immediate && !t.slotFreed.Swap(true) {
		t.ss.openSlot(t)
	}
}

// finish releases the task: window slot, buffers, registration.
func (t *task) finish() {
	t.once.Do(func() {
		ss := t.ss
		ss.removeTask(t)
		t.mu.Lock()
		t.ended.Store(true)
		t.awaiting.Store(false)
		charged := t.charged
		t.charged = 0
		if t.outBuf != nil {
			ss.srv.pool.Put(t.outBuf)
			t.outBuf = nil
		}
		t.mu.Unlock()
		// Not under t.mu: a release may grant other deferred writes.
		ss.srv.mem.release(charged)
		t.releaseSlot()
		if t.inBuf != nil {
			ss.srv.pool.Put(t.inBuf)
			t.inBuf = nil
		}
		t.cancel()
		close(t.done)
	})
}

// awaitingAny reports whether the session has write commands waiting for
// Data-Out (only this connection's reader can complete them). Called by
// the reader, which owns the dispatched flags.
func (ss *session) awaitingAny() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, t := range ss.tasks {
		if t.write && !t.dispatched && t.awaiting.Load() {
			return true
		}
	}
	return false
}

// dataIn returns the data a read sends: the result's data cut at the
// expected transfer length.
func (t *task) dataIn() []byte {
	data := t.res.Data
	if len(data) > int(t.edtl) {
		data = data[:t.edtl]
	}
	return data
}

// dataInDigests appends to dst the data digest of each Data-In PDU that
// data will be split into (segments of limit bytes, as conn.appendOut
// splits them).
func dataInDigests(dst []uint32, data []byte, limit int) []uint32 {
	for off := 0; off < len(data); off += limit {
		dst = append(dst, pdu.DataDigest(data[off:min(off+limit, len(data))]))
	}
	return dst
}
