package scsi

import (
	"sync"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

func controlPage(t *testing.T, tg *Target, n *Nexus) []byte {
	t.Helper()
	ms := cdb(0x1a, 6)
	ms[1] = 0x08 // DBD
	ms[2] = pageControl
	ms[4] = 255
	r := run(tg, n, ms, nil)
	if r.Status != StatusGood {
		t.Fatalf("MODE SENSE: %+v", r)
	}
	return append([]byte{}, r.Data[4:]...)
}

func modeSelect(tg *Target, n *Nexus, page []byte) Result {
	sel := cdb(0x15, 6)
	sel[1] = 0x10
	param := append([]byte{0, 0, 0, 0}, page...)
	sel[4] = byte(len(param))
	return run(tg, n, sel, param)
}

// MODE PARAMETERS CHANGED goes to every I_T nexus but the issuing one,
// another session of the same initiator included (SPC-4).
func TestModeParametersChangedSkipsOnlyTheIssuingNexus(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	a2 := &Nexus{ID: 3, InitiatorName: a.InitiatorName, ISID: [6]byte{0x80, 0, 0, 0, 0, 9}, TargetName: a.TargetName}
	tg.NexusAttach(a2)
	run(tg, a2, cdb(0, 6), nil)
	page := controlPage(t, tg, a)
	page[2] |= 0x04 // D_SENSE
	if r := modeSelect(tg, a, page); r.Status != StatusGood {
		t.Fatalf("MODE SELECT: %+v", r)
	}
	if r := run(tg, a, cdb(0, 6), nil); r.Status != StatusGood {
		t.Fatalf("the issuing nexus got a unit attention: %+v", r)
	}
	for _, n := range []*Nexus{a2, b} {
		if r := run(tg, n, cdb(0, 6), nil); senseASC(r) != ascModeParamsChanged {
			t.Fatalf("nexus %d not told: %+v", n.ID, r)
		}
	}
	// Selecting the values in force changes nothing: no unit attention.
	if r := modeSelect(tg, a, page); r.Status != StatusGood {
		t.Fatal(r)
	}
	if r := run(tg, b, cdb(0, 6), nil); r.Status != StatusGood {
		t.Fatalf("unit attention without a change: %+v", r)
	}
}

// Concurrent MODE SELECTs from two nexuses (the race detector checks the
// control page state is only touched under the LU lock).
func TestModeSelectConcurrent(t *testing.T) {
	tg, a, b := newTestTarget(t, nil)
	page := controlPage(t, tg, a)
	var wg sync.WaitGroup
	for i, n := range []*Nexus{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 50; k++ {
				pg := append([]byte{}, page...)
				if (k+i)%2 == 0 {
					pg[2] |= 0x04
				}
				modeSelect(tg, n, pg)
				run(tg, n, rw16(0x88, 0, 1, 0), nil)
			}
		}()
	}
	wg.Wait()
}

// directStore looks like a blockio (O_DIRECT) store.
type directStore struct{ backing.Store }

func (directStore) Direct() bool            { return true }
func (directStore) WriteCacheEnabled() bool { return false }

func cachingPage(t *testing.T, tg *Target, n *Nexus, ctl byte) []byte {
	t.Helper()
	ms := cdb(0x1a, 6)
	ms[1] = 0x08
	ms[2] = ctl<<6 | pageCaching
	ms[4] = 255
	r := run(tg, n, ms, nil)
	if r.Status != StatusGood {
		t.Fatalf("MODE SENSE caching: %+v", r)
	}
	return append([]byte{}, r.Data[4:]...)
}

// The caching page tells the IOMode (WCE for wb) and whether the target
// caches reads (RCD for O_DIRECT); WCE is not changeable, so a MODE
// SELECT flipping it is refused and the mode stays.
func TestCachingPageFollowsIOMode(t *testing.T) {
	wb, a, _ := newTestTarget(t, nil)
	if p := cachingPage(t, wb, a, 0); p[2]&0x04 == 0 || p[2]&0x01 != 0 {
		t.Fatalf("wb caching page byte 2 = %#x, want WCE, no RCD", p[2])
	}
	if p := cachingPage(t, wb, a, 1); p[2] != 0 {
		t.Fatalf("changeable caching page byte 2 = %#x, want nothing changeable", p[2])
	}
	page := cachingPage(t, wb, a, 0)
	page[2] &^= 0x04
	if r := modeSelect(wb, a, page); senseASC(r) != ascInvalidFieldParam {
		t.Fatalf("MODE SELECT clearing WCE: %+v", r)
	}
	if p := cachingPage(t, wb, a, 0); p[2]&0x04 == 0 {
		t.Fatal("WCE changed")
	}
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:cache")
	tc.LUNs = []*config.LUN{{Number: 0, Type: "blockio", IOMode: "wt", Store: &config.Store{Path: "m"}}}
	bt, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) {
		return directStore{backing.NewMemory(1 << 20)}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tc.Name}
	bt.NexusAttach(n)
	run(bt, n, cdb(0, 6), nil)
	if p := cachingPage(t, bt, n, 0); p[2]&0x04 != 0 || p[2]&0x01 == 0 {
		t.Fatalf("blockio wt caching page byte 2 = %#x, want RCD, no WCE", p[2])
	}
}

// The Control mode page claims no extended self-test (SEND DIAGNOSTIC
// refuses it): its completion time is zero in every page control, and
// the current page sent back unchanged is accepted.
func TestControlPageClaimsNoExtendedSelfTest(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	for ctl := byte(0); ctl < 3; ctl++ {
		ms := cdb(0x1a, 6)
		ms[1], ms[2], ms[4] = 0x08, ctl<<6|pageControl, 255
		r := run(tg, a, ms, nil)
		if r.Status != StatusGood || len(r.Data) < 16 {
			t.Fatalf("MODE SENSE control page, page control %d: %+v", ctl, r)
		}
		if p := r.Data[4:]; p[10] != 0 || p[11] != 0 {
			t.Errorf("page control %d: extended self-test completion time %#x", ctl, int(p[10])<<8|int(p[11]))
		}
	}
	if r := modeSelect(tg, a, controlPage(t, tg, a)); r.Status != StatusGood {
		t.Fatalf("MODE SELECT of the current control page: %+v", r)
	}
}
