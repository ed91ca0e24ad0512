package journal

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
)

// StderrIsJournal reports whether f (standard error) is the stream that
// systemd's JOURNAL_STREAM variable ("device:inode") names: only then are
// priority prefixes understood (a service whose stderr goes to a file or
// a pipe gets none).
func StderrIsJournal(journalStream string, f *os.File) bool {
	devText, inoText, ok := strings.Cut(journalStream, ":")
	if !ok || f == nil {
		return false
	}
	dev, err1 := strconv.ParseUint(devText, 10, 64)
	ino, err2 := strconv.ParseUint(inoText, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// Priority is the syslog priority of a logrus level.
func Priority(l logrus.Level) int {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel:
		return 2 // LOG_CRIT
	case logrus.ErrorLevel:
		return 3 // LOG_ERR
	case logrus.WarnLevel:
		return 4 // LOG_WARNING
	case logrus.InfoLevel:
		return 6 // LOG_INFO
	}
	return 7 // LOG_DEBUG
}

// Formatter prefixes every line that Inner produces with "<N>", N being
// the entry's syslog priority.
type Formatter struct {
	Inner logrus.Formatter
}

// Format implements logrus.Formatter.
func (f Formatter) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.Inner.Format(e)
	if err != nil {
		return nil, err
	}
	prefix := []byte("<" + strconv.Itoa(Priority(e.Level)) + ">")
	out := make([]byte, 0, len(b)+len(prefix))
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line = b[:i+1]
		}
		out = append(append(out, prefix...), line...)
		b = b[len(line):]
	}
	return out, nil
}
