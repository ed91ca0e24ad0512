package backing

import (
	"errors"
	"io"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

func TestConcatSplitsAcrossMembers(t *testing.T) {
	sizes := []int64{1000, 1, 4096, 77, 65536}
	var members []Store
	var total int64
	for _, sz := range sizes {
		members = append(members, NewMemory(sz))
		total += sz
	}
	c := NewConcat(members...)
	if c.Size() != total {
		t.Fatalf("size %d, want %d", c.Size(), total)
	}
	data := pattern(1, int(total))
	mustWrite(t, c, data, 0)
	// Each member holds exactly its slice of the data, in order.
	var start int64
	for i, m := range members {
		equalBytes(t, "member", mustRead(t, m, int(sizes[i]), 0), data[start:start+sizes[i]])
		start += sizes[i]
	}
	// Property test: random I/O straddling boundaries matches a flat buffer.
	for seed := int64(1); seed <= 20; seed++ {
		checkOps(t, c, data, seed, 200, 6000, 1, true)
	}
}

func TestConcatUnmapPartiallyUnsupported(t *testing.T) {
	a, b := NewMemory(4096), NewNull(4096, false)
	f := NewFaulty(b)
	f.FailRange(OpUnmap, 0, 4096, ErrNotSupported)
	c := NewConcat(a, f)
	mustWrite(t, c, pattern(1, 8192), 0)
	err := c.Unmap(0, 8192)
	expectErr(t, "unmap", err, ErrNotSupported)
	// The member that could unmap did.
	equalBytes(t, "a unmapped", mustRead(t, a, 4096, 0), make([]byte, 4096))
}

func TestMirrorWritesAllReadsFirst(t *testing.T) {
	const size = 256 << 10
	a, b, c := NewFaulty(NewMemory(size)), NewFaulty(NewMemory(size)), NewFaulty(NewMemory(size))
	m := NewMirror(nil, MirrorMember{"a", a}, MirrorMember{"b", b}, MirrorMember{"c", c})
	data := pattern(9, size)
	mustWrite(t, m, data, 0)
	for _, f := range []*Faulty{a, b, c} {
		equalBytes(t, "leg", mustRead(t, f.Inner(), size, 0), data)
	}
	before := [3]int64{a.Counts().Reads, b.Counts().Reads, c.Counts().Reads}
	for i := 0; i < 10; i++ {
		mustRead(t, m, 4096, int64(i)*4096)
	}
	if a.Counts().Reads-before[0] != 10 || b.Counts().Reads != before[1] || c.Counts().Reads != before[2] {
		t.Fatalf("reads not served by the first member: %+v %+v %+v", a.Counts(), b.Counts(), c.Counts())
	}
	checkOps(t, m, data, 3, 300, 20000, 1, true)
}

func TestMirrorMemberFailure(t *testing.T) {
	const size = 64 << 10
	logger, hook := test.NewNullLogger()
	a, b := NewFaulty(NewMemory(size)), NewFaulty(NewMemory(size))
	m := NewMirror(logrus.NewEntry(logger), MirrorMember{"ext0", a}, MirrorMember{"ext1", b})
	data := pattern(4, size)
	mustWrite(t, m, data, 0)

	// The first member starts failing reads: the read fails over.
	a.FailEIO(8192, 4096)
	equalBytes(t, "failover read", mustRead(t, m, 8192, 4096), data[4096:12288])
	h := m.Health()
	if !h[0].Failed || h[1].Failed || h[0].Name != "ext0" || !errors.Is(h[0].Err, ErrIO) {
		t.Fatalf("health after failure: %+v", h)
	}
	if !m.Degraded() {
		t.Fatal("mirror not degraded")
	}
	// Further I/O goes to the healthy member only and succeeds.
	newData := pattern(5, 4096)
	mustWrite(t, m, newData, 8192)
	copy(data[8192:], newData)
	equalBytes(t, "degraded read", mustRead(t, m, size, 0), data)
	if got := a.Counts().Writes; got != 1 {
		t.Fatalf("failed member still receives writes: %d", got)
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	// Logged exactly once.
	n := 0
	for _, e := range hook.AllEntries() {
		if e.Level == logrus.ErrorLevel {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d error log entries, want 1", n)
	}
	// The last healthy member is never failed: its errors are returned
	// and what it can still do it does.
	b.FailENOSPC(0, size)
	_, err := m.WriteAt(newData, 0)
	expectErr(t, "disk full on the last member", err, ErrNoSpace)
	b.Clear()
	b.FailEIO(0, 4096)
	_, err = m.WriteAt(newData, 0)
	expectErr(t, "EIO on the last member", err, ErrIO)
	equalBytes(t, "read beside the fault", mustRead(t, m, 4096, 4096), data[4096:8192])
	health := MirrorHealth(NewConcat(NewMemory(10), m))
	if len(health) != 1 || !health[0][0].Failed || health[0][1].Failed {
		t.Fatalf("MirrorHealth: %+v", health)
	}
}

// Disk full is the request's failure, not the member's: returned to the
// caller (DATA PROTECT upstream), no member failed, even when every leg
// is full; the mirror keeps working once there is space.
func TestMirrorDiskFullFailsNoMember(t *testing.T) {
	a, b := NewFaulty(NewMemory(1<<16)), NewFaulty(NewMemory(1<<16))
	a.FailENOSPC(4096, 512)
	b.FailENOSPC(4096, 512)
	m := NewMirror(nil, MirrorMember{Name: "a", Store: a}, MirrorMember{Name: "b", Store: b})
	_, err := m.WriteAt(make([]byte, 512), 4096)
	expectErr(t, "write on full legs", err, ErrNoSpace)
	b.Clear()
	_, err = m.WriteAt(make([]byte, 512), 4096)
	expectErr(t, "write with one full leg", err, ErrNoSpace)
	if m.Degraded() {
		t.Fatalf("disk full failed a member: %+v", m.Health())
	}
	mustRead(t, m, 512, 0)
	a.Clear()
	data := pattern(9, 512)
	mustWrite(t, m, data, 4096)
	equalBytes(t, "after space came back", mustRead(t, m, 512, 4096), data)
	// Unmap and sync errors that are not I/O errors fail nobody either.
	a.FailRange(OpSync|OpUnmap, 0, 1<<16, syscall.ENOSPC)
	expectErr(t, "sync on a full leg", m.Sync(), ErrNoSpace)
	expectErr(t, "unmap on a full leg", m.Unmap(0, 4096), ErrNoSpace)
	if m.Degraded() {
		t.Fatalf("sync/unmap disk full failed a member: %+v", m.Health())
	}
}

// EIO on every leg at once: the error is returned and the mirror keeps
// its last member (two concurrent failures cannot take both out).
func TestMirrorNeverFailsLastMember(t *testing.T) {
	a, b := NewFaulty(NewMemory(1<<16)), NewFaulty(NewMemory(1<<16))
	m := NewMirror(nil, MirrorMember{Name: "a", Store: a}, MirrorMember{Name: "b", Store: b})
	a.FailEIO(0, 512)
	b.FailEIO(0, 512)
	_, err := m.WriteAt(make([]byte, 512), 0)
	expectErr(t, "EIO on both legs", err, ErrIO)
	h := m.Health()
	if h[0].Failed == h[1].Failed {
		t.Fatalf("want exactly one member failed, the other kept: %+v", h)
	}
	_, err = m.ReadAt(make([]byte, 512), 0)
	expectErr(t, "read of the bad range", err, ErrIO)
	mustRead(t, m, 512, 4096)
	if h := m.Health(); h[0].Failed && h[1].Failed {
		t.Fatalf("last member failed: %+v", h)
	}
}

func TestMirrorWriteFailureKeepsOtherLeg(t *testing.T) {
	a, b := NewFaulty(NewMemory(8192)), NewFaulty(NewMemory(8192))
	m := NewMirror(nil, MirrorMember{"a", a}, MirrorMember{"b", b})
	b.FailWritesAfter(1, syscall.EIO)
	mustWrite(t, m, pattern(1, 4096), 0)
	data := pattern(2, 4096)
	mustWrite(t, m, data, 4096) // b fails here, a takes it
	if h := m.Health(); h[0].Failed || !h[1].Failed {
		t.Fatalf("health: %+v", h)
	}
	equalBytes(t, "read", mustRead(t, m, 4096, 4096), data)
}

func TestMirrorUnmapFallsBackToZeros(t *testing.T) {
	a := NewMemory(8192)
	b := NewFaulty(NewMemory(8192))
	b.FailRange(OpUnmap, 0, 8192, ErrNotSupported)
	m := NewMirror(nil, MirrorMember{"a", a}, MirrorMember{"b", b})
	mustWrite(t, m, pattern(1, 8192), 0)
	if err := m.Unmap(100, 5000); err != nil {
		t.Fatal(err)
	}
	want := pattern(1, 8192)
	clear(want[100:5100])
	equalBytes(t, "a", mustRead(t, a, 8192, 0), want)
	equalBytes(t, "b", mustRead(t, b.Inner(), 8192, 0), want)

	// When the first member cannot unmap, nothing is changed.
	c := NewFaulty(NewMemory(8192))
	c.FailRange(OpUnmap, 0, 8192, ErrNotSupported)
	d := NewMemory(8192)
	m2 := NewMirror(nil, MirrorMember{"c", c}, MirrorMember{"d", d})
	mustWrite(t, m2, pattern(2, 8192), 0)
	expectErr(t, "unmap", m2.Unmap(0, 8192), ErrNotSupported)
	equalBytes(t, "d untouched", mustRead(t, d, 8192, 0), pattern(2, 8192))
	if m2.Degraded() {
		t.Fatal("ErrNotSupported failed a member")
	}
}

func TestMirrorReadOnlyDoesNotFailMembers(t *testing.T) {
	p1, p2 := newTempFile(t, 8192), newTempFile(t, 8192)
	m := NewMirror(nil,
		MirrorMember{"a", mustOpenFile(t, fileOptions{Path: p1, ReadOnly: true})},
		MirrorMember{"b", mustOpenFile(t, fileOptions{Path: p2, ReadOnly: true})})
	_, err := m.WriteAt(make([]byte, 512), 0)
	expectErr(t, "ro mirror write", err, ErrReadOnly)
	if m.Degraded() {
		t.Fatal("read-only refusal failed a member")
	}
}

func TestFaulty(t *testing.T) {
	f := NewFaulty(NewMemory(1 << 20))
	f.FailEIO(4096, 4096)
	buf := make([]byte, 512)
	_, err := f.ReadAt(buf, 8191)
	expectErr(t, "EIO read", err, ErrIO)
	expectErr(t, "EIO read cause", err, syscall.EIO)
	_, err = f.ReadAt(buf, 8192)
	if err != nil {
		t.Fatalf("read outside the faulty range: %v", err)
	}
	_, err = f.WriteAt(buf, 4000)
	expectErr(t, "EIO write", err, ErrIO)
	f.Clear()
	f.FailENOSPC(0, 1<<20)
	_, err = f.WriteAt(buf, 0)
	expectErr(t, "ENOSPC", err, ErrNoSpace)
	expectErr(t, "ENOSPC cause", err, syscall.ENOSPC)
	if _, err = f.ReadAt(buf, 0); err != nil {
		t.Fatalf("ENOSPC rule affects reads: %v", err)
	}
	f.Clear()
	f.FailWritesAfter(3, nil)
	for i := 0; i < 3; i++ {
		mustWrite(t, f, buf, int64(i)*512)
	}
	for i := 0; i < 2; i++ {
		_, err = f.WriteAt(buf, 0)
		expectErr(t, "after N", err, ErrNoSpace)
	}
	f.Clear()
	f.FailRange(OpSync, 0, 1, syscall.EIO)
	expectErr(t, "sync", f.Sync(), ErrIO)
	if err := f.SyncRange(4096, 10); err != nil {
		t.Fatalf("SyncRange outside the range: %v", err)
	}
	c := f.Counts()
	if c.Writes != 7 || c.Reads != 3 || c.Syncs != 1 || c.SyncRanges != 1 {
		t.Fatalf("counts %+v", c)
	}
}

func TestFlusherCoalescesAndReportsErrors(t *testing.T) {
	var f flusher
	gate := make(chan struct{})
	do, callCount := gatedSync(gate, nil) // the first sync is held so others pile up
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.sync(do) }()
	waitFlusher(t, &f, "first run to be in progress", func(f *flusher) bool { return f.running })
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f.sync(do) }()
	}
	waitFlusher(t, &f, "21 callers to ask", func(f *flusher) bool { return f.requested == 21 })
	close(gate)
	wg.Wait()
	if calls := callCount(); calls != 2 {
		t.Fatalf("%d fdatasync calls for 21 callers, want 2 (one running, one shared)", calls)
	}
	boom := errors.New("boom")
	if err := f.sync(func() error { return boom }); err != boom {
		t.Fatalf("error not reported: %v", err)
	}
	// Sticky: the kernel reports a writeback error once, so a later sync
	// that "succeeds" proves nothing; every later caller gets the error
	// and fdatasync is not run again.
	ran := false
	if err := f.sync(func() error { ran = true; return nil }); err != boom || ran {
		t.Fatalf("sync after a failure: %v (fdatasync ran: %v), want the sticky error", err, ran)
	}
}

// gatedSync is an fdatasync stand-in: the first call waits for gate and
// returns firstErr, later calls return nil at once; calls counts them.
func gatedSync(gate <-chan struct{}, firstErr error) (do func() error, calls func() int) {
	var mu sync.Mutex
	n := 0
	do = func() error {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			<-gate
			return firstErr
		}
		return nil
	}
	calls = func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
	return do, calls
}

// waitFlusher waits (bounded) until cond holds for f, under its lock.
func waitFlusher(t *testing.T, f *flusher, what string, cond func(*flusher) bool) {
	t.Helper()
	for i := 0; ; i++ {
		f.mu.Lock()
		ok := cond(f)
		f.mu.Unlock()
		if ok {
			return
		}
		if i > 1e7 {
			t.Fatalf("gave up waiting for the %s", what)
		}
		runtime.Gosched()
	}
}

// A caller that asked while a failing fdatasync ran, and so was not covered
// by it, must not start a second one: Linux reported the error once, the
// second fdatasync would return 0 for the same lost pages (a FUA write
// acknowledged whose data never reached the disk).
func TestFlusherWaiterOfAFailedRunGetsTheError(t *testing.T) {
	var f flusher
	boom := errors.New("boom")
	gate := make(chan struct{})
	// The first fdatasync fails once gate closes; later ones succeed, as
	// the kernel's do after reporting the error once.
	do, callCount := gatedSync(gate, boom)
	errA := make(chan error, 1)
	go func() { errA <- f.sync(do) }()
	waitFlusher(t, &f, "first sync to start", func(f *flusher) bool { return f.running })
	errB := make(chan error, 1)
	go func() { errB <- f.sync(do) }()
	waitFlusher(t, &f, "second caller to ask", func(f *flusher) bool { return f.requested == 2 })
	close(gate)
	if err := <-errA; err != boom {
		t.Fatalf("failing run: %v, want boom", err)
	}
	if err := <-errB; err != boom {
		t.Fatalf("caller waiting on the failing run: %v, want boom", err)
	}
	if calls := callCount(); calls != 1 {
		t.Fatalf("fdatasync ran %d times; after the failure it must not run again", calls)
	}
}

// After one fdatasync of a FileStore fails (EIO, reported once by Linux),
// every later Sync and SyncRange, on wb and wt stores, reports it.
func TestFileStoreSyncErrorIsSticky(t *testing.T) {
	for _, wt := range []bool{false, true} {
		s := mustOpenFile(t, fileOptions{Path: newTempFile(t, 1<<20), WriteThrough: wt})
		calls := 0
		s.datasync = func() error {
			calls++
			if calls == 1 {
				return syscall.EIO
			}
			return nil // what Linux does after reporting the error once
		}
		if wt {
			// Write-through syncs every write (the combiner's batch):
			// the write fails, and so does every later one.
			_, err := s.WriteAt(pattern(1, 4096), 0)
			expectErr(t, "write-through write", err, ErrIO)
			_, err = s.WriteAt(pattern(2, 4096), 8192)
			expectErr(t, "later write-through write", err, ErrIO)
			expectErr(t, "unmap", s.Unmap(0, 4096), ErrIO)
		} else {
			mustWrite(t, s, pattern(1, 4096), 0)
			expectErr(t, "first sync", s.Sync(), ErrIO)
			mustWrite(t, s, pattern(2, 4096), 8192)
		}
		expectErr(t, "later Sync", s.Sync(), ErrIO)
		expectErr(t, "later SyncRange", s.SyncRange(8192, 4096), ErrIO)
		if calls != 1 {
			t.Fatalf("wt=%v: fdatasync ran %d times; after the failure it must not run", wt, calls)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	err := opError("write", "/d", 4096, 512, syscall.ENOSPC, false)
	want := "backing: write /d [4096,+512): no space left on backing store: no space left on device"
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err.Error(), want)
	}
	if errors.Is(err, io.EOF) {
		t.Fatal("unrelated error matched")
	}
}

// gatedWrites holds its first WriteAt until release is closed.
type gatedWrites struct {
	Store
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedWrites) WriteAt(p []byte, off int64) (int, error) {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.Store.WriteAt(p, off)
}

// A write is acknowledged only if a member still in service holds it: when
// the member that took it is failed meanwhile (a concurrent read's I/O
// error) and the last healthy one then fails the write, the write fails.
// Acknowledging it would lose it: every later read comes from the member
// without the data.
func TestMirrorWriteNeedsAHealthyMemberThatHasIt(t *testing.T) {
	const size = 1 << 16
	a, bf := NewFaulty(NewMemory(size)), NewFaulty(NewMemory(size))
	b := &gatedWrites{Store: bf, entered: make(chan struct{}), release: make(chan struct{})}
	m := NewMirror(nil, MirrorMember{Name: "a", Store: a}, MirrorMember{Name: "b", Store: b})
	werr := make(chan error, 1)
	go func() {
		_, err := m.WriteAt(pattern(7, 4096), 0)
		werr <- err
	}()
	<-b.entered // a has the data (or will); b's write waits
	a.FailEIO(8192, 4096)
	if _, err := m.ReadAt(make([]byte, 4096), 8192); err != nil {
		t.Fatalf("read failing over to b: %v", err)
	}
	if h := m.Health(); !h[0].Failed || h[1].Failed {
		t.Fatalf("after a's read error: health %+v, want a failed, b in service", h)
	}
	bf.FailEIO(0, 4096)
	close(b.release)
	err := <-werr
	if err == nil {
		t.Fatal("write acknowledged although the only member in service failed it")
	}
	if !errors.Is(err, ErrIO) {
		t.Fatalf("write error %v, want an I/O error", err)
	}
}

// A member's failure is recorded before the write the other leg took is
// acknowledged; the mirror opened again (restart, reload) keeps that
// member out of service although it reads fine now: it lacks the write.
func TestMirrorFailureSurvivesReopen(t *testing.T) {
	const size = 64 << 10
	dir := t.TempDir()
	rec := mirrorStatePath(dir, "device0") // where useState(dir, "device0") keeps it
	memA, memB := NewMemory(size), NewMemory(size)
	a := NewFaulty(memA)
	m := NewMirror(nil, MirrorMember{"ext0", a}, MirrorMember{"ext1", memB})
	if err := m.useState(dir, "device0"); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m, pattern(1, size), 0)
	a.FailEIO(0, size)
	newer := pattern(2, 4096)
	mustWrite(t, m, newer, 0) // taken by ext1 only
	if _, err := os.Stat(rec); err != nil {
		t.Fatalf("no failure record after the write was acknowledged: %v", err)
	}
	// Reopen on the same media; ext0 reads fine again but is stale.
	m2 := NewMirror(nil, MirrorMember{"ext0", memA}, MirrorMember{"ext1", memB})
	if err := m2.useState(dir, "device0"); err != nil {
		t.Fatal(err)
	}
	h := m2.Health()
	if !h[0].Failed || h[1].Failed || !errors.Is(h[0].Err, ErrStaleMember) {
		t.Fatalf("health after reopen: %+v", h)
	}
	equalBytes(t, "read after reopen", mustRead(t, m2, 4096, 0), newer)
	// Once the administrator removed the record, both serve again.
	os.Remove(rec)
	m3 := NewMirror(nil, MirrorMember{"ext0", memA}, MirrorMember{"ext1", memB})
	if err := m3.useState(dir, "device0"); err != nil {
		t.Fatal(err)
	}
	if m3.Degraded() {
		t.Fatal("degraded without a record")
	}
	// A record naming every member never takes the last one away.
	if err := os.WriteFile(rec, []byte(`{"device":"device0","failed":[{"member":"ext0"},{"member":"ext1"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m4 := NewMirror(nil, MirrorMember{"ext0", memA}, MirrorMember{"ext1", memB})
	if err := m4.useState(dir, "device0"); err != nil {
		t.Fatal(err)
	}
	if h := m4.Health(); !h[0].Failed || h[1].Failed {
		t.Fatalf("every member recorded: %+v", h)
	}
	if err := os.WriteFile(rec, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewMirror(nil, MirrorMember{"ext0", memA}, MirrorMember{"ext1", memB}).useState(dir, "device0"); err == nil {
		t.Fatal("a corrupt record was accepted")
	}
}

// Overlapping writes to a mirror from many goroutines leave both legs
// equal (each leg applies them in the same order).
func TestMirrorOverlappingWritesKeepLegsEqual(t *testing.T) {
	const size = 64 << 10
	a, b := NewMemory(size), NewMemory(size)
	m := NewMirror(nil, MirrorMember{"ext0", jitterStore{a, 1}}, MirrorMember{"ext1", jitterStore{b, 2}})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := pattern(int64(g+1), 8192)
			for i := range 200 {
				off := int64((i*4096 + g*512) % (size - 8192))
				if _, err := m.WriteAt(buf, off); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	equalBytes(t, "legs", mustRead(t, a, size, 0), mustRead(t, b, size, 0))
}

// jitterStore delays each write a little, differently per leg, so that
// overlapping writes would interleave differently on the two legs.
type jitterStore struct {
	Store
	seed int64
}

func (j jitterStore) WriteAt(p []byte, off int64) (int, error) {
	time.Sleep(time.Duration((off/512*j.seed)%7) * 20 * time.Microsecond)
	return j.Store.WriteAt(p, off)
}

// Devices d/1 and d_1 keep their records apart. A record under the name
// daemons before used (which they shared) is moved to its device's own
// name; the other device of that name leaves it alone.
func TestMirrorRecordNames(t *testing.T) {
	dir := t.TempDir()
	if mirrorStatePath(dir, "device/1") == mirrorStatePath(dir, "device_1") {
		t.Fatal("device/1 and device_1 share a record name")
	}
	legacy := mirrorLegacyStatePath(dir, "device/1")
	if legacy != mirrorLegacyStatePath(dir, "device_1") {
		t.Fatal("the legacy names differ: this test needs them shared")
	}
	if err := os.WriteFile(legacy, []byte(`{"device":"device/1","failed":[{"member":"ext0"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(device string) *MirrorStore {
		m := NewMirror(nil, MirrorMember{"ext0", NewMemory(4096)}, MirrorMember{"ext1", NewMemory(4096)})
		if err := m.useState(dir, device); err != nil {
			t.Fatalf("%s: %v", device, err)
		}
		return m
	}
	if open("device_1").Degraded() {
		t.Fatal("device_1 took device/1's record")
	}
	if _, err := os.Stat(legacy); err != nil {
		t.Fatalf("device_1 touched device/1's legacy record: %v", err)
	}
	if h := open("device/1").Health(); !h[0].Failed || h[1].Failed {
		t.Fatalf("device/1 from its legacy record: %+v", h)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Fatalf("legacy record left after its move: %v", err)
	}
	if h := open("device/1").Health(); !h[0].Failed {
		t.Fatalf("device/1 from its moved record: %+v", h)
	}
	if open("device_1").Degraded() {
		t.Fatal("device_1 took device/1's moved record")
	}
}

// A leg whose file system went read-only under it (ext4 errors=remount-ro
// after a disk error: EROFS) or whose device was set read-only (EPERM)
// refuses what the other leg takes. It is out of date from that write
// on: it is failed like a leg with I/O errors, and the write succeeds
// from the other one, as RAID1 promises. Before, every write answered
// DATA PROTECT while the good leg took it, and reads kept coming from
// the stale leg. When no leg takes the write, nobody is failed and the
// refusal is the write's (DATA PROTECT).
func TestMirrorLegGoneReadOnlyIsFailed(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EROFS, syscall.EPERM} {
		a, b := NewFaulty(NewMemory(1<<16)), NewFaulty(NewMemory(1<<16))
		m := NewMirror(nil, MirrorMember{Name: "a", Store: a}, MirrorMember{Name: "b", Store: b})
		old := pattern(1, 4096)
		mustWrite(t, m, old, 0)
		// Both legs refuse: the write's error, no member failed.
		a.FailRange(OpWrite|OpUnmap, 0, 1<<16, errno)
		b.FailRange(OpWrite|OpUnmap, 0, 1<<16, errno)
		_, err := m.WriteAt(pattern(2, 512), 0)
		expectErr(t, errno.Error()+" on every leg", err, ErrReadOnly)
		if m.Degraded() {
			t.Fatalf("%v on every leg failed a member: %+v", errno, m.Health())
		}
		// Only the first leg refuses: it is failed, the write succeeds.
		b.Clear()
		data := pattern(3, 4096)
		if _, err := m.WriteAt(data, 0); err != nil {
			t.Fatalf("%v on one leg: the write failed although the other leg took it: %v", errno, err)
		}
		h := m.Health()
		if !h[0].Failed || h[1].Failed || !errors.Is(h[0].Err, ErrReadOnly) {
			t.Fatalf("%v on one leg: health %+v, want the read-only leg failed", errno, h)
		}
		equalBytes(t, "read after the leg failed", mustRead(t, m, 4096, 0), data)
		equalBytes(t, "the healthy leg", mustRead(t, b, 4096, 0), data)
	}
}
