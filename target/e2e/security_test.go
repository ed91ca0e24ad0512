//go:build linux

package e2e

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	oneWayIQN   = "iqn.2026-01.org.ietgo.e2e:oneway"
	roIQN       = "iqn.2026-01.org.ietgo.e2e:readonly"
	discUser    = "discuser"
	discSecret  = "discsecret123"
	wrongSecret = "notthesecret1"
)

func wantLoginRefused(t *testing.T, what string, err error) *loginStatusError {
	t.Helper()
	var se *loginStatusError
	if !errors.As(err, &se) {
		t.Fatalf("%s: want a login refused with a status, got %v", what, err)
	}
	if se.class != 2 {
		t.Fatalf("%s: status %#04x, want an initiator error (class 2)", what, se.code())
	}
	return se
}

// TestCHAPSecurity: mandatory CHAP, wrong secrets, unknown users, replayed
// responses, mutual CHAP, discovery CHAP, and no secret in the log even at
// the highest debug level.
func TestCHAPSecurity(t *testing.T) {
	realDaemonOnly(t)
	t.Parallel()
	dir := t.TempDir()
	conf := renderConf(t, []string{"IncomingUser " + discUser + " " + discSecret},
		simpleTarget(dir, chapIQN, 4<<20, "IncomingUser "+chapUser+" "+chapSecret, "OutgoingUser "+tgtUser+" "+tgtSecret),
		simpleTarget(dir, oneWayIQN, 4<<20, "IncomingUser "+chapUser+" "+chapSecret))
	d := startDaemon(t, dir, conf, "-d", "9")
	tl := reportTally("CHAP (daemon at -d 9)")
	baseFDs := d.fdCount()
	// freed: after a failed login the daemon keeps no session and no
	// descriptor for it.
	freed := func(t *testing.T, what string) {
		t.Helper()
		if n, ok := d.waitFDs(baseFDs, 10*time.Second); !ok {
			t.Errorf("%s: daemon holds %d descriptors, %d before: the failed login was not freed", what, n, baseFDs)
		}
		if r := d.adm("--op", "show", "--sessions"); r.code != 0 || strings.Contains(r.stdout, "sid:") {
			t.Errorf("%s: session listing (exit %d) still shows a session:\n%s", what, r.code, r.stdout)
		}
	}
	login := func(o loginOpts) error {
		c, err := dial(d.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		err = c.login(o)
		if err == nil {
			err = c.ping([]byte("x"))
			if err == nil {
				err = c.logout()
			}
			if err != nil {
				t.Fatalf("after a successful login: %v", err)
			}
		}
		return err
	}
	good := &chapCreds{user: chapUser, secret: chapSecret}
	refusedWith := func(t *testing.T, what string, want uint16, err error) {
		t.Helper()
		tl.add(what, loginOutcome(err))
		se := wantLoginRefused(t, what, err)
		if se.code() != want {
			t.Errorf("%s: status %#04x, want %#04x", what, se.code(), want)
		}
		freed(t, what)
	}

	t.Run("one-way CHAP with the right secret", func(t *testing.T) {
		err := login(loginOpts{target: oneWayIQN, chap: good})
		tl.add("one-way, right secret", loginOutcome(err))
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mutual CHAP with the right secrets", func(t *testing.T) {
		err := login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, targetUser: tgtUser, targetSecret: tgtSecret}})
		tl.add("mutual, right secrets", loginOutcome(err))
		if err != nil {
			t.Fatal(err)
		}
		// The control for freed(): a live session is listed.
		c, err := dial(d.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		if err := c.login(loginOpts{target: chapIQN, chap: good}); err != nil {
			t.Fatal(err)
		}
		if r := d.adm("--op", "show", "--sessions"); r.code != 0 || !strings.Contains(r.stdout, "initiator:"+testInitiator) {
			t.Fatalf("session listing (exit %d) does not show the logged-in session:\n%s", r.code, r.stdout)
		}
		c.logout()
		c.close()
		freed(t, "logout")
	})
	t.Run("wrong secret", func(t *testing.T) {
		refusedWith(t, "one-way, wrong secret", 0x0201, login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: chapUser, secret: wrongSecret}}))
	})
	t.Run("the secret itself sent as CHAP_R", func(t *testing.T) {
		// A broken initiator that sends its secret in clear: refused, and
		// (TestCHAPSecurity's end) the value never reaches the log.
		refusedWith(t, "secret sent in clear as CHAP_R", 0x0201, login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, response: wrongSecret}}))
	})
	t.Run("unknown user", func(t *testing.T) {
		refusedWith(t, "unknown user", 0x0201, login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: "mallory", secret: chapSecret}}))
	})
	t.Run("AuthMethod=None refused when CHAP is required", func(t *testing.T) {
		err := login(loginOpts{target: oneWayIQN})
		if err == nil {
			t.Fatal("logged in without CHAP to a target with IncomingUser")
		}
		refusedWith(t, "AuthMethod=None to a CHAP target", 0x0201, err)
	})
	t.Run("skipping the security stage refused when CHAP is required", func(t *testing.T) {
		err := login(loginOpts{target: oneWayIQN, skipSecurity: true})
		if err == nil {
			t.Fatal("logged in without a security stage to a target with IncomingUser")
		}
		refusedWith(t, "security stage skipped on a CHAP target", 0x0201, err)
	})
	t.Run("replayed CHAP response", func(t *testing.T) {
		// Record a good exchange, then answer a later challenge with it.
		var challenges []string
		var lastResp string
		for range 5 {
			c, err := dial(d.addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ch, id, err := chapChallenge(c, oneWayIQN)
			c.close()
			if err != nil {
				t.Fatal(err)
			}
			challenges = append(challenges, strconv.Itoa(id)+"/"+ch)
			raw, _ := decodeCHAPBinary(ch)
			if len(raw) < 16 {
				t.Errorf("challenge of %d bytes; want at least 16", len(raw))
			}
			lastResp = "0x" + hex.EncodeToString(chapResponse(byte(id), chapSecret, raw))
		}
		slices.Sort(challenges)
		if len(slices.Compact(challenges)) != 5 {
			t.Errorf("the target repeated a CHAP challenge in 5 logins: %v", challenges)
		}
		err := login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, response: lastResp}})
		refusedWith(t, "replayed CHAP response", 0x0201, err)
	})
	t.Run("mutual CHAP requested from a target without OutgoingUser", func(t *testing.T) {
		err := login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, targetUser: tgtUser, targetSecret: tgtSecret}})
		if err == nil {
			t.Fatal("mutual CHAP succeeded although the target has no OutgoingUser")
		}
		refusedWith(t, "mutual requested, target has no OutgoingUser", 0x0201, err)
	})
	t.Run("mutual CHAP with the wrong initiator secret", func(t *testing.T) {
		refusedWith(t, "mutual, wrong initiator secret", 0x0201, login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: wrongSecret, targetUser: tgtUser, targetSecret: tgtSecret}}))
	})
	t.Run("mutual CHAP: target answer checked against the wrong secret", func(t *testing.T) {
		// The initiator expects another target secret: the target's
		// (correct) answer must not verify, so the initiator gives up
		// (closes) and the daemon must free what it set up.
		err := login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, targetUser: tgtUser, targetSecret: "someoneelse1"}})
		tl.add("mutual, initiator refuses the target's proof", fmt.Sprintf("initiator gave up: %v", err != nil && strings.Contains(err.Error(), "mutual CHAP")))
		if err == nil || !strings.Contains(err.Error(), "mutual CHAP") {
			t.Fatalf("want the initiator to refuse the target's proof, got %v", err)
		}
		freed(t, "initiator refused the target's proof")
	})
	t.Run("discovery requires CHAP when a global IncomingUser exists", func(t *testing.T) {
		refusedWith(t, "discovery without CHAP (global IncomingUser)", 0x0201, login(loginOpts{}))
		refusedWith(t, "discovery with the wrong secret", 0x0201, login(loginOpts{chap: &chapCreds{user: discUser, secret: wrongSecret}}))
		c, err := dial(d.addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		if err := c.login(loginOpts{chap: &chapCreds{user: discUser, secret: discSecret}}); err != nil {
			t.Fatal(err)
		}
		names, _, err := c.sendTargets("All")
		if err != nil || len(names) != 2 {
			t.Fatalf("SendTargets after discovery CHAP: %v %v", names, err)
		}
	})
	d.requireAlive(t, "CHAP tests")
	d.stop()
	assertNoSecrets(t, "the daemon's log at -d 9", d.allLogs(), chapSecret, tgtSecret, discSecret, wrongSecret)
}

// assertNoSecrets fails when text is empty (nothing was checked) or
// holds any of the secrets.
func assertNoSecrets(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	if strings.TrimSpace(text) == "" {
		t.Errorf("%s is empty: nothing to check for secrets (is debug logging working?)", what)
		return
	}
	for _, s := range secrets {
		if strings.Contains(text, s) {
			i := strings.Index(text, s)
			lo, hi := max(0, i-120), min(len(text), i+len(s)+40)
			t.Errorf("a secret (%q) appears in %s: ...%s...", s, what, text[lo:hi])
		}
	}
}

// chapChallenge starts a CHAP login and returns the target's challenge.
func chapChallenge(c *clientConn, target string) (string, int, error) {
	itt := c.newITT()
	if _, _, err := c.loginExchange(itt, 0, 1, false, []keyValue{{"InitiatorName", testInitiator},
		{"SessionType", "Normal"}, {"TargetName", target}, {"AuthMethod", "CHAP"}}); err != nil {
		return "", 0, err
	}
	_, got, err := c.loginExchange(itt, 0, 1, false, []keyValue{{"CHAP_A", "5"}})
	if err != nil {
		return "", 0, err
	}
	ch, _ := lookupKey(got, "CHAP_C")
	idS, _ := lookupKey(got, "CHAP_I")
	id, err := strconv.Atoi(idS)
	if err != nil {
		return "", 0, err
	}
	return ch, id, nil
}

// TestReadOnlyLUN: writes to an IOMode=ro LUN fail with DATA PROTECT and
// change nothing; reads work.
func TestReadOnlyLUN(t *testing.T) {
	realDaemonOnly(t)
	t.Parallel()
	dir := t.TempDir()
	img := filepath.Join(dir, "ro.img")
	content := make([]byte, 1<<20)
	for i := range 2048 {
		fillBlock(content[i*512:(i+1)*512], 3, uint64(i), 1)
	}
	if err := os.WriteFile(img, content, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := renderConf(t, nil, targetSpec{name: roIQN, luns: []lunSpec{
		{n: 0, path: img, iomode: "ro"},
		{n: 1, path: filepath.Join(dir, "rw.img"), size: 1 << 20},
	}})
	d := startDaemon(t, dir, conf)
	c := mustSession(t, d.addr, roIQN)
	if _, _, err := c.capacity(0); err != nil {
		t.Fatal(err)
	}
	r, err := c.read(0, 10, 4, 512)
	if err != nil || !r.ok() || string(r.data) != string(content[10*512:14*512]) {
		t.Fatalf("read from ro LUN: %v %v", r, err)
	}
	// Every command that would change the medium: WRITE(16) with and
	// without FUA, WRITE(10), WRITE SAME(16), UNMAP.
	wantProtect := func(what string, r *scsiResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s to the ro LUN: %v", what, err)
		}
		if r.status != 0x02 || !r.hasSense || r.sense.key != 0x07 || r.sense.asc != 0x27 || r.sense.ascq != 0x00 {
			t.Errorf("%s to the ro LUN: %v; want CHECK CONDITION, DATA PROTECT 07/27/00 (WRITE PROTECTED)", what, r)
		}
	}
	for _, fua := range []bool{false, true} {
		r, err = c.write(0, 10, make([]byte, 4096), 512, fua)
		wantProtect(fmt.Sprintf("WRITE(16) fua=%v", fua), r, err)
	}
	w10 := make([]byte, 10)
	w10[0] = 0x2a
	binary.BigEndian.PutUint32(w10[2:], 10)
	binary.BigEndian.PutUint16(w10[7:], 8)
	r, err = c.command(0, w10, make([]byte, 4096), 0)
	wantProtect("WRITE(10)", r, err)
	ws := make([]byte, 16)
	ws[0] = 0x93
	binary.BigEndian.PutUint64(ws[2:], 20)
	binary.BigEndian.PutUint32(ws[10:], 16)
	r, err = c.command(0, ws, make([]byte, 512), 0)
	wantProtect("WRITE SAME(16)", r, err)
	// UNMAP: DATA PROTECT when the LUN offers UNMAP (VPD B2 LBPU), else
	// the opcode is unsupported on it.
	vpd := make([]byte, 6)
	vpd[0], vpd[1], vpd[2], vpd[4] = 0x12, 0x01, 0xb2, 64
	lbpu := false
	if v, err := c.command(0, vpd, nil, 64); err == nil && v.ok() && len(v.data) >= 6 {
		lbpu = v.data[5]&0x80 != 0
	}
	um := make([]byte, 10)
	um[0] = 0x42
	binary.BigEndian.PutUint16(um[7:], 24)
	param := make([]byte, 24)
	binary.BigEndian.PutUint16(param[0:], 22)
	binary.BigEndian.PutUint16(param[2:], 16)
	binary.BigEndian.PutUint64(param[8:], 30)
	binary.BigEndian.PutUint32(param[16:], 8)
	r, err = c.command(0, um, param, 0)
	if lbpu {
		wantProtect("UNMAP", r, err)
	} else if err != nil || r.status != 0x02 || !r.hasSense || (r.sense.key != 0x07 && !(r.sense.key == 0x05 && r.sense.asc == 0x20)) {
		t.Errorf("UNMAP to the ro LUN (LBPU=0): %v %v; want DATA PROTECT or ILLEGAL REQUEST/invalid opcode", r, err)
	}
	t.Logf("UNMAP on the ro LUN (LBPU=%v): %v", lbpu, r)
	got, _ := os.ReadFile(img)
	if string(got) != string(content) {
		t.Fatal("the read-only backing file changed")
	}
	if _, _, err := c.capacity(1); err != nil {
		t.Fatal(err)
	}
	r, err = c.write(1, 0, make([]byte, 4096), 512, false)
	if err != nil || !r.ok() {
		t.Fatalf("write to the rw LUN next to it: %v %v", r, err)
	}
}

// TestSecretsNeverInLogs: no CHAP secret reaches the daemon's log at the
// highest debug level, nor `ietd --check` output, whatever path it takes:
// ietadm account new/show/delete (good and refused), a reload whose
// IncomingUser lines are broken, a login whose CHAP_R is the secret in
// clear. An empty log fails the test (there would be nothing to check).
func TestSecretsNeverInLogs(t *testing.T) {
	realDaemonOnly(t)
	t.Parallel()
	dir := t.TempDir()
	const (
		admSecret    = "admsecret-Q7x2"   // set with ietadm
		admBadSecret = "admbadsecret-K9p" // in a refused ietadm request
		admOutSecret = "admoutsecret-M3v" // outgoing account via ietadm
		shortSecret  = "shrt-S8"          // a too-short secret (warned about)
		extraSecret  = "extra-secret-W1"  // trailing field after a secret
		clearSecret  = "cleartext-R5n"    // sent in clear as CHAP_R
	)
	secrets := []string{chapSecret, tgtSecret, discSecret, admSecret, admBadSecret, admOutSecret, shortSecret, extraSecret, clearSecret}
	good := renderConf(t, []string{"IncomingUser " + discUser + " " + discSecret},
		simpleTarget(dir, chapIQN, 1<<20, "IncomingUser "+chapUser+" "+chapSecret, "OutgoingUser "+tgtUser+" "+tgtSecret))
	d := startDaemon(t, dir, good, "-d", "9")

	// ietd --check on the good config and on broken ones.
	check := func(conf string) string {
		p := filepath.Join(dir, "check.conf")
		if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, d.bin, "--check", "-d", "9", "-c", p, "--acl-dir", dir).CombinedOutput()
		return string(out)
	}
	broken := good + "\tIncomingUser joe " + extraSecret + " trailing-field\n" +
		"\tIncomingUser ann " + shortSecret + "\n" +
		"\tOutgoingUser lonely-name\n" +
		"\tIncomingUser\n"
	out := check(good)
	assertNoSecrets(t, "ietd --check of a config with secrets", out, secrets...)
	if !strings.Contains(out, "ok") {
		t.Errorf("ietd --check of the good config: %s", out)
	}
	out = check(broken)
	assertNoSecrets(t, "ietd --check of a config with broken account lines", out, secrets...)
	if !strings.Contains(out, "error") {
		t.Errorf("ietd --check of the broken config reports no error: %s", out)
	}

	// ietadm account operations, accepted and refused.
	for _, args := range [][]string{
		{"--op", "new", "--tid=1", "--user", "--params", "IncomingUser=joe,Password=" + admSecret},
		{"--op", "new", "--tid=1", "--user", "--params", "OutgoingUser=out,Password=" + admOutSecret},
		{"--op", "show", "--tid=1", "--user"},
		{"--op", "new", "--tid=1", "--user", "--params", "IncomingUser=joe,Password=" + admBadSecret + ",Bogus=1"},
		{"--op", "new", "--tid=9", "--user", "--params", "IncomingUser=joe,Password=" + admBadSecret},
		{"--op", "new", "--tid=1", "--user", "--params", "Password=" + admBadSecret},
		{"--op", "delete", "--tid=1", "--user", "--params", "IncomingUser=joe"},
		{"--op", "delete", "--tid=1", "--user", "--params", "IncomingUser=nobody-here"},
	} {
		r := d.adm(args...)
		// The account listing names users only; a shown secret is the
		// admin's own explicit request and only on ietadm's stdout.
		if args[1] == "show" {
			assertNoSecrets(t, "ietadm --op show --user (account listing)", r.stdout, secrets...)
		}
	}
	// A login that sends a secret in clear as its CHAP response.
	c, err := dial(d.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, response: clearSecret}})
	c.close()
	wantLoginRefused(t, "secret in clear as CHAP_R", err)

	// A reload with broken account lines: refused, the running config
	// kept, and nothing of the file's secrets in the log.
	if err := os.WriteFile(d.conf, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !d.waitLog("reload failed", 10*time.Second) {
		t.Errorf("no \"reload failed\" in the log after a SIGHUP with a broken IncomingUser line")
	}
	// Still serving with the old accounts.
	c, err = dial(d.addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret}}); err != nil {
		t.Errorf("login with the running config's account after the refused reload: %v", err)
	}
	c.close()
	d.requireAlive(t, "secret paths")
	d.stop()
	log := d.allLogs()
	assertNoSecrets(t, "the daemon's log at -d 9", log, secrets...)
	// The log is the debug log, not just start-up lines.
	for _, want := range []string{"level=debug", "reload failed", "ietadm request failed"} {
		if !strings.Contains(log, want) {
			t.Errorf("the daemon's log at -d 9 has no %q: the paths above were not logged, so the check proves little", want)
		}
	}
}
