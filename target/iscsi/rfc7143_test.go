package iscsi

import (
	"bytes"
	"testing"

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
