package scsi

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// Options configure a Target.
type Options struct {
	Log *logrus.Entry
	// StateDir is where persistent state (APTPL reservations) is kept; ""
	// disables persistence.
	StateDir string
	// Dialect selects identity defaults (IET vs NetBSD INQUIRY data).
	Dialect config.Dialect
	// OpenStore opens a LUN's backing store; nil uses backing.Open.
	OpenStore func(l *config.LUN) (backing.Store, error)
}

// Target is the set of logical units of one iSCSI target. It is safe for
// concurrent use by every session of the target.
type Target struct {
	opts Options
	log  *logrus.Entry
	name string // the target's iSCSI name (a reload never changes it)

	reconf sync.Mutex // serialises Reconfigure and Close

	mu    sync.RWMutex
	cfg   *config.Target
	luns  map[uint64]*lun
	nexus map[string]*Nexus // attached I_T nexuses by itKey

	ctxPool sync.Pool // *cmdCtx, one per command in flight

	aborter atomic.Pointer[TaskAborter] // set by the transport
}

// SetTaskAborter registers the transport's TaskAborter (see TaskAborter).
func (t *Target) SetTaskAborter(a TaskAborter) {
	if a == nil {
		t.aborter.Store(nil)
		return
	}
	t.aborter.Store(&a)
}

// abortTasks aborts the commands of the nexuses keys on c's LUN, except c.
func (t *Target) abortTasks(c *cmdCtx, keys []string) {
	a := t.aborter.Load()
	if a == nil {
		return
	}
	t.mu.RLock()
	ns := make([]*Nexus, 0, len(keys))
	for _, k := range keys {
		if n := t.nexus[k]; n != nil {
			ns = append(ns, n)
		}
	}
	t.mu.RUnlock()
	if len(ns) > 0 {
		(*a).AbortTasks(c.l.num, ns, c.cmd)
	}
}

// NewTarget opens every LUN's backing store and builds the device set.
func NewTarget(cfg *config.Target, opts Options) (*Target, error) {
	if opts.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		opts.Log = logrus.NewEntry(l)
	}
	if opts.OpenStore == nil {
		log := opts.Log
		opts.OpenStore = func(l *config.LUN) (backing.Store, error) {
			return backing.Open(l, backing.OpenOptions{Log: log, StateDir: opts.StateDir})
		}
	}
	t := &Target{opts: opts, log: opts.Log, name: cfg.Name, cfg: cfg, luns: map[uint64]*lun{}, nexus: map[string]*Nexus{}}
	t.ctxPool.New = func() any { return new(cmdCtx) }
	for _, lc := range cfg.LUNs {
		l, err := t.openLUN(lc, nil)
		if err != nil {
			// As IET (a LUN its kernel module could not open was logged
			// and skipped): the target and its other LUNs are served; a
			// reload that finds the store openable adds the LUN (the
			// daemon leaves it out of the model in force too).
			e := t.log.WithError(err).WithField("lun", lc.Number)
			if lc.Pos.Line > 0 {
				e = e.WithField("config", lc.Pos.String())
			}
			e.Error("LUN left out: it cannot be served")
			continue
		}
		t.luns[lc.Number] = l
	}
	return t, nil
}

// openLUN opens a LUN's store; state is the SCSI state to keep (nil: new).
func (t *Target) openLUN(lc *config.LUN, state *luState) (*lun, error) {
	st, err := t.opts.OpenStore(lc)
	if err != nil {
		return nil, fmt.Errorf("LUN %d: %w", lc.Number, err)
	}
	l, err := newLUN(t, lc, st, state)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("LUN %d: %w", lc.Number, err)
	}
	return l, nil
}

// itKey identifies an I_T nexus across sessions: the initiator port name
// (iSCSI name + ISID) and the target port.
// NexusAttach caches it in the nexus.
func itKey(n *Nexus) string {
	if n == nil {
		return ""
	}
	if n.key != "" {
		return n.key
	}
	return n.InitiatorName + ",i,0x" + hex.EncodeToString(n.ISID[:]) + "|" + n.TargetName
}

// ServedLUN is what a served LUN reports: its capacity in blocks of
// BlockSize bytes.
type ServedLUN struct {
	Blocks    uint64
	BlockSize int
}

// ServedLUNs lists the LUNs being served: a LUN whose store could not be
// opened is not among them.
func (t *Target) ServedLUNs() map[uint64]ServedLUN {
	t.mu.RLock()
	luns := make([]*lun, 0, len(t.luns))
	for _, l := range t.luns {
		luns = append(luns, l)
	}
	t.mu.RUnlock()
	out := make(map[uint64]ServedLUN, len(luns))
	for _, l := range luns {
		out[l.num] = ServedLUN{Blocks: l.capacity(), BlockSize: l.bs}
	}
	return out
}

func (t *Target) lun(n uint64) *lun {
	t.mu.RLock()
	l := t.luns[n]
	t.mu.RUnlock()
	return l
}

// acquire looks a LUN up and takes a command reference on it (release
// it with lun.release); nil when there is no such LUN.
func (t *Target) acquire(n uint64) *lun {
	t.mu.RLock()
	l := t.luns[n]
	if l != nil {
		l.refs.Add(1)
	}
	t.mu.RUnlock()
	return l
}

// Execute runs one command to completion. ctx is cancelled when the task is
// aborted.
func (t *Target) Execute(ctx context.Context, cmd *Command) Result {
	if len(cmd.CDB) == 0 {
		return checkCondition(senseInvalidOpcode, false)
	}
	l := t.acquire(cmd.LUN)
	if l == nil {
		return t.noLUN(cmd)
	}
	r := l.execute(ctx, cmd)
	l.release()
	return r
}

// noLUN answers commands addressed to a LUN that does not exist.
func (t *Target) noLUN(cmd *Command) Result {
	switch cmd.CDB[0] {
	case opInquiry:
		if len(cmd.CDB) < 6 {
			return checkCondition(senseInvalidOpcode, false)
		}
		if cmd.CDB[1]&0x01 != 0 {
			return checkCondition(senseLUNNotSupp, false)
		}
		alloc := int(be16(cmd.CDB[3:]))
		d := make([]byte, 36)
		d[0] = 0x7f // peripheral qualifier 011b, device type 1Fh: no LUN here
		d[2] = 0x05
		d[3] = 0x02
		d[4] = 31
		return dataIn(d, alloc)
	case opReportLUNs:
		return t.reportLUNs(cmd, false) // no LUN: no D_SENSE to follow
	case opRequestSense:
		desc := len(cmd.CDB) > 1 && cmd.CDB[1]&1 != 0
		alloc := 0
		if len(cmd.CDB) >= 5 {
			alloc = int(cmd.CDB[4])
		}
		return dataIn(senseLUNNotSupp.encode(desc), alloc)
	}
	return checkCondition(senseLUNNotSupp, false)
}

// TaskManagement performs the SCSI side of a TMF (unit attentions,
// reservation release) and returns the iSCSI TMF response code
// (0 complete, 1 task does not exist, 2 LUN does not exist, 5 not supported).
// aborted are the other I_T nexuses that lost commands to it: after a
// CLEAR TASK SET each of them, and no other, gets COMMANDS CLEARED BY
// ANOTHER INITIATOR (SAM-5 5.6, TAS 0).
func (t *Target) TaskManagement(fn TMF, lunNum uint64, nexus *Nexus, aborted []*Nexus) byte {
	switch fn {
	case TMFAbortTask, TMFAbortTaskSet, TMFClearTaskSet:
		l := t.lun(lunNum)
		if l == nil {
			return 2
		}
		if fn == TMFClearTaskSet && len(aborted) > 0 {
			self := itKey(nexus)
			keys := make([]string, 0, len(aborted))
			for _, n := range aborted {
				if k := itKey(n); k != self {
					keys = append(keys, k)
				}
			}
			l.establishUAFor(keys, ascCommandsClearedByAnother)
		}
		return 0
	case TMFLogicalUnitReset:
		l := t.lun(lunNum)
		if l == nil {
			return 2
		}
		l.reset(ascBusDeviceReset, nexus)
		return 0
	case TMFTargetWarmReset, TMFTargetColdReset:
		t.mu.RLock()
		luns := make([]*lun, 0, len(t.luns))
		for _, l := range t.luns {
			luns = append(luns, l)
		}
		t.mu.RUnlock()
		for _, l := range luns {
			l.reset(ascBusDeviceReset, nexus)
		}
		return 0
	case TMFClearACA:
		// No ACA condition is ever established (NormACA 0): nothing to
		// clear, but the LUN must exist.
		if t.lun(lunNum) == nil {
			return 2
		}
		return 0
	}
	return 5
}

// StoreHealth reports the state of every RAID1 (NetBSD mirror) member in
// the store of LUN lun, one slice per mirror, depth first (see
// backing.MirrorHealth); nil when the store has no mirror or there is no
// such LUN. It is meant for status listings (ietadm, /run/iet/volume).
func (t *Target) StoreHealth(lun uint64) [][]backing.MemberHealth {
	l := t.acquire(lun)
	if l == nil {
		return nil
	}
	defer l.release()
	return backing.MirrorHealth(l.store)
}

// NexusAttach registers a new I_T nexus (a new session): it gets a
// power-on/reset unit attention on every LUN, or I_T NEXUS LOSS OCCURRED
// when it replaces a session of the same initiator port (n.Reinstated,
// or the old one still attached).
func (t *Target) NexusAttach(n *Nexus) {
	key := itKey(n)
	if n.key == "" { // first attach: before any command on the nexus
		n.key = key
	}
	t.mu.Lock()
	old, replaced := t.nexus[key]
	replaced = replaced && old != n
	t.nexus[key] = n
	luns := make([]*lun, 0, len(t.luns))
	for _, l := range t.luns {
		luns = append(luns, l)
	}
	t.mu.Unlock()
	first := ascPowerOnReset
	if replaced || n.Reinstated {
		first = ascITNexusLoss
	}
	for _, l := range luns {
		if replaced {
			// Reinstatement before the old session detached: what the
			// old one held goes now, as when it detaches first (its
			// late NexusDetach then leaves the new one alone).
			l.detach(key)
		}
		l.attach(key, first)
	}
}

// NexusDetach forgets a nexus (session gone): RESERVE(6/10) reservations it
// held are released; persistent reservations stay.
func (t *Target) NexusDetach(n *Nexus) {
	key := itKey(n)
	t.mu.Lock()
	if t.nexus[key] != n {
		// A newer session of the same initiator port (reinstatement)
		// holds the key now: its RESERVE(6), PREVENT and pending unit
		// attentions are its own, not this old session's to drop.
		t.mu.Unlock()
		return
	}
	delete(t.nexus, key)
	luns := make([]*lun, 0, len(t.luns))
	for _, l := range t.luns {
		luns = append(luns, l)
	}
	t.mu.Unlock()
	for _, l := range luns {
		l.detach(key)
	}
}

// nexusKeys lists the attached I_T nexuses.
func (t *Target) nexusKeys() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	keys := make([]string, 0, len(t.nexus))
	for k := range t.nexus {
		keys = append(keys, k)
	}
	return keys
}

// Reconfigure applies a changed target config and queues the matching
// unit attentions:
//
//   - a LUN whose store settings (Type, Path/Store, IOMode, BlockSize,
//     Blocks) are unchanged keeps its open store; identity changes
//     (ScsiId, ScsiSN, Vendor, Product, Revision, ScsiVersion, Removable,
//     Identity)
//     are applied in place with INQUIRY DATA HAS CHANGED, a grown or
//     shrunk store with CAPACITY DATA HAS CHANGED;
//   - a LUN whose store settings changed is reopened; on the same medium
//     (the same file or device tree) it keeps its SCSI state
//     (registrations, reservations, pending unit attentions, mode
//     parameters) and a capacity change raises CAPACITY DATA HAS CHANGED;
//   - added, removed or replaced LUNs raise REPORTED LUNS DATA HAS
//     CHANGED.
//
// An old store is closed only after the commands executing on it are
// done.
func (t *Target) Reconfigure(cfg *config.Target) error {
	t.reconf.Lock()
	defer t.reconf.Unlock()
	t.mu.RLock()
	old := t.luns
	t.mu.RUnlock()
	next := map[uint64]*lun{}
	var opened, newIdentity, wceChanged []*lun
	sameMediumCap := map[*lun]uint64{} // reopened on the same medium: old capacity
	var errs []error
	for _, lc := range cfg.LUNs {
		ol, had := old[lc.Number]
		if had && sameStore(ol.cfg, lc) {
			next[lc.Number] = ol
			if ol.updateIdentity(lc) {
				newIdentity = append(newIdentity, ol)
			}
			continue
		}
		var state *luState
		if had && sameMedium(ol.cfg, lc) {
			state = ol.luState
		}
		l, err := t.openLUN(lc, state)
		if err != nil {
			errs = append(errs, err)
			if had {
				next[lc.Number] = ol // keep serving the old one
			}
			continue
		}
		next[lc.Number] = l
		opened = append(opened, l)
		if state != nil {
			sameMediumCap[l] = ol.capacity()
			if ol.wc != l.wc {
				wceChanged = append(wceChanged, l)
			}
		}
		if had {
			// What the old store acknowledged reaches the medium before
			// the new one serves: going from wb to wt, an initiator
			// that sees WCE=0 no longer sends SYNCHRONIZE CACHE, and a
			// ranged one on the new store would not cover the old
			// store's writes. Writes still running on the old store
			// are synced when it closes.
			err := ol.store.Sync()
			if err != nil {
				t.log.WithError(err).WithField("lun", lc.Number).Error("syncing the old backing store before the reload replaces it")
			}
			if state != nil {
				// The same medium: a failure nobody was told of is
				// the new LUN's to report.
				l.carrySyncFailure(ol, err)
			}
		}
	}
	changed := len(next) != len(old)
	for n, l := range next {
		if o, ok := old[n]; !ok || (o != l && o.luState != l.luState) {
			changed = true
		}
	}
	keys := t.nexusKeys()
	for _, l := range opened {
		for _, k := range keys {
			l.attachQuiet(k)
		}
	}
	t.mu.Lock()
	t.cfg = cfg
	t.luns = next
	t.mu.Unlock()
	for _, l := range opened {
		// A session that attached or detached between the key list
		// above and the swap met the old LUN set: bring the new LUNs'
		// nexus entries in line with the nexuses attached now.
		l.syncNexuses()
	}
	for n, l := range old {
		if nl := next[n]; nl != l {
			serr, err := l.close()
			if err != nil {
				t.log.WithError(err).WithField("lun", n).Warn("closing the old backing store")
			}
			if nl != nil && nl.luState == l.luState {
				// Writes that ran on the old store during the swap.
				nl.carrySyncFailure(l, serr)
			}
		}
		if _, kept := next[n]; !kept {
			l.noteKeptPRState()
		}
	}
	for n, l := range next {
		grown := false
		if old[n] == l {
			grown = l.refreshCapacity() // a grown file
		} else if c, ok := sameMediumCap[l]; ok {
			grown = l.capacity() != c
		}
		if grown {
			l.establishUA("", ascCapacityChanged)
		}
	}
	for _, l := range newIdentity {
		l.establishUA("", ascInquiryDataChanged)
	}
	for _, l := range wceChanged {
		// IOMode wb <-> wt changed the caching page's WCE (SPC-4
		// 5.13: parameters changed by other means than MODE SELECT).
		l.establishUA("", ascModeParamsChanged)
	}
	if changed {
		for _, l := range next {
			l.establishUA("", ascReportedLUNsChanged)
		}
	}
	return errors.Join(errs...)
}

// updateIdentity applies the identity fields of lc; it reports a change.
func (l *lun) updateIdentity(lc *config.LUN) bool {
	nid := newIdentity(l.t, lc)
	if nid.equal(l.ident()) {
		return false
	}
	l.id.Store(nid)
	if !nid.removable {
		l.mu.Lock()
		l.ejected = false
		clear(l.prevent)
		l.mu.Unlock()
	}
	l.t.log.WithField("lun", l.num).Info("INQUIRY identity changed by reload")
	return true
}

// sameStore reports whether two LUN configs open the same store the same
// way (identity fields do not matter).
func sameStore(a, b *config.LUN) bool {
	return storeKey(a) == storeKey(b)
}

// sameMedium reports whether two LUN configs address the same data: the
// same store tree (kinds, paths, offsets), whatever the I/O mode, block
// size or size limits.
func sameMedium(a, b *config.LUN) bool {
	return mediumKey(a) == mediumKey(b)
}

func storeTree(st *config.Store, withSize bool) string {
	if st == nil {
		return "-"
	}
	s := fmt.Sprintf("[%d %q %d", st.Kind, st.Path, st.Offset)
	if withSize {
		s += fmt.Sprintf(" %d %v", st.Size, st.Create)
	}
	for _, m := range st.Members {
		s += storeTree(m, withSize)
	}
	return s + "]"
}

func storeKey(l *config.LUN) string {
	return fmt.Sprintf("%s|%d|%s|%d|", l.Type, l.Blocks, l.IOMode, l.BlockSize) + storeTree(l.Store, true)
}

func mediumKey(l *config.LUN) string {
	if l.Type == "nullio" {
		return "nullio"
	}
	return storeTree(l.Store, false)
}

// NoteRemoved is called when a reload removes the target: it logs the
// state files its LUNs leave behind (noteKeptPRState).
func (t *Target) NoteRemoved() {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, l := range t.luns {
		l.noteKeptPRState()
	}
}

// Close closes every backing store, each once the commands executing on
// it are done.
func (t *Target) Close() error {
	t.reconf.Lock()
	defer t.reconf.Unlock()
	t.mu.Lock()
	luns := t.luns
	t.luns = map[uint64]*lun{}
	t.mu.Unlock()
	var errs []error
	for n, l := range luns {
		if _, err := l.close(); err != nil {
			errs = append(errs, fmt.Errorf("LUN %d: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// reportLUNs answers REPORT LUNS; desc selects descriptor-format sense
// (the addressed LUN's D_SENSE).
func (t *Target) reportLUNs(cmd *Command, desc bool) Result {
	cdb := cmd.CDB
	if len(cdb) < 12 {
		return checkCondition(senseInvalidOpcode, desc)
	}
	alloc := int(be32(cdb[6:]))
	switch cdb[2] {
	case 0x00, 0x02:
	case 0x01, 0x10, 0x11, 0x12:
		// well-known LUNs only / administrative: we have none.
		d := make([]byte, 8)
		return dataIn(d, alloc)
	default:
		return checkCondition(invalidCDB(2, -1), desc)
	}
	t.mu.RLock()
	nums := make([]uint64, 0, len(t.luns))
	for n := range t.luns {
		nums = append(nums, n)
	}
	t.mu.RUnlock()
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	d := make([]byte, 8+8*len(nums))
	putBE32(d[0:], uint32(8*len(nums)))
	for i, n := range nums {
		encodeLUN(d[8+8*i:], n)
	}
	return dataIn(d, alloc)
}

// encodeLUN writes a SAM LUN: peripheral addressing below 256, flat above.
func encodeLUN(b []byte, n uint64) {
	if n < 256 {
		b[1] = byte(n)
		return
	}
	b[0] = 0x40 | byte(n>>8)&0x3f
	b[1] = byte(n)
}
