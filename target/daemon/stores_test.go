package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

func fileLUN(n uint64, path string, line int) *config.LUN {
	return &config.LUN{Number: n, Type: "fileio", Store: &config.Store{Path: path},
		Pos: config.Position{File: "/etc/iet/ietd.conf", Line: line, Col: 2}}
}

func TestCheckStores(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.img")
	if err := os.WriteFile(good, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(dir, "gone.img") // served, then deleted
	missing := filepath.Join(dir, "missing.img")
	cur := &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:a")}}
	cur.Targets[0].LUNs = []*config.LUN{fileLUN(0, gone, 2)}

	next := cur.Clone()
	next.Targets[0].LUNs = append(next.Targets[0].LUNs, fileLUN(1, good, 3))
	if err := CheckStores(cur, next); err != nil {
		t.Fatalf("unchanged LUN 0 must not be re-opened, LUN 1 opens: %v", err)
	}

	next.Targets[0].LUNs = append(next.Targets[0].LUNs, fileLUN(2, missing, 4), fileLUN(3, missing+"2", 5))
	err := CheckStores(cur, next)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing files: %v", err)
	}
	for _, want := range []string{"/etc/iet/ietd.conf:4:2", "/etc/iet/ietd.conf:5:2", "missing.img", "lun 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q (every failure, with its position)", err, want)
		}
	}

	// A LUN whose definition changed is opened again.
	changed := cur.Clone()
	changed.Targets[0].LUNs[0].IOMode = "ro"
	if err := CheckStores(cur, changed); err == nil {
		t.Fatal("changed LUN on a deleted file was not checked")
	}

	// New targets are left to the engine (it opens them as a whole).
	added := cur.Clone()
	nt := config.NewTarget(2, "iqn.x:b")
	nt.LUNs = []*config.LUN{fileLUN(0, missing, 9)}
	added.Targets = append(added.Targets, nt)
	if err := CheckStores(cur, added); err != nil {
		t.Fatalf("new target: %v", err)
	}
}
