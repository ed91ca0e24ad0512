package backing

import (
	"sync"
	"syscall"
)

// Op selects the operations a Faulty rule applies to.
type Op uint8

const (
	OpRead Op = 1 << iota
	OpWrite
	OpSync // Sync and SyncRange
	OpUnmap
	OpAll = OpRead | OpWrite | OpSync | OpUnmap
)

// FaultCounts counts the calls a Faulty store received (failed ones too).
type FaultCounts struct {
	Reads, Writes, Syncs, SyncRanges, Unmaps int64
}

type faultRule struct {
	ops      Op
	off, end int64
	err      error
}

// Faulty wraps a store and injects errors, for tests of the layers above:
// on byte ranges (FailRange, FailEIO, FailENOSPC) or on every write after
// the next N (FailWritesAfter). Injected errors are classified like real
// ones (syscall.EIO wraps ErrIO, syscall.ENOSPC wraps ErrNoSpace, ...).
type Faulty struct {
	inner Store

	mu         sync.Mutex
	rules      []faultRule
	writesLeft int64 // < 0: no write-count fault armed
	afterErr   error
	counts     FaultCounts
}

// NewFaulty wraps inner; it injects nothing until told to.
func NewFaulty(inner Store) *Faulty { return &Faulty{inner: inner, writesLeft: -1} }

// Inner returns the wrapped store.
func (f *Faulty) Inner() Store { return f.inner }

// FailRange makes the operations in ops that overlap [off, off+n) fail
// with err (a syscall.Errno or one of the package sentinels).
func (f *Faulty) FailRange(ops Op, off, n int64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, faultRule{ops: ops, off: off, end: off + n, err: err})
}

// FailEIO makes reads and writes overlapping [off, off+n) fail with EIO.
func (f *Faulty) FailEIO(off, n int64) { f.FailRange(OpRead|OpWrite, off, n, syscall.EIO) }

// FailENOSPC makes writes overlapping [off, off+n) fail with ENOSPC.
func (f *Faulty) FailENOSPC(off, n int64) { f.FailRange(OpWrite, off, n, syscall.ENOSPC) }

// FailWritesAfter lets the next n writes through, then fails every later
// write with err (ENOSPC when err is nil).
func (f *Faulty) FailWritesAfter(n int, err error) {
	if err == nil {
		err = syscall.ENOSPC
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writesLeft, f.afterErr = int64(max(n, 0)), err
}

// Clear removes every injected fault.
func (f *Faulty) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules, f.writesLeft, f.afterErr = nil, -1, nil
}

// Counts returns how many calls of each kind the store received.
func (f *Faulty) Counts() FaultCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts
}

// check counts the call and returns the injected error for it, if any.
func (f *Faulty) check(op Op, name string, off, n int64, count *int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	*count++
	for _, r := range f.rules {
		if r.ops&op != 0 && off < r.end && r.off < off+n+boolInt(n == 0) {
			return &Error{Op: name, Off: off, Len: n, Kind: classify(r.err, false), Err: r.err}
		}
	}
	if op == OpWrite && f.writesLeft >= 0 {
		if f.writesLeft == 0 {
			return &Error{Op: name, Off: off, Len: n, Kind: classify(f.afterErr, false), Err: f.afterErr}
		}
		f.writesLeft--
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (f *Faulty) Size() int64 { return f.inner.Size() }

func (f *Faulty) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(OpRead, "read", off, int64(len(p)), &f.counts.Reads); err != nil {
		return 0, err
	}
	return f.inner.ReadAt(p, off)
}

func (f *Faulty) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check(OpWrite, "write", off, int64(len(p)), &f.counts.Writes); err != nil {
		return 0, err
	}
	return f.inner.WriteAt(p, off)
}

func (f *Faulty) Sync() error {
	if err := f.check(OpSync, "sync", 0, f.inner.Size(), &f.counts.Syncs); err != nil {
		return err
	}
	return f.inner.Sync()
}

func (f *Faulty) SyncRange(off, n int64) error {
	if err := f.check(OpSync, "sync", off, n, &f.counts.SyncRanges); err != nil {
		return err
	}
	return f.inner.SyncRange(off, n)
}

func (f *Faulty) Unmap(off, n int64) error {
	if err := f.check(OpUnmap, "unmap", off, n, &f.counts.Unmaps); err != nil {
		return err
	}
	return f.inner.Unmap(off, n)
}

func (f *Faulty) Close() error { return f.inner.Close() }

// LogicalBlockSize forwards to the inner store (512 when it has none).
func (f *Faulty) LogicalBlockSize() int { return maxBlockSize([]Store{f.inner}) }

// WriteCacheEnabled forwards to the inner store.
func (f *Faulty) WriteCacheEnabled() bool { return anyWriteCache([]Store{f.inner}) }

// CanUnmap forwards to the inner store.
// WriteProtected is the inner store's.
func (f *Faulty) WriteProtected() bool { return WriteProtected(f.inner) }

func (f *Faulty) CanUnmap() bool { return CanUnmap(f.inner) }
