package iscsi

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
)

const stallIO = 256 << 10 // larger than smallCommand: it waits for budget

func cdbRW10(op byte, lba uint32, size int) []byte {
	n := uint16(size / 512)
	return []byte{op, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(n >> 8), byte(n), 0}
}

// readAll reads the Data-In of n reads of stallIO bytes until their
// status; it reports how long that took from start.
func (r *rawInit) readAll(n int, start time.Time, within time.Duration) time.Duration {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(within))
	got := map[uint32]int{}
	for n > 0 {
		var p rawPDU
		if err := r.rd.ReadHeader(&p.Header); err != nil {
			r.t.Fatalf("%d reads to go after %v (bytes so far %v): %v", n, time.Since(start), got, err)
		}
		p.data = make([]byte, p.DataLen())
		if err := r.rd.ReadData(p.data); err != nil {
			r.t.Fatal(err)
		}
		switch p.Opcode() {
		case pdu.OpDataIn:
			got[p.ITT()] += len(p.data)
			if p.Flags()&pdu.FlagStatus != 0 {
				if got[p.ITT()] != stallIO || p.BHS[3] != 0 {
					r.t.Fatalf("read: %d bytes status %#x", got[p.ITT()], p.BHS[3])
				}
				n--
			}
		case pdu.OpSCSIResp:
			r.t.Fatalf("read ended without its data: status %#x", p.BHS[3])
		}
	}
	return time.Since(start)
}

// keysOf are normalKeys for another initiator (the same one's new login
// would reinstate the session).
func keysOf(name string) []login.KV {
	k := normalKeys()
	k[0].Value = "iqn.2026-01.test:" + name
	return k
}

// droppedByTarget reports whether the target closed the connection
// (everything it sent is read and discarded meanwhile), within d.
func droppedByTarget(nc net.Conn, d time.Duration) bool {
	nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, nc)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// A session whose writes pin the whole data budget waiting for Data-Out
// that never comes keeps it while nobody else needs memory; once another
// session's read waits, the stalled connection is dropped after about
// initiatorStallLimit (ERL 0) and the read gets its data.
func TestStalledDataOutDroppedUnderContention(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(4 << 20)
	ts := startServerWith(t, cfg, disk, Options{MaxDataInFlight: 4 * stallIO})
	w := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "InitialR2T", Value: "Yes"}, login.KV{Key: "ImmediateData", Value: "No"}))
	for i := range 4 {
		w.cmdAt(w.cmdSN, uint32(100+i), cdbRW10(0x2a, uint32(i*1024), stallIO), stallIO, false, false, nil)
		w.cmdSN++
		if p := w.recv(); p.Opcode() != pdu.OpR2T {
			t.Fatalf("write %d: want R2T, got %s", i, pdu.Describe(&p.BHS))
		}
	}
	if used := ts.srv.mem.inUse(); used != 4*stallIO {
		t.Fatalf("the writes hold %d bytes, want the whole budget", used)
	}
	// Alone, it may keep the budget: still served after the stall limit.
	time.Sleep(initiatorStallLimit + 3*watchTick)
	nop := w.immediate(pdu.OpNOPOut, 7)
	w.send(&nop, nil)
	if p := w.recv(); p.Opcode() != pdu.OpNOPIn || p.ITT() != 7 {
		t.Fatalf("the session alone: NOP-Out answered by %s", pdu.Describe(&p.BHS))
	}

	g := dialRaw(t, ts.addr, keysOf("g"))
	start := time.Now()
	g.cmdAt(g.cmdSN, 1, cdbRW10(0x28, 0, stallIO), stallIO, true, false, nil)
	took := g.readAll(1, start, 5*initiatorStallLimit)
	if took < initiatorStallLimit*9/10 {
		t.Errorf("the read got its data after %v, before the stalled session could have been dropped", took)
	}
	t.Logf("read served after %v", took)
	if !droppedByTarget(w.nc, 5*time.Second) {
		t.Fatal("the stalled writer's connection is still up")
	}
	for i := 0; ts.srv.mem.inUse() != 0 && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if used := ts.srv.mem.inUse(); used != 0 {
		t.Fatalf("%d bytes still held", used)
	}
}

// smallSendBuffer makes the target's socket buffers small, so that a
// connection whose initiator reads nothing blocks its writer at once.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// A session that reads none of its responses pins the budget with its
// reads' data; once another session's read waits, its connection is
// dropped after about initiatorStallLimit, and a session that does read
// its responses (also holding more than its share meanwhile) is not.
func TestUnreadResponsesDroppedUnderContention(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(4 << 20)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServerOn(t, cfg, disk, Options{MaxDataInFlight: 4 * stallIO}, smallSendBuffer{l})
	r := dialRaw(t, ts.addr, normalKeys())
	r.nc.(*net.TCPConn).SetReadBuffer(4096)
	for i := range 8 { // the initial window
		r.cmdAt(r.cmdSN, uint32(100+i), cdbRW10(0x28, 0, stallIO), stallIO, true, false, nil)
		r.cmdSN++
	}
	for i := 0; ts.srv.mem.inUse() < 4*stallIO && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if used := ts.srv.mem.inUse(); used != 4*stallIO {
		t.Fatalf("the unread reads hold %d bytes, want the whole budget", used)
	}
	time.Sleep(initiatorStallLimit + 3*watchTick)
	if n := len(ts.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions: alone, the stalled session must stay", n)
	}

	g := dialRaw(t, ts.addr, keysOf("g"))
	start := time.Now()
	g.cmdAt(g.cmdSN, 1, cdbRW10(0x28, 0, stallIO), stallIO, true, false, nil)
	g.cmdSN++
	took := g.readAll(1, start, 5*initiatorStallLimit)
	if took < initiatorStallLimit*9/10 {
		t.Errorf("the read got its data after %v, before the stalled session could have been dropped", took)
	}
	t.Logf("read served after %v", took)
	if !droppedByTarget(r.nc, 5*time.Second) {
		t.Fatal("the connection that reads nothing is still up")
	}
	// g keeps 4 reads in flight (the whole budget) and reads them while
	// a third session waits: g is above its share but not stalled.
	h := dialRaw(t, ts.addr, keysOf("h"))
	itt := uint32(1)
	for range 4 {
		itt++
		g.cmdAt(g.cmdSN, itt, cdbRW10(0x28, 0, stallIO), stallIO, true, false, nil)
		g.cmdSN++
	}
	h.cmdAt(h.cmdSN, 1, cdbRW10(0x28, 0, stallIO), stallIO, true, false, nil)
	g.readAll(4, time.Now(), 5*time.Second)
	h.readAll(1, time.Now(), 5*time.Second)
	if n := len(ts.srv.Sessions()); n != 2 {
		t.Fatalf("%d sessions, want g and h", n)
	}
}
