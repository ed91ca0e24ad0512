package e2e

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	t.Parallel()
	dir := t.TempDir()
	conf := renderConf(t, []string{"IncomingUser " + discUser + " " + discSecret},
		simpleTarget(dir, chapIQN, 4<<20, "IncomingUser "+chapUser+" "+chapSecret, "OutgoingUser "+tgtUser+" "+tgtSecret),
		simpleTarget(dir, oneWayIQN, 4<<20, "IncomingUser "+chapUser+" "+chapSecret))
	d := startDaemon(t, dir, conf, "-d", "9")
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

	t.Run("one-way CHAP with the right secret", func(t *testing.T) {
		if err := login(loginOpts{target: oneWayIQN, chap: good}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mutual CHAP with the right secrets", func(t *testing.T) {
		if err := login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, targetUser: tgtUser, targetSecret: tgtSecret}}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		se := wantLoginRefused(t, "wrong secret", login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: chapUser, secret: wrongSecret}}))
		if se.code() != 0x0201 {
			t.Errorf("status %#04x, want 0x0201 (authentication failure)", se.code())
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		wantLoginRefused(t, "unknown user", login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: "mallory", secret: chapSecret}}))
	})
	t.Run("AuthMethod=None refused when CHAP is required", func(t *testing.T) {
		err := login(loginOpts{target: oneWayIQN})
		if err == nil {
			t.Fatal("logged in without CHAP to a target with IncomingUser")
		}
		wantLoginRefused(t, "AuthMethod=None", err)
	})
	t.Run("skipping the security stage refused when CHAP is required", func(t *testing.T) {
		err := login(loginOpts{target: oneWayIQN, skipSecurity: true})
		if err == nil {
			t.Fatal("logged in without a security stage to a target with IncomingUser")
		}
		wantLoginRefused(t, "no security stage", err)
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
		wantLoginRefused(t, "replayed response", err)
	})
	t.Run("mutual CHAP requested from a target without OutgoingUser", func(t *testing.T) {
		err := login(loginOpts{target: oneWayIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, targetUser: tgtUser, targetSecret: tgtSecret}})
		if err == nil {
			t.Fatal("mutual CHAP succeeded although the target has no OutgoingUser")
		}
	})
	t.Run("mutual CHAP: target answer checked against the wrong secret", func(t *testing.T) {
		// The initiator expects another target secret: the target's
		// (correct) answer must not verify, so the login must not complete.
		err := login(loginOpts{target: chapIQN, chap: &chapCreds{user: chapUser, secret: chapSecret, targetUser: tgtUser, targetSecret: "someoneelse1"}})
		if err == nil || !strings.Contains(err.Error(), "mutual CHAP") {
			t.Fatalf("want the initiator to refuse the target's proof, got %v", err)
		}
	})
	t.Run("discovery requires CHAP when a global IncomingUser exists", func(t *testing.T) {
		wantLoginRefused(t, "discovery without CHAP", login(loginOpts{}))
		wantLoginRefused(t, "discovery with wrong secret", login(loginOpts{chap: &chapCreds{user: discUser, secret: wrongSecret}}))
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
	log := d.stderr.String()
	for _, s := range []string{chapSecret, tgtSecret, discSecret, wrongSecret} {
		if strings.Contains(log, s) {
			t.Errorf("a CHAP secret (%q) appears in the daemon's log at debug level 9", s)
		}
	}
	if len(log) == 0 {
		t.Log("note: the daemon logged nothing at -d 9")
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
