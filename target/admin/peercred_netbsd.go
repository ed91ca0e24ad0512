package admin

import (
	"syscall"
	"unsafe"
)

// unpcbid is NetBSD's struct unpcbid (sys/un.h).
type unpcbid struct {
	pid        int32  // pid_t
	euid, egid uint32 // uid_t, gid_t: unsigned
}

// localPeerEID is LOCAL_PEEREID (sys/un.h), read at level 0.
const localPeerEID = 3

// peerUID is the effective uid of the process at the other end of a Unix
// socket (LOCAL_PEEREID).
func peerUID(fd uintptr) (int, error) {
	var id unpcbid
	n := uint32(unsafe.Sizeof(id))
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, 0, localPeerEID,
		uintptr(unsafe.Pointer(&id)), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return -1, e
	}
	return int(id.euid), nil
}
