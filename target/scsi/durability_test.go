package scsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/backing"
)

// durStore records whether the store holds data written (or unmapped)
// since its last sync: what a power failure could still lose. wc is what
// it reports as its write cache (IOMode wb: true, wt: false).
type durStore struct {
	backing.Store
	wc bool

	mu       sync.Mutex
	dirty    bool
	writes   int
	syncs    int
	failSync error // the next sync fails with it (once, as Linux reports it)
}

func (s *durStore) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.Store.WriteAt(p, off)
	s.mu.Lock()
	s.dirty, s.writes = true, s.writes+1
	s.mu.Unlock()
	return n, err
}

func (s *durStore) Unmap(off, n int64) error {
	err := s.Store.Unmap(off, n)
	s.mu.Lock()
	s.dirty, s.writes = true, s.writes+1
	s.mu.Unlock()
	return err
}

func (s *durStore) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncs++
	if err := s.failSync; err != nil {
		s.failSync = nil
		return &backing.Error{Op: "sync", Kind: backing.ErrIO, Err: err}
	}
	s.dirty = false
	return nil
}

func (s *durStore) Sync() error                  { return s.sync() }
func (s *durStore) SyncRange(off, n int64) error { return s.sync() }
func (s *durStore) WriteCacheEnabled() bool      { return s.wc }
func (s *durStore) CanUnmap() bool               { return true }

func (s *durStore) state() (dirty bool, writes, syncs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dirty, s.writes, s.syncs
}

// durCase is one write-type command at block lba; want is what the
// blocks from lba read afterwards (nil: not checked).
type durCase struct {
	name    string
	cdb     []byte
	out     []byte
	lba     uint64
	want    []byte
	durable bool // FUA or implied (WRITE AND VERIFY, SYNCHRONIZE CACHE): synced in wb too
	sync    bool // SYNCHRONIZE CACHE: writes nothing
}

func durCases(tg *Target) []durCase {
	const bs = 512
	blk := func(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n*bs) }
	w10 := func(op byte, lba uint32, n uint16, flags byte) []byte {
		c := cdb(op, 10)
		c[1] = flags
		binary.BigEndian.PutUint32(c[2:], lba)
		binary.BigEndian.PutUint16(c[7:], n)
		return c
	}
	w12 := func(op byte, lba, n uint32, flags byte) []byte {
		c := cdb(op, 12)
		c[1] = flags
		binary.BigEndian.PutUint32(c[2:], lba)
		binary.BigEndian.PutUint32(c[6:], n)
		return c
	}
	w6 := cdb(0x0a, 6)
	w6[3], w6[4] = 10, 2 // LBA 10, 2 blocks
	ws16 := func(lba uint64, n uint32, flags byte) []byte {
		c := rw16(0x93, lba, n, flags)
		return c
	}
	cawCDB := func(lba uint64, n byte, flags byte) []byte {
		c := cdb(0x89, 16)
		c[1] = flags
		binary.BigEndian.PutUint64(c[2:], lba)
		c[13] = n
		return c
	}
	atomic := func(lba uint64, n uint16, flags byte) []byte {
		c := cdb(0x9c, 16)
		c[1] = flags
		binary.BigEndian.PutUint64(c[2:], lba)
		binary.BigEndian.PutUint16(c[12:], n)
		return c
	}
	unmap := func(lba uint64, n uint32) ([]byte, []byte) {
		p := make([]byte, 24)
		binary.BigEndian.PutUint16(p[0:], 22)
		binary.BigEndian.PutUint16(p[2:], 16)
		binary.BigEndian.PutUint64(p[8:], lba)
		binary.BigEndian.PutUint32(p[16:], n)
		c := cdb(0x42, 10)
		binary.BigEndian.PutUint16(c[7:], uint16(len(p)))
		return c, p
	}
	umC, umP := unmap(400, 4)
	// EXTENDED COPY of 2 blocks within LUN 0: 10 (what WRITE(6) wrote
	// when it ran first, or whatever is there) to 500.
	xc, xp := (&xcopyRig{tg: tg}).list(0, 0, 2)
	binary.BigEndian.PutUint64(xp[len(xp)-28+12:], 600)
	binary.BigEndian.PutUint64(xp[len(xp)-28+20:], 500)
	sc10 := cdb(0x35, 10)
	sc10i := cdb(0x35, 10)
	sc10i[1] = 0x02 // IMMED
	sc16r := rw16(0x91, 20, 8, 0x02)
	orOld := blk(0x0f, 1)
	cases := []durCase{
		{name: "WRITE(6)", cdb: w6, out: blk(0x06, 2), lba: 10, want: blk(0x06, 2)},
		{name: "WRITE(10)", cdb: w10(0x2a, 20, 2, 0), out: blk(0x10, 2), lba: 20, want: blk(0x10, 2)},
		{name: "WRITE(10) FUA", cdb: w10(0x2a, 22, 2, 0x08), out: blk(0x11, 2), lba: 22, want: blk(0x11, 2), durable: true},
		{name: "WRITE(12)", cdb: w12(0xaa, 30, 2, 0), out: blk(0x12, 2), lba: 30, want: blk(0x12, 2)},
		{name: "WRITE(12) FUA", cdb: w12(0xaa, 32, 2, 0x08), out: blk(0x13, 2), lba: 32, want: blk(0x13, 2), durable: true},
		{name: "WRITE(16)", cdb: rw16(0x8a, 40, 2, 0), out: blk(0x16, 2), lba: 40, want: blk(0x16, 2)},
		{name: "WRITE(16) FUA", cdb: rw16(0x8a, 42, 2, 0x08), out: blk(0x17, 2), lba: 42, want: blk(0x17, 2), durable: true},
		{name: "WRITE AND VERIFY(10)", cdb: w10(0x2e, 50, 1, 0x02), out: blk(0x2e, 1), lba: 50, want: blk(0x2e, 1), durable: true},
		{name: "WRITE AND VERIFY(12)", cdb: w12(0xae, 51, 1, 0), out: blk(0xae, 1), lba: 51, want: blk(0xae, 1), durable: true},
		{name: "WRITE AND VERIFY(16)", cdb: rw16(0x8e, 52, 1, 0x02), out: blk(0x8e, 1), lba: 52, want: blk(0x8e, 1), durable: true},
		{name: "WRITE SAME(10)", cdb: w10(0x41, 60, 4, 0), out: blk(0x41, 1), lba: 60, want: blk(0x41, 4)},
		{name: "WRITE SAME(10) UNMAP", cdb: w10(0x41, 60, 4, 0x08), out: blk(0, 1), lba: 60, want: blk(0, 4)},
		{name: "WRITE SAME(16)", cdb: ws16(70, 4, 0), out: blk(0x93, 1), lba: 70, want: blk(0x93, 4)},
		{name: "WRITE SAME(16) UNMAP", cdb: ws16(70, 4, 0x08), out: blk(0, 1), lba: 70, want: blk(0, 4)},
		{name: "WRITE SAME(16) UNMAP pattern", cdb: ws16(74, 2, 0x08), out: blk(0x5a, 1), lba: 74, want: blk(0x5a, 2)},
		{name: "WRITE SAME(16) NDOB", cdb: ws16(78, 2, 0x01), lba: 78, want: blk(0, 2)},
		{name: "COMPARE AND WRITE", cdb: cawCDB(80, 1, 0), out: append(blk(0, 1), blk(0x89, 1)...), lba: 80, want: blk(0x89, 1)},
		{name: "COMPARE AND WRITE FUA", cdb: cawCDB(81, 1, 0x08), out: append(blk(0, 1), blk(0x8a, 1)...), lba: 81, want: blk(0x8a, 1), durable: true},
		{name: "ORWRITE", cdb: rw16(0x8b, 90, 1, 0), out: orOld, lba: 90, want: orOld},
		{name: "ORWRITE FUA", cdb: rw16(0x8b, 90, 1, 0x08), out: blk(0xf0, 1), lba: 90, want: blk(0xff, 1), durable: true},
		{name: "WRITE ATOMIC(16)", cdb: atomic(100, 2, 0), out: blk(0x9c, 2), lba: 100, want: blk(0x9c, 2)},
		{name: "WRITE ATOMIC(16) FUA", cdb: atomic(102, 2, 0x08), out: blk(0x9d, 2), lba: 102, want: blk(0x9d, 2), durable: true},
		{name: "UNMAP", cdb: umC, out: umP, lba: 400, want: blk(0, 4)},
		{name: "EXTENDED COPY", cdb: xc, out: xp, lba: 500},
		{name: "SYNCHRONIZE CACHE(10)", cdb: sc10, durable: true, sync: true},
		{name: "SYNCHRONIZE CACHE(10) IMMED", cdb: sc10i, durable: true, sync: true},
		{name: "SYNCHRONIZE CACHE(16) range IMMED", cdb: sc16r, durable: true, sync: true},
	}
	return cases
}

func execDur(tg *Target, n *Nexus, c durCase) Result {
	cmd := &Command{Nexus: n, CDB: c.cdb, DataOut: c.out, ExpectedLen: uint32(len(c.out))}
	return tg.Execute(context.Background(), cmd)
}

// Every write-type command answers GOOD only once its data is where the
// cache mode promises: on a write-through LUN (WCE=0) the store was asked
// to make it durable before the status; on a write-back LUN a FUA write,
// WRITE AND VERIFY and SYNCHRONIZE CACHE (IMMED or not, ranged or not)
// sync the store, and a plain write does not (the page cache is the
// promise). The data reads back.
func TestEveryWriteIsDurableAsTheCacheModePromises(t *testing.T) {
	for _, mode := range []string{"wb", "wt"} {
		st := &durStore{Store: backing.NewMemory(1 << 20), wc: mode == "wb"}
		tg, n := storeTargetMode(t, mode, st)
		for _, c := range durCases(tg) {
			t.Run(fmt.Sprintf("%s/%s", mode, c.name), func(t *testing.T) {
				// Something unsynced in the store before each command:
				// a sync that the command makes shows.
				if r := run(tg, n, rw16(0x8a, 1000, 1, 0), make([]byte, 512)); r.Status != StatusGood {
					t.Fatalf("setup write: %+v", r)
				}
				if mode == "wt" {
					st.mu.Lock()
					st.dirty = true
					st.mu.Unlock()
				}
				_, w0, s0 := st.state()
				r := execDur(tg, n, c)
				if r.Status != StatusGood {
					t.Fatalf("status %#x sense % x", r.Status, r.Sense)
				}
				dirty, w1, s1 := st.state()
				if !c.sync && w1 == w0 {
					t.Fatal("the command wrote nothing to the store")
				}
				if c.durable || mode == "wt" {
					if dirty || s1 == s0 {
						t.Fatalf("GOOD with data not synced (dirty %v, syncs %d -> %d)", dirty, s0, s1)
					}
				} else if s1 != s0 {
					t.Fatalf("a write-back command without FUA synced the store (%d -> %d syncs)", s0, s1)
				}
				if c.want != nil {
					rd := run(tg, n, rw16(0x88, c.lba, uint32(len(c.want)/512), 0), nil)
					if rd.Status != StatusGood || !bytes.Equal(rd.Data, c.want) {
						t.Fatalf("read back: status %#x, data differs from what was written", rd.Status)
					}
				}
			})
		}
	}
}

// After a failed sync, nothing that promises durability answers GOOD: on
// a write-through LUN no write-type command at all, on a write-back LUN
// no FUA write, WRITE AND VERIFY or SYNCHRONIZE CACHE. Each gets MEDIUM
// ERROR / WRITE ERROR.
func TestNothingDurableAfterAFailedSync(t *testing.T) {
	for _, mode := range []string{"wb", "wt"} {
		st := &durStore{Store: backing.NewMemory(1 << 20), wc: mode == "wb"}
		tg, n := storeTargetMode(t, mode, st)
		st.mu.Lock()
		st.failSync = syscall.EIO
		st.mu.Unlock()
		if r := run(tg, n, cdb(0x35, 10), nil); senseKey(r) != keyMediumError || senseASC(r) != ascWriteError {
			t.Fatalf("%s: SYNCHRONIZE CACHE on a failing store: %+v", mode, r)
		}
		for _, c := range durCases(tg) {
			r := execDur(tg, n, c)
			switch {
			case c.cdb[0] == 0x83 && mode == "wt":
				// The copy manager's form of a write error.
				if senseKey(r) != keyCopyAborted || senseASC(r) != ascWriteError {
					t.Errorf("%s/%s after a failed sync: status %#x sense % x, want COPY ABORTED / WRITE ERROR",
						mode, c.name, r.Status, r.Sense)
				}
			case c.durable || mode == "wt":
				if r.Status == StatusGood || senseKey(r) != keyMediumError || senseASC(r) != ascWriteError {
					t.Errorf("%s/%s after a failed sync: status %#x sense % x, want MEDIUM ERROR / WRITE ERROR",
						mode, c.name, r.Status, r.Sense)
				}
			case r.Status != StatusGood:
				t.Errorf("%s/%s (write-back, nothing promised) after a failed sync: status %#x sense % x",
					mode, c.name, r.Status, r.Sense)
			}
		}
	}
}
