//go:build linux

package e2e

// Verified I/O: block patterns that name their LBA, generation and writer,
// and an "honest" session that writes and reads back a region in a loop.

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

// fillBlock fills b (one block) with the pattern of (writer, lba, gen).
func fillBlock(b []byte, writer uint32, lba uint64, gen uint32) {
	binary.BigEndian.PutUint64(b[0:], lba)
	binary.BigEndian.PutUint32(b[8:], writer)
	binary.BigEndian.PutUint32(b[12:], gen)
	x := uint64(writer)<<48 ^ lba<<16 ^ uint64(gen) ^ 0x9e3779b97f4a7c15
	for i := 16; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(b[i:], x)
	}
}

// describeBlock says what a block holds (for mismatch messages).
func describeBlock(b []byte) string {
	if len(b) < 16 {
		return "short block"
	}
	if bytes.Count(b, []byte{0}) == len(b) {
		return "zeros"
	}
	return fmt.Sprintf("lba=%d writer=%d gen=%d", binary.BigEndian.Uint64(b), binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:]))
}

// honest is a session doing verified write/read-back I/O in its own region.
type honest struct {
	name      string
	addr      string
	target    string
	lun       uint64
	start     uint64 // first LBA of the region
	blocks    uint64 // region size in blocks
	blockSize int
	writer    uint32
	maxXfer   int // blocks per command

	// retryUA makes the session behave like a real initiator on a UNIT
	// ATTENTION (reload, reset): count it and retry the command (up to 3
	// times). Off, any CHECK CONDITION is an error.
	retryUA bool
	uas     atomic.Int64

	ops     atomic.Int64
	bytes   atomic.Int64
	lastOps int64
	mu      sync.Mutex
	err     error
	stopCh  chan struct{}
	done    chan struct{}
}

// startHonest logs in and starts the loop; it stops in t.Cleanup at the
// latest.
func startHonest(t testing.TB, addr, target string, lun, start, blocks uint64, writer uint32) *honest {
	t.Helper()
	return startHonestOpts(t, &honest{addr: addr, target: target, lun: lun, start: start, blocks: blocks, writer: writer})
}

// startHonestOpts starts h (addr, target, lun, start, blocks, writer and
// options set by the caller).
func startHonestOpts(t testing.TB, h *honest) *honest {
	t.Helper()
	h.name = fmt.Sprintf("honest#%d", h.writer)
	h.maxXfer, h.stopCh, h.done = 64, make(chan struct{}), make(chan struct{})
	addr, target, lun := h.addr, h.target, h.lun
	c, err := session(addr, target)
	if err != nil {
		t.Fatalf("%s: %v", h.name, err)
	}
	_, bs, err := c.capacity(lun)
	if err != nil {
		c.close()
		t.Fatalf("%s: %v", h.name, err)
	}
	h.blockSize = bs
	go h.loop(c)
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *honest) fail(err error) {
	h.mu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.mu.Unlock()
}

func (h *honest) error() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *honest) loop(c *clientConn) {
	defer close(h.done)
	defer c.close()
	gens := make([]uint32, h.blocks) // 0 = never written by us
	rng := rand.New(rand.NewPCG(uint64(h.writer), 7))
	buf := make([]byte, h.maxXfer*h.blockSize)
	for {
		select {
		case <-h.stopCh:
			if err := c.logout(); err != nil {
				h.fail(fmt.Errorf("%s: logout: %w", h.name, err))
			}
			return
		default:
		}
		n := 1 + rng.IntN(min(h.maxXfer, int(h.blocks)))
		off := uint64(rng.IntN(int(h.blocks) - n + 1))
		data := buf[:n*h.blockSize]
		for i := range n {
			gens[off+uint64(i)]++
			fillBlock(data[i*h.blockSize:(i+1)*h.blockSize], h.writer, h.start+off+uint64(i), gens[off+uint64(i)])
		}
		fua := rng.IntN(4) == 0
		r, err := h.retry(func() (*scsiResult, error) { return c.write(h.lun, h.start+off, data, h.blockSize, fua) })
		if err != nil {
			h.fail(fmt.Errorf("%s: write lba %d+%d: %w", h.name, h.start+off, n, err))
			return
		}
		if !r.ok() {
			h.fail(fmt.Errorf("%s: write lba %d+%d: %v", h.name, h.start+off, n, r))
			return
		}
		// Read back a random range overlapping what we own.
		m := 1 + rng.IntN(min(h.maxXfer, int(h.blocks)))
		roff := uint64(rng.IntN(int(h.blocks) - m + 1))
		r, err = h.retry(func() (*scsiResult, error) { return c.read(h.lun, h.start+roff, m, h.blockSize) })
		if err != nil {
			h.fail(fmt.Errorf("%s: read lba %d+%d: %w", h.name, h.start+roff, m, err))
			return
		}
		if !r.ok() || len(r.data) != m*h.blockSize {
			h.fail(fmt.Errorf("%s: read lba %d+%d: %v (%d bytes)", h.name, h.start+roff, m, r, len(r.data)))
			return
		}
		want := make([]byte, h.blockSize)
		for i := range m {
			g := gens[roff+uint64(i)]
			if g == 0 {
				continue
			}
			fillBlock(want, h.writer, h.start+roff+uint64(i), g)
			got := r.data[i*h.blockSize : (i+1)*h.blockSize]
			if !bytes.Equal(got, want) {
				h.fail(fmt.Errorf("%s: DATA MISMATCH at lba %d: want %s, got %s", h.name, h.start+roff+uint64(i), describeBlock(want), describeBlock(got)))
				return
			}
		}
		h.ops.Add(2)
		h.bytes.Add(int64((n + m) * h.blockSize))
	}
}

// retry runs cmd, retrying after unit attentions when retryUA is set.
func (h *honest) retry(cmd func() (*scsiResult, error)) (*scsiResult, error) {
	for try := 0; ; try++ {
		r, err := cmd()
		if err != nil || !h.retryUA || try == 3 || !(r.status == 0x02 && r.hasSense && r.sense.key == 0x6) {
			return r, err
		}
		h.uas.Add(1)
	}
}

// checkpoint asserts that the session made progress since the last
// checkpoint (waiting up to d) and saw no error.
func (h *honest) checkpoint(t testing.TB, what string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for h.ops.Load() <= h.lastOps && time.Now().Before(deadline) && h.error() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	if err := h.error(); err != nil {
		t.Fatalf("honest session disturbed by %s: %v", what, err)
	}
	if h.ops.Load() <= h.lastOps {
		t.Fatalf("honest session made no progress within %v after %s", d, what)
	}
	h.lastOps = h.ops.Load()
}

// stop ends the loop (with a logout) and returns its error.
func (h *honest) stop() error {
	select {
	case <-h.stopCh:
	default:
		close(h.stopCh)
	}
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		h.fail(fmt.Errorf("%s: did not stop within 30s", h.name))
	}
	return h.error()
}
