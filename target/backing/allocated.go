package backing

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Allocated reports whether the byte at off is backed by storage (false in
// a hole) and how many bytes from off, at most n, share that state
// (lseek SEEK_DATA/SEEK_HOLE). Used for GET LBA STATUS.
func (s *FileStore) Allocated(off, n int64) (bool, int64, error) {
	if !inBounds(off, n, s.size.Load()) {
		return false, 0, rangeError("lba-status", s.path, off, n, s.size.Load())
	}
	if n == 0 {
		return true, 0, nil
	}
	if s.blockDev {
		return true, n, nil
	}
	abs := s.base + off
	var data, hole int64
	err := s.control(func(fd int) (err error) {
		data, err = seekData(fd, abs)
		return err
	})
	switch {
	case errors.Is(err, unix.ENXIO):
		// No data after abs: a hole up to the end.
		return false, n, nil
	case err != nil:
		return true, n, nil // the file system cannot tell: report mapped
	}
	if data > abs {
		return false, min(data-abs, n), nil
	}
	err = s.control(func(fd int) (err error) {
		hole, err = seekHole(fd, abs)
		return err
	})
	if err != nil {
		return true, n, nil
	}
	return true, min(hole-abs, n), nil
}

// Allocated passes through to the limited store when it can tell.
func (s *LimitStore) Allocated(off, n int64) (bool, int64, error) {
	if a, ok := s.inner.(interface {
		Allocated(off, n int64) (bool, int64, error)
	}); ok && inBounds(off, n, s.size) {
		return a.Allocated(off, n)
	}
	return true, n, nil
}
