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
	next, nextTID := MergeReload(cur, loaded, map[string]bool{"iqn.x:made-by-ietadm": true}, 8)
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
	if nextTID != 9 {
		t.Errorf("next tid %d, want 9", nextTID)
	}
	// A runtime target the file now defines itself is taken from the file.
	next, _ = MergeReload(cur, &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:made-by-ietadm")}}, map[string]bool{"iqn.x:made-by-ietadm": true}, 8)
	if len(next.Targets) != 1 || next.Targets[0].TID != 7 {
		t.Fatalf("got %+v", next.Targets)
	}
	// Names compare without case (IET): the file's "…:Made-By-IETADM" is
	// the running target, not a second one next to it.
	next, _ = MergeReload(cur, &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:Made-By-IETADM")}}, map[string]bool{"iqn.x:made-by-ietadm": true}, 8)
	if len(next.Targets) != 1 || next.Targets[0].TID != 7 {
		t.Fatalf("case-different name: got %d targets, first tid %d; want one with tid 7", len(next.Targets), next.Targets[0].TID)
	}
}

// TestMergeReloadNeverReusesTIDs: IET never gives a running daemon's old
// tid to another target.
func TestMergeReloadNeverReusesTIDs(t *testing.T) {
	cur := &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:a"), config.NewTarget(2, "iqn.x:b")}}
	// The file drops b and adds c: compat numbers c 2.
	loaded := &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:a"), config.NewTarget(2, "iqn.x:c")}}
	next, n := MergeReload(cur, loaded, nil, 3)
	if c := next.TargetByName("iqn.x:c"); c == nil || c.TID != 3 || n != 4 {
		t.Fatalf("c got tid %v (next %d), want 3: tid 2 belonged to b", c, n)
	}
	// The daemon's counter is past every running tid (tid 9 was deleted).
	next, n = MergeReload(next, &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:d")}}, nil, 10)
	if next.Targets[0].TID != 10 || n != 11 {
		t.Fatalf("d got tid %d (next %d), want 10", next.Targets[0].TID, n)
	}
}
