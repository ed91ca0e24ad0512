package backing

import "sync"

// flusher coalesces concurrent data syncs of one file (group commit): a
// caller is satisfied by any sync that starts after it asked, so callers
// that pile up while one fdatasync runs share the next one.
//
// A failed sync is sticky. Linux reports a writeback error once per open
// file: after one fdatasync returned EIO, the next one succeeds although
// the data written before it never reached the disk. So the first error
// is kept and returned to every later sync of the file, without running
// fdatasync again, until the store is reopened (a reload that reopens the
// LUN, or a restart). Initiators see every later FUA write and
// SYNCHRONIZE CACHE fail instead of a false success.
type flusher struct {
	mu        sync.Mutex
	cond      *sync.Cond
	running   bool
	requested uint64 // last generation asked for
	completed uint64 // every generation <= completed is synced (or failed)
	failures  []flushFailure
	sticky    error // the first failure: every later sync returns it
}

// flushFailure records a failed sync covering generations (lo, hi].
type flushFailure struct {
	lo, hi uint64
	err    error
}

// maxFlushFailures bounds the failure history.
const maxFlushFailures = 32

// sync runs do (fdatasync) so that it starts after this call began,
// sharing the run with concurrent callers.
func (f *flusher) sync(do func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cond == nil {
		f.cond = sync.NewCond(&f.mu)
	}
	if f.sticky != nil {
		return f.sticky
	}
	f.requested++
	my := f.requested
	for f.completed < my {
		if f.running {
			f.cond.Wait()
			continue
		}
		if f.sticky != nil {
			// A run failed while this caller waited, and did not cover
			// it. A new fdatasync would succeed although the data this
			// caller wants durable may be what failed (the error is
			// reported once): the failure stands for it too.
			return f.sticky
		}
		f.running = true
		lo, hi := f.completed, f.requested
		f.mu.Unlock()
		err := do()
		f.mu.Lock()
		f.running = false
		f.completed = hi
		if err != nil {
			if f.sticky == nil {
				f.sticky = err
			}
			f.failures = append(f.failures, flushFailure{lo: lo, hi: hi, err: err})
			if len(f.failures) > maxFlushFailures {
				f.failures = f.failures[len(f.failures)-maxFlushFailures:]
			}
		}
		f.cond.Broadcast()
	}
	for i := len(f.failures) - 1; i >= 0; i-- {
		if fl := f.failures[i]; my > fl.lo && my <= fl.hi {
			return fl.err
		}
	}
	return nil
}

// err returns the sticky sync error, if any.
func (f *flusher) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sticky
}
