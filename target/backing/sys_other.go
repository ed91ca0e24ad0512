//go:build !linux

package backing

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The system calls of FileStore on the systems other than Linux that ietd
// builds on (NetBSD, FreeBSD, Solaris and illumos, macOS): what Linux has
// and they lack degrades, it never fails the build.

// oDSYNC: O_SYNC, which every one of them has (it also syncs the file's
// times, more than write-through needs).
const oDSYNC = unix.O_SYNC

// deviceSize is a block device's length in bytes, from lseek to its end.
// A system whose devices do not report it there needs the size in the
// config (NetBSD extents always give one).
func deviceSize(fd int) (int64, error) {
	n, err := unix.Seek(fd, 0, io.SeekEnd)
	if err != nil {
		return 0, os.NewSyscallError("lseek SEEK_END", err)
	}
	return n, nil
}

// deviceBlockSize: 512, the block size the config may override.
func deviceBlockSize(int) (int, error) { return 512, nil }

// punchHole is not supported (no portable hole punching): Unmap reports
// ErrNotSupported, the probe at open fails, so the LUN is not thin.
func punchHole(int, int64, int64) error { return unix.EOPNOTSUPP }

// dataSync is fsync.
func dataSync(fd int) error { return unix.Fsync(fd) }

// seekData and seekHole: not asked of the system; every range reads as
// mapped.
func seekData(int, int64) (int64, error) { return 0, unix.EOPNOTSUPP }
func seekHole(int, int64) (int64, error) { return 0, unix.EOPNOTSUPP }

var ioErrnos []syscall.Errno

// pwritev is not used: the combiner writes each request of a batch on its
// own (still one batch at a time).
func pwritev(uintptr, []unix.Iovec, int64) (uintptr, syscall.Errno) { return 0, syscall.ENOSYS }
