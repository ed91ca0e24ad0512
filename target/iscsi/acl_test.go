package iscsi

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/login"
	"github.com/ietgo/ietd/target/pdu"
)

// pipeListener hands the server in-memory connections that claim any
// local and peer address: access control by address is tested with
// peers (10.x, IPv4-mapped IPv6, IPv6) no loopback socket can have.
type pipeListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

func newPipeListener(addr string) *pipeListener {
	return &pipeListener{addr: tcpAddr(addr), ch: make(chan net.Conn), done: make(chan struct{})}
}

func tcpAddr(s string) *net.TCPAddr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return l.addr }

// dial connects from peer to the local address local (both "addr:port").
func (l *pipeListener) dial(t *testing.T, peer, local string) *rawInit {
	t.Helper()
	client, server := net.Pipe()
	select {
	case l.ch <- addrConn{Conn: server, local: tcpAddr(local), remote: tcpAddr(peer)}:
	case <-l.done:
		t.Fatal("listener closed")
	}
	t.Cleanup(func() { client.Close() })
	return &rawInit{t: t, nc: client, rd: pdu.NewReader(client), cmdSN: 1}
}

// loginStatus runs a one-request login (CSG=1 to full feature) and
// returns the target's status.
func (r *rawInit) loginStatus(keys ...login.KV) login.Status {
	r.t.Helper()
	h := loginReq(pdu.FlagTransit|1<<2|3, 7)
	r.send(&h, login.EncodeKeys(keys))
	p := r.recv()
	if p.Opcode() != pdu.OpLoginResp {
		r.t.Fatalf("login: %s", pdu.Describe(&p.BHS))
	}
	return login.Status(uint16(p.BHS[36])<<8 | uint16(p.BHS[37]))
}

func targetNames(kvs []login.KV) []string {
	var out []string
	for _, kv := range kvs {
		if kv.Key == "TargetName" {
			out = append(out, kv.Value)
		}
	}
	slices.Sort(out)
	return out
}

const (
	aclIni    = "iqn.2026-01.test:acl"
	aclOpen   = "iqn.2026-01.org.ietgo:open"
	aclHidden = "iqn.2026-01.org.ietgo:hidden"
)

func aclConfig(dialect config.Dialect) (*config.Config, *config.Target) {
	open := config.NewTarget(1, aclOpen)
	hidden := config.NewTarget(2, aclHidden)
	for _, t := range []*config.Target{open, hidden} {
		t.LUNs = []*config.LUN{{Number: 0, Type: "nullio"}}
	}
	return &config.Config{Dialect: dialect, Targets: []*config.Target{open, hidden}}, hidden
}

// aclMatrix logs in to the hidden target from each peer, and checks that
// discovery from that peer lists it (SendTargets=All and by name) exactly
// when the login is allowed.
func aclMatrix(t *testing.T, l *pipeListener, local string, peers map[string]bool) {
	t.Helper()
	for peer, allowed := range peers {
		st := l.dial(t, peer, local).loginStatus(login.KV{Key: "InitiatorName", Value: aclIni}, login.KV{Key: "TargetName", Value: aclHidden})
		if allowed && st != login.StatusSuccess || !allowed && st != login.StatusNotFound {
			t.Errorf("login to %s from %s through %s: status %v; want allowed=%v (refused: 0x0203)", aclHidden, peer, local, st, allowed)
		}
		d := l.dial(t, peer, local)
		if st := d.loginStatus(login.KV{Key: "InitiatorName", Value: aclIni}, login.KV{Key: "SessionType", Value: "Discovery"}); st != login.StatusSuccess {
			t.Fatalf("discovery login from %s: %v (discovery itself is never refused by the ACLs)", peer, st)
		}
		want := []string{aclOpen}
		if allowed {
			want = []string{aclHidden, aclOpen}
		}
		if got := targetNames(d.sendTargets(t, "All")); !slices.Equal(got, want) {
			t.Errorf("SendTargets=All from %s through %s: %v; want %v", peer, local, got, want)
		}
		got := targetNames(d.sendTargets(t, aclHidden))
		if allowed != (len(got) == 1) {
			t.Errorf("SendTargets=%s from %s through %s: %v; want it listed=%v", aclHidden, peer, local, got, allowed)
		}
	}
}

// TestACLEnforcedAtLoginByAddress: initiators.allow address items are
// applied at login, not only in SendTargets; an IPv4-mapped IPv6 peer
// is the IPv4 address it maps; an IPv4 item admits no native IPv6 peer;
// a target discovery hides is also refused at login.
func TestACLEnforcedAtLoginByAddress(t *testing.T) {
	cfg, hidden := aclConfig(config.DialectIET)
	cfg.InitiatorsAllow = &config.ACLFile{Path: "initiators.allow", Rules: []config.ACLRule{
		{Target: hidden.Name, Items: []config.ACLItem{
			{Kind: config.ACLAddress, Text: "10.0.0.0/8", CIDR: "10.0.0.0/8"},
			{Kind: config.ACLAddress, Text: "[2001:db8:1::]/48", CIDR: "2001:db8:1::/48"}}},
		{Target: "ALL", Items: []config.ACLItem{{Kind: config.ACLAll, Text: "ALL"}}},
	}}
	l := newPipeListener("0.0.0.0:3260")
	startServerOn(t, cfg, newFakeDisk(1<<20), Options{}, l)
	aclMatrix(t, l, "192.0.2.1:3260", map[string]bool{
		"10.1.2.3:40000":                 true,
		"[::ffff:10.1.2.3]:40001":        true,
		"192.0.2.7:40002":                false,
		"[::ffff:192.0.2.7]:40003":       false,
		"[2001:db8:1::5]:40004":          true,
		"[2001:db8:2::5]:40005":          false,
		"[::ffff:a01:203]:40006":         true, // 10.1.2.3 written in hex
		"[fe80::1%eth0]:40007":           false,
		"[2001:db8:1:ffff::9%eth1]:4008": true, // a zone does not hide the address
	})
}

// TestACLDenyFileAtLogin: with initiators.deny (IET's legacy mode) a
// denied peer is refused at login and hidden in discovery unless the
// allow file lets it in.
func TestACLDenyFileAtLogin(t *testing.T) {
	cfg, hidden := aclConfig(config.DialectIET)
	cfg.InitiatorsDeny = &config.ACLFile{Path: "initiators.deny", Rules: []config.ACLRule{
		{Target: hidden.Name, Items: []config.ACLItem{{Kind: config.ACLAll, Text: "ALL"}}}}}
	cfg.InitiatorsAllow = &config.ACLFile{Path: "initiators.allow", Rules: []config.ACLRule{
		{Target: hidden.Name, Items: []config.ACLItem{{Kind: config.ACLAddress, Text: "10.9.9.9", CIDR: "10.9.9.9/32"}}}}}
	l := newPipeListener("0.0.0.0:3260")
	startServerOn(t, cfg, newFakeDisk(1<<20), Options{}, l)
	aclMatrix(t, l, "192.0.2.1:3260", map[string]bool{
		"10.9.9.9:40000":          true,
		"[::ffff:10.9.9.9]:40001": true,
		"10.9.9.8:40002":          false,
	})
}

// TestTargetsAllowAtLogin: targets.allow restricts the portals a target
// is reached through, at login as in discovery, with IPv4-mapped local
// addresses read as IPv4.
func TestTargetsAllowAtLogin(t *testing.T) {
	cfg, hidden := aclConfig(config.DialectIET)
	cfg.TargetsAllow = &config.ACLFile{Path: "targets.allow", Rules: []config.ACLRule{
		{Target: hidden.Name, Items: []config.ACLItem{{Kind: config.ACLAddress, Text: "10.0.0.0/8", CIDR: "10.0.0.0/8"}}},
		{Target: "ALL", Items: []config.ACLItem{{Kind: config.ACLAll, Text: "ALL"}}}}}
	l := newPipeListener("0.0.0.0:3260")
	startServerOn(t, cfg, newFakeDisk(1<<20), Options{}, l)
	aclMatrix(t, l, "10.0.0.1:3260", map[string]bool{"192.0.2.7:40000": true})
	aclMatrix(t, l, "[::ffff:10.0.0.1]:3260", map[string]bool{"192.0.2.7:40001": true})
	aclMatrix(t, l, "192.0.2.1:3260", map[string]bool{"10.1.1.1:40002": false})
	aclMatrix(t, l, "[2001:db8::1]:3260", map[string]bool{"[2001:db8::2]:40003": false})
}

// TestNetBSDNetmasksAtLogin: NetBSD per-target netmasks are enforced at
// login (the original only filtered discovery); IPv4-mapped peers are
// their IPv4 address, native IPv6 peers are refused by an IPv4 mask, and
// "any" admits everyone.
func TestNetBSDNetmasksAtLogin(t *testing.T) {
	cfg, hidden := aclConfig(config.DialectNetBSD)
	hidden.AllowedNets = []config.Netmask{{Text: "10.4/16", CIDR: "10.4.0.0/16"}}
	cfg.Targets[0].AllowedNets = []config.Netmask{{Text: "any", CIDR: "0.0.0.0/0"}}
	l := newPipeListener("0.0.0.0:3260")
	startServerOn(t, cfg, newFakeDisk(1<<20), Options{}, l)
	aclMatrix(t, l, "192.0.2.1:3260", map[string]bool{
		"10.4.0.29:40000":          true,
		"[::ffff:10.4.0.29]:40001": true,
		"10.5.0.29:40002":          false,
		"[::ffff:10.5.0.29]:40003": false,
		"[2001:db8::29]:40004":     false,
	})
}

// TestLoginTimeoutFreesTheSlot: a login that stalls (half a header) or
// trickles (a Login Request with C=1 every 40ms, never ending) is closed
// once LoginTimeout has passed since it began, one that sends Login
// Requests as fast as it can is closed by their number, and each one's
// login slot (MaxLoggingIn) goes to the next initiator.
func TestLoginTimeoutFreesTheSlot(t *testing.T) {
	cfg, _ := aclConfig(config.DialectIET)
	l := newPipeListener("0.0.0.0:3260")
	const timeout = 300 * time.Millisecond
	ts := startServerOn(t, cfg, newFakeDisk(1<<20), Options{LoginTimeout: timeout, MaxLoggingIn: 1}, l)
	closedWithin := func(r *rawInit, what string, feed func(i int) bool) {
		t.Helper()
		start := time.Now()
		buf := make([]byte, 64)
		for i := 0; ; i++ {
			if time.Since(start) > 10*timeout {
				t.Fatalf("%s: still open after %v (LoginTimeout %v)", what, time.Since(start), timeout)
			}
			if feed != nil && !feed(i) {
				break
			}
			r.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := r.nc.Read(buf)
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				break // closed by the target
			}
			_ = n // continue responses (C=1 answered with empty text)
		}
		if d := time.Since(start); d < timeout/2 {
			t.Errorf("%s: closed after %v, before LoginTimeout %v", what, d, timeout)
		}
		waitLoggingIn(t, ts, 0) // its slot is given back
	}
	half := l.dial(t, "10.0.0.7:40000", "192.0.2.1:3260")
	h := loginReq(pdu.FlagTransit|1<<2|3, 7)
	if _, err := half.nc.Write(h[:24]); err != nil {
		t.Fatal(err)
	}
	closedWithin(half, "half a Login Request header", nil)

	trickle := l.dial(t, "10.0.0.8:40000", "192.0.2.1:3260")
	closedWithin(trickle, "a login continued (C=1) without end", func(i int) bool {
		time.Sleep(40 * time.Millisecond)
		h := loginReq(pdu.FlagContinue|1<<2|3, 7)
		h.SetDataLen(16)
		trickle.nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		bufs, _ := pdu.AppendPDU(nil, nil, &h, []byte("X-junk=0123456\x00"), false, false)
		_, err := bufs.WriteTo(trickle.nc)
		return err == nil
	})
	flood := l.dial(t, "10.0.0.10:40000", "192.0.2.1:3260")
	sent := 0
	start := time.Now()
	for ; sent < 10000; sent++ {
		h := loginReq(pdu.FlagContinue|1<<2|3, 7)
		h.SetDataLen(16)
		flood.nc.SetDeadline(time.Now().Add(time.Second))
		bufs, _ := pdu.AppendPDU(nil, nil, &h, []byte("X-junk=0123456\x00"), false, false)
		if _, err := bufs.WriteTo(flood.nc); err != nil {
			break
		}
		var resp pdu.Header
		if err := flood.rd.ReadHeader(&resp); err != nil {
			break
		}
		flood.rd.ReadData(make([]byte, resp.DataLen()))
		if resp.BHS[36] != 0 {
			break // refused with a status
		}
	}
	if sent < 200 || sent > 300 || time.Since(start) > 10*timeout {
		t.Errorf("a flood of continued Login Requests: %d sent in %v before the target ended it; want it ended by their number (256)", sent, time.Since(start))
	}
	waitLoggingIn(t, ts, 0)
	// The slot is free again: an honest login gets in.
	if st := l.dial(t, "10.0.0.9:40000", "192.0.2.1:3260").loginStatus(login.KV{Key: "InitiatorName", Value: aclIni},
		login.KV{Key: "TargetName", Value: aclOpen}); st != login.StatusSuccess {
		t.Fatalf("login after the stalled ones timed out: %v", st)
	}
}

// TestSecretsNotLoggedAtTrace: CHAP logins of every outcome (one-way,
// wrong secret, the secret sent in clear, mutual, discovery) leave no
// secret in the log at the trace level.
func TestSecretsNotLoggedAtTrace(t *testing.T) {
	const (
		inSecret   = "in-secret-Kq81x"
		outSecret  = "out-secret-Zp27w"
		discSecret = "disc-secret-Mv44c"
		badSecret  = "bad-secret-Rt09d"
	)
	cfg, hidden := aclConfig(config.DialectIET)
	hidden.Auth = config.Auth{Incoming: []config.Account{{User: "joe", Secret: inSecret}}, Outgoing: &config.Account{User: "tgt", Secret: outSecret}}
	cfg.Discovery = config.Auth{Incoming: []config.Account{{User: "disc", Secret: discSecret}}}
	var logBuf lockedLog
	lg := logrus.New()
	lg.SetLevel(logrus.TraceLevel)
	lg.SetOutput(&logBuf)
	srv, err := NewServer(Options{Config: cfg, Log: logrus.NewEntry(lg),
		NewDevice: func(*config.Target, scsi.Options) (Device, error) { return newFakeDisk(1 << 20), nil }})
	if err != nil {
		t.Fatal(err)
	}
	l := newPipeListener("0.0.0.0:3260")
	done := make(chan struct{})
	go func() { srv.Serve(l); close(done) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}()
	chapLogin := func(first []login.KV, user, secret, response string, mutual bool) login.Status {
		r := l.dial(t, "10.0.0.7:40000", "192.0.2.1:3260")
		step := func(flags byte, kvs ...login.KV) (login.Status, map[string]string) {
			h := loginReq(flags, 7)
			r.send(&h, login.EncodeKeys(kvs))
			p := r.recv()
			got, _ := login.ParseKeys(p.data)
			m := map[string]string{}
			for _, kv := range got {
				m[kv.Key] = kv.Value
			}
			return login.Status(uint16(p.BHS[36])<<8 | uint16(p.BHS[37])), m
		}
		const sec = pdu.FlagTransit | 0<<2 | 1
		if st, _ := step(sec, append(first, login.KV{Key: "AuthMethod", Value: "CHAP"})...); st != 0 {
			return st
		}
		st, m := step(sec, login.KV{Key: "CHAP_A", Value: "5"})
		if st != 0 {
			return st
		}
		id, _ := strconv.Atoi(m["CHAP_I"])
		ch, _ := hex.DecodeString(strings.TrimPrefix(m["CHAP_C"], "0x"))
		if response == "" {
			sum := md5.Sum(append(append([]byte{byte(id)}, secret...), ch...))
			response = "0x" + hex.EncodeToString(sum[:])
		}
		kvs := []login.KV{{Key: "CHAP_N", Value: user}, {Key: "CHAP_R", Value: response}}
		if mutual {
			kvs = append(kvs, login.KV{Key: "CHAP_I", Value: "3"}, login.KV{Key: "CHAP_C", Value: "0x" + strings.Repeat("ab", 16)})
		}
		st, m = step(sec, kvs...)
		if mutual && st == 0 && m["CHAP_R"] == "" {
			t.Errorf("mutual CHAP: no CHAP_R from the target: %v", m)
		}
		return st
	}
	normal := []login.KV{{Key: "InitiatorName", Value: aclIni}, {Key: "TargetName", Value: aclHidden}}
	disc := []login.KV{{Key: "InitiatorName", Value: aclIni}, {Key: "SessionType", Value: "Discovery"}}
	for _, c := range []struct {
		what           string
		first          []login.KV
		user, secret   string
		response       string
		mutual, wantOK bool
	}{
		{"one-way", normal, "joe", inSecret, "", false, true},
		{"mutual", normal, "joe", inSecret, "", true, true},
		{"wrong secret", normal, "joe", badSecret, "", false, false},
		{"secret in clear", normal, "joe", "", inSecret, false, false},
		{"secret in clear as hex", normal, "joe", "", "0x" + hex.EncodeToString([]byte(inSecret)), false, false},
		{"secret as the user name", normal, inSecret, inSecret, "", false, false},
		{"discovery", disc, "disc", discSecret, "", false, true},
		{"discovery, wrong secret", disc, "disc", badSecret, "", false, false},
	} {
		st := chapLogin(c.first, c.user, c.secret, c.response, c.mutual)
		if (st == login.StatusSuccess) != c.wantOK {
			t.Errorf("%s: status %v; want success=%v", c.what, st, c.wantOK)
		}
	}
	time.Sleep(50 * time.Millisecond) // the failed logins' last lines
	text := logBuf.String()
	if !strings.Contains(text, "level=debug") || !strings.Contains(text, "CHAP authentication failed") {
		t.Fatalf("the trace log lacks the logins' debug lines: nothing was checked:\n%s", text)
	}
	for _, s := range []string{inSecret, outSecret, discSecret, badSecret, hex.EncodeToString([]byte(inSecret))} {
		if strings.Contains(text, s) {
			t.Errorf("the log holds a secret (%s):\n%s", s, text)
		}
	}
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
