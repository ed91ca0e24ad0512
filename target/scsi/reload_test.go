package scsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// countingOpen opens real backing stores and counts the opens.
type countingOpen struct {
	opens atomic.Int64
}

func (c *countingOpen) open(l *config.LUN) (backing.Store, error) {
	c.opens.Add(1)
	return backing.Open(l, backing.OpenOptions{})
}

func fileTarget(t *testing.T, path string, mutate func(*config.LUN)) *config.Target {
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:reload")
	l := &config.LUN{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Kind: config.StoreFile, Path: path}}
	if mutate != nil {
		mutate(l)
	}
	tc.LUNs = []*config.LUN{l}
	return tc
}

func tempImage(t *testing.T, size int64) string {
	p := filepath.Join(t.TempDir(), "lun.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

// hammer runs writes (half of them FUA) from n until stop; it counts
// failures.
func hammer(tg *Target, n *Nexus, stop *atomic.Bool, wg *sync.WaitGroup, fails, total *atomic.Int64) {
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := bytes.Repeat([]byte{byte(g + 1)}, 4096)
			for i := 0; !stop.Load(); i++ {
				r := tg.Execute(context.Background(), &Command{Nexus: n, CDB: rw16(0x8a, uint64(8*g), 8, byte(i%2)<<3),
					DataOut: buf, ExpectedLen: 4096})
				total.Add(1)
				if r.Status == StatusCheckCondition && senseKey(r) == keyUnitAttention {
					continue
				}
				if r.Status != StatusGood {
					fails.Add(1)
				}
			}
		}()
	}
}

// A reload that changes only identity fields keeps the open store (no
// write in flight fails), updates INQUIRY in place and tells every nexus
// INQUIRY DATA HAS CHANGED.
func TestReloadIdentityInPlace(t *testing.T) {
	p := tempImage(t, 1<<20)
	co := &countingOpen{}
	mk := func(sn string) *config.Target {
		return fileTarget(t, p, func(l *config.LUN) { l.ScsiSN = sn; l.Vendor = "V" + sn })
	}
	tg, err := NewTarget(mk("A"), Options{OpenStore: co.open})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tg.name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil)
	var stop atomic.Bool
	var fails, total atomic.Int64
	var wg sync.WaitGroup
	hammer(tg, a, &stop, &wg, &fails, &total)
	for i := 0; i < 100; i++ {
		sn := "A"
		if i%2 == 0 {
			sn = "B"
		}
		if err := tg.Reconfigure(mk(sn)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if fails.Load() != 0 || co.opens.Load() != 1 {
		t.Fatalf("%d of %d writes failed, store opened %d times during identity-only reloads", fails.Load(), total.Load(), co.opens.Load())
	}
	if err := tg.Reconfigure(mk("Z")); err != nil {
		t.Fatal(err)
	}
	for { // drain the UAs the hammer did not take
		r := run(tg, a, cdb(0, 6), nil)
		if r.Status == StatusGood {
			t.Fatal("no INQUIRY DATA HAS CHANGED after an identity change")
		}
		if senseASC(r) == ascInquiryDataChanged {
			break
		}
	}
	if got := vpdOf(t, tg, a, 0, 0x80); string(bytes.TrimLeft(got[4:], " ")) != "Z" {
		t.Fatalf("serial after reload %q", got[4:])
	}
}

// A reload that reopens the store on the same file (IOMode wb <-> wt)
// drains the commands in flight before closing the old store, keeps
// registrations and reservations, and reports a capacity change (Blocks=)
// with CAPACITY DATA HAS CHANGED.
func TestReloadReopenKeepsStateAndDrains(t *testing.T) {
	p := tempImage(t, 1<<20)
	co := &countingOpen{}
	mk := func(mode string, blocks uint64) *config.Target {
		return fileTarget(t, p, func(l *config.LUN) { l.IOMode = mode; l.Blocks = blocks })
	}
	tg, err := NewTarget(mk("wb", 0), Options{OpenStore: co.open})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tg.name}
	b := &Nexus{ID: 2, InitiatorName: "iqn.b", ISID: [6]byte{2}, TargetName: tg.name}
	tg.NexusAttach(a)
	tg.NexusAttach(b)
	run(tg, a, cdb(0, 6), nil)
	run(tg, b, cdb(0, 6), nil)
	c, prm := prOut(0, 0, 0, 0xa)
	run(tg, a, c, prm)
	c, prm = prOut(1, prWE, 0xa, 0)
	if r := run(tg, a, c, prm); r.Status != StatusGood {
		t.Fatal(r)
	}
	var stop atomic.Bool
	var fails, total atomic.Int64
	var wg sync.WaitGroup
	hammer(tg, a, &stop, &wg, &fails, &total)
	for i := 0; i < 40; i++ {
		mode := "wt"
		if i%2 == 1 {
			mode = "wb"
		}
		if err := tg.Reconfigure(mk(mode, 0)); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if fails.Load() != 0 || co.opens.Load() != 41 {
		t.Fatalf("%d of %d writes failed across %d opens", fails.Load(), total.Load(), co.opens.Load())
	}
	// IOMode wb <-> wt reported MODE PARAMETERS CHANGED; take it.
	for _, n := range []*Nexus{a, b} {
		if r := run(tg, n, cdb(0, 6), nil); senseASC(r) != ascModeParamsChanged {
			t.Fatalf("no MODE PARAMETERS CHANGED after the IOMode reloads: %+v", r)
		}
	}
	if typ, held := readReservation(t, tg, a); !held || typ != prWE {
		t.Fatal("the reservation did not survive reopening the same file")
	}
	if r := run(tg, b, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusReservationConflict {
		t.Fatalf("b writes under a's WE after the reopen: %+v", r)
	}
	if err := tg.Reconfigure(mk("wb", 1024)); err != nil { // 1 MiB -> 512 KiB
		t.Fatal(err)
	}
	if r := run(tg, b, cdb(0, 6), nil); senseASC(r) != ascCapacityChanged {
		t.Fatalf("no CAPACITY DATA HAS CHANGED after Blocks= changed: %+v", r)
	}
	rc := cdb(0x25, 10)
	if r := run(tg, b, rc, nil); binary.BigEndian.Uint32(r.Data) != 1023 {
		t.Fatalf("capacity after reload: last LBA %d", binary.BigEndian.Uint32(r.Data))
	}
}

// closeStore records Close; gate holds a write inside the store.
type closeStore struct {
	*gateStore
	closed atomic.Bool
}

func (c *closeStore) Close() error { c.closed.Store(true); return c.gateStore.Close() }

// A LUN removed by a reload is closed only after the command executing
// on it has finished (it completes GOOD, not "file already closed").
func TestReloadRemovalWaitsForCommands(t *testing.T) {
	cs := &closeStore{gateStore: newGateStore(backing.NewMemory(1 << 20))}
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:remove")
	tc.LUNs = []*config.LUN{memLUN(0, nil)}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) { return cs, nil }})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tc.Name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil)
	cs.armWrite.Store(true)
	wr := make(chan Result, 1)
	go func() { wr <- run(tg, a, rw16(0x8a, 0, 1, 0), make([]byte, 512)) }()
	<-cs.stopped
	empty := config.NewTarget(1, tc.Name)
	done := make(chan error, 1)
	go func() { done <- tg.Reconfigure(empty) }()
	for i := 0; tg.lun(0) != nil; i++ {
		if i > 5000 {
			t.Fatal("the LUN was not removed")
		}
		time.Sleep(time.Millisecond)
	}
	if cs.closed.Load() {
		t.Fatal("store closed while a write was executing on it")
	}
	close(cs.resume)
	if r := <-wr; r.Status != StatusGood {
		t.Fatalf("in-flight write: %+v", r)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !cs.closed.Load() {
		t.Fatal("the removed LUN's store was never closed")
	}
}

// syncCounter counts Sync calls of the stores it opened.
type syncCounter struct {
	backing.Store
	syncs *atomic.Int64
}

func (s syncCounter) Sync() error { s.syncs.Add(1); return s.Store.Sync() }

// A reload that changes IOMode between wb and wt syncs the old store
// before the new one serves (what wb acknowledged is on the medium when
// WCE reads 0), reports MODE PARAMETERS CHANGED to every nexus, and a
// write-back store is synced when it closes.
func TestReloadWriteCacheChange(t *testing.T) {
	p := tempImage(t, 1<<20)
	var syncs atomic.Int64
	open := func(l *config.LUN) (backing.Store, error) {
		s, err := backing.Open(l, backing.OpenOptions{})
		if err != nil {
			return nil, err
		}
		return syncCounter{s, &syncs}, nil
	}
	mk := func(mode string) *config.Target {
		return fileTarget(t, p, func(l *config.LUN) { l.IOMode = mode })
	}
	tg, err := NewTarget(mk("wb"), Options{OpenStore: open})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tg.name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil) // the power-on unit attention
	if r := run(tg, a, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusGood {
		t.Fatalf("write: %+v", r)
	}
	if err := tg.Reconfigure(mk("wt")); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n < 1 {
		t.Fatalf("old wb store synced %d times by the reload", n)
	}
	if r := run(tg, a, cdb(0, 6), nil); senseASC(r) != ascModeParamsChanged {
		t.Fatalf("no MODE PARAMETERS CHANGED after wb -> wt: %+v", r)
	}
	if err := tg.Reconfigure(mk("wt")); err != nil { // unchanged: nothing to report
		t.Fatal(err)
	}
	if r := run(tg, a, cdb(0, 6), nil); r.Status != StatusGood {
		t.Fatalf("TEST UNIT READY after an unchanged reload: %+v", r)
	}
	if err := tg.Reconfigure(mk("wb")); err != nil {
		t.Fatal(err)
	}
	if r := run(tg, a, cdb(0, 6), nil); senseASC(r) != ascModeParamsChanged {
		t.Fatalf("no MODE PARAMETERS CHANGED after wt -> wb: %+v", r)
	}
	before := syncs.Load()
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if syncs.Load() == before {
		t.Fatal("the wb store was not synced when the target closed")
	}
}
