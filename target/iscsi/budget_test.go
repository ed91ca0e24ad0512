package iscsi

import (
	"context"
	"testing"
	"time"
)

func TestBudgetWaitsAndReleases(t *testing.T) {
	const k = 1 << 20
	b := newMemBudget(100 * k)
	if !b.tryAcquire(60*k) || b.tryAcquire(60*k) {
		t.Fatal("tryAcquire: 60 then 60 of 100 must give yes then no")
	}
	if !b.tryAcquire(smallCommand) {
		t.Fatal("a small command must never wait")
	}
	b.release(smallCommand)
	got := make(chan bool)
	go func() { got <- b.acquire(context.Background(), 60*k) }()
	select {
	case <-got:
		t.Fatal("acquire did not wait for room")
	case <-time.After(20 * time.Millisecond):
	}
	b.release(60 * k)
	if !<-got || b.inUse() != 60*k {
		t.Fatalf("after release: in use %d, want 60", b.inUse())
	}
	// Larger than the whole budget: granted when alone.
	b.release(60 * k)
	if !b.tryAcquire(500 * k) {
		t.Fatal("a command larger than the budget must run when alone")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.acquire(ctx, 2*smallCommand) {
		t.Fatal("acquire with a cancelled context succeeded while full")
	}
}

// Under pressure a session holds back CmdSN window slots while other
// commands of it are in flight, and gets them back when memory is freed;
// the last command in flight always reopens its slot (and one held back).
func TestWindowHeldBackUnderPressure(t *testing.T) {
	srv := &Server{mem: newMemBudget(100)}
	ss := &session{srv: srv, tasks: map[uint32]*task{}}
	ss.maxCmdSN.Store(10)
	a := &task{ss: ss, itt: 1}
	b := &task{ss: ss, itt: 2}
	ss.tasks[1], ss.tasks[2] = a, b

	srv.mem.force(80) // pressed: 80 >= 75
	a.releaseSlot()
	if got := ss.maxCmdSN.Load(); got != 10 || ss.withheld.Load() != 1 {
		t.Fatalf("pressed with another command in flight: MaxCmdSN %d withheld %d, want 10 and 1", got, ss.withheld.Load())
	}
	a.releaseSlot() // once per task
	if ss.withheld.Load() != 1 {
		t.Fatal("a task released its slot twice")
	}
	// b is the last command whose response is to come: it reopens its
	// slot and the one held back.
	b.releaseSlot()
	if got := ss.maxCmdSN.Load(); got != 12 || ss.withheld.Load() != 0 {
		t.Fatalf("last command: MaxCmdSN %d withheld %d, want 12 and 0", got, ss.withheld.Load())
	}

	// Held-back slots come back when the pressure is gone.
	c := &task{ss: ss, itt: 3}
	d := &task{ss: ss, itt: 4}
	ss.tasks[3], ss.tasks[4] = c, d
	c.releaseSlot()
	if ss.withheld.Load() != 1 {
		t.Fatal("slot not held back under pressure")
	}
	srv.mem.release(80)
	if got := ss.maxCmdSN.Load(); got != 13 || ss.withheld.Load() != 0 {
		t.Fatalf("after release: MaxCmdSN %d withheld %d, want 13 and 0", got, ss.withheld.Load())
	}
	// No pressure: slots open at once.
	d.releaseSlot()
	if got := ss.maxCmdSN.Load(); got != 14 {
		t.Fatalf("no pressure: MaxCmdSN %d, want 14", got)
	}
}

// A session starts with a small window that grows by one slot per ended
// command while memory is not pressed; slots held back come back one per
// ended command or per release, never a whole window at once.
func TestWindowSlowStartAndGradualReopen(t *testing.T) {
	srv := &Server{mem: newMemBudget(100)}
	ss := &session{srv: srv, tasks: map[uint32]*task{}, queued: 32}
	// As session.start leaves it for CmdSN 0.
	ss.maxCmdSN.Store(initialWindow - 1)
	ss.withheld.Store(32 - initialWindow)
	itt := uint32(0)
	end := func() {
		itt++
		k := &task{ss: ss, itt: itt}
		ss.tasks[itt] = k
		k.releaseSlot()
		delete(ss.tasks, itt)
	}
	for i := 1; i <= 32-initialWindow; i++ {
		end()
		if got := ss.maxCmdSN.Load(); got != uint32(initialWindow-1+2*i) {
			t.Fatalf("after %d commands MaxCmdSN %d, want %d", i, got, initialWindow-1+2*i)
		}
	}
	if ss.withheld.Load() != 0 {
		t.Fatalf("window not full after %d commands", 32-initialWindow)
	}
	end() // full window: one slot per command from now on
	if got, want := ss.maxCmdSN.Load(), uint32(initialWindow-1+2*(32-initialWindow)+1); got != want {
		t.Fatalf("full window: MaxCmdSN %d, want %d", got, want)
	}

	// Under pressure with 10 commands in flight, 5 of them end: 5 slots
	// held back. A release gives back one, not five.
	base := ss.maxCmdSN.Load()
	var busy []*task
	for i := 0; i < 10; i++ {
		itt++
		k := &task{ss: ss, itt: itt}
		ss.tasks[itt] = k
		busy = append(busy, k)
	}
	srv.mem.force(80)
	for _, k := range busy[:5] {
		k.releaseSlot()
	}
	if ss.maxCmdSN.Load() != base || ss.withheld.Load() != 5 {
		t.Fatalf("pressed: MaxCmdSN +%d withheld %d, want +0 and 5", ss.maxCmdSN.Load()-base, ss.withheld.Load())
	}
	srv.mem.release(80)
	if ss.maxCmdSN.Load() != base+1 || ss.withheld.Load() != 4 {
		t.Fatalf("release: MaxCmdSN +%d withheld %d, want +1 and 4", ss.maxCmdSN.Load()-base, ss.withheld.Load())
	}
	busy[5].releaseSlot()
	if ss.maxCmdSN.Load() != base+3 || ss.withheld.Load() != 3 {
		t.Fatalf("no pressure: MaxCmdSN +%d withheld %d, want +3 and 3", ss.maxCmdSN.Load()-base, ss.withheld.Load())
	}
}

// A reader whose session has writes waiting for Data-Out never waits for
// budget (only it can free theirs: a deadlock); one without waits.
func TestBudgetReaderNeverDeadlocks(t *testing.T) {
	const m = 1 << 20
	b := newMemBudget(16 * m)
	b.force(16 * m) // all of it held by one session's writes awaiting Data-Out
	done := make(chan struct{})
	go func() { b.acquireReader(m, func() bool { return true }); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("reader waited for memory only it can free")
	}

	// Memory held by executing commands: the reader waits for it.
	b2 := newMemBudget(16 * m)
	b2.force(16 * m)
	got := make(chan struct{})
	go func() { b2.acquireReader(m, func() bool { return false }); close(got) }()
	select {
	case <-got:
		t.Fatal("reader overdrew although the memory will be freed")
	case <-time.After(30 * time.Millisecond):
	}
	b2.release(16 * m)
	<-got
	if b2.inUse() != m {
		t.Fatalf("in use %d, want %d", b2.inUse(), m)
	}
}
