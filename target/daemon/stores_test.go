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

	// New targets are checked too (the engine leaves out a LUN it
	// cannot serve, and the model would still hold it).
	added := cur.Clone()
	nt := config.NewTarget(2, "iqn.x:b")
	nt.LUNs = []*config.LUN{fileLUN(0, missing, 9)}
	added.Targets = append(added.Targets, nt)
	if err := CheckStores(cur, added); err == nil || !strings.Contains(err.Error(), "/etc/iet/ietd.conf:9:2") {
		t.Fatalf("new target with a missing file: %v", err)
	}
}

// TestCheckStoresServes: what the SCSI layer refuses to serve is refused
// before the change (a store that opens but holds no whole block).
func TestCheckStoresServes(t *testing.T) {
	dir := t.TempDir()
	empty, small := filepath.Join(dir, "empty.img"), filepath.Join(dir, "small.img")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(small, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	cur := &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:a")}}
	next := cur.Clone()
	big := fileLUN(1, small, 3)
	big.BlockSize = 4096
	next.Targets[0].LUNs = []*config.LUN{fileLUN(0, empty, 2), big}
	err := CheckStores(cur, next)
	for _, want := range []string{
		"/etc/iet/ietd.conf:2:2: target iqn.x:a: LUN 0: backing store of 0 bytes is smaller than one 512-byte block",
		"/etc/iet/ietd.conf:3:2: target iqn.x:a: LUN 1: backing store of 2048 bytes is smaller than one 4096-byte block",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	big.BlockSize = 1024
	next.Targets[0].LUNs = []*config.LUN{big}
	if err := CheckStores(cur, next); err != nil {
		t.Fatalf("2048 bytes in 1024-byte blocks: %v", err)
	}
}

// TestSameLUNIgnoresPositions: a LUN the start left out is recognised in
// a reload although lines above it moved (its store's and members'
// positions moved too); any other difference counts.
func TestSameLUNIgnoresPositions(t *testing.T) {
	mk := func(line int, path string) *config.LUN {
		l := fileLUN(0, path, line)
		l.Store.Pos = config.Position{File: "f", Line: line, Col: 3}
		l.Store.Members = []*config.Store{{Kind: config.StoreFile, Path: path, Pos: config.Position{File: "f", Line: line + 1}}}
		return l
	}
	if !sameLUN(mk(3, "/a"), mk(9, "/a")) {
		t.Error("the same LUN two lines lower is not the same")
	}
	b := mk(3, "/a")
	b.Store.Members[0].Path = "/b"
	if sameLUN(mk(3, "/a"), b) {
		t.Error("a different member is the same")
	}
	c := mk(3, "/a")
	c.IOMode = "wb"
	if sameLUN(mk(3, "/a"), c) {
		t.Error("a different IOMode is the same")
	}
}

// TestCheckStoresChangesNoFile: a check creates and extends nothing,
// whether the change is refused or accepted (the engine does that when
// it applies it), and sizes a store as the start that follows will: a
// file it creates or extends has its Size.
func TestCheckStoresChangesNoFile(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.img")
	if err := os.WriteFile(short, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	create := func(n uint64, path string, size int64, bs int) *config.LUN {
		l := fileLUN(n, path, int(n)+2)
		l.Store.Size, l.Store.Create, l.BlockSize = size, true, bs
		return l
	}
	cur := &config.Config{Targets: []*config.Target{config.NewTarget(1, "iqn.x:a")}}
	refused := cur.Clone()
	refused.Targets[0].LUNs = []*config.LUN{
		create(0, filepath.Join(dir, "new.img"), 1000, 4096), // refused
		create(1, filepath.Join(dir, "fine.img"), 1<<20, 512),
		create(2, short, 1<<20, 512),
	}
	err := CheckStores(cur, refused)
	if err == nil || !strings.Contains(err.Error(), "LUN 0: backing store of 1000 bytes is smaller than one 4096-byte block") ||
		strings.Contains(err.Error(), "LUN 1") || strings.Contains(err.Error(), "LUN 2") {
		t.Fatalf("CheckStores: %v, want LUN 0 (only) refused", err)
	}
	accepted := cur.Clone()
	accepted.Targets[0].LUNs = []*config.LUN{create(3, short, 8192, 4096)} // 2048 bytes now, 8192 at start
	if err := CheckStores(cur, accepted); err != nil {
		t.Fatalf("a file a start extends to two 4096-byte blocks: %v", err)
	}
	for _, p := range []string{"new.img", "fine.img"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the check created it (%v)", p, err)
		}
	}
	if fi, err := os.Stat(short); err != nil {
		t.Error(err)
	} else if fi.Size() != 2048 {
		t.Errorf("short.img: the check extended it to %d bytes", fi.Size())
	}
}
