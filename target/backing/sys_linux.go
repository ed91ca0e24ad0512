package backing

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of FileStore that differ between Linux and the other
// systems ietd builds on (sys_other.go).

const (
	oDSYNC  = unix.O_DSYNC
	oDIRECT = unix.O_DIRECT
	// havePwritev: the combiner merges adjacent writes into one call.
	havePwritev = true
	// charDevIsDisk: Linux disks are block devices.
	charDevIsDisk = false
)

// deviceSize is a block device's length in bytes.
func deviceSize(fd int) (int64, error) {
	sz, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		return 0, os.NewSyscallError("ioctl BLKGETSIZE64", err)
	}
	return int64(sz), nil
}

// deviceBlockSize is a block device's logical block size.
func deviceBlockSize(fd int) (int, error) {
	lbs, err := unix.IoctlGetUint32(fd, unix.BLKSSZGET)
	return int(lbs), err
}

// deviceReadOnly reports whether a block device is read-only (BLKROGET:
// `blockdev --setro`, a loop device attached with -r, a write-protected
// disk). Linux opens such a device for writing all the same and refuses
// each write (EPERM).
func deviceReadOnly(fd int) bool {
	ro, err := unix.IoctlGetInt(fd, unix.BLKROGET)
	return err == nil && ro != 0
}

// punchHole deallocates [off, off+n) of the file, keeping its size.
func punchHole(fd int, off, n int64) error {
	return os.NewSyscallError("fallocate",
		unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n))
}

// dataSync commits the file's data and the metadata needed to read it.
func dataSync(fd int) error { return unix.Fdatasync(fd) }

// seekData and seekHole are lseek SEEK_DATA and SEEK_HOLE.
func seekData(fd int, off int64) (int64, error) { return unix.Seek(fd, off, unix.SEEK_DATA) }
func seekHole(fd int, off int64) (int64, error) { return unix.Seek(fd, off, unix.SEEK_HOLE) }

// ioErrnos are the errnos, beyond EIO, ENXIO and ENODEV, that mean the
// medium failed.
var ioErrnos = []syscall.Errno{syscall.EREMOTEIO, syscall.ENOMEDIUM}

// pwritev writes iov at off with one system call.
func pwritev(fd uintptr, iov []unix.Iovec, off int64) (uintptr, syscall.Errno) {
	lo, hi := offsetLoHi(off)
	r, _, e := unix.Syscall6(unix.SYS_PWRITEV, fd,
		uintptr(unsafe.Pointer(unsafe.SliceData(iov))), uintptr(len(iov)), lo, hi, 0)
	return r, e
}

// offsetLoHi splits a file offset into pwritev's pos_l and pos_h as Linux
// reads them (all of it in pos_l where a long is 64 bits).
func offsetLoHi(off int64) (lo, hi uintptr) {
	const longBits = unsafe.Sizeof(uintptr(0)) * 8
	return uintptr(off), uintptr(uint64(off) >> (longBits - 1) >> 1)
}

// punchProbeTmpfile asks the file system of dir whether it punches
// holes, on an unnamed file of its own (O_TMPFILE: nothing to clean up);
// tried is false when no such file could be made.
func punchProbeTmpfile(dir string, n int64) (ok, tried bool) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false, false
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, 2*n); err != nil {
		return false, false
	}
	return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, n) == nil, true
}
