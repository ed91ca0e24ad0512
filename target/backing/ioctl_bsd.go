//go:build freebsd || netbsd || darwin

package backing

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr is ioctl(fd, req, p) for requests that fill *p.
func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p)); e != 0 {
		return e
	}
	return nil
}
