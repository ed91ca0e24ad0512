//go:build linux

package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statePort gives each test of this file its own port of the range this
// suite's state tests use (3500-3509), so that the port stays the same
// across the daemon's restarts.
func statePort(d *daemon, port int) {
	d.port = port
	d.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// prSession logs in as a fixed initiator port (name and ISID), so that
// its I_T nexus, and so its registration, is the same after a restart;
// the unit attentions a new nexus gets are consumed.
func prSession(t *testing.T, addr, target string, isid byte) *clientConn {
	t.Helper()
	var c *clientConn
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err = dial(addr, 10*time.Second)
		if err == nil {
			c.isid = [6]byte{0x80, 0, 0x3e, 0, 0, isid}
			if err = c.login(loginOpts{target: target, initiator: testInitiator + fmt.Sprintf("-pr%d", isid)}); err == nil {
				break
			}
			c.close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("login to %s: %v", target, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { c.close() })
	for i := 0; i < 4; i++ {
		r, err := c.command(0, make([]byte, 6), nil, 0) // TEST UNIT READY
		if err != nil {
			t.Fatal(err)
		}
		if r.ok() {
			return c
		}
	}
	t.Fatal("TEST UNIT READY never GOOD")
	return nil
}

func prOutCDB(sa, typ byte) []byte {
	c := make([]byte, 10)
	c[0], c[1], c[2] = 0x5f, sa, typ
	binary.BigEndian.PutUint32(c[5:], 24)
	return c
}

func prOutParams(key, sak uint64, aptpl bool) []byte {
	p := make([]byte, 24)
	binary.BigEndian.PutUint64(p, key)
	binary.BigEndian.PutUint64(p[8:], sak)
	if aptpl {
		p[20] = 0x01
	}
	return p
}

func mustGood(t *testing.T, c *clientConn, what string, cdb, out []byte, inLen int) []byte {
	t.Helper()
	r, err := c.command(0, cdb, out, inLen)
	if err != nil || !r.ok() {
		t.Fatalf("%s: %v %v", what, r, err)
	}
	return r.data
}

// deviceView is what must not change across restarts and reloads: the
// standard INQUIRY data, VPD pages 0x80 and 0x83, and (pr) READ KEYS and
// READ RESERVATION.
func deviceView(t *testing.T, c *clientConn, pr bool) map[string]string {
	t.Helper()
	v := map[string]string{}
	inq := func(evpd, page byte) []byte { return []byte{0x12, evpd, page, 0x01, 0x00, 0} }
	v["INQUIRY"] = fmt.Sprintf("% x", mustGood(t, c, "INQUIRY", inq(0, 0), nil, 256))
	v["VPD 0x80"] = fmt.Sprintf("% x", mustGood(t, c, "VPD 0x80", inq(1, 0x80), nil, 256))
	v["VPD 0x83"] = fmt.Sprintf("% x", mustGood(t, c, "VPD 0x83", inq(1, 0x83), nil, 256))
	if pr {
		for sa, name := range []string{"READ KEYS", "READ RESERVATION"} {
			cdb := []byte{0x5e, byte(sa), 0, 0, 0, 0, 0, 0x01, 0x00, 0}
			v[name] = fmt.Sprintf("% x", mustGood(t, c, name, cdb, nil, 256))
		}
	}
	return v
}

func sameView(t *testing.T, when string, got, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %s changed:\n got %s\nwant %s", when, k, got[k], w)
		}
	}
}

// reload sends SIGHUP and waits for the daemon to log the reload.
func (d *daemon) reload(t *testing.T) {
	t.Helper()
	n := strings.Count(d.allLogs(), "configuration reloaded")
	if err := d.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(d.allLogs(), "configuration reloaded") == n {
		if time.Now().After(deadline) {
			t.Fatal("no \"configuration reloaded\" within 5s of SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stateRestarts registers two initiators with APTPL=1 and reserves
// (Write Exclusive, Registrants Only), then checks that the registrations,
// the reservation and the LUN's identifiers are the same after a SIGHUP
// reload, a SIGTERM restart and a kill -9 restart, and that the
// reservation is enforced again after each (an unregistered initiator's
// write conflicts).
func stateRestarts(t *testing.T, d *daemon, target string) {
	a := prSession(t, d.addr, target, 1)
	b := prSession(t, d.addr, target, 2)
	mustGood(t, a, "REGISTER a", prOutCDB(0, 0), prOutParams(0, 0xa1a1, true), 0)
	mustGood(t, b, "REGISTER b", prOutCDB(0, 0), prOutParams(0, 0xb2b2, true), 0)
	mustGood(t, a, "RESERVE", prOutCDB(1, 0x5), prOutParams(0xa1a1, 0, true), 0)
	want := deviceView(t, a, true)
	if !strings.Contains(want["READ KEYS"], "00 00 00 00 00 00 a1 a1 00 00 00 00 00 00 b2 b2") ||
		!strings.Contains(want["READ RESERVATION"], "00 00 00 00 00 00 a1 a1") {
		t.Fatalf("PR state before the restarts: %v", want)
	}
	ents, err := os.ReadDir(filepath.Join(d.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("state file %s mode %v: readable by others", e.Name(), fi.Mode())
		}
	}
	for _, step := range []string{"SIGHUP", "SIGTERM", "kill -9"} {
		switch step {
		case "SIGHUP":
			// With the registrants logged in.
			d.reload(t)
		case "SIGTERM":
			// Sessions that would not answer the logout request
			// would hold the orderly shutdown for its 10 s bound.
			a.close()
			b.close()
			d.stop()
			d.start()
		case "kill -9":
			d.kill9()
			d.start()
		}
		c := prSession(t, d.addr, target, 1)
		sameView(t, "after "+step, deviceView(t, c, true), want)
		other := prSession(t, d.addr, target, 3)
		w := make([]byte, 10)
		w[0], w[8] = 0x2a, 1 // WRITE(10), one block
		r, err := other.command(0, w, make([]byte, 512), 0)
		if err != nil || r.status != 0x18 {
			t.Errorf("after %s: unregistered write: %v %v; want RESERVATION CONFLICT", step, r, err)
		}
		other.close()
		c.close()
	}
}

func TestAPTPLAndIdentitySurviveRestartIET(t *testing.T) {
	realDaemonOnly(t)
	dir := t.TempDir()
	const iqn = "iqn.2026-01.org.ietgo.e2e:state"
	conf := renderConf(t, nil, simpleTarget(dir, iqn, 1<<20))
	d := newDaemon(t, dir, conf, "-d", "1")
	statePort(d, 3500)
	d.start()
	stateRestarts(t, d, iqn)
}

func TestAPTPLAndIdentitySurviveRestartNetBSD(t *testing.T) {
	realDaemonOnly(t)
	dir := t.TempDir()
	ext := filepath.Join(dir, "ext0.img")
	if err := os.WriteFile(ext, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("# NetBSD targets file, generated by target/e2e\nextent0\t%s\t0\t1MB\ntarget0\trw\textent0\t127.0.0.1/32\n", ext)
	d := newDaemon(t, dir, conf, "-d", "1", "--dialect", "netbsd", "--auths", "/dev/null")
	statePort(d, 3501)
	d.start()
	disc := mustSession(t, d.addr, "")
	names, _, err := disc.sendTargets("All")
	if err != nil || len(names) != 1 {
		t.Fatalf("SendTargets: %v %v", names, err)
	}
	disc.close()
	stateRestarts(t, d, names[0])
}

// A second daemon on the same state directory is refused with an error
// naming the lock and the first daemon's pid; the first keeps serving.
func TestSecondDaemonOnStateDirRefused(t *testing.T) {
	realDaemonOnly(t)
	dir := t.TempDir()
	const iqn = "iqn.2026-01.org.ietgo.e2e:statelock"
	conf := renderConf(t, nil, simpleTarget(dir, iqn, 1<<20))
	d := newDaemon(t, dir, conf)
	statePort(d, 3502)
	d.start()
	second := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	outb, err := exec.CommandContext(ctx, ietdBinary(t), "-f", "-c", d.conf, "-a", "127.0.0.1", "-p", "3503",
		"--pid-file", filepath.Join(second, "ietd.pid"), "--admin-socket", filepath.Join(second, "sock"),
		"--state-dir", filepath.Join(dir, "state"), "--proc-dir", filepath.Join(second, "proc"), "--acl-dir", second).CombinedOutput()
	out := string(outb)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("second daemon on the same state directory ran:\n%s", out)
	}
	if !strings.Contains(out, filepath.Join(dir, "state", "lock")) || !strings.Contains(out, strconv.Itoa(d.pid())) {
		t.Fatalf("error does not name the lock and pid %d:\n%s", d.pid(), out)
	}
	d.requireAlive(t, "a second daemon's start")
	mustSession(t, d.addr, iqn).close()
}

// A corrupt persistent reservation state file keeps its LUN out of
// service (the daemon starts, logs the file); once the administrator
// removed it, a SIGHUP brings the LUN in. A leftover temporary file is
// removed at start.
func TestCorruptStateFileKeepsLUNOut(t *testing.T) {
	realDaemonOnly(t)
	dir := t.TempDir()
	const iqn = "iqn.2026-01.org.ietgo.e2e:statebad"
	conf := renderConf(t, nil, simpleTarget(dir, iqn, 1<<20))
	state := filepath.Join(dir, "state")
	bad := filepath.Join(state, "iqn.2026-01.org.ietgo.e2e_statebad.lun0.pr.json")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"Version":1,"Target":"iqn.2026-01.org.ietgo.e2e:sta`), 0o600); err != nil {
		t.Fatal(err)
	}
	// What a crash in the middle of a state write leaves: removed at
	// start.
	tmp := bad + ".tmp123456"
	if err := os.WriteFile(tmp, []byte(`{"Vers`), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, dir, conf, "-d", "1")
	statePort(d, 3504)
	d.start()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file of an interrupted write left at start: %v", err)
	}
	if !d.waitLog(bad, 5*time.Second) {
		t.Fatal("no log line names the corrupt state file")
	}
	c := mustSession(t, d.addr, iqn)
	r, err := c.command(0, make([]byte, 6), nil, 0)
	if err != nil || r.ok() {
		t.Fatalf("LUN 0 served over a corrupt state file: %v %v", r, err)
	}
	c.close()
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	d.reload(t)
	prSession(t, d.addr, iqn, 1).close()
}
