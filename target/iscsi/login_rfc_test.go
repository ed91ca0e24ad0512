package iscsi

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
)

// loginStatus is the status of a Login Response.
func loginStatus(p *rawPDU) uint16 { return uint16(p.BHS[36])<<8 | uint16(p.BHS[37]) }

// expectClosed reads until the target closes the connection.
func (r *rawInit) expectClosed(t *testing.T) {
	t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h pdu.Header
	err := r.rd.ReadHeader(&h)
	if err == nil {
		t.Fatalf("want the connection closed, got %s", pdu.Describe(&h.BHS))
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the connection stayed open")
		}
	}
}

// RFC 7143 6.3: a PDU other than a Login Request before the login
// started closes the connection; once it started, the target answers a
// Login reject "invalid during login" (0x020b) and then disconnects.
func TestNonLoginPDUDuringLogin(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))

	t.Run("before the login", func(t *testing.T) {
		r := rawConn(t, ts.addr)
		h := r.immediate(pdu.OpNOPOut, 5)
		r.send(&h, nil)
		r.expectClosed(t)
	})

	t.Run("during the login", func(t *testing.T) {
		r := rawConn(t, ts.addr)
		h := loginReq(1<<2, 9) // CSG=1, T=0: the target answers and waits
		h.SetU32(pdu.OffITT, 77)
		r.send(&h, login.EncodeKeys(normalKeys()))
		p := r.recv()
		if p.Opcode() != pdu.OpLoginResp || loginStatus(p) != 0 || p.Flags()&pdu.FlagTransit != 0 {
			t.Fatalf("first login response: %s status %#04x", pdu.Describe(&p.BHS), loginStatus(p))
		}
		statSN := p.BHS.U32(pdu.OffCmdSN)
		n := r.immediate(pdu.OpNOPOut, 78)
		r.send(&n, []byte("ping"))
		p = r.recv()
		if p.Opcode() != pdu.OpLoginResp || loginStatus(p) != uint16(login.StatusInvalidDuringLogin) {
			t.Fatalf("answer to a NOP-Out during login: %s status %#04x, want a Login Response 0x020b", pdu.Describe(&p.BHS), loginStatus(p))
		}
		if p.ITT() != 77 || p.BHS[14] != 0 || p.BHS[15] != 0 || p.BHS[13] != 9 || p.BHS.U32(pdu.OffCmdSN) != statSN+1 {
			t.Fatalf("login reject: ITT %d, TSIH %x, ISID %x, StatSN %d (want ITT 77, TSIH 0, the login's ISID, StatSN %d)",
				p.ITT(), p.BHS[14:16], p.BHS[8:14], p.BHS.U32(pdu.OffCmdSN), statSN+1)
		}
		r.expectClosed(t)
	})
}

// RFC 7143 11.11.1: a Text Response to a Text Request with F=0 has F=0
// and a target transfer tag other than 0xffffffff; the initiator ends
// the exchange with a request naming it and F=1.
func TestTextRequestWithoutFinal(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	d := dialRaw(t, ts.addr, []login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"}, {Key: "SessionType", Value: "Discovery"}})
	h := d.immediate(pdu.OpTextReq, 810)
	h.SetFlags(0) // F=0, C=0
	d.send(&h, login.EncodeKeys([]login.KV{{Key: "SendTargets", Value: "All"}}))
	p := d.recv()
	if p.Opcode() != pdu.OpTextResp || p.ITT() != 810 || p.BHS.Final() || p.Flags()&pdu.FlagContinue != 0 || p.TTT() == pdu.ReservedTag {
		t.Fatalf("answer to F=0: %s; want F=0, C=0 and a TTT", pdu.Describe(&p.BHS))
	}
	kvs, err := login.ParseKeys(p.data)
	if err != nil || len(kvs) == 0 || kvs[0] != (login.KV{Key: "TargetName", Value: testIQN}) {
		t.Fatalf("SendTargets answered %v (%v)", kvs, err)
	}
	h = d.immediate(pdu.OpTextReq, 810) // F=1
	h.SetU32(pdu.OffTTT, p.TTT())
	d.send(&h, nil)
	p = d.recv()
	if p.Opcode() != pdu.OpTextResp || p.ITT() != 810 || !p.BHS.Final() || p.TTT() != pdu.ReservedTag || len(p.data) != 0 {
		t.Fatalf("answer to the closing F=1 request: %s, %d data bytes", pdu.Describe(&p.BHS), len(p.data))
	}
	// The session goes on.
	if kvs := d.sendTargets(t, "All"); len(kvs) == 0 || kvs[0].Value != testIQN {
		t.Fatalf("SendTargets afterwards: %v", kvs)
	}
}

// Logout reason codes (RFC 7143 11.14.1) and their responses (11.15.1):
// removing a connection for recovery is not supported at ERL 0 (2), an
// unknown CID is "CID not found" (1), and both leave the connection up;
// closing the connection or the session answers 0 with Time2Wait and
// closes it.
func TestLogoutReasons(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	logout := func(r *rawInit, reason byte, cid uint16, itt uint32) *rawPDU {
		t.Helper()
		h := r.immediate(pdu.OpLogoutReq, itt)
		h.SetFlags(pdu.FlagFinal | reason)
		h.SetU16(20, cid)
		r.send(&h, nil)
		p := r.recv()
		if p.Opcode() != pdu.OpLogoutResp || p.ITT() != itt || !p.BHS.Final() {
			t.Fatalf("reason %d: %s", reason, pdu.Describe(&p.BHS))
		}
		return p
	}
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "DefaultTime2Wait", Value: "5"}))
	if p := logout(r, 2, 0, 31); p.BHS[2] != 2 {
		t.Fatalf("remove for recovery: response %d, want 2", p.BHS[2])
	}
	if p := logout(r, 1, 9, 32); p.BHS[2] != 1 {
		t.Fatalf("close of CID 9: response %d, want 1 (CID not found)", p.BHS[2])
	}
	itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt {
		t.Fatalf("connection after the refused logouts: %s", pdu.Describe(&p.BHS))
	}
	p := logout(r, 1, 0, 33)
	if p.BHS[2] != 0 || p.BHS.U16(40) != 5 {
		t.Fatalf("close connection: response %d, Time2Wait %d (want 0 and the negotiated 5)", p.BHS[2], p.BHS.U16(40))
	}
	r.expectClosed(t)

	r = dialRaw(t, ts.addr, normalKeys())
	if p := logout(r, 0, 7, 34); p.BHS[2] != 0 || p.BHS.U16(40) != 2 {
		t.Fatalf("close session: response %d, Time2Wait %d (want 0 and 2)", p.BHS[2], p.BHS.U16(40))
	}
	r.expectClosed(t)
}
