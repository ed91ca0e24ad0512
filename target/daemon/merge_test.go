package daemon

import (
	"testing"

	"github.com/ietgo/ietd/target/config"
)

func TestMergeReloadKeepsTIDsAndRuntimeTargets(t *testing.T) {
	cur := &config.Config{Targets: []*config.Target{
		config.NewTarget(1, "iqn.x:a"), config.NewTarget(2, "iqn.x:b"), config.NewTarget(7, "iqn.x:made-by-ietadm"),
	}}
	// The file now has a new target inserted first: compat numbers it 1.
	loaded := &config.Config{Targets: []*config.Target{
		config.NewTarget(1, "iqn.x:new"), config.NewTarget(2, "iqn.x:a"), config.NewTarget(3, "iqn.x:b"),
	}}
	next := MergeReload(cur, loaded, map[string]bool{"iqn.x:made-by-ietadm": true})
	want := map[string]int{"iqn.x:a": 1, "iqn.x:b": 2, "iqn.x:made-by-ietadm": 7, "iqn.x:new": 8}
	if len(next.Targets) != len(want) {
		t.Fatalf("got %d targets", len(next.Targets))
	}
	seen := map[int]bool{}
	for _, tg := range next.Targets {
		if want[tg.Name] != tg.TID {
			t.Errorf("%s: tid %d, want %d", tg.Name, tg.TID, want[tg.Name])
		}
		if seen[tg.TID] {
			t.Errorf("duplicate tid %d", tg.TID)
		}
		seen[tg.TID] = true
	}
	if loaded.Targets[0].TID != 1 {
		t.Error("MergeReload modified its input")
	}
	// A runtime target the file now defines itself is taken from the file.
	next = MergeReload(cur, &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:made-by-ietadm")}}, map[string]bool{"iqn.x:made-by-ietadm": true})
	if len(next.Targets) != 1 || next.Targets[0].TID != 7 {
		t.Fatalf("got %+v", next.Targets)
	}
}
