package backing

import "errors"

// Store is a LUN's backing storage. All methods are safe for concurrent use;
// ReadAt/WriteAt use explicit offsets (pread/pwrite), never a shared file
// position.
type Store interface {
	// ReadAt and WriteAt follow io.ReaderAt/io.WriterAt. Errors wrap
	// ErrNoSpace, ErrIO, ErrReadOnly or ErrRange where they apply.
	ReadAt(p []byte, off int64) (int, error)
	WriteAt(p []byte, off int64) (int, error)
	// Size is the capacity in bytes.
	Size() int64
	// Sync makes every completed write durable (fdatasync).
	Sync() error
	// SyncRange makes writes in [off, off+n) durable.
	SyncRange(off, n int64) error
	// Unmap deallocates [off, off+n) (punch hole); the range then reads as
	// zeros. Returns ErrNotSupported when the store cannot.
	Unmap(off, n int64) error
	// Close releases the store.
	Close() error
}

// Errors the SCSI layer maps to sense data.
var (
	ErrNotSupported = errors.New("operation not supported by backing store")
	ErrNoSpace      = errors.New("no space left on backing store")
	ErrIO           = errors.New("backing store I/O error")
	ErrReadOnly     = errors.New("backing store is read-only")
	ErrRange        = errors.New("access beyond end of backing store")
)

// UnmapProber is implemented by stores that know whether Unmap really
// deallocates (and the range then reads as zeros).
type UnmapProber interface {
	CanUnmap() bool
}

// WriteProtector is implemented by stores that can find themselves held
// read-only by the system (a block device set read-only) although the
// LUN was configured for writes.
type WriteProtector interface {
	WriteProtected() bool
}

// WriteProtected reports whether s, configured for writes, refuses them
// because the system holds (a member of) it read-only: the SCSI layer
// then serves the LUN write-protected (the WP bit, DATA PROTECT on a
// write) instead of one that looks writable and refuses every write.
func WriteProtected(s Store) bool {
	if p, ok := s.(WriteProtector); ok {
		return p.WriteProtected()
	}
	return false
}

// CanUnmap reports whether s can deallocate ranges: the SCSI layer
// advertises thin provisioning (UNMAP, LBPU/LBPWS, LBPRZ) only then.
// A store that does not implement UnmapProber cannot.
func CanUnmap(s Store) bool {
	if p, ok := s.(UnmapProber); ok {
		return p.CanUnmap()
	}
	return false
}
