//go:build netbsd || freebsd || solaris

package backing

import "golang.org/x/sys/unix"

const oDIRECT = unix.O_DIRECT
