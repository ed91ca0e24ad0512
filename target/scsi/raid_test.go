package scsi

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

func raidTarget(t *testing.T, st backing.Store) (*Target, *Nexus) {
	t.Helper()
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:raid")
	tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "raid"}}}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) { return st, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	n := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tc.Name}
	tg.NexusAttach(n)
	run(tg, n, cdb(0, 6), nil)
	return tg, n
}

func readFileAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// A NetBSD RAID0 of two extents in different files, the second at an
// offset in its file (where the original put I/O for the second member
// on the first at the wrong place): a write spanning the boundary lands
// on both files at the right offsets, reads back whole through the LUN,
// and bytes outside the extents are never touched.
func TestRAID0WriteAcrossMembersLandsRight(t *testing.T) {
	dir := t.TempDir()
	p0, p1 := filepath.Join(dir, "e0"), filepath.Join(dir, "e1")
	const ext = 64 << 10 // extent length
	const off1 = 8192    // second extent's offset in its file
	guard := bytes.Repeat([]byte{0xee}, off1+ext+4096)
	for _, p := range []string{p0, p1} {
		if err := os.WriteFile(p, guard, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	lc := &config.LUN{Number: 0, Type: "fileio", IOMode: "wt", Store: &config.Store{Kind: config.StoreConcat, Name: "d0",
		Members: []*config.Store{
			{Kind: config.StoreFile, Name: "e0", Path: p0, Offset: 0, Size: ext},
			{Kind: config.StoreFile, Name: "e1", Path: p1, Offset: off1, Size: ext},
		}}}
	st, err := backing.Open(lc, backing.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tg, n := raidTarget(t, st)
	// 8 blocks from 4 blocks before the boundary: 2 KiB on each member.
	data := make([]byte, 8*512)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	lba := uint64(ext/512 - 4)
	if r := run(tg, n, rw16(0x8a, lba, 8, 0x08), data); r.Status != StatusGood {
		t.Fatalf("WRITE(16) FUA across the boundary: %+v", r)
	}
	if r := run(tg, n, rw16(0x88, lba, 8, 0), nil); r.Status != StatusGood || !bytes.Equal(r.Data, data) {
		t.Fatalf("READ(16) across the boundary: status %#x, data differs", r.Status)
	}
	if got := readFileAt(t, p0, ext-2048, 2048); !bytes.Equal(got, data[:2048]) {
		t.Fatal("first member's file lacks the first half at the end of its extent")
	}
	if got := readFileAt(t, p1, off1, 2048); !bytes.Equal(got, data[2048:]) {
		t.Fatal("second member's file lacks the second half at its extent's offset")
	}
	for _, c := range []struct {
		path string
		off  int64
		n    int
	}{{p0, ext, 4096}, {p1, 0, off1}, {p1, off1 + ext, 4096}} {
		if got := readFileAt(t, c.path, c.off, c.n); !bytes.Equal(got, guard[:c.n]) {
			t.Fatalf("%s: bytes at [%d,+%d) outside the extents were written", filepath.Base(c.path), c.off, c.n)
		}
	}
}

// RAID1 over two files: a leg that fails in the middle of a run of writes
// is taken out of service, the write that found it and every later one
// is GOOD from the other leg (which has them all), and reads come from
// the good leg.
func TestRAID1LegFailingMidWrite(t *testing.T) {
	dir := t.TempDir()
	var legs []*backing.Faulty
	var paths []string
	var members []backing.MirrorMember
	for _, name := range []string{"a", "b"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := backing.Open(&config.LUN{Type: "fileio", IOMode: "wb", Store: &config.Store{Kind: config.StoreFile, Path: p}}, backing.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f := backing.NewFaulty(s)
		legs, paths = append(legs, f), append(paths, p)
		members = append(members, backing.MirrorMember{Name: name, Store: f})
	}
	m := backing.NewMirror(nil, members...)
	tg, n := raidTarget(t, m)
	write := func(lba uint64, b byte, flags byte) []byte {
		d := bytes.Repeat([]byte{b}, 4096)
		if r := run(tg, n, rw16(0x8a, lba, 8, flags), d); r.Status != StatusGood {
			t.Fatalf("WRITE(16) at %d: %+v", lba, r)
		}
		return d
	}
	first := write(0, 0x01, 0)
	legs[0].FailRange(backing.OpWrite|backing.OpRead|backing.OpSync, 0, 1<<20, syscall.EIO)
	second := write(8, 0x02, 0x08) // found the failure: still GOOD, durable on b
	third := write(16, 0x03, 0)
	h := tg.StoreHealth(0)
	if len(h) != 1 || !h[0][0].Failed || h[0][1].Failed {
		t.Fatalf("StoreHealth after leg a failed: %+v", h)
	}
	if r := run(tg, n, cdb(0x35, 10), nil); r.Status != StatusGood {
		t.Fatalf("SYNCHRONIZE CACHE with one good leg: %+v", r)
	}
	legs[0].Clear() // a stale leg that answers again must not be read
	want := append(append(append([]byte{}, first...), second...), third...)
	if r := run(tg, n, rw16(0x88, 0, 24, 0), nil); r.Status != StatusGood || !bytes.Equal(r.Data, want) {
		t.Fatalf("READ after the failure: status %#x, data differs", r.Status)
	}
	if got := readFileAt(t, paths[1], 0, len(want)); !bytes.Equal(got, want) {
		t.Fatal("the good leg's file lacks writes acknowledged GOOD")
	}
	if got := readFileAt(t, paths[0], 8*512, 4096); bytes.Equal(got, second) {
		t.Fatal("the failed leg got the write that failed it: the fault was not injected")
	}
}
