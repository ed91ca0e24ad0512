package iscsi

import (
	"testing"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
)

const mib = 1 << 20

// budgetSession is a session of its own on b (no connection).
func budgetSession(b *memBudget) *session {
	return &session{srv: &Server{mem: b}, tasks: map[uint32]*task{}}
}

// waitAcquire starts a worker's acquire of n bytes for a new task of ss;
// the channel reports its outcome.
func waitAcquire(ss *session, n int64) (*task, <-chan bool) {
	t := &task{ss: ss}
	got := make(chan bool, 1)
	go func() { got <- ss.srv.mem.acquire(t, n) }()
	return t, got
}

// queued waits until the budget has n waiters.
func queued(t *testing.T, b *memBudget, n int) {
	t.Helper()
	for i := 0; ; i++ {
		b.mu.Lock()
		k := 0
		for w := b.waiters.head; w != nil; w = w.next {
			k++
		}
		b.mu.Unlock()
		if k == n {
			return
		}
		if i == 500 {
			t.Fatalf("%d waiters, want %d", k, n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func mustWait(t *testing.T, got <-chan bool, what string) {
	t.Helper()
	select {
	case <-got:
		t.Fatalf("%s did not wait", what)
	case <-time.After(20 * time.Millisecond):
	}
}

func mustGet(t *testing.T, got <-chan bool, what string) {
	t.Helper()
	select {
	case ok := <-got:
		if !ok {
			t.Fatalf("%s: acquire failed", what)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s still waits", what)
	}
}

// checkIdle checks the books once everything is given back.
func checkIdle(t *testing.T, b *memBudget, ss ...*session) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used != 0 || b.active != 0 || b.waitingSessions != 0 || b.waiters.head != nil || b.deferredHeld != 0 {
		t.Fatalf("idle budget: used %d active %d waiting sessions %d deferred %d", b.used, b.active, b.waitingSessions, b.deferredHeld)
	}
	for i, s := range ss {
		if s.budget.held != 0 || s.budget.waiting != 0 {
			t.Fatalf("session %d: held %d waiting %d", i, s.budget.held, s.budget.waiting)
		}
	}
}

func TestBudgetWaitsAndReleases(t *testing.T) {
	b := newMemBudget(100 * mib)
	ss := budgetSession(b)
	if !b.tryAcquire(ss, 60*mib) || b.tryAcquire(ss, 60*mib) {
		t.Fatal("tryAcquire: 60 then 60 of 100 must give yes then no")
	}
	if !b.tryAcquire(ss, smallCommand) {
		t.Fatal("a small command must never wait")
	}
	b.release(ss, smallCommand)
	_, got := waitAcquire(ss, 60*mib)
	mustWait(t, got, "acquire beyond the limit")
	b.release(ss, 60*mib)
	mustGet(t, got, "after release")
	if b.inUse() != 60*mib {
		t.Fatalf("after release: in use %d, want 60", b.inUse())
	}
	// Larger than the whole budget: granted when alone.
	b.release(ss, 60*mib)
	if !b.tryAcquire(ss, 500*mib) {
		t.Fatal("a command larger than the budget must run when alone")
	}
	// An aborted command stops waiting and leaves the queue.
	k, got := waitAcquire(ss, 2*smallCommand)
	queued(t, b, 1)
	k.abort()
	select {
	case ok := <-got:
		if ok {
			t.Fatal("acquire of an aborted task succeeded while full")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("abort did not wake the waiting acquire")
	}
	b.release(ss, 500*mib)
	checkIdle(t, b, ss)
}

// One session alone (or the only one waiting) may use the whole budget:
// the share rule applies only while another session waits.
func TestBudgetOneSessionUsesAll(t *testing.T) {
	b := newMemBudget(16 * mib)
	a, other := budgetSession(b), budgetSession(b)
	b.force(other, smallCommand) // another session holds a little, waits for nothing
	for i := 0; i < 15; i++ {
		if !b.tryAcquire(a, mib) {
			t.Fatalf("command %d of a session alone refused", i+1)
		}
	}
	// Its own waiters do not limit it.
	_, got := waitAcquire(a, mib)
	queued(t, b, 1)
	_, got2 := waitAcquire(a, mib)
	queued(t, b, 2)
	b.release(other, smallCommand)
	mustGet(t, got, "its own waiter")
	b.release(a, mib)
	mustGet(t, got2, "its second waiter")
	if h := b.heldBy(a); h != 16*mib {
		t.Fatalf("the session holds %d, want all 16 MiB", h)
	}
	b.release(a, 16*mib)
	checkIdle(t, b, a, other)
}

// While another session waits, a session at or above its share gets no
// more; one holding nothing always gets one command.
func TestBudgetShareUnderContention(t *testing.T) {
	b := newMemBudget(16 * mib)
	a, c := budgetSession(b), budgetSession(b)
	for i := 0; i < 12; i++ {
		b.force(a, mib)
	}
	// c wants 6 MiB (within its share of 8), 4 are free: it waits.
	_, got := waitAcquire(c, 6*mib)
	queued(t, b, 1)
	if b.tryAcquire(a, mib) {
		t.Fatal("a session holding 12 of 16 MiB took more while another waits")
	}
	b.release(a, mib) // 5 free: not enough yet, and a still may not take
	mustWait(t, got, "6 MiB with 5 free")
	if b.tryAcquire(a, mib) {
		t.Fatal("a session above its share took the memory another waits for")
	}
	b.release(a, mib)
	mustGet(t, got, "the waiting session")

	// Without anybody waiting the share does not matter.
	b.release(c, 6*mib)
	if !b.tryAcquire(a, 6*mib) {
		t.Fatal("no contention: a session must get what fits")
	}
	b.release(a, 16*mib)

	// The floor: with 32 sessions the share is 512 KiB, a session
	// holding nothing still gets a 1 MiB command while another waits.
	var many []*session
	for range 31 {
		s := budgetSession(b)
		b.force(s, 256<<10)
		many = append(many, s)
	}
	_, got = waitAcquire(many[0], 9*mib) // 8.25 MiB free
	queued(t, b, 1)
	if !b.tryAcquire(c, mib) {
		t.Fatal("a session holding nothing refused its first command")
	}
	b.release(c, mib)
	for _, s := range many[1:] {
		b.release(s, 256<<10)
	}
	mustGet(t, got, "the waiter")
	b.release(many[0], 9*mib+256<<10)
	checkIdle(t, b, append(many, a, c)...)
}

// Waiters are served neediest session first: the one holding least, in
// arrival order within a session.
func TestBudgetNeediestFirst(t *testing.T) {
	b := newMemBudget(16 * mib)
	x, y, z := budgetSession(b), budgetSession(b), budgetSession(b)
	b.force(x, 9*mib)
	b.force(y, 4*mib)
	b.force(z, 3*mib) // full; shares 16/3 MiB
	// Arrival order x, y, z, z.
	_, gx := waitAcquire(x, mib)
	queued(t, b, 1)
	_, gy := waitAcquire(y, mib)
	queued(t, b, 2)
	_, gz1 := waitAcquire(z, mib)
	queued(t, b, 3)
	_, gz2 := waitAcquire(z, mib)
	queued(t, b, 4)
	next := func(want <-chan bool, name string) {
		t.Helper()
		b.release(x, mib)
		mustGet(t, want, name)
		time.Sleep(10 * time.Millisecond)
		for _, g := range []<-chan bool{gx, gy, gz1, gz2} {
			if g != want && len(g) > 0 {
				t.Fatalf("another waiter was served besides %s", name)
			}
		}
	}
	next(gz1, "z (3 MiB held) before y (4) and x (8)")  // x 8, y 4, z 4
	next(gy, "y (4 MiB held), before z's second (tie)") // x 7, y 5, z 4
	next(gz2, "z's second (4 MiB held)")                // x 6, y 5, z 5
	next(gx, "x, at last")                              // x 6
	b.release(x, 6*mib)
	b.release(y, 5*mib)
	b.release(z, 5*mib)
	checkIdle(t, b, x, y, z)
}

// A neediest waiter that does not fit yet but would within its share is
// not overtaken; one that wants more than its share does not hold up
// others.
func TestBudgetRoomKeptForNeediest(t *testing.T) {
	b := newMemBudget(16 * mib)
	x, y, z := budgetSession(b), budgetSession(b), budgetSession(b)
	b.force(x, 9*mib)
	b.force(y, 4*mib) // 3 MiB free
	_, gx := waitAcquire(x, 4*mib)
	queued(t, b, 1)
	_, gz := waitAcquire(z, 4*mib) // within its share of 16/3
	queued(t, b, 2)
	if b.tryAcquire(y, mib) {
		t.Fatal("a session holding more overtook the neediest waiter")
	}
	if !b.tryAcquire(y, smallCommand) {
		t.Fatal("a small command waited")
	}
	b.release(y, smallCommand)
	b.release(x, mib)
	mustGet(t, gz, "the neediest waiter")
	mustWait(t, gx, "x, holding 8 MiB")
	b.release(y, 4*mib)
	mustGet(t, gx, "x, alone waiting")
	b.release(x, 12*mib)
	b.release(z, 4*mib)
	checkIdle(t, b, x, y, z)

	// z now wants 12 MiB, far beyond its share: y may go.
	b.force(x, 8*mib)
	b.force(y, 2*mib)
	_, gz = waitAcquire(z, 12*mib)
	queued(t, b, 1)
	if !b.tryAcquire(y, mib) {
		t.Fatal("a waiter beyond its share held up a session within its own")
	}
	b.release(y, 3*mib)
	b.release(x, 8*mib)
	mustGet(t, gz, "the large waiter once alone")
	b.release(z, 12*mib)
	checkIdle(t, b, x, y, z)
}

// A reader whose session has writes waiting for Data-Out never waits for
// budget (only it can free theirs: a deadlock); one without waits, and
// gives up when its connection closes.
func TestBudgetReaderNeverDeadlocks(t *testing.T) {
	b := newMemBudget(16 * mib)
	ss := budgetSession(b)
	b.force(ss, 16*mib) // all of it held by the session's writes awaiting Data-Out
	never := func() bool { return false }
	done := make(chan bool, 1)
	go func() { done <- b.acquireReader(&task{ss: ss}, mib, func() bool { return true }, never) }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("the reader gave up")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader waited for memory only it can free")
	}
	b.release(ss, 17*mib)

	// Memory held by executing commands of another session: the reader
	// waits for it.
	other := budgetSession(b)
	b.force(other, 16*mib)
	go func() { done <- b.acquireReader(&task{ss: ss}, mib, never, never) }()
	queued(t, b, 1)
	mustWait(t, done, "the reader")
	b.release(other, 16*mib)
	mustGet(t, done, "the reader")
	if b.inUse() != mib {
		t.Fatalf("in use %d, want %d", b.inUse(), mib)
	}
	b.release(ss, mib)

	// Its connection closes while it waits: it gives up.
	b.force(other, 16*mib)
	var closing atomicBool
	go func() { done <- b.acquireReader(&task{ss: ss}, mib, never, closing.get) }()
	queued(t, b, 1)
	closing.set()
	b.wakeReader(ss)
	select {
	case ok := <-done:
		if ok {
			t.Fatal("the reader of a closing connection got budget")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader of a closing connection still waits")
	}
	b.release(other, 16*mib)
	checkIdle(t, b, ss, other)
}

type atomicBool struct{ c chan struct{} }

func (a *atomicBool) set() { close(a.ensure()) }
func (a *atomicBool) ensure() chan struct{} {
	if a.c == nil {
		a.c = make(chan struct{})
	}
	return a.c
}
func (a *atomicBool) get() bool {
	select {
	case <-a.c:
		return true
	default:
		return false
	}
}

// deferWrite has session ss (with a pool: budgetSession plus one) defer a
// write of total bytes whose u bytes of immediate data are in, as the
// reader does (handleCommand).
func deferWrite(ss *session, u, total int64) *task {
	if ss.srv.pool == nil {
		ss.srv.pool = pdu.NewBufPool(nil, 0)
	}
	t := &task{ss: ss, write: true, edtl: uint32(total)}
	ss.srv.mem.force(ss, u)
	t.charged = u
	t.outBuf = ss.srv.pool.Get(int(u))
	t.deferred.Store(true)
	ss.srv.mem.deferGrant(t, total-u, u)
	return t
}

func grantedWrites(ws []*task) (n int) {
	for _, w := range ws {
		if !w.deferred.Load() {
			n++
		}
	}
	return n
}

// endWrite gives back what write w holds, queued or granted.
func endWrite(w *task) {
	w.mu.Lock()
	n := w.charged
	w.charged = 0
	w.ended.Store(true)
	w.mu.Unlock()
	w.ss.srv.mem.releaseTask(w.ss, w, n)
}

// The immediate data of deferred writes does not count against their
// session's share, and they go once their whole buffer fits beside the
// memory of the commands not deferred: a session whose window filled with
// deferred writes is not kept above its share with nothing moving while
// their immediate data fills the budget.
func TestBudgetDeferredWritesNotPinned(t *testing.T) {
	b := newMemBudget(4 * mib)
	a, o := budgetSession(b), budgetSession(b)
	b.force(o, 4*mib)
	var ws []*task
	for range 8 { // 2 MiB of immediate data: 6 MiB in use
		ws = append(ws, deferWrite(a, 256<<10, mib))
	}
	if n := grantedWrites(ws); n != 0 {
		t.Fatalf("%d deferred writes granted while the budget is full", n)
	}
	_, got := waitAcquire(o, mib) // contended: shares of 2 MiB
	queued(t, b, 9)
	b.release(o, 2*mib)
	// Room for two whole writes beside o's 2 MiB, and a holds nothing
	// that moves (its 2 MiB of immediate data counted, it would be at its
	// share, and nothing would fit: 4 MiB in use).
	if n := grantedWrites(ws); n != 2 {
		t.Fatalf("%d deferred writes granted, want 2", n)
	}
	mustWait(t, got, "o, at its share")
	if b.heldBy(a) != 2*mib+6*256<<10 {
		t.Fatalf("a holds %d", b.heldBy(a))
	}
	endWrite(ws[0]) // a below its share again: its next write goes
	if n := grantedWrites(ws); n != 3 {
		t.Fatalf("after a write ended: %d deferred writes granted, want 3", n)
	}
	for _, w := range ws[1:] {
		endWrite(w)
	}
	mustGet(t, got, "o, once a's writes ended")
	b.release(o, 3*mib)
	checkIdle(t, b, a, o)
}

// hogging: a session above its share while a command of another session
// has waited since the cutoff.
func TestBudgetHogging(t *testing.T) {
	b := newMemBudget(16 * mib)
	hog, other := budgetSession(b), budgetSession(b)
	b.force(hog, 12*mib)
	now := time.Now().UnixNano()
	if b.hogging(hog, now) {
		t.Fatal("hogging with nobody waiting")
	}
	k, got := waitAcquire(other, 8*mib)
	queued(t, b, 1)
	later := time.Now().UnixNano()
	if b.hogging(hog, now-int64(time.Second)) {
		t.Fatal("hogging before the other session's command waited that long")
	}
	if !b.hogging(hog, later) {
		t.Fatal("12 of 16 MiB while another session waits: not hogging")
	}
	if b.hogging(other, later) {
		t.Fatal("the waiting session (holding nothing) is hogging")
	}
	b.release(hog, 6*mib) // 6 MiB: below its share of 8
	mustGet(t, got, "the waiter")
	_, got2 := waitAcquire(other, 8*mib)
	queued(t, b, 1)
	if b.hogging(hog, time.Now().UnixNano()) {
		t.Fatal("a session below its share is hogging")
	}
	b.release(hog, 6*mib)
	mustGet(t, got2, "the second waiter")
	_ = k
	b.release(other, 16*mib)
	checkIdle(t, b, hog, other)
}

// Under pressure a session holds back CmdSN window slots while other
// commands of it are in flight, and gets them back when memory is freed;
// the last command in flight always reopens its slot (and one held back).
func TestWindowHeldBackUnderPressure(t *testing.T) {
	srv := &Server{mem: newMemBudget(100)}
	ss := &session{srv: srv, tasks: map[uint32]*task{}, queued: 11}
	ss.maxCmdSN.Store(10)
	ss.expCmdSN.Store(11) // the initiator used its whole window
	a := &task{ss: ss, itt: 1}
	b := &task{ss: ss, itt: 2}
	ss.tasks[1], ss.tasks[2] = a, b

	srv.mem.force(ss, 80) // pressed: 80 >= 75
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
	srv.mem.release(ss, 80)
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
// command while its initiator fills at least half of it and memory is not
// pressed; slots held back come back one per ended command or per
// release, never a whole window at once.
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
	// One command at a time (what an initiator sends after login): the
	// window stays as it is.
	for i := 0; i < 20; i++ {
		ss.expCmdSN.Add(1) // it came
		end()
		if free := ss.maxCmdSN.Load() - ss.expCmdSN.Load() + 1; free != initialWindow || ss.withheld.Load() != 32-initialWindow {
			t.Fatalf("one command at a time, after %d: %d slots free, %d withheld; want %d and %d",
				i+1, free, ss.withheld.Load(), initialWindow, 32-initialWindow)
		}
	}
	// The initiator fills the window: each command that ends opens two.
	full := func() { ss.expCmdSN.Store(ss.maxCmdSN.Load() + 1) }
	base := ss.maxCmdSN.Load()
	for i := 1; i <= 32-initialWindow; i++ {
		full()
		end()
		if got := ss.maxCmdSN.Load(); got != base+uint32(2*i) {
			t.Fatalf("after %d commands MaxCmdSN +%d, want +%d", i, got-base, 2*i)
		}
	}
	if ss.withheld.Load() != 0 {
		t.Fatalf("window not full after %d commands", 32-initialWindow)
	}
	full()
	end() // full window: one slot per command from now on
	if got, want := ss.maxCmdSN.Load(), base+uint32(2*(32-initialWindow)+1); got != want {
		t.Fatalf("full window: MaxCmdSN %d, want %d", got, want)
	}

	// Under pressure with 10 commands in flight, 5 of them end: 5 slots
	// held back. A release gives back one, not five.
	base = ss.maxCmdSN.Load()
	var busy []*task
	for i := 0; i < 10; i++ {
		itt++
		k := &task{ss: ss, itt: itt}
		ss.tasks[itt] = k
		busy = append(busy, k)
	}
	srv.mem.force(ss, 80)
	for _, k := range busy[:5] {
		k.releaseSlot()
	}
	if ss.maxCmdSN.Load() != base || ss.withheld.Load() != 5 {
		t.Fatalf("pressed: MaxCmdSN +%d withheld %d, want +0 and 5", ss.maxCmdSN.Load()-base, ss.withheld.Load())
	}
	srv.mem.release(ss, 80)
	if ss.maxCmdSN.Load() != base+1 || ss.withheld.Load() != 4 {
		t.Fatalf("release: MaxCmdSN +%d withheld %d, want +1 and 4", ss.maxCmdSN.Load()-base, ss.withheld.Load())
	}
	full()
	busy[5].releaseSlot()
	if ss.maxCmdSN.Load() != base+3 || ss.withheld.Load() != 3 {
		t.Fatalf("no pressure: MaxCmdSN +%d withheld %d, want +3 and 3", ss.maxCmdSN.Load()-base, ss.withheld.Load())
	}
}

// The per-command path: one lock round-trip to charge, one to release,
// no allocation (with and without another session holding budget).
func BenchmarkBudgetAcquireRelease(b *testing.B) {
	m := newMemBudget(16 * mib)
	ss, other := budgetSession(m), budgetSession(m)
	m.force(other, 4*mib)
	t := &task{ss: ss}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		n := int64(4096)
		if i%2 == 1 {
			n = mib
		}
		if !m.acquire(t, n) {
			b.Fatal("acquire failed")
		}
		m.releaseTask(ss, t, n)
	}
}

// TestPoolKeepsAFullWindow: a session keeping a window of 1 MiB reads in
// flight reuses its buffers. The pool retains as much as may be in flight
// (MaxBufferMemory defaults to MaxDataInFlight), so however many rounds of
// commands go by, Get allocates at most the budget's worth of buffers.
// With a fixed 8 MiB retention (the old default) every round allocated
// and cleared the buffers that did not fit when they came back.
func TestPoolKeepsAFullWindow(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServerWith(t, cfg, newFakeDisk(8<<20), Options{MaxDataInFlight: 12 << 20})
	keys := normalKeys(login.KV{Key: "MaxBurstLength", Value: "1048576"})
	keys[3].Value = "262144" // MaxRecvDataSegmentLength
	r := dialRaw(t, ts.addr, keys)
	const mib, depth, total = 1 << 20, 8, 480
	read := func(i int) {
		r.command(cdbRW10(0x28, uint32(i%8)*(mib/512), mib), mib, true)
	}
	// As an initiator does, a command goes out only inside the window the
	// target opened (MaxCmdSN): under memory pressure the target may
	// hold slots back, and a command beyond MaxCmdSN is ignored.
	sent, done := 0, 0
	maxSN := r.cmdSN + depth - 1
	send := func() {
		for sent < total && sent-done < depth && !pdu.SNLess(maxSN, r.cmdSN) {
			read(sent)
			sent++
		}
	}
	send()
	for done < total {
		p := r.recv()
		switch {
		case p.Opcode() == pdu.OpDataIn && p.Flags()&pdu.FlagStatus == 0:
			continue
		case p.Opcode() == pdu.OpDataIn || p.Opcode() == pdu.OpSCSIResp:
			if p.BHS[3] != 0 {
				t.Fatalf("read %d: status %#x", done, p.BHS[3])
			}
		default:
			t.Fatalf("unexpected %s", pdu.Describe(&p.BHS))
		}
		done++
		if m := p.U32(pdu.OffMaxCmdSN); pdu.SNLess(maxSN, m) {
			maxSN = m
		}
		send()
	}
	// 12 MiB may be in flight: at most twelve 1 MiB buffers exist at
	// once, and all of them fit in the pool when they come back.
	if got := ts.srv.pool.Allocated(); got > 12 {
		t.Errorf("%d buffers allocated for %d reads at depth %d; want at most 12 (the budget's worth)", got, total, depth)
	}
}
