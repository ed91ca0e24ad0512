package iscsi

import (
	"bytes"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// cmdAt sends a SIMPLE SCSI command with the given CmdSN (not advancing
// r.cmdSN), ITT and immediate data; imm sets the I bit.
func (r *rawInit) cmdAt(cmdSN, itt uint32, cdb []byte, edtl uint32, read, imm bool, data []byte) {
	r.sendCmd(cmdSN, itt, cdb, edtl, read, imm, scsi.Simple, data)
}

// sendCmd sends a SCSI Command PDU: W is set for a non-read with EDTL,
// attr is the ATTR field.
func (r *rawInit) sendCmd(cmdSN, itt uint32, cdb []byte, edtl uint32, read, imm bool, attr scsi.TaskAttr, data []byte) {
	var h pdu.BHS
	h.SetOpcode(pdu.OpSCSICmd)
	if imm {
		h[0] |= 0x40
	}
	f := pdu.FlagFinal | byte(attr)
	if read {
		f |= pdu.FlagRead
	}
	if !read && edtl > 0 {
		f |= pdu.FlagWrite
		if r.unsol {
			f &^= pdu.FlagFinal
		}
	}
	h.SetFlags(f)
	h.SetU32(pdu.OffITT, itt)
	h.SetU32(pdu.OffTTT, edtl)
	h.SetU32(pdu.OffCmdSN, cmdSN)
	copy(h.CDB(), cdb)
	r.send(&h, data)
}

// tmf sends a TMF request (immediate when imm).
func (r *rawInit) tmf(fn byte, itt, cmdSN, rtt, refCmdSN uint32, lun uint64, imm bool) {
	var h pdu.BHS
	h.SetOpcode(pdu.OpTMFReq)
	if imm {
		h[0] |= 0x40
	}
	h.SetFlags(pdu.FlagFinal | fn)
	h.SetLUNField(pdu.EncodeLUN(lun))
	h.SetU32(pdu.OffITT, itt)
	h.SetU32(pdu.OffTTT, rtt)
	h.SetU32(pdu.OffCmdSN, cmdSN)
	h.SetU32(pdu.OffMaxCmdSN, refCmdSN)
	r.send(&h, nil)
}

// quiet asserts that nothing arrives for d.
func (r *rawInit) quiet(d time.Duration, what string) {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(d))
	var h pdu.Header
	if err := r.rd.ReadHeader(&h); err == nil {
		r.t.Fatalf("%s: got %s", what, pdu.Describe(&h.BHS))
	}
}

var (
	cdbTUR     = []byte{0x00, 0, 0, 0, 0, 0}
	cdbRead1   = []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	cdbWrite10 = func(lba, blocks byte) []byte { return []byte{0x2a, 0, 0, 0, 0, lba, 0, 0, blocks, 0} }
)

// RFC 7143 11.6.1 b: ABORT TASK for a task the target has not seen, with
// a RefCmdSN in the window and below the TMF's CmdSN, is Function
// Complete and the CmdSN counts as received: the command arriving late
// never runs. Outside the window, or not below the TMF's CmdSN: Task Does
// Not Exist.
func TestAbortTaskUnseen(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys())
	// The command with CmdSN 1 is "in flight" (not sent yet); the TMF
	// carries the next CmdSN, 2.
	r.tmf(1, 900, 2, 77, 1, 0, true)
	p := r.recv()
	if p.Opcode() != pdu.OpTMFResp || p.ITT() != 900 || p.BHS[2] != tmfComplete {
		t.Fatalf("ABORT TASK of unseen CmdSN 1: %s response %d, want 0", pdu.Describe(&p.BHS), p.BHS[2])
	}
	if exp := p.ExpStatSN(); exp != 2 {
		t.Fatalf("ExpCmdSN %d after the TMF, want 2 (CmdSN 1 considered received)", exp)
	}
	// The late command: a WRITE with its data; it must not run.
	r.cmdAt(1, 77, cdbWrite10(4, 1), 512, false, false, bytes.Repeat([]byte{0xee}, 512))
	r.cmdAt(2, 78, cdbTUR, 0, false, false, nil)
	p = r.recv()
	if p.Opcode() != pdu.OpSCSIResp || p.ITT() != 78 {
		t.Fatalf("after the late command: %s, want the TUR's response", pdu.Describe(&p.BHS))
	}
	if n := disk.execs.Load(); n != 1 {
		t.Fatalf("%d commands executed, want 1 (the late one must not run)", n)
	}
	// Outside the window (MaxCmdSN is 3+7): does not exist.
	r.tmf(1, 901, 3, 79, 200, 0, true)
	if p = r.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != tmfNoTask {
		t.Fatalf("RefCmdSN beyond MaxCmdSN: response %d, want 1", p.BHS[2])
	}
	// Not below the TMF's own CmdSN: does not exist (and nothing moves).
	r.tmf(1, 902, 3, 80, 3, 0, true)
	if p = r.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != tmfNoTask || p.ExpStatSN() != 3 {
		t.Fatalf("RefCmdSN = the TMF's CmdSN: response %d ExpCmdSN %d, want 1 and 3", p.BHS[2], p.ExpStatSN())
	}
	// Already received and answered (below ExpCmdSN, outside the
	// window): does not exist.
	r.tmf(1, 903, 3, 78, 2, 0, true)
	if p = r.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != tmfNoTask {
		t.Fatalf("ABORT TASK of an answered command: response %d, want 1", p.BHS[2])
	}
	// The same with a non-immediate TMF beyond the missing command.
	r.tmf(1, 904, 4, 81, 3, 0, false)
	if p = r.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != tmfComplete || p.ExpStatSN() != 5 {
		t.Fatalf("non-immediate ABORT TASK of unseen CmdSN 3: response %d ExpCmdSN %d, want 0 and 5", p.BHS[2], p.ExpStatSN())
	}
	r.cmdAt(3, 81, cdbTUR, 0, false, false, nil)
	r.cmdAt(5, 82, cdbTUR, 0, false, false, nil)
	if p = r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != 82 {
		t.Fatalf("after the second late command: %s", pdu.Describe(&p.BHS))
	}
	disk.mu.RLock()
	defer disk.mu.RUnlock()
	if bytes.IndexByte(disk.data[4*512:5*512], 0xee) >= 0 {
		t.Fatal("the aborted late WRITE wrote its data")
	}
}

// A command beyond a CmdSN gap does not run until the gap fills (RFC
// 7143 4.2.2.1); then both run.
func TestCommandsHeldForCmdSNGap(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys())
	r.cmdAt(2, 12, cdbWrite10(8, 1), 512, false, false, bytes.Repeat([]byte{2}, 512))
	r.quiet(300*time.Millisecond, "command beyond the gap")
	if n := disk.execs.Load(); n != 0 {
		t.Fatalf("%d commands executed while CmdSN 1 is missing", n)
	}
	r.cmdAt(1, 11, cdbRead1, 512, true, false, nil)
	got := map[uint32]bool{}
	for len(got) < 2 {
		p := r.recv()
		if p.Opcode() != pdu.OpSCSIResp && p.Opcode() != pdu.OpDataIn {
			t.Fatalf("unexpected %s", pdu.Describe(&p.BHS))
		}
		if p.Opcode() == pdu.OpSCSIResp || p.Flags()&pdu.FlagStatus != 0 {
			if p.BHS[3] != 0 {
				t.Fatalf("ITT %d status %#x", p.ITT(), p.BHS[3])
			}
			got[p.ITT()] = true
		}
	}
	disk.mu.RLock()
	written := disk.data[8*512]
	disk.mu.RUnlock()
	if !got[11] || !got[12] || written != 2 {
		t.Fatalf("responses %v, written %d", got, written)
	}
}

// Held commands go to the workers in CmdSN order, after the command that
// filled the gap.
func TestReleaseInCmdSNOrder(t *testing.T) {
	srv := &Server{mem: newMemBudget(1 << 20), pool: pdu.NewBufPool(nil, 1<<20)}
	ss := &session{srv: srv, tasks: map[uint32]*task{}, ahead: map[uint32]bool{}, work: make(chan *task, 16)}
	ss.expCmdSN.Store(1)
	ss.maxCmdSN.Store(8)
	mk := func(sn uint32) *task {
		t := &task{ss: ss, itt: sn, cmdSN: sn}
		t.dispatched.Store(true)
		return t
	}
	for _, sn := range []uint32{4, 3, 2} {
		if !ss.acceptCmdSN(sn) {
			t.Fatalf("CmdSN %d refused", sn)
		}
		ss.dispatch(mk(sn))
	}
	if len(ss.work) != 0 || len(ss.held) != 3 {
		t.Fatalf("%d queued, %d held before the gap filled", len(ss.work), len(ss.held))
	}
	ss.acceptCmdSN(1)
	ss.dispatch(mk(1))
	if !ss.released {
		t.Fatal("release not flagged")
	}
	ss.release()
	for want := uint32(1); want <= 4; want++ {
		if got := (<-ss.work).cmdSN; got != want {
			t.Fatalf("CmdSN %d queued, want %d", got, want)
		}
	}
}

// TMFs reach held commands: ABORT TASK of a held command answers at once
// and the command never runs; an ABORT TASK SET beyond a gap waits for
// the missing command, then aborts it and the held one.
func TestTMFAndHeldCommands(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	disk.block = make(chan struct{})
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys())
	r.cmdAt(2, 22, cdbTUR, 0, false, false, nil) // held: CmdSN 1 missing
	r.tmf(1, 950, 3, 22, 2, 0, true)
	start := time.Now()
	if p := r.recv(); p.Opcode() != pdu.OpTMFResp || p.ITT() != 950 || p.BHS[2] != tmfComplete || time.Since(start) > 2*time.Second {
		t.Fatalf("ABORT TASK of a held command: %s response %d after %v", pdu.Describe(&p.BHS), p.BHS[2], time.Since(start))
	}
	// CmdSN 3 held, then ABORT TASK SET (immediate, CmdSN 4) waits for
	// CmdSN 1, a READ that blocks: it is aborted, so is 3.
	r.cmdAt(3, 23, cdbTUR, 0, false, false, nil)
	r.tmf(2, 951, 4, 0, 0, 0, true)
	r.quiet(300*time.Millisecond, "ABORT TASK SET before the commands below it came")
	r.cmdAt(1, 21, cdbRead1, 512, true, false, nil)
	p := r.recv()
	if p.Opcode() != pdu.OpTMFResp || p.ITT() != 951 || p.BHS[2] != tmfComplete || p.ExpStatSN() != 4 {
		t.Fatalf("ABORT TASK SET: %s response %d", pdu.Describe(&p.BHS), p.BHS[2])
	}
	close(disk.block)
	r.cmdAt(4, 24, cdbTUR, 0, false, false, nil)
	if p = r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != 24 {
		t.Fatalf("after the aborts: %s, want only the new command's response", pdu.Describe(&p.BHS))
	}
	if n := disk.byOp[0x00].Load(); n != 1 { // the held TURs never ran
		t.Fatalf("%d TEST UNIT READY executed, want 1", n)
	}
}

// Immediate commands are outside the CmdSN window but bounded per
// session: beyond maxImmediateCommands in flight they are rejected with
// reason 0x06, so their buffers stay within a bound (immediate 64 KiB
// WRITEs always fit the budget: 3000 of them took 200 MB).
func TestImmediateCommandsBounded(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys())
	const sent, size = 40, 64 << 10
	// Immediate WRITEs with no immediate data: each gets its buffer and
	// an R2T, and waits for Data-Out that never comes.
	for i := range uint32(sent) {
		r.cmdAt(r.cmdSN, 100+i, cdbWrite10(byte(i), size/512), size, false, true, nil)
	}
	r2ts, rejects := 0, 0
	for r2ts+rejects < sent {
		p := r.recv()
		switch {
		case p.Opcode() == pdu.OpR2T:
			r2ts++
		case p.Opcode() == pdu.OpReject && p.BHS[2] == rejectImmediate:
			rejects++
		default:
			t.Fatalf("unexpected %s reason %#x", pdu.Describe(&p.BHS), p.BHS[2])
		}
	}
	if r2ts != maxImmediateCommands {
		t.Fatalf("%d immediate commands accepted, want %d", r2ts, maxImmediateCommands)
	}
	if used := ts.srv.mem.inUse(); used > maxImmediateCommands*size {
		t.Fatalf("%d bytes of data budget in use, want at most %d", used, maxImmediateCommands*size)
	}
	// A non-immediate command still goes.
	itt := r.command(cdbTUR, 0, false)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt {
		t.Fatalf("windowed command: %s", pdu.Describe(&p.BHS))
	}
}

// A READ's buffer comes from its CDB (capped by EDTL), not from EDTL
// alone; an EDTL beyond the command buffer limit is refused like a
// write's.
func TestReadBufferSizedFromCDB(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	disk.block = make(chan struct{})
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys())
	for range 3 {
		r.command(cdbRead1, 32<<20, true) // 1 block, EDTL 32 MiB
	}
	for i := 0; disk.execs.Load() < 3 && i < 500; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	if n := disk.execs.Load(); n != 3 {
		t.Fatalf("%d READs running, want 3", n)
	}
	if used := ts.srv.mem.inUse(); used > 3*maxBlockSize {
		t.Fatalf("%d bytes of budget for three 1-block READs, want at most %d", used, 3*maxBlockSize)
	}
	close(disk.block)
	for done := 0; done < 3; {
		if p := r.recv(); p.Flags()&pdu.FlagStatus != 0 || p.Opcode() == pdu.OpSCSIResp {
			if p.BHS[3] != 0 || p.Flags()&pdu.FlagUnder == 0 {
				t.Fatalf("READ: %s status %#x", pdu.Describe(&p.BHS), p.BHS[3])
			}
			done++
		}
	}
	itt := r.command(cdbRead1, 1<<30, true) // EDTL 1 GiB
	p := r.recv()
	if p.Opcode() != pdu.OpSCSIResp || p.ITT() != itt || p.BHS[3] != 0x02 || len(p.data) < 16 ||
		p.data[2+2]&0x0f != 0x05 || p.data[2+12] != 0x24 {
		t.Fatalf("READ with EDTL 1 GiB: %s status %#x sense % x", pdu.Describe(&p.BHS), p.BHS[3], p.data)
	}
	for _, tc := range []struct {
		cdb  []byte
		edtl uint32
		want uint32
	}{
		{cdbRead1, 32 << 20, maxBlockSize},
		{cdbRead1, 200, 200},
		{[]byte{0x08, 0, 0, 0, 0, 0}, 1 << 30, 256 * maxBlockSize},
		{[]byte{0x88, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0}, 16 << 20, 512 * maxBlockSize},
		{[]byte{0xa8, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0}, 1 << 20, 8 * maxBlockSize},
		{[]byte{0x12, 0, 0, 0, 96, 0}, 96, 0},
	} {
		if got := dataInSize(tc.cdb, tc.edtl); got != tc.want {
			t.Errorf("dataInSize(% x, %d) = %d, want %d", tc.cdb, tc.edtl, got, tc.want)
		}
	}
}

// A session ending with a write waiting for its Data-Out gives its buffer
// and budget back.
func TestSessionEndReleasesWaitingWrites(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	r.cmdAt(1, 1, cdbWrite10(0, 128), 64<<10, false, false, nil)
	if p := r.recv(); p.Opcode() != pdu.OpR2T {
		t.Fatalf("want R2T, got %s", pdu.Describe(&p.BHS))
	}
	if used := ts.srv.mem.inUse(); used != 64<<10 {
		t.Fatalf("%d bytes in use, want %d", used, 64<<10)
	}
	r.nc.Close()
	for i := 0; (ts.srv.mem.inUse() != 0 || len(ts.srv.Sessions()) != 0) && i < 500; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	if used := ts.srv.mem.inUse(); used != 0 {
		t.Fatalf("%d bytes of budget still held after the session ended", used)
	}
}

// LOGICAL UNIT RESET and TARGET WARM RESET abort the tasks of every
// session on the LU / target (commands waiting for Data-Out included:
// they end, their budget comes back); TARGET COLD RESET then closes every
// connection to the target, the requester's after its response.
func TestResetsReachAllSessions(t *testing.T) {
	for _, fn := range []byte{5, 6, 7} { // LU RESET, WARM RESET, COLD RESET
		cfg, _ := basicConfig()
		disk := newFakeDisk(1 << 20)
		disk.block = make(chan struct{})
		ts := startServer(t, cfg, disk)
		a := dialRaw(t, ts.addr, normalKeys())
		b := dialRaw(t, ts.addr, keysOf("other"))
		// Session A: a READ that blocks and a WRITE waiting for Data-Out.
		a.cmdAt(1, 1, cdbRead1, 512, true, false, nil)
		a.cmdAt(2, 2, cdbWrite10(16, 128), 64<<10, false, false, nil)
		r2t := a.recv()
		if r2t.Opcode() != pdu.OpR2T || r2t.ITT() != 2 {
			t.Fatalf("want R2T, got %s", pdu.Describe(&r2t.BHS))
		}
		for i := 0; disk.execs.Load() < 1 && i < 500; i++ {
			time.Sleep(2 * time.Millisecond)
		}
		b.tmf(fn, 990, 1, 0, 0, 0, true)
		p := b.recv()
		if p.Opcode() != pdu.OpTMFResp || p.ITT() != 990 || p.BHS[2] != tmfComplete {
			t.Fatalf("TMF %d: %s response %d", fn, pdu.Describe(&p.BHS), p.BHS[2])
		}
		for i := 0; ts.srv.mem.inUse() != 0 && i < 500; i++ {
			time.Sleep(2 * time.Millisecond)
		}
		if used := ts.srv.mem.inUse(); used != 0 {
			t.Fatalf("TMF %d: %d bytes of budget held by the other session's aborted write", fn, used)
		}
		if fn == 7 {
			for _, r := range []*rawInit{a, b} {
				r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				var h pdu.Header
				if err := r.rd.ReadHeader(&h); err == nil {
					t.Fatalf("cold reset: connection still open, got %s", pdu.Describe(&h.BHS))
				}
			}
			continue
		}
		// The write's Data-Out now goes nowhere; A's next command is the
		// only one answered.
		a.dataOut(2, r2t.TTT(), 0, 0, true, make([]byte, 64<<10))
		a.cmdAt(3, 3, cdbTUR, 0, false, false, nil)
		if p = a.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != 3 {
			t.Fatalf("TMF %d: session A got %s, want only its new command's response", fn, pdu.Describe(&p.BHS))
		}
		if n := disk.byOp[0x2a].Load(); n != 0 {
			t.Fatalf("TMF %d: the aborted WRITE ran", fn)
		}
		close(disk.block)
	}
}

// LU resets from one session while another streams unsolicited Data-Out:
// the writes ended by a reset may be mid-read (the reader reads into the
// buffer without the task lock); nothing races (go test -race), the
// connection stays in step and all budget comes back.
func TestResetWhileOtherSessionStreamsData(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.InitialR2T = false
	ts := startServer(t, cfg, newFakeDisk(4<<20))
	a := dialRaw(t, ts.addr, normalKeys(login.KV{Key: "InitialR2T", Value: "No"}, login.KV{Key: "ImmediateData", Value: "No"}))
	other := normalKeys(login.KV{Key: "InitialR2T", Value: "No"})
	other[0].Value = "iqn.2026-01.test:other"
	b := dialRaw(t, ts.addr, other)
	a.unsol = true
	go func() { // drain A's responses
		var h pdu.Header
		for a.rd.ReadHeader(&h) == nil && a.rd.Discard(h.DataLen()) == nil {
		}
	}()
	resetsDone := make(chan struct{})
	go func() {
		defer close(resetsDone)
		for n := range uint32(30) {
			b.tmf(5, 2000+n, b.cmdSN, 0, 0, 0, true)
			b.recv()
		}
	}()
	const size, pdus = 64 << 10, 16
	chunk := make([]byte, size/pdus)
	writes := 0
	for i := uint32(0); i < 2000; i++ {
		select {
		case <-resetsDone:
			i = 2000
			continue
		default:
		}
		writes++
		a.cmdAt(a.cmdSN, i+1, cdbWrite10(byte(i%64*2), size/512), size, false, false, nil)
		a.cmdSN++
		for j := range uint32(pdus) {
			a.dataOut(i+1, pdu.ReservedTag, j, j*uint32(len(chunk)), j == pdus-1, chunk)
		}
	}
	<-resetsDone
	t.Logf("%d writes during 30 LU resets", writes)
	// A is still in step: a NOP-Out is answered (by the drain loop, so
	// check through the target: the session is alive and the budget
	// comes back once everything ended).
	if len(ts.srv.Sessions()) != 2 {
		t.Fatalf("sessions: %+v", ts.srv.Sessions())
	}
	a.nc.Close()
	for i := 0; ts.srv.mem.inUse() != 0 && i < 1000; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	if used := ts.srv.mem.inUse(); used != 0 {
		t.Fatalf("%d bytes of budget held after the resets and the session's end", used)
	}
}

// The same, pinned down: a LU reset from another session ends a write
// whose reader is blocked in the middle of a Data-Out's data; the reader
// gives the buffer back when the read completes, the stream stays in
// step and the budget comes back.
func TestResetDuringDataOutRead(t *testing.T) {
	cfg, tg := basicConfig()
	tg.Params.InitialR2T = false
	disk := newFakeDisk(1 << 20)
	ts := startServer(t, cfg, disk)
	keys := normalKeys(login.KV{Key: "InitialR2T", Value: "No"}, login.KV{Key: "ImmediateData", Value: "No"})
	a := dialRaw(t, ts.addr, keys)
	keys[0].Value = "iqn.2026-01.test:other"
	b := dialRaw(t, ts.addr, keys)
	a.unsol = true
	const size = 64 << 10
	a.cmdAt(1, 1, cdbWrite10(0, size/512), size, false, false, nil)
	var d pdu.BHS
	d.SetOpcode(pdu.OpDataOut)
	d.SetFlags(pdu.FlagFinal)
	d.SetU32(pdu.OffITT, 1)
	d.SetU32(pdu.OffTTT, pdu.ReservedTag)
	d.SetDataLen(size)
	bufs, _ := pdu.AppendPDU(nil, nil, &d, nil, false, false)
	if _, err := bufs.WriteTo(a.nc); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte{0x77}, size)
	if _, err := a.nc.Write(payload[:size/2]); err != nil {
		t.Fatal(err)
	}
	// Wait until A's reader is inside the read.
	var tk *task
	for i := 0; i < 1000; i++ {
		ts.srv.mu.Lock()
		ss := ts.srv.sessions[1]
		ts.srv.mu.Unlock()
		if ss != nil {
			if tk = ss.task(1); tk != nil {
				tk.mu.Lock()
				reading := tk.reading
				tk.mu.Unlock()
				if reading {
					break
				}
			}
		}
		tk = nil
		time.Sleep(time.Millisecond)
	}
	if tk == nil {
		t.Fatal("the write's reader never started reading its Data-Out")
	}
	b.tmf(5, 3000, 1, 0, 0, 0, true)
	if p := b.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != tmfComplete {
		t.Fatalf("LU reset: %s response %d", pdu.Describe(&p.BHS), p.BHS[2])
	}
	select {
	case <-tk.sig.endedCh():
	case <-time.After(5 * time.Second):
		t.Fatal("the reset did not end the write")
	}
	if _, err := a.nc.Write(payload[size/2:]); err != nil {
		t.Fatal(err)
	}
	a.cmdAt(2, 2, cdbTUR, 0, false, false, nil)
	if p := a.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != 2 {
		t.Fatalf("after the reset: %s, want the TUR's response (stream in step, write not answered)", pdu.Describe(&p.BHS))
	}
	for i := 0; ts.srv.mem.inUse() != 0 && i < 1000; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	if used := ts.srv.mem.inUse(); used != 0 {
		t.Fatalf("%d bytes of budget held", used)
	}
	if disk.byOp[0x2a].Load() != 0 {
		t.Fatal("the reset write ran")
	}
}

// A TMF function this target does not support is answered "Task
// management function not supported" (5), not "Function rejected": RFC
// 7144's QUERY TASK, QUERY TASK SET, I_T NEXUS RESET and QUERY
// ASYNCHRONOUS EVENT (iSCSIProtocolLevel 2, which is not offered) and the
// unassigned codes alike. TASK REASSIGN (ERL 2) keeps its own answer. The
// session goes on: each TMF took its CmdSN.
func TestUnsupportedTMFFunction(t *testing.T) {
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	r := dialRaw(t, ts.addr, normalKeys())
	sn := uint32(1)
	for i, fn := range []byte{9, 10, 11, 12, 13, 0x40, 0x7f, 0} {
		itt := uint32(900 + i)
		r.tmf(fn, itt, sn, 0xffffffff, 0, 0, false)
		sn++
		p := r.recv()
		if p.Opcode() != pdu.OpTMFResp || p.ITT() != itt || p.BHS[2] != tmfNotSupported {
			t.Fatalf("function %d: %s response %d, want %d", fn, pdu.Describe(&p.BHS), p.BHS[2], tmfNotSupported)
		}
	}
	r.tmf(byte(scsi.TMFTaskReassign), 990, sn, 1, 0, 0, false)
	sn++
	if p := r.recv(); p.Opcode() != pdu.OpTMFResp || p.BHS[2] != tmfNoReassign {
		t.Fatalf("TASK REASSIGN: response %d, want %d", p.BHS[2], tmfNoReassign)
	}
	r.cmdAt(sn, 991, cdbTUR, 0, false, false, nil)
	if p := r.recv(); p.Opcode() != pdu.OpSCSIResp || p.ITT() != 991 || p.BHS[3] != 0 {
		t.Fatalf("TUR after the TMFs: %s status %#x", pdu.Describe(&p.BHS), p.BHS[3])
	}
}
