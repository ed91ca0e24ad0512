//go:build !linux && !freebsd && !netbsd && !darwin

package backing

import "golang.org/x/sys/unix"

// Other systems (Solaris and illumos among them: x/sys/unix has no
// ioctl there that fills a struct dk_minfo): lseek to the end, 512-byte
// sectors; a disk whose size lseek does not report needs Size in the
// config.
const charDevIsDisk = false

// oDSYNC: O_SYNC, which every system has.
const oDSYNC = unix.O_SYNC

func mediaSize(int) (int64, error) { return 0, unix.ENOTSUP }
func sectorSize(int) (int, error)  { return 0, unix.ENOTSUP }

func fullSync(fd int) error { return unix.Fsync(fd) }
