package isns

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestRegistrarLifecycle(t *testing.T) {
	f := newFake()
	f.answer = 3 // the server's period wins over the 30s asked
	r := &Registrar{Client: f.client(), EID: "host", MinBackoff: 10 * time.Millisecond}
	portal := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:3260")}
	r.Set(portal, []Node{{Name: "iqn.a", PGT: 1}, {Name: "iqn.b", Alias: "b", PGT: 1}})
	r.Start(context.Background())
	defer r.Stop()
	eventually(t, "registration", func() bool {
		ns, _ := f.nodes("host")
		return slices.Equal(ns, []string{"iqn.a", "iqn.b"})
	})
	f.set(func(f *fakeServer) {
		if f.lastPeriod != 30 {
			t.Errorf("period asked %d, want 30", f.lastPeriod)
		}
	})
	// A target removed and one added.
	r.Set(portal, []Node{{Name: "iqn.b", PGT: 1}, {Name: "iqn.c", PGT: 1}})
	eventually(t, "update", func() bool {
		ns, _ := f.nodes("host")
		return slices.Equal(ns, []string{"iqn.b", "iqn.c"})
	})
	// The server forgets us (restart): the refresh, 2 s after the 3 s
	// period answered, registers everything again.
	f.set(func(f *fakeServer) { delete(f.entities, "host") })
	eventually(t, "refresh", func() bool {
		ns, _ := f.nodes("host")
		return len(ns) == 2
	})
	r.Stop()
	if _, ok := f.nodes("host"); ok {
		t.Error("entity still registered after Stop")
	}
}

func TestRegistrarServerDown(t *testing.T) {
	f := newFake()
	f.down = true
	var errs []error
	synced := make(chan error, 100)
	r := &Registrar{Client: f.client(), EID: "host", MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
		Synced: func(err error) { synced <- err }}
	r.Start(context.Background())
	start := time.Now()
	r.Set(nil, []Node{{Name: "iqn.a", PGT: 1}}) // never blocks
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Set took %v", d)
	}
	for len(errs) < 3 {
		if err := <-synced; err != nil {
			errs = append(errs, err)
		}
	}
	f.set(func(f *fakeServer) { f.down = false })
	eventually(t, "registration after the server came back", func() bool {
		ns, _ := f.nodes("host")
		return slices.Equal(ns, []string{"iqn.a"})
	})
	// A stalled server: Stop still returns within the timeouts.
	f.set(func(f *fakeServer) { f.stall = true })
	r.StopTimeout = 200 * time.Millisecond
	start = time.Now()
	r.Stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop took %v", d)
	}
}

func TestRegistrarNoNodes(t *testing.T) {
	f := newFake()
	r := &Registrar{Client: f.client(), EID: "host", MinBackoff: 10 * time.Millisecond}
	r.Set(nil, []Node{{Name: "iqn.a", PGT: 1}})
	r.Start(context.Background())
	defer r.Stop()
	eventually(t, "registration", func() bool { _, ok := f.nodes("host"); return ok })
	r.Set(nil, nil) // every target deleted: the entity goes
	eventually(t, "deregistration", func() bool { _, ok := f.nodes("host"); return !ok })
}

func TestResolvePortals(t *testing.T) {
	got := resolvePortals([]netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:3260"), netip.MustParseAddrPort("[::]:3260"),
		netip.MustParseAddrPort("[::ffff:10.0.0.2]:3260")}, netip.MustParseAddr("10.0.0.1"))
	want := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:3260"), netip.MustParseAddrPort("10.0.0.2:3260")}
	if !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	if got := resolvePortals([]netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:3260")}, netip.Addr{}); len(got) != 0 {
		t.Errorf("%v", got)
	}
	if refreshInterval(30*time.Second, 0) != 20*time.Second || refreshInterval(0, 0) != 10*time.Minute ||
		refreshInterval(0, 3*time.Second) != 2*time.Second || refreshInterval(time.Second, 0) != time.Second {
		t.Error("refreshInterval")
	}
}

func TestAccess(t *testing.T) {
	f := newFake()
	f.visible["iqn.t"] = []string{"iqn.I1"}
	now := time.Unix(1000, 0)
	var clock = func() time.Time { return now }
	a := &Access{Client: f.client(), Now: clock, TTL: 5 * time.Second, Wait: time.Second}
	if ok, why := a.Allowed("iqn.t", "iqn.i1"); !ok {
		t.Errorf("i1 refused: %s", why)
	}
	if ok, why := a.Allowed("iqn.t", "iqn.i2"); ok || why == "" {
		t.Error("i2 allowed")
	}
	var q int
	if f.set(func(f *fakeServer) { q = f.queries }); q != 1 {
		t.Errorf("%d queries, want 1 (cached)", q)
	}
	// The server goes down: the earlier answer stays in force; a target
	// never answered for admits nobody.
	f.set(func(f *fakeServer) { f.down = true; f.visible["iqn.t"] = nil })
	now = now.Add(6 * time.Second)
	if ok, _ := a.Allowed("iqn.t", "iqn.i1"); !ok {
		t.Error("earlier answer not kept")
	}
	if ok, why := a.Allowed("iqn.other", "iqn.i1"); ok || why == "" {
		t.Error("unknown target allowed with the server down")
	}
	// Back up: the new answer (nobody) applies once the TTL passed.
	f.set(func(f *fakeServer) { f.down = false })
	now = now.Add(6 * time.Second)
	if ok, _ := a.Allowed("iqn.t", "iqn.i1"); ok {
		t.Error("refreshed answer not used")
	}
	// A stalled server: the wait is bounded.
	f.set(func(f *fakeServer) { f.stall = true })
	now = now.Add(6 * time.Second)
	a.Wait = 50 * time.Millisecond
	start := time.Now()
	a.Allowed("iqn.t", "iqn.i1")
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Errorf("Allowed waited %v", d)
	}
}

// A stalled server costs one Wait, not one per target: a SendTargets
// answer checks every target in turn.
func TestAccessStalledServerWaitsOnce(t *testing.T) {
	f := newFake()
	f.stall = true
	a := &Access{Client: f.client(), TTL: 5 * time.Second, Wait: 100 * time.Millisecond}
	start := time.Now()
	for i := 0; i < 8; i++ {
		if ok, _ := a.Allowed("iqn.t"+itoa(uint32(i)), "iqn.i"); ok {
			t.Fatal("allowed without an answer")
		}
	}
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Errorf("8 targets took %v with a stalled server, want about one wait (100ms)", d)
	}
}
