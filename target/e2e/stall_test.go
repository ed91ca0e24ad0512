//go:build linux

package e2e

import (
	"errors"
	"fmt"
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

	tl := reportTally("stalled peers (each must be dropped by the daemon, descriptors freed)")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// 1. Logins that never complete: silent, half a login (the target
	// answered the first request and waits for the next), half a BHS.
	kinds := []string{"login: connected, never sent a byte", "login: first request answered, never continued", "login: half a BHS sent"}
	for i := range 24 {
		c, err := dial(d.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c.nc)
		switch i % 3 {
		case 1:
			c.send(c.loginPDU(1, 0, 1, false, []keyValue{{"InitiatorName", testInitiator},
				{"SessionType", "Normal"}, {"TargetName", stallIQN}, {"AuthMethod", "None"}}))
			p, err := c.recvAny()
			if err != nil || p.h.opcode() != opLoginResp || p.h[36] != 0 {
				t.Fatalf("first login request of a half login: %v %v; want a login response that lets it go on", p, err)
			}
		case 2:
			lp := c.loginPDU(1, 0, 1, false, nil)
			c.sendRaw(lp.h[:17])
		}
	}
	stalledAt := time.Now()
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
	// 24 unfinished logins, the non-reader and the silent session: every
	// one holds a descriptor in the daemon now (2 spare for descriptors
	// that come and go, such as the proc listing being rewritten).
	during := d.fdCount()
	if during < base+26-2 {
		t.Errorf("only %d descriptors while 26 stalled peers are connected (base %d): some were dropped at once", during, base)
	}
	h.checkpoint(t, "stalled peers present", 10*time.Second)

	// The silent session must be dropped by NOP timeout (1s + 2s) soon.
	if err := waitEOF(silent.nc, 15*time.Second); err != nil {
		tl.add("session: logged in, never answers NOP-In (NOPInterval 1, NOPTimeout 2)", "NOT dropped in 15s")
		t.Errorf("silent session not dropped after NOPInterval 1 + NOPTimeout 2: %v", err)
	} else {
		tl.add("session: logged in, never answers NOP-In (NOPInterval 1, NOPTimeout 2)", closedAfter(stalledAt))
	}
	// Unfinished logins: bounded by the login timeout (15s by default).
	for i, c := range conns[:24] {
		if err := waitEOF(c, 25*time.Second); err != nil {
			tl.add(kinds[i%3], "NOT closed in 25s")
			t.Errorf("unfinished login #%d (%s) not closed: %v", i, kinds[i%3], err)
			break
		}
		tl.add(kinds[i%3], closedAfter(stalledAt))
	}
	h.checkpoint(t, "stalled logins dropped", 10*time.Second)
	// The non-reading initiator: the daemon must give up on the blocked
	// writer (write timeout or NOP timeout) and free the connection.
	if n, ok := d.waitFDs(base, 60*time.Second); !ok {
		tl.add("session: 24 reads of 1 MiB queued, Data-In never read", "NOT dropped in 60s")
		t.Errorf("daemon still holds %d descriptors (base %d, %d with stalled peers) 60s later: the initiator that stopped reading Data-In was never dropped", n, base, during)
	} else {
		tl.add("session: 24 reads of 1 MiB queued, Data-In never read", "descriptor freed, "+closedAfter(stalledAt))
		t.Logf("descriptors: base %d, with stalled peers %d, after %d", base, during, n)
	}
	h.checkpoint(t, "non-reading initiator", 10*time.Second)
	d.requireAlive(t, "stalled peers")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

// closedAfter names a coarse delay bucket for the report.
func closedAfter(since time.Time) string {
	s := int(time.Since(since).Seconds()+2.5) / 5 * 5
	return fmt.Sprintf("closed after ~%ds", s)
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
