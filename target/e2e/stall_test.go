package e2e

import (
	"errors"
	"net"
	"testing"
	"time"
)

const stallIQN = "iqn.2026-01.org.ietgo.e2e:stall"

// TestStalledPeers: logins that never complete, an initiator that stops
// reading Data-In and a silent (half-open) session are all dropped by the
// daemon, which gives their descriptors back, while an honest session on
// the same target keeps working.
func TestStalledPeers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := renderConf(t, nil, simpleTarget(dir, stallIQN, 64<<20, "NOPInterval 1", "NOPTimeout 2"))
	d := startDaemon(t, dir, conf)
	h := startHonest(t, d.addr, stallIQN, 0, 0, 1024, 1)
	h.checkpoint(t, "start", 10*time.Second)
	base := d.fdCount()

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// 1. Logins that never complete: silent, half a login, half a BHS.
	for i := range 24 {
		c, err := dial(d.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c.nc)
		switch i % 3 {
		case 1:
			c.send(c.loginPDU(1, 0, 1, false, []keyValue{{"InitiatorName", testInitiator}, {"AuthMethod", "None"}}))
		case 2:
			lp := c.loginPDU(1, 0, 1, false, nil)
			c.sendRaw(lp.h[:17])
		}
	}
	// 2. An initiator that stops reading Data-In: 24 reads of 1 MiB
	// queued, a tiny receive buffer, nothing read.
	reader, err := dial(d.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, reader.nc)
	reader.nc.(*net.TCPConn).SetReadBuffer(4096)
	if err := reader.login(loginOpts{target: stallIQN}); err != nil {
		t.Fatal(err)
	}
	for range 24 {
		reader.send(reader.cmdPDU(0, cdbRead16(0, 2048), 1<<20, false, true))
	}
	// 3. A logged-in session that goes silent (never answers NOP-In).
	silent, err := session(d.addr, stallIQN)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, silent.nc)

	time.Sleep(time.Second)
	during := d.fdCount()
	if during < base+24 {
		t.Logf("note: only %d descriptors while stalled (base %d)", during, base)
	}
	h.checkpoint(t, "stalled peers present", 10*time.Second)

	// The silent session must be dropped by NOP timeout (1s + 2s) soon.
	if err := waitEOF(silent.nc, 15*time.Second); err != nil {
		t.Errorf("silent session not dropped after NOPInterval 1 + NOPTimeout 2: %v", err)
	}
	// Unfinished logins: bounded by the login timeout (15s by default).
	for i, c := range conns[:24] {
		if err := waitEOF(c, 25*time.Second); err != nil {
			t.Errorf("unfinished login #%d (kind %d) not closed: %v", i, i%3, err)
			break
		}
	}
	h.checkpoint(t, "stalled logins dropped", 10*time.Second)
	// The non-reading initiator: the daemon must give up on the blocked
	// writer (write timeout or NOP timeout) and free the connection.
	if n, ok := d.waitFDs(base, 60*time.Second); !ok {
		t.Errorf("daemon still holds %d descriptors (base %d, %d with stalled peers) 60s later: the initiator that stopped reading Data-In was never dropped", n, base, during)
	} else {
		t.Logf("descriptors: base %d, with stalled peers %d, after %d", base, during, n)
	}
	h.checkpoint(t, "non-reading initiator", 10*time.Second)
	d.requireAlive(t, "stalled peers")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// waitEOF drains c until the peer closes it (nil) or d passes.
func waitEOF(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64<<10)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return err
		}
		return nil // EOF or reset: closed by the daemon
	}
}
