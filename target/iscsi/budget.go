package iscsi

import (
	"sync"
	"sync/atomic"
	"time"
)

// memBudget bounds the data-buffer memory held by commands in flight
// across every session of a server (Options.MaxDataInFlight). Commands
// wait for room instead of allocating; a command larger than the whole
// budget waits until it is alone.
//
// Fair share. Every charge and release is booked to the session of the
// command (session.budget). While no other session waits, a session may
// use the whole budget. While a command of another session waits, a
// session holding its share gets no more until it drops below; its share
// is what the sessions that want no more leave, split evenly among those
// that do (the waiting ones and itself: max-min fairness, shareLocked),
// and a session holding nothing always gets one command. The waiting
// commands are served neediest session first: the one holding least (the
// shares being equal, the one furthest below its share), in arrival order
// within a session. When the neediest waiter does not fit yet but would
// within its share, nobody else is served before it (smaller requests
// cannot starve it); a request beyond its share does not hold up others.
//
// Deferred writes come first. A write its reader deferred (deferGrant)
// holds its immediate data already, and that memory does nothing until
// the write is granted the rest of its buffer, which is the only way to
// get it back. So the immediate data of queued deferred writes counts
// neither against its session's share nor in "holding least" (counted, a
// session whose window filled with deferred writes stayed above its share
// with nothing moving: its writes were never granted while others ran,
// and their immediate data kept most of the budget idle), and the oldest
// deferred write that the share rule allows goes as soon as its whole
// buffer fits beside the memory of the commands not deferred (measured
// against used, which their immediate data fills, one write at a time
// went whenever they held much). Memory in use is then bounded by the
// limit plus the immediate data of queued deferred writes, which the CmdSN
// windows bound (below).
//
// Waiters are handed their bytes by whoever releases (no thundering
// herd). All of it is under the one lock round-trip a command takes
// anyway, and allocation-free: the waiter is part of its task.
//
// The share rule cannot take back what a session already holds, and a
// session that stops reading its responses or sending its Data-Out keeps
// its commands (and their budget) indefinitely. Server.watchBudget drops
// such a session's connection when it holds more than its share (its
// deferred writes' immediate data included: only its stall made them
// wait) while another session's command has waited for
// initiatorStallLimit (stall.go).
//
// Under pressure (3/4 of the limit in use) sessions also stop widening
// their CmdSN window as commands end (see session.openSlot): the
// initiator may not send more commands than MaxCmdSN allows, which is the
// protocol's own back-pressure and the only way to bound the immediate and
// unsolicited data an initiator can push. The slots held back are given
// back one at a time once the pressure is gone (additive increase; a
// whole window at once overshot), and a new session starts with a small
// window that grows the same way, while its initiator fills it
// (session.start, session.openSlot).
type memBudget struct {
	mu    sync.Mutex
	limit int64
	used  int64
	// usedNow mirrors used for pressed, which every ending command asks
	// without taking mu.
	usedNow atomic.Int64
	held    map[*session]struct{} // sessions with slots held back

	active          int64 // sessions holding budget or waiting for it
	waitingSessions int   // sessions with a command in waiters
	waitingHeld     int64 // bytes held by those sessions
	waiters         waitList
	deferredHeld    int64 // immediate data held by deferred writes (in used)

	// watch is started (once at a time) when a command waits while
	// several sessions use the budget; it runs until nobody waits and
	// then calls stopWatching. nil in unit tests of the budget alone.
	watch    func()
	watching bool
}

// budgetAccount is a session's part of the data budget (memBudget.mu).
type budgetAccount struct {
	held    int64         // bytes charged to its commands
	dead    int64         // of held: immediate data of its queued deferred writes
	waiting int           // its commands in memBudget.waiters
	reader  *budgetWaiter // its connection reader, while it waits
}

// Kinds of waiter.
const (
	waitWorker   = iota // a worker before a read (acquire)
	waitReader          // the connection reader (acquireReader)
	waitDeferred        // a write's R2Ts (deferGrant): task.grant runs when granted
)

// budgetWaiter is a command queued for budget; it is part of its task (no
// allocation per wait). Fields other than queued are guarded by
// memBudget.mu.
type budgetWaiter struct {
	ss         *session
	t          *task
	n          int64 // bytes wanted
	u          int64 // waitDeferred: immediate data it holds already
	kind       uint8
	granted    bool
	since      int64 // unix ns when it was queued
	cond       sync.Cond
	prev, next *budgetWaiter
	queued     atomic.Bool // in waiters (read without the lock by task.abort)
}

// waitList is the FIFO of waiters, linked through them.
type waitList struct{ head, tail *budgetWaiter }

func newMemBudget(limit int64) *memBudget {
	return &memBudget{limit: limit, held: map[*session]struct{}{}}
}

// smallCommand is the size up to which a command never waits for the
// budget: small I/O of one initiator is never starved by large transfers
// of another that pin the budget (e.g. writes whose Data-Out never comes).
// What it costs is bounded by the CmdSN windows.
const smallCommand = 64 << 10

func (b *memBudget) fits(n int64) bool {
	return b.used+n <= b.limit || b.used == 0 || n <= smallCommand
}

func (b *memBudget) chargeLocked(ss *session, n int64) {
	if n == 0 {
		return
	}
	a := &ss.budget
	if a.held == 0 && a.waiting == 0 {
		b.active++
	}
	a.held += n
	b.used += n
	b.usedNow.Store(b.used)
	if a.waiting > 0 {
		b.waitingHeld += n
	}
}

func (b *memBudget) unchargeLocked(ss *session, n int64) {
	if n == 0 {
		return
	}
	a := &ss.budget
	a.held -= n
	b.used -= n
	b.usedNow.Store(b.used)
	if a.waiting > 0 {
		b.waitingHeld -= n
	}
	if a.held == 0 && a.waiting == 0 {
		b.active--
	}
}

// contendedLocked reports whether a session other than ss wants memory:
// one that waits, or xs (a request not queued; nil: none).
func (b *memBudget) contendedLocked(ss, xs *session) bool {
	w := b.waitingSessions
	if xs != nil && xs.budget.waiting == 0 {
		w++
	}
	if ss.budget.waiting > 0 || ss == xs {
		w--
	}
	return w > 0
}

// shareLocked is the fair share of ss, counted among the sessions that
// want memory (those waiting, xs, and ss itself): what the sessions that
// want nothing more hold is theirs, the rest is split evenly among those
// that want more (max-min fairness: memory one session does not want is
// left to the others, not kept idle).
func (b *memBudget) shareLocked(ss, xs *session) int64 {
	k, wh := int64(b.waitingSessions), b.waitingHeld
	if xs != nil && xs.budget.waiting == 0 {
		k, wh = k+1, wh+xs.budget.held
	}
	if ss != xs && ss.budget.waiting == 0 {
		k, wh = k+1, wh+ss.budget.held
	}
	return (b.limit - (b.used - wh)) / k
}

// live is what a session holds that its commands can use: held but for
// the immediate data of its queued deferred writes (memBudget).
func (a *budgetAccount) live() int64 { return a.held - a.dead }

// eligibleLocked reports whether the share rule lets ss take more: it
// holds nothing live (one command always), or less than its share, or no
// other session wants memory (xs as for contendedLocked).
func (b *memBudget) eligibleLocked(ss, xs *session) bool {
	l := ss.budget.live()
	return l == 0 || l < b.shareLocked(ss, xs) || !b.contendedLocked(ss, xs)
}

// pickLocked chooses the waiter to serve next (see memBudget), or reports
// extra: a request of xn bytes for session xs that is not queued (xs nil:
// none), considered as if queued last. Nothing when none may go now.
//
// The neediest request the share rule allows goes if it fits; if it does
// not but would within its share, nothing goes (room is kept for it);
// else the neediest allowed request that fits goes.
func (b *memBudget) pickLocked(xs *session, xn int64) (w *budgetWaiter, extra bool) {
	best, bestX, ok := b.neediestLocked(xs, xn, false)
	if !ok {
		return nil, false
	}
	bs, bn := xs, xn
	if !bestX {
		bs, bn = best.ss, best.n
	}
	if b.fits(bn) {
		return best, bestX
	}
	if b.contendedLocked(bs, xs) && bs.budget.live()+bn <= b.shareLocked(bs, xs) {
		return nil, false // room is kept for it
	}
	best, bestX, _ = b.neediestLocked(xs, xn, true)
	return best, bestX
}

// neediestLocked finds, among the requests (queued, and the extra one)
// that the share rule allows and that fit (if fit), one of the session
// holding least (live), the first one on ties.
func (b *memBudget) neediestLocked(xs *session, xn int64, fit bool) (w *budgetWaiter, extra, ok bool) {
	var held int64
	for c := b.waiters.head; c != nil; c = c.next {
		if l := c.ss.budget.live(); (!ok || l < held) && (!fit || b.fits(c.n)) && b.eligibleLocked(c.ss, xs) {
			w, held, ok = c, l, true
		}
	}
	if xs != nil && (!ok || xs.budget.live() < held) && (!fit || b.fits(xn)) && b.eligibleLocked(xs, xs) {
		return nil, true, true
	}
	return w, false, ok
}

// enqueueLocked queues w (set up by the caller).
func (b *memBudget) enqueueLocked(w *budgetWaiter, now int64) {
	a := &w.ss.budget
	if a.waiting == 0 {
		if a.held == 0 {
			b.active++
		}
		b.waitingSessions++
		b.waitingHeld += a.held
	}
	a.waiting++
	w.since, w.granted = now, false
	w.prev, w.next = b.waiters.tail, nil
	if b.waiters.tail != nil {
		b.waiters.tail.next = w
	} else {
		b.waiters.head = w
	}
	b.waiters.tail = w
	w.queued.Store(true)
	if w.kind == waitDeferred {
		b.deferredHeld += w.u
		a.dead += w.u
	}
	if b.watch != nil && !b.watching && b.active > 1 {
		b.watching = true
		go b.watch()
	}
}

// unlinkLocked takes w out of the queue.
func (b *memBudget) unlinkLocked(w *budgetWaiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.waiters.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.waiters.tail = w.prev
	}
	w.prev, w.next = nil, nil
	w.queued.Store(false)
	a := &w.ss.budget
	if w.kind == waitDeferred {
		b.deferredHeld -= w.u
		a.dead -= w.u
	}
	a.waiting--
	if a.waiting == 0 {
		b.waitingSessions--
		b.waitingHeld -= a.held
		if a.held == 0 {
			b.active--
		}
	}
}

// deferredFirstLocked finds the oldest deferred write holding immediate
// data that the share rule allows and whose whole buffer fits beside the
// memory of the commands that are not deferred (see memBudget).
func (b *memBudget) deferredFirstLocked() *budgetWaiter {
	if b.deferredHeld == 0 {
		return nil
	}
	live := b.used - b.deferredHeld
	for c := b.waiters.head; c != nil; c = c.next {
		if c.kind == waitDeferred && c.u > 0 && (live == 0 || live+c.u+c.n <= b.limit) && b.eligibleLocked(c.ss, nil) {
			return c
		}
	}
	return nil
}

// grantLocked serves the waiters that may go now: it charges them and
// wakes those that sleep. The deferred writes granted are returned as a
// chain (through next) for runGrants, after the lock is dropped.
func (b *memBudget) grantLocked() *budgetWaiter {
	var chain, last *budgetWaiter
	for b.waiters.head != nil {
		w := b.deferredFirstLocked()
		if w == nil {
			w, _ = b.pickLocked(nil, 0)
		}
		if w == nil && b.used <= b.deferredHeld {
			// Nothing but deferred writes holds memory: nobody else
			// would free any (their Data-Out comes only after their
			// R2Ts), so the oldest goes whatever its size.
			for c := b.waiters.head; c != nil; c = c.next {
				if c.kind == waitDeferred {
					w = c
					break
				}
			}
		}
		if w == nil {
			break
		}
		b.grantWaiterLocked(w, &chain, &last)
	}
	return chain
}

// grantWaiterLocked gives w its bytes: a worker or reader is woken, a
// deferred write is appended to the chain its R2Ts are sent from
// (runGrants, once mu is dropped).
func (b *memBudget) grantWaiterLocked(w *budgetWaiter, chain, last **budgetWaiter) {
	b.unlinkLocked(w)
	b.chargeLocked(w.ss, w.n)
	w.granted = true
	if w.kind != waitDeferred {
		w.cond.Signal()
		return
	}
	if *last == nil {
		*chain = w
	} else {
		(*last).next = w
	}
	*last = w
}

// runGrants sends the R2Ts of the deferred writes granted (not under
// memBudget.mu: task.grant takes task.mu).
func runGrants(chain *budgetWaiter) {
	for chain != nil {
		w := chain
		chain, w.next = w.next, nil
		w.t.grant(w.n)
	}
}

// tryAcquire takes n bytes for session ss if it may now.
func (b *memBudget) tryAcquire(ss *session, n int64) bool {
	b.mu.Lock()
	ok := b.fits(n)
	if ok && n > smallCommand && b.waiters.head != nil {
		_, ok = b.pickLocked(ss, n)
	}
	if ok {
		b.chargeLocked(ss, n)
	}
	b.mu.Unlock()
	return ok
}

// force takes n bytes for ss even beyond the limit (callers that must
// not wait).
func (b *memBudget) force(ss *session, n int64) {
	b.mu.Lock()
	b.chargeLocked(ss, n)
	b.mu.Unlock()
}

// acquire waits until t (a worker's command) may take n bytes, or t is
// aborted (task.abort wakes it).
func (b *memBudget) acquire(t *task, n int64) bool {
	ss := t.ss
	b.mu.Lock()
	if b.fits(n) && (n <= smallCommand || b.waiters.head == nil) || t.tset != nil && t.tset.barred.Load() {
		// The common case: no waiting. Or a barrier is in the task
		// set: a command that runs now is older than it or is it, and
		// the commands it holds back keep their memory until it ended
		// (grantBarred).
		b.chargeLocked(ss, n)
		b.mu.Unlock()
		return true
	}
	w := &t.bw
	w.ss, w.t, w.n, w.u, w.kind = ss, t, n, 0, waitWorker
	w.cond.L = &b.mu
	b.enqueueLocked(w, time.Now().UnixNano())
	if g := b.grantLocked(); g != nil {
		b.mu.Unlock()
		runGrants(g)
		b.mu.Lock()
	}
	for !w.granted {
		if t.sig.Err() != nil {
			b.unlinkLocked(w)
			// Its leaving may let others go (one session fewer waits).
			g := b.grantLocked()
			b.mu.Unlock()
			runGrants(g)
			return false
		}
		w.cond.Wait()
	}
	b.mu.Unlock()
	return true
}

// grantBarred grants, beyond the limit if need be, every worker and
// deferred write of task set s waiting for budget: they are older than a
// barrier that just entered s (an ORDERED or HEAD OF QUEUE command), which
// waits for them while the newer commands it holds back keep what they
// hold (their data) until it ended, so the memory they wait for might
// never come back. What it overdraws is bounded by the commands in
// flight, and only while a barrier is in a task set.
func (b *memBudget) grantBarred(s *taskSet) {
	b.mu.Lock()
	var chain, last *budgetWaiter
	for w := b.waiters.head; w != nil; {
		next := w.next
		if w.t == nil || w.t.tset != s || w.kind == waitReader {
			// The reader's command enters the set only once its data is
			// in: it is newer than the barrier.
			w = next
			continue
		}
		b.grantWaiterLocked(w, &chain, &last)
		w = next
	}
	b.mu.Unlock()
	runGrants(chain)
}

// wakeAborted wakes t if it waits in acquire (task.abort).
func (b *memBudget) wakeAborted(t *task) {
	b.mu.Lock()
	if t.bw.queued.Load() && t.bw.kind == waitWorker {
		t.bw.cond.Signal()
	}
	b.mu.Unlock()
}

// acquireReader is acquire for a connection reader, t being the write it
// reads. It must not wait while writes of its session wait for the
// Data-Out behind it (their budget would never come back: a deadlock once
// every reader waits), so then it overdraws; awaiting is re-checked
// whenever a deferred write of the session is granted (wakeReader). It
// gives up (false) once closing reports the connection closing (checked
// on wakeReader too).
func (b *memBudget) acquireReader(t *task, n int64, awaiting, closing func() bool) bool {
	ss := t.ss
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fits(n) && (n <= smallCommand || b.waiters.head == nil) {
		b.chargeLocked(ss, n)
		return true
	}
	w := &t.bw
	w.ss, w.t, w.n, w.u, w.kind = ss, t, n, 0, waitReader
	w.cond.L = &b.mu
	b.enqueueLocked(w, time.Now().UnixNano())
	ss.budget.reader = w
	defer func() { ss.budget.reader = nil }()
	for {
		if g := b.grantLocked(); g != nil {
			b.mu.Unlock()
			runGrants(g)
			b.mu.Lock()
		}
		if w.granted {
			return true
		}
		if awaiting() || closing() {
			b.unlinkLocked(w)
			if closing() {
				return false
			}
			b.chargeLocked(ss, n)
			return true
		}
		w.cond.Wait()
	}
}

// wakeReader lets the reader of ss re-check its condition if it waits
// in acquireReader.
func (b *memBudget) wakeReader(ss *session) {
	b.mu.Lock()
	if w := ss.budget.reader; w != nil {
		w.cond.Signal()
	}
	b.mu.Unlock()
}

// deferGrant queues write t, which holds u bytes (its immediate data), for
// n more bytes: t.grant runs when they may go, or at once when nothing but
// deferred writes holds memory (nobody else would free any).
func (b *memBudget) deferGrant(t *task, n, u int64) {
	b.mu.Lock()
	w := &t.bw
	w.ss, w.t, w.n, w.u, w.kind = t.ss, t, n, u, waitDeferred
	b.enqueueLocked(w, time.Now().UnixNano())
	g := b.grantLocked()
	b.mu.Unlock()
	runGrants(g)
}

// release gives back n bytes of session ss and serves waiters.
func (b *memBudget) release(ss *session, n int64) {
	b.releaseTask(ss, nil, n)
}

// releaseTask is release for a task that has ended: t leaves the queue
// if it waited there (a deferred write).
func (b *memBudget) releaseTask(ss *session, t *task, n int64) {
	b.mu.Lock()
	if t != nil && t.bw.queued.Load() {
		b.unlinkLocked(&t.bw)
	}
	b.unchargeLocked(ss, n)
	grants := b.grantLocked()
	var reopen []*session
	if len(b.held) > 0 && !b.pressedLocked() {
		for ss := range b.held {
			reopen = append(reopen, ss)
		}
		clear(b.held)
	}
	b.mu.Unlock()
	runGrants(grants)
	for _, ss := range reopen {
		ss.reopenSlots()
	}
}

func (b *memBudget) pressedLocked() bool { return b.used >= b.limit-b.limit/4 }

// pressed reports whether sessions should hold back CmdSN window slots.
func (b *memBudget) pressed() bool { return b.usedNow.Load() >= b.limit-b.limit/4 }

// hold remembers a session that held back a window slot, to give it back
// on a later release.
func (b *memBudget) hold(ss *session) {
	b.mu.Lock()
	b.held[ss] = struct{}{}
	b.mu.Unlock()
}

// inUse reports the bytes held.
func (b *memBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// heldBy reports the bytes held by the commands of ss.
func (b *memBudget) heldBy(ss *session) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return ss.budget.held
}

// hogging reports whether ss holds more than its fair share while a
// command of another session has waited since before cutoff (unix ns).
func (b *memBudget) hogging(ss *session, cutoff int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ss.budget.held <= b.shareLocked(ss, nil) {
		return false
	}
	for w := b.waiters.head; w != nil; w = w.next {
		if w.ss != ss && w.since <= cutoff {
			return true
		}
	}
	return false
}

// stopWatching ends the watcher's run if nobody waits (else it goes on).
func (b *memBudget) stopWatching() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.waiters.head != nil {
		return false
	}
	b.watching = false
	return true
}

// waitingNow reports whether a command waits for budget.
func (b *memBudget) waitingNow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waiters.head != nil
}
