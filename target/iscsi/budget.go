package iscsi

import (
	"context"
	"sync"
)

// memBudget bounds the data-buffer memory held by commands in flight
// across every session of a server (Options.MaxDataInFlight). Commands
// wait for room instead of allocating; a command larger than the whole
// budget waits until it is alone.
//
// Under pressure (3/4 of the limit in use) sessions also stop widening
// their CmdSN window as commands end (see session.openSlot): the
// initiator may not send more commands than MaxCmdSN allows, which is the
// protocol's own back-pressure and the only way to bound the immediate and
// unsolicited data an initiator can push. The slots held back are given
// back one at a time once the pressure is gone (additive increase; a
// whole window at once overshot), and a new session starts with a small
// window that grows the same way (session.start).
type memBudget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	limit int64
	used  int64
	held  map[*session]struct{} // sessions with slots held back

	deferred     []deferredWrite // writes waiting to send their R2Ts
	deferredHeld int64           // immediate data they hold (in used)
}

func newMemBudget(limit int64) *memBudget {
	b := &memBudget{limit: limit, held: map[*session]struct{}{}}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// smallCommand is the size up to which a command never waits for the
// budget: small I/O of one initiator is never starved by large transfers
// of another that pin the budget (e.g. writes whose Data-Out never comes).
// What it costs is bounded by the CmdSN windows.
const smallCommand = 64 << 10

func (b *memBudget) fits(n int64) bool {
	return b.used+n <= b.limit || b.used == 0 || n <= smallCommand
}

// tryAcquire takes n bytes if they fit now.
func (b *memBudget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.fits(n) {
		return false
	}
	b.used += n
	return true
}

// force takes n bytes even beyond the limit (callers that must not wait).
func (b *memBudget) force(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// acquire waits until n bytes fit or ctx is done.
func (b *memBudget) acquire(ctx context.Context, n int64) bool {
	b.mu.Lock()
	if b.fits(n) {
		// The common case: no waiting, so no cancellation hook either.
		b.used += n
		b.mu.Unlock()
		return true
	}
	b.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.fits(n) {
		if ctx.Err() != nil {
			return false
		}
		b.cond.Wait()
	}
	b.used += n
	return true
}

// acquireReader is acquire for a connection reader. It must not wait
// while writes of its session wait for the Data-Out behind it (their
// budget would never come back: a deadlock once every reader waits), so
// then it overdraws; awaiting is re-checked on every wake-up, as a
// deferred write of the session may be granted meanwhile.
func (b *memBudget) acquireReader(n int64, awaiting func() bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for !b.fits(n) && !awaiting() {
		b.cond.Wait()
	}
	b.used += n
}

// deferGrant queues write t, which holds u bytes (its immediate data), for
// n more bytes: t.grant runs when they fit, or at once when nothing but
// deferred writes holds memory (nobody else would free any).
func (b *memBudget) deferGrant(t *task, n, u int64) {
	b.mu.Lock()
	b.deferred = append(b.deferred, deferredWrite{t: t, n: n, u: u})
	b.deferredHeld += u
	g := b.grantableLocked()
	b.mu.Unlock()
	for _, d := range g {
		d.t.grant(d.n)
	}
}

type deferredWrite struct {
	t    *task
	n, u int64
}

// grantableLocked takes the deferred writes that may go now, in order,
// and charges them.
func (b *memBudget) grantableLocked() []deferredWrite {
	var out []deferredWrite
	for len(b.deferred) > 0 {
		d := b.deferred[0]
		if d.t.ended.Load() {
			// Ended while waiting: finish gave back its bytes.
		} else if b.used+d.n <= b.limit || b.used <= b.deferredHeld {
			b.used += d.n
			out = append(out, d)
		} else {
			break
		}
		b.deferred[0] = deferredWrite{}
		b.deferred = b.deferred[1:]
		b.deferredHeld -= d.u
	}
	return out
}

// wake lets waiting readers re-check their condition.
func (b *memBudget) wake() {
	b.mu.Lock()
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *memBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	grants := b.grantableLocked()
	var reopen []*session
	if len(b.held) > 0 && !b.pressedLocked() {
		for ss := range b.held {
			reopen = append(reopen, ss)
		}
		clear(b.held)
	}
	b.mu.Unlock()
	for _, d := range grants {
		d.t.grant(d.n)
	}
	for _, ss := range reopen {
		ss.reopenSlots()
	}
}

func (b *memBudget) pressedLocked() bool { return b.used >= b.limit-b.limit/4 }

// pressed reports whether sessions should hold back CmdSN window slots.
func (b *memBudget) pressed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pressedLocked()
}

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
