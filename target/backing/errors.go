package backing

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"syscall"
)

// Error is the error every store returns for a failed operation. It wraps
// both the classification (one of ErrNoSpace, ErrIO, ErrReadOnly, ErrRange,
// ErrNotSupported, or nil when none applies) and the underlying cause (an
// *os.PathError, a syscall.Errno, ...), so errors.Is works for either.
type Error struct {
	Op   string // "read", "write", "sync", "unmap", "open"
	Path string // backing file, when known
	Off  int64  // byte offset of the request within the store
	Len  int64  // byte length of the request
	Kind error  // classification sentinel (may be nil)
	Err  error  // cause (may be nil when Kind says it all)
}

func (e *Error) Error() string {
	msg := "backing: " + e.Op
	if e.Path != "" {
		msg += " " + e.Path
	}
	if e.Op != "open" && e.Op != "sync" {
		msg += fmt.Sprintf(" [%d,+%d)", e.Off, e.Len)
	}
	cause := e.Err
	var pe *fs.PathError
	if errors.As(cause, &pe) && pe.Path == e.Path && e.Path != "" {
		cause = pe.Err // "open /x: open /x: ..." says the path once
	}
	switch {
	case e.Kind != nil && cause != nil:
		return msg + ": " + e.Kind.Error() + ": " + cause.Error()
	case cause != nil:
		return msg + ": " + cause.Error()
	case e.Kind != nil:
		return msg + ": " + e.Kind.Error()
	}
	return msg + ": unknown error"
}

// Unwrap exposes both the classification and the cause.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// classify maps an operating-system error to one of the package sentinels.
// readOnly says the store was opened read-only (EBADF on a write then means
// "read-only" rather than a programming error).
func classify(err error, readOnly bool) error {
	for _, kind := range []error{ErrNoSpace, ErrIO, ErrReadOnly, ErrRange, ErrNotSupported} {
		if errors.Is(err, kind) {
			return kind
		}
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return nil
	}
	if slices.Contains(ioErrnos, errno) {
		return ErrIO
	}
	switch errno {
	case syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG:
		return ErrNoSpace
	case syscall.EIO, syscall.ENXIO, syscall.ENODEV:
		return ErrIO
	case syscall.EROFS, syscall.EPERM:
		return ErrReadOnly
	case syscall.EBADF:
		if readOnly {
			return ErrReadOnly
		}
	case syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.ENOTTY:
		return ErrNotSupported
	}
	return nil
}

// opError builds the *Error for a failed operation, classifying err. An
// error that already is an *Error (from a member store) gets the outer
// operation context but keeps its classification.
func opError(op, path string, off, n int64, err error, readOnly bool) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Path: path, Off: off, Len: n, Kind: classify(err, readOnly), Err: err}
}

// rangeError reports an access outside [0, size).
func rangeError(op, path string, off, n, size int64) error {
	return &Error{Op: op, Path: path, Off: off, Len: n, Kind: ErrRange,
		Err: fmt.Errorf("store size is %d bytes", size)}
}

// readOnlyError reports a write to a read-only store.
func readOnlyError(op, path string, off, n int64) error {
	return &Error{Op: op, Path: path, Off: off, Len: n, Kind: ErrReadOnly}
}

// inBounds reports whether [off, off+n) lies within [0, size).
func inBounds(off, n, size int64) bool {
	return off >= 0 && n >= 0 && off <= size && n <= size-off
}
