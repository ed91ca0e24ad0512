package backing

// NullStore is nullio: no storage at all. Reads return zeros (never stale
// memory, unlike IET), writes are discarded.
type NullStore struct {
	size     int64
	readOnly bool
}

// NewNull returns a nullio store of size bytes.
func NewNull(size int64, readOnly bool) *NullStore {
	return &NullStore{size: max(size, 0), readOnly: readOnly}
}

func (s *NullStore) Size() int64 { return s.size }

func (s *NullStore) ReadAt(p []byte, off int64) (int, error) {
	if !inBounds(off, int64(len(p)), s.size) {
		return 0, rangeError("read", "", off, int64(len(p)), s.size)
	}
	clear(p)
	return len(p), nil
}

func (s *NullStore) WriteAt(p []byte, off int64) (int, error) {
	if s.readOnly {
		return 0, readOnlyError("write", "", off, int64(len(p)))
	}
	if !inBounds(off, int64(len(p)), s.size) {
		return 0, rangeError("write", "", off, int64(len(p)), s.size)
	}
	return len(p), nil
}

func (s *NullStore) Sync() error { return nil }

func (s *NullStore) SyncRange(off, n int64) error {
	if !inBounds(off, n, s.size) {
		return rangeError("sync", "", off, n, s.size)
	}
	return nil
}

func (s *NullStore) Unmap(off, n int64) error {
	if s.readOnly {
		return readOnlyError("unmap", "", off, n)
	}
	if !inBounds(off, n, s.size) {
		return rangeError("unmap", "", off, n, s.size)
	}
	return nil
}

func (s *NullStore) Close() error { return nil }

// WriteCacheEnabled is false: nothing is ever cached.
func (s *NullStore) WriteCacheEnabled() bool { return false }

// CanUnmap is true unless read-only: a null store always reads zeros.
func (s *NullStore) CanUnmap() bool { return !s.readOnly }
