package pdu

// BufPool hands out data buffers in size classes and keeps a bounded
// number of free buffers per class, so the memory it retains is bounded
// (the classes' share of MaxRetained). Buffers larger than the biggest
// class are allocated on demand and never retained. Get never blocks;
// callers bound how many buffers they hold (the CmdSN window does).
//
// Free lists are buffered channels of slices: sending a slice through a
// channel copies the slice header and does not allocate, unlike putting
// it in a sync.Pool.
type BufPool struct {
	classes []int
	free    []chan []byte
}

// DefaultClasses are the size classes of NewBufPool(nil, ...).
var DefaultClasses = []int{4 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20}

// NewBufPool builds a pool with the given ascending classes (nil =
// DefaultClasses) retaining at most maxRetained bytes of free buffers.
func NewBufPool(classes []int, maxRetained int) *BufPool {
	if classes == nil {
		classes = DefaultClasses
	}
	p := &BufPool{classes: classes, free: make([]chan []byte, len(classes))}
	share := maxRetained / len(classes)
	for i, c := range classes {
		n := share / c
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
		return make([]byte, n)
	}
	select {
	case b := <-p.free[i]:
		return b[:n]
	default:
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
	select {
	case p.free[i] <- b[:0]:
	default:
	}
}
