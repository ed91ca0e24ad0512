package backing

import (
	"errors"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// OpenOptions tune Open.
type OpenOptions struct {
	Log *logrus.Entry
}

// Open opens the backing store of a LUN according to its Type (fileio,
// blockio, nullio), Store composition (file window, RAID0, RAID1), and
// IOMode (ro opens read-only). NetBSD stores with Create set are created
// sparse when missing.
//
// STUB: the backing owner replaces this file.
func Open(l *config.LUN, opts OpenOptions) (Store, error) {
	return nil, errors.New("backing: not implemented")
}

// NewMemory returns a RAM-backed store of size bytes (tests, nullio-like
// scratch LUNs).
func NewMemory(size int64) Store { return nil }

// BlockSizer is implemented by stores that know their device's logical
// block size (blockio on a block device).
type BlockSizer interface {
	LogicalBlockSize() int
}
