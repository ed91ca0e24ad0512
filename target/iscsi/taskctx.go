package iscsi

import (
	"context"
	"sync"
	"time"
)

// taskSignals carries a task's two events: cancelled (aborted, or ended)
// and ended. It is the task's context (the SCSI layer polls Err, the data
// budget may wait on Done), and its channels are made only when somebody
// waits: most tasks start and end without a waiter, so none is allocated
// (a context.WithCancel and a done channel per command were ~10% of the
// allocations at 4 KiB QD32).
type taskSignals struct {
	mu       sync.Mutex
	canceled bool
	ended    bool
	cancelCh chan struct{}
	endCh    chan struct{}
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// cancel marks the task cancelled (Err reports context.Canceled).
func (s *taskSignals) cancel() {
	s.mu.Lock()
	if !s.canceled {
		s.canceled = true
		if s.cancelCh != nil {
			close(s.cancelCh)
		}
	}
	s.mu.Unlock()
}

// end marks the task ended (and cancelled).
func (s *taskSignals) end() {
	s.cancel()
	s.mu.Lock()
	if !s.ended {
		s.ended = true
		if s.endCh != nil {
			close(s.endCh)
		}
	}
	s.mu.Unlock()
}

// endedCh is closed once the task has ended.
func (s *taskSignals) endedCh() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return closedCh
	}
	if s.endCh == nil {
		s.endCh = make(chan struct{})
	}
	return s.endCh
}

// Deadline implements context.Context: a task has none.
func (s *taskSignals) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context.
func (s *taskSignals) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canceled {
		return closedCh
	}
	if s.cancelCh == nil {
		s.cancelCh = make(chan struct{})
	}
	return s.cancelCh
}

// Err implements context.Context.
func (s *taskSignals) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.canceled {
		return context.Canceled
	}
	return nil
}

// Value implements context.Context: a task carries no values.
func (s *taskSignals) Value(any) any { return nil }
