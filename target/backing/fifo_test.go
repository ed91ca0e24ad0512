//go:build unix

package backing

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A LUN on a named pipe is refused, read-only too: opening a FIFO for
// reading waits for a writer, so the open must not block (a start that
// never became ready, a reload hung holding the daemon's locks).
func TestOpenFIFORefusedWithoutBlocking(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		iomode string
		probe  bool
	}{{"ro", false}, {"ro", true}, {"", false}, {"", true}, {"wb", true}} {
		done := make(chan error, 1)
		go func() {
			s, err := Open(fileLUN(fifo, "fileio", c.iomode), OpenOptions{Probe: c.probe})
			if err == nil {
				s.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotSupported) {
				t.Errorf("IOMode=%q probe %v: %v, want ErrNotSupported", c.iomode, c.probe, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("IOMode=%q probe %v: open of a FIFO still blocked after 5s", c.iomode, c.probe)
		}
	}
}

// Once the file is known to be a regular file, the descriptor is
// blocking again.
func TestOpenClearsNonblock(t *testing.T) {
	p := newTempFile(t, 4096)
	for _, ro := range []bool{false, true} {
		s := mustOpenFile(t, fileOptions{Path: p, ReadOnly: ro})
		var fl int
		err := s.control(func(fd int) (err error) {
			fl, err = unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if fl&unix.O_NONBLOCK != 0 {
			t.Fatalf("read-only %v: O_NONBLOCK still set", ro)
		}
	}
}
