package iscsi

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// settled waits until the server has no session left, holds no data
// budget and runs no more goroutines than before (the count taken before
// the initiator connected), and fails the test otherwise.
func settled(t *testing.T, ts *testServer, before int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if len(ts.srv.Sessions()) == 0 && ts.srv.mem.inUse() == 0 && runtime.NumGoroutine() <= before {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(ts.srv.Sessions()); n != 0 {
		t.Errorf("%s: %d sessions left", what, n)
	}
	if n := ts.srv.mem.inUse(); n != 0 {
		t.Errorf("%s: %d bytes of data budget still held", what, n)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%s: %d goroutines, %d before the initiator came:\n%s", what, n, before, buf)
	}
}

// goroutinesNow is the goroutine count once the ones of earlier tests
// (connections closing) are gone: the lowest seen for a short while.
func goroutinesNow() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		time.Sleep(5 * time.Millisecond)
		n = min(n, runtime.NumGoroutine())
	}
	return n
}

// An initiator that disappears in the middle of a Data-Out sequence (an
// R2T answered in part, unsolicited data sent in part): the write never
// reaches the store, its buffer and budget come back, and nothing of
// the session stays behind.
func TestInitiatorGoneMidDataOut(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []login.KV
		send func(r *rawInit, itt uint32, data []byte)
	}{
		{"R2T answered in part", normalKeys(login.KV{Key: "ImmediateData", Value: "No"}, login.KV{Key: "InitialR2T", Value: "Yes"}), func(r *rawInit, itt uint32, data []byte) {
			p := r.recv()
			if p.Opcode() != pdu.OpR2T || p.ITT() != itt {
				r.t.Fatalf("want R2T, got %s", pdu.Describe(&p.BHS))
			}
			r.dataOut(itt, p.TTT(), 0, 0, false, data[:4096])
			// The next PDU's header, half its data.
			d := dataOutHeader(itt, p.TTT(), 1, 4096, false)
			d.SetDataLen(4096)
			r.nc.Write(d[:])
			r.nc.Write(data[4096:6144])
		}},
		{"unsolicited data in part", normalKeys(login.KV{Key: "InitialR2T", Value: "No"}), func(r *rawInit, itt uint32, data []byte) {
			r.dataOut(itt, pdu.ReservedTag, 0, 0, false, data[:4096])
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, tg := basicConfig()
			tg.Params.InitialR2T = false
			disk := newFakeDisk(1 << 20)
			ts := startServer(t, cfg, disk)
			before := goroutinesNow()
			r := dialRaw(t, ts.addr, tc.keys)
			data := bytes.Repeat([]byte{0xa5}, 16<<10)
			var h pdu.BHS
			h.SetOpcode(pdu.OpSCSICmd)
			h.SetFlags(pdu.FlagWrite | byte(scsi.Simple)) // F=0: unsolicited data may follow
			h.SetU32(pdu.OffITT, 1)
			h.SetU32(pdu.OffTTT, uint32(len(data)))
			h.SetU32(pdu.OffCmdSN, 1)
			copy(h.CDB(), cdbWrite10(0, 32))
			r.send(&h, nil)
			tc.send(r, 1, data)
			for i := 0; ts.srv.mem.inUse() == 0 && i < 500; i++ {
				time.Sleep(2 * time.Millisecond)
			}
			r.nc.Close()
			settled(t, ts, before, "initiator gone mid Data-Out")
			if n := disk.byOp[0x2a].Load(); n != 0 {
				t.Fatalf("the incomplete write reached the store (%d WRITEs)", n)
			}
			if ts.srv.pool.Retained() == 0 {
				t.Fatal("the write's buffer did not go back to the pool")
			}
		})
	}
}

// An initiator that disappears while a long read's Data-In is on its way
// (it never reads it) or while commands wait behind a CmdSN gap, or with
// a TMF waiting (for a command in the store, or parked behind a gap).
func TestInitiatorGoneWithWorkInFlight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		block bool // READs wait in the store until the test ends
		send  func(r *rawInit)
	}{
		{"mid Data-In", false, func(r *rawInit) {
			// 1 MiB reads, none of it read back.
			for i := uint32(0); i < 8; i++ {
				r.cmdAt(1+i, 1+i, []byte{0x28, 0, 0, 0, 0, 0, 0, 0x08, 0, 0}, 1<<20, true, false, nil)
			}
			time.Sleep(100 * time.Millisecond)
		}},
		{"commands behind a CmdSN gap", false, func(r *rawInit) {
			r.cmdAt(3, 3, cdbRead1, 512, true, false, nil)
			r.cmdAt(4, 4, cdbWrite10(8, 1), 512, false, false, make([]byte, 512))
			r.cmdAt(5, 5, cdbWrite10(9, 2), 1024, false, false, make([]byte, 512))
			r.tmf(2, 6, 6, 0, 0, 0, false)     // ABORT TASK SET, parked behind the gap
			time.Sleep(100 * time.Millisecond) // (the write beyond the gap gets its R2T)
		}},
		{"TMF waiting for a command in the store", true, func(r *rawInit) {
			r.cmdAt(1, 1, cdbRead1, 512, true, false, nil)
			time.Sleep(50 * time.Millisecond)
			r.tmf(1, 2, 2, 1, 1, 0, true) // ABORT TASK
			time.Sleep(50 * time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := basicConfig()
			disk := newFakeDisk(8 << 20)
			if tc.block {
				disk.block = make(chan struct{})
				defer close(disk.block)
			}
			ts := startServer(t, cfg, disk)
			before := goroutinesNow()
			r := dialRaw(t, ts.addr, normalKeys())
			tc.send(r)
			r.nc.Close()
			settled(t, ts, before, tc.name)
			if n := disk.byOp[0x2a].Load(); n != 0 {
				t.Fatalf("%d WRITEs behind the gap reached the store", n)
			}
		})
	}
}
