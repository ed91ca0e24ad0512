package backing

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// NetBSD has block devices (/dev/wd0e) and their raw character twins
// (/dev/rwd0e); only the block devices are disks here.
const charDevIsDisk = false

const oDSYNC = unix.O_DSYNC

// NetBSD's sys/dkio.h: DIOCGMEDIASIZE = _IOR('d', 132, off_t) and
// DIOCGSECTORSIZE = _IOR('d', 133, u_int) (x/sys/unix does not have them).
const (
	diocGMediaSize  = 0x40000000 | 8<<16 | 'd'<<8 | 132
	diocGSectorSize = 0x40000000 | 4<<16 | 'd'<<8 | 133
)

func mediaSize(fd int) (int64, error) {
	var n int64
	if err := ioctlPtr(fd, diocGMediaSize, unsafe.Pointer(&n)); err != nil {
		return 0, err
	}
	return n, nil
}

func sectorSize(fd int) (int, error) {
	var n uint32
	if err := ioctlPtr(fd, diocGSectorSize, unsafe.Pointer(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

func fullSync(fd int) error { return unix.Fsync(fd) }
