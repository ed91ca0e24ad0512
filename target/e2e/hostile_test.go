//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	hostileIQN = "iqn.2026-01.org.ietgo.e2e:hostile"
	chapIQN    = "iqn.2026-01.org.ietgo.e2e:chap"
	chapUser   = "e2euser"
	chapSecret = "e2esecret1234"
	tgtUser    = "tgtuser"
	tgtSecret  = "tgtsecret12345"
)

// hostileEnv is a daemon with a plain and a CHAP target and an honest
// session doing verified I/O on the plain one.
type hostileEnv struct {
	d      *daemon
	honest *honest
}

func newHostileEnv(t *testing.T) *hostileEnv {
	dir := t.TempDir()
	conf := renderConf(t, nil,
		simpleTarget(dir, hostileIQN, 64<<20, "HeaderDigest CRC32C,None", "DataDigest CRC32C,None"),
		simpleTarget(dir, chapIQN, 8<<20,
			"IncomingUser "+chapUser+" "+chapSecret,
			"OutgoingUser "+tgtUser+" "+tgtSecret))
	d := startDaemon(t, dir, conf)
	h := startHonest(t, d.addr, hostileIQN, 0, 0, 2048, 1)
	h.checkpoint(t, "start", 10*time.Second)
	return &hostileEnv{d: d, honest: h}
}

// hostileCase sends something bad on its own connection and returns what
// the target did. usableOK says that silently ignoring the PDU (the
// connection stays usable) is also a correct answer.
type hostileCase struct {
	name     string
	usableOK bool
	run      func(t *testing.T, e *hostileEnv) verdict
}

func rawDial(t *testing.T, addr string) *clientConn {
	t.Helper()
	c, err := dial(addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.close() })
	return c
}

func ffpDial(t *testing.T, addr string, o loginOpts) *clientConn {
	t.Helper()
	c := rawDial(t, addr)
	if o.target == "" {
		o.target = hostileIQN
	}
	if err := c.login(o); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func closeWrite(c *clientConn) {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

const judgeTime = 5 * time.Second

func nopOut(c *clientConn, data []byte) *pdu {
	p := &pdu{data: data}
	p.h[0] = opNOPOut | opImmediate
	p.h[1] = flagFinal
	p.h.put32(16, c.newITT())
	p.h.put32(20, noTag)
	p.h.put32(24, c.cmdSN)
	p.h.put32(28, c.expStatSN)
	return p
}

func hostileCases() []hostileCase {
	return []hostileCase{
		{name: "truncated BHS then EOF", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			lp := c.loginPDU(1, 0, 1, false, nil)
			c.sendRaw(lp.h[:20])
			closeWrite(c)
			return judge(c, judgeTime, false)
		}},
		{name: "truncated BHS in full feature phase", run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{})
			p := nopOut(c, nil)
			c.sendRaw(p.h[:30])
			closeWrite(c)
			return judge(c, judgeTime, false)
		}},
		{name: "invalid opcode as first PDU", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			p := &pdu{}
			p.h[0] = 0x1f
			c.send(p)
			return judge(c, judgeTime, false)
		}},
		{name: "target opcode (0x21) sent by initiator in FFP", run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{})
			p := &pdu{}
			p.h[0] = opSCSIResp
			p.h.put32(16, 77)
			c.send(p)
			return judge(c, judgeTime, true)
		}},
		{name: "reserved opcode 0x1c in FFP", run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{})
			p := &pdu{}
			p.h[0] = 0x1c
			p.h[1] = flagFinal
			p.h.put32(16, c.newITT())
			c.send(p)
			return judge(c, judgeTime, true)
		}},
		{name: "DataSegmentLength over negotiated MaxRecvDataSegmentLength", run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{})
			big := bytes.Repeat([]byte{0xa5}, 4*c.targetMaxRecv+4)
			c.send(nopOut(c, big))
			return judge(c, judgeTime, true)
		}},
		{name: "DataSegmentLength 16 MiB-1 in login, data never sent", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			lp := c.loginPDU(1, 0, 1, false, nil)
			lp.h.setDataLen(0xffffff)
			c.sendRaw(lp.h[:])
			c.sendRaw(bytes.Repeat([]byte{'A'}, 64<<10))
			closeWrite(c)
			return judge(c, judgeTime, false)
		}},
		{name: "AHS length lie (255 words announced, 8 bytes sent) in FFP", run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{})
			p := c.cmdPDU(0, cdbRead16(0, 1), 512, false, true)
			h := p.h
			h[4] = 255
			c.sendRaw(encodeRaw(h[:], make([]byte, 8), nil, false, false))
			closeWrite(c)
			return judge(c, judgeTime, false)
		}},
		{name: "AHS on a login request", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			lp := c.loginPDU(1, 0, 1, false, []keyValue{{"InitiatorName", testInitiator}})
			lp.ahs = make([]byte, 16)
			c.send(lp)
			return judge(c, judgeTime, false)
		}},
		{name: "wrong header digest", run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{headerDigest: "CRC32C", dataDigest: "CRC32C"})
			if !c.hd {
				t.Fatalf("target did not accept HeaderDigest=CRC32C: %v", c.keys)
			}
			b := encodePDU(nopOut(c, nil), true, true)
			b[bhsLen] ^= 0xff
			c.sendRaw(b)
			return judge(c, judgeTime, false)
		}},
		{name: "wrong data digest", run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{headerDigest: "CRC32C", dataDigest: "CRC32C"})
			if !c.dd {
				t.Fatalf("target did not accept DataDigest=CRC32C: %v", c.keys)
			}
			b := encodePDU(nopOut(c, []byte("digest!!")), true, true)
			b[len(b)-1] ^= 0xff
			c.sendRaw(b)
			return judge(c, judgeTime, true)
		}},
		{name: "SCSI command before login", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			c.send(c.cmdPDU(0, cdbRead16(0, 8), 4096, false, true))
			v := judge(c, judgeTime, false)
			return v
		}},
		{name: "Data-Out before login", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			c.sendDataOut(5, 9, make([]byte, 512), 0, 512)
			return judge(c, judgeTime, false)
		}},
		{name: "Data-Out for unknown ITT/TTT", usableOK: true, run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{})
			c.sendDataOut(0xdead, 0xbeef, make([]byte, 4096), 0, 4096)
			return judge(c, judgeTime, true)
		}},
		{name: "Data-Out with offset far past the expected length", usableOK: true, run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{initialR2T: "Yes", immediateData: "No"})
			p := c.cmdPDU(0, cdbWrite16(0, 1, false), 512, true, false)
			c.send(p)
			r, err := c.recv()
			if err != nil || r.h.opcode() != opR2T {
				t.Fatalf("no R2T for a write: %v %v", r, err)
			}
			d := &pdu{data: make([]byte, 512)}
			d.h[0] = opDataOut
			d.h[1] = flagFinal
			d.h.put32(16, p.h.itt())
			d.h.put32(20, r.h.u32(20))
			d.h.put32(40, 0x7ffffe00)
			c.send(d)
			return judge(c, judgeTime, true)
		}},
		{name: "duplicate ITT of an outstanding command", usableOK: true, run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{initialR2T: "Yes", immediateData: "No"})
			// A write waiting for its data keeps the ITT outstanding.
			p1 := c.cmdPDU(0, cdbWrite16(4000, 8, false), 4096, true, false)
			c.send(p1)
			p2 := c.cmdPDU(0, cdbRead16(4000, 8), 4096, false, true)
			p2.h.put32(16, p1.h.itt())
			c.send(p2)
			return judge(c, judgeTime, true)
		}},
		{name: "CmdSN far outside the window", usableOK: true, run: func(t *testing.T, e *hostileEnv) verdict {
			c := ffpDial(t, e.d.addr, loginOpts{})
			p := c.cmdPDU(0, cdbRead16(0, 1), 512, false, true)
			p.h.put32(24, c.cmdSN+1_000_000)
			c.send(p)
			return judge(c, judgeTime, true)
		}},
		{name: "login PDU of 60 KiB (login-phase limit is 8192)", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			err := c.login(loginOpts{target: hostileIQN, extra: []keyValue{{"X-org.ietgo.big", strings.Repeat("v", 60<<10)}}})
			return loginVerdict(c, err)
		}},
		{name: "login with a 4000-byte InitiatorName (max 223)", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			err := c.login(loginOpts{target: hostileIQN, initiator: "iqn.2026-01.org.ietgo:" + strings.Repeat("n", 4000)})
			return loginVerdict(c, err)
		}},
		{name: "login key flood: 5000 keys over continued PDUs", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			var kvs []keyValue
			kvs = append(kvs, keyValue{"InitiatorName", testInitiator}, keyValue{"SessionType", "Normal"}, keyValue{"TargetName", hostileIQN})
			for i := range 5000 {
				kvs = append(kvs, keyValue{fmt.Sprintf("X-org.ietgo.k%d", i), "yes"})
			}
			data := encodeKeys(kvs)
			for off := 0; off < len(data); off += 8192 {
				end := min(off+8192, len(data))
				lp := c.loginPDU(1, 0, 1, false, nil)
				lp.data = data[off:end]
				if end < len(data) {
					lp.h[1] |= loginContinue
				}
				if err := c.send(lp); err != nil {
					break
				}
				if end < len(data) {
					// The target must answer each continued PDU with an
					// empty login response (or refuse).
					p, err := c.recvAny()
					if err != nil {
						return errVerdict(err)
					}
					if p.h.opcode() != opLoginResp || p.h[36] != 0 {
						// Refused part-way: the connection must be
						// closed too.
						v := verdictOf(p)
						v.closed = judge(c, judgeTime, false).closed
						return v
					}
				}
			}
			return judge(c, judgeTime, false)
		}},
		{name: "login with invalid UTF-8 InitiatorName", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			err := c.login(loginOpts{target: hostileIQN, initiator: "iqn.2026-01.org.bad:\xff\xfe\xc0\x80"})
			return loginVerdict(c, err)
		}},
		{name: "login with key lacking '='", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			lp := c.loginPDU(1, 0, 1, true, nil)
			lp.data = []byte("InitiatorName=" + testInitiator + "\x00TargetName=" + hostileIQN + "\x00garbage-without-equals\x00AuthMethod=None\x00")
			c.send(lp)
			return judge(c, judgeTime, false)
		}},
		{name: "login naming an unknown target", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			return loginVerdict(c, c.login(loginOpts{target: "iqn.2026-01.org.ietgo.e2e:nosuch"}))
		}},
		{name: "CHAP: CHAP_A only unsupported algorithms", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			itt := c.newITT()
			_, _, err := c.loginExchange(itt, 0, 1, false, []keyValue{{"InitiatorName", testInitiator},
				{"SessionType", "Normal"}, {"TargetName", chapIQN}, {"AuthMethod", "CHAP"}})
			if err != nil {
				return loginVerdict(c, err)
			}
			_, got, err := c.loginExchange(itt, 0, 1, false, []keyValue{{"CHAP_A", "99,250,3"}})
			if err != nil {
				return loginVerdict(c, err)
			}
			// RFC 7143 12.1.3: the target answers CHAP_A=Reject and must
			// then refuse the login; we try to go on without CHAP.
			if a, _ := lookupKey(got, "CHAP_A"); a != "Reject" && a != "" {
				return verdict{other: "target chose CHAP_A=" + a}
			}
			_, _, err = c.loginExchange(itt, 0, 1, true, []keyValue{{"CHAP_N", chapUser}, {"CHAP_R", "0x00"}})
			return loginVerdict(c, err)
		}},
		{name: "CHAP: odd-length hex response", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			return loginVerdict(c, c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, response: "0x123"}}))
		}},
		{name: "CHAP: 4000-byte response", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			return loginVerdict(c, c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, response: "0x" + strings.Repeat("ab", 4000)}}))
		}},
		{name: "CHAP: empty response and empty name", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			return loginVerdict(c, c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: "", secret: chapSecret, response: "0x"}}))
		}},
		{name: "CHAP: mutual challenge oversized (2 KiB)", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			return loginVerdict(c, c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret,
				targetUser: tgtUser, targetSecret: tgtSecret, challenge: "0x" + strings.Repeat("5a", 2048)}}))
		}},
		{name: "CHAP: mutual challenge of zero length", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			return loginVerdict(c, c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret,
				targetUser: tgtUser, targetSecret: tgtSecret, challenge: "0x"}}))
		}},
		{name: "CHAP: mutual challenge reflected from the target", run: func(t *testing.T, e *hostileEnv) verdict {
			c := rawDial(t, e.d.addr)
			return loginVerdict(c, c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret,
				targetUser: tgtUser, targetSecret: tgtSecret, reflect: true}}))
		}},
		{name: "SendTargets with 6000 bytes of garbage", usableOK: true, run: func(t *testing.T, e *hostileEnv) verdict {
			return sendTargetsGarbage(t, e, []keyValue{{"SendTargets", randomGarbage(6000, 1)}})
		}},
		{name: "SendTargets with invalid UTF-8 and NULs", usableOK: true, run: func(t *testing.T, e *hostileEnv) verdict {
			return sendTargetsGarbage(t, e, []keyValue{{"SendTargets", "\xff\xfe\x00\x01=="}, {"SendTargets", ""}})
		}},
		{name: "Text with 1000 SendTargets keys", usableOK: true, run: func(t *testing.T, e *hostileEnv) verdict {
			var kvs []keyValue
			for range 1000 {
				kvs = append(kvs, keyValue{"SendTargets", "All"})
			}
			return sendTargetsGarbage(t, e, kvs)
		}},
	}
}

func randomGarbage(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, 99))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(1 + r.IntN(255))
	}
	return string(b)
}

func verdictOf(p *pdu) verdict {
	switch {
	case p.h.opcode() == opReject:
		return verdict{rejected: true, reason: p.h[2]}
	case p.h.opcode() == opLoginResp && p.h[36] != 0:
		return verdict{loginStatus: uint16(p.h[36])<<8 | uint16(p.h[37])}
	}
	return verdict{other: p.String()}
}

// loginVerdict turns a login's error into a verdict: nil means the hostile
// login got in, which is reported as "other"; a timeout is a verdict of
// its own (never a refusal). After a refused login the target must also
// close the connection (RFC 7143 6.7: a login reject ends the connection).
func loginVerdict(c *clientConn, err error) verdict {
	var se *loginStatusError
	var re *rejectError
	switch {
	case err == nil:
		return verdict{other: "login SUCCEEDED", answered: true}
	case errors.As(err, &se):
		v := verdict{loginStatus: se.code()}
		v.closed = judge(c, judgeTime, false).closed
		return v
	case errors.As(err, &re):
		v := verdict{rejected: true, reason: re.reason}
		v.closed = judge(c, judgeTime, false).closed
		return v
	case strings.Contains(err.Error(), "mutual CHAP"):
		return verdict{other: err.Error()}
	}
	return errVerdict(err)
}

func sendTargetsGarbage(t *testing.T, e *hostileEnv, kvs []keyValue) verdict {
	c := rawDial(t, e.d.addr)
	if err := c.login(loginOpts{}); err != nil {
		t.Fatalf("discovery login: %v", err)
	}
	got, err := c.text(kvs)
	switch err := err.(type) {
	case nil:
		for _, kv := range got {
			if kv.k == "TargetName" && kv.v != hostileIQN && kv.v != chapIQN {
				return verdict{other: "SendTargets answered an unknown name " + kv.v}
			}
		}
		// The session must still work.
		if names, _, err := c.sendTargets("All"); err != nil || len(names) != 2 {
			return verdict{other: fmt.Sprintf("discovery session broken after garbage: %v %v", names, err)}
		}
		return verdict{answered: true}
	case *rejectError:
		return verdict{rejected: true, reason: err.reason}
	}
	return errVerdict(err)
}

// hostileRepeats is how many times each (cheap) hostile case runs.
const hostileRepeats = 3

// TestHostileInput runs every hostile case (hostileRepeats times) against
// one daemon while an honest session does verified I/O; after each the
// daemon must be up, the offender refused (or, where the RFC allows, the
// PDU ignored), a refused login followed by a close, no read left to time
// out, and the honest session undisturbed.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	e := newHostileEnv(t)
	tl := reportTally(fmt.Sprintf("hostile input (each case %dx, honest session verified after each)", hostileRepeats))
	baseFDs := e.d.fdCount()
	for _, hc := range hostileCases() {
		t.Run(hc.name, func(t *testing.T) {
			for try := range hostileRepeats {
				v := hc.run(t, e)
				tl.add(hc.name, v.String())
				e.d.requireAlive(t, hc.name)
				switch {
				case v.timedOut:
					t.Errorf("try %d: timed out waiting for the target (neither an answer nor a close): %v", try+1, v)
				case v.other != "":
					t.Errorf("try %d: unexpected answer: %v", try+1, v)
				case !v.refused() && !(hc.usableOK && v.answered):
					t.Errorf("try %d: offending connection neither rejected nor closed: %v", try+1, v)
				case v.loginStatus != 0 && !v.closed:
					t.Errorf("try %d: login refused (%#04x) but the connection was left open", try+1, v.loginStatus)
				}
				e.honest.checkpoint(t, hc.name, 10*time.Second)
			}
		})
	}
	e.d.requireAlive(t, "all hostile cases")
	tl.log(t)
	// Every hostile connection was closed by us by now; the daemon must
	// give their descriptors back.
	if n, ok := e.d.waitFDs(baseFDs, 20*time.Second); !ok {
		t.Errorf("daemon holds %d descriptors, %d before the hostile cases", n, baseFDs)
	}
	if err := e.honest.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestHostileRandomPDUs throws seeded random headers (with valid framing)
// at login and full feature phase connections, 20 at a time. Every one
// must get a reaction: a Reject, a refused login, a close, a login
// response, or (full feature phase) the connection still answers a NOP.
func TestHostileRandomPDUs(t *testing.T) {
	t.Parallel()
	e := newHostileEnv(t)
	const rounds, workers = 200, 20
	tl := reportTally(fmt.Sprintf("%d random PDUs (seeded; reaction required)", rounds))
	var wg sync.WaitGroup
	errs := make(chan error, rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < rounds; i += workers {
				outcome, phase, err := randomPDURound(e.d.addr, i)
				if outcome != "" {
					tl.add("random PDU in "+phase, outcome)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e.d.requireAlive(t, "random PDUs")
	e.honest.checkpoint(t, "random PDUs", 10*time.Second)
	tl.log(t)
	if err := e.honest.stop(); err != nil {
		t.Fatal(err)
	}
}

func randomPDURound(addr string, i int) (outcome, phase string, err error) {
	r := rand.New(rand.NewPCG(uint64(i), 1))
	var c *clientConn
	phase = "login phase"
	if i%2 == 1 {
		phase = "full feature phase"
		c, err = session(addr, hostileIQN)
	} else {
		c, err = dial(addr, 10*time.Second)
	}
	if err != nil {
		return "", phase, fmt.Errorf("round %d: %w", i, err)
	}
	defer c.close()
	var h bhs
	for j := range h {
		h[j] = byte(r.IntN(256))
	}
	h[4] = 0 // keep the framing so that later bytes stay recognisable
	var data []byte
	if r.IntN(2) == 0 {
		data = []byte(randomGarbage(r.IntN(2048), uint64(i)))
	}
	h.setDataLen(len(data))
	c.sendRaw(encodeRaw(h[:], nil, data, c.hd, c.dd))
	v := judge(c, 4*time.Second, phase == "full feature phase")
	switch {
	case v.other != "":
		return v.String(), phase, fmt.Errorf("round %d (% x): unexpected %v", i, h[:8], v)
	case !v.refused() && !v.answered && !v.loginGoesOn:
		return v.String(), phase, fmt.Errorf("round %d (%s, % x): no reaction within 4s (%v): neither refused nor still answering a NOP", i, phase, h[:8], v)
	}
	return v.String(), phase, nil
}

// TestResourceLimits: one initiator queues 2000 writes of 1 MiB (never
// sending their data) and 2000 reads of 1 MiB (never reading the answers)
// far beyond its command window; the daemon's memory stays bounded and an
// honest session keeps working.
func TestResourceLimits(t *testing.T) {
	t.Parallel()
	e := newHostileEnv(t)
	rss0 := e.d.procStatus("VmRSS")
	w := ffpDial(t, e.d.addr, loginOpts{initialR2T: "Yes", immediateData: "No"})
	r := ffpDial(t, e.d.addr, loginOpts{})
	r.nc.(*net.TCPConn).SetReadBuffer(4096)
	for range 2000 {
		if err := w.send(w.cmdPDU(0, cdbWrite16(0, 2048, false), 1<<20, true, false)); err != nil {
			break
		}
		if err := r.send(r.cmdPDU(0, cdbRead16(0, 2048), 1<<20, false, true)); err != nil {
			break
		}
	}
	time.Sleep(2 * time.Second)
	rss1 := e.d.procStatus("VmRSS")
	e.honest.checkpoint(t, "command floods", 10*time.Second)
	e.d.requireAlive(t, "command floods")
	t.Logf("RSS %d kB before, %d kB with 4000 queued 1 MiB commands", rss0, rss1)
	reportTally("flood vs an honest session (relative latency, RSS)").add("4000 queued 1 MiB commands (data never sent / answers never read): RSS growth", fmt.Sprintf("%d MiB (bound %d MiB)", (rss1-rss0)>>10, memBoundKB>>10))
	if grow := rss1 - rss0; grow > memBoundKB {
		t.Errorf("RSS grew by %d kB (bound %d kB): one initiator can make the daemon hold its queued commands' buffers beyond its window", grow, memBoundKB)
	}
	if err := e.honest.stop(); err != nil {
		t.Fatal(err)
	}
}
