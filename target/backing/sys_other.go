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

// deviceSize is a disk device's length in bytes: the system's media-size
// ioctl (devsize_*.go), else lseek to the end. 0 means the system did
// not say; the config's Size is then trusted (NetBSD extents always
// give one) and a LUN without a Size is refused at open.
func deviceSize(fd int) (int64, error) {
	if n, err := mediaSize(fd); err == nil && n > 0 {
		return n, nil
	}
	n, err := unix.Seek(fd, 0, io.SeekEnd)
	if err != nil {
		return 0, os.NewSyscallError("lseek SEEK_END", err)
	}
	return n, nil
}

// deviceReadOnly: these systems refuse the open for writing of a
// write-protected disk, which the start reports.
func deviceReadOnly(fd int) bool { return false }

// deviceBlockSize is the device's sector size from the system's ioctl,
// else 512 (the block size the config may override).
func deviceBlockSize(fd int) (int, error) {
	if n, err := sectorSize(fd); err == nil && n >= 512 {
		return n, nil
	}
	return 512, nil
}

// punchHole is not supported (no portable hole punching): Unmap reports
// ErrNotSupported, the probe at open fails, so the LUN is not thin.
func punchHole(int, int64, int64) error { return unix.EOPNOTSUPP }

// dataSync is fsync, or what a system needs beyond it (devsize_*.go:
// macOS's fsync does not flush the drive's cache).
func dataSync(fd int) error { return fullSync(fd) }

// seekData and seekHole: not asked of the system; every range reads as
// mapped.
func seekData(int, int64) (int64, error) { return 0, unix.EOPNOTSUPP }
func seekHole(int, int64) (int64, error) { return 0, unix.EOPNOTSUPP }

var ioErrnos []syscall.Errno

// havePwritev is false: the combiner writes each request of a batch on
// its own (still one batch at a time).
const havePwritev = false

// pwritev is not used (havePwritev).
func pwritev(uintptr, []unix.Iovec, int64) (uintptr, syscall.Errno) { return 0, syscall.ENOSYS }

// punchProbeTmpfile: nothing to ask (punchHole is not supported).
func punchProbeTmpfile(string, int64) (ok, tried bool) { return false, true }
