package scsi

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// gateStore stops the first armed read or write (after a read, before a
// write) until released, so a test can hold a command in the middle.
type gateStore struct {
	backing.Store
	armRead, armWrite atomic.Bool
	once              sync.Once
	stopped, resume   chan struct{}
}

func newGateStore(inner backing.Store) *gateStore {
	return &gateStore{Store: inner, stopped: make(chan struct{}), resume: make(chan struct{})}
}

func (g *gateStore) gate() { g.once.Do(func() { close(g.stopped); <-g.resume }) }

func (g *gateStore) ReadAt(p []byte, off int64) (int, error) {
	n, err := g.Store.ReadAt(p, off)
	if g.armRead.Load() {
		g.gate()
	}
	return n, err
}

func (g *gateStore) WriteAt(p []byte, off int64) (int, error) {
	if g.armWrite.Load() {
		g.gate()
	}
	return g.Store.WriteAt(p, off)
}

// tearStore writes and reads one 512-byte block per call, yielding in
// between, so a multi-block command is torn unless something orders it.
type tearStore struct{ backing.Store }

func (s tearStore) WriteAt(p []byte, off int64) (int, error) {
	for i := 0; i < len(p); i += 512 {
		if _, err := s.Store.WriteAt(p[i:min(i+512, len(p))], off+int64(i)); err != nil {
			return i, err
		}
		runtime.Gosched()
	}
	return len(p), nil
}

func (s tearStore) ReadAt(p []byte, off int64) (int, error) {
	for i := 0; i < len(p); i += 512 {
		if _, err := s.Store.ReadAt(p[i:min(i+512, len(p))], off+int64(i)); err != nil {
			return i, err
		}
		runtime.Gosched()
	}
	return len(p), nil
}

// storeTargetMode is a target with one LUN over st in IOMode mode and a
// nexus whose power-on unit attention is consumed.
func storeTargetMode(t *testing.T, mode string, st backing.Store) (*Target, *Nexus) {
	t.Helper()
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:store")
	tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: mode, Store: &config.Store{Path: "m"}}}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) { return st, nil }})
	if err != nil {
		t.Fatal(err)
	}
	n := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tc.Name}
	tg.NexusAttach(n)
	run(tg, n, cdb(0, 6), nil)
	return tg, n
}

// storeTarget is storeTargetMode write-back with a second nexus.
func storeTarget(t *testing.T, st backing.Store) (*Target, *Nexus, *Nexus) {
	t.Helper()
	tg, a := storeTargetMode(t, "wb", st)
	b := &Nexus{ID: 2, InitiatorName: "iqn.b", ISID: [6]byte{2}, TargetName: tg.name}
	tg.NexusAttach(b)
	run(tg, b, cdb(0, 6), nil)
	return tg, a, b
}

// waitBlocked waits (bounded) until n ranges of LUN 0 are blocked.
func waitBlocked(t *testing.T, tg *Target, n int) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		if tg.lun(0).locks.waiters() >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no command blocked on the range lock (want %d)", n)
}

func caw(lba uint64, verify, data []byte) ([]byte, []byte) {
	c := rw16(0x89, lba, 0, 0)
	c[13] = byte(len(data) / 512)
	return c, append(append([]byte{}, verify...), data...)
}

// A WRITE from another nexus to the blocks a COMPARE AND WRITE is
// working on waits until the CAW is done (SBC-3: uninterrupted series of
// actions); a WRITE elsewhere does not.
func TestCompareAndWriteAtomicAgainstWrite(t *testing.T) {
	gs := newGateStore(backing.NewMemory(1 << 20))
	tg, a, b := storeTarget(t, gs)
	zero := make([]byte, 512)
	newA := bytes.Repeat([]byte{0xaa}, 512)
	newB := bytes.Repeat([]byte{0xbb}, 512)
	gs.armRead.Store(true)
	cawDone := make(chan Result, 1)
	go func() {
		c, p := caw(0, zero, newA)
		cawDone <- run(tg, a, c, p)
	}()
	<-gs.stopped // CAW has read, compare and write are to come
	gs.armRead.Store(false)
	// Elsewhere: not held up.
	if r := run(tg, b, rw16(0x8a, 100, 1, 0), newB); r.Status != StatusGood {
		t.Fatalf("unrelated write: %+v", r)
	}
	wrDone := make(chan Result, 1)
	go func() { wrDone <- run(tg, b, rw16(0x8a, 0, 1, 0), newB) }()
	waitBlocked(t, tg, 1)
	select {
	case r := <-wrDone:
		t.Fatalf("WRITE completed inside COMPARE AND WRITE: %+v", r)
	default:
	}
	close(gs.resume)
	if r := <-cawDone; r.Status != StatusGood {
		t.Fatalf("CAW: %+v", r)
	}
	if r := <-wrDone; r.Status != StatusGood {
		t.Fatalf("WRITE: %+v", r)
	}
	if got := run(tg, a, rw16(0x88, 0, 1, 0), nil); !bytes.Equal(got.Data, newB) {
		t.Fatalf("block 0 = %x..., want the WRITE ordered after the CAW", got.Data[:4])
	}
}

// A READ overlapping a WRITE ATOMIC waits and then sees all of it.
func TestWriteAtomicAgainstRead(t *testing.T) {
	gs := newGateStore(backing.NewMemory(1 << 20))
	tg, a, b := storeTarget(t, gs)
	data := bytes.Repeat([]byte{0x5a}, 8*512)
	gs.armWrite.Store(true)
	wa := rw16(0x9c, 16, 0, 0)
	binary.BigEndian.PutUint16(wa[12:], 8)
	done := make(chan Result, 1)
	go func() { done <- run(tg, a, wa, data) }()
	<-gs.stopped
	gs.armWrite.Store(false)
	rd := make(chan Result, 1)
	go func() { rd <- run(tg, b, rw16(0x88, 20, 8, 0), nil) }()
	waitBlocked(t, tg, 1)
	close(gs.resume)
	if r := <-done; r.Status != StatusGood {
		t.Fatalf("WRITE ATOMIC: %+v", r)
	}
	r := <-rd
	if r.Status != StatusGood || !bytes.Equal(r.Data[:4*512], data[:4*512]) {
		t.Fatalf("READ overlapping a WRITE ATOMIC saw old data: %+v", r.Status)
	}
}

// Many nexuses increment a two-block counter with COMPARE AND WRITE
// while others overwrite neighbouring blocks and read the counter, on a
// store that tears multi-block I/O: no increment is lost and no read
// sees the two blocks disagree.
func TestAtomicCommandsUnderLoad(t *testing.T) {
	tg, a, b := storeTarget(t, tearStore{backing.NewMemory(1 << 20)})
	block := func(v uint64) []byte {
		p := make([]byte, 1024)
		binary.BigEndian.PutUint64(p, v)
		binary.BigEndian.PutUint64(p[512:], v)
		return p
	}
	run(tg, a, rw16(0x8a, 0, 2, 0), block(0))
	const workers, incs = 4, 50
	var wg sync.WaitGroup
	var torn, ok atomic.Int64
	var stop atomic.Bool
	for w := 0; w < workers; w++ {
		n := a
		if w%2 == 1 {
			n = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < incs; {
				r := run(tg, n, rw16(0x88, 0, 2, 0), nil)
				v := binary.BigEndian.Uint64(r.Data)
				c, p := caw(0, block(v), block(v+1))
				switch r := run(tg, n, c, p); {
				case r.Status == StatusGood:
					ok.Add(1)
					i++
				case senseKey(r) != keyMiscompare:
					t.Errorf("CAW: %+v", r)
					return
				}
			}
		}()
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { // readers of the counter
		defer bg.Done()
		for !stop.Load() {
			r := run(tg, b, rw16(0x88, 0, 2, 0), nil)
			if !bytes.Equal(r.Data[:8], r.Data[512:520]) {
				torn.Add(1)
			}
		}
	}()
	go func() { // plain writes next to the counter
		defer bg.Done()
		for !stop.Load() {
			run(tg, a, rw16(0x8a, 2, 4, 0), make([]byte, 2048))
		}
	}()
	wg.Wait()
	stop.Store(true)
	bg.Wait()
	r := run(tg, a, rw16(0x88, 0, 2, 0), nil)
	if got := binary.BigEndian.Uint64(r.Data); got != workers*incs || ok.Load() != workers*incs {
		t.Fatalf("counter %d after %d successful CAWs, want %d", got, ok.Load(), workers*incs)
	}
	if torn.Load() > 0 {
		t.Fatalf("%d reads saw a half-written COMPARE AND WRITE", torn.Load())
	}
}

func TestRangeLocksOrder(t *testing.T) {
	var r rangeLocks
	r.init()
	s1 := r.shared(0, 8)  // fast path
	s2 := r.shared(64, 8) // fast path
	got := make(chan string, 4)
	go func() {
		x := r.exclusive(4, 2) // waits for the fast ranges to drain
		got <- "x1"
		r.release(x)
	}()
	for r.waiters() < 1 {
		runtime.Gosched()
	}
	go func() {
		s := r.shared(100, 1) // no overlap with x1: admitted at once
		got <- "s3"
		r.release(s)
	}()
	if v := <-got; v != "s3" {
		t.Fatalf("a non-overlapping shared range waited for an exclusive one: %s", v)
	}
	r.release(s2)
	select {
	case v := <-got:
		t.Fatalf("%s admitted while an overlapping shared range is held", v)
	default:
	}
	r.release(s1)
	if v := <-got; v != "x1" {
		t.Fatal(v)
	}
	// Nothing left: the fast path is back.
	if tok := r.shared(0, 1); tok.seq != 0 || r.excl.Load() != 0 {
		t.Fatalf("fast path not restored: %+v excl=%d", tok, r.excl.Load())
	} else {
		r.release(tok)
	}
}
