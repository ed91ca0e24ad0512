//go:build linux

package e2e

// A small iSCSI initiator (one connection per session, one command at a
// time unless the raw helpers are used) built on wire_test.go.

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

const testInitiator = "iqn.2026-01.org.ietgo.e2e:initiator"

// clientConn is one initiator connection.
type clientConn struct {
	nc        net.Conn
	hd, dd    bool // digests in force
	isid      [6]byte
	tsih      uint16
	nextITT   uint32
	cmdSN     uint32
	expStatSN uint32
	maxCmdSN  uint32
	timeout   time.Duration

	// Negotiated results of the last login.
	targetMaxRecv int // largest data segment we may send
	firstBurst    int
	maxBurst      int
	immediateData bool
	initialR2T    bool
	keys          []keyValue // every key the target sent during login

	// Unsolicited PDUs seen while waiting for something else.
	asyncs   []*pdu
	nopPings int
}

// dial connects to addr with a per-operation timeout.
func dial(addr string, timeout time.Duration) (*clientConn, error) {
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c := &clientConn{nc: nc, timeout: timeout, nextITT: 1, cmdSN: 1, targetMaxRecv: 8192,
		firstBurst: 65536, maxBurst: 262144, immediateData: true, initialR2T: true}
	c.isid = [6]byte{0x80, 0, 0, 0, 0, 0}
	rand.Read(c.isid[1:4])
	return c, nil
}

func (c *clientConn) close() error { return c.nc.Close() }

func (c *clientConn) newITT() uint32 {
	v := c.nextITT
	c.nextITT++
	if c.nextITT == noTag {
		c.nextITT = 1
	}
	return v
}

// send writes one PDU with the digests in force.
func (c *clientConn) send(p *pdu) error {
	return c.sendRaw(encodePDU(p, c.hd, c.dd))
}

func (c *clientConn) sendRaw(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	_, err := c.nc.Write(b)
	return err
}

// recvAny reads the next PDU, whatever it is.
func (c *clientConn) recvAny() (*pdu, error) {
	c.nc.SetReadDeadline(time.Now().Add(c.timeout))
	return readPDU(c.nc, c.hd, c.dd)
}

// recv reads the next PDU that is not an unsolicited NOP-In ping (answered)
// or an async message (recorded).
func (c *clientConn) recv() (*pdu, error) {
	for range 1000 {
		p, err := c.recvAny()
		if err != nil {
			return nil, err
		}
		c.trackSN(p)
		switch p.h.opcode() {
		case opNOPIn:
			if p.h.itt() == noTag {
				c.nopPings++
				if ttt := p.h.u32(20); ttt != noTag {
					if err := c.answerPing(ttt, p.data); err != nil {
						return nil, err
					}
				}
				continue
			}
		case opAsyncMsg:
			c.asyncs = append(c.asyncs, p)
			continue
		}
		return p, nil
	}
	return nil, errors.New("too many unsolicited PDUs")
}

// trackSN follows StatSN and the command window from target PDUs.
func (c *clientConn) trackSN(p *pdu) {
	op := p.h.opcode()
	switch op {
	case opSCSIResp, opTMFResp, opTextResp, opLogoutResp, opReject, opAsyncMsg, opLoginResp:
		c.advanceStatSN(p.h.u32(24))
	case opNOPIn:
		if p.h.itt() != noTag {
			c.advanceStatSN(p.h.u32(24))
		}
	case opDataIn:
		if p.h.flags()&0x01 != 0 {
			c.advanceStatSN(p.h.u32(24))
		}
	}
	if op != opLoginResp && op != opReject {
		if m := p.h.u32(32); int32(m-c.maxCmdSN) > 0 || c.maxCmdSN == 0 {
			c.maxCmdSN = m
		}
	}
}

func (c *clientConn) advanceStatSN(statSN uint32) {
	if int32(statSN+1-c.expStatSN) > 0 {
		c.expStatSN = statSN + 1
	}
}

func (c *clientConn) answerPing(ttt uint32, data []byte) error {
	p := &pdu{data: data}
	p.h[0] = opNOPOut | opImmediate
	p.h[1] = flagFinal
	p.h.put32(16, noTag)
	p.h.put32(20, ttt)
	p.h.put32(24, c.cmdSN)
	p.h.put32(28, c.expStatSN)
	return c.send(p)
}

// rejectError is a Reject PDU received instead of an answer.
type rejectError struct {
	reason byte
	header []byte
}

func (e *rejectError) Error() string { return fmt.Sprintf("reject reason %#x", e.reason) }

func asReject(p *pdu) error {
	return &rejectError{reason: p.h[2], header: p.data}
}

// ---- login ----------------------------------------------------------------

// chapCreds are the initiator's CHAP account and, for mutual CHAP, what the
// target must prove it knows.
type chapCreds struct {
	user, secret string
	// mutual: when targetSecret is set we challenge the target.
	targetUser, targetSecret string
	// override the response (for wrong/replayed answers): raw CHAP_R value.
	response string
	// challenge override for mutual CHAP (raw CHAP_C value).
	challenge string
	// reflect sends the target's own CHAP_I/CHAP_C back as our challenge.
	reflect bool
}

type loginOpts struct {
	initiator     string
	target        string // "" = discovery session
	chap          *chapCreds
	authMethod    string // override the AuthMethod offer
	headerDigest  string // offer; "" = None
	dataDigest    string
	skipSecurity  bool
	extra         []keyValue // sent in the first PDU
	maxRecv       int        // our MaxRecvDataSegmentLength (default 262144)
	firstBurst    int
	maxBurst      int
	initialR2T    string // "Yes"/"No", default "No"
	immediateData string // default "Yes"
}

// loginStatusError is a login refused by the target.
type loginStatusError struct{ class, detail byte }

func (e *loginStatusError) Error() string {
	return fmt.Sprintf("login status %#02x%02x", e.class, e.detail)
}

func (e *loginStatusError) code() uint16 { return uint16(e.class)<<8 | uint16(e.detail) }

// loginPDU builds a login request.
func (c *clientConn) loginPDU(itt uint32, csg, nsg byte, transit bool, kvs []keyValue) *pdu {
	p := &pdu{data: encodeKeys(kvs)}
	p.h[0] = opLoginReq | opImmediate
	f := csg<<2 | nsg
	if transit {
		f |= loginTransit
	}
	p.h[1] = f
	copy(p.h[8:14], c.isid[:])
	binary.BigEndian.PutUint16(p.h[14:], c.tsih)
	p.h.put32(16, itt)
	p.h.put32(24, c.cmdSN)
	p.h.put32(28, c.expStatSN)
	return p
}

// loginExchange sends one login request and gathers the whole response
// (following the C bit), returning the final response header and keys.
func (c *clientConn) loginExchange(itt uint32, csg, nsg byte, transit bool, kvs []keyValue) (*pdu, []keyValue, error) {
	if err := c.send(c.loginPDU(itt, csg, nsg, transit, kvs)); err != nil {
		return nil, nil, err
	}
	var data []byte
	for range 64 {
		p, err := c.recvAny()
		if err != nil {
			return nil, nil, err
		}
		if p.h.opcode() == opReject {
			return nil, nil, asReject(p)
		}
		if p.h.opcode() != opLoginResp {
			return nil, nil, fmt.Errorf("login: unexpected %v", p)
		}
		c.trackSN(p)
		if p.h[36] != 0 {
			return p, nil, &loginStatusError{p.h[36], p.h[37]}
		}
		c.tsih = binary.BigEndian.Uint16(p.h[14:])
		data = append(data, p.data...)
		if p.h.flags()&loginContinue == 0 {
			got, err := decodeKeys(data)
			c.keys = append(c.keys, got...)
			return p, got, err
		}
		if err := c.send(c.loginPDU(itt, csg, nsg, false, nil)); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, errors.New("login: endless continuation")
}

func chapResponse(id byte, secret string, challenge []byte) []byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return h.Sum(nil)
}

// decodeCHAPBinary decodes a CHAP binary value (0x hex or 0b base64).
func decodeCHAPBinary(s string) ([]byte, error) {
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		return hex.DecodeString(s[2:])
	case strings.HasPrefix(s, "0b") || strings.HasPrefix(s, "0B"):
		return base64.StdEncoding.DecodeString(s[2:])
	}
	return nil, fmt.Errorf("bad CHAP binary %q", s)
}

// login runs a whole login; on success the connection is in full feature
// phase with the digests negotiated.
func (c *clientConn) login(o loginOpts) error {
	if o.initiator == "" {
		o.initiator = testInitiator
	}
	names := []keyValue{{"InitiatorName", o.initiator}}
	if o.target == "" {
		names = append(names, keyValue{"SessionType", "Discovery"})
	} else {
		names = append(names, keyValue{"SessionType", "Normal"}, keyValue{"TargetName", o.target})
	}
	names = append(names, o.extra...)
	itt := c.newITT()
	c.keys = nil

	if !o.skipSecurity {
		auth := o.authMethod
		if auth == "" {
			auth = "None"
			if o.chap != nil {
				auth = "CHAP,None"
			}
		}
		kvs := append(names, keyValue{"AuthMethod", auth})
		names = nil
		_, got, err := c.loginExchange(itt, 0, 1, o.chap == nil, kvs)
		if err != nil {
			return err
		}
		if o.chap != nil {
			if m, _ := lookupKey(got, "AuthMethod"); m != "CHAP" {
				return fmt.Errorf("target chose AuthMethod=%q", m)
			}
			if err := c.doCHAP(itt, o.chap); err != nil {
				return err
			}
		}
	}
	// Operational stage.
	op := c.operationalKeys(o)
	kvs := append(names, op...)
	for range 8 {
		p, got, err := c.loginExchange(itt, 1, 3, true, kvs)
		if err != nil {
			return err
		}
		_ = got
		kvs = nil
		if p.h.flags()&loginTransit != 0 && p.h.flags()&0x03 == 3 {
			c.applyNegotiation(o)
			c.cmdSN = p.h.u32(28)
			c.maxCmdSN = p.h.u32(32)
			return nil
		}
	}
	return errors.New("login: target never moved to full feature phase")
}

func (c *clientConn) doCHAP(itt uint32, cr *chapCreds) error {
	_, got, err := c.loginExchange(itt, 0, 1, false, []keyValue{{"CHAP_A", "5"}})
	if err != nil {
		return err
	}
	if a, _ := lookupKey(got, "CHAP_A"); a != "5" {
		return fmt.Errorf("target CHAP_A=%q", a)
	}
	idS, _ := lookupKey(got, "CHAP_I")
	chS, _ := lookupKey(got, "CHAP_C")
	id, err := strconv.Atoi(idS)
	if err != nil || id < 0 || id > 255 {
		return fmt.Errorf("bad CHAP_I %q", idS)
	}
	ch, err := decodeCHAPBinary(chS)
	if err != nil {
		return err
	}
	resp := "0x" + hex.EncodeToString(chapResponse(byte(id), cr.secret, ch))
	if cr.response != "" {
		resp = cr.response
	}
	kvs := []keyValue{{"CHAP_N", cr.user}, {"CHAP_R", resp}}
	var myID byte
	var myCh []byte
	if cr.targetSecret != "" {
		var b [1]byte
		rand.Read(b[:])
		myID = b[0]
		myCh = make([]byte, 16)
		rand.Read(myCh)
		chv := "0x" + hex.EncodeToString(myCh)
		if cr.challenge != "" {
			chv = cr.challenge
			if d, err := decodeCHAPBinary(chv); err == nil {
				myCh = d
			}
		}
		if cr.reflect {
			myID, myCh, chv = byte(id), ch, chS
		}
		kvs = append(kvs, keyValue{"CHAP_I", strconv.Itoa(int(myID))}, keyValue{"CHAP_C", chv})
	}
	p, got, err := c.loginExchange(itt, 0, 1, true, kvs)
	if err != nil {
		return err
	}
	if cr.targetSecret != "" {
		n, _ := lookupKey(got, "CHAP_N")
		r, _ := lookupKey(got, "CHAP_R")
		rb, err := decodeCHAPBinary(r)
		if err != nil {
			return fmt.Errorf("mutual CHAP: %w", err)
		}
		if n != cr.targetUser || string(rb) != string(chapResponse(myID, cr.targetSecret, myCh)) {
			return fmt.Errorf("mutual CHAP: target proved wrong identity (%q)", n)
		}
	}
	if p.h.flags()&loginTransit == 0 {
		return errors.New("target did not leave the security stage after CHAP")
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orDefaultInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func (c *clientConn) operationalKeys(o loginOpts) []keyValue {
	kvs := []keyValue{
		{"HeaderDigest", orDefault(o.headerDigest, "None")},
		{"DataDigest", orDefault(o.dataDigest, "None")},
		{"MaxRecvDataSegmentLength", strconv.Itoa(orDefaultInt(o.maxRecv, 262144))},
		{"DefaultTime2Wait", "0"},
		{"DefaultTime2Retain", "0"},
		{"IFMarker", "No"},
		{"OFMarker", "No"},
		{"ErrorRecoveryLevel", "0"},
	}
	if o.target != "" {
		kvs = append(kvs,
			keyValue{"InitialR2T", orDefault(o.initialR2T, "No")},
			keyValue{"ImmediateData", orDefault(o.immediateData, "Yes")},
			keyValue{"MaxBurstLength", strconv.Itoa(orDefaultInt(o.maxBurst, 262144))},
			keyValue{"FirstBurstLength", strconv.Itoa(orDefaultInt(o.firstBurst, 65536))},
			keyValue{"MaxOutstandingR2T", "1"},
			keyValue{"MaxConnections", "1"},
			keyValue{"DataPDUInOrder", "Yes"},
			keyValue{"DataSequenceInOrder", "Yes"},
		)
	}
	return kvs
}

func (c *clientConn) applyNegotiation(o loginOpts) {
	get := func(k string) (string, bool) { return lookupKey(c.keys, k) }
	num := func(k string, mine int) int {
		if v, ok := get(k); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return min(n, mine)
			}
		}
		return mine
	}
	c.targetMaxRecv = 8192
	if v, ok := get("MaxRecvDataSegmentLength"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.targetMaxRecv = n
		}
	}
	c.maxBurst = num("MaxBurstLength", orDefaultInt(o.maxBurst, 262144))
	c.firstBurst = num("FirstBurstLength", orDefaultInt(o.firstBurst, 65536))
	c.initialR2T = orDefault(o.initialR2T, "No") == "Yes"
	if v, ok := get("InitialR2T"); ok {
		c.initialR2T = v == "Yes"
	}
	c.immediateData = orDefault(o.immediateData, "Yes") == "Yes"
	if v, ok := get("ImmediateData"); ok {
		c.immediateData = v == "Yes"
	}
	hd, _ := get("HeaderDigest")
	dd, _ := get("DataDigest")
	c.hd = hd == "CRC32C"
	c.dd = dd == "CRC32C"
}

// ---- full feature phase ----------------------------------------------------

// scsiResult is the outcome of one SCSI command.
type scsiResult struct {
	response byte
	status   byte
	sense    senseInfo
	hasSense bool
	data     []byte
	residual uint32
	under    bool
	over     bool
}

func (r *scsiResult) String() string {
	s := fmt.Sprintf("response %#x status %#x", r.response, r.status)
	if r.hasSense {
		s += " " + r.sense.String()
	}
	return s
}

// ok reports GOOD status.
func (r *scsiResult) ok() bool { return r.response == 0 && r.status == 0 }

// cmdPDU builds a SCSI Command PDU (not sent) and consumes a CmdSN.
func (c *clientConn) cmdPDU(lun uint64, cdb []byte, edtl int, write, read bool) *pdu {
	p := &pdu{}
	p.h[0] = opSCSICmd
	f := byte(flagFinal | taskSimple)
	if write {
		f |= flagWrite
	}
	if read {
		f |= flagRead
	}
	p.h[1] = f
	p.h.setLUN(lun)
	p.h.put32(16, c.newITT())
	p.h.put32(20, uint32(edtl))
	p.h.put32(24, c.cmdSN)
	c.cmdSN++
	p.h.put32(28, c.expStatSN)
	copy(p.h[32:48], cdb)
	return p
}

// command runs one SCSI command to completion: out is write data (nil for
// none), inLen the expected read length.
func (c *clientConn) command(lun uint64, cdb []byte, out []byte, inLen int) (*scsiResult, error) {
	edtl := inLen
	if out != nil {
		edtl = len(out)
	}
	p := c.cmdPDU(lun, cdb, edtl, len(out) > 0, inLen > 0)
	itt := p.h.itt()
	sent := 0
	if len(out) > 0 && c.immediateData {
		n := min(len(out), c.firstBurst, c.targetMaxRecv)
		p.data = out[:n]
		sent = n
	}
	if len(out) > 0 && sent == len(out) {
		// all in immediate data: F already set
	} else if len(out) > 0 && !c.initialR2T {
		p.h[1] &^= flagFinal
		if sent >= min(len(out), c.firstBurst) {
			p.h[1] |= flagFinal
		}
	}
	if err := c.send(p); err != nil {
		return nil, err
	}
	if len(out) > 0 && !c.initialR2T {
		end := min(len(out), c.firstBurst)
		if err := c.sendDataOut(itt, noTag, out, sent, end); err != nil {
			return nil, err
		}
	}
	res := &scsiResult{}
	var in []byte
	if inLen > 0 {
		in = make([]byte, inLen)
	}
	var nextDataSN uint32
	got := 0
	for range 1 << 20 {
		r, err := c.recv()
		if err != nil {
			return nil, err
		}
		if r.h.opcode() == opReject {
			return nil, asReject(r)
		}
		if r.h.itt() != itt {
			return nil, fmt.Errorf("PDU for another task: %v (want itt %#x)", r, itt)
		}
		switch r.h.opcode() {
		case opR2T:
			off, n := int(r.h.u32(40)), int(r.h.u32(44))
			if off < 0 || n <= 0 || off+n > len(out) || n > c.maxBurst {
				return nil, fmt.Errorf("bad R2T offset %d length %d (data %d, MaxBurst %d)", off, n, len(out), c.maxBurst)
			}
			if err := c.sendDataOut(itt, r.h.u32(20), out, off, off+n); err != nil {
				return nil, err
			}
		case opDataIn:
			if sn := r.h.u32(36); sn != nextDataSN {
				return nil, fmt.Errorf("Data-In DataSN %d, want %d", sn, nextDataSN)
			}
			nextDataSN++
			off := int(r.h.u32(40))
			if off != got {
				return nil, fmt.Errorf("Data-In offset %d, want %d", off, got)
			}
			if off+len(r.data) > len(in) {
				return nil, fmt.Errorf("Data-In overruns buffer: %d+%d > %d", off, len(r.data), len(in))
			}
			copy(in[off:], r.data)
			got += len(r.data)
			if r.h.flags()&0x01 != 0 {
				res.status = r.h[3]
				res.residual = r.h.u32(44)
				res.under = r.h.flags()&0x02 != 0
				res.over = r.h.flags()&0x04 != 0
				res.data = in[:got]
				return res, nil
			}
		case opSCSIResp:
			res.response = r.h[2]
			res.status = r.h[3]
			res.residual = r.h.u32(44)
			res.under = r.h.flags()&0x02 != 0
			res.over = r.h.flags()&0x04 != 0
			if len(r.data) >= 2 {
				sl := int(binary.BigEndian.Uint16(r.data))
				if sl > 0 && 2+sl <= len(r.data) {
					res.sense, res.hasSense = parseSense(r.data[2 : 2+sl])
				}
			}
			res.data = in[:got]
			return res, nil
		default:
			return nil, fmt.Errorf("unexpected %v during command", r)
		}
	}
	return nil, errors.New("command: too many PDUs")
}

// sendDataOut sends out[from:to] as Data-Out PDUs for one sequence.
func (c *clientConn) sendDataOut(itt, ttt uint32, out []byte, from, to int) error {
	var dataSN uint32
	for off := from; off < to; {
		n := min(to-off, c.targetMaxRecv)
		p := &pdu{data: out[off : off+n]}
		p.h[0] = opDataOut
		if off+n == to {
			p.h[1] = flagFinal
		}
		p.h.put32(16, itt)
		p.h.put32(20, ttt)
		p.h.put32(28, c.expStatSN)
		p.h.put32(36, dataSN)
		p.h.put32(40, uint32(off))
		if err := c.send(p); err != nil {
			return err
		}
		dataSN++
		off += n
	}
	return nil
}

// ---- SCSI helpers ----------------------------------------------------------

func cdbRead16(lba uint64, blocks uint32) []byte {
	cdb := make([]byte, 16)
	cdb[0] = 0x88
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], blocks)
	return cdb
}

func cdbWrite16(lba uint64, blocks uint32, fua bool) []byte {
	cdb := make([]byte, 16)
	cdb[0] = 0x8a
	if fua {
		cdb[1] = 0x08
	}
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], blocks)
	return cdb
}

func cdbRead10(lba uint32, blocks uint16) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x28
	binary.BigEndian.PutUint32(cdb[2:], lba)
	binary.BigEndian.PutUint16(cdb[7:], blocks)
	return cdb
}

func (c *clientConn) read(lun uint64, lba uint64, blocks, blockSize int) (*scsiResult, error) {
	return c.command(lun, cdbRead16(lba, uint32(blocks)), nil, blocks*blockSize)
}

func (c *clientConn) write(lun uint64, lba uint64, data []byte, blockSize int, fua bool) (*scsiResult, error) {
	return c.command(lun, cdbWrite16(lba, uint32(len(data)/blockSize), fua), data, 0)
}

// capacity returns the number of blocks and the block size (READ CAPACITY 16).
func (c *clientConn) capacity(lun uint64) (uint64, int, error) {
	cdb := make([]byte, 16)
	cdb[0] = 0x9e
	cdb[1] = 0x10
	binary.BigEndian.PutUint32(cdb[10:], 32)
	for range 3 { // a unit attention may come first
		r, err := c.command(lun, cdb, nil, 32)
		if err != nil {
			return 0, 0, err
		}
		if r.ok() && len(r.data) >= 12 {
			return binary.BigEndian.Uint64(r.data) + 1, int(binary.BigEndian.Uint32(r.data[8:])), nil
		}
		if !(r.hasSense && r.sense.key == 0x6) {
			return 0, 0, fmt.Errorf("READ CAPACITY(16): %v", r)
		}
	}
	return 0, 0, errors.New("READ CAPACITY(16): unit attentions never cleared")
}

// ping sends an immediate NOP-Out and waits for its NOP-In echo.
func (c *clientConn) ping(payload []byte) error {
	p := &pdu{data: payload}
	p.h[0] = opNOPOut | opImmediate
	p.h[1] = flagFinal
	itt := c.newITT()
	p.h.put32(16, itt)
	p.h.put32(20, noTag)
	p.h.put32(24, c.cmdSN)
	p.h.put32(28, c.expStatSN)
	if err := c.send(p); err != nil {
		return err
	}
	r, err := c.recv()
	if err != nil {
		return err
	}
	if r.h.opcode() == opReject {
		return asReject(r)
	}
	if r.h.opcode() != opNOPIn || r.h.itt() != itt {
		return fmt.Errorf("NOP-Out answered by %v", r)
	}
	if string(r.data) != string(payload) {
		return fmt.Errorf("NOP-In echoed %d bytes, sent %d", len(r.data), len(payload))
	}
	return nil
}

// text runs a Text exchange (following continuation) and returns the keys.
func (c *clientConn) text(kvs []keyValue) ([]keyValue, error) {
	itt := c.newITT()
	ttt := uint32(noTag)
	data := encodeKeys(kvs)
	var all []byte
	for range 64 {
		p := &pdu{data: data}
		p.h[0] = opTextReq
		p.h[1] = flagFinal
		p.h.put32(16, itt)
		p.h.put32(20, ttt)
		p.h.put32(24, c.cmdSN)
		c.cmdSN++
		p.h.put32(28, c.expStatSN)
		if err := c.send(p); err != nil {
			return nil, err
		}
		r, err := c.recv()
		if err != nil {
			return nil, err
		}
		if r.h.opcode() == opReject {
			return nil, asReject(r)
		}
		if r.h.opcode() != opTextResp || r.h.itt() != itt {
			return nil, fmt.Errorf("Text answered by %v", r)
		}
		all = append(all, r.data...)
		if r.h.flags()&flagFinal != 0 && r.h.flags()&loginContinue == 0 {
			return decodeKeys(all)
		}
		ttt = r.h.u32(20)
		data = nil
	}
	return nil, errors.New("text: endless continuation")
}

// sendTargets returns the TargetName values of a SendTargets answer and
// the full key list.
func (c *clientConn) sendTargets(which string) ([]string, []keyValue, error) {
	kvs, err := c.text([]keyValue{{"SendTargets", which}})
	if err != nil {
		return nil, nil, err
	}
	var names []string
	for _, kv := range kvs {
		if kv.k == "TargetName" {
			names = append(names, kv.v)
		}
	}
	return names, kvs, nil
}

// logout closes the session and waits for the response.
func (c *clientConn) logout() error {
	p := &pdu{}
	p.h[0] = opLogoutReq | opImmediate
	p.h[1] = flagFinal // reason 0: close the session
	p.h.put32(16, c.newITT())
	p.h.put32(24, c.cmdSN)
	p.h.put32(28, c.expStatSN)
	if err := c.send(p); err != nil {
		return err
	}
	r, err := c.recv()
	if err != nil {
		return err
	}
	if r.h.opcode() != opLogoutResp {
		return fmt.Errorf("Logout answered by %v", r)
	}
	if r.h[2] != 0 {
		return fmt.Errorf("logout response %d", r.h[2])
	}
	return nil
}

// waitClosed reads until the target closes the connection (nil) or
// something else arrives within d. Reject PDUs are returned.
func (c *clientConn) waitClosedOrReject(d time.Duration) (*pdu, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.nc.SetReadDeadline(deadline)
		p, err := readPDU(c.nc, c.hd, c.dd)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("connection neither closed nor rejected within %v", d)
			}
			return nil, nil // closed (EOF / reset / garbage then close)
		}
		switch p.h.opcode() {
		case opReject:
			return p, nil
		case opLoginResp:
			if p.h[36] != 0 {
				return p, nil
			}
		case opNOPIn, opAsyncMsg:
			continue
		}
		return p, fmt.Errorf("unexpected %v", p)
	}
	return nil, fmt.Errorf("connection neither closed nor rejected within %v", d)
}
