package backing

import (
	"sync"
	"unsafe"
)

// memAlign is the memory alignment of bounce buffers; it satisfies O_DIRECT
// on every Linux device (logical blocks are at most 4 KiB).
const memAlign = 4096

// maxBounce caps a single bounce buffer; larger requests are split.
const maxBounce = 1 << 20

// alignedPool hands out memAlign-aligned buffers of maxBounce bytes.
type alignedPool struct {
	pool sync.Pool
}

func newAlignedPool() *alignedPool {
	p := &alignedPool{}
	p.pool.New = func() any {
		b := alignedBuf(maxBounce)
		return &b
	}
	return p
}

func (p *alignedPool) get() *[]byte  { return p.pool.Get().(*[]byte) }
func (p *alignedPool) put(b *[]byte) { p.pool.Put(b) }

// alignedBuf allocates n bytes whose first byte is memAlign-aligned.
func alignedBuf(n int) []byte {
	raw := make([]byte, n+memAlign)
	skip := 0
	if rem := int(uintptr(unsafe.Pointer(&raw[0])) % memAlign); rem != 0 {
		skip = memAlign - rem
	}
	return raw[skip : skip+n : skip+n]
}

// isAligned reports whether p starts at an address that is a multiple of a.
func isAligned(p []byte, a int) bool {
	if len(p) == 0 {
		return true
	}
	return uintptr(unsafe.Pointer(&p[0]))%uintptr(a) == 0
}
