package backing

import (
	"errors"
	"slices"
	"sync"
	"syscall"

	"github.com/sirupsen/logrus"
)

// MirrorMember is one leg of a mirror.
type MirrorMember struct {
	Name  string // for logs and health reports (extent name or path)
	Store Store
}

// MemberHealth is the state of one mirror member.
type MemberHealth struct {
	Index  int
	Name   string
	Failed bool
	Err    error // the error that failed it
}

// MirrorStore is a RAID1: writes go to every healthy member, reads come
// from the first healthy one. A member that fails a request with an I/O
// error (ErrIO: EIO, ENXIO, ENODEV, ...) is marked failed (logged once)
// and I/O continues on the others; so is one the system refuses a write
// (a file system remounted read-only: EROFS, a device set read-only:
// EPERM) that another member took. Other errors are the request's, not
// the member's: disk full (ErrNoSpace) is returned to the caller and fails
// no member, nor do ErrRange, a configured read-only refusal or
// ErrNotSupported. The last
// healthy member is never failed: its error is returned instead, so a
// mirror whose legs all see the same fault keeps serving what it can.
//
// A write that fails on one leg with a non-I/O error (disk full) while
// another leg took it returns the error; the legs then differ in that
// range until it is written again, as the failed write's data is
// undefined anyway. Health and MirrorHealth report the members' state.
type MirrorStore struct {
	name    string // the device's name (logs, failure record)
	members []MirrorMember
	size    int64
	log     *logrus.Entry

	mu     sync.RWMutex
	failed []error // failed[i] != nil: member i is out of service

	// state, when set, records failed members so that a restart does
	// not bring a stale leg back (mirrorstate.go); recMu orders the
	// writes of the record (taken before mu).
	state *mirrorState
	recMu sync.Mutex

	// Overlapping writes (and unmaps) run one after the other: the
	// legs are written in parallel, so two overlapping writes running
	// at once could land in one order on one leg and in the other on
	// the next, and a read after a failover would return other data
	// than before it.
	wmu     sync.Mutex
	wcond   sync.Cond
	writing [][2]int64 // ranges being written: [off, end)
}

// NewMirror builds a mirror. Its size is the smallest member's size (the
// NetBSD target requires equal sizes; a mismatch is logged).
func NewMirror(log *logrus.Entry, members ...MirrorMember) *MirrorStore {
	if log == nil {
		log = discardLog()
	}
	m := &MirrorStore{members: members, log: log, failed: make([]error, len(members))}
	for i, mb := range members {
		sz := mb.Store.Size()
		if i == 0 || sz < m.size {
			if i > 0 {
				log.WithFields(logrus.Fields{"member": mb.Name, "size": sz, "first_size": members[0].Store.Size()}).
					Warn("mirror member is smaller than the first; mirror size reduced")
			}
			m.size = sz
		}
	}
	return m
}

// Health reports every member's state.
func (m *MirrorStore) Health() []MemberHealth {
	m.mu.RLock()
	defer m.mu.RUnlock()
	h := make([]MemberHealth, len(m.members))
	for i, mb := range m.members {
		h[i] = MemberHealth{Index: i, Name: mb.Name, Failed: m.failed[i] != nil, Err: m.failed[i]}
	}
	return h
}

// Degraded reports whether any member has failed.
func (m *MirrorStore) Degraded() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, e := range m.failed {
		if e != nil {
			return true
		}
	}
	return false
}

// healthy returns the indexes of members in service.
func (m *MirrorStore) healthy() []int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	idx := make([]int, 0, len(m.members))
	for i, e := range m.failed {
		if e == nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// fail takes member i out of service (logged once) unless it is the
// last healthy member; it reports whether the member is (now) failed.
func (m *MirrorStore) fail(i int, err error) bool {
	m.mu.Lock()
	already := m.failed[i] != nil
	others := 0
	for k, e := range m.failed {
		if k != i && e == nil {
			others++
		}
	}
	first := !already && others > 0
	if first {
		m.failed[i] = err
	}
	// A request that finds the member failed by another one whose
	// record is not written yet waits for that record too.
	pending := already && m.state != nil && !m.state.written[m.members[i].Name]
	m.mu.Unlock()
	if first || pending {
		// Recorded before the write that the other legs took is
		// acknowledged: after a crash or restart this leg, which
		// lacks it, must not serve reads. Not under m.mu: the other
		// legs keep serving while the file is written and synced.
		m.recordFailed()
	}
	if first {
		m.log.WithFields(logrus.Fields{"member": m.members[i].Name, "index": i}).WithError(err).
			Error("mirror member failed; continuing without it")
	} else if !already {
		m.log.WithFields(logrus.Fields{"member": m.members[i].Name, "index": i}).WithError(err).
			Warn("I/O error on the last healthy mirror member; kept in service, error returned")
	}
	return already || first
}

// memberFault reports whether err means the member itself is bad: an I/O
// error. Disk full, range, read-only and unsupported requests, and
// errors nobody classified, are the request's failure.
func memberFault(err error) bool {
	return err != nil && errors.Is(err, ErrIO)
}

// refusedBySystem reports whether err is the system refusing a write to
// a member opened for writing: its file system went read-only under it
// (ext4's errors=remount-ro after a disk error: EROFS) or its device was
// set read-only (EPERM). When another member took the write, this one is
// out of date from it on and is failed as for an I/O error; when none
// did, the refusal is the request's (DATA PROTECT), and nobody is failed.
// A store configured read-only refuses without an errno: never a fault.
func refusedBySystem(err error) bool {
	return errors.Is(err, ErrReadOnly) && (errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EPERM))
}

func (m *MirrorStore) Size() int64 { return m.size }

func (m *MirrorStore) noneLeft(op string, off, n int64, last error) error {
	if last != nil {
		return last
	}
	return &Error{Op: op, Off: off, Len: n, Kind: ErrIO, Err: errors.New("no healthy mirror member")}
}

// ReadAt reads from the first healthy member, failing over on I/O
// errors; a member that failed is taken out of service once another one
// returned the data.
func (m *MirrorStore) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if !inBounds(off, n, m.size) {
		return 0, rangeError("read", "", off, n, m.size)
	}
	var last error
	var faulty []int
	for _, i := range m.healthy() {
		got, err := m.members[i].Store.ReadAt(p, off)
		if err == nil {
			for _, f := range faulty {
				m.fail(f, last)
			}
			return got, nil
		}
		if !memberFault(err) {
			return got, err
		}
		faulty = append(faulty, i)
		last = err
	}
	return 0, m.noneLeft("read", off, n, last)
}

// each runs fn on every healthy member concurrently. It succeeds if at
// least one member did and none returned a request error (disk full,
// ...), which is returned otherwise; members that returned I/O errors
// are failed (never the last healthy one).
func (m *MirrorStore) each(op string, off, n int64, fn func(s Store) error) error {
	idx := m.healthy()
	errs := make([]error, len(idx))
	if len(idx) == 1 {
		errs[0] = fn(m.members[idx[0]].Store)
	} else {
		var wg sync.WaitGroup
		for k, i := range idx {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[k] = fn(m.members[i].Store)
			}()
		}
		wg.Wait()
	}
	return m.settle(op, off, n, idx, errs)
}

// settle turns the results of an operation on the members idx (errs[k]
// from member idx[k]) into its result: the first request error if there
// was one, else success if a member that is still in service succeeded;
// members that returned I/O errors are failed first. A member that
// succeeded but was taken out of service meanwhile (by a concurrent
// request's I/O error) does not count: reads no longer come from it, so
// a write it alone holds would be acknowledged and then lost.
func (m *MirrorStore) settle(op string, off, n int64, idx []int, errs []error) error {
	took := slices.Contains(errs, nil) // some member has it
	var fault, reqErr error
	for k, i := range idx {
		switch err := errs[k]; {
		case err == nil:
		case memberFault(err), took && refusedBySystem(err):
			m.fail(i, err)
			fault = err
		case reqErr == nil:
			reqErr = err
		}
	}
	if reqErr != nil {
		return reqErr
	}
	m.mu.RLock()
	ok := false
	for k, i := range idx {
		if errs[k] == nil && m.failed[i] == nil {
			ok = true
		}
	}
	m.mu.RUnlock()
	if ok {
		return nil
	}
	return m.noneLeft(op, off, n, fault)
}

// lockRange waits until no write overlapping [off, off+n) is running
// and registers this one; the returned func ends it.
func (m *MirrorStore) lockRange(off, n int64) func() {
	r := [2]int64{off, off + n}
	m.wmu.Lock()
	if m.wcond.L == nil {
		m.wcond.L = &m.wmu
	}
	for overlaps(m.writing, r) {
		m.wcond.Wait()
	}
	m.writing = append(m.writing, r)
	m.wmu.Unlock()
	return func() {
		m.wmu.Lock()
		for i, w := range m.writing {
			if w == r {
				m.writing[i] = m.writing[len(m.writing)-1]
				m.writing = m.writing[:len(m.writing)-1]
				break
			}
		}
		m.wcond.Broadcast()
		m.wmu.Unlock()
	}
}

func overlaps(rs [][2]int64, r [2]int64) bool {
	for _, w := range rs {
		if w[0] < r[1] && r[0] < w[1] {
			return true
		}
	}
	return false
}

// WriteAt writes to every healthy member.
func (m *MirrorStore) WriteAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if !inBounds(off, n, m.size) {
		return 0, rangeError("write", "", off, n, m.size)
	}
	defer m.lockRange(off, n)()
	err := m.each("write", off, n, func(s Store) error {
		_, err := s.WriteAt(p, off)
		return err
	})
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (m *MirrorStore) Sync() error {
	return m.each("sync", 0, m.size, func(s Store) error { return s.Sync() })
}

func (m *MirrorStore) SyncRange(off, n int64) error {
	if !inBounds(off, n, m.size) {
		return rangeError("sync", "", off, n, m.size)
	}
	return m.each("sync", off, n, func(s Store) error { return s.SyncRange(off, n) })
}

// Unmap deallocates the range on every healthy member. The first healthy
// member decides whether unmapping is supported; a later member that
// cannot punch holes gets zeros written instead, so the legs stay equal.
func (m *MirrorStore) Unmap(off, n int64) error {
	if !inBounds(off, n, m.size) {
		return rangeError("unmap", "", off, n, m.size)
	}
	defer m.lockRange(off, n)()
	idx := m.healthy()
	errs := make([]error, len(idx))
	for k, i := range idx {
		s := m.members[i].Store
		err := s.Unmap(off, n)
		if errors.Is(err, ErrNotSupported) {
			if k == 0 {
				return err
			}
			err = writeZeros(s, off, n)
		}
		errs[k] = err
	}
	return m.settle("unmap", off, n, idx, errs)
}

// writeZeros fills [off, off+n) of s with zeros.
func writeZeros(s Store, off, n int64) error {
	zero := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n; {
		k := min(n-done, int64(len(zero)))
		if _, err := s.WriteAt(zero[:k], off+done); err != nil {
			return err
		}
		done += k
	}
	return nil
}

func (m *MirrorStore) Close() error {
	var errs []error
	for _, mb := range m.members {
		if err := mb.Store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LogicalBlockSize is the largest logical block size of the members.
func (m *MirrorStore) LogicalBlockSize() int {
	stores := make([]Store, len(m.members))
	for i, mb := range m.members {
		stores[i] = mb.Store
	}
	return maxBlockSize(stores)
}

// WriteCacheEnabled is true when any member caches writes.
func (m *MirrorStore) WriteCacheEnabled() bool {
	stores := make([]Store, len(m.members))
	for i, mb := range m.members {
		stores[i] = mb.Store
	}
	return anyWriteCache(stores)
}

// MirrorHealth walks a (possibly composed) store and returns the health of
// every mirror in it, depth first; nil when it contains no mirror.
func MirrorHealth(s Store) [][]MemberHealth {
	var out [][]MemberHealth
	var walk func(Store)
	walk = func(s Store) {
		switch v := s.(type) {
		case *MirrorStore:
			out = append(out, v.Health())
			for _, mb := range v.members {
				walk(mb.Store)
			}
		case *ConcatStore:
			for _, mb := range v.members {
				walk(mb)
			}
		case *LimitStore:
			walk(v.inner)
		case *Faulty:
			walk(v.inner)
		}
	}
	walk(s)
	return out
}

// WriteProtected reports whether any member is held read-only: a write
// could not reach it, and the mirror would lose a member on the first
// write instead of serving what it has.
func (m *MirrorStore) WriteProtected() bool {
	for _, mm := range m.members {
		if WriteProtected(mm.Store) {
			return true
		}
	}
	return false
}

// CanUnmap follows the first member, which decides (see Unmap: the
// others get zeros written when they cannot punch holes).
func (m *MirrorStore) CanUnmap() bool {
	return len(m.members) > 0 && CanUnmap(m.members[0].Store)
}
