package pdu

import "sync/atomic"

// BufPool hands out data buffers in size classes and keeps free buffers
// of any class up to one shared byte limit (maxRetained), so the memory it
// retains is bounded while the classes in use take the room: a daemon
// moving 1 MiB I/Os keeps 1 MiB buffers, not a fixed share of 4 KiB ones
// (a fixed per-class share left room for three 1 MiB buffers, and queue
// depth 8 then allocated and cleared a fresh MiB per command). Buffers larger than the biggest
// class are allocated on demand and never retained. Get never blocks;
// callers bound how many buffers they hold (the CmdSN window does).
//
// Free lists are buffered channels of slices: sending a slice through a
// channel copies the slice header and does not allocate, unlike putting
// it in a sync.Pool.
type BufPool struct {
	classes     []int
	free        []chan []byte
	maxRetained int64
	retained    atomic.Int64 // bytes of capacity sitting in free
	allocated   atomic.Int64 // buffers Get had to make
}

// DefaultClasses are the size classes of NewBufPool(nil, ...).
var DefaultClasses = []int{4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20}

// NewBufPool builds a pool with the given ascending classes (nil =
// DefaultClasses) retaining at most maxRetained bytes of free buffers.
func NewBufPool(classes []int, maxRetained int) *BufPool {
	if classes == nil {
		classes = DefaultClasses
	}
	p := &BufPool{classes: classes, free: make([]chan []byte, len(classes)), maxRetained: int64(maxRetained)}
	for i, c := range classes {
		// Each class may fill the whole limit (the channel holds only
		// slice headers: 24 bytes a slot).
		n := maxRetained / c
		if n < 1 {
			n = 1
		}
		p.free[i] = make(chan []byte, n)
	}
	return p
}

func (p *BufPool) class(n int) int {
	for i, c := range p.classes {
		if n <= c {
			return i
		}
	}
	return -1
}

// Get returns a buffer with len n (contents undefined).
func (p *BufPool) Get(n int) []byte {
	i := p.class(n)
	if i < 0 {
		p.allocated.Add(1)
		return make([]byte, n)
	}
	select {
	case b := <-p.free[i]:
		p.retained.Add(-int64(cap(b)))
		return b[:n]
	default:
		p.allocated.Add(1)
		return make([]byte, n, p.classes[i])
	}
}

// Put returns a buffer obtained from Get. Buffers of foreign capacity are
// dropped.
func (p *BufPool) Put(b []byte) {
	c := cap(b)
	i := p.class(c)
	if i < 0 || p.classes[i] != c {
		return
	}
	if p.retained.Add(int64(c)) > p.maxRetained && p.maxRetained >= int64(c) {
		// Full: make room by dropping free buffers of other classes (the
		// workload changed: 256 KiB immediate-data buffers left by
		// writes must not keep 1 MiB reads allocating forever).
		p.retained.Add(-int64(c))
		p.evictFor(i, int64(c))
		if p.retained.Add(int64(c)) > p.maxRetained {
			p.retained.Add(-int64(c)) // another Put took the room
			return
		}
	}
	select {
	case p.free[i] <- b[:0]:
	default:
		p.retained.Add(-int64(c))
	}
}

// evictFor drops free buffers of classes other than keep until need more
// bytes fit (or nothing else is left to drop).
func (p *BufPool) evictFor(keep int, need int64) {
	for j := range p.free {
		if j == keep {
			continue
		}
		for p.retained.Load()+need > p.maxRetained {
			select {
			case b := <-p.free[j]:
				p.retained.Add(-int64(cap(b)))
				continue
			default:
			}
			break
		}
	}
}

// Allocated returns how many buffers Get has had to allocate (no free
// one of the class, or larger than every class).
func (p *BufPool) Allocated() int64 { return p.allocated.Load() }

// Retained returns the bytes of free buffers the pool holds.
func (p *BufPool) Retained() int64 { return p.retained.Load() }
