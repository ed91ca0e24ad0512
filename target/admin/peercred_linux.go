package admin

import "golang.org/x/sys/unix"

// peerUID is the effective uid of the process at the other end of a Unix
// socket (SO_PEERCRED).
func peerUID(fd uintptr) (int, error) {
	cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return -1, err
	}
	return int(cred.Uid), nil
}
