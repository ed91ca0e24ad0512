package daemon

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/scsi"
)

// CheckStores probes (ProbeLUN: nothing is created or extended), checks
// as the engine would before serving it (scsi.CheckLUN: block size, at
// least one block), and closes again the backing store of every LUN that next adds or defines differently than
// cur, in running targets and in new ones, and returns every failure
// (with the LUN's position in the file). The engine leaves out a LUN it
// cannot serve and keeps going; checking first makes a reload or an
// ietadm change all-or-nothing, so the model never holds a LUN that is
// not served.
func CheckStores(cur, next *config.Config) error {
	running := map[int]*config.Target{}
	for _, t := range cur.Targets {
		running[t.TID] = t
	}
	var errs []error
	for _, t := range next.Targets {
		old := running[t.TID]
		if old != nil && old.Name != t.Name {
			old = nil // another target under that tid: opened as a whole
		}
		for _, l := range t.LUNs {
			if old != nil {
				if ol := old.LUN(l.Number); ol != nil && reflect.DeepEqual(ol, l) {
					continue
				}
			}
			if err := checkLUN(l); err != nil {
				where := ""
				if l.Pos != (config.Position{}) {
					where = l.Pos.String() + ": "
				}
				errs = append(errs, fmt.Errorf("%starget %s: %w", where, t.Name, err)) // err names the LUN
			}
		}
	}
	return errors.Join(errs...)
}

// checkLUN is ProbeLUN: a check changes no file. A change that is
// refused must leave none created or extended (a file that a running
// LUN of Size 0 sits on would grow), so files are created and extended
// only when the engine applies the change; the probe sizes the store as
// that start will and refuses what its open for writing refuses.
func checkLUN(l *config.LUN) error {
	return ProbeLUN(l)
}

// ProbeLUN runs the checks of a start on a LUN (backing.Open, then
// scsi.CheckLUN) without changing anything: files are opened read-only,
// none is created or extended (backing.OpenOptions.Probe). A LUN it
// refuses is one a start leaves out.
func ProbeLUN(l *config.LUN) error {
	return openCheck(l, backing.OpenOptions{Probe: true})
}

func openCheck(l *config.LUN, opts backing.OpenOptions) error {
	st, err := backing.Open(l, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	return scsi.CheckLUN(l, st)
}

// sameLUN reports whether two LUN definitions are the same but for where
// in the file they, their stores and their stores' members are.
func sameLUN(a, b *config.LUN) bool {
	x, y := *a, *b
	x.Pos, y.Pos = config.Position{}, config.Position{}
	x.Store, y.Store = nil, nil
	return reflect.DeepEqual(&x, &y) && sameStore(a.Store, b.Store)
}

func sameStore(a, b *config.Store) bool {
	if a == nil || b == nil {
		return a == b
	}
	if len(a.Members) != len(b.Members) {
		return false
	}
	for i := range a.Members {
		if !sameStore(a.Members[i], b.Members[i]) {
			return false
		}
	}
	x, y := *a, *b
	x.Pos, y.Pos = config.Position{}, config.Position{}
	x.Members, y.Members = nil, nil
	return reflect.DeepEqual(&x, &y)
}
