package iscsi

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
	"github.com/ietgo/ietd/target/scsi"
)

// fuzzPDUs is a stream of full-feature-phase PDUs as an initiator logged
// in by dialRaw (CmdSN 1 next) could send them, for the fuzz corpus.
type fuzzPDUs struct {
	buf   []byte
	cmdSN uint32
}

func (s *fuzzPDUs) add(h pdu.BHS, data []byte) {
	h.SetDataLen(len(data))
	bufs, _ := pdu.AppendPDU(nil, nil, &h, data, false, false)
	for _, b := range bufs {
		s.buf = append(s.buf, b...)
	}
}

func (s *fuzzPDUs) command(flags byte, itt, edtl uint32, cdb, imm []byte) {
	var h pdu.BHS
	h.SetOpcode(pdu.OpSCSICmd)
	h.SetFlags(flags)
	h.SetU32(pdu.OffITT, itt)
	h.SetU32(pdu.OffTTT, edtl)
	h.SetU32(pdu.OffCmdSN, s.cmdSN)
	s.cmdSN++
	copy(h.CDB(), cdb)
	s.add(h, imm)
}

func (s *fuzzPDUs) immediate(op pdu.Opcode, flags byte, itt, ttt uint32, data []byte) {
	var h pdu.BHS
	h.SetOpcode(op)
	h[0] |= 0x40
	h.SetFlags(flags)
	h.SetU32(pdu.OffITT, itt)
	h.SetU32(pdu.OffTTT, ttt)
	h.SetU32(pdu.OffCmdSN, s.cmdSN)
	s.add(h, data)
}

func (s *fuzzPDUs) dataOut(itt, ttt, sn, off uint32, final bool, data []byte) {
	s.add(dataOutHeader(itt, ttt, sn, off, final), data)
}

// seedAdder returns a function that appends to seeds the stream build
// writes (CmdSN 1 first).
func seedAdder(seeds *[][]byte) func(build func(s *fuzzPDUs)) {
	return func(build func(s *fuzzPDUs)) {
		s := &fuzzPDUs{cmdSN: 1}
		build(s)
		*seeds = append(*seeds, s.buf)
	}
}

// fuzzSeeds are streams of the requests a full-feature phase carries.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	seq := seedAdder(&seeds)
	block := make([]byte, 512)
	for i := range block {
		block[i] = byte(i)
	}
	seq(func(s *fuzzPDUs) { // TEST UNIT READY, READ(10)
		s.command(pdu.FlagFinal|1, 1, 0, []byte{0x00, 0, 0, 0, 0, 0}, nil)
		s.command(pdu.FlagFinal|pdu.FlagRead|1, 2, 1024, []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0}, nil)
	})
	seq(func(s *fuzzPDUs) { // READ(16) and WRITE(16) far beyond the end (an LBA that overflows a byte offset)
		s.command(pdu.FlagFinal|pdu.FlagRead|1, 1, 512, []byte{0x88, 0, 0, 0x40, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}, nil)
		s.command(pdu.FlagFinal|pdu.FlagWrite|1, 2, 512, []byte{0x8a, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0}, block)
	})
	seq(func(s *fuzzPDUs) { // WRITE(10) of two blocks: one immediate, one solicited
		s.command(pdu.FlagFinal|pdu.FlagWrite|1, 1, 1024, []byte{0x2a, 0, 0, 0, 0, 4, 0, 0, 2, 0}, block)
		s.dataOut(1, 0x1000, 0, 512, true, block)
	})
	seq(func(s *fuzzPDUs) { // WRITE(10), unsolicited Data-Out (InitialR2T=No is not negotiated: an error)
		s.command(pdu.FlagWrite|1, 1, 1024, []byte{0x2a, 0, 0, 0, 0, 0, 0, 0, 2, 0}, nil)
		s.dataOut(1, pdu.ReservedTag, 0, 0, false, block)
		s.dataOut(1, pdu.ReservedTag, 1, 512, true, block)
	})
	seq(func(s *fuzzPDUs) { // NOP-Out ping with data, then a reply to a target NOP-In
		s.immediate(pdu.OpNOPOut, pdu.FlagFinal, 7, pdu.ReservedTag, []byte("ping"))
		s.immediate(pdu.OpNOPOut, pdu.FlagFinal, pdu.ReservedTag, 1, nil)
	})
	seq(func(s *fuzzPDUs) { // a READ, ABORT TASK of it, LU RESET, TARGET WARM RESET
		s.command(pdu.FlagFinal|pdu.FlagRead|1, 1, 512, []byte{0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0}, nil)
		for i, fn := range []byte{1, 5, 6} {
			var h pdu.BHS
			h.SetOpcode(pdu.OpTMFReq)
			h[0] |= 0x40
			h.SetFlags(pdu.FlagFinal | fn)
			h.SetU32(pdu.OffITT, 100+uint32(i))
			h.SetU32(pdu.OffTTT, 1)
			h.SetU32(pdu.OffCmdSN, s.cmdSN)
			s.add(h, nil)
		}
	})
	seq(func(s *fuzzPDUs) { // SendTargets, then a continued Text request
		s.immediate(pdu.OpTextReq, pdu.FlagFinal, 10, pdu.ReservedTag,
			login.EncodeKeys([]login.KV{{Key: "SendTargets", Value: "All"}}))
		s.immediate(pdu.OpTextReq, 0x40, 11, pdu.ReservedTag, []byte("MaxBurstLe"))
		s.immediate(pdu.OpTextReq, pdu.FlagFinal, 11, pdu.ReservedTag, []byte("ngth=4096\x00"))
	})
	seq(func(s *fuzzPDUs) { // SNACK (ErrorRecoveryLevel 0: rejected), then a logout
		s.immediate(pdu.OpSNACK, pdu.FlagFinal, 20, pdu.ReservedTag, nil)
		s.immediate(pdu.OpLogoutReq, pdu.FlagFinal, 21, pdu.ReservedTag, nil)
	})
	return seeds
}

// FuzzFullFeaturePhase sends what follows a successful login to a running
// server as it comes: requests, data and junk in any order. The server
// must not panic, and once the initiator has sent everything and shut
// its side down it must answer what it answers and close the connection
// within a bounded time (no hang on a half-sent command or a stalled
// window).
func FuzzFullFeaturePhase(f *testing.F) {
	fuzzServer(f, fuzzSeeds(), func(t *testing.T) *rawInit {
		cfg, _ := basicConfig()
		return dialRaw(t, startServer(t, cfg, newFakeDisk(1<<20)).addr, normalKeys())
	})
}

// deviceSeeds add to fuzzSeeds the SCSI commands whose state outlives
// one command (reservations, compare and write, unmap), for the real
// SCSI device.
func deviceSeeds() [][]byte {
	seeds := fuzzSeeds()
	s := &fuzzPDUs{cmdSN: 1}
	reg := make([]byte, 24) // PR OUT REGISTER service action key 1
	reg[15] = 1
	s.command(pdu.FlagFinal|pdu.FlagWrite|1, 1, 24, []byte{0x5f, 0x00, 0, 0, 0, 0, 0, 0, 24, 0}, reg)
	res := make([]byte, 24) // PR OUT RESERVE, write exclusive, key 1
	res[7] = 1
	s.command(pdu.FlagFinal|pdu.FlagWrite|1, 2, 24, []byte{0x5f, 0x01, 0x01, 0, 0, 0, 0, 0, 24, 0}, res)
	s.command(pdu.FlagFinal|pdu.FlagRead|1, 3, 256, []byte{0x5e, 0x01, 0, 0, 0, 0, 0, 1, 0, 0}, nil)
	caw := make([]byte, 1024) // COMPARE AND WRITE of one block: zeros, then the new data
	s.command(pdu.FlagFinal|pdu.FlagWrite|1, 4, 1024, []byte{0x89, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0}, caw)
	unmap := []byte{0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0}
	s.command(pdu.FlagFinal|pdu.FlagWrite|1, 5, 24, []byte{0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0}, unmap)
	s.command(pdu.FlagFinal|1, 6, 0, []byte{0x1d, 0x04, 0, 0, 0, 0}, nil) // SEND DIAGNOSTIC self-test
	return append(seeds, s.buf)
}

// FuzzFullFeaturePhaseDevice is FuzzFullFeaturePhase on the real SCSI
// device (a memory store), so that transport and device meet: aborts,
// resets and nexus loss reach commands the device is running.
func FuzzFullFeaturePhaseDevice(f *testing.F) {
	fuzzServer(f, deviceSeeds(), func(t *testing.T) *rawInit {
		cfg, _ := basicConfig()
		ts := startServerWith(t, cfg, nil, Options{NewDevice: func(tc *config.Target, o scsi.Options) (Device, error) {
			o.OpenStore = func(*config.LUN) (backing.Store, error) { return backing.NewMemory(1 << 20), nil }
			return scsi.NewTarget(tc, o)
		}})
		return dialRaw(t, ts.addr, normalKeys())
	})
}

// loginSeeds are streams that open a connection: logins in one step and
// in two, with a continued key list, for discovery and for a target,
// each followed by a first request.
func loginSeeds() [][]byte {
	var seeds [][]byte
	seq := seedAdder(&seeds)
	keys := func(kv ...login.KV) []byte { return login.EncodeKeys(kv) }
	seq(func(s *fuzzPDUs) { // normal session in one step, then TEST UNIT READY
		s.add(loginReq(pdu.FlagTransit|1<<2|3, 1), login.EncodeKeys(normalKeys()))
		s.command(pdu.FlagFinal|1, 1, 0, []byte{0x00, 0, 0, 0, 0, 0}, nil)
	})
	seq(func(s *fuzzPDUs) { // discovery, then SendTargets
		s.add(loginReq(pdu.FlagTransit|1<<2|3, 2), keys(login.KV{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"},
			login.KV{Key: "SessionType", Value: "Discovery"}))
		s.immediate(pdu.OpTextReq, pdu.FlagFinal, 10, pdu.ReservedTag, keys(login.KV{Key: "SendTargets", Value: "All"}))
	})
	seq(func(s *fuzzPDUs) { // security stage (AuthMethod None), then operational, the keys continued
		s.add(loginReq(pdu.FlagTransit|0<<2|1, 3), keys(login.KV{Key: "InitiatorName", Value: "iqn.2026-01.test:raw"},
			login.KV{Key: "TargetName", Value: testIQN}, login.KV{Key: "AuthMethod", Value: "None"}))
		ops := login.EncodeKeys([]login.KV{{Key: "HeaderDigest", Value: "None"}, {Key: "MaxRecvDataSegmentLength", Value: "8192"},
			{Key: "ImmediateData", Value: "Yes"}, {Key: "InitialR2T", Value: "No"}})
		s.add(loginReq(pdu.FlagContinue|1<<2|3, 3), ops[:20])
		s.add(loginReq(pdu.FlagTransit|1<<2|3, 3), ops[20:])
		s.immediate(pdu.OpLogoutReq, pdu.FlagFinal, 21, pdu.ReservedTag, nil)
	})
	return seeds
}

// FuzzLoginPhase is FuzzFullFeaturePhase from the first byte of a
// connection: logins and whatever follows them.
func FuzzLoginPhase(f *testing.F) {
	fuzzServer(f, loginSeeds(), func(t *testing.T) *rawInit {
		cfg, _ := basicConfig()
		return rawConn(t, startServer(t, cfg, newFakeDisk(1<<20)).addr)
	})
}

// fuzzServer fuzzes streams of up to 64 KiB, seeded with seeds, each sent
// by sendStream on the connection connect opens to a new server.
func fuzzServer(f *testing.F, seeds [][]byte, connect func(t *testing.T) *rawInit) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		if len(stream) > 64<<10 {
			return
		}
		sendStream(t, connect(t), stream)
	})
}

// sendStream sends stream on r's connection and, once the server has
// been quiet for a moment (so that the commands run rather than meet the
// teardown), shuts the sending side down. The server must answer only
// with well-formed PDUs and close the connection within a bounded time.
func sendStream(t *testing.T, r *rawInit, stream []byte) {
	tc := r.nc.(*net.TCPConn)
	// The server's answers are read meanwhile, so that it never
	// blocks on a full socket while the stream is still going in.
	// Every answer must be a well-formed PDU.
	drained := make(chan error, 1)
	var last atomic.Int64 // when the last answer came (UnixNano)
	last.Store(time.Now().UnixNano())
	go func() {
		tc.SetReadDeadline(time.Now().Add(20 * time.Second))
		var p rawPDU
		for {
			if err := r.rd.ReadHeader(&p.Header); err != nil {
				drained <- err
				return
			}
			p.data = make([]byte, p.DataLen())
			if err := r.rd.ReadData(p.data); err != nil {
				drained <- err
				return
			}
			last.Store(time.Now().UnixNano())
		}
	}()
	tc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := tc.Write(stream); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server stopped reading a %d-byte stream", len(stream))
	}
	last.Store(time.Now().UnixNano())
	const quiet = 2 * time.Millisecond
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		if time.Since(time.Unix(0, last.Load())) >= quiet {
			break
		}
		time.Sleep(quiet / 2)
	}
	tc.CloseWrite()
	switch err := <-drained; {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("the connection stayed open 20 s after the initiator shut its side down")
	case err == io.EOF, errors.Is(err, syscall.ECONNRESET):
	default:
		t.Fatalf("the server's answer is not a well-formed PDU: %v", err)
	}
}
