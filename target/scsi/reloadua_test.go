package scsi

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// trackedStore counts a store's syncs and closes, and can hold its
// writes (a pwrite in the kernel) until released.
type trackedStore struct {
	backing.Store
	syncs, closes atomic.Int32
	closedAt      atomic.Int64 // writes completed when Close was called
	writes        atomic.Int64
	gate          chan struct{} // nil: writes go at once
	inWrite       chan struct{} // gets one value per write that reached the gate
}

func (s *trackedStore) WriteAt(p []byte, off int64) (int, error) {
	if s.gate != nil {
		s.inWrite <- struct{}{}
		<-s.gate
	}
	n, err := s.Store.WriteAt(p, off)
	s.writes.Add(1)
	return n, err
}
func (s *trackedStore) Sync() error { s.syncs.Add(1); return s.Store.Sync() }
func (s *trackedStore) Close() error {
	s.closes.Add(1)
	s.closedAt.Store(s.writes.Load())
	return s.Store.Close()
}

// A Refresh that the file store has, kept visible through the wrapper
// (a grown file is seen at the next reload).
func (s *trackedStore) Refresh() (int64, error) {
	if r, ok := s.Store.(interface{ Refresh() (int64, error) }); ok {
		return r.Refresh()
	}
	return s.Store.Size(), nil
}

type trackedOpens struct {
	mu     sync.Mutex
	stores map[string][]*trackedStore // by path, in opening order
	gated  map[string]bool
}

func (o *trackedOpens) open(l *config.LUN) (backing.Store, error) {
	st, err := backing.Open(l, backing.OpenOptions{})
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	ts := &trackedStore{Store: st}
	if o.gated[l.Store.Path] {
		ts.gate, ts.inWrite = make(chan struct{}), make(chan struct{}, 16)
	}
	o.stores[l.Store.Path] = append(o.stores[l.Store.Path], ts)
	return ts, nil
}

func (o *trackedOpens) of(path string) []*trackedStore {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*trackedStore(nil), o.stores[path]...)
}

// pendingUAs takes every unit attention n has queued on lun, in order.
func pendingUAs(t *testing.T, tg *Target, n *Nexus, lun uint64) []asc {
	t.Helper()
	var got []asc
	for range 20 {
		r := tg.Execute(context.Background(), &Command{Nexus: n, LUN: lun, CDB: cdb(0x00, 6), ExpectedLen: 0})
		if r.Status == StatusGood {
			return got
		}
		if senseKey(r) != keyUnitAttention {
			t.Fatalf("LUN %d: TEST UNIT READY: status %#x sense key %#x asc %04x", lun, r.Status, senseKey(r), uint16(senseASC(r)))
		}
		got = append(got, senseASC(r))
	}
	t.Fatalf("LUN %d: unit attentions never end: %04x", lun, got)
	return nil
}

// The reloads a configuration goes through while two nexuses are
// attached: each step gives exactly the unit attentions SPC-4 and SBC-3
// ask for, no other, and opens and closes each store as it must.
func TestReloadUnitAttentionsAndStores(t *testing.T) {
	p0, p1, p2 := tempImage(t, 1<<20), tempImage(t, 1<<20), tempImage(t, 1<<20)
	opens := &trackedOpens{stores: map[string][]*trackedStore{}, gated: map[string]bool{p1: true}}
	lunAt := func(n uint64, path string, line int) *config.LUN {
		return &config.LUN{Number: n, Pos: config.Position{File: "ietd.conf", Line: line, Col: 2}, Type: "fileio", IOMode: "wb",
			Store: &config.Store{Kind: config.StoreFile, Path: path, Pos: config.Position{File: "ietd.conf", Line: line, Col: 8}}}
	}
	conf := func(line int, luns ...*config.LUN) *config.Target {
		tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:reloadua")
		tc.Pos = config.Position{File: "ietd.conf", Line: line, Col: 1}
		tc.LUNs = luns
		return tc
	}
	tg, err := NewTarget(conf(1, lunAt(0, p0, 2), lunAt(1, p1, 3)), Options{OpenStore: opens.open})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetName: tg.name}
	b := &Nexus{ID: 2, InitiatorName: "iqn.b", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}, TargetName: tg.name}
	for _, n := range []*Nexus{a, b} {
		tg.NexusAttach(n)
		for _, lun := range []uint64{0, 1} {
			if got := pendingUAs(t, tg, n, lun); len(got) != 1 || got[0] != ascPowerOnReset {
				t.Fatalf("nexus %d LUN %d at attach: unit attentions %04x, want power on", n.ID, lun, got)
			}
		}
	}
	expect := func(step string, want map[uint64][]asc) {
		t.Helper()
		for _, n := range []*Nexus{a, b} {
			for lun, w := range want {
				got := pendingUAs(t, tg, n, lun)
				if len(got) != len(w) || (len(w) > 0 && got[0] != w[0]) {
					t.Errorf("%s: nexus %d LUN %d: unit attentions %04x, want %04x", step, n.ID, lun, got, w)
				}
			}
		}
	}

	// 1. The same file, every line moved down: nothing happens.
	if err := tg.Reconfigure(conf(5, lunAt(0, p0, 7), lunAt(1, p1, 9))); err != nil {
		t.Fatal(err)
	}
	expect("unchanged", map[uint64][]asc{0: nil, 1: nil})
	if n := len(opens.of(p0)) + len(opens.of(p1)); n != 2 {
		t.Fatalf("an unchanged reload reopened stores: %d opens, want 2", n)
	}

	// 2. LUN 2 added: REPORTED LUNS DATA HAS CHANGED on every LUN.
	if err := tg.Reconfigure(conf(1, lunAt(0, p0, 2), lunAt(1, p1, 3), lunAt(2, p2, 4))); err != nil {
		t.Fatal(err)
	}
	expect("LUN added", map[uint64][]asc{0: {ascReportedLUNsChanged}, 1: {ascReportedLUNsChanged}, 2: {ascReportedLUNsChanged}})

	// 3. LUN 0's file grown: CAPACITY DATA HAS CHANGED there only.
	if err := os.Truncate(p0, 2<<20); err != nil {
		t.Fatal(err)
	}
	if err := tg.Reconfigure(conf(1, lunAt(0, p0, 2), lunAt(1, p1, 3), lunAt(2, p2, 4))); err != nil {
		t.Fatal(err)
	}
	expect("LUN 0 grown", map[uint64][]asc{0: {ascCapacityChanged}, 1: nil, 2: nil})
	if got := tg.ServedLUNs()[0].Blocks; got != 2<<20/512 {
		t.Fatalf("LUN 0 grown to 2 MiB serves %d blocks", got)
	}

	// 4. LUN 1 removed while a write of a's is in its store: the
	// removal waits for it, the write succeeds and is in the file, the
	// store is synced and closed once, after the write; new commands
	// to LUN 1 get LOGICAL UNIT NOT SUPPORTED.
	st1 := opens.of(p1)[0]
	data := bytes.Repeat([]byte{0xc3}, 4096)
	wr := make(chan Result, 1)
	go func() {
		wr <- tg.Execute(context.Background(), &Command{Nexus: a, LUN: 1, CDB: rw16(0x8a, 16, 8, 0), DataOut: data, ExpectedLen: 4096})
	}()
	<-st1.inWrite
	reconf := make(chan error, 1)
	go func() { reconf <- tg.Reconfigure(conf(1, lunAt(0, p0, 2), lunAt(2, p2, 4))) }()
	deadline := time.Now().Add(5 * time.Second)
	for tg.lun(1) != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if r := tg.Execute(context.Background(), &Command{Nexus: b, LUN: 1, CDB: rw16(0x88, 0, 1, 0), ExpectedLen: 512}); r.Status != StatusCheckCondition || senseASC(r) != 0x2500 {
		t.Errorf("READ on the removed LUN: status %#x asc %04x, want LOGICAL UNIT NOT SUPPORTED", r.Status, uint16(senseASC(r)))
	}
	select {
	case <-reconf:
		t.Fatal("the removal did not wait for the write in the store")
	case <-time.After(50 * time.Millisecond):
	}
	if n := st1.closes.Load(); n != 0 {
		t.Fatalf("the removed store was closed with a write in it (%d closes)", n)
	}
	close(st1.gate)
	if r := <-wr; r.Status != StatusGood {
		t.Fatalf("the write in the store when its LUN was removed: status %#x sense %x", r.Status, r.Sense)
	}
	if err := <-reconf; err != nil {
		t.Fatal(err)
	}
	if c, s, at := st1.closes.Load(), st1.syncs.Load(), st1.closedAt.Load(); c != 1 || s < 1 || at != 1 {
		t.Fatalf("the removed store: %d closes (want 1), %d syncs (want at least 1), closed after %d writes (want 1)", c, s, at)
	}
	got, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[16*512:16*512+4096], data) {
		t.Fatal("the write acknowledged on the removed LUN is not in its file")
	}
	expect("LUN 1 removed", map[uint64][]asc{0: {ascReportedLUNsChanged}, 2: {ascReportedLUNsChanged}})

	// 5. Target closed: every store left is closed once; the removed one
	// is not closed again.
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{p0, p1, p2} {
		for i, s := range opens.of(p) {
			if n := s.closes.Load(); n != 1 {
				t.Errorf("%s open #%d: closed %d times, want once", p, i+1, n)
			}
		}
	}
}

// Sessions attaching and detaching while reloads add and remove LUNs:
// afterwards every LUN has an entry for exactly the nexuses attached, so
// none of them misses the unit attentions a LUN queues for its nexuses and
// no entry of a gone session is left. Before, a session that attached
// between Reconfigure's look at the nexuses and its swap of the LUN set
// had no entry on the added LUN, and one that detached then left one.
func TestReloadRacingNexusAttachKeepsLUNEntriesInLine(t *testing.T) {
	conf := func(luns ...uint64) *config.Target {
		tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:reloadrace")
		for _, n := range luns {
			tc.LUNs = append(tc.LUNs, &config.LUN{Number: n, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: fmt.Sprintf("mem%d", n)}})
		}
		return tc
	}
	tg, err := NewTarget(conf(0), Options{OpenStore: func(*config.LUN) (backing.Store, error) {
		return backing.NewMemory(64 << 10), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	check := func(round int) {
		t.Helper()
		want := map[string]bool{}
		for _, k := range tg.nexusKeys() {
			want[k] = true
		}
		tg.mu.RLock()
		luns := tg.luns
		tg.mu.RUnlock()
		for n, l := range luns {
			l.mu.Lock()
			got := len(l.ua)
			missing := ""
			for k := range want {
				if _, ok := l.ua[k]; !ok {
					missing = k
				}
			}
			l.mu.Unlock()
			if got != len(want) || missing != "" {
				t.Fatalf("round %d LUN %d: %d nexus entries for %d attached nexuses (missing %q)", round, n, got, len(want), missing)
			}
		}
	}
	for round := 0; round < 200; round++ {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 4; i++ {
				n := &Nexus{ID: uint64(round*10 + i), InitiatorName: fmt.Sprintf("iqn.r%d", i), ISID: [6]byte{0x80, 0, 0, 0, 0, byte(i)}, TargetName: tg.name}
				tg.NexusAttach(n)
				if i%2 == 1 {
					tg.NexusDetach(n)
				}
			}
		}()
		if err := tg.Reconfigure(conf(0, uint64(1+round%3))); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		check(round)
	}
}
