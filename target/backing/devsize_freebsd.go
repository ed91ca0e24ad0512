package backing

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// FreeBSD has no block devices: disks are character devices (disk(4)).
const charDevIsDisk = true

// oDSYNC: x/sys/unix has no O_DSYNC for FreeBSD; O_SYNC also syncs the
// file's times, more than write-through needs.
const oDSYNC = unix.O_SYNC

// mediaSize is DIOCGMEDIASIZE (sys/disk.h): the media size in bytes.
func mediaSize(fd int) (int64, error) {
	var n int64
	if err := ioctlPtr(fd, unix.DIOCGMEDIASIZE, unsafe.Pointer(&n)); err != nil {
		return 0, err
	}
	return n, nil
}

// sectorSize is DIOCGSECTORSIZE (sys/disk.h).
func sectorSize(fd int) (int, error) {
	return unix.IoctlGetInt(fd, unix.DIOCGSECTORSIZE)
}

func fullSync(fd int) error { return unix.Fsync(fd) }
