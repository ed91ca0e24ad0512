package backing

import "sync"

// memChunk is the allocation unit of a memory store.
const memChunk = 64 << 10

// MemoryStore keeps its data in RAM, allocating 64 KiB chunks on first
// write, so a huge mostly-empty store costs almost nothing. Unmapped or
// never-written ranges read as zeros.
type MemoryStore struct {
	size   int64
	mu     sync.RWMutex
	chunks map[int64]*[memChunk]byte
}

// NewMemory returns a RAM-backed store of size bytes (tests, scratch LUNs).
func NewMemory(size int64) Store { return newMemory(size) }

func newMemory(size int64) *MemoryStore {
	return &MemoryStore{size: max(size, 0), chunks: make(map[int64]*[memChunk]byte)}
}

func (s *MemoryStore) Size() int64 { return s.size }

// AllocatedBytes reports how much memory the data occupies.
func (s *MemoryStore) AllocatedBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.chunks)) * memChunk
}

func (s *MemoryStore) ReadAt(p []byte, off int64) (int, error) {
	if !inBounds(off, int64(len(p)), s.size) {
		return 0, rangeError("read", "", off, int64(len(p)), s.size)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		idx, in := pos/memChunk, int(pos%memChunk)
		n := min(len(p)-done, memChunk-in)
		if c := s.chunks[idx]; c != nil {
			copy(p[done:done+n], c[in:in+n])
		} else {
			clear(p[done : done+n])
		}
		done += n
	}
	return done, nil
}

func (s *MemoryStore) WriteAt(p []byte, off int64) (int, error) {
	if !inBounds(off, int64(len(p)), s.size) {
		return 0, rangeError("write", "", off, int64(len(p)), s.size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	done := 0
	for done < len(p) {
		pos := off + int64(done)
		idx, in := pos/memChunk, int(pos%memChunk)
		n := min(len(p)-done, memChunk-in)
		c := s.chunks[idx]
		if c == nil {
			c = new([memChunk]byte)
			s.chunks[idx] = c
		}
		copy(c[in:in+n], p[done:done+n])
		done += n
	}
	return done, nil
}

func (s *MemoryStore) Sync() error { return nil }

func (s *MemoryStore) SyncRange(off, n int64) error {
	if !inBounds(off, n, s.size) {
		return rangeError("sync", "", off, n, s.size)
	}
	return nil
}

// Unmap frees whole chunks in the range and zeroes partial ones.
func (s *MemoryStore) Unmap(off, n int64) error {
	if !inBounds(off, n, s.size) {
		return rangeError("unmap", "", off, n, s.size)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for pos, end := off, off+n; pos < end; {
		idx, in := pos/memChunk, pos%memChunk
		k := min(end-pos, memChunk-in)
		if c := s.chunks[idx]; c != nil {
			if k == memChunk {
				delete(s.chunks, idx)
			} else {
				clear(c[in : in+k])
			}
		}
		pos += k
	}
	return nil
}

// Close drops the data.
func (s *MemoryStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunks = make(map[int64]*[memChunk]byte)
	return nil
}

// CanUnmap is true: Unmap frees memory and the range reads as zeros.
func (s *MemoryStore) CanUnmap() bool { return true }
