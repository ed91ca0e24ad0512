package backing

import (
	"bytes"
	"syscall"
	"testing"
	"time"
)

// busyStore opens a buffered regular file and marks its combiner busy, as
// if a leader were writing, so the writes the test starts queue up.
func busyStore(t *testing.T, size int64) (*FileStore, *writeCombiner) {
	t.Helper()
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, size)})
	if s.comb == nil {
		t.Fatal("a buffered regular file has no write combiner")
	}
	s.comb.mu.Lock()
	s.comb.busy = true
	s.comb.mu.Unlock()
	return s, s.comb
}

// queueWrite starts a write and waits until it is queued as the n-th.
func queueWrite(t *testing.T, s *FileStore, p []byte, off int64, n int, errs chan<- error) {
	t.Helper()
	go func() {
		_, err := s.WriteAt(p, off)
		errs <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.comb.mu.Lock()
		q := len(s.comb.queue)
		s.comb.mu.Unlock()
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("write %d was not queued", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// release ends the pretended leader's batch: the first queued write leads
// the queued ones, and the test waits for all n to complete.
func release(t *testing.T, c *writeCombiner, n int, errs <-chan error) {
	t.Helper()
	c.mu.Lock()
	c.queue[0].wake <- true
	c.mu.Unlock()
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy || len(c.queue) != 0 {
		t.Fatalf("combiner left busy=%v with %d queued", c.busy, len(c.queue))
	}
}

func TestCombinerStores(t *testing.T) {
	if s := mustOpenFile(t, fileOptions{Path: newTempFile(t, 1<<20), Direct: true}); s.comb != nil {
		t.Error("an O_DIRECT store combines its writes")
	}
	if s := mustOpenFile(t, fileOptions{Path: newTempFile(t, 1<<20), ReadOnly: true}); s.comb != nil {
		t.Error("a read-only store has a write combiner")
	}
}

// Adjacent writes queued out of order land in one pwritev, each with its
// own data.
func TestCombinerMergesAdjacentWrites(t *testing.T) {
	const bs, n = 4096, 16
	s, c := busyStore(t, n*bs)
	errs := make(chan error, n)
	want := make([]byte, n*bs)
	for i := 0; i < n; i++ {
		blk := (i * 7) % n // a permutation: arrival order is not offset order
		p := pattern(int64(blk+1), bs)
		copy(want[blk*bs:], p)
		queueWrite(t, s, p, int64(blk*bs), i+1, errs)
	}
	release(t, c, n, errs)
	if c.merged != 1 {
		t.Errorf("%d merged writes, want 1", c.merged)
	}
	equalBytes(t, "file", mustRead(t, s, n*bs, 0), want)
}

// Overlapping writes in one batch are written in arrival order: the later
// one's bytes win, though it starts at the lower offset.
func TestCombinerOverlapKeepsArrivalOrder(t *testing.T) {
	const bs = 4096
	s, c := busyStore(t, 4*bs)
	errs := make(chan error, 2)
	first := pattern(1, bs)    // block 1
	second := pattern(2, 2*bs) // blocks 0-1, arrives later
	queueWrite(t, s, first, bs, 1, errs)
	queueWrite(t, s, second, 0, 2, errs)
	release(t, c, 2, errs)
	equalBytes(t, "file", mustRead(t, s, 2*bs, 0), second)
}

// A merged write that fails is redone request by request.
func TestCombinerFailedMergeRedone(t *testing.T) {
	const bs, n = 4096, 4
	s, c := busyStore(t, n*bs)
	call := c.call
	fails := 0
	c.call = func(fd uintptr) {
		if fails == 0 {
			fails++
			c.n, c.errno = 0, syscall.EIO
			return
		}
		call(fd)
	}
	errs := make(chan error, n)
	want := make([]byte, n*bs)
	for i := 0; i < n; i++ {
		p := pattern(int64(i+10), bs)
		copy(want[i*bs:], p)
		queueWrite(t, s, p, int64(i*bs), i+1, errs)
	}
	release(t, c, n, errs)
	if fails != 1 || c.merged != 0 {
		t.Errorf("fails %d, merged %d; want 1 and 0", fails, c.merged)
	}
	equalBytes(t, "file", mustRead(t, s, n*bs, 0), want)
}

// Each request of a batch gets its own result: a write to a closed store
// fails, and so does every write queued behind it.
func TestCombinerClosedStore(t *testing.T) {
	const bs = 4096
	s, c := busyStore(t, 4*bs)
	errs := make(chan error, 2)
	queueWrite(t, s, pattern(1, bs), 0, 1, errs)
	queueWrite(t, s, pattern(2, bs), bs, 2, errs)
	if err := s.f.Close(); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	c.queue[0].wake <- true
	c.mu.Unlock()
	for i := 0; i < 2; i++ {
		if err := <-errs; err == nil {
			t.Error("a write to a closed file succeeded")
		}
	}
}

// Many writers, each writing its own blocks in sequence, interleave in the
// combiner; every block holds its writer's last data.
func TestCombinerManyWriters(t *testing.T) {
	const bs, writers, blocks, rounds = 4096, 32, 8, 20
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, writers*blocks*bs)})
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		go func() {
			for r := 0; r < rounds; r++ {
				for b := 0; b < blocks; b++ {
					blk := b*writers + w // writers' blocks interleave
					if _, err := s.WriteAt(pattern(int64(r*10000+blk), bs), int64(blk*bs)); err != nil {
						errs <- err
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < writers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	got := mustRead(t, s, writers*blocks*bs, 0)
	for blk := 0; blk < writers*blocks; blk++ {
		if !bytes.Equal(got[blk*bs:(blk+1)*bs], pattern(int64((rounds-1)*10000+blk), bs)) {
			t.Fatalf("block %d does not hold its last write", blk)
		}
	}
	t.Logf("%d merged writes", s.comb.merged)
}
