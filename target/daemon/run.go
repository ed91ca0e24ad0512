package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/ietgo/ietd/target/acl"
	"github.com/ietgo/ietd/target/admin"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/iscsi"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
)

// Options configure Run.
type Options struct {
	Log *logrus.Entry
	// Load reads the configuration (at start and on every SIGHUP).
	Load func() (*config.Config, config.Diagnostics, error)
	// LoadAtStart, when set, replaces Load at start: it may return a
	// config that leaves out broken items, with error diagnostics and a
	// nil error (a SIGHUP reload with errors is refused as a whole).
	LoadAtStart func() (*config.Config, config.Diagnostics, error)
	// Addresses to listen on ("" = every address, IPv4 and IPv6).
	// Hostnames are resolved; each result gets a listener.
	Addresses []string
	// Network is "tcp", "tcp4" or "tcp6".
	Network string
	Port    int
	// Listeners, when set, are used instead of binding (tests). Systemd
	// socket activation (LISTEN_FDS) is picked up automatically.
	Listeners   []net.Listener
	PIDFile     string
	AdminSocket string
	// PIDFileOptional: a pid file that cannot be written is warned and
	// the daemon runs without it (NetBSD's iscsi-target only printed a
	// message); a pid file locked by a running instance still refuses.
	PIDFileOptional bool
	// AdminSocketOptional: an admin socket that cannot be created is
	// warned and the daemon runs without it (ietadm cannot reach it); a
	// socket another daemon answers on still refuses.
	AdminSocketOptional bool
	StateDir            string
	// ProcDir receives the IET /proc/net/iet style files "volume" and
	// "session" ("" = not written).
	ProcDir string
	// UID/GID to switch to after binding (-1 = keep).
	UID, GID int
	// ACLFiles, when set, keeps IET's access-control files current: they
	// are checked on every login and SendTargets request (as IET re-read
	// them) instead of only at start and on SIGHUP.
	ACLFiles *acl.Files
	// Accounts, when set, gives a target's CHAP accounts at each login
	// (NetBSD's auths file, re-read when it changes).
	Accounts func(t *config.Target) config.Auth
	// ParseLUN is used by ietadm --op new --lun.
	ParseLUN func(number uint64, params string) (*config.LUN, error)
	// Ready is called once the daemon listens (or with the start-up error).
	Ready func(error)
	// ShutdownTimeout bounds the orderly logout on SIGTERM (default 10s).
	ShutdownTimeout time.Duration
	// Signals, when non-nil, replaces the process signals (tests).
	Signals <-chan os.Signal

	// started, when set (tests in this package), is called with the
	// daemon once it serves, before the main loop starts.
	started func(*Daemon)
}

// Daemon is a running service.
type Daemon struct {
	opts  Options
	log   *logrus.Entry
	srv   *iscsi.Server
	admin *admin.Server
	// change is held for a whole reload and a whole admin operation
	// (read the running config, edit, apply): they never interleave.
	// runtime and tids are under it. Taken before mu.
	change sync.Mutex
	mu     sync.Mutex // the apply itself and the /proc files
	ops    *admin.Ops
	// runtime holds the names of targets created with ietadm; they are
	// kept across config reloads.
	runtime map[string]bool
	tids    tidCounter
	// leftOut holds the LUNs the start could not serve (leftOutKey), as
	// long as reloads find them unchanged and still unservable
	// (keepLeftOut). Under change.
	leftOut map[string]*config.LUN
	// isns registers the targets with an iSNS server (config.ISNS).
	isns isnsState
}

// tidCounter is the daemon's next target id: it only grows, so an id is
// never given to another target while the daemon runs (IET's kernel
// counter; tools that remember a tid must not find another target
// there).
type tidCounter struct {
	mu   sync.Mutex
	next int
}

func (c *tidCounter) Next() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.next, 1)
}

func (c *tidCounter) Taken(tid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = max(c.next, tid+1)
}

// Run starts the service and blocks until ctx is cancelled or SIGTERM/
// SIGINT arrives, then shuts down in order.
func Run(ctx context.Context, opts Options) (err error) {
	ready := opts.Ready
	if ready == nil {
		ready = func(error) {}
	}
	defer func() {
		if err != nil {
			ready(err)
		}
	}()
	if opts.Log == nil {
		opts.Log = logrus.NewEntry(logrus.StandardLogger())
	}
	if opts.ShutdownTimeout == 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	log := opts.Log
	// Catch signals before anything else: a SIGTERM that arrives right
	// after readiness is reported (an init script stopping at once) must
	// shut down in order, not kill the process with its pid file left.
	sigs := opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		sigs = ch
	}
	load := opts.Load
	if opts.LoadAtStart != nil {
		load = opts.LoadAtStart
	}
	cfg, diags, err := load()
	for _, d := range diags {
		if d.Severity == config.Warning {
			log.Warn(d.String())
		} else {
			log.Error(d.String())
		}
	}
	if err != nil {
		return err
	}
	pid, err := CreatePIDFile(opts.PIDFile)
	if err != nil {
		if !opts.PIDFileOptional || errors.Is(err, ErrPIDFileLocked) {
			return err
		}
		log.WithError(err).Warn("running without a pid file")
		pid = nil
	}
	defer func() {
		if err := pid.Remove(); err != nil {
			log.WithError(err).Warn("pid file not removed at exit (the daemon's user may not delete files in its directory)")
		}
	}()

	adminL, err := listenAdmin(opts)
	if err != nil {
		if !opts.AdminSocketOptional || errors.Is(err, admin.ErrSocketInUse) {
			return err
		}
		log.WithError(err).Warn("running without the admin socket: ietadm cannot reach this daemon")
		adminL = nil
	}
	if adminL != nil {
		defer os.Remove(opts.AdminSocket)
	}
	listeners, err := opts.listeners()
	if err != nil {
		if adminL != nil {
			adminL.Close()
		}
		return err
	}
	// Directories the daemon writes are made while it is still root.
	if opts.StateDir != "" {
		if err := ownedDir(opts.StateDir, 0o700, opts.UID, opts.GID); err != nil {
			log.WithError(err).Warn("state directory unavailable: persistent reservations will not survive a restart")
			opts.StateDir = ""
		} else if lock, err := LockStateDir(opts.StateDir); errors.Is(err, ErrStateDirLocked) {
			closeAll(listeners)
			if adminL != nil {
				adminL.Close()
			}
			return err
		} else if err != nil {
			// A read-only state directory: its state is read, and
			// changes that cannot be saved fail.
			log.WithError(err).Warn("state directory not locked: another daemon could use it too")
		} else {
			defer lock.Close()
			removeStaleTemporaries(opts.StateDir, log)
		}
	}
	if opts.ProcDir != "" {
		if err := ownedDir(opts.ProcDir, 0o755, opts.UID, opts.GID); err != nil {
			log.WithError(err).Warn("listing directory unavailable: the volume and session files are not written")
		}
	}
	if err := dropPrivileges(opts.UID, opts.GID); err != nil {
		closeAll(listeners)
		if adminL != nil {
			adminL.Close()
		}
		return err
	}
	if opts.ACLFiles != nil && cfg.Dialect == config.DialectIET {
		opts.ACLFiles.Seed(cfg)
	}
	access := &acl.Live{Files: opts.ACLFiles, Log: log}
	var d *Daemon // the iSNS check below is called only once it serves
	access.ISNS = func(target, initiator string) (bool, string) { return d.isnsAllowed(target, initiator) }
	// procDirty asks the loop below to rewrite the listings: a session
	// began or ended (IET's /proc/net/iet/session is live; the ticker is
	// the backstop for what changes without an event).
	procDirty := make(chan struct{}, 1)
	var sessionsChanged func()
	if opts.ProcDir != "" {
		sessionsChanged = func() {
			select {
			case procDirty <- struct{}{}:
			default:
			}
		}
	}
	srv, err := iscsi.NewServer(iscsi.Options{Config: cfg, Log: log, StateDir: opts.StateDir, Port: opts.Port, ACL: access,
		Accounts: opts.Accounts, SessionsChanged: sessionsChanged})
	if err != nil {
		closeAll(listeners)
		return err
	}
	d = &Daemon{opts: opts, log: log, srv: srv, runtime: map[string]bool{}}
	if served, out := leaveOutUnserved(cfg, srv.ServedLUNs); served != cfg {
		d.leftOut = out
		if err := srv.Reload(served); err != nil {
			log.WithError(err).Error("leaving the LUNs that cannot be served out of the configuration")
		}
		for i, t := range served.Targets {
			if len(t.LUNs) == 0 && len(cfg.Targets[i].LUNs) > 0 && t.IdentityDialect() == config.DialectNetBSD {
				e := log.WithField("target", t.Name)
				if t.Pos.Line > 0 {
					e = e.WithField("config", t.Pos.String())
				}
				e.Error("target has no LUN left: not listed in discovery (NetBSD's iscsi-target refused to start)")
			}
		}
	}
	d.tids.Taken(cfg.NextTID() - 1)
	d.ops = &admin.Ops{Engine: (*engine)(d), ParseLUN: opts.ParseLUN, TIDs: &d.tids, Lock: &d.change,
		Created: func(n string) { d.runtime[n] = true },
		Deleted: func(n string) { delete(d.runtime, n) }, DeregisterISNS: d.isnsDeregister}
	uid := os.Getuid()
	d.admin = &admin.Server{Handler: d.ops, Log: log, AllowUID: uid}

	serveErr := make(chan error, len(listeners)+1)
	for _, l := range listeners {
		go func(l net.Listener) {
			if err := srv.Serve(l); err != nil && !errors.Is(err, iscsi.ErrServerClosed) {
				serveErr <- fmt.Errorf("listener %s: %w", l.Addr(), err)
			}
		}(l)
	}
	if adminL != nil {
		go d.admin.Serve(adminL)
	}
	var addrs []string
	for _, l := range listeners {
		addrs = append(addrs, l.Addr().String())
	}
	isnsCtx, isnsCancel := context.WithCancel(ctx)
	defer isnsCancel()
	d.isns.mu.Lock()
	d.isns.ctx, d.isns.portals = isnsCtx, listenerPortals(listeners)
	d.isns.mu.Unlock()
	d.isnsApply(srv.Config())
	log.WithField("listen", addrs).Infof("serving %d target(s)", len(cfg.Targets))
	if opts.ProcDir != "" {
		// Before ready: the parent exits (an init script, a Pacemaker
		// agent reading the volume listing goes on) only once it exists.
		d.writeProc()
	}
	ready(nil)
	notify(notifyReady)

	var watchdog <-chan time.Time
	wdInterval := watchdogInterval()
	if wdInterval > 0 {
		t := time.NewTicker(wdInterval / 2)
		defer t.Stop()
		watchdog = t.C
	}
	// The listings are written beside this loop: a write waits for d.mu,
	// which an ietadm change holds while it opens its stores (a slow
	// disk), and this loop must go on feeding the watchdog meanwhile.
	stopProc := func() {}
	if opts.ProcDir != "" {
		stopProc = d.writeProcLoop(procDirty, 2*time.Second)
	}
	shutdown := func() error {
		// (Before shutdown removes the listings: none is written again.)
		stopProc()
		return d.shutdown(sigs)
	}
	if opts.started != nil {
		opts.started(d)
	}
	for {
		select {
		case <-ctx.Done():
			return shutdown()
		case err := <-serveErr:
			log.WithError(err).Error("listener failed")
			shutdown()
			return err
		case s := <-sigs:
			switch s {
			case syscall.SIGHUP:
				notify(notifyReloading)
				// A reload may wait long for the commands on old stores
				// and their final sync (a slow or failing device): the
				// watchdog is kept fed meanwhile, from beside this loop,
				// so that systemd does not kill a daemon that is busy.
				stopFeeding := feedWatchdog(wdInterval/2, func() { notify(notifyWatchdog) })
				rerr := d.Reload()
				stopFeeding()
				if rerr != nil {
					if j, ok := rerr.(interface{ Unwrap() []error }); ok {
						for _, e := range j.Unwrap() {
							log.Error(e.Error())
						}
						log.Error("reload failed; keeping the running configuration")
					} else {
						log.WithError(rerr).Error("reload failed; keeping the running configuration")
					}
				}
				notify(notifyReady)
			default:
				log.Infof("%v: shutting down", s)
				return shutdown()
			}
		case <-watchdog:
			notify(notifyWatchdog)
		}
	}
}

// writeProcLoop rewrites the listings on every signal of dirty and every
// period, from its own goroutine, until the returned function is called;
// that function returns once the goroutine has stopped.
func (d *Daemon) writeProcLoop(dirty <-chan struct{}, period time.Duration) (stop func()) {
	return every(period, dirty, d.writeProc)
}

// feedWatchdog calls ping every period (none when period is 0) until
// the returned function is called; that function returns once the
// pinging has stopped.
func feedWatchdog(period time.Duration, ping func()) (stop func()) {
	if period <= 0 {
		return func() {}
	}
	return every(period, nil, ping)
}

// every calls fn from its own goroutine every period and on every signal
// of wake (nil: none) until the returned function is called, which
// returns once the goroutine has stopped.
func every(period time.Duration, wake <-chan struct{}, fn func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			case <-wake:
			}
			fn()
		}
	}()
	return func() {
		close(quit)
		<-done
	}
}

// shutdown stops the service: initiators are asked to log out and given
// ShutdownTimeout to do so; a second SIGTERM or SIGINT meanwhile (an
// impatient operator, an init script stopping again) ends that wait at
// once: the remaining connections are closed, the commands running finish,
// and the stores are still synced and closed before the exit (SIGKILL
// is the way to skip that).
func (d *Daemon) shutdown(sigs <-chan os.Signal) error {
	notify(notifyStopping)
	d.admin.Close()
	// Deregistering from iSNS goes on beside the logouts.
	isnsDone := make(chan struct{})
	go func() {
		defer close(isnsDone)
		d.isnsStop()
	}()
	defer func() { <-isnsDone }()
	ctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownTimeout)
	defer cancel()
	waited := make(chan struct{})
	defer close(waited)
	go func() {
		for {
			select {
			case <-waited:
				return
			case s := <-sigs:
				if s == syscall.SIGHUP {
					continue // no reload while stopping
				}
				d.log.Warnf("%v during shutdown: closing the connections without waiting for logouts (the stores are still synced)", s)
				cancel()
				return
			}
		}
	}()
	err := d.srv.Shutdown(ctx)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		d.log.Warn("initiators did not log out in time; connections closed")
		err = nil
	case errors.Is(err, context.Canceled):
		err = nil
	}
	if d.opts.ProcDir != "" {
		os.Remove(filepath.Join(d.opts.ProcDir, "session"))
		os.Remove(filepath.Join(d.opts.ProcDir, "volume"))
	}
	return err
}

// Reload re-reads the configuration and applies it. Targets created with
// ietadm are kept; targets keep their TID when their name is unchanged.
func (d *Daemon) Reload() error {
	cfg, diags, err := d.opts.Load()
	for _, dg := range diags {
		if dg.Severity == config.Warning {
			d.log.Warn(dg.String())
		}
	}
	if err != nil {
		return reloadErrors(err)
	}
	d.change.Lock() // no admin operation between reading cur and applying next
	defer d.change.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.srv.Config()
	next, nextTID := MergeReload(cur, cfg, d.runtime, d.tids.Next())
	still := d.keepLeftOut(cur, next)
	if err := CheckStores(cur, next); err != nil {
		return err
	}
	if err := d.srv.Reload(next); err != nil {
		return err
	}
	d.leftOut = still
	d.tids.Taken(nextTID - 1)
	d.log.WithField("targets", len(next.Targets)).Info("configuration reloaded")
	d.isnsApply(next)
	d.writeProcLocked(next)
	return nil
}

// reloadErrors turns the loader's refusal into one error per problem
// (Run logs each on its own line, file:line:col first, as the start
// does): the Diagnostics the loader returns list its warnings too, which
// Reload logged already, all in one multi-line message.
func reloadErrors(err error) error {
	var ds config.Diagnostics
	if !errors.As(err, &ds) {
		return err
	}
	var errs []error
	for _, dg := range ds {
		if dg.Severity == config.Error {
			errs = append(errs, errors.New(dg.String()))
		}
	}
	if len(errs) == 0 {
		return err
	}
	return errors.Join(errs...)
}

// MergeReload prepares a freshly loaded config for Server.Reload: a target
// whose name is unchanged keeps its running TID (so its sessions stay up),
// running targets named in runtime that the file does not define are
// carried over, and every other target gets a new TID from nextTID on
// (TIDs are never reused while the daemon runs, as in IET). It returns the
// next unused TID.
func MergeReload(cur, loaded *config.Config, runtime map[string]bool, nextTID int) (*config.Config, int) {
	next := loaded.Clone()
	// Target names compare without case, as in IET (and iSCSI names are
	// case-insensitive): a file target "…:foo" is the running "…:Foo".
	key := strings.ToLower
	byName := map[string]int{}
	for _, t := range cur.Targets {
		byName[key(t.Name)] = t.TID
		nextTID = max(nextTID, t.TID+1)
	}
	inNext := map[string]bool{}
	for _, t := range next.Targets {
		inNext[key(t.Name)] = true
		if tid, ok := byName[key(t.Name)]; ok {
			t.TID = tid
		}
	}
	for _, t := range cur.Targets {
		if runtime[t.Name] && !inNext[key(t.Name)] {
			c := (&config.Config{Targets: []*config.Target{t}}).Clone().Targets[0]
			next.Targets = append(next.Targets, c)
		}
	}
	for _, t := range next.Targets {
		if _, ok := byName[key(t.Name)]; !ok {
			t.TID = nextTID
			nextTID++
		}
	}
	return next, nextTID
}

// leaveOutUnserved returns cfg without the LUNs the engine left out at
// start because it could not serve them (it logged why), or cfg itself
// when it serves them all, and the LUNs left out (leftOutKey). IET did not
// create such a LUN ("unable to create logical unit"): the model in force
// must not hold it either, or ietadm would answer EEXIST to adding it and
// delete a LUN that is not there.
func leaveOutUnserved(cfg *config.Config, served func(tid int) (map[uint64]scsi.ServedLUN, bool)) (*config.Config, map[string]*config.LUN) {
	var out *config.Config
	left := map[string]*config.LUN{}
	for i, t := range cfg.Targets {
		luns, ok := served(t.TID)
		if !ok {
			continue
		}
		for _, l := range t.LUNs {
			if _, ok := luns[l.Number]; ok {
				continue
			}
			if out == nil {
				out = cfg.Clone()
			}
			left[leftOutKey(t.Name, l.Number)] = l
			ot := out.Targets[i]
			for j, x := range ot.LUNs {
				if x.Number == l.Number {
					ot.LUNs = append(ot.LUNs[:j], ot.LUNs[j+1:]...)
					break
				}
			}
		}
	}
	if out == nil {
		return cfg, nil
	}
	return out, left
}

func leftOutKey(target string, lun uint64) string {
	return strings.ToLower(target) + "\x00" + strconv.FormatUint(lun, 10)
}

// keepLeftOut lets a reload through when the only LUNs it cannot serve are
// ones the start left out, unchanged in the file and still unservable (a
// disk that is not there yet): they are left out again with a warning, as
// a restart would leave them out, instead of the whole reload being
// refused until the disk appears. A LUN the file defines differently, or
// that now checks out, is new again: checked and served as any other. A
// number that the running target serves (ietadm added a LUN there) is not
// touched. It returns what is still left out after next is applied.
func (d *Daemon) keepLeftOut(cur, next *config.Config) map[string]*config.LUN {
	if len(d.leftOut) == 0 {
		return nil
	}
	running := map[string]*config.Target{}
	for _, t := range cur.Targets {
		running[strings.ToLower(t.Name)] = t
	}
	still := map[string]*config.LUN{}
	for _, t := range next.Targets {
		rt := running[strings.ToLower(t.Name)]
		kept := t.LUNs[:0]
		for _, l := range t.LUNs {
			k := leftOutKey(t.Name, l.Number)
			lo := d.leftOut[k]
			if lo == nil || (rt != nil && rt.LUN(l.Number) != nil) || !sameLUN(lo, l) {
				kept = append(kept, l)
				continue
			}
			err := checkLUN(l)
			if err == nil {
				kept = append(kept, l) // it can be served now
				continue
			}
			where := ""
			if l.Pos != (config.Position{}) {
				where = l.Pos.String() + ": "
			}
			d.log.Warnf("%starget %s: %v: still left out, as at start", where, t.Name, err)
			still[k] = l
		}
		t.LUNs = kept
	}
	return still
}

// engine adapts the daemon to admin.Engine.
type engine Daemon

func (e *engine) Config() *config.Config { return e.srv.Config() }
func (e *engine) Apply(cfg *config.Config) error {
	d := (*Daemon)(e)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := CheckStores(d.srv.Config(), cfg); err != nil {
		return err
	}
	if err := d.srv.Reload(cfg); err != nil {
		return err
	}
	d.writeProcLocked(cfg)
	d.isnsApply(cfg)
	return nil
}
func (e *engine) Sessions() []iscsi.SessionInfo { return e.srv.Sessions() }
func (e *engine) ServedLUNs(tid int) (map[uint64]scsi.ServedLUN, bool) {
	return e.srv.ServedLUNs(tid)
}
func (e *engine) CloseSession(tid int, sid uint64) error {
	return e.srv.CloseSession(tid, sid)
}
func (e *engine) CloseConnection(tid int, sid uint64, cid uint16) error {
	return e.srv.CloseConnection(tid, sid, cid)
}

func (d *Daemon) writeProc() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writeProcLocked(d.srv.Config())
}

func (d *Daemon) writeProcLocked(cfg *config.Config) {
	if d.opts.ProcDir == "" {
		return
	}
	if err := os.MkdirAll(d.opts.ProcDir, 0o755); err != nil {
		return
	}
	writeIfChanged(filepath.Join(d.opts.ProcDir, "volume"), admin.VolumeListing(cfg, d.srv.ServedLUNs))
	writeIfChanged(filepath.Join(d.opts.ProcDir, "session"), admin.SessionListing(cfg, d.srv.Sessions()))
}

func writeIfChanged(path, text string) {
	if b, err := os.ReadFile(path); err == nil && string(b) == text {
		return
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return
	}
	os.Rename(tmp, path)
}

// listenAdmin creates the admin socket (nil when opts has none).
func listenAdmin(opts Options) (net.Listener, error) {
	if opts.AdminSocket == "" {
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(opts.AdminSocket), 0o755); err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ul, err := admin.Listen(opts.AdminSocket)
	if err != nil {
		return nil, err
	}
	// The daemon's own user may use ietadm after -u/-g: the socket is
	// 0600, so it must own it. Lchown: a link put in the socket's place
	// must not give the daemon's user the file it names.
	if err := os.Lchown(opts.AdminSocket, owner(opts.UID), owner(opts.GID)); err != nil {
		ul.Close()
		os.Remove(opts.AdminSocket)
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ul, nil
}

func (o *Options) listeners() ([]net.Listener, error) {
	if len(o.Listeners) > 0 {
		return o.Listeners, nil
	}
	if ls, err := activation.Listeners(); err == nil && len(ls) > 0 {
		var out []net.Listener
		for _, l := range ls {
			if l != nil {
				out = append(out, l)
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	network := o.Network
	if network == "" {
		network = "tcp"
	}
	port := strconv.Itoa(o.Port)
	addrs := o.Addresses
	if len(addrs) == 0 {
		addrs = []string{""}
	}
	var out []net.Listener
	for _, a := range addrs {
		hosts := []string{a}
		if a != "" && net.ParseIP(a) == nil {
			resolved, err := net.LookupHost(a)
			if err != nil {
				closeAll(out)
				return nil, fmt.Errorf("listen address %s: %w", a, err)
			}
			hosts = resolved
		}
		for _, h := range hosts {
			l, err := net.Listen(network, net.JoinHostPort(h, port))
			if err != nil {
				closeAll(out)
				return nil, fmt.Errorf("listen: %w", err)
			}
			out = append(out, l)
		}
	}
	return out, nil
}

func closeAll(ls []net.Listener) {
	for _, l := range ls {
		l.Close()
	}
}

// owner is the uid or gid argument of chown for -u/-g (0 or negative:
// unchanged, as in IET).
func owner(id int) int {
	if id > 0 {
		return id
	}
	return -1
}

// ownedDir creates dir and gives it to the daemon's user and group.
// removeStaleTemporaries removes the temporary files of state writes a
// crash interrupted (statefile.Write): under the state directory's lock
// no write of ours is running, and the state files themselves hold the
// state from before the interrupted write.
func removeStaleTemporaries(dir string, log *logrus.Entry) {
	names, _ := filepath.Glob(filepath.Join(dir, "*.json.tmp*"))
	for _, n := range names {
		if err := os.Remove(n); err == nil {
			log.WithField("file", n).Info("removed the temporary file of an interrupted state write")
		}
	}
}

func ownedDir(dir string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if uid > 0 || gid > 0 {
		return os.Chown(dir, owner(uid), owner(gid))
	}
	return nil
}

func dropPrivileges(uid, gid int) error {
	if gid > 0 && gid != os.Getgid() {
		if err := syscall.Setgroups([]int{gid}); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("setgid %d: %w", gid, err)
		}
	}
	if uid > 0 && uid != os.Getuid() {
		if err := syscall.Setuid(uid); err != nil {
			return fmt.Errorf("setuid %d: %w", uid, err)
		}
	}
	return nil
}
