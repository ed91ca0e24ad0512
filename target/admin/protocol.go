package admin

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Op is an ietadm operation.
type Op string

const (
	OpNew    Op = "new"
	OpDelete Op = "delete"
	OpUpdate Op = "update"
	OpShow   Op = "show"
)

// MaxParams bounds --params. IET's request held at most 2047 bytes of LUN
// parameters and 255 of a name (it cut longer ones short); this leaves
// room for any path while a request, escaped, stays under the socket's
// limit.
const MaxParams = 8 << 10

// Request is one ietadm invocation. Pointer fields are nil when the option
// was not given (IET distinguishes "--tid=0" from no --tid).
type Request struct {
	Op       Op      `json:"op"`
	TID      *int    `json:"tid,omitempty"`
	SID      *uint64 `json:"sid,omitempty"`
	CID      *uint32 `json:"cid,omitempty"`
	LUN      *uint64 `json:"lun,omitempty"`
	Params   string  `json:"params,omitempty"`
	User     bool    `json:"user,omitempty"`
	Redirect *string `json:"redirect,omitempty"`
	// Listing asks for an IET /proc/net/iet style listing: "volume" or
	// "session" (our extension: ietadm --op show --volumes/--sessions).
	Listing string `json:"listing,omitempty"`
}

// Response is the daemon's answer.
type Response struct {
	// Errno is 0 on success, else a positive errno value.
	Errno int `json:"errno"`
	// Message explains a failure (logged by the daemon, printed by
	// ietadm after the errno's text, which it does not repeat).
	Message string `json:"message,omitempty"`
	// Unsupported: IET answered this operation with only "Unsupported."
	// (and EINVAL); ietadm prints that instead of the errno and Message.
	Unsupported bool `json:"unsupported,omitempty"`
	// Output is printed verbatim on ietadm's stdout.
	Output string `json:"output,omitempty"`
	// Warnings of an operation that succeeded: what was done differs
	// from what was asked (a value clamped or forced). The daemon logs
	// them, ietadm prints them on stderr and exits 0.
	Warnings []string `json:"warnings,omitempty"`
}

// Error is an operation failure with the errno ietadm reports.
type Error struct {
	Errno syscall.Errno
	Msg   string
	// Unsupported marks IET's "Unsupported." answers.
	Unsupported bool
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return e.Errno.Error()
	}
	if strings.HasSuffix(e.Msg, e.Errno.Error()) {
		return e.Msg // the cause already says it
	}
	return e.Msg + ": " + e.Errno.Error()
}

func (e *Error) Unwrap() error { return e.Errno }

func errf(no syscall.Errno, format string, args ...any) error {
	return &Error{Errno: no, Msg: fmt.Sprintf(format, args...)}
}

// ErrnoOf extracts the errno of err (EINVAL when it has none).
func ErrnoOf(err error) syscall.Errno {
	var e *Error
	if errors.As(err, &e) {
		return e.Errno
	}
	var no syscall.Errno
	if errors.As(err, &no) {
		return no
	}
	return syscall.EINVAL
}

// ExitStatus is IET's ietadm exit status for an errno: the negative errno
// truncated to 8 bits (EINVAL -> 234, ENOENT -> 254, EEXIST -> 239).
func ExitStatus(no syscall.Errno) int {
	if no == 0 {
		return 0
	}
	return int(uint8(-int(no)))
}

// ErrnoText is the message the original ietadm prints: strerror and a period.
func ErrnoText(no syscall.Errno) string {
	s := no.Error()
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s + "."
}
