package iscsi

import (
	"testing"
	"time"

	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// cmdAttr sends a non-immediate SCSI command without data with the
// given task attribute (ATTR field of the SCSI Command PDU).
func (r *rawInit) cmdAttr(cmdSN, itt uint32, cdb []byte, edtl uint32, read bool, attr scsi.TaskAttr) {
	r.sendCmd(cmdSN, itt, cdb, edtl, read, false, attr, nil)
}

// recvResp reads one PDU and wants it to be the SCSI Response (or the
// last Data-In, with status) of itt.
func (r *rawInit) recvResp(itt uint32, what string) {
	r.t.Helper()
	for {
		p := r.recv()
		if p.Opcode() == pdu.OpDataIn && p.ITT() == itt && p.Flags()&0x01 == 0 {
			continue // Data-In without status: the response is still to come
		}
		if (p.Opcode() != pdu.OpSCSIResp && p.Opcode() != pdu.OpDataIn) || p.ITT() != itt {
			r.t.Fatalf("%s: got %s, want the response of ITT %d", what, pdu.Describe(&p.BHS), itt)
		}
		return
	}
}

// waitExecs waits until the disk has started n commands.
func waitExecs(t *testing.T, d *fakeDisk, n int32) {
	t.Helper()
	for i := 0; d.execs.Load() < n && i < 1000; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	if got := d.execs.Load(); got < n {
		t.Fatalf("%d commands started, want %d", got, n)
	}
}

// blockedRead starts a server whose disk holds READs until disk.block is
// closed and a session on it whose SIMPLE READ (CmdSN 1, ITT 1) runs.
func blockedRead(t *testing.T) (*fakeDisk, *rawInit) {
	t.Helper()
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	disk.block = make(chan struct{})
	ts := startServer(t, cfg, disk)
	r := dialRaw(t, ts.addr, normalKeys())
	r.cmdAttr(1, 1, cdbRead1, 512, true, scsi.Simple)
	waitExecs(t, disk, 1)
	return disk, r
}

// SAM-5 8.6: an ORDERED command starts only after every older command of
// the task set ended, and newer SIMPLE ones wait for it. (Before, the
// task attribute was ignored: all three ran at once.)
func TestOrderedWaitsForOlderAndHoldsNewer(t *testing.T) {
	disk, r := blockedRead(t)
	r.cmdAttr(2, 2, cdbTUR, 0, false, scsi.Ordered)
	r.cmdAttr(3, 3, cdbTUR, 0, false, scsi.Simple)
	r.quiet(200*time.Millisecond, "ORDERED behind a running READ")
	if n := disk.execs.Load(); n != 1 {
		t.Fatalf("%d commands started while the older READ runs, want 1", n)
	}
	close(disk.block)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r.recvResp(1, "first")
	r.recvResp(2, "second")
	r.recvResp(3, "third")
}

// HEAD OF QUEUE starts at once, even past a waiting ORDERED command; a
// newer SIMPLE one still waits for the ORDERED.
func TestHeadOfQueueRunsNext(t *testing.T) {
	disk, r := blockedRead(t)
	r.cmdAttr(2, 2, cdbTUR, 0, false, scsi.Ordered)
	r.cmdAttr(3, 3, cdbTUR, 0, false, scsi.HeadOfQ)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r.recvResp(3, "HEAD OF QUEUE")
	r.cmdAttr(4, 4, cdbTUR, 0, false, scsi.Simple)
	r.quiet(200*time.Millisecond, "SIMPLE behind a waiting ORDERED")
	close(disk.block)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r.recvResp(1, "READ")
	r.recvResp(2, "ORDERED")
	r.recvResp(4, "SIMPLE")
}

// The Control mode page says TST 000b: one task set for all I_T nexuses.
// An ORDERED command of one session waits for another session's older
// command on the LU, and not for one on another LU.
func TestOrderedAcrossSessions(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	disk.block = make(chan struct{})
	ts := startServer(t, cfg, disk)
	a := dialRaw(t, ts.addr, normalKeys())
	b := dialRaw(t, ts.addr, keysOf("other"))
	a.cmdAttr(1, 1, cdbRead1, 512, true, scsi.Simple)
	waitExecs(t, disk, 1)
	b.cmdAttr(1, 7, cdbTUR, 0, false, scsi.Ordered)
	b.quiet(200*time.Millisecond, "ORDERED behind another session's READ")
	close(disk.block)
	a.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	a.recvResp(1, "READ")
	b.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b.recvResp(7, "ORDERED")
}

// An ORDERED command held back can be aborted: ABORT TASK completes at
// once (nothing waits for it to run), it never answers, and the newer
// SIMPLE command it held back runs.
func TestAbortTaskOfWaitingOrdered(t *testing.T) {
	disk, r := blockedRead(t)
	r.cmdAttr(2, 2, cdbTUR, 0, false, scsi.Ordered)
	r.cmdAttr(3, 3, cdbTUR, 0, false, scsi.Simple)
	r.tmf(1, 900, 4, 2, 2, 0, true)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The TMF response and that of the SIMPLE command the abort let go
	// come in either order.
	var tmfDone, simpleDone bool
	for !tmfDone || !simpleDone {
		p := r.recv()
		switch {
		case p.Opcode() == pdu.OpTMFResp && p.ITT() == 900 && p.BHS[2] == tmfComplete && !tmfDone:
			tmfDone = true
		case p.Opcode() == pdu.OpSCSIResp && p.ITT() == 3 && !simpleDone:
			simpleDone = true
		default:
			t.Fatalf("ABORT TASK of the waiting ORDERED: %s response %d (want the TMF response, Function complete, and ITT 3's)", pdu.Describe(&p.BHS), p.BHS[2])
		}
	}
	close(disk.block)
	r.recvResp(1, "READ")
	r.cmdAttr(4, 4, cdbTUR, 0, false, scsi.Simple)
	r.recvResp(4, "TUR after all") // not the aborted ORDERED's response
	if n := disk.byOp[0x00].Load(); n != 2 {
		t.Fatalf("%d TEST UNIT READYs ran, want 2 (the aborted ORDERED must not)", n)
	}
}

// A command beyond a CmdSN gap takes its place in the task set in CmdSN
// order: an ORDERED command that fills the gap after a newer SIMPLE one
// came still holds it back.
func TestTaskSetEntryInCmdSNOrder(t *testing.T) {
	disk, r := blockedRead(t)
	r.cmdAttr(3, 3, cdbTUR, 0, false, scsi.Simple) // beyond the gap
	r.cmdAttr(2, 2, cdbTUR, 0, false, scsi.Ordered)
	r.quiet(200*time.Millisecond, "commands behind a running READ and an ORDERED")
	close(disk.block)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	r.recvResp(1, "READ")
	r.recvResp(2, "ORDERED")
	r.recvResp(3, "SIMPLE")
}

// A session that ends with commands held back by its task set ends them
// (budget and set given back): the other session's newer commands on the
// LU are not held back by them.
func TestSessionEndLeavesTaskSet(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	disk.block = make(chan struct{})
	ts := startServer(t, cfg, disk)
	b := dialRaw(t, ts.addr, keysOf("other"))
	a := dialRaw(t, ts.addr, normalKeys())
	b.cmdAttr(1, 1, cdbRead1, 512, true, scsi.Simple)
	waitExecs(t, disk, 1)
	a.cmdAttr(1, 2, cdbTUR, 0, false, scsi.Ordered) // waits for b's READ
	time.Sleep(50 * time.Millisecond)
	a.nc.Close()
	for i := 0; disk.attached.Load() > 1 && i < 1000; i++ {
		time.Sleep(2 * time.Millisecond)
	}
	b.cmdAttr(2, 3, cdbTUR, 0, false, scsi.Simple)
	b.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b.recvResp(3, "SIMPLE after the ended session's ORDERED")
	close(disk.block)
	b.recvResp(1, "READ")
	if n := disk.byOp[0x00].Load(); n != 1 {
		t.Fatalf("%d TEST UNIT READYs ran, want 1 (the ended session's ORDERED must not)", n)
	}
	ts.srv.tsetMu.Lock()
	n := len(ts.srv.tsets)
	ts.srv.tsetMu.Unlock()
	if n != 1 {
		t.Fatalf("%d task sets registered with one session on one LUN, want 1", n)
	}
}

// ABORT TASK names the task by LUN and tag: a task with the tag on
// another LUN is not aborted ("Task does not exist"); on its own LUN it
// is ("Function complete") and never answers.
func TestAbortTaskMatchesLUN(t *testing.T) {
	_, r := blockedRead(t)
	// Immediate TMFs carrying CmdSN 2 with RefCmdSN 1 (the READ, already
	// received): on LUN 3 the referenced task does not exist.
	r.tmf(1, 900, 2, 1, 1, 3, true)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if p := r.recv(); p.Opcode() != pdu.OpTMFResp || p.ITT() != 900 || p.BHS[2] != tmfNoTask {
		t.Fatalf("ABORT TASK on another LUN: %s response %d, want 1", pdu.Describe(&p.BHS), p.BHS[2])
	}
	r.tmf(1, 901, 2, 1, 1, 0, true)
	if p := r.recv(); p.Opcode() != pdu.OpTMFResp || p.ITT() != 901 || p.BHS[2] != tmfComplete {
		t.Fatalf("ABORT TASK on the task's LUN: %s response %d, want 0", pdu.Describe(&p.BHS), p.BHS[2])
	}
	r.cmdAttr(2, 2, cdbTUR, 0, false, scsi.Simple)
	r.recvResp(2, "TUR after the abort") // the aborted READ does not answer
}

// An older command waiting for data budget is not left behind an ORDERED
// one: the newer commands the ORDERED holds back keep their memory until
// it ended, so the older one overdraws (memBudget.grantBarred) instead of
// waiting for memory that would never come back. Before, this READ of the
// whole budget waited for the held-back WRITE's 64 KiB forever.
func TestOrderedDoesNotStarveOlderOfBudget(t *testing.T) {
	cfg, _ := basicConfig()
	disk := newFakeDisk(1 << 20)
	disk.block = make(chan struct{})
	ts := startServerWith(t, cfg, disk, Options{MaxDataInFlight: 256 << 10})
	r := dialRaw(t, ts.addr, normalKeys())
	read := func(blocks uint16) []byte { return []byte{0x28, 0, 0, 0, 0, 0, 0, byte(blocks >> 8), byte(blocks), 0} }
	r.cmdAttr(1, 1, read(256), 128<<10, true, scsi.Simple) // runs, holding half the budget
	waitExecs(t, disk, 1)
	r.cmdAttr(2, 2, read(512), 256<<10, true, scsi.Simple) // the whole budget: waits
	time.Sleep(50 * time.Millisecond)
	r.cmdAttr(3, 3, cdbTUR, 0, false, scsi.Ordered)
	write := []byte{0x2a, 0, 0, 0, 0x08, 0, 0, 0, 128, 0} // 64 KiB at LBA 2048
	r.cmdAt(4, 4, write, 64<<10, false, false, make([]byte, 64<<10))
	time.Sleep(100 * time.Millisecond)
	close(disk.block)
	r.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := map[uint32]bool{}
	for len(got) < 4 {
		p := r.recv()
		if p.Opcode() == pdu.OpSCSIResp || p.Opcode() == pdu.OpDataIn && p.Flags()&0x01 != 0 {
			got[p.ITT()] = true
		}
	}
	if disk.execs.Load() != 4 {
		t.Fatalf("%d commands executed, want 4", disk.execs.Load())
	}
}
