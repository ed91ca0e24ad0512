package compat

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ietgo/ietd/parser/netbsd"
	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// LiveAuths keeps a NetBSD auths file current for logins. NetBSD's
// iscsi-target opened the file afresh on every CHAP exchange, so users
// added or changed there count without a restart; LiveAuths re-reads it
// when its size, time or inode changed since the last login (one stat
// per login otherwise).
//
// Where we differ on purpose: a missing or unreadable file made NetBSD's
// daemon exit when an initiator offered CHAP; here the file counts as
// holding no users (CHAP is then not used, as NetBSD never required it)
// and that is logged once per change.
type LiveAuths struct {
	path string
	log  *logrus.Entry

	mu     sync.Mutex
	stamp  authsStamp
	accs   []config.Account
	loaded bool
	seen   bool // the file existed at some point
}

type authsStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	gone  bool
}

// NewLiveAuths watches path (LoadOptions.AuthsPath; "" is the default).
func NewLiveAuths(path string, log *logrus.Entry) *LiveAuths {
	return &LiveAuths{path: AuthsPath(path), log: log}
}

// Auth is t's CHAP setting with the users the auths file holds now in
// place of those it held when the config was loaded (accounts from
// elsewhere, e.g. added with ietadm, stay).
func (l *LiveAuths) Auth(t *config.Target) config.Auth {
	accs := l.current()
	a := t.Auth
	in := make([]config.Account, 0, len(a.Incoming)+len(accs))
	for _, acc := range a.Incoming {
		if acc.Pos.File != l.path {
			in = append(in, acc)
		}
	}
	a.Incoming = append(in, accs...)
	if len(accs) > 0 {
		netbsdAuthRules(&a)
	}
	return a
}

func (l *LiveAuths) current() []config.Account {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := statAuths(l.path)
	if l.loaded && st == l.stamp {
		return l.accs
	}
	l.loaded, l.stamp = true, st
	b, err := os.ReadFile(l.path)
	if err != nil {
		l.accs = nil
		switch {
		case l.log == nil:
		case errors.Is(err, fs.ErrNotExist) && !l.seen:
			l.log.Debugf("no auths file %s: no CHAP users", l.path)
		default:
			if errors.Is(err, fs.ErrNotExist) {
				l.log.Warnf("auths file %s is gone: no CHAP users until it is back", l.path)
			} else {
				l.log.Warnf("auths file %s: %v: no CHAP users until it can be read", l.path, err)
			}
		}
		return nil
	}
	l.seen = true
	f, ds := netbsd.ParseAuths(l.path, b)
	l.accs = authsAccounts(f, &ds)
	if l.log != nil {
		for _, d := range ds {
			l.log.Warn(d.String())
		}
		l.log.WithField("users", len(l.accs)).Infof("auths file %s re-read", l.path)
	}
	return l.accs
}

func statAuths(path string) authsStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return authsStamp{gone: true}
	}
	s := authsStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = uint64(st.Ino)
	}
	return s
}
