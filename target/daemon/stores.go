package daemon

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// CheckStores opens, and closes again, the backing store of every LUN that
// next adds to a target running in cur or defines differently, and
// returns every failure (with the LUN's position in the file). The engine
// reconfigures running targets LUN by LUN and keeps going when one LUN
// cannot be opened; checking first makes a reload or an ietadm change
// all-or-nothing. (New targets are opened as a whole by the engine, which
// refuses the change when one of their LUNs fails.)
func CheckStores(cur, next *config.Config) error {
	running := map[int]*config.Target{}
	for _, t := range cur.Targets {
		running[t.TID] = t
	}
	var errs []error
	for _, t := range next.Targets {
		old := running[t.TID]
		if old == nil || old.Name != t.Name {
			continue
		}
		for _, l := range t.LUNs {
			if ol := old.LUN(l.Number); ol != nil && reflect.DeepEqual(ol, l) {
				continue
			}
			st, err := backing.Open(l, backing.OpenOptions{})
			if err != nil {
				where := ""
				if l.Pos != (config.Position{}) {
					where = l.Pos.String() + ": "
				}
				errs = append(errs, fmt.Errorf("%starget %s: %w", where, t.Name, err)) // err names the LUN
				continue
			}
			st.Close()
		}
	}
	return errors.Join(errs...)
}
