package backing

import (
	"os"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeCombiner runs the buffered writes of one regular file one batch at
// a time and merges the adjacent ones of a batch into one pwritev.
//
// Such a file system (ext4, XFS, btrfs, tmpfs) takes the inode lock
// exclusively for every buffered write, so concurrent writes to one file
// never ran in parallel anyway. Here they queue in Go instead: the first
// writer becomes the leader and writes its own request; requests that
// arrive meanwhile form the next batch, which the leader hands to the
// first of them. Every goroutine leads at most the one batch holding its
// own request, so a busy file never holds a writer back for more than
// one batch after its own. A sequential stream of small writes at queue
// depth (an initiator's 4 KiB writes, QD32) then costs one system call
// per batch instead of one per command. A write-through file or block
// device (fileio) is opened without O_DSYNC and its leader ends each
// batch with one fdatasync
// before any of the batch's writes completes (sync): group commit, one
// device flush per batch instead of one per write.
//
// Only adjacent, non-overlapping requests merge. A batch is written in
// offset order when no two of its requests overlap, otherwise in arrival
// order; the requests of one batch were all in flight together, so
// either order is one the initiator allowed. A merged write that fails or
// comes back short is redone request by request, so every request gets
// its own exact result (rewriting the same bytes at the same place is
// harmless; no other write to the file runs meanwhile).
type writeCombiner struct {
	f   *os.File
	raw syscall.RawConn

	mu    sync.Mutex
	busy  bool         // a leader is writing a batch
	queue []*writeReq  // the next batch, in arrival order
	spare []*writeReq  // the array of the batch last written, for reuse
	order []*writeReq  // the leader's sorted copy of its batch
	iov   []unix.Iovec // the leader's iovecs

	// The leader's pwritev: call runs on the descriptor (built once, so a
	// batch allocates nothing), with its arguments and results here.
	call  func(fd uintptr)
	at    int64
	n     uintptr
	errno syscall.Errno
	// merged counts the merged writes that succeeded (for tests; only
	// the leader touches it).
	merged int

	// sync, when set (a write-through file opened without O_DSYNC), makes
	// a batch durable (fdatasync) before any of its writes completes.
	sync func() error
}

func newWriteCombiner(f *os.File, raw syscall.RawConn) *writeCombiner {
	c := &writeCombiner{f: f, raw: raw}
	c.call = func(fd uintptr) {
		for {
			r, e := pwritev(fd, c.iov, c.at)
			if e != unix.EINTR {
				c.n, c.errno = r, e
				return
			}
		}
	}
	return c
}

// writeReq is one queued write. wake receives exactly one value: true
// when the request's goroutine is to lead the next batch (its request is
// in it), false when another leader wrote it (err holds the result).
type writeReq struct {
	p    []byte
	abs  int64
	err  error
	wake chan bool
}

var writeReqPool = sync.Pool{New: func() any { return &writeReq{wake: make(chan bool, 1)} }}

// Limits of one merged write: the kernel's IOV_MAX, and a size that keeps
// one system call short.
const (
	combineMaxIov   = 1024
	combineMaxBytes = 8 << 20
)

// write writes p at absolute offset abs through the combiner.
func (c *writeCombiner) write(p []byte, abs int64) error {
	r := writeReqPool.Get().(*writeReq)
	r.p, r.abs, r.err = p, abs, nil
	c.mu.Lock()
	c.queue = append(c.queue, r)
	if c.busy {
		c.mu.Unlock()
		if lead := <-r.wake; !lead {
			return r.done()
		}
		c.mu.Lock()
	}
	c.busy = true
	if c.sync != nil {
		// A batch costs a sync: let writers that are runnable already
		// (commands that arrived in the same burst) queue behind this
		// one before the batch is taken.
		c.mu.Unlock()
		runtime.Gosched()
		c.mu.Lock()
	}
	batch := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.mu.Unlock()

	c.run(batch)
	if c.sync != nil {
		c.syncBatch(batch)
	}

	for _, q := range batch {
		if q != r {
			q.wake <- false
		}
	}
	clear(batch)
	c.mu.Lock()
	c.spare = batch[:0]
	if len(c.queue) > 0 {
		c.queue[0].wake <- true // leads the next batch; busy stays set
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	return r.done()
}

// syncBatch makes the written requests of a batch durable; a failed sync
// fails each of them (and, sticky, every later one: see flusher).
func (c *writeCombiner) syncBatch(batch []*writeReq) {
	for _, q := range batch {
		if q.err == nil {
			if err := c.sync(); err != nil {
				for _, q := range batch {
					if q.err == nil {
						q.err = err
					}
				}
			}
			return
		}
	}
}

// done returns the request's result and the request to the pool.
func (r *writeReq) done() error {
	err := r.err
	r.p, r.err = nil, nil
	writeReqPool.Put(r)
	return err
}

// run writes one batch, merging adjacent requests.
// A single request, and each request of a merged write that failed, is
// written with os.File.WriteAt, which retries short writes and reports
// the error.
func (c *writeCombiner) run(batch []*writeReq) {
	ord := batch
	if len(batch) > 1 {
		c.order = append(c.order[:0], batch...)
		ord = c.order
		slices.SortStableFunc(ord, func(a, b *writeReq) int {
			switch {
			case a.abs < b.abs:
				return -1
			case a.abs > b.abs:
				return 1
			}
			return 0
		})
		for i := 1; i < len(ord); i++ {
			if ord[i-1].abs+int64(len(ord[i-1].p)) > ord[i].abs {
				ord = batch // overlap: keep arrival order
				break
			}
		}
	}
	for i := 0; i < len(ord); {
		j, size := i+1, int64(len(ord[i].p))
		for j < len(ord) && j-i < combineMaxIov &&
			ord[j].abs == ord[j-1].abs+int64(len(ord[j-1].p)) &&
			size+int64(len(ord[j].p)) <= combineMaxBytes {
			size += int64(len(ord[j].p))
			j++
		}
		if j-i == 1 || !havePwritev || !c.pwritev(ord[i:j], size) {
			for _, q := range ord[i:j] {
				_, q.err = c.f.WriteAt(q.p, q.abs)
			}
		}
		i = j
	}
	if len(batch) > 1 {
		clear(c.order[:len(batch)]) // the sorted copy, whichever order ran
		c.order = c.order[:0]
	}
}

// pwritev writes run (adjacent requests, size bytes in all) with one
// pwritev and reports whether all of it was written.
func (c *writeCombiner) pwritev(run []*writeReq, size int64) bool {
	iov := c.iov[:0]
	for _, q := range run {
		if len(q.p) == 0 {
			continue
		}
		v := unix.Iovec{Base: unsafe.SliceData(q.p)}
		v.SetLen(len(q.p))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return true
	}
	c.iov, c.at, c.n, c.errno = iov, run[0].abs, 0, 0
	err := c.raw.Control(c.call)
	clear(c.iov) // drop the references to the callers' buffers
	if err != nil || c.errno != 0 || int64(c.n) != size {
		return false
	}
	c.merged++
	return true
}
