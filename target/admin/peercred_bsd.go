//go:build freebsd || darwin

package admin

import "golang.org/x/sys/unix"

// peerUID is the effective uid of the process at the other end of a Unix
// socket (LOCAL_PEERCRED).
func peerUID(fd uintptr) (int, error) {
	cred, err := unix.GetsockoptXucred(int(fd), unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
