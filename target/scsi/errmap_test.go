package scsi

import (
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/backing"
)

// shortStore writes only half of what it is given and says so (n), but
// returns no error, as an io.WriterAt must not: the command must still
// not be GOOD.
type shortStore struct{ backing.Store }

func (s shortStore) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.Store.WriteAt(p[:len(p)/2], off)
	return n, err
}

// Each errno a backing store can return for a write maps to its sense
// (SBC-4): I/O errors MEDIUM ERROR / WRITE ERROR (03/0C/00), no space
// and quota DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT
// (07/27/07), a file system or device gone read-only DATA PROTECT /
// WRITE PROTECTED (07/27/00); a short write is a WRITE ERROR. Never GOOD.
func TestWriteErrnosMapToSense(t *testing.T) {
	cases := []struct {
		errno syscall.Errno
		key   byte
		asc   asc
	}{
		{syscall.EIO, keyMediumError, ascWriteError},
		{syscall.ENXIO, keyMediumError, ascWriteError},
		{syscall.ENODEV, keyMediumError, ascWriteError},
		{syscall.ENOSPC, keyDataProtect, ascSpaceAllocFailedWP},
		{syscall.EDQUOT, keyDataProtect, ascSpaceAllocFailedWP},
		{syscall.EFBIG, keyDataProtect, ascSpaceAllocFailedWP},
		{syscall.EROFS, keyDataProtect, ascWriteProtected},
		{syscall.EPERM, keyDataProtect, ascWriteProtected},
		{syscall.EINVAL, keyMediumError, ascWriteError}, // unclassified
	}
	for _, mode := range []string{"wb", "wt"} {
		for _, c := range cases {
			f := backing.NewFaulty(backing.NewMemory(1 << 20))
			tg, n := storeTargetMode(t, mode, f)
			f.FailRange(backing.OpWrite, 0, 1<<20, c.errno)
			for _, flags := range []byte{0, 0x08} {
				r := run(tg, n, rw16(0x8a, 8, 2, flags), make([]byte, 1024))
				if r.Status != StatusCheckCondition || senseKey(r) != c.key || senseASC(r) != c.asc {
					t.Errorf("%s write flags %#x, %v: status %#x key %#x asc %04x, want %#x/%04x",
						mode, flags, c.errno, r.Status, senseKey(r), uint16(senseASC(r)), c.key, uint16(c.asc))
				}
			}
		}
		tg, n := storeTargetMode(t, mode, shortStore{backing.NewMemory(1 << 20)})
		for _, c := range []struct {
			name string
			cdb  []byte
			out  []byte
		}{
			{"WRITE(16)", rw16(0x8a, 8, 2, 0), make([]byte, 1024)},
			{"WRITE(16) FUA", rw16(0x8a, 8, 2, 0x08), make([]byte, 1024)},
			{"WRITE AND VERIFY(16)", rw16(0x8e, 8, 2, 0), make([]byte, 1024)},
			{"WRITE SAME(16)", rw16(0x93, 8, 4, 0), make([]byte, 512)},
		} {
			r := run(tg, n, c.cdb, c.out)
			if r.Status != StatusCheckCondition || senseKey(r) != keyMediumError || senseASC(r) != ascWriteError {
				t.Errorf("%s %s on a store that wrote half: status %#x sense % x, want MEDIUM ERROR / WRITE ERROR",
					mode, c.name, r.Status, r.Sense)
			}
		}
	}
}
