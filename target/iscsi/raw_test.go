package iscsi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
)

// rawInit is a minimal initiator speaking PDUs directly.
type rawInit struct {
	t      *testing.T
	nc     net.Conn
	rd     *pdu.Reader
	hd, dd bool
	cmdSN  uint32
	itt    uint32
	// unsol: unsolicited Data-Out follows the write commands (InitialR2T
	// =No): they are sent with F=0 (RFC 7143 11.3.1).
	unsol bool
}

func dialRaw(t *testing.T, addr string, keys []login.KV) *rawInit {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	r := &rawInit{t: t, nc: nc, rd: pdu.NewReader(nc), cmdSN: 1}
	var h pdu.BHS
	h.SetOpcode(pdu.OpLoginReq)
	h[0] |= 0x40
	h.SetFlags(pdu.FlagTransit | 1<<2 | 3) // CSG=1 NSG=3
	copy(h[8:14], []byte{0x80, 0, 0, 0, 0, 7})
	h.SetU32(pdu.OffCmdSN, r.cmdSN)
	data := login.EncodeKeys(keys)
	r.send(&h, data)
	resp := r.recv()
	if resp.Opcode() != pdu.OpLoginResp || resp.BHS[36] != 0 || resp.Flags()&pdu.FlagTransit == 0 {
		t.Fatalf("login failed: %s status %#x", pdu.Describe(&resp.BHS), resp.BHS[36:38])
	}
	kvs, _ := login.ParseKeys(resp.data)
	for _, kv := range kvs {
		if kv.Key == "HeaderDigest" && kv.Value == "CRC32C" {
			r.hd = true
		}
		if kv.Key == "DataDigest" && kv.Value == "CRC32C" {
			r.dd = true
		}
	}
	r.rd.HeaderDigest, r.rd.DataDigest = r.hd, r.dd
	return r
}

// rawConn dials addr for a login written by hand; the connection is
// closed at the end of the test (or earlier by the caller).
func rawConn(t *testing.T, addr string) *rawInit {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawInit{t: t, nc: nc, rd: pdu.NewReader(nc), cmdSN: 1}
}

// loginReq is an immediate Login Request with flags (T, C, CSG, NSG),
// the ISID of dialRaw but for its last byte, and CmdSN 1.
func loginReq(flags, isidLast byte) pdu.BHS {
	var h pdu.BHS
	h.SetOpcode(pdu.OpLoginReq)
	h[0] |= 0x40
	h.SetFlags(flags)
	copy(h[8:14], []byte{0x80, 0, 0, 0, 0, isidLast})
	h.SetU32(pdu.OffCmdSN, 1)
	return h
}

type rawPDU struct {
	pdu.Header
	data []byte
}

func (r *rawInit) send(h *pdu.BHS, data []byte) {
	h.SetDataLen(len(data))
	bufs, _ := pdu.AppendPDU(nil, nil, h, data, r.hd, r.dd)
	if _, err := bufs.WriteTo(r.nc); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawInit) recv() *rawPDU {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p := &rawPDU{}
	if err := r.rd.ReadHeader(&p.Header); err != nil {
		r.t.Fatalf("recv: %v", err)
	}
	p.data = make([]byte, p.DataLen())
	if err := r.rd.ReadData(p.data); err != nil {
		r.t.Fatalf("recv data: %v", err)
	}
	return p
}

// writeCommand sends a write command (W bit, simple task) with EDTL edtl
// and imm as its immediate data.
func (r *rawInit) writeCommand(cdb []byte, edtl uint32, imm []byte) uint32 {
	r.itt++
	var h pdu.BHS
	h.SetOpcode(pdu.OpSCSICmd)
	f := byte(pdu.FlagFinal | pdu.FlagWrite | 1)
	if r.unsol {
		f &^= pdu.FlagFinal
	}
	h.SetFlags(f)
	h.SetU32(pdu.OffITT, r.itt)
	h.SetU32(pdu.OffTTT, edtl)
	h.SetU32(pdu.OffCmdSN, r.cmdSN)
	r.cmdSN++
	copy(h.CDB(), cdb)
	r.send(&h, imm)
	return r.itt
}

// dataOut sends a Data-Out PDU for task itt (TTT ttt, DataSN sn, buffer
// offset off; F bit with final).
func (r *rawInit) dataOut(itt, ttt, sn, off uint32, final bool, data []byte) {
	d := dataOutHeader(itt, ttt, sn, off, final)
	r.send(&d, data)
}

// dataOutHeader is the header of a Data-Out PDU for task itt (TTT ttt,
// DataSN sn, buffer offset off; F bit with final).
func dataOutHeader(itt, ttt, sn, off uint32, final bool) pdu.BHS {
	var d pdu.BHS
	d.SetOpcode(pdu.OpDataOut)
	if final {
		d.SetFlags(pdu.FlagFinal)
	}
	d.SetU32(pdu.OffITT, itt)
	d.SetU32(pdu.OffTTT, ttt)
	d.SetU32(pdu.OffDataSN, sn)
	d.SetU32(pdu.OffBufOffset, off)
	return d
}

func (r *rawInit) command(cdb []byte, edtl uint32, read bool) uint32 {
	r.itt++
	var h pdu.BHS
	h.SetOpcode(pdu.OpSCSICmd)
	f := byte(pdu.FlagFinal | 1)
	if read {
		f |= pdu.FlagRead
	}
	h.SetFlags(f)
	h.SetU32(pdu.OffITT, r.itt)
	h.SetU32(pdu.OffTTT, edtl)
	h.SetU32(pdu.OffCmdSN, r.cmdSN)
	r.cmdSN++
	copy(h.CDB(), cdb)
	r.send(&h, nil)
	return r.itt
}

func normalKeys(extra ...login.KV) []login.KV {
	return append([]login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"}, {Key: "TargetName", Value: testIQN},
		{Key: "SessionType", Value: "Normal"}, {Key: "MaxRecvDataSegmentLength", Value: "4096"}}, extra...)
}

// Header and data digests negotiated and used on a read split into
// several Data-In PDUs at the initiator's MaxRecvDataSegmentLength, with
// the status in the last one and an underflow residual.
func TestDigestsAndDataIn(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.HeaderDigest = []string{"CRC32C", "None"}
	tg.Params.DataDigest = []string{"CRC32C", "None"}
	tg.Params.MaxXmitDataSegmentLength = 1 << 20
	disk := newFakeDisk(1 << 20)
	for i := range disk.data {
		disk.data[i] = byte(i / 512)
	}
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "HeaderDigest", Value: "CRC32C"}, login.KV{Key: "DataDigest", Value: "CRC32C"}))
	if !r.hd || !r.dd {
		t.Fatal("digests not negotiated")
	}
	infos := ts.srv.Sessions()
	if len(infos) != 1 || infos[0].Conns[0].HeaderDigest != "CRC32C" {
		t.Fatalf("sessions: %+v", infos)
	}
	// READ(10) of 20 blocks with EDTL 24 blocks: underflow of 4 blocks.
	itt := r.command([]byte{0x28, 0, 0, 0, 0, 2, 0, 0, 20, 0}, 24*512, true)
	var got []byte
	for sn := uint32(0); ; sn++ {
		p := r.recv()
		if p.Opcode() != pdu.OpDataIn || p.ITT() != itt || p.DataSN() != sn || int(p.BufferOffset()) != len(got) {
			t.Fatalf("unexpected %s", pdu.Describe(&p.BHS))
		}
		if len(p.data) > 4096 {
			t.Fatalf("Data-In of %d bytes exceeds MaxRecvDataSegmentLength", len(p.data))
		}
		got = append(got, p.data...)
		if p.Flags()&pdu.FlagStatus != 0 {
			if p.Flags()&pdu.FlagUnder == 0 || p.U32(pdu.OffResidual) != 4*512 || p.BHS[3] != 0 {
				t.Fatalf("final Data-In flags %#x residual %d", p.Flags(), p.U32(pdu.OffResidual))
			}
			break
		}
	}
	if len(got) != 20*512 || got[0] != 2 || got[len(got)-1] != 21 {
		t.Fatalf("read %d bytes, first %d last %d", len(got), got[0], got[len(got)-1])
	}
	// 200 blocks: 25 Data-In PDUs, more than the task's inline digest
	// array; every data digest is checked by the reader (r.recv).
	itt = r.command([]byte{0x28, 0, 0, 0, 0, 10, 0, 0, 200, 0}, 200*512, true)
	got = got[:0]
	for sn := uint32(0); ; sn++ {
		p := r.recv()
		if p.Opcode() != pdu.OpDataIn || p.ITT() != itt || p.DataSN() != sn || int(p.BufferOffset()) != len(got) {
			t.Fatalf("unexpected %s", pdu.Describe(&p.BHS))
		}
		got = append(got, p.data...)
		if p.Flags()&pdu.FlagStatus != 0 {
			if sn != 24 {
				t.Fatalf("status in Data-In %d, want 24", sn)
			}
			break
		}
	}
	for i, b := range got {
		if b != byte(10+i/512) {
			t.Fatalf("byte %d = %d, want %d", i, b, byte(10+i/512))
		}
	}
}

func TestNOPPing(t *testing.T) {
	cfg, tg := basicConfig()
	tg.NOPInterval, tg.NOPTimeout = 1, 1
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	// The target pings an idle initiator; we answer.
	p := r.recv()
	if p.Opcode() != pdu.OpNOPIn || p.ITT() != pdu.ReservedTag || p.TTT() == pdu.ReservedTag {
		t.Fatalf("expected a NOP-In ping, got %s", pdu.Describe(&p.BHS))
	}
	var h pdu.BHS
	h.SetOpcode(pdu.OpNOPOut)
	h[0] |= 0x40
	h.SetFlags(pdu.FlagFinal)
	h.SetU32(pdu.OffITT, pdu.ReservedTag)
	h.SetU32(pdu.OffTTT, p.TTT())
	h.SetU32(pdu.OffCmdSN, r.cmdSN)
	r.send(&h, nil)
	// Our own ping is answered with the data echoed.
	h.SetU32(pdu.OffITT, 77)
	h.SetU32(pdu.OffTTT, pdu.ReservedTag)
	r.send(&h, []byte("ping"))
	for {
		p = r.recv()
		if p.Opcode() == pdu.OpNOPIn && p.ITT() == 77 {
			break
		}
		if p.Opcode() != pdu.OpNOPIn {
			t.Fatalf("unexpected %s", pdu.Describe(&p.BHS))
		}
	}
	if string(p.data) != "ping" {
		t.Fatalf("echo %q", p.data)
	}
	// Stop answering: the connection is closed after the timeout.
	deadline := time.Now().Add(6 * time.Second)
	r.nc.SetReadDeadline(deadline)
	var buf [4096]byte
	for {
		if _, err := r.nc.Read(buf[:]); err != nil {
			if time.Now().After(deadline) {
				t.Fatal("connection not closed after an unanswered ping")
			}
			return
		}
	}
}

func TestAbortTask(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	disk.block = make(chan struct{})
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys())
	itt := r.command([]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, 512, true)
	time.Sleep(50 * time.Millisecond)
	var h pdu.BHS
	h.SetOpcode(pdu.OpTMFReq)
	h[0] |= 0x40
	h.SetFlags(pdu.FlagFinal | 1) // ABORT TASK
	h.SetU32(pdu.OffITT, 1000)
	h.SetU32(pdu.OffTTT, itt)
	h.SetU32(pdu.OffCmdSN, r.cmdSN)
	h.SetU32(pdu.OffMaxCmdSN, r.cmdSN-1)
	r.send(&h, nil)
	p := r.recv()
	if p.Opcode() != pdu.OpTMFResp || p.ITT() != 1000 || p.BHS[2] != 0 {
		t.Fatalf("TMF response: %s response %d", pdu.Describe(&p.BHS), p.BHS[2])
	}
	// LU RESET on LUN 0, then on a missing LUN.
	h.SetFlags(pdu.FlagFinal | 5)
	h.SetU32(pdu.OffITT, 1001)
	r.send(&h, nil)
	if p = r.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != 0 || disk.tmfs.Load() != 1 {
		t.Fatalf("LU reset: %s response %d tmfs %d", pdu.Describe(&p.BHS), p.BHS[2], disk.tmfs.Load())
	}
	h.SetLUNField(pdu.EncodeLUN(3))
	h.SetU32(pdu.OffITT, 1002)
	r.send(&h, nil)
	if p = r.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != 2 {
		t.Fatalf("LU reset of missing LUN: response %d", p.BHS[2])
	}
	// The aborted task never answers; a new command works.
	close(disk.block)
	itt2 := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	p = r.recv()
	if p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt2 || p.BHS[3] != 0 {
		t.Fatalf("after abort: %s", pdu.Describe(&p.BHS))
	}
}

func TestCmdSNWindow(t *testing.T) {
	cfg, tg := basicConfig()
	tg.QueuedCommands = 4
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	// A command beyond MaxCmdSN is ignored; the next valid one answers
	// with ExpCmdSN/MaxCmdSN advanced by one.
	r.cmdSN += 10
	r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	r.cmdSN -= 11
	itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	p := r.recv()
	if p.ITT() != itt || p.ExpStatSN() != 2 || p.U32(pdu.OffMaxCmdSN) != 2+4-1 {
		t.Fatalf("response %s maxcmdsn %d", pdu.Describe(&p.BHS), p.U32(pdu.OffMaxCmdSN))
	}
}

func TestMaxSessionsAndReinstatement(t *testing.T) {
	cfg, tg := basicConfig()
	tg.MaxSessions = 1
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	dialRaw(t, ts.addr, normalKeys())
	if n := disk.reinstated.Load(); n != 0 {
		t.Fatalf("the first session's nexus is marked reinstated")
	}
	// Same initiator and ISID: the old session is replaced, and the new
	// nexus is told so (its unit attention is I_T NEXUS LOSS OCCURRED).
	dialRaw(t, ts.addr, normalKeys())
	if n := len(ts.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions after reinstatement", n)
	}
	// The nexus is attached as the full feature phase begins, which may
	// be just after the login response reached us.
	for i := 0; disk.reinstated.Load() == 0 && i < 500; i++ {
		time.Sleep(time.Millisecond)
	}
	if n := disk.reinstated.Load(); n != 1 {
		t.Fatalf("%d reinstated nexuses attached, want 1", n)
	}
	// Another initiator exceeds MaxSessions: 0x0206.
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := &rawInit{t: t, nc: nc, rd: pdu.NewReader(nc)}
	var h pdu.BHS
	h.SetOpcode(pdu.OpLoginReq)
	h[0] |= 0x40
	h.SetFlags(pdu.FlagTransit | 1<<2 | 3)
	r.send(&h, login.EncodeKeys([]login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:other"}, {Key: "TargetName", Value: testIQN}}))
	p := r.recv()
	if p.BHS[36] != 2 || p.BHS[37] != 6 {
		t.Fatalf("status %#x%02x, want 0x0206", p.BHS[36], p.BHS[37])
	}
}

// A Data-Out with a wrong DataSN (an implied digest error, RFC 7143 7.8)
// ends the task with CHECK CONDITION, ABORTED COMMAND / PROTOCOL SERVICE
// CRC ERROR, once all its data arrived; nothing is written and the
// connection stays usable.
func TestDataSNErrorFailsTask(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "ImmediateData", Value: "No"}))
	for _, badSN := range []uint32{27, 0xffffffff} {
		r.writeCommand([]byte{0x2a, 0, 0, 0, 0, 100, 0, 0, 2, 0}, 1024, nil) // WRITE(10) LBA 100, 2 blocks
		r2t := r.recv()
		if r2t.Opcode() != pdu.OpR2T || r2t.ITT() != r.itt {
			t.Fatalf("want R2T, got %s", pdu.Describe(&r2t.BHS))
		}
		payload := make([]byte, 1024)
		for i := range payload {
			payload[i] = 0xa5
		}
		r.dataOut(r.itt, r2t.TTT(), badSN, 0, true, payload)
		p := r.recv()
		if p.Opcode() != pdu.OpSCSIResp || p.ITT() != r.itt || p.BHS[3] != 0x02 || len(p.data) < 16 ||
			p.data[2+2]&0x0f != 0x0b || p.data[2+12] != 0x47 || p.data[2+13] != 0x05 {
			t.Fatalf("DataSN %d: want CHECK CONDITION 0B/47/05, got %s status %#x sense % x",
				badSN, pdu.Describe(&p.BHS), p.BHS[3], p.data)
		}
	}
	for i, b := range disk.data[100*512 : 102*512] {
		if b != 0 {
			t.Fatalf("byte %d written despite the DataSN error", i)
		}
	}
	itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0 {
		t.Fatalf("after the failed write: %s", pdu.Describe(&p.BHS))
	}
}

// A Data-Out on bytes already received (the same range twice, or over the
// immediate data) brings the count of received bytes to the expected
// length with a gap left. The command fails with ABORTED COMMAND / DATA
// PHASE ERROR and nothing is written: the gap would be pooled memory, the
// data of an earlier command. The connection stays usable.
func TestOverlappingDataOutFailsTask(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.InitialR2T = false
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "InitialR2T", Value: "No"}))
	r.unsol = true
	write := func(lba byte, imm []byte) uint32 {
		return r.writeCommand([]byte{0x2a, 0, 0, 0, 0, lba, 0, 0, 2, 0}, 1024, imm) // WRITE(10), 2 blocks
	}
	dataOut := r.dataOut
	fill := func(b byte, n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = b
		}
		return p
	}
	status := func(itt uint32) (byte, []byte) {
		p := r.recv()
		if p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt {
			t.Fatalf("want the response of %#x, got %s", itt, pdu.Describe(&p.BHS))
		}
		return p.BHS[3], p.data
	}
	// Leave 0xee in the pooled buffers: a good 1 KiB write at LBA 10.
	itt := write(10, fill(0xee, 1024))
	if st, _ := status(itt); st != 0 {
		t.Fatalf("good write: status %#x", st)
	}
	wantPhaseError := func(what string, itt uint32) {
		t.Helper()
		st, sense := status(itt)
		if st != 0x02 || len(sense) < 16 || sense[2+2]&0x0f != 0x0b || sense[2+12] != 0x4b || sense[2+13] != 0 {
			t.Fatalf("%s: want CHECK CONDITION 0B/4B/00, got status %#x sense % x", what, st, sense)
		}
	}
	// Unsolicited data over the immediate data: [0,512) twice.
	itt = write(100, fill(0x11, 512))
	dataOut(itt, pdu.ReservedTag, 0, 0, true, fill(0x22, 512))
	wantPhaseError("unsolicited over immediate", itt)
	// The same unsolicited range twice.
	itt = write(102, nil)
	dataOut(itt, pdu.ReservedTag, 0, 0, false, fill(0x33, 512))
	dataOut(itt, pdu.ReservedTag, 1, 0, true, fill(0x33, 512))
	wantPhaseError("unsolicited range twice", itt)
	for i, b := range disk.data[100*512 : 104*512] {
		if b != 0 {
			t.Fatalf("byte %d of LBA 100-103 written (%#x) despite the overlap", i, b)
		}
	}
	itt = r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0 {
		t.Fatalf("after the failed writes: %s", pdu.Describe(&p.BHS))
	}
}

// With the data budget taken by a write waiting for its Data-Out, the
// next write takes in only its immediate data and gets its R2T once the
// first one finished; the data written is whole (immediate part kept).
func TestDeferredR2TUnderMemoryPressure(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	ts := startServerWith(t, cfg, disk, Options{MaxDataInFlight: 128 << 10})
	r := dialRaw(t, ts.addr, normalKeys())
	const size, imm = 128 << 10, 8 << 10
	pattern := func(seed byte) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = seed + byte(i/512)
		}
		return b
	}
	send := func(lba uint32, data []byte) uint32 {
		blocks := uint16(size / 512)
		cdb := []byte{0x2a, 0, byte(lba >> 24), byte(lba >> 16), byte(lba >> 8), byte(lba), 0, byte(blocks >> 8), byte(blocks), 0}
		return r.writeCommand(cdb, size, data[:imm])
	}
	dataOut := func(itt uint32, r2t *rawPDU, data []byte) {
		off, n := r2t.U32(pdu.OffBufOffset), r2t.U32(pdu.OffResidual)
		r.dataOut(itt, r2t.TTT(), 0, off, true, data[off:off+n])
	}
	a, b := pattern(1), pattern(101)
	ittA := send(0, a)
	r2tA := r.recv()
	if r2tA.Opcode() != pdu.OpR2T || r2tA.ITT() != ittA {
		t.Fatalf("first write: want R2T, got %s", pdu.Describe(&r2tA.BHS))
	}
	ittB := send(1024, b) // no room: deferred, no R2T yet
	r.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var early pdu.Header
	if err := r.rd.ReadHeader(&early); err == nil {
		t.Fatalf("second write got %s while the budget is full; want nothing until the first ends", pdu.Describe(&early.BHS))
	}
	// An empty unsolicited Data-Out with F for the deferred write must not
	// make it solicit data: it has no buffer for it yet (a Data-Out
	// answering such an R2T crashed the daemon).
	r.dataOut(ittB, pdu.ReservedTag, 0, 0, true, nil)
	r.nc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if err := r.rd.ReadHeader(&early); err == nil {
		t.Fatalf("deferred write after an empty Data-Out: got %s, want nothing until the first ends", pdu.Describe(&early.BHS))
	}
	dataOut(ittA, r2tA, a)
	var r2tB *rawPDU
	for range 2 {
		p := r.recv()
		switch {
		case p.Opcode() == pdu.OpSCSIResp && p.ITT() == ittA && p.BHS[3] == 0:
		case p.Opcode() == pdu.OpR2T && p.ITT() == ittB:
			r2tB = p
		default:
			t.Fatalf("unexpected %s status %#x", pdu.Describe(&p.BHS), p.BHS[3])
		}
	}
	if r2tB == nil || r2tB.U32(pdu.OffBufOffset) != imm {
		t.Fatalf("deferred write: R2T %v", r2tB)
	}
	dataOut(ittB, r2tB, b)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != ittB || p.BHS[3] != 0 {
		t.Fatalf("deferred write: %s status %#x", pdu.Describe(&p.BHS), p.BHS[3])
	}
	disk.mu.RLock()
	same := bytes.Equal(disk.data[:size], a) && bytes.Equal(disk.data[1024*512:1024*512+size], b)
	disk.mu.RUnlock()
	if !same {
		t.Fatal("data written differs from data sent")
	}
	// The budget comes back when the writer has sent the responses.
	for i := 0; ts.srv.mem.inUse() != 0 && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if used := ts.srv.mem.inUse(); used != 0 {
		t.Fatalf("%d bytes of budget still held after both writes ended", used)
	}
}

// The pinger's idle clock starts when the full feature phase starts: the
// first ping comes one NOPInterval after login, not at the first tick.
func TestFirstPingAfterInterval(t *testing.T) {
	cfg, tg := basicConfig()
	tg.NOPInterval, tg.NOPTimeout = 2, 2
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	before := time.Now()
	r := dialRaw(t, ts.addr, normalKeys())
	// The serve goroutine starts the clock right after the last login
	// response went out.
	var last int64
	for i := 0; last == 0 && i < 100; i++ {
		time.Sleep(5 * time.Millisecond)
		ts.srv.mu.Lock()
		for c := range ts.srv.conns {
			last = c.lastRecv.Load()
		}
		ts.srv.mu.Unlock()
	}
	if last < before.UnixNano() {
		t.Fatalf("lastRecv %d not set at login (login began at %d)", last, before.UnixNano())
	}
	// The pinger ticks every second; a ping before the interval has
	// passed (about 2 s) means the clock started at zero.
	r.nc.SetReadDeadline(before.Add(1500 * time.Millisecond))
	var early pdu.Header
	if err := r.rd.ReadHeader(&early); err == nil {
		t.Fatalf("got %s %v after login, before NOPInterval", pdu.Describe(&early.BHS), time.Since(before))
	}
}

// A login adding a connection to an existing session (non-zero TSIH) is
// refused on its first request with 0x0206 (too many connections: one per
// session), one naming no session with 0x020a; the session is untouched.
func TestSecondConnectionRefusedEarly(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	infos := ts.srv.Sessions()
	if len(infos) != 1 || infos[0].Params["MaxConnections"] != "1" {
		t.Fatalf("sessions %+v", infos)
	}
	tsih := uint16(infos[0].SID >> 48) // IET's sid: TSIH in the top bytes
	for _, tc := range []struct {
		tsih   uint16
		status uint16
	}{{tsih, 0x0206}, {tsih + 100, 0x020a}} {
		nc, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		r2 := &rawInit{t: t, nc: nc, rd: pdu.NewReader(nc)}
		var h pdu.BHS
		h.SetOpcode(pdu.OpLoginReq)
		h[0] |= 0x40
		h.SetFlags(pdu.FlagTransit | 0<<2 | 1) // CSG=0 NSG=1: security stage
		copy(h[8:14], []byte{0x80, 0, 0, 0, 0, 7})
		h.SetU16(14, tc.tsih)
		h.SetU16(20, 2) // CID 2
		r2.send(&h, login.EncodeKeys(append(normalKeys(), login.KV{Key: "AuthMethod", Value: "None"})))
		p := r2.recv()
		if got := uint16(p.BHS[36])<<8 | uint16(p.BHS[37]); p.Opcode() != pdu.OpLoginResp || got != tc.status {
			t.Fatalf("TSIH %d: status %#04x, want %#04x", tc.tsih, got, tc.status)
		}
		nc.Close()
	}
	itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt {
		t.Fatalf("first session after the refused logins: %s", pdu.Describe(&p.BHS))
	}
}

// Immediate data when ImmediateData=No was negotiated, or more of it than
// FirstBurstLength, is a protocol error: Reject (reason 0x04), the command
// does not run, its CmdSN is used up and the connection stays.
func TestImmediateDataProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []login.KV
		n    int
	}{
		{"ImmediateData=No", []login.KV{{Key: "ImmediateData", Value: "No"}}, 512},
		{"beyond FirstBurstLength", []login.KV{{Key: "FirstBurstLength", Value: "512"}}, 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := basicConfig()
			disk := newFakeDisk(1 << 20)
			ts := startServer(t, cfg, disk)
			r := dialRaw(t, ts.addr, normalKeys(tc.keys...))
			payload := bytes.Repeat([]byte{0x5a}, tc.n)
			r.writeCommand([]byte{0x2a, 0, 0, 0, 0, 8, 0, 0, byte(tc.n / 512), 0}, uint32(tc.n), payload)
			p := r.recv()
			if p.Opcode() != pdu.OpReject || p.BHS[2] != rejectProtocolError || len(p.data) < 48 ||
				binary.BigEndian.Uint32(p.data[16:]) != r.itt {
				t.Fatalf("want Reject 0x04 of the command, got %s reason %#x", pdu.Describe(&p.BHS), p.BHS[2])
			}
			itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
			p = r.recv()
			if p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.ExpStatSN() != r.cmdSN {
				t.Fatalf("after the Reject: %s ExpCmdSN %d, want %d", pdu.Describe(&p.BHS), p.ExpStatSN(), r.cmdSN)
			}
			disk.mu.RLock()
			defer disk.mu.RUnlock()
			if bytes.Contains(disk.data[8*512:8*512+tc.n], []byte{0x5a}) {
				t.Fatal("the rejected command wrote its data")
			}
		})
	}
}

// immediate is the header of an immediate, final request op with ITT itt,
// no target transfer tag, at the current CmdSN.
func (r *rawInit) immediate(op pdu.Opcode, itt uint32) pdu.BHS {
	var h pdu.BHS
	h.SetOpcode(op)
	h[0] |= 0x40
	h.SetFlags(pdu.FlagFinal)
	h.SetU32(pdu.OffITT, itt)
	h.SetU32(pdu.OffTTT, pdu.ReservedTag)
	h.SetU32(pdu.OffCmdSN, r.cmdSN)
	return h
}

// sendTargets sends a Text request SendTargets=value and returns the keys
// of the answer.
func (r *rawInit) sendTargets(t *testing.T, value string) []login.KV {
	t.Helper()
	h := r.immediate(pdu.OpTextReq, 500)
	r.send(&h, login.EncodeKeys([]login.KV{{Key: "SendTargets", Value: value}}))
	p := r.recv()
	if p.Opcode() != pdu.OpTextResp {
		t.Fatalf("SendTargets: %s", pdu.Describe(&p.BHS))
	}
	kvs, err := login.ParseKeys(p.data)
	if err != nil {
		t.Fatal(err)
	}
	return kvs
}

// SendTargets lists targets newest (highest TID) first, as IET does.
func TestSendTargetsNewestFirst(t *testing.T) {
	cfg, _ := basicConfig()
	for _, tid := range []int{3, 2} {
		tg := config.NewTarget(tid, fmt.Sprintf("iqn.2026-01.org.ietgo:t%d", tid))
		tg.LUNs = []*config.LUN{{Number: 0, Type: "nullio"}}
		cfg.Targets = append(cfg.Targets, tg)
	}
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	d := dialRaw(t, ts.addr, []login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"}, {Key: "SessionType", Value: "Discovery"}})
	var names []string
	for _, kv := range d.sendTargets(t, "All") {
		if kv.Key == "TargetName" {
			names = append(names, kv.Value)
		}
	}
	want := []string{"iqn.2026-01.org.ietgo:t3", "iqn.2026-01.org.ietgo:t2", testIQN}
	if !slices.Equal(names, want) {
		t.Fatalf("SendTargets=All lists %v, want %v", names, want)
	}
}

// SendTargets leaves out a target that targets.allow makes unreachable
// through every portal (it listed TargetName with no TargetAddress), and
// target names match without case at login and in SendTargets.
func TestSendTargetsPortalsAndNameCase(t *testing.T) {
	cfg, _ := basicConfig()
	hidden := config.NewTarget(2, "iqn.2026-01.org.ietgo:hidden")
	hidden.LUNs = []*config.LUN{{Number: 0, Type: "nullio"}}
	cfg.Targets = append(cfg.Targets, hidden)
	cfg.TargetsAllow = &config.ACLFile{Rules: []config.ACLRule{{Target: hidden.Name,
		Items: []config.ACLItem{{Kind: config.ACLAddress, Text: "10.0.0.0/8", CIDR: "10.0.0.0/8"}}},
		{Target: "ALL", Items: []config.ACLItem{{Kind: config.ACLAll, Text: "ALL"}}}}}
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	d := dialRaw(t, ts.addr, []login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"}, {Key: "SessionType", Value: "Discovery"}})
	kvs := d.sendTargets(t, "All")
	want := []login.KV{{Key: "TargetName", Value: testIQN}, {Key: "TargetAddress", Value: ts.addr + ",1"}}
	if len(kvs) != len(want) || kvs[0] != want[0] || kvs[1] != want[1] {
		t.Fatalf("SendTargets=All: %v, want %v", kvs, want)
	}
	if kvs := d.sendTargets(t, hidden.Name); len(kvs) != 0 {
		t.Fatalf("SendTargets=%s (refused on every portal): %v", hidden.Name, kvs)
	}
	upper := strings.ToUpper(testIQN)
	if kvs := d.sendTargets(t, upper); len(kvs) != 2 || kvs[0] != want[0] {
		t.Fatalf("SendTargets=%s: %v", upper, kvs)
	}
	// Login with the name in another case.
	keys := normalKeys()
	keys[1].Value = upper
	r := dialRaw(t, ts.addr, keys)
	itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0 {
		t.Fatalf("session logged in as %s: %s", upper, pdu.Describe(&p.BHS))
	}
	for _, si := range ts.srv.Sessions() {
		if si.TargetName != testIQN {
			t.Errorf("session listed with target name %q, want the configured %q", si.TargetName, testIQN)
		}
	}
}

// A protocol error that ends the connection sends its Reject first: the
// writer flushes what was queued before closing.
func TestRejectReachesWireBeforeClose(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	for i := 0; i < 20; i++ { // the lost Reject was a race: try it often
		r := dialRaw(t, ts.addr, normalKeys())
		h := r.immediate(pdu.OpNOPOut, 9)
		h.SetDataLen(1 << 20) // beyond MaxRecvDataSegmentLength; no data follows
		bufs, _ := pdu.AppendPDU(nil, nil, &h, nil, false, false)
		if _, err := bufs.WriteTo(r.nc); err != nil {
			t.Fatal(err)
		}
		p := r.recv()
		if p.Opcode() != pdu.OpReject || p.BHS[2] != rejectProtocolError {
			t.Fatalf("round %d: want Reject 0x04, got %s", i, pdu.Describe(&p.BHS))
		}
		r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var rest pdu.Header
		if err := r.rd.ReadHeader(&rest); err == nil {
			t.Fatalf("round %d: connection still open after the protocol error: %s", i, pdu.Describe(&rest.BHS))
		}
		r.nc.Close()
	}
}

// A read longer than MaxBurstLength goes out in Data-In sequences of at
// most MaxBurstLength bytes, each ending with the F bit; no PDU crosses a
// sequence boundary, DataSN and the offsets run on, the status comes with
// the last PDU, data digests match the split.
func TestDataInSequencesMaxBurstLength(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.DataDigest = []string{"CRC32C", "None"}
	disk := newFakeDisk(1 << 20)
	for i := range disk.data {
		disk.data[i] = byte(i / 512)
	}
	ts := startServer(t, cfg, disk)
	const burst, mrdsl = 4096, 3000
	keys := normalKeys(login.KV{Key: "MaxBurstLength", Value: "4096"}, login.KV{Key: "FirstBurstLength", Value: "4096"},
		login.KV{Key: "DataDigest", Value: "CRC32C"})
	keys[3].Value = "3000" // MaxRecvDataSegmentLength: does not divide the burst
	r := dialRaw(t, ts.addr, keys)
	if !r.dd {
		t.Fatal("data digest not negotiated")
	}
	const blocks = 21 // 10752 bytes: two full bursts and a short one
	itt := r.command([]byte{0x28, 0, 0, 0, 0, 0, 0, 0, blocks, 0}, blocks*512, true)
	var got []byte
	seq := 0
	for sn := uint32(0); ; sn++ {
		p := r.recv() // checks each data digest
		if p.Opcode() != pdu.OpDataIn || p.ITT() != itt || p.DataSN() != sn || int(p.BufferOffset()) != len(got) {
			t.Fatalf("unexpected %s", pdu.Describe(&p.BHS))
		}
		if len(p.data) > mrdsl {
			t.Fatalf("Data-In %d of %d bytes", sn, len(p.data))
		}
		got = append(got, p.data...)
		seq += len(p.data)
		if seq > burst {
			t.Fatalf("Data-In sequence of more than MaxBurstLength (%d) at DataSN %d", seq, sn)
		}
		end := seq == burst || len(got) == blocks*512
		if fin := p.Flags()&pdu.FlagFinal != 0; fin != end {
			t.Fatalf("DataSN %d (offset %d, %d bytes): F=%v, want %v", sn, p.BufferOffset(), len(p.data), fin, end)
		}
		if end {
			seq = 0
		}
		if p.Flags()&pdu.FlagStatus != 0 {
			if len(got) != blocks*512 || p.BHS[3] != 0 {
				t.Fatalf("status after %d bytes, status %#x", len(got), p.BHS[3])
			}
			break
		}
	}
	for i, b := range got {
		if b != byte(i/512) {
			t.Fatalf("byte %d = %d", i, b)
		}
	}
}

// An extended CDB AHS whose AHSLength claims every byte of a full-size
// AHS (255 words) must not read past it: the command is answered and the
// connection goes on.
func TestExtendedCDBAHSAtTheLimit(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	for _, l := range []int{1018, 1019, 2000} {
		r.itt++
		var h pdu.BHS
		h.SetOpcode(pdu.OpSCSICmd)
		h.SetFlags(pdu.FlagFinal | 1)
		h.SetU32(pdu.OffITT, r.itt)
		h.SetU32(pdu.OffCmdSN, r.cmdSN)
		r.cmdSN++
		h[4] = 255                                             // TotalAHSLength in words
		copy(h.CDB(), []byte{0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0}) // variable-length CDB
		ahs := make([]byte, 255*4)
		ahs[0], ahs[1], ahs[2] = byte(l>>8), byte(l), 1 // extended CDB
		wire := append(append([]byte{}, h[:]...), ahs...)
		if _, err := r.nc.Write(wire); err != nil {
			t.Fatal(err)
		}
		p := r.recv()
		if p.Opcode() != pdu.OpSCSIResp || p.ITT() != r.itt {
			t.Fatalf("AHSLength %d: got %s", l, pdu.Describe(&p.BHS))
		}
	}
	itt := r.command([]byte{0x00, 0, 0, 0, 0, 0}, 0, false)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0 {
		t.Fatalf("after the AHS commands: %s", pdu.Describe(&p.BHS))
	}
}

// An initiator that sends NOP-Outs without reading the echoes meets
// back-pressure: the reader stops reading once the writer's queue is over
// its bounds, instead of queueing every echo (memory without bound). The
// echoes all arrive, in order, once the initiator reads.
func TestNOPFloodMeetsBackPressure(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	const n = 20000
	payload := make([]byte, 4096)
	var wire []byte
	for i := 0; i < n; i++ {
		var h pdu.BHS
		h.SetOpcode(pdu.OpNOPOut)
		h[0] |= 0x40
		h.SetFlags(pdu.FlagFinal)
		h.SetU32(pdu.OffITT, uint32(1000+i))
		h.SetU32(pdu.OffTTT, pdu.ReservedTag)
		h.SetU32(pdu.OffCmdSN, r.cmdSN)
		h.SetDataLen(len(payload))
		wire = append(append(wire, h[:]...), payload...)
	}
	sent := make(chan error, 1)
	go func() {
		_, err := r.nc.Write(wire)
		sent <- err
	}()
	select {
	case err := <-sent:
		t.Fatalf("80 MB of NOP-Outs all taken in while no echo was read (err %v): no back-pressure", err)
	case <-time.After(1500 * time.Millisecond):
	}
	for i := 0; i < n; i++ {
		p := r.recv()
		if p.Opcode() != pdu.OpNOPIn || p.ITT() != uint32(1000+i) || len(p.data) != len(payload) {
			t.Fatalf("echo %d: %s with %d bytes", i, pdu.Describe(&p.BHS), len(p.data))
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// Non-immediate NOP-Outs beyond a CmdSN gap do not open window slots while
// the gap stays: MaxCmdSN must not run away from ExpCmdSN (it used to grow
// by one per NOP, and the session's record of CmdSNs with it). Once the
// gap fills, their slots open.
func TestNOPsBeyondAGapDoNotGrowTheWindow(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	nop := func(itt, sn uint32) *rawPDU {
		var h pdu.BHS
		h.SetOpcode(pdu.OpNOPOut)
		h.SetFlags(pdu.FlagFinal)
		h.SetU32(pdu.OffITT, itt)
		h.SetU32(pdu.OffTTT, pdu.ReservedTag)
		h.SetU32(pdu.OffCmdSN, sn)
		r.send(&h, nil)
		p := r.recv()
		if p.Opcode() != pdu.OpNOPIn || p.ITT() != itt {
			t.Fatalf("NOP %d: got %s", itt, pdu.Describe(&p.BHS))
		}
		return p
	}
	gap := r.cmdSN
	first := nop(1, gap+1)
	exp, max := first.U32(pdu.OffExpStatSN), first.U32(pdu.OffMaxCmdSN)
	if exp != gap {
		t.Fatalf("ExpCmdSN %d, want %d (the gap)", exp, gap)
	}
	var last *rawPDU
	for sn := gap + 2; pdu.SNLess(sn, max+1); sn++ {
		last = nop(sn, sn)
	}
	if last != nil && last.U32(pdu.OffMaxCmdSN) != max {
		t.Fatalf("MaxCmdSN grew from %d to %d behind the gap at %d", max, last.U32(pdu.OffMaxCmdSN), gap)
	}
	// Filling the gap opens the slots of the NOPs beyond it.
	filled := nop(1000, gap)
	if e := filled.U32(pdu.OffExpStatSN); e != max+1 {
		t.Fatalf("after the gap filled: ExpCmdSN %d, want %d", e, max+1)
	}
	if m := filled.U32(pdu.OffMaxCmdSN); int32(m-filled.U32(pdu.OffExpStatSN)) < int32(max-gap) {
		t.Fatalf("after the gap filled: window %d..%d, narrower than before (%d..%d): slots lost", filled.U32(pdu.OffExpStatSN), m, gap, max)
	}
}

// Logout Requests repeated while a task is pending start one drain, not one
// goroutine each.
func TestRepeatedLogoutsStartOneDrain(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "ImmediateData", Value: "No"}))
	r.writeCommand([]byte{0x2a, 0, 0, 0, 0, 1, 0, 0, 1, 0}, 512, nil)
	if p := r.recv(); p.Opcode() != pdu.OpR2T {
		t.Fatalf("want R2T, got %s", pdu.Describe(&p.BHS))
	}
	before := runtime.NumGoroutine()
	var wire []byte
	for i := 0; i < 500; i++ {
		var l pdu.BHS
		l.SetOpcode(pdu.OpLogoutReq)
		l[0] |= 0x40
		l.SetFlags(pdu.FlagFinal)
		l.SetU32(pdu.OffITT, uint32(5000+i))
		l.SetU32(pdu.OffCmdSN, r.cmdSN)
		wire = append(wire, l[:]...)
	}
	if _, err := r.nc.Write(wire); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := runtime.NumGoroutine() - before; n > 20 {
		t.Fatalf("%d more goroutines after 500 Logout Requests", n)
	}
}

// A write-type command whose device result gives no transfer length
// (WRITE SAME here) took all its Data-Out: no underflow residual.
func TestWriteSameHasNoResidual(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	r.writeCommand([]byte{0x93, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0}, 512, make([]byte, 512)) // WRITE SAME(16) LBA 8, 1 block
	p := r.recv()
	if p.Opcode() != pdu.OpSCSIResp || p.ITT() != r.itt || p.BHS[3] != 0 {
		t.Fatalf("WRITE SAME: %s status %#x sense % x", pdu.Describe(&p.BHS), p.BHS[3], p.data)
	}
	if fl := p.Flags(); fl&(pdu.FlagUnder|pdu.FlagOver) != 0 || p.U32(pdu.OffResidual) != 0 {
		t.Fatalf("WRITE SAME response flags %#x residual %d, want none", fl, p.U32(pdu.OffResidual))
	}
}

// A Data-Out sequence that ends (F=1) before all of its range was sent,
// unsolicited or answering an R2T: the target solicits what is missing
// instead of waiting for data nothing would ask for (the command hung
// until the initiator aborted it). Unsolicited data after its F bit is a
// protocol error.
func TestEarlyFinalDataOutSolicitsTheRest(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.InitialR2T = false
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "InitialR2T", Value: "No"}))
	r.unsol = true
	data := make([]byte, 4096)
	for i := range data {
		data[i] = byte(i/512 + 1)
	}
	dataOut := r.dataOut
	wantR2T := func(what string, itt, off, n uint32) *rawPDU {
		t.Helper()
		p := r.recv()
		if p.Opcode() != pdu.OpR2T || p.ITT() != itt || p.U32(pdu.OffBufOffset) != off || p.U32(pdu.OffResidual) != n {
			t.Fatalf("%s: want R2T for %d+%d, got %s offset %d length %d", what, off, n, pdu.Describe(&p.BHS), p.U32(pdu.OffBufOffset), p.U32(pdu.OffResidual))
		}
		return p
	}
	wantGood := func(what string, itt uint32) {
		t.Helper()
		p := r.recv()
		if p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0 {
			t.Fatalf("%s: want GOOD, got %s status %#x", what, pdu.Describe(&p.BHS), p.BHS[3])
		}
	}
	// 8 blocks at LBA 16, 512 bytes immediate. FirstBurstLength 64 KiB
	// covers the whole write: no R2T unless the unsolicited data ends early.
	itt := r.writeCommand([]byte{0x2a, 0, 0, 0, 0, 16, 0, 0, 8, 0}, 4096, data[:512])
	dataOut(itt, pdu.ReservedTag, 0, 512, true, data[512:1024])
	r2t := wantR2T("unsolicited data ended at 1024", itt, 1024, 3072)
	// Answer the R2T with its first 1024 bytes and F=1: the rest again.
	dataOut(itt, r2t.TTT(), 0, 1024, true, data[1024:2048])
	r2t = wantR2T("R2T answered in part", itt, 2048, 2048)
	dataOut(itt, r2t.TTT(), 0, 2048, false, data[2048:3072])
	dataOut(itt, r2t.TTT(), 1, 3072, true, data[3072:4096])
	wantGood("the whole write", itt)
	disk.mu.RLock()
	same := bytes.Equal(disk.data[16*512:16*512+4096], data)
	disk.mu.RUnlock()
	if !same {
		t.Fatal("data written differs from data sent")
	}
	// More unsolicited data after the F bit: rejected, connection closed.
	itt = r.writeCommand([]byte{0x2a, 0, 0, 0, 0, 32, 0, 0, 8, 0}, 4096, nil)
	dataOut(itt, pdu.ReservedTag, 0, 0, true, data[:512])
	wantR2T("unsolicited data ended at 512", itt, 512, 3584)
	dataOut(itt, pdu.ReservedTag, 1, 512, true, data[512:1024])
	if p := r.recv(); p.Opcode() != pdu.OpReject {
		t.Fatalf("unsolicited Data-Out after F: want Reject, got %s", pdu.Describe(&p.BHS))
	}
}

// Reinstatement waits for the old session's commands: while one of them
// is still writing (the store deaf to its abort), the new login is
// refused with "service unavailable" instead of admitted beside it (the
// old write could land after the new session's); once it ended, the
// login succeeds. The old session's write is not lost.
func TestReinstatementWaitsForTheOldSessionsWrites(t *testing.T) {
	cfg, _ := basicConfig()
	ts, disk, release := startGated(t, cfg, Options{ReinstateWait: 300 * time.Millisecond})
	old := dialRaw(t, ts.addr, normalKeys())
	block := make([]byte, 512)
	for i := range block {
		block[i] = 0x5a
	}
	writeIntoGate(t, old, disk, block)
	loginStatus := func() (byte, byte) {
		r := rawConn(t, ts.addr)
		defer r.nc.Close()
		h := loginReq(pdu.FlagTransit|1<<2|3, 7) // the ISID of dialRaw
		r.send(&h, login.EncodeKeys(normalKeys()))
		p := r.recv()
		return p.BHS[36], p.BHS[37]
	}
	if c, d := loginStatus(); c != 3 || d != 1 {
		t.Fatalf("reinstatement while the old write runs: status %#x%02x, want 0x0301", c, d)
	}
	release()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, d := loginStatus()
		if c == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reinstatement after the old write ended: status %#x%02x", c, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	disk.mu.RLock()
	written := bytes.Equal(disk.data[40*512:41*512], block)
	disk.mu.RUnlock()
	if !written {
		t.Fatal("the old session's write did not reach the disk")
	}
}

// A reload between the PDUs of a login (SIGHUP or an ietadm change, which
// give every target a new config entry) does not fail it as "target
// removed": the target is still there.
func TestReloadDuringLogin(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := rawConn(t, ts.addr)
	h := loginReq(pdu.FlagTransit|1, 9) // CSG=0 NSG=1
	r.send(&h, login.EncodeKeys(append(normalKeys(), login.KV{Key: "AuthMethod", Value: "None"})))
	if p := r.recv(); p.BHS[36] != 0 {
		t.Fatalf("first login PDU: status %#x%02x", p.BHS[36], p.BHS[37])
	}
	if err := ts.srv.Reload(ts.srv.Config().Clone()); err != nil {
		t.Fatal(err)
	}
	h.SetFlags(pdu.FlagTransit | 1<<2 | 3) // CSG=1 NSG=3
	r.send(&h, nil)
	if p := r.recv(); p.BHS[36] != 0 || p.Flags()&pdu.FlagTransit == 0 {
		t.Fatalf("login after a reload: status %#x%02x", p.BHS[36], p.BHS[37])
	}
}

// An initiator whose connection dropped logs in again with another ISID:
// the new session is admitted once the old one (its connection already
// gone, its teardown still waiting on a write) has ended, so the new
// nexus does not meet the lost nexus's state (PREVENT MEDIUM REMOVAL in
// libiscsi's PreventAllow.ITNexusLoss).
func TestLoginWaitsForTheSameInitiatorsEndingSessions(t *testing.T) {
	cfg, _ := basicConfig()
	ts, disk, release := startGated(t, cfg, Options{})
	old := dialRaw(t, ts.addr, normalKeys())
	writeIntoGate(t, old, disk, make([]byte, 512))
	old.nc.Close() // nexus loss; the session's teardown waits for the write
	for i := 0; i < 500; i++ {
		if ss := ts.srv.Sessions(); len(ss) == 1 && len(ss[0].Conns) == 1 && ss[0].Conns[0].State == "closing" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.AfterFunc(300*time.Millisecond, release)
	r := rawConn(t, ts.addr)
	h := loginReq(pdu.FlagTransit|1<<2|3, 8) // another ISID
	r.send(&h, login.EncodeKeys(normalKeys()))
	if p := r.recv(); p.BHS[36] != 0 {
		t.Fatalf("login: status %#x%02x", p.BHS[36], p.BHS[37])
	}
	if n := len(ts.srv.Sessions()); n != 1 {
		t.Fatalf("%d sessions when the new one was admitted; the lost one had not ended", n)
	}
}

// A Text Request with C=1 gets an empty Text Response with F=0 and a
// target transfer tag; the initiator's next part, sent with that tag,
// completes the text, which is then answered as one.
func TestTextRequestContinued(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	d := dialRaw(t, ts.addr, []login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"}, {Key: "SessionType", Value: "Discovery"}})
	text := login.EncodeKeys([]login.KV{{Key: "SendTargets", Value: "All"}})
	cut := 5 // inside the key: only the whole text parses
	h := d.immediate(pdu.OpTextReq, 600)
	h.SetFlags(pdu.FlagContinue)
	d.send(&h, text[:cut])
	p := d.recv()
	if p.Opcode() != pdu.OpTextResp || p.BHS.Final() || len(p.data) != 0 || p.TTT() == pdu.ReservedTag || p.ITT() != 600 {
		t.Fatalf("answer to C=1: %s, %d data bytes; want an empty Text Response, F=0, a TTT", pdu.Describe(&p.BHS), len(p.data))
	}
	h = d.immediate(pdu.OpTextReq, 600)
	h.SetU32(pdu.OffTTT, p.TTT())
	d.send(&h, text[cut:])
	p = d.recv()
	if p.Opcode() != pdu.OpTextResp || !p.BHS.Final() {
		t.Fatalf("answer to the last part: %s", pdu.Describe(&p.BHS))
	}
	kvs, err := login.ParseKeys(p.data)
	if err != nil || len(kvs) == 0 || kvs[0].Key != "TargetName" || kvs[0].Value != testIQN {
		t.Fatalf("continued SendTargets answered %v (%v)", kvs, err)
	}

	// C and F together are a protocol error.
	h = d.immediate(pdu.OpTextReq, 601)
	h.SetFlags(pdu.FlagContinue | pdu.FlagFinal)
	d.send(&h, text)
	if p := d.recv(); p.Opcode() != pdu.OpReject || p.BHS[2] != rejectProtocolError {
		t.Fatalf("Text Request with C and F: %s", pdu.Describe(&p.BHS))
	}
}

// MaxRecvDataSegmentLength may be declared again in the full feature
// phase (RFC 7143 13.12, Use: ALL): later Data-In follows the new value;
// login-only keys are answered Reject and unknown ones NotUnderstood.
func TestTextRequestDeclaresMaxRecvDataSegmentLength(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.MaxXmitDataSegmentLength = 1 << 20
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	readSegments := func() []int {
		t.Helper()
		itt := r.command([]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 32, 0}, 32*512, true)
		var sizes []int
		for range 64 {
			p := r.recv()
			if p.Opcode() != pdu.OpDataIn || p.ITT() != itt {
				t.Fatalf("unexpected %s", pdu.Describe(&p.BHS))
			}
			sizes = append(sizes, len(p.data))
			if p.Flags()&pdu.FlagStatus != 0 {
				return sizes
			}
		}
		t.Fatal("no status after 64 Data-In PDUs")
		return nil
	}
	if s := readSegments(); len(s) != 4 || s[0] != 4096 {
		t.Fatalf("Data-In segments at login's 4096: %v", s)
	}
	h := r.immediate(pdu.OpTextReq, 900)
	h.SetFlags(pdu.FlagFinal)
	r.send(&h, login.EncodeKeys([]login.KV{{Key: "MaxRecvDataSegmentLength", Value: "1024"},
		{Key: "HeaderDigest", Value: "CRC32C"}, {Key: "X-org.example.Thing", Value: "1"}}))
	p := r.recv()
	if p.Opcode() != pdu.OpTextResp || !p.BHS.Final() || p.ITT() != 900 {
		t.Fatalf("answer: %s", pdu.Describe(&p.BHS))
	}
	kvs, err := login.ParseKeys(p.data)
	want := []login.KV{{Key: "HeaderDigest", Value: "Reject"}, {Key: "X-org.example.Thing", Value: "NotUnderstood"}}
	if err != nil || len(kvs) != len(want) || kvs[0] != want[0] || kvs[1] != want[1] {
		t.Fatalf("answer keys %v (%v), want %v", kvs, err, want)
	}
	if s := readSegments(); len(s) != 16 || s[0] != 1024 || s[15] != 1024 {
		t.Fatalf("Data-In segments after declaring 1024: %v", s)
	}
	// Below 512 is not a valid value: Reject, the limit stays.
	h = r.immediate(pdu.OpTextReq, 901)
	h.SetFlags(pdu.FlagFinal)
	r.send(&h, login.EncodeKeys([]login.KV{{Key: "MaxRecvDataSegmentLength", Value: "100"}}))
	p = r.recv()
	if kvs, err := login.ParseKeys(p.data); err != nil || len(kvs) != 1 || kvs[0].Value != "Reject" {
		t.Fatalf("answer to 100: %v (%v)", kvs, err)
	}
	if s := readSegments(); len(s) != 16 {
		t.Fatalf("Data-In segments after a rejected value: %v", s)
	}
}

// A continuation must name the exchange's ITT as well as its TTT; a
// first C=1 part larger than the bound is refused at once.
func TestTextContinuationNamesITTAndIsBounded(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.MaxRecvDataSegmentLength = 1 << 20
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	d := dialRaw(t, ts.addr, []login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"}, {Key: "SessionType", Value: "Discovery"},
		{Key: "MaxRecvDataSegmentLength", Value: "262144"}})
	text := login.EncodeKeys([]login.KV{{Key: "SendTargets", Value: "All"}})
	h := d.immediate(pdu.OpTextReq, 700)
	h.SetFlags(pdu.FlagContinue)
	d.send(&h, text[:5])
	p := d.recv()
	if p.Opcode() != pdu.OpTextResp || p.BHS.Final() || p.TTT() == pdu.ReservedTag {
		t.Fatalf("answer to C=1: %s", pdu.Describe(&p.BHS))
	}
	// The TTT with another ITT: a new exchange, and "ets=All" alone is
	// a key the target does not know.
	h = d.immediate(pdu.OpTextReq, 701)
	h.SetU32(pdu.OffTTT, p.TTT())
	d.send(&h, text[5:])
	p = d.recv()
	kvs, err := login.ParseKeys(p.data)
	if p.Opcode() != pdu.OpTextResp || err != nil || len(kvs) != 1 || kvs[0].Value != "NotUnderstood" {
		t.Fatalf("continuation under another ITT answered %s %v (%v)", pdu.Describe(&p.BHS), kvs, err)
	}
	big := make([]byte, maxTextPending+1)
	for i := range big {
		big[i] = 'a'
	}
	h = d.immediate(pdu.OpTextReq, 702)
	h.SetFlags(pdu.FlagContinue)
	d.send(&h, big)
	if p := d.recv(); p.Opcode() != pdu.OpReject || p.BHS[2] != rejectProtocolError {
		t.Fatalf("first C=1 part of %d bytes: %s", len(big), pdu.Describe(&p.BHS))
	}
}

// The sid is IET's number for the same ISID and TSIH (reference/iet.md:
// open-iscsi's ISID 00 02 3d 00 00 01 with TSIH 1 is 282574492336640).
func TestSIDIsIETs(t *testing.T) {
	ss := &session{isid: [6]byte{0x00, 0x02, 0x3d, 0x00, 0x00, 0x01}, tsih: 1}
	if got := ss.sid(); got != 282574492336640 {
		t.Fatalf("sid %d, want 282574492336640", got)
	}
	ss = &session{isid: [6]byte{0x00, 0x02, 0x3d, 0x00, 0x00, 0x02}, tsih: 4}
	if got := ss.sid(); got != 0x0004_0200_003d_0200 {
		t.Fatalf("sid %#x", got)
	}
}

// ABORT TASK for a WRITE the store has not answered is not answered
// FUNCTION COMPLETE until the write has ended: the initiator could
// otherwise send a newer write to the same blocks that the old one then
// overwrites.
func TestAbortTaskWaitsForAWriteInTheStore(t *testing.T) {
	old := slowWarn
	slowWarn = 50 * time.Millisecond // several warnings, still no answer
	t.Cleanup(func() { slowWarn = old })
	cfg, _ := basicConfig()
	ts, disk, release := startGated(t, cfg, Options{})
	r := dialRaw(t, ts.addr, normalKeys())
	itt := writeIntoGate(t, r, disk, make([]byte, 512))
	var h pdu.BHS
	h.SetOpcode(pdu.OpTMFReq)
	h[0] |= 0x40
	h.SetFlags(pdu.FlagFinal | 1) // ABORT TASK
	h.SetU32(pdu.OffITT, 1000)
	h.SetU32(pdu.OffTTT, itt)
	h.SetU32(pdu.OffCmdSN, r.cmdSN)
	r.send(&h, nil)
	r.nc.SetReadDeadline(time.Now().Add(400 * time.Millisecond))
	var early pdu.Header
	if err := r.rd.ReadHeader(&early); err == nil {
		t.Fatalf("answered while the write is in the store: %s", pdu.Describe(&early.BHS))
	}
	release()
	for range 2 {
		p := r.recv()
		if p.Opcode() == pdu.OpSCSIResp && p.ITT() == itt {
			continue // the write's own status, sent before the abort took
		}
		if p.Opcode() != pdu.OpTMFResp || p.ITT() != 1000 || p.BHS[2] != 0 {
			t.Fatalf("after the write ended: %s response %d", pdu.Describe(&p.BHS), p.BHS[2])
		}
		return
	}
	t.Fatal("no TMF response")
}

// closedAtOnce reports whether a connection from the loopback address
// from to addr is closed by the server at once (within 300 ms) rather
// than left waiting for its login.
func closedAtOnce(t *testing.T, from, addr string) bool {
	t.Helper()
	nc := dialFrom(t, from, addr)
	defer nc.Close()
	nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := nc.Read(make([]byte, 1))
	return errors.Is(err, io.EOF)
}

func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}

// waitLoggingIn waits (bounded) until the server counts n connections in
// the login phase. Without it a probe could take its slot before an idle
// connection dialled earlier (each connection's goroutine takes its slot
// in its own time), and the idle one would be the one refused.
func waitLoggingIn(t *testing.T, ts *testServer, n int) {
	t.Helper()
	for i := 0; ; i++ {
		if all, _ := ts.srv.loggingIn.inUse(netip.Addr{}); all == n {
			return
		} else if i == 500 {
			t.Fatalf("%d connections logging in, want %d", all, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialIdle opens n connections from 127.0.0.1 that never log in, each
// counted by the server before the next (idle[0] is the oldest login).
func dialIdle(t *testing.T, ts *testServer, n int) []net.Conn {
	t.Helper()
	var idle []net.Conn
	for range n {
		nc := dialFrom(t, "127.0.0.1", ts.addr)
		t.Cleanup(func() { nc.Close() })
		idle = append(idle, nc)
		waitLoggingIn(t, ts, len(idle))
	}
	return idle
}

// Connections that stay in the login phase are bounded: past
// MaxLoggingIn a new one is closed at once; once one finishes, logins
// work again.
func TestLoggingInBounded(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServerWith(t, cfg, newFakeDisk(1<<20), Options{MaxLoggingIn: 2})
	idle := dialIdle(t, ts, 2)
	if !closedAtOnce(t, "127.0.0.1", ts.addr) {
		t.Fatal("a third connection logging in was not closed")
	}
	idle[0].Close()
	waitLoggingIn(t, ts, 1)
	r := dialRaw(t, ts.addr, normalKeys())
	if r == nil {
		t.Fatal("no login")
	}
}

// One address may take every free login slot, but not keep the others
// out: with all slots taken, a newcomer from another address takes the
// slot of the hog's oldest login, which is closed; more from the hog are
// still closed at once.
func TestLoginFairShare(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServerWith(t, cfg, newFakeDisk(1<<20), Options{MaxLoggingIn: 4})
	idle := dialIdle(t, ts, 4)
	if !closedAtOnce(t, "127.0.0.1", ts.addr) {
		t.Fatal("a fifth connection from the address holding every slot was not closed")
	}
	other := dialFrom(t, "127.0.0.2", ts.addr)
	defer other.Close()
	idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the hog's oldest login was not closed for the newcomer: %v", err)
	}
	other.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := other.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
		t.Fatal("the newcomer from another address was closed")
	}
	if all, hog := ts.srv.loggingIn.inUse(netip.MustParseAddr("127.0.0.1")); all != 4 || hog != 3 {
		t.Fatalf("slots in use %d, of them the hog's %d; want 4 and 3", all, hog)
	}
	for _, nc := range idle[1:] {
		nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := nc.Read(make([]byte, 1)); errors.Is(err, io.EOF) {
			t.Fatal("a login other than the hog's oldest was closed")
		}
	}
}

// SendTargets repeated in one Text Request is answered once; the
// repeats are refused, not listed again.
func TestSendTargetsOncePerRequest(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	d := dialRaw(t, ts.addr, []login.KV{{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"}, {Key: "SessionType", Value: "Discovery"}})
	kvs := make([]login.KV, 50)
	for i := range kvs {
		kvs[i] = login.KV{Key: "SendTargets", Value: "All"}
	}
	h := d.immediate(pdu.OpTextReq, 800)
	d.send(&h, login.EncodeKeys(kvs))
	p := d.recv()
	got, err := login.ParseKeys(p.data)
	if err != nil || p.Opcode() != pdu.OpTextResp {
		t.Fatalf("%s (%v)", pdu.Describe(&p.BHS), err)
	}
	names, rejects := 0, 0
	for _, kv := range got {
		switch {
		case kv.Key == "TargetName":
			names++
		case kv.Key == "SendTargets" && kv.Value == "Reject":
			rejects++
		}
	}
	if names != 1 || rejects != 49 {
		t.Fatalf("%d listings and %d refusals, want 1 and 49", names, rejects)
	}
}

// ietadm --op delete --tid --sid closes the session the listing's sid
// names (the sid is IET's number: the TSIH in its top 16 bits).
func TestCloseSessionBySID(t *testing.T) {
	cfg, tg := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	infos := ts.srv.Sessions()
	if len(infos) != 1 {
		t.Fatalf("sessions %+v", infos)
	}
	if err := ts.srv.CloseSession(tg.TID, infos[0].SID^1); !errors.Is(err, ErrNoSuchSession) {
		t.Fatalf("closing a sid that is not there: %v", err)
	}
	if err := ts.srv.CloseSession(tg.TID, infos[0].SID); err != nil {
		t.Fatalf("CloseSession(%d, %d): %v", tg.TID, infos[0].SID, err)
	}
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for range 10 { // an Async Message may come first; then the close
		var h pdu.Header
		if err := r.rd.ReadHeader(&h); err != nil {
			break
		}
		r.rd.Discard(h.DataLen())
	}
	for i := 0; len(ts.srv.Sessions()) != 0; i++ {
		if i > 100 {
			t.Fatal("the session is still listed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// With DataDigest on, Data-In after a new MaxRecvDataSegmentLength is
// cut where its digests were taken (r.recv checks every digest).
func TestDeclaredMaxRecvDataSegmentLengthWithDigests(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.MaxXmitDataSegmentLength = 1 << 20
	tg.Params.DataDigest = []string{"CRC32C", "None"}
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "DataDigest", Value: "CRC32C"}))
	if !r.dd {
		t.Fatal("DataDigest not negotiated")
	}
	h := r.immediate(pdu.OpTextReq, 900)
	r.send(&h, login.EncodeKeys([]login.KV{{Key: "MaxRecvDataSegmentLength", Value: "1024"}}))
	if p := r.recv(); p.Opcode() != pdu.OpTextResp {
		t.Fatalf("answer: %s", pdu.Describe(&p.BHS))
	}
	for round := range 20 {
		itt := r.command([]byte{0x28, 0, 0, 0, 0, 0, 0, 0, 32, 0}, 32*512, true)
		n := 0
		for {
			p := r.recv()
			if p.Opcode() != pdu.OpDataIn || p.ITT() != itt || len(p.data) > 1024 {
				t.Fatalf("round %d: %s, %d bytes", round, pdu.Describe(&p.BHS), len(p.data))
			}
			n++
			if p.Flags()&pdu.FlagStatus != 0 {
				break
			}
		}
		if n != 16 {
			t.Fatalf("round %d: %d Data-In PDUs, want 16", round, n)
		}
	}
}

// startGated serves a disk whose WRITEs wait until release (run at
// cleanup too, before the server's shutdown, which waits for them).
func startGated(t *testing.T, cfg *config.Config, opts Options) (*testServer, *fakeDisk, func()) {
	t.Helper()
	disk := newFakeDisk(1 << 20)
	disk.writeGate = make(chan struct{})
	var openGate sync.Once
	release := func() { openGate.Do(func() { close(disk.writeGate) }) }
	ts := startServerWith(t, cfg, disk, opts)
	t.Cleanup(release)
	return ts, disk, release
}

// writeIntoGate sends a one-block WRITE(10) at LBA 40 and waits until it
// is inside the gated disk.
func writeIntoGate(t *testing.T, r *rawInit, disk *fakeDisk, block []byte) uint32 {
	t.Helper()
	itt := r.writeCommand([]byte{0x2a, 0, 0, 0, 0, 40, 0, 0, 1, 0}, 512, block)
	for i := 0; disk.byOp[0x2a].Load() == 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if disk.byOp[0x2a].Load() == 0 {
		t.Fatal("the WRITE never reached the disk")
	}
	return itt
}

// A reload that keeps a target's device gives its sessions the new
// config entry while their commands run; under -race this caught the
// workers reading the session's target state as the reload replaced it.
func TestReloadWhileCommandsRun(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 200; i++ {
			r.command([]byte{0x28, 0, 0, 0, 0, byte(i), 0, 0, 1, 0}, 512, true)
			for {
				r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				var p rawPDU
				if err := r.rd.ReadHeader(&p.Header); err != nil {
					done <- err
					return
				}
				p.data = make([]byte, p.DataLen())
				if err := r.rd.ReadData(p.data); err != nil {
					done <- err
					return
				}
				if op := p.Opcode(); op == pdu.OpSCSIResp || op == pdu.OpDataIn && p.Flags()&pdu.FlagStatus != 0 {
					if p.BHS[3] != 0 {
						done <- fmt.Errorf("READ %d: status %#x", i, p.BHS[3])
						return
					}
					break
				}
			}
		}
		done <- nil
	}()
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				t.Fatal("no reload ran while the commands did")
			}
			return
		default:
		}
		if err := ts.srv.Reload(ts.srv.Config().Clone()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}
