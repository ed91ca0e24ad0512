package backing

// LimitStore exposes the first size bytes of another store (LUN Blocks=
// on a file) and, when readOnly, refuses writes.
type LimitStore struct {
	inner    Store
	size     int64
	readOnly bool
}

// NewLimit returns a view of the first size bytes of inner (size is
// clamped to inner's size).
func NewLimit(inner Store, size int64, readOnly bool) *LimitStore {
	return &LimitStore{inner: inner, size: max(0, min(size, inner.Size())), readOnly: readOnly}
}

// Inner returns the wrapped store.
func (l *LimitStore) Inner() Store { return l.inner }

func (l *LimitStore) Size() int64 { return l.size }

func (l *LimitStore) ReadAt(p []byte, off int64) (int, error) {
	if !inBounds(off, int64(len(p)), l.size) {
		return 0, rangeError("read", "", off, int64(len(p)), l.size)
	}
	return l.inner.ReadAt(p, off)
}

func (l *LimitStore) WriteAt(p []byte, off int64) (int, error) {
	if l.readOnly {
		return 0, readOnlyError("write", "", off, int64(len(p)))
	}
	if !inBounds(off, int64(len(p)), l.size) {
		return 0, rangeError("write", "", off, int64(len(p)), l.size)
	}
	return l.inner.WriteAt(p, off)
}

func (l *LimitStore) Sync() error { return l.inner.Sync() }

func (l *LimitStore) SyncRange(off, n int64) error {
	if !inBounds(off, n, l.size) {
		return rangeError("sync", "", off, n, l.size)
	}
	return l.inner.SyncRange(off, n)
}

func (l *LimitStore) Unmap(off, n int64) error {
	if l.readOnly {
		return readOnlyError("unmap", "", off, n)
	}
	if !inBounds(off, n, l.size) {
		return rangeError("unmap", "", off, n, l.size)
	}
	return l.inner.Unmap(off, n)
}

func (l *LimitStore) Close() error { return l.inner.Close() }

// LogicalBlockSize forwards to the inner store (512 when it has none).
func (l *LimitStore) LogicalBlockSize() int { return maxBlockSize([]Store{l.inner}) }

// WriteCacheEnabled forwards to the inner store.
func (l *LimitStore) WriteCacheEnabled() bool {
	return !l.readOnly && anyWriteCache([]Store{l.inner})
}

// CanUnmap forwards to the inner store (false when read-only).
// WriteProtected is the inner store's, for a window configured for writes.
func (l *LimitStore) WriteProtected() bool { return !l.readOnly && WriteProtected(l.inner) }

func (l *LimitStore) CanUnmap() bool { return !l.readOnly && CanUnmap(l.inner) }
