// Command iscsiload is the benchmark's own small iSCSI initiator: N sessions,
// each keeping QD READ(16)/WRITE(16) commands of one size in flight for a
// fixed time, with HeaderDigest and DataDigest CRC32C optionally negotiated.
// It exists because libiscsi (qemu-img, iscsi-perf) can only request header
// digests; it always offers DataDigest=None.
//
// It prints one JSON object on stdout (ops, bytes, seconds, iops, mbps,
// errors and what was negotiated) and exits non-zero only when no I/O at all
// completed. Only used by testdata/bench/bench.py; not part of the product.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/bits"
	mrand "math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ietgo/ietd/target/crc32c"
	"github.com/ietgo/ietd/target/pdu"
)

const (
	opNopOut    = 0x00
	opSCSICmd   = 0x01
	opLoginReq  = 0x03
	opDataOut   = 0x05
	opLogoutReq = 0x06
	opNopIn     = 0x20
	opSCSIResp  = 0x21
	opLoginResp = 0x23
	opDataIn    = 0x25
	opLogoutRsp = 0x26
	opR2T       = 0x31
	opAsync     = 0x32
	opReject    = 0x3f

	bhsLen      = 48
	reservedTag = 0xffffffff
)

type options struct {
	addr, target, initiator string
	lun                     uint64
	rw                      string
	bs, qd, sessions        int
	duration                time.Duration
	digests                 bool
	maxRecv                 int
}

type result struct {
	Ops          int64   `json:"ops"`
	Bytes        int64   `json:"bytes"`
	Seconds      float64 `json:"seconds"`
	IOPS         float64 `json:"iops"`
	MBps         float64 `json:"mbps"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	HeaderDigest bool    `json:"header_digest"`
	DataDigest   bool    `json:"data_digest"`
	Sessions     int     `json:"sessions"`
	QD           int     `json:"qd"`
	BS           int     `json:"bs"`
	RW           string  `json:"rw"`
	BlockSize    uint32  `json:"block_size"`
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:3260", "target portal host:port")
	flag.StringVar(&o.target, "target", "", "target IQN")
	flag.StringVar(&o.initiator, "initiator", "iqn.2024-01.org.ietgo.bench:iscsiload", "initiator name prefix (a session number is appended)")
	flag.Uint64Var(&o.lun, "lun", 0, "LUN")
	flag.StringVar(&o.rw, "rw", "read", "read, write, randread or randwrite")
	flag.IntVar(&o.bs, "bs", 1<<20, "bytes per command (multiple of the block size)")
	flag.IntVar(&o.qd, "qd", 16, "commands in flight per session")
	flag.IntVar(&o.sessions, "sessions", 1, "sessions")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "run time")
	flag.BoolVar(&o.digests, "digests", false, "negotiate HeaderDigest=CRC32C and DataDigest=CRC32C (required)")
	flag.IntVar(&o.maxRecv, "max-recv", 262144, "our MaxRecvDataSegmentLength")
	flag.Parse()
	if o.target == "" || o.bs <= 0 || o.qd <= 0 || o.sessions <= 0 || o.qd > 1024 {
		fmt.Fprintln(os.Stderr, "iscsiload: need -target, positive -bs/-qd/-sessions (qd <= 1024)")
		os.Exit(2)
	}
	res, err := run(o)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if err != nil {
		fmt.Fprintln(os.Stderr, "iscsiload:", err)
	}
	if res.Ops == 0 {
		os.Exit(1)
	}
}

func run(o options) (result, error) {
	res := result{Sessions: o.sessions, QD: o.qd, BS: o.bs, RW: o.rw}
	sessions := make([]*session, 0, o.sessions)
	defer func() {
		for _, s := range sessions {
			s.close()
		}
	}()
	for i := 0; i < o.sessions; i++ {
		s, err := login(o, i)
		if err != nil {
			return res, fmt.Errorf("session %d: %w", i, err)
		}
		sessions = append(sessions, s)
		go s.readLoop()
		// The first commands may end in CHECK CONDITION (unit attention).
		for try := 0; try < 5; try++ {
			if err = s.readCapacity(); err == nil {
				break
			}
		}
		if err != nil {
			return res, fmt.Errorf("session %d: read capacity: %w", i, err)
		}
	}
	s0 := sessions[0]
	res.HeaderDigest, res.DataDigest, res.BlockSize = s0.hd, s0.dd, s0.blockSize
	if o.digests && !(s0.hd && s0.dd) {
		return res, errors.New("target did not accept HeaderDigest=CRC32C and DataDigest=CRC32C")
	}
	if o.bs%int(s0.blockSize) != 0 || uint64(o.bs) > s0.capacity {
		return res, fmt.Errorf("-bs %d is not a multiple of block size %d or exceeds the LUN", o.bs, s0.blockSize)
	}

	var ops, nbytes, nerr atomic.Int64
	var firstErr atomic.Pointer[string]
	start := time.Now()
	deadline := start.Add(o.duration)
	var wg sync.WaitGroup
	for si, s := range sessions {
		nblk := uint64(o.bs) / uint64(s.blockSize)
		span := s.capacity/uint64(s.blockSize) - nblk + 1
		var next atomic.Uint64
		next.Store(uint64(si) * 7919 * nblk % span)
		for w := 0; w < o.qd; w++ {
			wg.Add(1)
			go func(s *session, w int) {
				defer wg.Done()
				buf := make([]byte, o.bs)
				if o.rw == "write" || o.rw == "randwrite" {
					for i := range buf {
						buf[i] = byte(i*31 + w)
					}
				}
				rng := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
				for time.Now().Before(deadline) {
					var lba uint64
					if strings.HasPrefix(o.rw, "rand") {
						lba = rng.Uint64N(span)
					} else {
						lba = (next.Add(nblk) - nblk) % span
					}
					write := strings.HasSuffix(o.rw, "write")
					if err := s.io(write, lba, uint32(nblk), buf); err != nil {
						nerr.Add(1)
						msg := err.Error()
						firstErr.CompareAndSwap(nil, &msg)
						if s.dead() {
							return
						}
						continue
					}
					ops.Add(1)
					nbytes.Add(int64(o.bs))
				}
			}(s, w)
		}
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	for _, s := range sessions {
		s.logout()
	}
	res.Ops, res.Bytes, res.Errors, res.Seconds = ops.Load(), nbytes.Load(), nerr.Load(), secs
	res.IOPS = float64(res.Ops) / secs
	res.MBps = float64(res.Bytes) / secs / 1e6
	if p := firstErr.Load(); p != nil {
		res.FirstError = *p
	}
	return res, nil
}

// ---------------------------------------------------------------- session

type task struct {
	buf    []byte // data-in destination or data-out source
	write  bool
	status byte
	err    error
	done   chan struct{}
	got    int // Data-In bytes received
}

type session struct {
	conn   net.Conn
	br     *bufio.Reader
	lun    [8]byte
	hd, dd bool

	tgtMaxRecv int // largest data segment we may send
	firstBurst int
	immediate  bool
	initialR2T bool
	blockSize  uint32
	capacity   uint64

	sendMu sync.Mutex // commands reach the wire in CmdSN order; never taken by the reader
	wmu    sync.Mutex // one PDU at a time on the wire

	mu        sync.Mutex
	cond      *sync.Cond
	cmdSN     uint32
	maxCmdSN  uint32
	expStatSN uint32
	tasks     map[uint32]*task
	nextITT   uint32
	err       error
	closed    bool
}

func (s *session) dead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err != nil
}

func (s *session) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.conn.Close()
}

func login(o options, n int) (*session, error) {
	conn, err := net.DialTimeout("tcp", o.addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, br: bufio.NewReaderSize(conn, 64<<10), tasks: map[uint32]*task{}, nextITT: 1,
		tgtMaxRecv: 8192, firstBurst: 65536, initialR2T: true}
	s.cond = sync.NewCond(&s.mu)
	encodeLUN(s.lun[:], o.lun)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))

	var isid [6]byte
	_, _ = rand.Read(isid[:])
	isid[0] = 0x80 // random ISID format
	digest := "None"
	if o.digests {
		digest = "CRC32C"
	}
	stages := []struct {
		csg, nsg byte
		keys     []string
	}{
		{0, 1, []string{"InitiatorName=" + o.initiator + strconv.Itoa(n), "TargetName=" + o.target,
			"SessionType=Normal", "AuthMethod=None"}},
		{1, 3, []string{"HeaderDigest=" + digest, "DataDigest=" + digest,
			"MaxRecvDataSegmentLength=" + strconv.Itoa(o.maxRecv), "MaxBurstLength=1048576",
			"FirstBurstLength=262144", "InitialR2T=Yes", "ImmediateData=Yes", "MaxOutstandingR2T=1",
			"DataPDUInOrder=Yes", "DataSequenceInOrder=Yes", "DefaultTime2Wait=0", "DefaultTime2Retain=0",
			"ErrorRecoveryLevel=0", "MaxConnections=1", "IFMarker=No", "OFMarker=No"}},
	}
	got := map[string]string{}
	var tsih uint16
	var statSN uint32
	for _, st := range stages {
		keys := st.keys
		for try := 0; ; try++ {
			if try > 8 {
				conn.Close()
				return nil, errors.New("login does not advance")
			}
			var h [bhsLen]byte
			h[0] = opLoginReq | 0x40
			h[1] = 0x80 | st.csg<<2 | st.nsg
			copy(h[8:14], isid[:])
			binary.BigEndian.PutUint16(h[14:], tsih)
			binary.BigEndian.PutUint32(h[16:], 0)
			binary.BigEndian.PutUint32(h[24:], s.cmdSN)
			binary.BigEndian.PutUint32(h[28:], statSN+1)
			var data []byte
			for _, k := range keys {
				data = append(data, k...)
				data = append(data, 0)
			}
			keys = nil
			setDSL(h[:], len(data))
			if err := s.writePDU(h[:], data, false, false); err != nil {
				conn.Close()
				return nil, err
			}
			rh, rdata, err := s.readLoginPDU()
			if err != nil {
				conn.Close()
				return nil, err
			}
			if rh[0]&0x3f != opLoginResp {
				conn.Close()
				return nil, fmt.Errorf("login: unexpected opcode %#x", rh[0])
			}
			if rh[36] != 0 {
				conn.Close()
				return nil, fmt.Errorf("login rejected: status class %d detail %d", rh[36], rh[37])
			}
			tsih = binary.BigEndian.Uint16(rh[14:])
			statSN = binary.BigEndian.Uint32(rh[24:])
			s.maxCmdSN = binary.BigEndian.Uint32(rh[32:])
			for _, kv := range strings.Split(string(rdata), "\x00") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					got[k] = v
				}
			}
			if rh[1]&0x80 != 0 && rh[1]&3 == st.nsg {
				break
			}
		}
	}
	s.expStatSN = statSN + 1
	s.hd = got["HeaderDigest"] == "CRC32C"
	s.dd = got["DataDigest"] == "CRC32C"
	if v, err := strconv.Atoi(got["MaxRecvDataSegmentLength"]); err == nil && v >= 512 {
		s.tgtMaxRecv = v
	}
	if v, err := strconv.Atoi(got["FirstBurstLength"]); err == nil && v >= 512 {
		s.firstBurst = v
	}
	s.immediate = got["ImmediateData"] == "Yes"
	s.initialR2T = got["InitialR2T"] != "No"
	_ = conn.SetDeadline(time.Time{})
	return s, nil
}

func encodeLUN(b []byte, lun uint64) {
	if lun < 256 {
		b[1] = byte(lun)
		return
	}
	binary.BigEndian.PutUint16(b, 0x4000|uint16(lun&0x3fff))
}

func setDSL(h []byte, n int) {
	h[5], h[6], h[7] = byte(n>>16), byte(n>>8), byte(n)
}

func pad4(n int) int { return (4 - n&3) & 3 }

// writePDU sends header (+digest) and data (+pad, +digest) in one writev.
func (s *session) writePDU(h []byte, data []byte, hd, dd bool) error {
	var hdr [bhsLen + 4]byte
	copy(hdr[:], h)
	bufs := net.Buffers{hdr[:bhsLen]}
	if hd {
		binary.LittleEndian.PutUint32(hdr[bhsLen:], crc32c.Checksum(h[:bhsLen]))
		bufs[0] = hdr[:]
	}
	var tail [8]byte
	if len(data) > 0 {
		bufs = append(bufs, data)
		p := pad4(len(data))
		t := tail[:p]
		if dd {
			binary.LittleEndian.PutUint32(tail[p:], pdu.DataDigest(data))
			t = tail[:p+4]
		}
		if len(t) > 0 {
			bufs = append(bufs, t)
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := bufs.WriteTo(s.conn)
	return err
}

func (s *session) readLoginPDU() ([]byte, []byte, error) {
	h := make([]byte, bhsLen)
	if _, err := io.ReadFull(s.br, h); err != nil {
		return nil, nil, err
	}
	ahs := int(h[4]) * 4
	dsl := int(h[5])<<16 | int(h[6])<<8 | int(h[7])
	if dsl > 1<<20 {
		return nil, nil, fmt.Errorf("login response data segment %d too large", dsl)
	}
	rest := make([]byte, ahs+dsl+pad4(dsl))
	if _, err := io.ReadFull(s.br, rest); err != nil {
		return nil, nil, err
	}
	return h, rest[ahs : ahs+dsl], nil
}

func (s *session) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		if s.closed {
			err = errors.New("session closed")
		}
		s.err = err
	}
	for itt, t := range s.tasks {
		t.err = s.err
		close(t.done)
		delete(s.tasks, itt)
	}
	s.cond.Broadcast()
	s.mu.Unlock()
}

// updateSN takes ExpCmdSN/MaxCmdSN (and StatSN when statusBearing) from a header.
func (s *session) updateSN(h []byte, statusBearing bool) {
	maxCmd := binary.BigEndian.Uint32(h[32:])
	s.mu.Lock()
	if statusBearing {
		if st := binary.BigEndian.Uint32(h[24:]); int32(st+1-s.expStatSN) > 0 {
			s.expStatSN = st + 1
		}
	}
	if int32(maxCmd-s.maxCmdSN) > 0 {
		s.maxCmdSN = maxCmd
		s.cond.Broadcast()
	}
	s.mu.Unlock()
}

func (s *session) readLoop() {
	var h [bhsLen + 4]byte
	var scratch [8]byte
	discard := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(s.br, h[:bhsLen]); err != nil {
			s.fail(fmt.Errorf("read: %w", err))
			return
		}
		ahs := int(h[4]) * 4
		if ahs > 0 {
			if _, err := s.br.Discard(ahs); err != nil {
				s.fail(err)
				return
			}
		}
		if s.hd {
			if _, err := io.ReadFull(s.br, h[bhsLen:]); err != nil {
				s.fail(err)
				return
			}
			if ahs == 0 && binary.LittleEndian.Uint32(h[bhsLen:]) != crc32c.Checksum(h[:bhsLen]) {
				s.fail(errors.New("header digest mismatch"))
				return
			}
		}
		op := h[0] & 0x3f
		dsl := int(h[5])<<16 | int(h[6])<<8 | int(h[7])
		itt := binary.BigEndian.Uint32(h[16:])

		// Where the data segment goes: Data-In straight into the task buffer.
		var dst []byte
		var t *task
		if op == opDataIn || op == opSCSIResp || op == opR2T {
			s.mu.Lock()
			t = s.tasks[itt]
			s.mu.Unlock()
		}
		if op == opDataIn && t != nil {
			off := int(binary.BigEndian.Uint32(h[40:]))
			if off < 0 || off+dsl > len(t.buf) {
				s.fail(fmt.Errorf("Data-In offset %d len %d beyond buffer %d", off, dsl, len(t.buf)))
				return
			}
			dst = t.buf[off : off+dsl]
		}
		var crc uint32
		if dsl > 0 {
			if dst != nil {
				// CRC each chunk as it arrives, while it is in cache
				// (as the Linux initiator does while copying).
				for got := 0; got < len(dst); {
					n, err := s.br.Read(dst[got:])
					if s.dd {
						crc = crc32c.Update(crc, dst[got:got+n])
					}
					got += n
					if err != nil && got < len(dst) {
						s.fail(err)
						return
					}
				}
			} else {
				left := dsl
				for left > 0 {
					n := min(left, len(discard))
					if _, err := io.ReadFull(s.br, discard[:n]); err != nil {
						s.fail(err)
						return
					}
					if s.dd {
						crc = crc32c.Update(crc, discard[:n])
					}
					left -= n
				}
			}
			p := pad4(dsl)
			tl := p
			if s.dd {
				tl += 4
			}
			if _, err := io.ReadFull(s.br, scratch[:tl]); err != nil {
				s.fail(err)
				return
			}
			if s.dd {
				crc = crc32c.Update(crc, scratch[:p])
				if binary.LittleEndian.Uint32(scratch[p:]) != crc {
					s.fail(errors.New("data digest mismatch"))
					return
				}
			}
		}

		switch op {
		case opDataIn:
			statusBearing := h[1]&0x01 != 0
			s.updateSN(h[:], statusBearing)
			if t == nil {
				continue
			}
			t.got += dsl
			if statusBearing {
				s.complete(itt, h[3], nil)
			}
		case opSCSIResp:
			s.updateSN(h[:], true)
			if h[2] != 0 {
				s.complete(itt, 0, fmt.Errorf("iSCSI response %#x", h[2]))
			} else {
				s.complete(itt, h[3], nil)
			}
		case opR2T:
			s.updateSN(h[:], false)
			if t == nil || !t.write {
				continue
			}
			ttt := binary.BigEndian.Uint32(h[20:])
			off := int(binary.BigEndian.Uint32(h[40:]))
			n := int(binary.BigEndian.Uint32(h[44:]))
			if off < 0 || n < 0 || off+n > len(t.buf) {
				s.fail(fmt.Errorf("R2T offset %d len %d beyond buffer %d", off, n, len(t.buf)))
				return
			}
			if err := s.sendData(itt, ttt, t.buf, off, n); err != nil {
				s.fail(err)
				return
			}
		case opNopIn:
			s.updateSN(h[:], itt != reservedTag)
			if ttt := binary.BigEndian.Uint32(h[20:]); ttt != reservedTag {
				var o [bhsLen]byte
				o[0] = opNopOut | 0x40
				o[1] = 0x80
				copy(o[8:16], h[8:16])
				binary.BigEndian.PutUint32(o[16:], reservedTag)
				binary.BigEndian.PutUint32(o[20:], ttt)
				s.mu.Lock()
				binary.BigEndian.PutUint32(o[24:], s.cmdSN)
				binary.BigEndian.PutUint32(o[28:], s.expStatSN)
				s.mu.Unlock()
				if err := s.writePDU(o[:], nil, s.hd, s.dd); err != nil {
					s.fail(err)
					return
				}
			}
		case opLogoutRsp:
			s.updateSN(h[:], true)
			s.fail(errors.New("logged out"))
			return
		case opReject:
			s.updateSN(h[:], true)
			s.fail(fmt.Errorf("target rejected a PDU, reason %#x", h[2]))
			return
		case opAsync:
			s.updateSN(h[:], true)
		default:
			s.fail(fmt.Errorf("unexpected opcode %#x", op))
			return
		}
	}
}

func (s *session) complete(itt uint32, status byte, err error) {
	s.mu.Lock()
	t := s.tasks[itt]
	delete(s.tasks, itt)
	s.mu.Unlock()
	if t == nil {
		return
	}
	t.status, t.err = status, err
	close(t.done)
}

// sendData answers one R2T (or sends immediate-less unsolicited data) as a
// sequence of Data-Out PDUs no larger than the target's MaxRecvDataSegmentLength.
func (s *session) sendData(itt, ttt uint32, buf []byte, off, n int) error {
	var h [bhsLen]byte
	h[0] = opDataOut
	copy(h[8:16], s.lun[:])
	binary.BigEndian.PutUint32(h[16:], itt)
	binary.BigEndian.PutUint32(h[20:], ttt)
	for sn := uint32(0); n > 0; sn++ {
		seg := min(n, s.tgtMaxRecv)
		h[1] = 0
		if seg == n {
			h[1] = 0x80
		}
		s.mu.Lock()
		binary.BigEndian.PutUint32(h[28:], s.expStatSN)
		s.mu.Unlock()
		binary.BigEndian.PutUint32(h[36:], sn)
		binary.BigEndian.PutUint32(h[40:], uint32(off))
		setDSL(h[:], seg)
		if err := s.writePDU(h[:], buf[off:off+seg], s.hd, s.dd); err != nil {
			return err
		}
		off += seg
		n -= seg
	}
	return nil
}

// command issues one SCSI command and waits for its status.
func (s *session) command(cdb []byte, buf []byte, write bool, edtl int) error {
	t := &task{buf: buf, write: write, done: make(chan struct{})}
	var h [bhsLen]byte
	h[0] = opSCSICmd
	h[1] = 0x80 | 0x01 // final, simple task attribute
	if write {
		h[1] |= 0x20
	} else if edtl > 0 {
		h[1] |= 0x40
	}
	copy(h[8:16], s.lun[:])
	binary.BigEndian.PutUint32(h[20:], uint32(edtl))
	copy(h[32:48], cdb)
	var imm []byte
	if write && s.immediate {
		imm = buf[:min(edtl, s.firstBurst, s.tgtMaxRecv)]
	}
	setDSL(h[:], len(imm))

	s.sendMu.Lock()
	s.mu.Lock()
	for s.err == nil && int32(s.cmdSN-s.maxCmdSN) > 0 {
		s.cond.Wait()
	}
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		s.sendMu.Unlock()
		return err
	}
	itt := s.nextITT
	s.nextITT++
	if s.nextITT == reservedTag {
		s.nextITT = 1
	}
	s.tasks[itt] = t
	binary.BigEndian.PutUint32(h[16:], itt)
	binary.BigEndian.PutUint32(h[24:], s.cmdSN)
	binary.BigEndian.PutUint32(h[28:], s.expStatSN)
	s.cmdSN++
	s.mu.Unlock()
	// The reader must never wait for a writer (the target may be blocked
	// sending to us), so only sendMu, which it never takes, spans the write.
	err := s.writePDU(h[:], imm, s.hd, s.dd)
	s.sendMu.Unlock()
	if err != nil {
		s.fail(err)
		return err
	}
	if write && !s.initialR2T && len(imm) < edtl {
		// Unsolicited data up to FirstBurstLength.
		end := min(edtl, s.firstBurst)
		if end > len(imm) {
			if err := s.sendData(itt, reservedTag, buf, len(imm), end-len(imm)); err != nil {
				s.fail(err)
				return err
			}
		}
	}
	select {
	case <-t.done:
	case <-time.After(60 * time.Second):
		return errors.New("command timed out")
	}
	if t.err != nil {
		return t.err
	}
	if t.status != 0 {
		return fmt.Errorf("SCSI status %#x", t.status)
	}
	if !write && edtl > 0 && t.got < edtl {
		return fmt.Errorf("short read: %d of %d bytes", t.got, edtl)
	}
	return nil
}

func (s *session) io(write bool, lba uint64, nblk uint32, buf []byte) error {
	var cdb [16]byte
	cdb[0] = 0x88 // READ(16)
	if write {
		cdb[0] = 0x8a // WRITE(16)
	}
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], nblk)
	return s.command(cdb[:], buf, write, int(nblk)*int(s.blockSize))
}

func (s *session) readCapacity() error {
	var cdb [16]byte
	cdb[0] = 0x9e
	cdb[1] = 0x10
	binary.BigEndian.PutUint32(cdb[10:], 32)
	buf := make([]byte, 32)
	if err := s.command(cdb[:], buf, false, 32); err != nil {
		return err
	}
	last := binary.BigEndian.Uint64(buf[0:])
	bs := binary.BigEndian.Uint32(buf[8:])
	if bs == 0 || bits.OnesCount32(bs) != 1 {
		return fmt.Errorf("odd block size %d", bs)
	}
	s.blockSize, s.capacity = bs, (last+1)*uint64(bs)
	return nil
}

func (s *session) logout() {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return
	}
	var h [bhsLen]byte
	h[0] = opLogoutReq | 0x40
	h[1] = 0x80
	binary.BigEndian.PutUint32(h[16:], s.nextITT)
	binary.BigEndian.PutUint32(h[24:], s.cmdSN)
	binary.BigEndian.PutUint32(h[28:], s.expStatSN)
	s.mu.Unlock()
	if s.writePDU(h[:], nil, s.hd, s.dd) != nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !s.dead() {
		time.Sleep(5 * time.Millisecond)
	}
}
