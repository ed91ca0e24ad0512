package iscsi

import (
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
)

// reinstateAcrossReload starts a login that reinstates a session whose
// WRITE is held in the disk (so the login waits in admit), runs reload
// while it waits, then lets the write end. It returns the login's status
// class and detail.
func reinstateAcrossReload(t *testing.T, reload func(ts *testServer)) (*testServer, byte, byte) {
	t.Helper()
	cfg, _ := basicConfig()
	ts, disk, release := startGated(t, cfg, Options{ReinstateWait: 5 * time.Second})
	old := dialRaw(t, ts.addr, normalKeys())
	writeIntoGate(t, old, disk, make([]byte, 512))
	type status struct{ class, detail byte }
	got := make(chan status, 1)
	r := rawConn(t, ts.addr)
	t.Cleanup(func() { r.nc.Close() })
	go func() {
		h := loginReq(pdu.FlagTransit|1<<2|3, 7) // the ISID of dialRaw: reinstatement
		r.send(&h, login.EncodeKeys(normalKeys()))
		r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var p rawPDU
		if err := r.rd.ReadHeader(&p.Header); err != nil {
			got <- status{0xff, 0xff}
			return
		}
		got <- status{p.BHS[36], p.BHS[37]}
	}()
	// The login is in admit once the old session's connection is closing.
	for i := 0; ; i++ {
		if ss := ts.srv.Sessions(); len(ss) == 1 && len(ss[0].Conns) == 1 && ss[0].Conns[0].State == "closing" {
			break
		}
		if i == 500 {
			t.Fatal("the reinstating login never closed the old session")
		}
		time.Sleep(10 * time.Millisecond)
	}
	reload(ts)
	release()
	select {
	case s := <-got:
		return ts, s.class, s.detail
	case <-time.After(15 * time.Second):
		t.Fatal("no login response")
	}
	return nil, 0, 0
}

// A reload that removes the target while a login to it waits for the
// session it reinstates to end: the login is refused as "target removed";
// it must not make a session on a target whose device the reload closed
// (a logged-in initiator seeing no LUNs, and a session no later reload
// or ietadm --op delete finds).
func TestReloadRemovingTheTargetDuringReinstatement(t *testing.T) {
	ts, class, detail := reinstateAcrossReload(t, func(ts *testServer) {
		if err := ts.srv.Reload(&config.Config{Dialect: config.DialectIET}); err != nil {
			t.Fatal(err)
		}
	})
	if st := login.Status(uint16(class)<<8 | uint16(detail)); st != login.StatusTargetRemoved {
		t.Fatalf("login to the target removed meanwhile: status %#04x, want %#04x (target removed)", uint16(st), uint16(login.StatusTargetRemoved))
	}
	if n := len(ts.srv.Sessions()); n != 0 {
		t.Fatalf("%d sessions on a target that is gone", n)
	}
}

// A reload that keeps the target while a login to it waits: the session
// is admitted and belongs to the target in force (a later reload that
// removes the target ends it; MaxSessions counts it).
func TestReloadKeepingTheTargetDuringReinstatement(t *testing.T) {
	ts, class, detail := reinstateAcrossReload(t, func(ts *testServer) {
		if err := ts.srv.Reload(ts.srv.Config().Clone()); err != nil {
			t.Fatal(err)
		}
	})
	if class != 0 {
		t.Fatalf("login across a reload that kept the target: status %#x%02x", class, detail)
	}
	if n := len(ts.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions after the reinstatement, want 1", n)
	}
	if err := ts.srv.Reload(&config.Config{Dialect: config.DialectIET}); err != nil {
		t.Fatal(err)
	}
	for i := 0; len(ts.srv.Sessions()) != 0; i++ {
		if i == 500 {
			t.Fatal("the session admitted across a reload outlived the removal of its target")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
