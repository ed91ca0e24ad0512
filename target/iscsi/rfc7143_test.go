package iscsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
)

// RFC 7143 11.3.1: a SCSI Command with F=1 sends no unsolicited Data-Out
// after it, even with InitialR2T=No: what its immediate data leaves of
// the write is solicited at once. (Before, the target waited for
// unsolicited data up to FirstBurstLength that was never to come, and
// the write hung until the initiator gave up on it.)
func TestFinalCommandEndsUnsolicitedData(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.InitialR2T = false
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "InitialR2T", Value: "No"}))
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i/512 + 3)
	}
	for _, imm := range []int{512, 0} {
		itt := r.writeCommand(cdbWrite10(byte(16+imm/64), 8), 4096, data[:imm]) // F=1
		p := r.recv()
		if p.Opcode() != pdu.OpR2T || p.ITT() != itt || p.U32(pdu.OffBufOffset) != uint32(imm) ||
			p.U32(pdu.OffResidual) != uint32(4096-imm) {
			t.Fatalf("%d bytes immediate, F=1: want R2T for %d+%d, got %s offset %d length %d", imm, imm, 4096-imm,
				pdu.Describe(&p.BHS), p.U32(pdu.OffBufOffset), p.U32(pdu.OffResidual))
		}
		r.dataOut(itt, p.TTT(), 0, uint32(imm), true, data[imm:])
		if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0 {
			t.Fatalf("want GOOD, got %s status %#x", pdu.Describe(&p.BHS), p.BHS[3])
		}
		lba := 16 + imm/64
		disk.mu.RLock()
		same := bytes.Equal(disk.data[lba*512:lba*512+4096], data)
		disk.mu.RUnlock()
		if !same {
			t.Fatalf("%d bytes immediate: data written differs from data sent", imm)
		}
	}
	// Unsolicited Data-Out after a command with F=1: a protocol error.
	itt := r.writeCommand(cdbWrite10(40, 8), 4096, data[:512]) // F=1
	if p := r.recv(); p.Opcode() != pdu.OpR2T {
		t.Fatalf("want R2T, got %s", pdu.Describe(&p.BHS))
	}
	r.dataOut(itt, pdu.ReservedTag, 0, 512, false, data[512:1024])
	if p := r.recv(); p.Opcode() != pdu.OpReject || p.BHS[2] != rejectProtocolError {
		t.Fatalf("unsolicited Data-Out after F=1: want Reject 0x04, got %s reason %#x", pdu.Describe(&p.BHS), p.BHS[2])
	}
}

// sendCorrupt sends a PDU whose header digest (header) or data digest
// (!header) does not match.
func (r *rawInit) sendCorrupt(h *pdu.BHS, data []byte, header bool) {
	r.t.Helper()
	h.SetDataLen(len(data))
	bufs, _ := pdu.AppendPDU(nil, nil, h, data, r.hd, r.dd)
	var wire []byte
	for _, b := range bufs {
		wire = append(wire, b...)
	}
	if header {
		wire[pdu.BHSLen] ^= 0xff
	} else {
		wire[len(wire)-1] ^= 0xff
	}
	if _, err := r.nc.Write(wire); err != nil {
		r.t.Fatal(err)
	}
}

func digestServer(t *testing.T) (*testServer, *rawInit) {
	t.Helper()
	cfg, tg := basicConfig()
	tg.Params.HeaderDigest = []string{"CRC32C", "None"}
	tg.Params.DataDigest = []string{"CRC32C", "None"}
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "HeaderDigest", Value: "CRC32C"}, login.KV{Key: "DataDigest", Value: "CRC32C"},
		login.KV{Key: "ImmediateData", Value: "Yes"}))
	if !r.hd || !r.dd {
		t.Fatal("digests not negotiated")
	}
	return ts, r
}

// wantReject reads a Reject with reason for the PDU with ITT itt.
func (r *rawInit) wantReject(what string, reason byte, itt uint32) {
	r.t.Helper()
	p := r.recv()
	if p.Opcode() != pdu.OpReject || p.BHS[2] != reason || len(p.data) < pdu.BHSLen ||
		binary.BigEndian.Uint32(p.data[16:]) != itt {
		r.t.Fatalf("%s: want Reject %#x of ITT %#x, got %s reason %#x", what, reason, itt, pdu.Describe(&p.BHS), p.BHS[2])
	}
}

// closedByTarget reports whether the target closed the connection (EOF or
// reset within d, nothing else read).
func (r *rawInit) closedByTarget(d time.Duration) bool {
	r.nc.SetReadDeadline(time.Now().Add(d))
	var h pdu.Header
	err := r.rd.ReadHeader(&h)
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// RFC 7143 7.8, at ErrorRecoveryLevel 0. A header digest error: the
// PDU's length cannot be trusted, the connection closes (nothing answers
// the PDU). A data digest error on a Data-Out: Reject "data digest
// error", and once the rest of the data came the command ends with
// CHECK CONDITION, PROTOCOL SERVICE CRC ERROR, its data never written; the
// connection stays. On a NOP-Out or a Text Request: Reject, the PDU is
// discarded, the connection stays. On immediate data: Reject, then the
// connection closes (the command is discarded, and at ERL 0 nothing
// resends it: session recovery).
func TestDigestErrors(t *testing.T) {
	t.Run("header digest", func(t *testing.T) {
		_, r := digestServer(t)
		h := r.immediate(pdu.OpNOPOut, 7)
		r.sendCorrupt(&h, nil, true)
		if !r.closedByTarget(2 * time.Second) {
			t.Fatal("connection not closed after a header digest error")
		}
	})
	t.Run("Data-Out", func(t *testing.T) {
		ts, r := digestServer(t)
		data := bytes.Repeat([]byte{0x6b}, 2048)
		itt := r.writeCommand(cdbWrite10(20, 4), 2048, data[:512])
		p := r.recv()
		if p.Opcode() != pdu.OpR2T {
			t.Fatalf("want R2T, got %s", pdu.Describe(&p.BHS))
		}
		d := dataOutHeader(itt, p.TTT(), 0, 512, false)
		r.sendCorrupt(&d, data[512:1024], false)
		r.wantReject("Data-Out with a data digest error", rejectDataDigest, itt)
		r.dataOut(itt, p.TTT(), 1, 1024, true, data[1024:])
		p = r.recv()
		if p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0x02 || len(p.data) < 16 ||
			p.data[2+2]&0x0f != 0x0b || p.data[2+12] != 0x47 || p.data[2+13] != 0x05 {
			t.Fatalf("want CHECK CONDITION 0B/47/05, got %s status %#x sense % x", pdu.Describe(&p.BHS), p.BHS[3], p.data)
		}
		if bytes.Contains(ts.disk.data[20*512:24*512], []byte{0x6b}) {
			t.Fatal("the damaged write reached the store")
		}
		itt = r.command(cdbTUR, 0, false)
		if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0 {
			t.Fatalf("after the digest error: %s", pdu.Describe(&p.BHS))
		}
	})
	t.Run("NOP-Out and Text", func(t *testing.T) {
		_, r := digestServer(t)
		h := r.immediate(pdu.OpNOPOut, 8)
		r.sendCorrupt(&h, []byte("ping"), false)
		r.wantReject("NOP-Out", rejectDataDigest, 8)
		h = r.immediate(pdu.OpTextReq, 9)
		r.sendCorrupt(&h, login.EncodeKeys([]login.KV{{Key: "SendTargets", Value: "All"}}), false)
		r.wantReject("Text Request", rejectDataDigest, 9)
		h = r.immediate(pdu.OpNOPOut, 10)
		r.send(&h, []byte("ping"))
		if p := r.recv(); p.Opcode() != pdu.OpNOPIn || p.ITT() != 10 || string(p.data) != "ping" {
			t.Fatalf("after the digest errors: %s %q", pdu.Describe(&p.BHS), p.data)
		}
	})
	t.Run("immediate data", func(t *testing.T) {
		ts, r := digestServer(t)
		r.itt++
		var h pdu.BHS
		h.SetOpcode(pdu.OpSCSICmd)
		h.SetFlags(pdu.FlagFinal | pdu.FlagWrite | 1)
		h.SetU32(pdu.OffITT, r.itt)
		h.SetU32(pdu.OffTTT, 512)
		h.SetU32(pdu.OffCmdSN, r.cmdSN)
		copy(h.CDB(), cdbWrite10(30, 1))
		r.sendCorrupt(&h, bytes.Repeat([]byte{0x6c}, 512), false)
		r.wantReject("immediate data", rejectDataDigest, r.itt)
		if !r.closedByTarget(2 * time.Second) {
			t.Fatal("connection not closed after a data digest error on immediate data")
		}
		if ts.disk.byOp[0x2a].Load() != 0 {
			t.Fatal("the damaged write reached the store")
		}
	})
}

// Protocol violations at ErrorRecoveryLevel 0 (RFC 7143 7.7, 7.13,
// 11.17.1): PDUs that break the Data-Out rules are rejected and the
// connection closes, with "invalid PDU field" when a field that names
// the transfer is wrong (a TTT no R2T has, a buffer offset outside the
// R2T or beyond the expected length: note 2 of the reason table); a Data-Out for a task the target does not know (one
// aborted, say) is dropped; opcodes the target does not implement (SNACK
// at ERL 0, reserved and vendor opcodes) get Reject "command not
// supported" and the connection stays.
func TestProtocolViolations(t *testing.T) {
	write := func(r *rawInit) (itt, ttt uint32) {
		itt = r.writeCommand(cdbWrite10(50, 16), 8192, nil)
		p := r.recv()
		if p.Opcode() != pdu.OpR2T || p.ITT() != itt {
			r.t.Fatalf("want R2T, got %s", pdu.Describe(&p.BHS))
		}
		return itt, p.TTT()
	}
	for _, tc := range []struct {
		name   string
		send   func(r *rawInit) uint32 // returns the ITT the Reject names
		reason byte                    // 0: no Reject
		closes bool
	}{
		{"Data-Out for an unknown ITT", func(r *rawInit) uint32 {
			r.dataOut(0x999, 0x999, 0, 0, true, make([]byte, 512))
			return 0
		}, 0, false},
		{"Data-Out for an unknown TTT", func(r *rawInit) uint32 {
			itt, ttt := write(r)
			r.dataOut(itt, ttt+100, 0, 0, true, make([]byte, 512))
			return itt
		}, rejectInvalidPDU, true},
		{"Data-Out beyond EDTL", func(r *rawInit) uint32 {
			itt, ttt := write(r)
			r.dataOut(itt, ttt, 0, 8192, true, make([]byte, 512))
			return itt
		}, rejectInvalidPDU, true},
		{"Data-Out beyond its R2T (MaxBurstLength)", func(r *rawInit) uint32 {
			itt := r.writeCommand(cdbWrite10(50, 16), 8192, nil)
			p := r.recv() // MaxBurstLength 4096: R2T for 0+4096
			if p.Opcode() != pdu.OpR2T || p.U32(pdu.OffResidual) != 4096 {
				r.t.Fatalf("want an R2T of 4096 bytes, got %s length %d", pdu.Describe(&p.BHS), p.U32(pdu.OffResidual))
			}
			r.dataOut(itt, p.TTT(), 0, 0, true, make([]byte, 4096+512))
			return itt
		}, rejectInvalidPDU, true},
		{"Data-Out before its R2T's offset", func(r *rawInit) uint32 {
			itt := r.writeCommand(cdbWrite10(50, 16), 8192, nil)
			p := r.recv()
			r.dataOut(itt, p.TTT(), 0, 0, false, make([]byte, 4096))
			p = r.recv() // the R2T for 4096+4096
			if p.Opcode() != pdu.OpR2T || p.U32(pdu.OffBufOffset) != 4096 {
				r.t.Fatalf("want the R2T for 4096+4096, got %s offset %d", pdu.Describe(&p.BHS), p.U32(pdu.OffBufOffset))
			}
			r.dataOut(itt, p.TTT(), 0, 0, true, make([]byte, 512))
			return itt
		}, rejectInvalidPDU, true},
		{"unsolicited Data-Out with InitialR2T=Yes", func(r *rawInit) uint32 {
			itt, _ := write(r)
			r.dataOut(itt, pdu.ReservedTag, 0, 0, true, make([]byte, 512))
			return itt
		}, rejectProtocolError, true},
		{"data segment beyond MaxRecvDataSegmentLength", func(r *rawInit) uint32 {
			// (Up to 8192 bytes, the limit of the login phase, pass.)
			itt, ttt := write(r)
			r.dataOut(itt, ttt, 0, 0, true, make([]byte, 8192+512))
			return itt
		}, rejectProtocolError, true},
		{"SNACK", func(r *rawInit) uint32 {
			h := r.immediate(pdu.OpSNACK, 0x55)
			r.send(&h, nil)
			return 0x55
		}, rejectNotSupported, false},
		{"reserved opcode", func(r *rawInit) uint32 {
			h := r.immediate(pdu.Opcode(0x0a), 0x56)
			r.send(&h, []byte("data"))
			return 0x56
		}, rejectNotSupported, false},
		{"vendor opcode", func(r *rawInit) uint32 {
			h := r.immediate(pdu.Opcode(0x1c), 0x57)
			r.send(&h, nil)
			return 0x57
		}, rejectNotSupported, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, tg := basicConfig()
			tg.Params.MaxRecvDataSegmentLength = 4096
			ts := startServer(t, cfg, newFakeDisk(1<<20))
			before := goroutinesNow()
			r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "ImmediateData", Value: "No"},
				login.KV{Key: "MaxBurstLength", Value: "4096"}))
			itt := tc.send(r)
			if tc.reason != 0 {
				r.wantReject(tc.name, tc.reason, itt)
			}
			if tc.closes {
				if !r.closedByTarget(2 * time.Second) {
					t.Fatal("connection not closed")
				}
				settled(t, ts, before, tc.name)
				if n := ts.disk.byOp[0x2a].Load(); n != 0 {
					t.Fatalf("%d WRITEs reached the store", n)
				}
				return
			}
			h := r.immediate(pdu.OpNOPOut, 0x77)
			r.send(&h, nil)
			if p := r.recv(); p.Opcode() != pdu.OpNOPIn || p.ITT() != 0x77 {
				t.Fatalf("connection not usable after it: %s", pdu.Describe(&p.BHS))
			}
		})
	}
}

// A Logout (close the session) while a command runs: the command's
// response goes out first, then the Logout Response, then the connection
// closes (RFC 7143 11.14).
func TestLogoutAfterRunningCommands(t *testing.T) {
	disk, r := blockedRead(t) // READ ITT 1 in the store
	h := r.immediate(pdu.OpLogoutReq, 40)
	h.SetU32(pdu.OffCmdSN, 2)
	r.send(&h, nil)
	r.quiet(100*time.Millisecond, "Logout with a command in the store")
	close(disk.block)
	p := r.recv()
	if p.Opcode() != pdu.OpDataIn || p.ITT() != 1 || p.Flags()&pdu.FlagStatus == 0 {
		t.Fatalf("want the READ's Data-In with status first, got %s", pdu.Describe(&p.BHS))
	}
	p = r.recv()
	if p.Opcode() != pdu.OpLogoutResp || p.ITT() != 40 || p.BHS[2] != 0 {
		t.Fatalf("want the Logout Response, got %s response %d", pdu.Describe(&p.BHS), p.BHS[2])
	}
	r.expectClosed(t)
}

// Shutdown asks every initiator to log out: an Async Message, event 1
// (logout requested), Parameter3 the seconds it has to (RFC 7143
// 11.9.1); the Logout then ends the session and Shutdown returns.
func TestShutdownRequestsLogout(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	itt := r.command(cdbTUR, 0, false)
	p := r.recv()
	if p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt {
		t.Fatalf("TUR: %s", pdu.Describe(&p.BHS))
	}
	statSN := p.U32(pdu.OffCmdSN)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	p = r.recv()
	if p.Opcode() != pdu.OpAsync || p.BHS[36] != asyncEventLogoutReq || p.BHS.U16(42) != asyncLogoutWaitSecs ||
		p.ITT() != pdu.ReservedTag || p.U32(pdu.OffCmdSN) != statSN+1 {
		t.Fatalf("want Async Message event 1, got %s event %d Parameter3 %d StatSN %d (want %d)",
			pdu.Describe(&p.BHS), p.BHS[36], p.BHS.U16(42), p.U32(pdu.OffCmdSN), statSN+1)
	}
	h := r.immediate(pdu.OpLogoutReq, 41)
	r.send(&h, nil)
	if p := r.recv(); p.Opcode() != pdu.OpLogoutResp || p.ITT() != 41 || p.BHS[2] != 0 {
		t.Fatalf("want the Logout Response, got %s", pdu.Describe(&p.BHS))
	}
	r.expectClosed(t)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the logout")
	}
}

// NOP-Out (RFC 7143 11.18, 11.19): a ping with an ITT is answered with
// its data echoed and no target transfer tag, a non-immediate one uses a
// CmdSN; one with the reserved ITT (the answer to a target's ping, or a
// mere ExpStatSN update) is not answered.
func TestNOPOutForms(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	h := r.immediate(pdu.OpNOPOut, pdu.ReservedTag)
	r.send(&h, nil)
	h = r.immediate(pdu.OpNOPOut, pdu.ReservedTag)
	h.SetU32(pdu.OffTTT, 0x1234) // no ping of ours has it: ignored
	r.send(&h, nil)
	r.quiet(100*time.Millisecond, "NOP-Out with the reserved ITT")
	h = r.immediate(pdu.OpNOPOut, 50)
	h[0] &^= 0x40 // non-immediate: CmdSN 1
	r.send(&h, []byte("hello"))
	p := r.recv()
	if p.Opcode() != pdu.OpNOPIn || p.ITT() != 50 || p.TTT() != pdu.ReservedTag || string(p.data) != "hello" ||
		p.ExpStatSN() != 2 {
		t.Fatalf("want NOP-In echo with ExpCmdSN 2, got %s %q", pdu.Describe(&p.BHS), p.data)
	}
	h = r.immediate(pdu.OpNOPOut, 51)
	h.SetU32(pdu.OffCmdSN, 2)
	r.send(&h, nil)
	p = r.recv()
	if p.Opcode() != pdu.OpNOPIn || p.ITT() != 51 || len(p.data) != 0 || p.ExpStatSN() != 2 {
		t.Fatalf("want NOP-In for the immediate NOP-Out, got %s", pdu.Describe(&p.BHS))
	}
}

// Data-Out still on its way for a write that ABORT TASK ended is dropped
// without a Reject (the task is gone, the initiator could not know yet),
// and the connection stays in step.
func TestDataOutAfterAbortTask(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "ImmediateData", Value: "No"}))
	itt := r.writeCommand(cdbWrite10(60, 8), 4096, nil)
	p := r.recv()
	if p.Opcode() != pdu.OpR2T {
		t.Fatalf("want R2T, got %s", pdu.Describe(&p.BHS))
	}
	r.tmf(1, 70, r.cmdSN, itt, r.cmdSN-1, 0, true)
	if p := r.recv(); p.Opcode() != pdu.OpTMFResp || p.ITT() != 70 || p.BHS[2] != tmfComplete {
		t.Fatalf("ABORT TASK: %s response %d", pdu.Describe(&p.BHS), p.BHS[2])
	}
	r.dataOut(itt, p.TTT(), 0, 0, true, bytes.Repeat([]byte{0x6d}, 4096))
	h := r.immediate(pdu.OpNOPOut, 71)
	r.send(&h, nil)
	if p := r.recv(); p.Opcode() != pdu.OpNOPIn || p.ITT() != 71 {
		t.Fatalf("after the aborted task's Data-Out: %s", pdu.Describe(&p.BHS))
	}
	if ts.disk.byOp[0x2a].Load() != 0 || ts.srv.mem.inUse() != 0 {
		t.Fatalf("aborted write: %d WRITEs, %d bytes of budget held", ts.disk.byOp[0x2a].Load(), ts.srv.mem.inUse())
	}
}
