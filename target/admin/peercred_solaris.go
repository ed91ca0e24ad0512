package admin

import "golang.org/x/sys/unix"

// peerUID is the effective uid of the process at the other end of a Unix
// socket (getpeerucred(3C)).
func peerUID(fd uintptr) (int, error) {
	cred, err := unix.GetPeerUcred(fd)
	if err != nil {
		return -1, err
	}
	return cred.Geteuid(), nil
}
