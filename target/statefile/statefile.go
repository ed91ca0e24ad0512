package statefile

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// MaxSize bounds what Read accepts: a state file is small (a few hundred
// bytes a registration), and a huge one is not ours.
const MaxSize = 16 << 20

// Write replaces path with data: a synced temporary file in the same
// directory (created if missing, mode 0700) renamed over it, then the
// directory synced. The file is mode 0600. A failed step (the directory
// sync included: without it the rename may not survive a crash) is an
// error, and no temporary file is left behind.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return werr
	}
	return syncDir(dir)
}

// Remove removes path (missing is not an error) and syncs its directory,
// so that a removal reported done survives a crash.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// Read returns the contents of the state file at path. A missing file is
// an error satisfying errors.Is(err, fs.ErrNotExist); anything other than
// a regular file (a FIFO, a device, a symbolic link to one) and a file
// over MaxSize bytes are errors naming path, never read.
func Read(path string) ([]byte, error) {
	// Checked before the open, which would block on a FIFO.
	if fi, err := os.Stat(path); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%v)", path, fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%v)", path, fi.Mode().Type())
	}
	if fi.Size() > MaxSize {
		return nil, fmt.Errorf("%s: %d bytes, more than a state file holds (%d)", path, fi.Size(), MaxSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%s: more than a state file holds (%d bytes)", path, MaxSize)
	}
	return b, nil
}

// Name is a file name part for a state of key: readable (key with every
// byte but letters, digits, '.', '-' and '_' turned into '_', at most 160
// bytes of it) and unique, by 64 bits of key's SHA-256. Keys that differ
// only in the bytes replaced ("a:b", "a_b") get different names, and the
// whole name, with a short prefix and suffix, fits a 255-byte file name.
func Name(key string) string {
	b := []byte(key)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) > 160 {
		b = b[:160]
	}
	sum := sha256.Sum256([]byte(key))
	return fmt.Sprintf("%s.%x", b, sum[:8])
}
