package acl

import (
	"errors"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// File names of IET's access-control files, in the order Files keeps them.
const (
	InitiatorsAllowFile = "initiators.allow"
	InitiatorsDenyFile  = "initiators.deny"
	TargetsAllowFile    = "targets.allow"
)

// ParseFunc parses one access-control file (compat.ParseACL). initiators
// is false for targets.allow.
type ParseFunc func(path string, src []byte, initiators bool) (*config.ACLFile, config.Diagnostics)

// Files keeps IET's initiators.allow, initiators.deny and targets.allow
// current, as IET re-read them on every login and SendTargets request:
// each check stats the files and re-reads one only when its device,
// inode, size or modification time changed. A file that does not parse is
// reported once per change and the rules read before stay in force; a file
// that disappears counts as absent. Files is safe for concurrent use.
type Files struct {
	dirs  []string
	parse ParseFunc
	log   *logrus.Entry

	mu    sync.Mutex
	files [3]watched
}

type watched struct {
	name  string
	path  string // the file last read ("" = absent)
	id    fileID // identity of the content last read (zero = absent)
	rules *config.ACLFile
	fault string // last stat/read failure reported
}

type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
}

// NewFiles watches the three files in dirs: each file is taken from the
// first directory where it exists (IET: /etc/iet, then /etc). log may be
// nil.
func NewFiles(dirs []string, parse ParseFunc, log *logrus.Entry) *Files {
	if log == nil {
		log = discardEntry()
	}
	f := &Files{dirs: dirs, parse: parse, log: log}
	for i, n := range []string{InitiatorsAllowFile, InitiatorsDenyFile, TargetsAllowFile} {
		f.files[i].name = n
	}
	return f
}

// Seed makes the access-control files of cfg (as the daemon loaded them
// at start) the rules in force and takes note of the files' current
// state, so that the first login does not read them again. Only errors
// are logged: the loader reported the warnings already.
func (f *Files) Seed(cfg *config.Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range []*config.ACLFile{cfg.InitiatorsAllow, cfg.InitiatorsDeny, cfg.TargetsAllow} {
		w := &f.files[i]
		w.rules, w.path, w.id = r, "", fileID{}
		if r != nil {
			w.path = r.Path
		}
		f.refresh(w, true)
	}
}

// Current returns the rules in force: initiators.allow, initiators.deny,
// targets.allow (nil = absent), re-reading the files that changed.
func (f *Files) Current() (allow, deny, targets *config.ACLFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.files {
		f.refresh(&f.files[i], false)
	}
	return f.files[0].rules, f.files[1].rules, f.files[2].rules
}

// refresh brings w up to date. quietWarnings suppresses parser warnings.
func (f *Files) refresh(w *watched, quietWarnings bool) {
	path, fi, err := f.find(w.name)
	if err != nil {
		f.fault(w, err.Error(), "cannot check the file; keeping its previous rules", err)
		return
	}
	if fi == nil {
		if w.rules != nil {
			f.log.WithField("file", w.path).Info("access-control file removed: no longer applies")
		}
		w.path, w.id, w.rules, w.fault = "", fileID{}, nil, ""
		return
	}
	id := identity(fi)
	if path == w.path && id == w.id {
		return
	}
	src, err := os.ReadFile(path)
	if err != nil {
		f.fault(w, err.Error(), "cannot read the file; keeping its previous rules", err)
		return
	}
	w.fault = ""
	rules, diags := f.parse(path, src, w.name != TargetsAllowFile)
	// Parse only on change: this content is not looked at again, whatever
	// the outcome.
	w.id = id
	if diags.Err() != nil {
		for _, d := range diags {
			if d.Severity == config.Error {
				f.log.WithField("file", path).Error(d.String())
			}
		}
		if rules == nil {
			f.log.WithField("file", path).Error("access-control file unreadable; keeping the rules in force before")
			w.path = path
			return
		}
		// As IET, which reads the file as it is at every login: the
		// items in error never match (a line with '[' and no ']' matches
		// no one). Keeping the rules in force before instead let
		// everyone in when the file was new (absent: no restriction).
		f.log.WithField("file", path).Error("access-control file has errors; applied as IET reads it: what is in error never matches")
		w.path, w.rules = path, rules
		return
	}
	if !quietWarnings {
		for _, d := range diags {
			f.log.WithField("file", path).Warn(d.String())
		}
		if w.rules == nil && w.name == InitiatorsDenyFile {
			f.log.WithField("file", path).Warn("initiators.deny is deprecated (legacy allow/deny mode: initiators not matched by the deny file are allowed)")
		}
		f.log.WithField("file", path).Info("access-control file read")
	}
	w.path, w.rules = path, rules
}

// fault logs a stat or read failure once until it changes.
func (f *Files) fault(w *watched, key, msg string, err error) {
	if w.fault == key {
		return
	}
	w.fault = key
	f.log.WithError(err).WithField("file", w.name).Error(msg)
}

// find stats name in the directories in order; fi is nil when it exists
// in none. Only "does not exist" moves on to the next directory, as in
// IET.
func (f *Files) find(name string) (string, os.FileInfo, error) {
	for _, d := range f.dirs {
		p := filepath.Join(d, name)
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return p, nil, err
		}
		return p, fi, nil
	}
	return "", nil, nil
}

func identity(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}

// Live is the access control the transport consults on every login and
// SendTargets request: IET's files as they are now (when Files is set and
// the config is an IET one), NetBSD netmasks, and warnings for netmask
// refusals (at most one a minute per initiator and target). A nil *Live
// evaluates the config's own data and logs nothing.
type Live struct {
	// Files, when set, replaces the access-control files of IET configs.
	Files *Files
	Log   *logrus.Entry
	// WarnEvery is the minimum interval between two netmask warnings for
	// the same initiator and target (default one minute).
	WarnEvery time.Duration
	// Now is the clock (tests).
	Now func() time.Time
	// ISNS, when set, is IET's iSNSAccessControl: whether the iSNS
	// server lets the initiator see the target (asked after the other
	// checks allowed it).
	ISNS func(target, initiator string) (bool, string)

	mu     sync.Mutex
	warned map[[2]string]time.Time
}

// maxWarned bounds the rate limiter's memory: when it is reached, expired
// entries and then arbitrary ones are forgotten down to half.
const maxWarned = 4096

// View is the access control of one request.
type View struct {
	cfg  *config.Config
	live *Live
}

// For returns the access control in force now for cfg (the config the
// transport runs). Files are checked once per call: take one View per
// login or SendTargets answer.
func (l *Live) For(cfg *config.Config) View {
	if l == nil || l.Files == nil || cfg == nil || cfg.Dialect != config.DialectIET {
		return View{cfg: cfg, live: l}
	}
	c := *cfg // shallow: only the three file pointers differ
	c.InitiatorsAllow, c.InitiatorsDeny, c.TargetsAllow = l.Files.Current()
	return View{cfg: &c, live: l}
}

// InitiatorAllowed is the package function of that name on the current
// rules. A netmask refusal is logged as a warning (discovery says whether
// the request is a SendTargets answer or a login).
func (v View) InitiatorAllowed(t *config.Target, initiatorName string, peer netip.Addr, discovery bool) (bool, string) {
	if t != nil && v.live != nil {
		if ok, why := netsAllow(t, peer.Unmap()); !ok {
			v.live.warnNetmask(t, initiatorName, peer, why, discovery)
			return false, why
		}
	}
	ok, why := InitiatorAllowed(v.cfg, t, initiatorName, peer)
	if ok && t != nil && v.live != nil && v.live.ISNS != nil {
		return v.live.ISNS(t.Name, initiatorName)
	}
	return ok, why
}

// PortalAllowed is the package function of that name on the current rules.
func (v View) PortalAllowed(t *config.Target, local netip.Addr) bool {
	return PortalAllowed(v.cfg, t, local)
}

func (l *Live) warnNetmask(t *config.Target, initiator string, peer netip.Addr, why string, discovery bool) {
	if l.Log == nil {
		return
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	every := l.WarnEvery
	if every <= 0 {
		every = time.Minute
	}
	key := [2]string{initiator, t.Name}
	t0 := now()
	l.mu.Lock()
	if l.warned == nil {
		l.warned = map[[2]string]time.Time{}
	}
	last, seen := l.warned[key]
	if seen && t0.Sub(last) < every {
		l.mu.Unlock()
		return
	}
	if len(l.warned) >= maxWarned {
		for k, at := range l.warned {
			if t0.Sub(at) >= every || len(l.warned) > maxWarned/2 {
				delete(l.warned, k)
			}
		}
	}
	l.warned[key] = t0
	l.mu.Unlock()
	what := "login refused"
	if discovery {
		what = "target left out of a discovery answer"
	}
	l.Log.WithFields(logrus.Fields{"initiator": initiator, "peer": peer.Unmap().String(), "target": t.Name}).
		Warnf("netmask: %s: %s (warned at most once a minute per initiator and target)", what, why)
}

func discardEntry() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
