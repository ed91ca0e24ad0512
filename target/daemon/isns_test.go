package daemon

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/isns"
	"github.com/sirupsen/logrus"
)

// Ports given to the iSNS tests.
const (
	isnsTestServerAddr = "127.0.0.1:3452"
	isnsTestStallAddr  = "127.0.0.1:3453"
	isnsTestISCSIAddr  = "127.0.0.1:3454"
)

// miniISNS answers every request with success and passes it on.
func miniISNS(t *testing.T, addr string, got chan<- *isns.Message) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("iSNS test port: %v", err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				for {
					m, err := isns.ReadMessage(c, 0)
					if err != nil {
						return
					}
					select {
					case got <- m:
					default:
					}
					rsp := &isns.Message{Function: m.Function.Response(), XID: m.XID, Flags: isns.FlagServer}
					if err := isns.WriteMessage(c, rsp); err != nil {
						return
					}
				}
			}()
		}
	}()
}

func isnsNames(m *isns.Message) []string {
	var out []string
	for _, a := range m.Operating() {
		if a.Tag == isns.TagISCSIName {
			out = append(out, a.Str())
		}
	}
	return out
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncLog) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startISNSDaemon(t *testing.T, load func() (*config.Config, config.Diagnostics, error)) (sigs chan<- os.Signal, done <-chan error, logs *syncLog) {
	t.Helper()
	l, err := net.Listen("tcp", isnsTestISCSIAddr)
	if err != nil {
		t.Skipf("iSCSI test port: %v", err)
	}
	logs = &syncLog{}
	lg := logrus.New()
	lg.SetOutput(logs)
	lg.SetLevel(logrus.DebugLevel)
	sigs, done = startRun(t, Options{Log: logrus.NewEntry(lg), Load: load, Listeners: []net.Listener{l},
		ShutdownTimeout: 5 * time.Second})
	return sigs, done, logs
}

func isnsConfig(server string, ac bool, names ...string) *config.Config {
	h, p, _ := net.SplitHostPort(server)
	c := &config.Config{Dialect: config.DialectIET, ISNS: &config.ISNS{Server: h, AccessControl: ac}}
	c.ISNS.Port, _ = strconv.Atoi(p)
	for i, n := range names {
		c.Targets = append(c.Targets, config.NewTarget(i+1, n))
	}
	return c
}

func waitMsg(t *testing.T, got <-chan *isns.Message, f isns.Function) *isns.Message {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case m := <-got:
			if m.Function == f {
				return m
			}
		case <-deadline:
			t.Fatalf("no %v within 5s", f)
		}
	}
}

// The daemon registers its targets and portal, deregisters a target a
// reload removes, and the entity at shutdown.
func TestISNSRegistersAndFollowsReloads(t *testing.T) {
	got := make(chan *isns.Message, 64)
	miniISNS(t, isnsTestServerAddr, got)
	var mu sync.Mutex
	cfg := isnsConfig(isnsTestServerAddr, false, "iqn.2026-01.example:a", "iqn.2026-01.example:b")
	load := func() (*config.Config, config.Diagnostics, error) {
		mu.Lock()
		defer mu.Unlock()
		return cfg.Clone(), nil, nil
	}
	sigs, done, _ := startISNSDaemon(t, load)
	reg := waitMsg(t, got, isns.DevAttrReg)
	if n := isnsNames(reg); strings.Join(n, " ") != "iqn.2026-01.example:a iqn.2026-01.example:b" {
		t.Errorf("registered %v", n)
	}
	if a, ok := isns.Find(reg.Operating(), isns.TagPortalPort); !ok || binary.BigEndian.Uint32(a.Value) != 3454 {
		t.Errorf("portal port %v", a)
	}
	mu.Lock()
	cfg = isnsConfig(isnsTestServerAddr, false, "iqn.2026-01.example:a")
	mu.Unlock()
	sigs <- syscall.SIGHUP
	if n := isnsNames(waitMsg(t, got, isns.DevDereg)); strings.Join(n, " ") != "iqn.2026-01.example:b" {
		t.Errorf("deregistered %v", n)
	}
	sigs <- syscall.SIGTERM
	d := waitMsg(t, got, isns.DevDereg)
	if a, ok := isns.Find(d.Operating(), isns.TagEID); !ok || a.Str() == "" {
		t.Errorf("shutdown deregistration %v", d.Attrs)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// loginStatus sends one Login Request for target and returns the status
// class of the answer.
func loginStatus(t *testing.T, target string) byte {
	t.Helper()
	c, err := net.Dial("tcp", isnsTestISCSIAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := []byte("InitiatorName=iqn.2026-01.example:ini\x00TargetName=" + target + "\x00SessionType=Normal\x00")
	for len(data)%4 != 0 {
		data = append(data, 0)
	}
	bhs := make([]byte, 48)
	bhs[0] = 0x40 | 0x03
	bhs[1] = 0x80 | 1<<2 | 3
	binary.BigEndian.PutUint32(bhs[4:], uint32(len(data)))
	copy(bhs[8:], []byte{0x80, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint32(bhs[16:], 1)
	binary.BigEndian.PutUint32(bhs[24:], 1)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(bhs, data...)); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 48)
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	return resp[36]
}

// An iSNS server that accepts and never answers delays neither the start,
// nor logins (access control off), nor the stop beyond the bounded
// deregistration; with access control on, a login it cannot answer for
// is refused (fail closed, as IET with an empty list) within the wait,
// and the log says why.
func TestISNSStalledServer(t *testing.T) {
	l, err := net.Listen("tcp", isnsTestStallAddr)
	if err != nil {
		t.Skipf("iSNS test port: %v", err)
	}
	var conns []net.Conn
	var cmu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, c)
			cmu.Unlock()
		}
	}()
	defer func() {
		l.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
	}()
	for _, ac := range []bool{false, true} {
		cfg := isnsConfig(isnsTestStallAddr, ac, "iqn.2026-01.example:a")
		sigs, done, logs := startISNSDaemon(t, func() (*config.Config, config.Diagnostics, error) { return cfg.Clone(), nil, nil })
		start := time.Now()
		st := loginStatus(t, "iqn.2026-01.example:a")
		d := time.Since(start)
		switch {
		case !ac && (st != 0 || d > time.Second):
			t.Errorf("access control off: login status %#x after %v, want 0 at once", st, d)
		case ac && (st != 2 || d > 5*time.Second):
			t.Errorf("access control on: login status %#x after %v, want 2 (refused) within the 3s wait", st, d)
		case ac && !strings.Contains(logs.String(), "no answer from the iSNS server"):
			t.Errorf("refusal reason not logged:\n%s", logs.String())
		}
		start = time.Now()
		sigs <- syscall.SIGTERM
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("shutdown took %v", d)
		}
	}
}
