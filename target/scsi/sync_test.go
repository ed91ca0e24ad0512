package scsi

import (
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// A store whose sync fails once (as Linux reports a writeback error once)
// must not make a later SYNCHRONIZE CACHE or FUA write look durable: the
// error is reported to every later one until the LUN is reopened.
func TestSyncErrorIsReportedToEveryLaterSync(t *testing.T) {
	var f *backing.Faulty
	open := func(*config.LUN) (backing.Store, error) {
		f = backing.NewFaulty(backing.NewMemory(1 << 20))
		return f, nil
	}
	mk := func(mode string) *config.Target {
		tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:sync")
		tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: mode, Store: &config.Store{Path: "m"}}}
		return tc
	}
	tg, err := NewTarget(mk("wb"), Options{OpenStore: open})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tg.name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil)
	sc := cdb(0x35, 10)
	block := make([]byte, 512)
	if r := run(tg, a, rw16(0x8a, 0, 1, 0), block); r.Status != StatusGood {
		t.Fatal(r)
	}
	f.FailRange(backing.OpSync, 0, 1<<20, syscall.EIO)
	if r := run(tg, a, sc, nil); senseKey(r) != keyMediumError {
		t.Fatalf("SYNCHRONIZE CACHE on a failing store: %+v", r)
	}
	f.Clear() // the kernel reports the error once; the next fdatasync "succeeds"
	syncs := f.Counts().Syncs + f.Counts().SyncRanges
	if r := run(tg, a, sc, nil); senseKey(r) != keyMediumError {
		t.Fatalf("second SYNCHRONIZE CACHE after the failure: %+v", r)
	}
	if r := run(tg, a, rw16(0x8a, 8, 1, 0x08), block); senseKey(r) != keyMediumError {
		t.Fatalf("FUA write after the failure: %+v", r)
	}
	if r := run(tg, a, rw16(0x8a, 8, 1, 0), block); r.Status != StatusGood {
		t.Fatalf("plain write-back write (nothing promised): %+v", r)
	}
	if c := f.Counts(); c.Syncs+c.SyncRanges != syncs {
		t.Fatalf("the store was synced again after the failure: %+v", c)
	}
	// A reload that reopens the LUN starts afresh.
	if err := tg.Reconfigure(mk("wt")); err != nil {
		t.Fatal(err)
	}
	run(tg, a, cdb(0, 6), nil)
	if r := run(tg, a, sc, nil); r.Status != StatusGood {
		t.Fatalf("SYNCHRONIZE CACHE after reopening: %+v", r)
	}
}
