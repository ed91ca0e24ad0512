package iscsi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ietgo/ietd/target/acl"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
)

// Device is what the transport needs from a target's SCSI layer;
// *scsi.Target implements it.
type Device interface {
	Execute(ctx context.Context, cmd *scsi.Command) scsi.Result
	// TaskManagement gets the other sessions' nexuses that had
	// commands aborted by the TMF (see scsi.Target.TaskManagement).
	TaskManagement(fn scsi.TMF, lun uint64, nexus *scsi.Nexus, aborted []*scsi.Nexus) byte
	NexusAttach(n *scsi.Nexus)
	NexusDetach(n *scsi.Nexus)
	Reconfigure(cfg *config.Target) error
	Close() error
}

// Options configure a Server.
type Options struct {
	Config *config.Config
	Log    *logrus.Entry
	// StateDir is passed to the SCSI layer (persistent reservations).
	StateDir string
	// Port is the TCP port advertised in SendTargets when a listener's own
	// port cannot be used (default 3260).
	Port int
	// NewDevice builds the SCSI layer of a target; nil uses scsi.NewTarget.
	NewDevice func(t *config.Target, o scsi.Options) (Device, error)
	// LoginTimeout bounds a whole login (default 15s).
	LoginTimeout time.Duration
	// ReinstateWait bounds how long a login that reinstates a session
	// waits for the old session's commands to end (default 10s). Past
	// it the login is refused with "service unavailable" (the initiator
	// retries): a command of the old session still writing must not run
	// beside, or after, the new session's.
	ReinstateWait time.Duration
	// MaxDataInFlight bounds the data-buffer memory of commands in flight
	// across all sessions (default 16 MiB); commands beyond it wait.
	MaxDataInFlight int
	// MaxBufferMemory bounds the memory retained by the data buffer pool
	// for reuse, over all size classes (default MaxDataInFlight, as much
	// as may be in flight: with less, the buffers of a full window of
	// large I/Os do not all fit when they come back, and every round of
	// commands allocates and clears new ones).
	MaxBufferMemory int
	// ACL is the access control consulted for every login and SendTargets
	// answer (current access-control files, netmask warnings); nil
	// evaluates the config's own access-control data.
	ACL *acl.Live
	// Accounts, when set, gives a target's CHAP accounts at each login
	// instead of the config's (login.Env.Accounts).
	Accounts func(t *config.Target) config.Auth
	// MaxLoggingIn bounds the connections in the login phase at once
	// (default 256); more are closed at once. Each holds at most a
	// login's text (login.maxLoginText) for at most LoginTimeout.
	MaxLoggingIn int
	// SessionsChanged, when set, is called after a normal session enters
	// the full feature phase and after one has ended, without the
	// server's locks held, so that listings of Sessions can follow at
	// once (IET's /proc/net/iet/session is live). It must not block.
	SessionsChanged func()
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("iscsi: server closed")

// Errors of the management API.
var (
	ErrNoSuchSession    = errors.New("iscsi: no such session")
	ErrNoSuchConnection = errors.New("iscsi: no such connection")
)

// Server is the iSCSI target engine: it accepts connections on listeners,
// runs logins, discovery and sessions, and drives one scsi.Target per
// configured target. See LOCKS.md for the lock order.
type Server struct {
	opts    Options
	log     *logrus.Entry
	pool    *pdu.BufPool
	mem     *memBudget
	nexusID atomic.Uint64

	mu        sync.Mutex
	cfg       *config.Config
	targets   map[int]*targetState
	sessions  map[uint16]*session
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	nextTSIH  uint16
	// preempting holds the *scsi.Command of every PREEMPT AND ABORT
	// waiting in AbortTasks (abort.go).
	preempting sync.Map
	// tsets are the task sets of the LUNs in use, by device and LUN
	// (taskset.go); tsetMu is a leaf lock.
	tsetMu sync.Mutex
	tsets  map[taskSetKey]*taskSet
	// loggingIn bounds connections in the login phase (MaxLoggingIn,
	// shared max-min fairly when full); lastLoginFull is when refusing or evicting one
	// was last logged.
	loggingIn     *loginSlots
	lastLoginFull atomic.Int64
	closed        bool
	connWG        sync.WaitGroup
}

type targetState struct {
	cfg *config.Target
	dev Device
}

// NewServer builds the engine (opens backing stores) from opts.Config.
func NewServer(opts Options) (*Server, error) {
	if opts.Config == nil {
		return nil, errors.New("iscsi: no config")
	}
	if opts.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		opts.Log = logrus.NewEntry(l)
	}
	if opts.Port == 0 {
		opts.Port = 3260
	}
	if opts.MaxLoggingIn <= 0 {
		opts.MaxLoggingIn = 256
	}
	if opts.LoginTimeout == 0 {
		opts.LoginTimeout = 15 * time.Second
	}
	if opts.ReinstateWait == 0 {
		opts.ReinstateWait = 10 * time.Second
	}
	if opts.MaxDataInFlight == 0 {
		opts.MaxDataInFlight = 16 << 20
	}
	if opts.MaxBufferMemory == 0 {
		opts.MaxBufferMemory = opts.MaxDataInFlight
	}
	if opts.NewDevice == nil {
		opts.NewDevice = func(t *config.Target, o scsi.Options) (Device, error) {
			return scsi.NewTarget(t, o)
		}
	}
	s := &Server{
		opts:      opts,
		log:       opts.Log,
		pool:      pdu.NewBufPool(nil, opts.MaxBufferMemory),
		mem:       newMemBudget(int64(opts.MaxDataInFlight)),
		loggingIn: newLoginSlots(opts.MaxLoggingIn),
		cfg:       opts.Config,
		targets:   map[int]*targetState{},
		sessions:  map[uint16]*session{},
		listeners: map[net.Listener]struct{}{},
		conns:     map[*conn]struct{}{},
	}
	s.mem.watch = s.watchBudget
	for _, t := range opts.Config.Targets {
		ts, err := s.openTarget(t)
		if err != nil {
			for _, o := range s.targets {
				o.dev.Close()
			}
			return nil, err
		}
		s.targets[t.TID] = ts
	}
	return s, nil
}

func (s *Server) openTarget(t *config.Target) (*targetState, error) {
	if t.Params.MaxConnections > 1 {
		s.log.WithField("target", t.Name).Infof("MaxConnections %d: one connection per session is implemented, 1 is negotiated",
			t.Params.MaxConnections)
	}
	dev, err := s.opts.NewDevice(t, scsi.Options{
		Log:      s.log.WithField("target", t.Name),
		StateDir: s.opts.StateDir,
		Dialect:  t.IdentityDialect(),
	})
	if err != nil {
		return nil, fmt.Errorf("iscsi: target %s: %w", t.Name, err)
	}
	if ta, ok := dev.(interface{ SetTaskAborter(scsi.TaskAborter) }); ok {
		ta.SetTaskAborter(taskAborter{srv: s})
	}
	return &targetState{cfg: t, dev: dev}, nil
}

// Serve accepts connections on l until Shutdown; it may be called for
// several listeners concurrently.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("iscsi: accept: %w", err)
		}
		backoff = 0
		c := newConn(s, nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) connDone(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connWG.Done()
}

// Shutdown stops accepting, asks initiators to log out (async message),
// waits for sessions to end until ctx is done, then closes everything.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for l := range s.listeners {
		l.Close()
	}
	var conns []*conn
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.requestLogout()
	}
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
		<-done
	}
	s.mu.Lock()
	targets := s.targets
	s.targets = map[int]*targetState{}
	s.mu.Unlock()
	for _, t := range targets {
		s.closeTarget(t)
	}
	return err
}

// closeTarget closes a target's SCSI layer, which syncs what its
// write-back stores still hold: a failure there means writes that were
// acknowledged may not be on the medium, and is logged.
func (s *Server) closeTarget(t *targetState) {
	if err := t.dev.Close(); err != nil {
		s.log.WithError(err).WithField("target", t.cfg.Name).
			Error("closing the target's backing stores failed: writes acknowledged before may be lost")
	}
}

// Reload reconciles the running engine with cfg: new targets/LUNs/accounts/
// ACLs take effect, removed ones are taken away (their sessions closed),
// sessions on unchanged targets stay up and get unit attentions for LUN
// changes. On error the old config stays in force.
func (s *Server) Reload(cfg *config.Config) error {
	if cfg == nil {
		return errors.New("iscsi: reload: no config")
	}
	s.mu.Lock()
	old := s.targets
	s.mu.Unlock()
	added := map[int]*targetState{}
	for _, t := range cfg.Targets {
		if ot, ok := old[t.TID]; ok && ot.cfg.Name == t.Name {
			continue
		}
		ts, err := s.openTarget(t)
		if err != nil {
			for _, a := range added {
				a.dev.Close()
			}
			return err
		}
		added[t.TID] = ts
	}
	var removed []*targetState
	next := map[int]*targetState{}
	for _, t := range cfg.Targets {
		if ts, ok := added[t.TID]; ok {
			next[t.TID] = ts
			continue
		}
		ot := old[t.TID]
		if err := ot.dev.Reconfigure(t); err != nil {
			// The daemon checked every new or changed LUN first
			// (daemon.CheckStores): only a store that changed since
			// gets here.
			s.log.WithError(err).WithField("target", t.Name).Error("reconfigure failed")
		}
		next[t.TID] = &targetState{cfg: t, dev: ot.dev}
	}
	for tid, ot := range old {
		if nt, ok := next[tid]; !ok || nt.dev != ot.dev {
			removed = append(removed, ot)
		}
	}
	s.mu.Lock()
	s.cfg = cfg
	s.targets = next
	var doomed []*session
	for _, ss := range s.sessions {
		for _, r := range removed {
			if ss.tgt.Load() == r {
				doomed = append(doomed, ss)
			}
		}
		if nt, ok := next[ss.tid]; ok && ss.dev != nil && nt.dev == ss.dev {
			ss.tgt.Store(nt)
		}
	}
	s.mu.Unlock()
	for _, ss := range doomed {
		ss.close()
	}
	for _, r := range removed {
		if n, ok := r.dev.(interface{ NoteRemoved() }); ok {
			n.NoteRemoved()
		}
		s.closeTarget(r)
	}
	return nil
}

// ServedLUNs lists the LUNs target tid serves and their capacity; ok is
// false when the target or its device cannot tell.
func (s *Server) ServedLUNs(tid int) (luns map[uint64]scsi.ServedLUN, ok bool) {
	s.mu.Lock()
	ts := s.targets[tid]
	s.mu.Unlock()
	if ts == nil {
		return nil, false
	}
	d, ok := ts.dev.(interface {
		ServedLUNs() map[uint64]scsi.ServedLUN
	})
	if !ok {
		return nil, false
	}
	return d.ServedLUNs(), true
}

// Config returns the config currently in force (do not modify it; copy,
// change and Reload).
func (s *Server) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// SessionInfo describes one session for listings (ietadm, /proc/net/iet/session).
type SessionInfo struct {
	TID           int
	TargetName    string
	SID           uint64 // IET-style: ISID<<16 | TSIH
	InitiatorName string
	Conns         []ConnInfo
	// Params are the negotiated session parameters (key=value).
	Params map[string]string
}

// ConnInfo describes one connection of a session.
type ConnInfo struct {
	CID          uint16
	IP           string // initiator address
	State        string // "active", "closing"
	HeaderDigest string // "CRC32C" or "NONE"
	DataDigest   string
}

// Sessions lists the live normal sessions.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		list = append(list, ss)
	}
	s.mu.Unlock()
	var out []SessionInfo
	for _, ss := range list {
		if ss.discovery {
			continue
		}
		out = append(out, ss.info())
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TID != out[j].TID {
			return out[i].TID < out[j].TID
		}
		return out[i].SID < out[j].SID
	})
	return out
}

func (s *Server) findSession(tid int, sid uint64) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[uint16(sid>>48)] // the TSIH: session.sid
	if ss == nil || ss.tid != tid || ss.sid() != sid {
		return nil
	}
	return ss
}

// CloseSession ends a session (ietadm --op delete --tid --sid).
func (s *Server) CloseSession(tid int, sid uint64) error {
	ss := s.findSession(tid, sid)
	if ss == nil {
		return ErrNoSuchSession
	}
	ss.close()
	return nil
}

// CloseConnection ends one connection (ietadm --op delete --tid --sid --cid).
func (s *Server) CloseConnection(tid int, sid uint64, cid uint16) error {
	ss := s.findSession(tid, sid)
	if ss == nil {
		return ErrNoSuchSession
	}
	c := ss.connection()
	if c == nil || c.cid != cid {
		return ErrNoSuchConnection
	}
	c.close()
	return nil
}

// lookupTarget resolves a login's TargetName with access control.
func (s *Server) lookupTarget(name, initiator string, local, peer netip.Addr) (*targetState, login.Status) {
	s.mu.Lock()
	cfg := s.cfg
	var ts *targetState
	for _, t := range s.targets {
		if sameName(t.cfg.Name, name) {
			ts = t
		}
	}
	s.mu.Unlock()
	if ts == nil {
		return nil, login.StatusNotFound
	}
	access := s.opts.ACL.For(cfg)
	if ok, reason := access.InitiatorAllowed(ts.cfg, initiator, peer, false); !ok {
		s.log.WithFields(logrus.Fields{"target": name, "initiator": initiator, "peer": peer.String()}).
			Infof("login denied: %s", reason)
		return nil, login.StatusNotFound
	}
	if !access.PortalAllowed(ts.cfg, local) {
		s.log.WithFields(logrus.Fields{"target": name, "portal": local.String()}).Info("login denied by targets.allow")
		return nil, login.StatusNotFound
	}
	return ts, login.StatusSuccess
}

// joinSession answers a login that adds a connection to the session of
// tsih (checked on its first request): one connection per session is
// implemented, so the session's existence only picks the status.
func (s *Server) joinSession(initiator string, isid [6]byte, tsih uint16) login.Status {
	s.mu.Lock()
	ss := s.sessions[tsih]
	s.mu.Unlock()
	if ss == nil || ss.isid != isid || !sameName(ss.initiator, initiator) {
		return login.StatusSessionNotFound
	}
	return login.StatusTooManyConnections
}

// admit runs session admission for a finished login (called from the
// connection goroutine): TSIH allocation, reinstatement, MaxSessions,
// MaxConnections.
func (s *Server) admit(c *conn, r *login.Result) (uint16, login.Status) {
	if r.TSIH != 0 {
		s.mu.Lock()
		_, exists := s.sessions[r.TSIH]
		s.mu.Unlock()
		if !exists {
			return 0, login.StatusSessionNotFound
		}
		// Only one connection per session is implemented.
		return 0, login.StatusTooManyConnections
	}
	var ts *targetState
	reinstated := false
	if r.SessionType == login.SessionNormal {
		s.mu.Lock()
		// By TID and name, not by pointer: a reload (SIGHUP or any
		// ietadm change) during the login gives every target a new
		// config entry, and the login's target is still there.
		for _, t := range s.targets {
			if t.cfg == r.Target || (t.cfg.TID == r.Target.TID && sameName(t.cfg.Name, r.Target.Name)) {
				ts = t
			}
		}
		s.mu.Unlock()
		if ts == nil {
			return 0, login.StatusTargetRemoved
		}
		// Reinstatement: the same initiator port (name + ISID) replaces its old session.
		var old []*session
		s.mu.Lock()
		for _, ss := range s.sessions {
			if !ss.discovery && ss.tgt.Load() == ts && sameName(ss.initiator, r.InitiatorName) && ss.isid == r.ISID {
				old = append(old, ss)
			}
		}
		s.mu.Unlock()
		for _, ss := range old {
			ss.close()
		}
		reinstated = len(old) > 0
		deadline := time.After(s.opts.ReinstateWait)
		for _, ss := range old {
			select {
			case <-ss.endedCh:
			case <-deadline:
				s.log.WithField("initiator", r.InitiatorName).Warnf("session reinstatement refused for now: the old session's commands have not ended after %s (a store not answering?); the initiator will retry", s.opts.ReinstateWait)
				return 0, login.StatusServiceUnavailable
			}
		}
		// Sessions of this initiator (other ISIDs) whose connection is
		// already gone are ending: let them finish first (briefly), so
		// that the new session does not meet their nexus state (a
		// PREVENT MEDIUM REMOVAL of the lost I_T nexus, RFC 7143's nexus
		// loss) just because their teardown was still running.
		s.mu.Lock()
		var ending []*session
		for _, ss := range s.sessions {
			if c := ss.connection(); !ss.discovery && ss.tgt.Load() == ts && sameName(ss.initiator, r.InitiatorName) && (c == nil || c.isClosing()) {
				ending = append(ending, ss)
			}
		}
		s.mu.Unlock()
		brief := time.After(min(s.opts.ReinstateWait, 2*time.Second))
	wait:
		for _, ss := range ending {
			select {
			case <-ss.endedCh:
			case <-brief:
				break wait
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, login.StatusServiceUnavailable
	}
	if ts != nil {
		// The waits above let a reload run: the session belongs to the
		// target in force now, on the same device, or to none. A reload
		// that removed the target closed its sessions and its device
		// before this one existed; one that kept it gave its sessions a
		// new entry, which this one must hold too (MaxSessions, the
		// next reinstatement and the next removal compare entries).
		cur := s.targets[ts.cfg.TID]
		if cur == nil || cur.dev != ts.dev {
			return 0, login.StatusTargetRemoved
		}
		ts = cur
	}
	if ts != nil && ts.cfg.MaxSessions > 0 {
		n := 0
		for _, ss := range s.sessions {
			if ss.tgt.Load() == ts {
				n++
			}
		}
		if n >= ts.cfg.MaxSessions {
			return 0, login.StatusTooManyConnections
		}
	}
	var tsih uint16
	for i := 0; i < 65536; i++ {
		s.nextTSIH++
		if s.nextTSIH == 0 {
			continue
		}
		if _, used := s.sessions[s.nextTSIH]; !used {
			tsih = s.nextTSIH
			break
		}
	}
	if tsih == 0 {
		return 0, login.StatusOutOfResources
	}
	ss := newSession(s, ts, r, tsih)
	if ss.nexus != nil {
		ss.nexus.Reinstated = reinstated
	}
	s.sessions[tsih] = ss
	ss.conn = c
	c.sess = ss
	return tsih, login.StatusSuccess
}

func (s *Server) removeSession(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.tsih] == ss {
		delete(s.sessions, ss.tsih)
	}
	s.mu.Unlock()
	if !ss.discovery {
		s.sessionsChanged()
	}
}

func (s *Server) sessionsChanged() {
	if f := s.opts.SessionsChanged; f != nil {
		f()
	}
}

// sessionsOfDevice returns the live sessions on the target whose SCSI
// layer is dev.
func (s *Server) sessionsOfDevice(dev Device) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.sessions {
		if ss.dev != nil && ss.dev == dev {
			out = append(out, ss)
		}
	}
	return out
}

// sessionsOf returns the live sessions of a target.
func (s *Server) sessionsOf(ts *targetState) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.sessions {
		if ss.tgt.Load() == ts {
			out = append(out, ss)
		}
	}
	return out
}
