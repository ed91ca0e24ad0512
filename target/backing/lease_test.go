//go:build linux

package backing

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A file under a read lease that the store's open for writing breaks:
// the open waits for the holder to let go (as it did before opens were
// made non-blocking for FIFOs) instead of failing with EWOULDBLOCK.
func TestOpenWaitsForLeaseBreak(t *testing.T) {
	path := newTempFile(t, 1<<20)
	holder, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := unix.FcntlInt(holder.Fd(), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		t.Skipf("F_SETLEASE: %v", err)
	}
	// releasing is set just before the lease goes: the open may return
	// as soon as the kernel drops the lease, before FcntlInt returns here.
	var releasing atomic.Bool
	released := make(chan struct{})
	defer func() { <-released }() // before the deferred Close of holder
	fd := holder.Fd()
	go func() {
		defer close(released)
		time.Sleep(200 * time.Millisecond)
		releasing.Store(true)
		unix.FcntlInt(fd, unix.F_SETLEASE, unix.F_UNLCK)
	}()
	done := make(chan error, 1)
	go func() {
		s, err := Open(fileLUN(path, "fileio", "wb"), OpenOptions{})
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("open of a leased file: %v", err)
		}
		if !releasing.Load() {
			t.Fatal("open returned while the lease was still held")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("open of a leased file still waiting 30 s after the lease was released")
	}
}
