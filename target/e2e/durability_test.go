//go:build linux

package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// durableWriter writes generations of blocks in its region and records,
// per block, the generation that must be durable: acknowledged with FUA,
// acknowledged on a write-through LUN, or covered by a SYNCHRONIZE CACHE
// that completed (or, for the control, merely acknowledged).
type durableWriter struct {
	id       uint32
	start    uint64
	blocks   int
	mode     string // "fua", "sync", "wt" or "plain"
	required []uint32
	maxSent  []uint32
	acked    []uint32 // acknowledged (for "sync": not yet covered by a sync)
	writes   int
	syncs    int
	err      error
}

func (w *durableWriter) run(addr, target string, frozen *atomic.Bool) {
	c, err := session(addr, target)
	if err != nil {
		w.err = err
		return
	}
	defer c.close()
	if _, _, err := c.capacity(0); err != nil {
		w.err = err
		return
	}
	rng := rand.New(rand.NewPCG(uint64(w.id), 11))
	buf := make([]byte, 16*512)
	syncCDB := make([]byte, 10)
	syncCDB[0] = 0x35 // SYNCHRONIZE CACHE(10), whole LUN
	for !frozen.Load() {
		n := 1 + rng.IntN(16)
		off := rng.IntN(w.blocks - n + 1)
		gens := make([]uint32, n)
		for i := range n {
			b := off + i
			w.maxSent[b]++
			gens[i] = w.maxSent[b]
			fillBlock(buf[i*512:(i+1)*512], w.id, w.start+uint64(b), gens[i])
		}
		r, err := c.write(0, w.start+uint64(off), buf[:n*512], 512, w.mode == "fua")
		if err != nil || frozen.Load() {
			return // acknowledged after the cut, or the daemon died: not counted
		}
		if !r.ok() {
			w.err = fmt.Errorf("writer %d: write: %v", w.id, r)
			return
		}
		w.writes++
		for i := range n {
			w.acked[off+i] = gens[i]
			if w.mode != "sync" {
				w.required[off+i] = gens[i]
			}
		}
		if w.mode == "sync" && w.writes%4 == 0 {
			r, err := c.command(0, syncCDB, nil, 0)
			if err != nil || frozen.Load() {
				return
			}
			if !r.ok() {
				w.err = fmt.Errorf("writer %d: SYNCHRONIZE CACHE: %v", w.id, r)
				return
			}
			w.syncs++
			copy(w.required, w.acked)
		}
	}
}

// check compares the platter with what must be durable; it returns the
// number of blocks whose required generation is missing.
func (w *durableWriter) check(t *testing.T, platter []byte, report bool) int {
	lost := 0
	want := make([]byte, 512)
	for b := range w.blocks {
		req := w.required[b]
		if req == 0 {
			continue
		}
		lba := w.start + uint64(b)
		got := platter[lba*512 : (lba+1)*512]
		gen := binary.BigEndian.Uint32(got[12:])
		ok := false
		if binary.BigEndian.Uint64(got) == lba && binary.BigEndian.Uint32(got[8:]) == w.id && gen >= req && gen <= w.maxSent[b] {
			fillBlock(want, w.id, lba, gen)
			ok = bytes.Equal(got, want)
		}
		if !ok {
			if lost++; report && lost <= 3 {
				t.Errorf("LOST WRITE (mode %s) at lba %d: generation %d was durable before the power cut, the store holds %s",
					w.mode, lba, req, describeBlock(got))
			}
		}
	}
	return lost
}

// TestKill9DurabilityBeyondPageCache: kill -9 leaves the page cache
// alive, so reading back after a restart cannot tell a LUN that syncs
// from one that only wrote to the cache. Here the LUN's file lives on a
// FUSE store served by the test with the kernel's write-back cache: a
// write reaches the store only when written back or synced. At the
// moment of a "power cut" the store stops taking writes, then the daemon
// is killed; every block acknowledged with FUA, on a write-through LUN,
// or followed by a completed SYNCHRONIZE CACHE (write-back, no FUA) must
// be on the store. The control (write-back, plain writes) shows that the
// method sees lost writes: some acknowledged blocks are not on the store.
func TestKill9DurabilityBeyondPageCache(t *testing.T) {
	t.Parallel()
	tl := reportTally("kill -9 + power cut, checked on the store behind the page cache")
	for _, m := range []struct{ mode, iomode string }{{"fua", "wb"}, {"sync", "wb"}, {"wt", "wt"}, {"plain", "wb"}} {
		t.Run(fmt.Sprintf("%s on IOMode %s", m.mode, m.iomode), func(t *testing.T) {
			t.Parallel()
			const writers, region = 4, 2048
			fs := mountFUSE(t, false, true, map[string]int64{"lun.img": writers * region * 512})
			dir := t.TempDir()
			iqn := "iqn.2026-01.org.ietgo.e2e:durable-" + m.mode
			d := startDaemon(t, dir, renderConf(t, nil, targetSpec{name: iqn, luns: []lunSpec{
				{n: 0, path: fs.path("lun.img"), iomode: m.iomode}}}))
			var frozen atomic.Bool
			ws := make([]*durableWriter, writers)
			var wg sync.WaitGroup
			for i := range ws {
				ws[i] = &durableWriter{id: uint32(i + 1), start: uint64(i * region), blocks: region, mode: m.mode,
					required: make([]uint32, region), maxSent: make([]uint32, region), acked: make([]uint32, region)}
				wg.Add(1)
				go func(w *durableWriter) { defer wg.Done(); w.run(d.addr, iqn, &frozen) }(ws[i])
			}
			time.Sleep(1500 * time.Millisecond)
			// Order matters: writers stop recording first, then the store
			// stops taking writes, then the daemon dies. Whatever a writer
			// recorded was acknowledged before the cut.
			frozen.Store(true)
			fs.powerCut()
			d.kill9()
			wg.Wait()
			platter := fs.file("lun.img").snapshot()
			_, fsyncs, _ := fs.file("lun.img").stats()
			total, syncs, lost, required := 0, 0, 0, 0
			for _, w := range ws {
				if w.err != nil {
					t.Fatal(w.err)
				}
				total += w.writes
				syncs += w.syncs
				for _, g := range w.required {
					if g > 0 {
						required++
					}
				}
				lost += w.check(t, platter, m.mode != "plain")
			}
			t.Logf("%d writes, %d SYNCHRONIZE CACHE acknowledged; %d blocks required on the store, %d missing; %d fsync requests reached the store",
				total, syncs, required, lost, fsyncs)
			if total < 20 || required == 0 {
				t.Fatalf("only %d writes acknowledged (%d blocks to check) before the cut", total, required)
			}
			if m.mode == "plain" {
				tl.add("control: wb, plain writes (no FUA, no sync)", fmt.Sprintf("acknowledged blocks missing from the store=%v", lost > 0))
				if lost == 0 {
					t.Errorf("control: every acknowledged plain write on a write-back LUN was on the store at the cut: the test cannot tell a sync from none")
				}
				return
			}
			tl.add(fmt.Sprintf("%s on IOMode %s", m.mode, m.iomode), fmt.Sprintf("lost=%d, fsync reached the store=%v", lost, fsyncs > 0))
			if fsyncs == 0 {
				t.Errorf("no fsync request reached the store: %s writes were never synced", m.mode)
			}
			if m.mode == "sync" && syncs == 0 {
				t.Fatal("no SYNCHRONIZE CACHE completed before the cut")
			}
		})
	}
}
