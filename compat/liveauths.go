package compat

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"sync"

	"github.com/ietgo/ietd/parser/netbsd"
	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// LiveAuths keeps a NetBSD auths file current for logins. NetBSD's
// iscsi-target opened the file afresh on every CHAP exchange, so users
// added or changed there count without a restart; LiveAuths reads it at
// every login and parses it again when it changed.
//
// Where we differ on purpose: a missing or unreadable file made NetBSD's
// daemon exit when an initiator offered CHAP; here the file counts as
// holding no users (CHAP is then not used, as NetBSD never required it)
// and that is logged once per change.
type LiveAuths struct {
	path string
	log  *logrus.Entry

	mu      sync.Mutex
	content []byte // the file as last read
	readErr string // the last read error ("" = read fine)
	accs    []config.Account
	loaded  bool
	seen    bool // the file existed at some point
}

// NewLiveAuths watches path (LoadOptions.AuthsPath; "" is the default).
func NewLiveAuths(path string, log *logrus.Entry) *LiveAuths {
	return &LiveAuths{path: AuthsPath(path), log: log}
}

// Auth is t's CHAP setting with the users the auths file holds now in
// place of those it held when the config was loaded (accounts from
// elsewhere, e.g. added with ietadm, stay). A target that did not come
// from a NetBSD targets file (an ietd.conf target, or one added with
// ietadm) keeps its own setting: the auths file is NetBSD's alone.
func (l *LiveAuths) Auth(t *config.Target) config.Auth {
	if t.NetBSDIndex < 0 {
		return t.Auth
	}
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
	// Read at every login, as NetBSD did (the file is small, logins are
	// rare); parsed again only when its bytes changed, so an edit is
	// seen whatever it did to the file's size and times.
	b, err := os.ReadFile(l.path)
	if err != nil {
		msg := err.Error()
		if l.loaded && l.readErr == msg {
			return nil
		}
		l.loaded, l.readErr, l.content, l.accs = true, msg, nil, nil
		switch {
		case l.log == nil:
		case errors.Is(err, fs.ErrNotExist) && !l.seen:
			l.log.Debugf("no auths file %s: no CHAP users", l.path)
		case errors.Is(err, fs.ErrNotExist):
			l.log.Warnf("auths file %s is gone: no CHAP users until it is back", l.path)
		default:
			l.log.Warnf("auths file %s: %v: no CHAP users until it can be read", l.path, err)
		}
		return nil
	}
	if l.loaded && l.readErr == "" && bytes.Equal(b, l.content) {
		return l.accs
	}
	l.loaded, l.readErr, l.content, l.seen = true, "", b, true
	f, ds := netbsd.ParseAuths(l.path, b)
	l.accs = authsAccounts(f, &ds)
	if l.log != nil {
		for _, d := range ds {
			l.log.Warn(d.String())
		}
		l.log.WithField("users", len(l.accs)).Infof("auths file %s read", l.path)
	}
	return l.accs
}
