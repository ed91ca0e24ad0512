package backing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/statefile"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

func fileLUN(path, typ, iomode string) *config.LUN {
	return &config.LUN{Type: typ, IOMode: iomode, Store: &config.Store{Kind: config.StoreFile, Path: path}}
}

func mustOpen(t *testing.T, l *config.LUN) Store {
	t.Helper()
	s, err := Open(l, OpenOptions{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenFileio(t *testing.T) {
	p := newTempFile(t, 1<<20)
	for _, c := range []struct {
		iomode  string
		wce, ro bool
	}{{"", false, false}, {"wt", false, false}, {"wb", true, false}, {"ro", false, true}} {
		t.Run("iomode="+c.iomode, func(t *testing.T) {
			s := mustOpen(t, fileLUN(p, "fileio", c.iomode))
			if s.Size() != 1<<20 {
				t.Fatalf("size %d", s.Size())
			}
			if got := s.(WriteCacher).WriteCacheEnabled(); got != c.wce {
				t.Fatalf("WriteCacheEnabled = %v, want %v", got, c.wce)
			}
			_, err := s.WriteAt(make([]byte, 512), 0)
			if c.ro {
				expectErr(t, "ro write", err, ErrReadOnly)
			} else if err != nil {
				t.Fatal(err)
			}
			if bs, ok := s.(BlockSizer); !ok || bs.LogicalBlockSize() != 512 {
				t.Fatalf("BlockSizer on a regular file: %v", ok)
			}
		})
	}
}

func TestOpenBlocksLimitsSize(t *testing.T) {
	p := newTempFile(t, 1<<20)
	l := fileLUN(p, "fileio", "")
	l.Blocks, l.BlockSize = 100, 4096
	s := mustOpen(t, l)
	if s.Size() != 100*4096 {
		t.Fatalf("size %d, want %d", s.Size(), 100*4096)
	}
	_, err := s.WriteAt(make([]byte, 4096), 100*4096)
	expectErr(t, "past Blocks", err, ErrRange)
	// Blocks larger than the file cannot enlarge it.
	l.Blocks = 1 << 30
	if s2 := mustOpen(t, l); s2.Size() != 1<<20 {
		t.Fatalf("size %d after oversize Blocks", s2.Size())
	}
}

func TestOpenNullio(t *testing.T) {
	s := mustOpen(t, &config.LUN{Type: "nullio"})
	if s.Size() != 1<<36 {
		t.Fatalf("default nullio size %d, want 64 GiB", s.Size())
	}
	s = mustOpen(t, &config.LUN{Type: "nullio", Blocks: 2097152, BlockSize: 4096})
	if s.Size() != 2097152*4096 {
		t.Fatalf("nullio size %d", s.Size())
	}
	if _, err := Open(&config.LUN{Type: "nullio", Blocks: 1 << 62}, OpenOptions{}); err == nil {
		t.Fatal("absurd nullio size accepted")
	}
}

func TestOpenErrors(t *testing.T) {
	for name, l := range map[string]*config.LUN{
		"nil store":    {Type: "fileio"},
		"bad type":     fileLUN("/dev/null", "rawio", ""),
		"missing file": fileLUN(filepath.Join(t.TempDir(), "nope"), "fileio", ""),
		"mirror of one": {Type: "fileio", Store: &config.Store{Kind: config.StoreMirror, Name: "d",
			Members: []*config.Store{{Kind: config.StoreFile, Path: newTempFile(t, 10)}}}},
		"empty concat": {Type: "fileio", Store: &config.Store{Kind: config.StoreConcat, Name: "d"}},
	} {
		if s, err := Open(l, OpenOptions{}); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
	if _, err := Open(nil, OpenOptions{}); err == nil {
		t.Fatal("nil LUN accepted")
	}
}

func TestOpenNetBSDCreateSparse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "target0")
	const off, size = 4096, 100 << 20
	l := &config.LUN{Type: "fileio", Store: &config.Store{Kind: config.StoreFile, Name: "extent0",
		Path: p, Offset: off, Size: size, Create: true}}
	s := mustOpen(t, l)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != off+size {
		t.Fatalf("created file is %d bytes, want %d", st.Size(), off+size)
	}
	if a := allocated(t, p); a > 1<<20 {
		t.Fatalf("created file not sparse: %d bytes allocated", a)
	}
	if s.Size() != size {
		t.Fatalf("store size %d", s.Size())
	}
	mustWrite(t, s, pattern(1, 512), size-512)
	s.Close()
	// Reopening never grows (or shrinks) an existing file.
	s2 := mustOpen(t, l)
	if st, _ := os.Stat(p); st.Size() != off+size {
		t.Fatalf("file is %d bytes after reopen", st.Size())
	}
	equalBytes(t, "last block", mustRead(t, s2, 512, size-512), pattern(1, 512))

	// A longer existing file is not shrunk.
	long := filepath.Join(dir, "long")
	if err := os.WriteFile(long, bytes.Repeat([]byte{7}, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, &config.LUN{Store: &config.Store{Kind: config.StoreFile, Path: long, Size: 4096, Create: true}})
	if st, _ := os.Stat(long); st.Size() != 10000 {
		t.Fatalf("existing file resized to %d", st.Size())
	}
	// Read-only targets never create files.
	missing := filepath.Join(dir, "missing")
	_, err = Open(&config.LUN{IOMode: "ro", Store: &config.Store{Kind: config.StoreFile, Path: missing, Size: 4096, Create: true}}, OpenOptions{})
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ro create: %v", err)
	}
}

func TestOpenNetBSDRaid(t *testing.T) {
	dir := t.TempDir()
	ext := func(name string, off, size int64) *config.Store {
		return &config.Store{Kind: config.StoreFile, Name: name, Path: filepath.Join(dir, "disk"), Offset: off, Size: size, Create: true}
	}
	// Two extents of one file concatenated in reverse order, then mirrored
	// with a third extent elsewhere in the same file.
	raid0 := &config.Store{Kind: config.StoreConcat, Name: "device0", Members: []*config.Store{ext("e1", 8192, 8192), ext("e0", 0, 8192)}}
	raid1 := &config.Store{Kind: config.StoreMirror, Name: "device1", Members: []*config.Store{raid0, ext("e2", 1<<20, 16384)}}
	s := mustOpen(t, &config.LUN{Type: "fileio", IOMode: "wb", Store: raid1})
	if s.Size() != 16384 {
		t.Fatalf("size %d", s.Size())
	}
	data := pattern(3, 16384)
	mustWrite(t, s, data, 0)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "disk"))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1<<20+16384 {
		t.Fatalf("file is %d bytes", len(raw))
	}
	equalBytes(t, "e1 holds the first half", raw[8192:16384], data[:8192])
	equalBytes(t, "e0 holds the second half", raw[:8192], data[8192:])
	equalBytes(t, "e2 mirrors everything", raw[1<<20:], data)
	h := MirrorHealth(s)
	if len(h) != 1 || len(h[0]) != 2 || h[0][0].Name != "device0" || h[0][1].Name != "e2" || h[0][0].Failed {
		t.Fatalf("health %+v", h)
	}
}

func TestOpenBlockioFallback(t *testing.T) {
	// An extent window that is not sector-aligned cannot use O_DIRECT
	// without touching bytes outside it: blockio falls back to the page
	// cache and says so.
	p := newTempFile(t, 1<<20)
	logger, hook := test.NewNullLogger()
	l := &config.LUN{Type: "blockio", Store: &config.Store{Kind: config.StoreFile, Path: p, Offset: 100, Size: 5000}}
	s, err := Open(l, OpenOptions{Log: logrus.NewEntry(logger)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.(*FileStore).Direct() {
		t.Fatal("unaligned window opened O_DIRECT")
	}
	if e := hook.LastEntry(); e == nil || e.Level != logrus.WarnLevel {
		t.Fatalf("no warning logged: %+v", e)
	}
	checkOps(t, s, make([]byte, 5000), 1, 100, 3000, 1, true)

	// An aligned file on a disk file system does use O_DIRECT.
	d := mustOpen(t, fileLUN(p, "blockio", "wb"))
	if !d.(*FileStore).Direct() {
		t.Skip("this file system refuses O_DIRECT")
	}
	checkOps(t, d, mustRead(t, d, 1<<20, 0), 2, 200, 70000, 1, true)
}

func TestOpenBlockioTmpfs(t *testing.T) {
	dir, err := os.MkdirTemp("/dev/shm", "backing-test")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := filepath.Join(dir, "img")
	if err := os.WriteFile(p, make([]byte, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	// tmpfs refuses O_DIRECT on older kernels, accepts it from 6.6: either
	// way the store must work.
	s := mustOpen(t, fileLUN(p, "blockio", ""))
	checkOps(t, s, make([]byte, 1<<16), 4, 100, 10000, 1, true)
}

// A grown file is seen by Refresh (SIGHUP reload: CAPACITY DATA HAS
// CHANGED); a store whose size the config fixed keeps it.
func TestFileRefreshSeesGrowth(t *testing.T) {
	p := newTempFile(t, 1<<20)
	s := mustOpen(t, fileLUN(p, "fileio", ""))
	if err := os.Truncate(p, 3<<20); err != nil {
		t.Fatal(err)
	}
	r, ok := s.(interface{ Refresh() (int64, error) })
	if !ok {
		t.Fatalf("%T has no Refresh", s)
	}
	if n, err := r.Refresh(); err != nil || n != 3<<20 || s.Size() != 3<<20 {
		t.Fatalf("Refresh after growing to 3 MiB: %d, %v (Size %d)", n, err, s.Size())
	}
	if _, err := s.WriteAt(make([]byte, 512), 3<<20-512); err != nil {
		t.Fatalf("write in the grown part: %v", err)
	}
	fixed, err := openFile(fileOptions{Path: p, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer fixed.Close()
	if n, _ := fixed.Refresh(); n != 1<<20 {
		t.Fatalf("a fixed-size window changed size on Refresh: %d", n)
	}
}

// Open with a StateDir applies a RAID1 device's failure record.
func TestOpenMirrorUsesFailureRecord(t *testing.T) {
	dir := t.TempDir()
	p0, p1 := filepath.Join(dir, "m0"), filepath.Join(dir, "m1")
	for _, p := range []string{p0, p1} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	rec := mirrorStatePath(state, "device0")
	if err := statefile.Write(rec, []byte(`{"device":"device0","failed":[{"member":"`+p0+`","error":"EIO"}]}`)); err != nil {
		t.Fatal(err)
	}
	l := &config.LUN{Type: "fileio", IOMode: "wb", Store: &config.Store{Kind: config.StoreMirror, Name: "device0",
		Members: []*config.Store{{Kind: config.StoreFile, Path: p0}, {Kind: config.StoreFile, Path: p1}}}}
	s, err := Open(l, OpenOptions{StateDir: state})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := MirrorHealth(s)
	if len(h) != 1 || !h[0][0].Failed || h[0][1].Failed {
		t.Fatalf("health %+v", h)
	}
	s2, err := Open(l, OpenOptions{}) // no state directory: nothing recorded
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if h := MirrorHealth(s2); h[0][0].Failed {
		t.Fatalf("health without a state dir %+v", h)
	}
}

// Type=blockio on a regular file: IET refused it ("block device only");
// we keep serving it (a config that runs must keep running) and say so.
func TestBlockioOnRegularFileWarns(t *testing.T) {
	p := newTempFile(t, 1<<20)
	for _, typ := range []string{"blockio", "fileio"} {
		logger, hook := test.NewNullLogger()
		s, err := Open(fileLUN(p, typ, "wt"), OpenOptions{Log: logrus.NewEntry(logger)})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		s.Close()
		warned := 0
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel && e.Message == BlockioOnFileNote(p) && e.Data["path"] == p {
				warned++
			}
		}
		if want := map[string]int{"blockio": 1, "fileio": 0}[typ]; warned != want {
			t.Errorf("%s: %d blockio-on-a-file warnings, want %d: %v", typ, warned, want, hook.AllEntries())
		}
	}
}

// TestReadOnlyWindowPastEnd: a read-only window whose offset is at or
// past the end of its file holds no data and is refused (NetBSD failed
// every read); one that runs past the end is served with a warning, as
// reads there return zeros. A probe (--check) opens the same way, and a
// read-write window on a short file is extended by a start, not by a
// probe.
func TestReadOnlyWindowPastEnd(t *testing.T) {
	p := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(p, make([]byte, 100<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	window := func(off, size int64, iomode string) *config.LUN {
		return &config.LUN{Type: "fileio", IOMode: iomode, Store: &config.Store{Kind: config.StoreFile, Path: p, Offset: off, Size: size, Create: true}}
	}
	for _, probe := range []bool{false, true} {
		if _, err := Open(window(100<<10, 1<<20, "ro"), OpenOptions{Probe: probe}); err == nil || !strings.Contains(err.Error(), "offset 102400 is at or past the end of the file (102400 bytes)") {
			t.Errorf("probe %v: offset past the end: %v", probe, err)
		}
		logger, hook := test.NewNullLogger()
		s, err := Open(window(0, 1<<20, "ro"), OpenOptions{Log: logrus.NewEntry(logger), Probe: probe})
		if err != nil {
			t.Fatalf("probe %v: %v", probe, err)
		}
		s.Close()
		if e := hook.LastEntry(); e == nil || e.Level != logrus.WarnLevel || !strings.Contains(e.Message, "reads past byte 102400 return zeros") {
			t.Errorf("probe %v: warning %v", probe, e)
		}
	}
	s, err := Open(window(0, 1<<20, "wb"), OpenOptions{Probe: true})
	if err != nil || s.Size() != 1<<20 {
		t.Fatalf("probe of a short read-write file: %v", err)
	}
	s.Close()
	if fi, _ := os.Stat(p); fi.Size() != 100<<10 {
		t.Fatalf("the probe extended the file to %d bytes", fi.Size())
	}
	s = mustOpen(t, window(0, 1<<20, "wb"))
	if fi, _ := os.Stat(p); fi.Size() != 1<<20 || s.Size() != 1<<20 {
		t.Fatalf("the start did not extend the file: %d bytes", fi.Size())
	}
}
