package iscsi

import (
	"sync"
	"sync/atomic"

	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// taskSet is the task set of one logical unit (SAM-5 8.5, 8.6): the
// Control mode page reports TST 000b, one task set shared by every I_T
// nexus, so every session of the device on that LUN enters the same one.
// It orders tasks by their task attribute:
//
//   - SIMPLE (and untagged, ACA and the reserved values, which the SCSI
//     layer refuses anyway) may start once every older ORDERED and HEAD
//     OF QUEUE task has ended; among themselves they are unordered (QAM
//     1, unrestricted reordering);
//   - ORDERED starts once every older task has ended, and holds back every
//     newer SIMPLE and ORDERED one until it ended;
//   - HEAD OF QUEUE starts at once, and holds back newer SIMPLE and
//     ORDERED ones until it ended.
//
// A task enters when it is received in CmdSN order (at once when it is
// immediate or in order, else when ExpCmdSN passes it: session.release),
// so that a write still waiting for its Data-Out keeps its place; it
// leaves when it ends (task.finish). It may start when it is both ready
// (its data is in and its CmdSN turn came: session.toWorkers) and
// eligible here. Nothing waits on a worker: a task that becomes eligible
// later is handed to its session's workers by the goroutine that ended
// the task holding it back.
//
// mu is a leaf lock: nothing else is taken under it.
type taskSet struct {
	key  taskSetKey
	refs int // sessions holding it (Server.tsetMu)

	mu         sync.Mutex
	head, tail *task
	barriers   int // ORDERED and HEAD OF QUEUE tasks in the set
	// barred mirrors barriers > 0 for the data budget, which asks
	// without taking mu (memBudget.acquire).
	barred  atomic.Bool
	waiting int // tasks in the set not yet eligible
}

type taskSetKey struct {
	dev Device
	lun uint64
}

// barrier reports whether a task holds back the newer ones.
func barrier(t *task) bool {
	return t.cmd.Attr == scsi.Ordered || t.cmd.Attr == scsi.HeadOfQ
}

// enter adds t at the tail (the reader, in the order tasks are received).
func (s *taskSet) enter(t *task) {
	s.mu.Lock()
	older := s.head != nil
	s.enterLocked(t)
	s.mu.Unlock()
	if older && barrier(t) {
		// The tasks before it must not wait for data budget that the
		// tasks it holds back will keep until it ended.
		t.ss.srv.mem.grantBarred(s)
	}
}

func (s *taskSet) enterLocked(t *task) {
	if t.tsLeft {
		return // ended before its turn to enter came
	}
	var eligible bool
	switch t.cmd.Attr {
	case scsi.HeadOfQ:
		eligible = true
	case scsi.Ordered:
		eligible = s.head == nil
	default:
		eligible = s.barriers == 0
	}
	t.tsPrev, t.tsNext = s.tail, nil
	if s.tail != nil {
		s.tail.tsNext = t
	} else {
		s.head = t
	}
	s.tail = t
	t.tsLinked = true
	if barrier(t) {
		s.barriers++
		s.barred.Store(true)
	}
	if eligible {
		t.eligible.Store(true)
	} else {
		s.waiting++
	}
}

// leave takes t out of the set (once, when it ends) and starts the tasks
// that may start now. Any goroutine, holding no lock of the session.
func (s *taskSet) leave(t *task) {
	s.mu.Lock()
	t.tsLeft = true
	if !t.tsLinked {
		s.mu.Unlock()
		return
	}
	t.tsLinked = false
	if t.tsPrev != nil {
		t.tsPrev.tsNext = t.tsNext
	} else {
		s.head = t.tsNext
	}
	if t.tsNext != nil {
		t.tsNext.tsPrev = t.tsPrev
	} else {
		s.tail = t.tsPrev
	}
	t.tsPrev, t.tsNext = nil, nil
	if barrier(t) {
		s.barriers--
		s.barred.Store(s.barriers > 0)
	}
	if !t.eligible.Load() {
		s.waiting--
	}
	var start []*task
	if s.waiting > 0 {
		start = s.scanLocked()
	}
	s.mu.Unlock()
	for _, o := range start {
		o.ss.startGated(o)
	}
}

// scanLocked marks eligible the tasks that may start now and returns
// those of them that are ready (claimed for the workers). Everything
// behind the oldest barrier waits for it, so the walk ends there.
func (s *taskSet) scanLocked() []*task {
	var start []*task
	for e := s.head; e != nil; e = e.tsNext {
		if !e.eligible.Load() {
			if e.cmd.Attr == scsi.Ordered && e != s.head {
				break
			}
			e.eligible.Store(true)
			s.waiting--
			if e.ready.Load() && e.sent.CompareAndSwap(false, true) {
				start = append(start, e)
			}
		}
		if barrier(e) {
			break
		}
	}
	return start
}

// taskSetFor returns the task set of LUN lun of the session's device,
// cached for the session (reader only).
func (ss *session) taskSetFor(lun uint64) *taskSet {
	if s := ss.tsets[lun]; s != nil {
		return s
	}
	srv := ss.srv
	key := taskSetKey{dev: ss.dev, lun: lun}
	srv.tsetMu.Lock()
	s := srv.tsets[key]
	if s == nil {
		s = &taskSet{key: key}
		if srv.tsets == nil {
			srv.tsets = map[taskSetKey]*taskSet{}
		}
		srv.tsets[key] = s
	}
	s.refs++
	srv.tsetMu.Unlock()
	if ss.tsets == nil {
		ss.tsets = map[uint64]*taskSet{}
	}
	ss.tsets[lun] = s
	return s
}

// dropTaskSets gives back the session's task sets (at its end). A task
// of the session still ending keeps its set through its own pointer.
func (ss *session) dropTaskSets() {
	if len(ss.tsets) == 0 {
		return
	}
	srv := ss.srv
	srv.tsetMu.Lock()
	for _, s := range ss.tsets {
		if s.refs--; s.refs == 0 && srv.tsets[s.key] == s {
			delete(srv.tsets, s.key)
		}
	}
	srv.tsetMu.Unlock()
	ss.tsets = nil
}

// enterTaskSet places a newly received task in its LUN's task set: now
// when it is immediate or in CmdSN order, else once ExpCmdSN passes it
// (session.release). Reader only, after addTask.
func (ss *session) enterTaskSet(t *task) {
	t.tset = ss.taskSetFor(t.lun)
	if t.immediate || pdu.SNLess(t.cmdSN, ss.expCmdSN.Load()) {
		t.tset.enter(t)
		return
	}
	ss.mu.Lock()
	ss.unentered = append(ss.unentered, t)
	ss.mu.Unlock()
}

// startGated hands a task that became eligible to the workers (any
// goroutine); a session that ended meanwhile ends it instead.
func (ss *session) startGated(t *task) {
	ss.mu.Lock()
	if ss.ended || t.isAborted() {
		ss.mu.Unlock()
		t.finish()
		return
	}
	// Under ss.mu: session.end closes work only after setting ended
	// under it. The send does not block (see dispatch).
	ss.executing.Add(1)
	ss.work <- t
	ss.mu.Unlock()
}

// ungate claims a task that is ready but held back by its task set, so
// that the caller ends it (it was aborted, or the session ends): false
// when it went, or goes, to the workers, or is not ready yet.
func (t *task) ungate() bool {
	return t.ready.Load() && t.sent.CompareAndSwap(false, true)
}
