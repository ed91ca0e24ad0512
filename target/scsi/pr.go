package scsi

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/ietgo/ietd/target/statefile"
	"github.com/sirupsen/logrus"
)

// Persistent reservation types.
const (
	prWE   = 0x1
	prEA   = 0x3
	prWERO = 0x5
	prEARO = 0x6
	prWEAR = 0x7
	prEAAR = 0x8
)

// prState is the persistent reservation state of a LUN (under lun.mu).
type prState struct {
	Generation uint32
	// Regs maps an I_T nexus (itKey) to its reservation key, Order keeps
	// registration order for READ KEYS.
	Regs  map[string]uint64
	Order []string
	// Holder is the reservation holder's itKey ("" = no reservation);
	// for all-registrants types every registrant holds it.
	Holder string
	Type   byte
	APTPL  bool

	path   string // state file ("" = not persisted: no state directory)
	target string // the target and LUN the file is of
	lun    uint64
	// saved is what the file holds (nil: no file; empty: unknown, after
	// a failed write or removal).
	saved []byte
}

// prFileVersion is the version of the persistent reservation state file
// written; a file without one (version 0) was written before the file
// named its target and LUN, and is read the same way.
const prFileVersion = 1

// prFile is the state file of a LUN's persistent reservations (written
// only while APTPL is in force and registrations exist).
type prFile struct {
	Version    int    `json:"Version"`
	Target     string `json:"Target"`
	LUN        uint64 `json:"LUN"`
	Generation uint32
	Regs       map[string]uint64
	Order      []string
	Holder     string
	Type       byte
	APTPL      bool
}

// legacyUnsafeChars are what a legacy state file name did not take from a
// target name (prLegacyStatePath; statefile.Name keeps the same set).
var legacyUnsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// prStatePath is the state file of a LUN of target name under dir, named
// after the name in lower case (iSCSI names compare without case) by
// statefile.Name, so that two targets never share a file (a:b and a_b
// did, before).
func prStatePath(dir, name string, lunNum uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s.lun%d.pr.json", statefile.Name(strings.ToLower(name)), lunNum))
}

// prLegacyStatePath is where daemons before prStatePath kept the state
// file: a name that targets a:b and a_b shared.
func prLegacyStatePath(dir, name string, lunNum uint64) string {
	safe := legacyUnsafeChars.ReplaceAllString(name, "_")
	return filepath.Join(dir, fmt.Sprintf("%s.lun%d.pr.json", safe, lunNum))
}

// otherTargets reports whether the state file b is plainly of another
// target than target: it names one, or its registrations are all on
// another target's port. A legacy file name was shared by targets whose
// names differ only in characters it replaced.
func otherTargets(b []byte, target string) bool {
	var f prFile
	if json.Unmarshal(b, &f) != nil {
		return false
	}
	if f.Version > 0 {
		return f.Target != "" && !strings.EqualFold(f.Target, target)
	}
	if len(f.Order) == 0 {
		return false
	}
	for _, k := range f.Order {
		if _, port, _ := strings.Cut(k, "|"); strings.EqualFold(port, target) {
			return false
		}
	}
	return true
}

// decodePRState checks and decodes a state file for LUN lunNum of target
// name. Anything but a file this daemon wrote for that LUN is an error:
// a state that cannot be trusted is never applied (it might fence the
// wrong initiators), nor silently dropped (the next change would
// overwrite it).
func decodePRState(b []byte, target string, lunNum uint64) (*prFile, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f prFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the state")
	}
	switch {
	case f.Version < 0 || f.Version > prFileVersion:
		return nil, fmt.Errorf("format version %d is not one this daemon reads (%d)", f.Version, prFileVersion)
	case f.Version > 0 && !strings.EqualFold(f.Target, target):
		return nil, fmt.Errorf("the state of target %q, not of %q", f.Target, target)
	case f.Version > 0 && f.LUN != lunNum:
		return nil, fmt.Errorf("the state of LUN %d, not of LUN %d", f.LUN, lunNum)
	case !f.APTPL:
		return nil, errors.New("APTPL is not set (only APTPL state is kept)")
	case len(f.Regs) == 0:
		return nil, errors.New("no registrations")
	case len(f.Order) != len(f.Regs):
		return nil, fmt.Errorf("%d registrations but %d in the registration order", len(f.Regs), len(f.Order))
	}
	seen := map[string]bool{}
	for _, k := range f.Order {
		v, ok := f.Regs[k]
		switch {
		case !ok:
			return nil, fmt.Errorf("registration order names %q, which is not registered", k)
		case seen[k]:
			return nil, fmt.Errorf("registration order names %q twice", k)
		case v == 0:
			return nil, fmt.Errorf("%q is registered with reservation key 0", k)
		}
		seen[k] = true
		// An I_T nexus names the target port it is on: the state of
		// another target (a renamed file) does not pass.
		_, port, ok := strings.Cut(k, "|")
		if !ok || !strings.EqualFold(port, target) || !strings.Contains(k[:len(k)-len(port)-1], ",i,0x") {
			return nil, fmt.Errorf("registration %q is not an I_T nexus of target %q", k, target)
		}
	}
	if f.Holder == "" {
		if f.Type != 0 {
			return nil, fmt.Errorf("reservation type %#x without a holder", f.Type)
		}
	} else {
		if _, ok := f.Regs[f.Holder]; !ok {
			return nil, fmt.Errorf("reservation holder %q is not registered", f.Holder)
		}
		switch f.Type {
		case prWE, prEA, prWERO, prEARO, prWEAR, prEAAR:
		default:
			return nil, fmt.Errorf("reservation type %#x is not one SPC-4 defines", f.Type)
		}
	}
	return &f, nil
}

// encode is the state file of p (for LUN lunNum of target).
func (p *prState) encode(target string, lunNum uint64) []byte {
	b, _ := json.Marshal(prFile{Version: prFileVersion, Target: target, LUN: lunNum, Generation: p.Generation,
		Regs: p.Regs, Order: p.Order, Holder: p.Holder, Type: p.Type, APTPL: p.APTPL})
	return append(b, '\n')
}

// init loads the LUN's state file, if any; a file that cannot be read or
// trusted keeps the LUN from being served (an error naming the file).
func (p *prState) init(t *Target, lunNum uint64) error {
	p.Regs = map[string]uint64{}
	if t.opts.StateDir == "" {
		return nil
	}
	p.target, p.lun = t.name, lunNum
	p.path = prStatePath(t.opts.StateDir, t.name, lunNum)
	from := p.path
	b, err := statefile.Read(from)
	if errors.Is(err, fs.ErrNotExist) {
		from = prLegacyStatePath(t.opts.StateDir, t.name, lunNum)
		b, err = statefile.Read(from)
		if errors.Is(err, fs.ErrNotExist) || err == nil && otherTargets(b, t.name) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("persistent reservation state: %w (fix or remove it)", err)
	}
	f, err := decodePRState(b, t.name, lunNum)
	if err != nil {
		return fmt.Errorf("persistent reservation state %s: %v (fix or remove it)", from, err)
	}
	p.Regs, p.Order, p.Holder, p.Type, p.APTPL, p.Generation = f.Regs, f.Order, f.Holder, f.Type, f.APTPL, f.Generation
	if from == p.path {
		p.saved = p.encode(p.target, p.lun)
		return nil
	}
	// A legacy file moves to this LUN's own name: written there (synced)
	// before the old one goes, so a crash in between leaves both, and
	// the new one is read.
	if err := p.persist(); err != nil {
		return fmt.Errorf("persistent reservation state %s: moving it to %s: %w", from, p.path, err)
	}
	lg := t.log.WithFields(logrus.Fields{"lun": lunNum, "from": from, "file": p.path})
	if err := removeState(from); err != nil {
		// The new file is the one read from now on.
		lg.WithError(err).Warn("persistent reservation state file copied to its new name; the old one could not be removed (remove it)")
		return nil
	}
	lg.Info("persistent reservation state file moved to its new name")
	return nil
}

// persist makes the state file say what p holds: written while APTPL is
// in force, removed when it is not. It writes only what changed, and an
// error means the file still holds the state before the change.
func (p *prState) persist() error {
	if p.path == "" {
		return nil
	}
	if !p.APTPL || len(p.Regs) == 0 {
		if p.saved == nil {
			return nil
		}
		if err := removeState(p.path); err != nil {
			return err
		}
		p.saved = nil
		return nil
	}
	b := p.encode(p.target, p.lun)
	if bytes.Equal(b, p.saved) {
		return nil
	}
	// Synced: APTPL promises the reservations survive a power loss.
	if err := writeState(p.path, b); err != nil {
		return err
	}
	p.saved = b
	return nil
}

// noteKeptPRState logs, for a LUN a reload removed (alone or with its
// target), that its APTPL state
// file stays: a LUN of that number added back (even on another medium,
// since it gets the same identity) has those registrations again, as the
// same LUN after a power loss would. Fencing is not dropped by a LUN
// going missing for a while; removing the file drops it.
func (l *lun) noteKeptPRState() {
	l.mu.Lock()
	path, saved := l.pr.path, l.pr.saved != nil
	l.mu.Unlock()
	if saved {
		l.t.log.WithFields(logrus.Fields{"lun": l.num, "file": path}).
			Info("LUN removed; its persistent reservations (APTPL) stay in the state file and apply again if the LUN is added back: remove the file to drop them")
	}
}

// writeState and removeState are statefile's (a test makes them fail).
var (
	writeState  = statefile.Write
	removeState = statefile.Remove
)

// snapshot is a copy of the state a PERSISTENT RESERVE OUT changes (under
// l.mu), restored when the change cannot be saved.
type prSnapshot struct {
	pr      prState
	ua      map[string][]asc
	prevent map[string]bool
	// restored: the state went back to this snapshot.
	restored bool
}

func (l *lun) prSnapshot() prSnapshot {
	s := prSnapshot{pr: l.pr, ua: make(map[string][]asc, len(l.ua)), prevent: maps.Clone(l.prevent)}
	s.pr.Regs = maps.Clone(l.pr.Regs)
	s.pr.Order = slices.Clone(l.pr.Order)
	for k, q := range l.ua {
		s.ua[k] = slices.Clone(q)
	}
	return s
}

func (l *lun) restore(s prSnapshot) {
	l.pr, l.ua, l.prevent = s.pr, s.ua, s.prevent
}

// persistOrRestore saves a PERSISTENT RESERVE OUT's change (under l.mu).
// A change APTPL says survives a power loss and that cannot be saved is
// not made: the state goes back to s and the command fails (no space:
// INSUFFICIENT REGISTRATION RESOURCES; otherwise HARDWARE ERROR).
func (c *cmdCtx) persistOrRestore(s *prSnapshot) (Result, bool) {
	l := c.l
	err := l.pr.persist()
	if err == nil {
		return Result{}, true
	}
	l.restore(*s)
	s.restored = true
	l.pr.saved = []byte{}
	l.t.log.WithError(err).WithFields(logrus.Fields{"lun": l.num, "state": l.pr.path}).
		Error("cannot save the persistent reservation state: PERSISTENT RESERVE OUT failed, nothing changed")
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return c.fail(sense(keyIllegalRequest, ascInsufficientRegResources)), false
	}
	return c.fail(sense(keyHardwareError, ascInternalTargetFailure)), false
}

func allRegistrants(t byte) bool { return t == prWEAR || t == prEAAR }

// isHolder reports whether key holds the persistent reservation.
func (p *prState) isHolder(key string) bool {
	if p.Holder == "" {
		return false
	}
	if allRegistrants(p.Type) {
		_, ok := p.Regs[key]
		return ok
	}
	return p.Holder == key
}

func (p *prState) register(key string, k uint64) {
	if _, ok := p.Regs[key]; !ok {
		p.Order = append(p.Order, key)
	}
	p.Regs[key] = k
}

func (p *prState) unregister(key string) {
	delete(p.Regs, key)
	for i, k := range p.Order {
		if k == key {
			p.Order = append(p.Order[:i], p.Order[i+1:]...)
			break
		}
	}
}

// conflicts decides RESERVATION CONFLICT for a command (SPC-4 5.13 and
// SPC-2 reservations).
func (l *lun) conflicts(c *cmdCtx, d *opDesc) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conflictsLocked(c, d)
}

// conflictsLocked is conflicts holding l.mu.
func (l *lun) conflictsLocked(c *cmdCtx, d *opDesc) bool {
	p := &l.pr
	if p.Holder == "" {
		if l.reserver == "" || l.reserver == c.key {
			return false
		}
		return d.flags&fResvAllowed == 0
	}
	class := prClass(d, c.cdb)
	if class == 0 {
		// RESERVE/RELEASE(6/10) decide for themselves (reserve6).
		return false
	}
	if p.isHolder(c.key) {
		return false
	}
	_, registered := p.Regs[c.key]
	switch p.Type {
	case prWE:
		return class&fWrite != 0
	case prEA:
		return true
	case prWERO, prWEAR:
		return !registered && class&fWrite != 0
	case prEARO, prEAAR:
		return !registered
	}
	return false
}

// prClass is the persistent reservation conflict class of a command
// (fRead, fWrite, both or none), from its descriptor and, for the few
// whose class depends on a field, its CDB (SPC-4 table 62, SBC-3 table
// 13): PREVENT ALLOW MEDIUM REMOVAL conflicts like a write when it
// prevents, START STOP UNIT is allowed when it starts the unit with no
// power condition.
func prClass(d *opDesc, cdb []byte) uint {
	class := d.flags & (fRead | fWrite)
	if len(cdb) < 5 {
		return class
	}
	switch cdb[0] {
	case 0x1e: // PREVENT ALLOW MEDIUM REMOVAL
		if cdb[4]&0x03 != 0 {
			class |= fWrite
		}
	case 0x1b: // START STOP UNIT
		if cdb[4]&0x01 != 0 && cdb[4]>>4 == 0 {
			class = 0
		}
	}
	return class
}

func (c *cmdCtx) conflict() Result { return Result{Status: StatusReservationConflict, XferLen: -1} }

// uaTo queues a unit attention for specific nexuses (under l.mu), as
// establishUALocked does: once per condition, at most maxQueuedUAs, and
// only for nexuses attached (a registrant's nexus that is not starts with
// POWER ON when it attaches; queueing for it grew without bound).
func (l *lun) uaTo(keys []string, a asc) {
	for _, k := range keys {
		q, attached := l.ua[k]
		if !attached || slices.Contains(q, a) || len(q) >= maxQueuedUAs {
			continue
		}
		l.ua[k] = append(q, a)
	}
}

func (c *cmdCtx) prIn() Result {
	cdb := c.cdb
	alloc := int(be16(cdb[7:]))
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	p := &l.pr
	switch cdb[1] & 0x1f {
	case 0: // READ KEYS
		d := make([]byte, 8, 8+8*len(p.Order))
		putBE32(d, p.Generation)
		for _, k := range p.Order {
			var b [8]byte
			putBE64(b[:], p.Regs[k])
			d = append(d, b[:]...)
		}
		putBE32(d[4:], uint32(len(d)-8))
		return dataIn(d, alloc)
	case 1: // READ RESERVATION
		d := make([]byte, 8)
		putBE32(d, p.Generation)
		if p.Holder != "" {
			r := make([]byte, 16)
			if !allRegistrants(p.Type) {
				putBE64(r, p.Regs[p.Holder])
			}
			r[13] = p.Type
			d = append(d, r...)
			putBE32(d[4:], 16)
		}
		return dataIn(d, alloc)
	case 2: // REPORT CAPABILITIES
		d := make([]byte, 8)
		putBE16(d, 8)
		// CRH, and ATP_C: a target has one target port (TPGT 1), so a
		// registration with ALL_TG_PT=1 is one on that port, which the
		// REGISTER service actions make whatever the bit says.
		d[2] = 0x10 | 0x04
		if p.path != "" {
			d[2] |= 0x01 // PTPL_C: a state directory keeps APTPL state
		}
		d[3] = 0x80 // TMV
		if p.APTPL {
			d[3] |= 0x01
		}
		d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02 // WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX
		d[5] = 0x01                             // EX_AC_AR
		return dataIn(d, alloc)
	case 3: // READ FULL STATUS
		d := make([]byte, 8)
		putBE32(d, p.Generation)
		for _, k := range p.Order {
			tid := transportID(k)
			e := make([]byte, 24, 24+len(tid))
			putBE64(e, p.Regs[k])
			if p.isHolder(k) {
				e[12] = 0x01 // R_HOLDER
				e[13] = p.Type
			}
			putBE16(e[18:], 1) // relative target port
			putBE32(e[20:], uint32(len(tid)))
			e = append(e, tid...)
			d = append(d, e...)
		}
		putBE32(d[4:], uint32(len(d)-8))
		return dataIn(d, alloc)
	}
	return c.fail(invalidCDB(1, 4))
}

// transportID renders an iSCSI TransportID (format 01b: name,i,0x<ISID>).
func transportID(key string) []byte {
	name, _, _ := strings.Cut(key, "|")
	b := []byte(name)
	b = append(b, 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	d := make([]byte, 4, 4+len(b))
	d[0] = 0x40 | 0x05
	putBE16(d[2:], uint16(len(b)))
	return append(d, b...)
}

func (c *cmdCtx) prOut() Result {
	var abort []string
	r := c.prOutApply(&abort)
	if r.Status == StatusGood && len(abort) > 0 {
		// PREEMPT AND ABORT: once the reservation is the preempting
		// nexus's, the preempted nexuses' commands are aborted (SPC-4
		// 5.13.11.2.6), the PERSISTENT RESERVE OUT itself excepted.
		c.l.t.abortTasks(c, abort)
	}
	return r
}

// prOutApply performs a PERSISTENT RESERVE OUT under the LU lock; for
// PREEMPT AND ABORT it lists in abort the I_T nexuses whose commands are
// to be aborted.
func (c *cmdCtx) prOutApply(abort *[]string) (r Result) {
	cdb := c.cdb
	sa := cdb[1] & 0x1f
	scope, typ := cdb[2]>>4, cdb[2]&0x0f
	plen := int(be32(cdb[5:]))
	if sa > 7 {
		return c.fail(invalidCDB(1, 4))
	}
	if sa == 7 {
		return c.registerAndMove(plen)
	}
	if plen != 24 {
		return c.fail(senseParamLen)
	}
	if len(c.cmd.DataOut) < 24 {
		return c.fail(senseParamLen)
	}
	prm := c.cmd.DataOut[:24]
	rk, sak := be64(prm[0:]), be64(prm[8:])
	// ALL_TG_PT (prm[20] bit 2) needs nothing: the I_T nexus's target
	// port is the target's only one (ATP_C=1 in REPORT CAPABILITIES).
	specIPT, aptpl := prm[20]&0x08 != 0, prm[20]&0x01 != 0
	if specIPT {
		return c.fail(invalidParam(20, 3))
	}
	if aptpl && (sa == 0 || sa == 6) && c.l.pr.path == "" {
		// No state directory: PTPL_C is 0 (SPC-4 6.16.3).
		return c.fail(invalidParam(20, 0))
	}
	needType := sa == 1 || sa == 2 || sa == 4 || sa == 5
	if needType {
		if scope != 0 {
			return c.fail(invalidCDB(2, 7))
		}
		switch typ {
		case prWE, prEA, prWERO, prEARO, prWEAR, prEAAR:
		default:
			return c.fail(invalidCDB(2, 3))
		}
	}
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserver != "" && l.reserver != c.key {
		return c.conflict()
	}
	snap := l.prSnapshot()
	defer func() {
		// A PREEMPT AND ABORT that conflicts or fails has dropped
		// nothing (PREVENT state) and aborts nothing.
		if r.Status != StatusGood && !snap.restored {
			l.restore(snap)
			*abort = nil
		}
	}()
	p := &l.pr
	cur, registered := p.Regs[c.key]
	others := func(skip string) []string {
		var ks []string
		for _, k := range p.Order {
			if k != skip {
				ks = append(ks, k)
			}
		}
		return ks
	}
	changed := true
	switch sa {
	case 0, 6: // REGISTER, REGISTER AND IGNORE EXISTING KEY
		if sa == 0 {
			if !registered && rk != 0 {
				return c.conflict()
			}
			if registered && rk != cur {
				return c.conflict()
			}
		}
		if sak == 0 {
			if !registered {
				changed = false
				break
			}
			c.dropRegistration(c.key)
		} else {
			p.register(c.key, sak)
		}
		p.APTPL = aptpl
	case 1: // RESERVE
		if !registered || rk != cur {
			return c.conflict()
		}
		if p.Holder != "" {
			if p.isHolder(c.key) && p.Type == typ {
				changed = false
				break
			}
			return c.conflict()
		}
		p.Holder, p.Type = c.key, typ
		changed = false // generation unchanged by RESERVE
	case 2: // RELEASE
		if !registered || rk != cur {
			return c.conflict()
		}
		if p.Holder == "" || !p.isHolder(c.key) {
			changed = false
			break
		}
		if p.Type != typ {
			return c.fail(sense(keyIllegalRequest, ascInvalidReleasePR))
		}
		t := p.Type
		p.Holder, p.Type = "", 0
		if t != prWE && t != prEA {
			l.uaTo(others(c.key), ascReservationsReleased)
		}
		changed = false
	case 3: // CLEAR
		if !registered || rk != cur {
			return c.conflict()
		}
		l.uaTo(others(c.key), ascReservationsPreempted)
		p.Regs = map[string]uint64{}
		p.Order = nil
		p.Holder, p.Type = "", 0
	case 4, 5: // PREEMPT, PREEMPT AND ABORT
		if !registered || rk != cur {
			return c.conflict()
		}
		if sa == 5 {
			// The nexuses registered with the preempted key, or every
			// registered nexus when an all-registrants reservation is
			// preempted with key 0 (the issuer's other commands too);
			// their PREVENT ALLOW MEDIUM REMOVAL state goes with them.
			for _, k := range p.Order {
				if p.Regs[k] == sak || (sak == 0 && p.Holder != "" && allRegistrants(p.Type)) {
					*abort = append(*abort, k)
					delete(l.prevent, k)
				}
			}
		}
		if p.Holder != "" && allRegistrants(p.Type) {
			if sak == 0 {
				var gone []string
				for _, k := range others(c.key) {
					gone = append(gone, k)
				}
				for _, k := range gone {
					p.unregister(k)
				}
				l.uaTo(gone, ascRegistrationsPreempted)
				p.Holder, p.Type = c.key, typ
				break
			}
			if n := c.preemptKey(sak); n == 0 {
				return c.conflict()
			}
			break
		}
		if p.Holder != "" && sak == p.Regs[p.Holder] {
			c.preemptKey(sak)
			p.Holder, p.Type = c.key, typ
			break
		}
		if sak == 0 {
			return c.fail(invalidParam(8, -1))
		}
		if n := c.preemptKey(sak); n == 0 {
			return c.conflict()
		}
	}
	if changed {
		p.Generation++
	}
	if r, ok := c.persistOrRestore(&snap); !ok {
		*abort = nil
		return r
	}
	return good()
}

// preemptKey removes every registration (other than the caller's) with
// reservation key k, telling them; it returns how many went.
func (c *cmdCtx) preemptKey(k uint64) int {
	p := &c.l.pr
	var gone []string
	for _, key := range p.Order {
		if p.Regs[key] == k && key != c.key {
			gone = append(gone, key)
		}
	}
	for _, key := range gone {
		p.unregister(key)
	}
	if p.Holder != "" {
		if allRegistrants(p.Type) {
			// Every registrant holds an all-registrants reservation: it
			// goes only with the last registration (SPC-4 5.13.10,
			// 5.13.11.2.5); Holder just names one that is left.
			if len(p.Regs) == 0 {
				p.Holder, p.Type = "", 0
			} else if _, ok := p.Regs[p.Holder]; !ok {
				p.Holder = p.Order[0]
			}
		} else if _, ok := p.Regs[p.Holder]; !ok {
			p.Holder, p.Type = "", 0
		}
	}
	c.l.uaTo(gone, ascRegistrationsPreempted)
	if len(gone) == 0 && p.Regs[c.key] == k {
		return 1
	}
	return len(gone)
}

// dropRegistration unregisters key; a holder leaving releases the
// reservation (all-registrants reservations go with the last registrant).
func (c *cmdCtx) dropRegistration(key string) {
	l := c.l
	p := &l.pr
	p.unregister(key)
	if p.Holder == "" {
		return
	}
	if allRegistrants(p.Type) {
		if len(p.Regs) == 0 {
			p.Holder, p.Type = "", 0
		} else if p.Holder == key {
			p.Holder = p.Order[0]
		}
		return
	}
	if p.Holder == key {
		t := p.Type
		p.Holder, p.Type = "", 0
		if t == prWERO || t == prEARO {
			l.uaTo(p.Order, ascReservationsReleased)
		}
	}
}

// legacyUnderPR decides RESERVE and RELEASE (6/10) while persistent
// reservation registrations exist (SPC-4 5.7.3, we report CRH=1): from a
// persistent reservation holder, or from a registered nexus when a
// registrants-only or all-registrants reservation is present, they
// complete with GOOD and change nothing; otherwise registrations make
// them conflict (SPC-2 5.5.1). ok=false: no registrations, SPC-2 rules.
// Under l.mu.
func (c *cmdCtx) legacyUnderPR() (Result, bool) {
	p := &c.l.pr
	if len(p.Regs) == 0 {
		return Result{}, false
	}
	_, registered := p.Regs[c.key]
	roOrAR := p.Type == prWERO || p.Type == prEARO || allRegistrants(p.Type)
	if p.isHolder(c.key) || (p.Holder != "" && registered && roOrAR) {
		return good(), true
	}
	return c.conflict(), true
}

// reserve6 implements RESERVE(6)/RESERVE(10) (SPC-2).
func (c *cmdCtx) reserve6() Result {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := c.legacyUnderPR(); ok {
		return r
	}
	if l.reserver != "" && l.reserver != c.key {
		return c.conflict()
	}
	l.reserver = c.key
	return good()
}

// release6 implements RELEASE(6)/RELEASE(10): GOOD from any nexus (SPC-2),
// releasing only the holder's reservation.
func (c *cmdCtx) release6() Result {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r, ok := c.legacyUnderPR(); ok {
		return r
	}
	if l.reserver == c.key {
		l.reserver = ""
	}
	return good()
}

// registerAndMove implements PERSISTENT RESERVE OUT REGISTER AND MOVE
// (SPC-4 5.13.8, 6.16.4): the reservation holder registers another I_T
// nexus (named by a TransportID, on our single target port) with the
// service action reservation key and moves the reservation to it, keeping
// type and scope; with UNREG it unregisters itself.
func (c *cmdCtx) registerAndMove(plen int) Result {
	p := c.cmd.DataOut
	if plen < 24 || len(p) < plen {
		return c.fail(senseParamLen)
	}
	p = p[:plen]
	rk, sak := be64(p[0:]), be64(p[8:])
	unreg, aptpl := p[17]&0x02 != 0, p[17]&0x01 != 0
	relPort := be16(p[18:])
	tlen := int(be32(p[20:]))
	if 24+tlen > plen {
		return c.fail(senseParamLen)
	}
	if aptpl && c.l.pr.path == "" {
		return c.fail(invalidParam(17, 0)) // PTPL_C is 0
	}
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reserver != "" && l.reserver != c.key {
		return c.conflict()
	}
	snap := l.prSnapshot()
	pr := &l.pr
	cur, registered := pr.Regs[c.key]
	if !registered || rk != cur {
		return c.conflict()
	}
	if pr.Holder == "" {
		return c.fail(invalidCDB(1, 4)) // no reservation to move
	}
	if allRegistrants(pr.Type) || !pr.isHolder(c.key) {
		return c.conflict()
	}
	if sak == 0 {
		return c.fail(invalidParam(8, -1))
	}
	if relPort != 1 {
		return c.fail(invalidParam(18, -1)) // our only target port
	}
	dest, ok := c.l.t.transportIDKey(p[24 : 24+tlen])
	if !ok {
		return c.fail(invalidParam(24, -1))
	}
	if dest == c.key {
		return c.fail(invalidParam(24, -1))
	}
	pr.APTPL = aptpl
	pr.register(dest, sak)
	pr.Holder = dest // same type and scope
	if unreg {
		pr.unregister(c.key)
	}
	pr.Generation++
	if r, ok := c.persistOrRestore(&snap); !ok {
		return r
	}
	return good()
}

// transportIDKey maps an iSCSI TransportID (SPC-4 7.6.4.6) to the itKey of
// the I_T nexus it names on this target: format 01b names the initiator
// port (iSCSI name ",i,0x" ISID); format 00b the initiator device, which is
// accepted when exactly one session of that initiator is attached.
func (t *Target) transportIDKey(tid []byte) (string, bool) {
	if len(tid) < 4 || tid[0]&0x0f != 0x05 {
		return "", false
	}
	n := int(be16(tid[2:]))
	if n < 4 || 4+n > len(tid) {
		return "", false
	}
	name := string(tid[4 : 4+n])
	if i := strings.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	switch tid[0] >> 6 {
	case 0:
		var only string
		t.mu.RLock()
		for k, nx := range t.nexus {
			if strings.EqualFold(nx.InitiatorName, name) {
				if only != "" {
					t.mu.RUnlock()
					return "", false
				}
				only = k
			}
		}
		t.mu.RUnlock()
		return only, only != ""
	case 1:
		i := strings.LastIndex(strings.ToLower(name), ",i,0x")
		if i <= 0 {
			return "", false
		}
		isid := strings.ToLower(name[i+5:])
		b, err := hex.DecodeString(isid)
		if err != nil || len(b) != 6 {
			return "", false
		}
		// iSCSI names compare case-insensitively: use the attached
		// session's spelling when there is one.
		t.mu.RLock()
		defer t.mu.RUnlock()
		for k, nx := range t.nexus {
			if strings.EqualFold(nx.InitiatorName, name[:i]) && bytes.Equal(nx.ISID[:], b) {
				return k, true
			}
		}
		return name[:i] + ",i,0x" + isid + "|" + t.name, true
	}
	return "", false
}
