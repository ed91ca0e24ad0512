package scsi

import (
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// A reload that reopens a write-back LUN on the same medium syncs the old
// store first. When that sync fails, the failure is about writes already
// acknowledged, and no initiator has been told: the next SYNCHRONIZE
// CACHE or FUA write, on the new store, must report it. Before, the new
// store (its own descriptor, which Linux never tells of the old
// writeback error) answered GOOD: a false promise of durability.
func TestReloadCarriesAnUnreportedSyncFailure(t *testing.T) {
	var stores []*backing.Faulty
	open := func(*config.LUN) (backing.Store, error) {
		f := backing.NewFaulty(backing.NewMemory(1 << 20))
		stores = append(stores, f)
		return f, nil
	}
	mk := func(mode string, blocks uint64) *config.Target {
		tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:reloadsync")
		tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: mode, Blocks: blocks, Store: &config.Store{Path: "m"}}}
		return tc
	}
	tg, err := NewTarget(mk("wb", 0), Options{OpenStore: open})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tg.name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil)
	block := make([]byte, 512)
	if r := run(tg, a, rw16(0x8a, 0, 1, 0), block); r.Status != StatusGood {
		t.Fatalf("write-back write: %+v", r)
	}
	// The write-back of that write fails when the reload syncs the store.
	stores[0].FailRange(backing.OpSync, 0, 1<<20, syscall.EIO)
	if err := tg.Reconfigure(mk("wb", 1024)); err != nil {
		t.Fatal(err)
	}
	if len(stores) != 2 {
		t.Fatalf("the reload opened %d stores, want the LUN reopened", len(stores)-1)
	}
	if stores[0].Counts().Syncs == 0 {
		t.Fatal("the reload did not sync the old store: the test proves nothing")
	}
	drainUA(tg, a)
	sc := cdb(0x35, 10)
	if r := run(tg, a, sc, nil); senseKey(r) != keyMediumError || senseASC(r) != ascWriteError {
		t.Fatalf("SYNCHRONIZE CACHE after a reload whose sync failed: %+v, want MEDIUM ERROR / WRITE ERROR", r)
	}
	if r := run(tg, a, rw16(0x8a, 8, 1, 0x08), block); senseKey(r) != keyMediumError {
		t.Fatalf("FUA write after a reload whose sync failed: %+v, want MEDIUM ERROR", r)
	}
	// A second reload before any initiator synced would have dropped it;
	// once reported, a further reopen starts afresh (as documented).
	if err := tg.Reconfigure(mk("wb", 0)); err != nil {
		t.Fatal(err)
	}
	drainUA(tg, a)
	if r := run(tg, a, sc, nil); r.Status != StatusGood {
		t.Fatalf("SYNCHRONIZE CACHE after reopening once the failure was reported: %+v", r)
	}
}

// A failure the reload found and nobody was told of yet is carried across
// a second reload too.
func TestReloadCarriesAnUnreportedSyncFailureAcrossReloads(t *testing.T) {
	var stores []*backing.Faulty
	open := func(*config.LUN) (backing.Store, error) {
		f := backing.NewFaulty(backing.NewMemory(1 << 20))
		stores = append(stores, f)
		return f, nil
	}
	mk := func(blocks uint64) *config.Target {
		tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:reloadsync")
		tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: "wb", Blocks: blocks, Store: &config.Store{Path: "m"}}}
		return tc
	}
	tg, err := NewTarget(mk(0), Options{OpenStore: open})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tg.name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil)
	if r := run(tg, a, rw16(0x8a, 0, 1, 0), make([]byte, 512)); r.Status != StatusGood {
		t.Fatalf("write-back write: %+v", r)
	}
	stores[0].FailRange(backing.OpSync, 0, 1<<20, syscall.EIO)
	for _, blocks := range []uint64{1024, 512} {
		if err := tg.Reconfigure(mk(blocks)); err != nil {
			t.Fatal(err)
		}
	}
	drainUA(tg, a)
	if r := run(tg, a, cdb(0x91, 16), nil); senseKey(r) != keyMediumError {
		t.Fatalf("SYNCHRONIZE CACHE(16) after two reloads, the first of which failed to sync: %+v", r)
	}
}

// drainUA consumes the unit attentions a reload queued for n.
func drainUA(tg *Target, n *Nexus) {
	for i := 0; i < 8; i++ {
		if r := run(tg, n, cdb(0, 6), nil); senseKey(r) != keyUnitAttention {
			return
		}
	}
}
