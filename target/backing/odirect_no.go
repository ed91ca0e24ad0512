//go:build !linux && !netbsd && !freebsd && !solaris

package backing

// oDIRECT: none on this system; blockio opens as errDirectRefused says
// (fileio through the page cache, with a warning).
const oDIRECT = 0
