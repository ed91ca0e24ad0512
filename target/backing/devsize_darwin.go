package backing

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// macOS has block devices (/dev/diskN) and raw twins (/dev/rdiskN); only
// the block devices are disks here.
const charDevIsDisk = false

const oDSYNC = unix.O_DSYNC

// sys/disk.h: DKIOCGETBLOCKSIZE = _IOR('d', 24, uint32_t) and
// DKIOCGETBLOCKCOUNT = _IOR('d', 25, uint64_t).
const (
	dkiocGetBlockSize  = 0x40000000 | 4<<16 | 'd'<<8 | 24
	dkiocGetBlockCount = 0x40000000 | 8<<16 | 'd'<<8 | 25
)

func sectorSize(fd int) (int, error) {
	var n uint32
	if err := ioctlPtr(fd, dkiocGetBlockSize, unsafe.Pointer(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

func mediaSize(fd int) (int64, error) {
	bs, err := sectorSize(fd)
	if err != nil {
		return 0, err
	}
	var n uint64
	if err := ioctlPtr(fd, dkiocGetBlockCount, unsafe.Pointer(&n)); err != nil {
		return 0, err
	}
	return int64(n) * int64(bs), nil
}

// fullSync is fcntl F_FULLFSYNC: macOS's fsync(2) leaves the data in the
// drive's cache. A file system that does not support it gets fsync.
func fullSync(fd int) error {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_FULLFSYNC, 0); err == nil {
		return nil
	}
	return unix.Fsync(fd)
}
