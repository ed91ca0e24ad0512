package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// removeFile is os.Remove (a test makes it fail as it does for a daemon
// that runs as a user who may not write the directory: root may).
var removeFile = os.Remove

// ErrPIDFileLocked: another live process holds the pid file's lock.
var ErrPIDFileLocked = errors.New("another instance is already running")

// PIDFile is a locked pid file.
type PIDFile struct {
	path string
	f    *os.File
}

// CreatePIDFile creates (or reuses) path, takes an exclusive lock on it and
// writes the current pid. It fails when another live process holds the
// lock, naming that process.
func CreatePIDFile(path string) (*PIDFile, error) {
	if path == "" {
		return &PIDFile{}, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		return nil, fmt.Errorf("pid file %s is locked by running process %s: %w",
			path, string(trimNL(b[:n])), ErrPIDFileLocked)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return &PIDFile{path: path, f: f}, nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == 0) {
		b = b[:len(b)-1]
	}
	return b
}

// Remove deletes the pid file and releases the lock (clean exit). A
// daemon that switched to another user (-u) may not be allowed to remove
// it from its directory (/var/run is root's): the file is then emptied
// through the descriptor still open for writing, so that no stale pid is
// left for an init script to signal (the number may belong to another
// process by then). It returns the error of the removal, nil when done.
func (p *PIDFile) Remove() error {
	if p == nil || p.f == nil {
		return nil
	}
	err := removeFile(p.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		if terr := p.f.Truncate(0); terr != nil {
			err = fmt.Errorf("%w; emptying it failed too: %v", err, terr)
		} else {
			err = fmt.Errorf("%w (emptied instead)", err)
		}
	} else {
		err = nil
	}
	p.f.Close()
	p.f = nil
	return err
}

// ErrStateDirLocked: another live daemon uses the state directory.
var ErrStateDirLocked = errors.New("the state directory is in use by another daemon")

// LockStateDir takes an exclusive lock on dir/lock and writes the pid in
// it, so that two daemons (with different pid files) never share a state
// directory: each would overwrite the other's persistent reservations
// and failure records. The lock lasts as long as the returned file is
// open (the process's life); the file is never removed, since removing
// it would let a starting daemon lock the removed file while another
// locks a new one.
func LockStateDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		return nil, fmt.Errorf("%s is locked by running process %s (use another --state-dir): %w",
			path, string(trimNL(b[:n])), ErrStateDirLocked)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
