package scsi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// lun is one logical unit as opened from one config: a backing store plus
// a pointer to the SCSI state of the device (unit attentions, mode
// parameters, reservations, medium state). A reload that reopens the
// store on the same medium builds a new lun around the same luState, so
// registrations, reservations and pending unit attentions carry over.
type lun struct {
	t     *Target
	cfg   *config.LUN // the config the store was opened from (identity fields: see id)
	num   uint64
	store backing.Store
	*luState

	bs      int           // logical block size
	shift   uint          // log2(bs)
	nblocks atomic.Uint64 // capacity in blocks (stored under mu when refreshed)
	ro      bool          // configured read-only
	thin    bool          // UNMAP works
	wc      bool          // write cache enabled (IOMode wb)
	direct  bool          // no read cache in the target (O_DIRECT)

	// id is what INQUIRY reports; a reload that changes only identity
	// fields swaps it in place.
	id atomic.Pointer[identity]

	// refs counts the commands executing on this lun (taken under t.mu
	// when the lun is looked up); a retired lun's store is closed only
	// when they are done.
	refs      atomic.Int64
	retired   atomic.Bool
	drained   chan struct{}
	drainOnce sync.Once
	// bg is the context of work that outlives its command (a SANITIZE);
	// retire cancels it.
	bg     context.Context
	stopBG context.CancelFunc

	// syncErr is the first failed sync of the store: every later FUA
	// write and SYNCHRONIZE CACHE reports it (see sync).
	syncErr atomic.Pointer[error]
	// syncErrPending: syncErr was carried over from the store this lun
	// replaced (a reload's sync of it failed) and no command has reported
	// it yet, so a further reopen carries it on (carrySyncFailure).
	syncErrPending atomic.Bool
}

// luState is the SCSI state of a logical unit that outlives a reopen of
// its backing store on the same medium.
type luState struct {
	mu      sync.Mutex
	ua      map[string][]asc // pending unit attentions per I_T nexus
	dsense  bool             // control page D_SENSE
	swp     bool             // control page SWP (software write protect)
	stopped bool             // START STOP UNIT stopped the unit
	ejected bool             // removable medium ejected
	prevent map[string]bool  // PREVENT ALLOW per I_T nexus
	// reserver is the RESERVE(6/10) holder (itKey), "" = none.
	reserver string
	pr       prState
	sanitize sanitizeState
	copies   map[string]copyStatus // held EXTENDED COPY results

	// locks orders overlapping commands (see rangeLocks).
	locks rangeLocks
	// sanitizeGen counts the sanitizes started: a command working in
	// steps (EXTENDED COPY) sees that one ran between two of them.
	sanitizeGen atomic.Uint64
}

func newLUState() *luState {
	s := &luState{ua: map[string][]asc{}, prevent: map[string]bool{}}
	s.locks.init()
	return s
}

// newLUN builds a logical unit over st. state is the SCSI state to keep
// (a reopen on the same medium) or nil for a new one.
func newLUN(t *Target, lc *config.LUN, st backing.Store, state *luState) (*lun, error) {
	l := &lun{t: t, cfg: lc, num: lc.Number, store: st, drained: make(chan struct{})}
	l.bg, l.stopBG = context.WithCancel(context.Background())
	bs, shift, nblocks, err := geometry(lc, st)
	if err != nil {
		return nil, err
	}
	l.bs, l.shift = bs, shift
	l.nblocks.Store(nblocks)
	// A device the system holds read-only is served write-protected
	// (backing warns at open): the WP bit tells initiators before they
	// write, instead of a LUN that looks writable and fails every write.
	l.ro = lc.ReadOnly() || backing.WriteProtected(st)
	l.wc = lc.IOMode == "wb"
	if w, ok := st.(backing.WriteCacher); ok {
		l.wc = w.WriteCacheEnabled()
	}
	if d, ok := st.(interface{ Direct() bool }); ok {
		l.direct = d.Direct()
	}
	l.thin = !l.ro && backing.CanUnmap(st)
	l.id.Store(newIdentity(t, lc))
	if state == nil {
		state = newLUState()
		if err := state.pr.init(t, lc.Number); err != nil {
			return nil, err
		}
	}
	l.luState = state
	return l, nil
}

// geometry is the block size and capacity of a LUN over st, or why it
// cannot be served.
func geometry(lc *config.LUN, st backing.Store) (bs int, shift uint, nblocks uint64, err error) {
	dev := 0
	if b, ok := st.(backing.BlockSizer); ok {
		dev = b.LogicalBlockSize()
	}
	bs = lc.BlockSize
	if bs == 0 {
		bs = max(512, dev)
	} else if bs < dev {
		// IET: EINVAL; the device cannot address a smaller block.
		return 0, 0, 0, fmt.Errorf("BlockSize %d is smaller than the device's logical block size %d", bs, dev)
	}
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 {
		return 0, 0, 0, fmt.Errorf("block size %d: must be a power of two from 512 to 65536", bs)
	}
	for 1<<shift < bs {
		shift++
	}
	nblocks = uint64(st.Size()) >> shift
	if nblocks == 0 {
		return 0, 0, 0, fmt.Errorf("backing store of %d bytes is smaller than one %d-byte block", st.Size(), bs)
	}
	return bs, shift, nblocks, nil
}

// CheckLUN runs on st, the opened store of lc, every check NewTarget and
// Reconfigure make before they serve the LUN (block size, at least one
// block): a change that passes it and backing.Open is served.
func CheckLUN(lc *config.LUN, st backing.Store) error {
	if _, _, _, err := geometry(lc, st); err != nil {
		return fmt.Errorf("LUN %d: %w", lc.Number, err)
	}
	return nil
}

// sanitizeState: a failed SANITIZE leaves the unit in failure mode.
type sanitizeState struct {
	running     bool  // a SANITIZE is in progress
	done, total int64 // progress: bytes written of total
	failed      bool  // sanitize failure mode
	ause        bool  // the failed sanitize allows EXIT FAILURE MODE
}

// sync and syncRange make writes durable with the sticky rule: after a
// sync of the store failed, every later one (FUA write, SYNCHRONIZE
// CACHE, each write of a write-through LUN) reports that error until the
// LUN is reopened. A failed sync means data acknowledged before it may be
// lost, and a later sync that succeeds does not bring it back (Linux
// reports a writeback error once; stores are not all that careful).
func (l *lun) sync() error {
	if p := l.syncErr.Load(); p != nil {
		l.syncErrPending.Store(false)
		return *p
	}
	err := l.store.Sync()
	l.noteSync(err)
	return err
}

func (l *lun) syncRange(off, n int64) error {
	if p := l.syncErr.Load(); p != nil {
		l.syncErrPending.Store(false)
		return *p
	}
	err := l.store.SyncRange(off, n)
	l.noteSync(err)
	return err
}

// noteSync keeps the first real sync failure (not a refused request).
func (l *lun) noteSync(err error) {
	if !syncFailure(err) {
		return
	}
	if l.syncErr.CompareAndSwap(nil, &err) {
		l.t.log.WithError(err).WithField("lun", l.num).
			Error("sync of the backing store failed: every later FUA write and SYNCHRONIZE CACHE fails until the LUN is reopened")
	}
}

// syncFailure reports whether err, from a sync, means written data may
// not have reached the medium (not a refused request).
func syncFailure(err error) bool {
	return err != nil && !errors.Is(err, backing.ErrRange) && !errors.Is(err, backing.ErrNotSupported) &&
		!errors.Is(err, context.Canceled)
}

// carrySyncFailure gives l, which replaces old on the same medium (a
// reload that reopened the store), a sync failure of old's store that no
// initiator has been told of: err, from the reload's sync of old's store
// (or the one when it closed), or the failure old carried over itself
// and never reported. Those writes were acknowledged (write-back); the
// new store has a descriptor of its own, which Linux never tells of the
// old writeback error, so its first sync would succeed and the next
// SYNCHRONIZE CACHE or FUA write would answer GOOD for lost data. A
// failure old reported already is not carried: a reopen starts afresh.
func (l *lun) carrySyncFailure(old *lun, err error) {
	if p := old.syncErr.Load(); p != nil {
		if !old.syncErrPending.Load() {
			return
		}
		err = *p
	}
	if !syncFailure(err) {
		return
	}
	if l.syncErr.CompareAndSwap(nil, &err) {
		l.syncErrPending.Store(true)
		l.t.log.WithError(err).WithField("lun", l.num).
			Error("sync of the backing store the reload replaced failed: every FUA write and SYNCHRONIZE CACHE of the reopened LUN fails until it is reopened again")
	}
}

// ident returns the identity INQUIRY reports.
func (l *lun) ident() *identity { return l.id.Load() }

// release ends a command's reference (see refs).
func (l *lun) release() {
	if l.refs.Add(-1) == 0 && l.retired.Load() {
		l.drainOnce.Do(func() { close(l.drained) })
	}
}

// retire waits until the commands executing on l are done; the caller
// has already made l unreachable for new commands.
func (l *lun) retire() {
	l.stopBG()
	l.retired.Store(true)
	if l.refs.Load() == 0 {
		l.drainOnce.Do(func() { close(l.drained) })
	}
	<-l.drained
}

// close waits for the commands in flight, syncs the store (what a
// write-back store still holds reaches the medium, and a write-back
// error that nobody asked for yet is reported) and closes it. syncErr
// is the sync's failure alone (see carrySyncFailure), err all of them.
func (l *lun) close() (syncErr, err error) {
	l.retire()
	var serr error
	if l.wc {
		if syncErr = l.store.Sync(); syncErr != nil {
			serr = fmt.Errorf("sync before close: %w", syncErr)
		}
	}
	return syncErr, errors.Join(serr, l.store.Close())
}

// refreshCapacity re-reads the store size; it reports a change.
func (l *lun) refreshCapacity() bool {
	if r, ok := l.store.(interface{ Refresh() (int64, error) }); ok {
		if _, err := r.Refresh(); err != nil {
			l.t.log.WithError(err).WithField("lun", l.num).Warn("cannot re-read the backing store size")
		}
	}
	n := uint64(l.store.Size()) >> l.shift
	l.mu.Lock()
	defer l.mu.Unlock()
	if n == l.nblocks.Load() || n == 0 {
		return false
	}
	l.nblocks.Store(n)
	return true
}

func (l *lun) capacity() uint64 { return l.nblocks.Load() }

// attach gives a new nexus its first unit attention (power-on/reset, or
// I_T nexus loss after a reinstatement).
func (l *lun) attach(key string, first asc) {
	l.t.log.Debugf("LUN %d: nexus %s attached", l.num, key)
	l.mu.Lock()
	l.ua[key] = []asc{first}
	l.mu.Unlock()
}

// attachQuiet registers a nexus on a LUN added at run time.
func (l *lun) attachQuiet(key string) {
	l.mu.Lock()
	if _, ok := l.ua[key]; !ok {
		l.ua[key] = nil
	}
	l.mu.Unlock()
}

// syncNexuses gives a LUN just put in service an entry for every nexus
// attached now (no unit attention: those the reload raises come on top)
// and drops the entries of nexuses gone meanwhile. The nexus list is read
// under l.mu (l.mu comes before Target.mu), so a nexus attaching
// concurrently either is listed or attaches to this LUN itself after.
func (l *lun) syncNexuses() {
	l.mu.Lock()
	defer l.mu.Unlock()
	attached := map[string]bool{}
	for _, k := range l.t.nexusKeys() {
		attached[k] = true
		if _, ok := l.ua[k]; !ok {
			l.ua[k] = nil
		}
	}
	for k := range l.ua {
		if !attached[k] {
			delete(l.ua, k)
		}
	}
}

// detach forgets a nexus: its RESERVE reservation and PREVENT state go.
func (l *lun) detach(key string) {
	l.t.log.Debugf("LUN %d: nexus %s detached", l.num, key)
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.ua, key)
	delete(l.prevent, key)
	if l.reserver == key {
		l.reserver = ""
	}
}

// establishUA queues a unit attention for every nexus except skip.
func (l *lun) establishUA(skip string, a asc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.establishUALocked(skip, a)
}

// establishUAFor queues a unit attention for the given nexuses (those
// still attached).
func (l *lun) establishUAFor(keys []string, a asc) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		q, ok := l.ua[k]
		if ok && !slices.Contains(q, a) && len(q) < maxQueuedUAs {
			l.ua[k] = append(q, a)
		}
	}
}

// maxQueuedUAs bounds the unit attentions queued for one nexus.
const maxQueuedUAs = 16

func (l *lun) establishUALocked(skip string, a asc) {
	for _, k := range l.t.nexusKeys() {
		if k == skip {
			continue
		}
		q := l.ua[k]
		if !slices.Contains(q, a) && len(q) < maxQueuedUAs {
			l.ua[k] = append(q, a)
		}
	}
}

func (l *lun) popUA(key string) (asc, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.popUALocked(key)
}

// popUALocked is popUA holding l.mu.
func (l *lun) popUALocked(key string) (asc, bool) {
	q := l.ua[key]
	if len(q) == 0 {
		return 0, false
	}
	a := q[0]
	l.ua[key] = q[1:]
	return a, true
}

// reset is a LOGICAL UNIT RESET or target reset: RESERVE reservations and
// PREVENT state are cleared, every nexus gets a unit attention.
func (l *lun) reset(a asc, issuer *Nexus) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reserver = ""
	l.prevent = map[string]bool{}
	l.stopped = false
	// SAM-5: every I_T nexus, the issuer's included, gets BUS DEVICE
	// RESET FUNCTION OCCURRED (multipath initiators rely on seeing it on
	// every path).
	for _, k := range l.t.nexusKeys() {
		l.ua[k] = []asc{a}
	}
	l.t.log.Debugf("LUN %d reset by %v: unit attention %04x for every nexus", l.num, issuer, uint16(a))
}

// writeProtected reports configured or software write protection.
func (l *lun) writeProtected() bool {
	if l.ro {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.swp
}

// writeProtectedLocked is writeProtected holding l.mu.
func (l *lun) writeProtectedLocked() bool { return l.ro || l.swp }

// cmdCtx is one command being executed.
type cmdCtx struct {
	ctx  context.Context
	cmd  *Command
	cdb  []byte
	key  string
	desc bool
	l    *lun
}

func (c *cmdCtx) fail(s senseData) Result { return checkCondition(s, c.desc) }

// execute runs a command on this LUN. The command context comes from the
// target's pool (nothing keeps it after the command).
func (l *lun) execute(ctx context.Context, cmd *Command) Result {
	c := l.t.ctxPool.Get().(*cmdCtx)
	*c = cmdCtx{ctx: ctx, cmd: cmd, cdb: cmd.CDB, key: itKey(cmd.Nexus), l: l}
	r := c.execute()
	*c = cmdCtx{}
	l.t.ctxPool.Put(c)
	return r
}

func (c *cmdCtx) execute() Result {
	d := lookupOp(c.cdb[0], c.cdb)
	l := c.l
	l.mu.Lock()
	c.desc = l.dsense
	r, ok := c.admitLocked(d)
	l.mu.Unlock()
	if !ok {
		return r
	}
	return d.fn(c)
}

// admitLocked makes the checks that come before a command runs, in the
// order SAM-5 and SPC-4 give them: a supported operation, a pending unit
// attention, a sanitize in progress, a reservation conflict, the medium,
// write protection. It runs holding l.mu, taken once per command; ok
// false: r is the command's refusal.
func (c *cmdCtx) admitLocked(d *opDesc) (r Result, ok bool) {
	l, op := c.l, c.cdb[0]
	if c.cmd.Attr > HeadOfQ {
		// The ACA task attribute (INQUIRY reports NormACA 0: no ACA
		// condition is ever established) and the reserved values: the
		// command is refused before it enters the task set.
		return c.fail(sense(keyIllegalRequest, ascInvalidFieldCDB)), false
	}
	if d == nil {
		if hasServiceActions(op) {
			return c.fail(invalidCDB(1, 4)), false
		}
		return c.fail(senseInvalidOpcode), false
	}
	if !d.supported(l) {
		if hasServiceActions(op) {
			// The operation code is supported, this service action is
			// not on this LUN (GET LBA STATUS, SANITIZE BLOCK ERASE
			// without thin provisioning): SPC-4 says INVALID FIELD IN
			// CDB, pointing at the SERVICE ACTION field.
			return c.fail(invalidCDB(1, 4)), false
		}
		return c.fail(senseInvalidOpcode), false
	}
	if len(c.cdb) < d.cdbLen {
		return c.fail(senseInvalidOpcode), false
	}
	if ctl := d.cdbLen - 1; c.cdb[ctl]&0x04 != 0 {
		// NACA set in the CONTROL byte while NormACA is 0 (SAM-5
		// 5.2): INVALID FIELD IN CDB, pointing at the bit.
		return c.fail(invalidCDB(ctl, 2)), false
	}
	if d.flags&fNoUA == 0 {
		if a, ok := l.popUALocked(c.key); ok {
			return c.fail(sense(keyUnitAttention, a)), false
		}
		if l.sanitize.running {
			return c.fail(sanitizeInProgress(l.sanitizeProgress())), false
		}
	}
	if l.conflictsLocked(c, d) {
		return Result{Status: StatusReservationConflict, XferLen: -1}, false
	}
	if d.flags&fMedium != 0 {
		if l.ejected {
			return c.fail(sense(keyNotReady, ascMediumNotPresent)), false
		}
		if l.stopped {
			return c.fail(sense(keyNotReady, ascNotReadyInitRequired)), false
		}
		if l.sanitize.failed && op != opSanitize {
			return c.fail(sense(keyMediumError, ascSanitizeFailed)), false
		}
	}
	if d.flags&fData != 0 && l.writeProtectedLocked() {
		return c.fail(senseWriteProt), false
	}
	return Result{}, true
}

// ioError maps a backing store error to sense data.
func (c *cmdCtx) ioError(err error, write bool) Result {
	switch {
	case errors.Is(err, backing.ErrNoSpace):
		return c.fail(sense(keyDataProtect, ascSpaceAllocFailedWP))
	case errors.Is(err, backing.ErrReadOnly):
		return c.fail(senseWriteProt)
	case errors.Is(err, backing.ErrRange):
		return c.fail(senseLBARange)
	case errors.Is(err, context.Canceled):
		return Result{Status: StatusTaskAborted, XferLen: -1}
	}
	c.l.t.log.WithError(err).WithField("lun", c.l.num).Warn("backing store I/O error")
	if write {
		return c.fail(sense(keyMediumError, ascWriteError))
	}
	return c.fail(sense(keyMediumError, ascUnrecoveredReadError))
}

func padASCII(s string, n int) string {
	b := []byte(s)
	for i := range b {
		if b[i] < 0x20 || b[i] > 0x7e {
			b[i] = ' '
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return string(b) + strings.Repeat(" ", n-len(b))
}
