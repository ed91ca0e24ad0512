package iscsi

import (
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// session is one iSCSI session (an I_T nexus) with its single connection.
type session struct {
	srv *Server
	// tgt is the target's state, nil for discovery; a reload that keeps
	// the device replaces it (a new config) while commands run, so it is
	// read with tgt.Load(). dev is its device, fixed for the session's
	// life (a reload that changes it ends the session): the I/O path
	// uses dev.
	tgt       atomic.Pointer[targetState]
	dev       Device
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

	budget budgetAccount // its part of the data budget (memBudget.mu)

	mu    sync.Mutex
	conn  *conn
	tasks map[uint32]*task // by ITT
	ahead map[uint32]bool  // CmdSNs received beyond a gap
	// endedAhead are the CmdSNs of ahead that ended at once (NOP-Out,
	// Text, TMF, Logout, an ABORT TASK's unseen task): their slot opens
	// when ExpCmdSN passes them, not before, or a gap never filled would
	// let MaxCmdSN grow without bound. owed counts those passed whose
	// slot is still to open (openOwed).
	endedAhead map[uint32]bool
	owed       int
	// held are commands ready to run whose CmdSN is beyond a gap: they
	// go to the workers in CmdSN order once the gap fills (RFC 7143
	// 4.2.2.1). Bounded by the window.
	held []*task
	// heldSince is when commands were last held or let go (unix ns; 0
	// while none is held): the initiator leaving a CmdSN gap open.
	heldSince int64
	// parked are task-set TMFs waiting for the commands below their
	// CmdSN (RFC 7143 11.6.2: the affected tasks must be received).
	parked []parkedTMF
	// unentered are commands received beyond a CmdSN gap: they enter
	// their LUN's task set in CmdSN order once ExpCmdSN passes them
	// (release).
	unentered []*task
	ttt       uint32
	ended     bool

	// tsets caches the task sets of the LUNs the session used (reader
	// only, then session.end).
	tsets map[uint64]*taskSet

	// released is set (by the reader, under mu) when ExpCmdSN moved
	// while commands were held or TMFs parked; the reader then lets
	// them go after the PDU (session.release).
	released bool

	// immediate counts immediate commands in flight, tmfs the TMFs
	// awaiting their response: both are bounded per session.
	immediate atomic.Int32
	tmfs      atomic.Int32

	work chan *task
	// executing counts tasks handed to the workers whose response is not
	// queued yet; the writer uses it to let them join its next batch.
	executing atomic.Int32
	workers   sync.WaitGroup
	endedCh   chan struct{}
}

func newSession(s *Server, ts *targetState, r *login.Result, tsih uint16) *session {
	ss := &session{
		srv: s, tsih: tsih, isid: r.ISID, initiator: r.InitiatorName, target: r.TargetName,
		discovery: r.SessionType == login.SessionDiscovery, params: r.Params,
		tasks: map[uint32]*task{}, ahead: map[uint32]bool{}, endedAhead: map[uint32]bool{}, endedCh: make(chan struct{}),
	}
	ss.queued = 1
	if ts != nil {
		ss.tgt.Store(ts)
		ss.dev = ts.dev
		// The configured spelling: names match without case at login.
		ss.target = ts.cfg.Name
		ss.tid = ts.cfg.TID
		ss.queued = ts.cfg.QueuedCommands
		if ss.queued < 1 {
			ss.queued = 32
		}
		ss.nexus = &scsi.Nexus{
			ID: s.nexusID.Add(1), InitiatorName: r.InitiatorName, ISID: r.ISID,
			TargetName: ss.target, TPGT: 1, RelativePort: 1,
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
	// more slot per command that ends while the initiator fills at least
	// half of it and memory is not pressed (the rest start out withheld),
	// so sessions that log in together cannot push their full windows of
	// immediate data at once.
	first := min(ss.queued, initialWindow)
	ss.maxCmdSN.Store(cmdSN + uint32(first) - 1)
	ss.withheld.Store(uint32(ss.queued - first))
	if ss.dev != nil {
		ss.dev.NexusAttach(ss.nexus)
		ss.work = make(chan *task, 2*ss.queued+16)
		for i := 0; i < ss.queued; i++ {
			ss.workers.Add(1)
			go ss.worker()
		}
	}
}

// sid is the session id of listings and ietadm --sid, numbered as IET
// numbered it (on x86, where it ran): the 8 bytes ISID (wire order) and
// TSIH (little-endian) read as one little-endian integer, so open-iscsi's
// ISID 00 02 3d 00 00 01 with TSIH 1 is sid 282574492336640 with both.
func (ss *session) sid() uint64 {
	var b [8]byte
	copy(b[:6], ss.isid[:])
	binary.LittleEndian.PutUint16(b[6:], ss.tsih)
	return binary.LittleEndian.Uint64(b[:])
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

// end tears the session down after its connection is gone (no reader
// runs): aborts in-flight tasks, ends those that will never run (waiting
// for Data-Out, or held for a CmdSN gap: their buffers and budget were
// never given back), waits for the workers, detaches the nexus.
func (ss *session) end() {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return
	}
	ss.ended = true
	var all, idle []*task
	for _, t := range ss.tasks {
		all = append(all, t)
		if !t.dispatched.Load() {
			idle = append(idle, t)
		}
	}
	for _, t := range all {
		if t.dispatched.Load() && t.ungate() {
			idle = append(idle, t) // held back by its task set
		}
	}
	idle = append(idle, ss.held...)
	clear(ss.held)
	ss.held, ss.parked, ss.unentered = nil, nil, nil
	ss.mu.Unlock()
	// Not under ss.mu: abort may wake a worker waiting for budget
	// (memBudget.mu comes before session.mu).
	for _, t := range all {
		t.abort()
	}
	for _, t := range idle {
		t.finish()
	}
	if ss.work != nil {
		close(ss.work)
		ss.workers.Wait()
	}
	ss.dropTaskSets()
	if ss.dev != nil {
		ss.dev.NexusDetach(ss.nexus)
	}
	ss.srv.removeSession(ss)
	close(ss.endedCh)
}

// acceptCmdSN applies the CmdSN rules to a non-immediate command and
// reports whether it is inside the window (RFC 7143 4.2.2.1). Reader only.
func (ss *session) acceptCmdSN(sn uint32) bool { return ss.withOwed(ss.receiveLocked, sn) }

// receiveEnded records CmdSN sn of a request that ends as soon as it is
// received and gives its slot back: now when it is in order, else once
// ExpCmdSN passes it. It reports false when sn is outside the window or
// a duplicate. Reader only.
func (ss *session) receiveEnded(sn uint32) bool { return ss.withOwed(ss.receiveEndedLocked, sn) }

// withOwed runs receive under ss.mu, then opens the slots it made owed
// (of requests beyond a gap that it filled) without the lock.
func (ss *session) withOwed(receive func(uint32) bool, sn uint32) bool {
	ss.mu.Lock()
	ok := receive(sn)
	owed := ss.takeOwedLocked()
	ss.mu.Unlock()
	ss.openOwed(owed)
	return ok
}

func (ss *session) receiveEndedLocked(sn uint32) bool {
	inOrder := sn == ss.expCmdSN.Load()
	if !ss.receiveLocked(sn) {
		return false
	}
	if inOrder {
		ss.owed++
	} else {
		ss.endedAhead[sn] = true
	}
	return true
}

func (ss *session) takeOwedLocked() int {
	n := ss.owed
	ss.owed = 0
	return n
}

// openOwed opens n slots (not under ss.mu).
func (ss *session) openOwed(n int) {
	for range n {
		ss.openSlot(nil)
	}
}

// receiveLocked records CmdSN sn as received: false when it is outside
// the window or a duplicate. Reader only, under ss.mu.
func (ss *session) receiveLocked(sn uint32) bool {
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
		if ss.endedAhead[exp] {
			delete(ss.endedAhead, exp)
			ss.owed++
		}
		exp++
	}
	ss.expCmdSN.Store(exp)
	if len(ss.held) > 0 || len(ss.parked) > 0 || len(ss.unentered) > 0 {
		ss.released = true
	}
	return true
}

// receiveUnseen is ABORT TASK for a task the target does not have (RFC
// 7143 11.6.1): a RefCmdSN in the window (ExpCmdSN..MaxCmdSN) and below
// the TMF's CmdSN is considered received (the command, should it come
// late, is a duplicate and never runs) and the answer is Function
// Complete; outside the window (below ExpCmdSN: the command was answered
// already, as libiscsi's AbortTaskSimpleAsync expects) or not below the
// TMF's CmdSN, the task does not exist. Reader only.
func (ss *session) receiveUnseen(ref, tmfCmdSN uint32) byte {
	ss.mu.Lock()
	exp, max := ss.expCmdSN.Load(), ss.maxCmdSN.Load()
	switch {
	case pdu.SNLess(ref, exp) || pdu.SNLess(max, ref) || !pdu.SNLess(ref, tmfCmdSN):
		ss.mu.Unlock()
		return tmfNoTask
	case ss.ahead[ref]:
		ss.mu.Unlock()
		return tmfComplete // received beyond a gap, already ended
	}
	ss.receiveEndedLocked(ref) // that command has ended
	owed := ss.takeOwedLocked()
	ss.mu.Unlock()
	ss.openOwed(owed)
	return tmfComplete
}

// release lets held commands whose turn came go to the workers, in CmdSN
// order, after running the parked TMFs now due (they abort the commands
// below them first). Called by the reader after each PDU that moved
// ExpCmdSN while something waited.
func (ss *session) release() {
	ss.mu.Lock()
	ss.released = false
	exp := ss.expCmdSN.Load()
	var due []parkedTMF
	keep := ss.parked[:0]
	for _, p := range ss.parked {
		if pdu.SNLess(exp, p.need) {
			keep = append(keep, p)
		} else {
			due = append(due, p)
		}
	}
	clear(ss.parked[len(keep):])
	ss.parked = keep
	ss.mu.Unlock()
	for _, p := range due {
		p.run()
	}
	ss.mu.Lock()
	// Commands received beyond the gap enter their task sets now, in
	// CmdSN order, before any of them may start.
	var entering []*task
	entering, ss.unentered = dueBefore(ss.unentered, exp)
	ss.mu.Unlock()
	for _, t := range entering {
		t.tset.enter(t)
	}
	ss.mu.Lock()
	var ready []*task
	ready, ss.held = dueBefore(ss.held, exp)
	if len(ss.held) == 0 {
		ss.heldSince = 0
	} else if len(ready) > 0 {
		ss.heldSince = time.Now().UnixNano()
	}
	ss.mu.Unlock()
	for _, t := range ready {
		ss.toWorkers(t)
	}
}

// dueBefore splits ts (in place) into the tasks below CmdSN exp, in CmdSN
// order, and the rest (under session.mu).
func dueBefore(ts []*task, exp uint32) (due, rest []*task) {
	rest = ts[:0]
	for _, t := range ts {
		if pdu.SNLess(t.cmdSN, exp) {
			due = append(due, t)
		} else {
			rest = append(rest, t)
		}
	}
	clear(ts[len(rest):])
	slices.SortFunc(due, func(a, b *task) int { return int(int32(a.cmdSN - b.cmdSN)) })
	return due, rest
}

// parkedTMF is a task-set TMF waiting until ExpCmdSN reaches need.
type parkedTMF struct {
	need uint32
	run  func()
}

// park queues a TMF until ExpCmdSN reaches need; false when too many wait.
func (ss *session) park(need uint32, run func()) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.parked) >= maxPendingTMFs {
		return false
	}
	ss.parked = append(ss.parked, parkedTMF{need: need, run: run})
	return true
}

// unhold takes t out of the held commands; false if it was not held.
func (ss *session) unhold(t *task) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for i, o := range ss.held {
		if o == t {
			ss.held = slices.Delete(ss.held, i, i+1)
			return true
		}
	}
	return false
}

// abortTask aborts t, a task of ss; one that will not run by itself
// (waiting for Data-Out, or held for its CmdSN turn) ends now. Any
// goroutine: finish copes with the reader still reading into t's buffer.
func (ss *session) abortTask(t *task) {
	t.abort()
	if ss.unhold(t) || !t.dispatched.Load() || t.ungate() {
		t.finish()
	}
}

// matchTasks returns the session's tasks for which pred holds.
func (ss *session) matchTasks(pred func(*task) bool) []*task {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []*task
	for _, t := range ss.tasks {
		if pred(t) {
			out = append(out, t)
		}
	}
	return out
}

// openSlot widens the window by one after a non-immediate command ended.
// Under memory pressure the slot is held back instead, as long as other
// commands of the session are in flight (their responses carry MaxCmdSN,
// so the initiator always learns of slots given back, and a session is
// never left without a slot).
//
// Slots held back (and those slow start has not opened yet) come back one
// at a time, never all at once: one more with each command that ends
// while the initiator fills at least half of the window, and one per
// session on each release of memory. Giving a whole window back the
// moment pressure eases let every session push a window of immediate
// data together, and memory overshot the budget severalfold; growing the
// window with every command that ended, used or not, let the handful of
// one-at-a-time commands an initiator sends after login (INQUIRY, READ
// CAPACITY, ...) open it wide before its first burst of writes.
func (ss *session) openSlot(ending *task) {
	if ss.srv.mem.pressed() && ss.busyBesides(ending) {
		ss.withheld.Add(1)
		ss.srv.mem.hold(ss)
		return
	}
	grow := uint32(0)
	if ss.windowFilled() {
		grow = ss.takeWithheld()
	}
	ss.maxCmdSN.Add(1 + grow)
}

// windowFilled reports whether the commands in flight (the one ending
// included, its slot not reopened yet) take at least half of the window
// the session has open (QueuedCommands less the slots withheld). Read
// without the lock: an estimate.
func (ss *session) windowFilled() bool {
	w := int64(ss.queued) - int64(ss.withheld.Load())
	free := int64(int32(ss.maxCmdSN.Load() - ss.expCmdSN.Load() + 1))
	return 2*(w-free) >= w
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

// dispatch hands a task whose data is complete to the workers, or holds
// it while a CmdSN below its own is missing (non-immediate commands reach
// the SCSI layer in CmdSN order, RFC 7143 4.2.2.1). The caller has set
// t.dispatched. Reader only.
//
// The send never blocks for long: the queue holds QueuedCommands (the
// window bounds non-immediate commands in flight) plus
// maxImmediateCommands plus slack, and nothing else is ever queued.
func (ss *session) dispatch(t *task) {
	if !t.immediate && !pdu.SNLess(t.cmdSN, ss.expCmdSN.Load()) {
		// Beyond a gap (ExpCmdSN only moves forward, so the lock-free
		// check is enough on the common path).
		ss.mu.Lock()
		if !pdu.SNLess(t.cmdSN, ss.expCmdSN.Load()) {
			if t.isAborted() || ss.ended {
				ss.mu.Unlock()
				t.finish()
				return
			}
			if len(ss.held) == 0 {
				ss.heldSince = time.Now().UnixNano()
			}
			ss.held = append(ss.held, t)
			ss.mu.Unlock()
			return
		}
		ss.mu.Unlock()
	}
	ss.toWorkers(t)
}

// toWorkers queues a task for the workers, counted in executing until its
// response is queued (or it ends without one); a task its task set holds
// back goes when the task holding it back ends (taskSet.leave).
func (ss *session) toWorkers(t *task) {
	if t.tset != nil {
		t.ready.Store(true)
		if !t.eligible.Load() || !t.sent.CompareAndSwap(false, true) {
			if t.isAborted() && t.ungate() {
				t.finish() // aborted while it became ready
			}
			return
		}
	}
	ss.executing.Add(1)
	ss.work <- t
}

func (ss *session) worker() {
	defer ss.workers.Done()
	for t := range ss.work {
		ss.run(t)
	}
}

func (ss *session) run(t *task) {
	queued := false
	defer func() {
		if !queued {
			ss.executing.Add(-1)
		}
	}()
	// executing before the abort check, cleared once Execute returns:
	// abortNexusTasks sets aborted, then reads executing, so it either
	// stops the task here or waits for its Execute (see abort.go).
	t.executing.Store(true)
	if t.isAborted() {
		t.executing.Store(false)
		t.finish()
		return
	}
	if n := dataInSize(t.cmd.CDB, t.edtl); t.read && n > 0 {
		// Wait for room in the server's data budget (bounded memory
		// under many sessions of large reads).
		if !ss.srv.mem.acquire(t, int64(n)) {
			t.executing.Store(false)
			t.finish()
			return
		}
		t.charged += int64(n)
		t.inBuf = ss.srv.pool.Get(int(n))
		t.cmd.DataIn = t.inBuf
	}
	t.res = ss.dev.Execute(&t.sig, &t.cmd)
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
		// The segments the digests cover are the ones sent: the limit
		// is fixed here for both (a Text Request may change it).
		t.segLimit = int(c.sendLimit.Load())
		t.digests = dataInDigests(t.digestBuf[:0], t.dataIn(), t.segLimit, c.burst)
	}
	t.responded = true
	t.releaseSlot()
	queued = true
	ss.executing.Add(-1) // before the enqueue: the writer must not wait for it
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
	bw       budgetWaiter
	// dataOutWait is when the task began to wait for the initiator's
	// Data-Out (unix ns): its R2T on the wire (stamped by the writer) or,
	// for unsolicited data, the command's arrival; 0 until then.
	dataOutWait atomic.Int64
	res         scsi.Result

	// reading: the reader is reading Data-Out into outBuf without t.mu
	// (under t.mu); a finish meanwhile leaves the buffer to it.
	reading bool

	// Data-Out state (reader goroutine only).
	received    uint32 // bytes received
	unsolEnd    uint32 // end of the unsolicited window
	unsolDataSN uint32
	unsolDone   bool     // the unsolicited data ended (F=1)
	dataErr     bool     // a Data-Out was lost or damaged: fail, do not write
	dataOverlap bool     // a Data-Out landed on bytes already received: fail, do not write
	cov         coverage // which bytes of outBuf were filled
	nextR2T     uint32   // next offset to solicit
	// resolicit: ranges a sequence ended (F=1) without sending; they
	// are solicited again before nextR2T (rare: kept off the inline
	// fields).
	resolicit []span
	r2tSN     uint32
	r2ts      []r2tState
	// dispatched: the data is complete, the task is the workers' (set
	// by the reader; read by TMFs of other sessions too).
	dispatched atomic.Bool
	dataSN     uint32 // Data-In PDUs sent (writer)
	// digests holds the data digest of each Data-In PDU when DataDigest
	// is on, computed by the worker right after the read (data in cache,
	// CRC off the connection's single writer); digestBuf backs it.
	digests   []uint32
	digestBuf [8]uint32
	segLimit  int // the Data-In segment size digests were taken for (0: none)

	sig       taskSignals // the task's context: cancelled on abort or end
	aborted   atomic.Bool
	executing atomic.Bool // in run, between the abort check and Execute's return
	slotFreed atomic.Bool

	// The task's place in its LUN's task set (taskset.go): tsPrev,
	// tsNext, tsLinked and tsLeft are under tset.mu. eligible: its
	// task attribute lets it start; ready: its data and CmdSN turn are
	// in (toWorkers); sent: claimed for the workers, or to be ended.
	tset             *taskSet
	tsPrev, tsNext   *task
	tsLinked, tsLeft bool
	eligible         atomic.Bool
	ready            atomic.Bool
	sent             atomic.Bool

	responded bool
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
	t.sig.cancel()
	if t.bw.queued.Load() {
		t.ss.srv.mem.wakeAborted(t)
	}
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
		if t.outBuf != nil && !t.reading {
			ss.srv.pool.Put(t.outBuf)
			t.outBuf = nil
		}
		t.mu.Unlock()
		if t.inBuf != nil {
			// Back in the pool before its budget is: whoever the
			// release lets in finds it there.
			ss.srv.pool.Put(t.inBuf)
			t.inBuf = nil
		}
		if t.immediate {
			ss.immediate.Add(-1)
		}
		// Not under t.mu: a release may grant other deferred writes.
		if charged > 0 || t.bw.queued.Load() {
			ss.srv.mem.releaseTask(ss, t, charged)
		}
		t.releaseSlot()
		if t.tset != nil {
			t.tset.leave(t) // may start tasks it held back
		}
		t.sig.end()
	})
}

// awaitingAny reports whether the session has write commands waiting for
// Data-Out (only this connection's reader can complete them). Called by
// the reader, which owns the dispatched flags.
func (ss *session) awaitingAny() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, t := range ss.tasks {
		if t.write && !t.dispatched.Load() && t.awaiting.Load() {
			return true
		}
	}
	// Held commands wait for the command that fills their CmdSN gap,
	// which only this reader can take in: their budget stays until then.
	return len(ss.held) > 0
}

// endRead ends a read of Data-Out into t.outBuf (under t.mu). It reports
// whether t was finished meanwhile (by a TMF of another session): the
// buffer, left to the reader, is given back here.
func (t *task) endRead() bool {
	t.reading = false
	if !t.ended.Load() {
		return false
	}
	if t.outBuf != nil {
		t.ss.srv.pool.Put(t.outBuf)
		t.outBuf = nil
	}
	return true
}

// maxBlockSize bounds the logical block size of a LUN (config: 512..8192)
// when a read's buffer is sized from its CDB.
const maxBlockSize = 8192

// dataInSize is the Data-In buffer a command gets: for the READ family
// what its CDB asks for (blocks of at most maxBlockSize), capped by the
// Expected Data Transfer Length; other commands get none (the SCSI layer
// builds their data itself). The initiator's EDTL alone is never trusted
// (three 1-block READs with EDTL 1 GiB allocated 3 GiB).
func dataInSize(cdb []byte, edtl uint32) uint32 {
	var blocks uint64
	switch {
	case len(cdb) >= 6 && cdb[0] == 0x08: // READ(6)
		blocks = uint64(cdb[4])
		if blocks == 0 {
			blocks = 256
		}
	case len(cdb) >= 10 && cdb[0] == 0x28: // READ(10)
		blocks = uint64(binary.BigEndian.Uint16(cdb[7:]))
	case len(cdb) >= 12 && cdb[0] == 0xa8: // READ(12)
		blocks = uint64(binary.BigEndian.Uint32(cdb[6:]))
	case len(cdb) >= 16 && cdb[0] == 0x88: // READ(16)
		blocks = uint64(binary.BigEndian.Uint32(cdb[10:]))
	default:
		return 0
	}
	return uint32(min(blocks*maxBlockSize, uint64(edtl)))
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
// data will be split into (segments of at most limit bytes that never
// cross a burst boundary, as conn.appendOut splits them).
func dataInDigests(dst []uint32, data []byte, limit, burst int) []uint32 {
	seqEnd := min(burst, len(data))
	for off := 0; off < len(data); {
		n := min(limit, seqEnd-off)
		dst = append(dst, pdu.DataDigest(data[off:off+n]))
		off += n
		if off == seqEnd {
			seqEnd = min(seqEnd+burst, len(data))
		}
	}
	return dst
}
