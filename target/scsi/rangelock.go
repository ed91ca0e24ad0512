package scsi

import (
	"sync"
	"sync/atomic"
)

// rangeLocks orders the commands of one logical unit that touch the same
// LBAs so that the read-modify-write commands (COMPARE AND WRITE, ORWRITE,
// WRITE ATOMIC) are atomic against every other command, from any I_T
// nexus (SBC-3: "an uninterrupted series of actions"), while plain reads
// and writes keep running in parallel.
//
// Plain I/O (READ, WRITE, WRITE SAME, UNMAP, VERIFY, EXTENDED COPY, ...)
// takes a shared range; the atomic commands take an exclusive one. Shared
// ranges never wait for each other; an exclusive range waits for every
// overlapping range admitted before it and holds back overlapping ranges
// that come after it (first come, first served, so neither side starves).
//
// The hot path costs two atomic operations and no lock: while no
// exclusive range is held or waiting, a shared range is only counted
// (fast). An exclusive range first raises excl, which sends new shared
// ranges to the registered (slow) path, then waits for the counted ones
// to drain. excl and fast form a Dekker pair: a shared range increments
// fast and then checks excl; an exclusive one increments excl and then
// checks fast; with sequentially consistent atomics at least one of them
// sees the other.
type rangeLocks struct {
	excl atomic.Int32 // exclusive ranges held or waiting
	fast atomic.Int64 // shared ranges admitted without registration

	mu   sync.Mutex
	cond sync.Cond // signalled when a registered range or the last fast one goes
	seq  uint64
	held []lockedRange // registered ranges: admitted shared, exclusive held or waiting
	// waiting counts ranges blocked behind another one (for tests and
	// debugging; under mu).
	waiting int
}

type lockedRange struct {
	lba, end uint64 // [lba, end)
	seq      uint64 // arrival order
	excl     bool
	active   bool // admitted (shared ranges are admitted on registration)
}

// rangeToken is what release needs; the zero value is a fast shared range.
type rangeToken struct {
	seq uint64 // 0: fast path
}

func (r *rangeLocks) init() { r.cond.L = &r.mu }

func overlaps(a, b lockedRange) bool { return a.lba < b.end && b.lba < a.end }

// shared admits a shared range over [lba, lba+n) (n may be 0).
func (r *rangeLocks) shared(lba, n uint64) rangeToken {
	if r.excl.Load() == 0 {
		r.fast.Add(1)
		if r.excl.Load() == 0 {
			return rangeToken{}
		}
		r.releaseFast()
	}
	me := lockedRange{lba: lba, end: lba + max(n, 1)}
	r.mu.Lock()
	for r.blockedShared(me) {
		r.waiting++
		r.cond.Wait()
		r.waiting--
	}
	r.seq++
	me.seq, me.active = r.seq, true
	r.held = append(r.held, me)
	r.mu.Unlock()
	return rangeToken{seq: me.seq}
}

// blockedShared: an exclusive range (held or waiting) overlaps (under mu).
func (r *rangeLocks) blockedShared(me lockedRange) bool {
	for _, h := range r.held {
		if h.excl && overlaps(h, me) {
			return true
		}
	}
	return false
}

// exclusive admits an exclusive range over [lba, lba+n).
func (r *rangeLocks) exclusive(lba, n uint64) rangeToken {
	r.mu.Lock()
	r.excl.Add(1)
	r.seq++
	me := lockedRange{lba: lba, end: lba + max(n, 1), seq: r.seq, excl: true}
	r.held = append(r.held, me)
	for r.fast.Load() != 0 || r.blockedExclusive(me) {
		r.waiting++
		r.cond.Wait()
		r.waiting--
	}
	for i := range r.held {
		if r.held[i].seq == me.seq {
			r.held[i].active = true
		}
	}
	r.mu.Unlock()
	return rangeToken{seq: me.seq}
}

// blockedExclusive: an overlapping admitted range, or an overlapping
// exclusive range that arrived earlier, exists (under mu).
func (r *rangeLocks) blockedExclusive(me lockedRange) bool {
	for _, h := range r.held {
		if h.seq == me.seq || !overlaps(h, me) {
			continue
		}
		if h.active || (h.excl && h.seq < me.seq) {
			return true
		}
	}
	return false
}

// release ends a range admitted by shared or exclusive.
func (r *rangeLocks) release(t rangeToken) {
	if t.seq == 0 {
		r.releaseFast()
		return
	}
	r.mu.Lock()
	for i := range r.held {
		if r.held[i].seq == t.seq {
			if r.held[i].excl {
				r.excl.Add(-1)
			}
			last := len(r.held) - 1
			r.held[i] = r.held[last]
			r.held = r.held[:last]
			break
		}
	}
	r.cond.Broadcast()
	r.mu.Unlock()
}

// releaseFast ends a fast shared range; the last one wakes exclusive
// ranges waiting for the fast ones to drain.
func (r *rangeLocks) releaseFast() {
	if r.fast.Add(-1) == 0 && r.excl.Load() != 0 {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	}
}

// waiters reports how many ranges are blocked.
func (r *rangeLocks) waiters() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waiting
}
