package login

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

const secTarget = "iqn.2026-01.org.example:sec"

// secDriver runs one login against a target with the given auth.
type secDriver struct {
	t       *testing.T
	m       *Machine
	id      byte
	ch      []byte
	alg     string
	last    Response
	lastKVs map[string]string
}

func newSecDriver(t *testing.T, auth config.Auth, discovery config.Auth) *secDriver {
	tg := config.NewTarget(1, secTarget)
	tg.Auth = auth
	env := Env{
		TPGT:      1,
		Discovery: discovery,
		LookupTarget: func(name, ini string) (*config.Target, Status) {
			if name == secTarget {
				return tg, StatusSuccess
			}
			return nil, StatusNotFound
		},
		Admit: func(r *Result) (uint16, Status) { return 1, StatusSuccess },
	}
	return &secDriver{t: t, m: New(env)}
}

// step sends one request (kv: "Key=Value" items) and records the
// target's CHAP_I/CHAP_C.
func (d *secDriver) step(csg, nsg int, transit bool, kv ...string) Response {
	var kvs []KV
	for _, s := range kv {
		k, v, _ := strings.Cut(s, "=")
		kvs = append(kvs, KV{k, v})
	}
	r := d.m.Step(Request{CSG: csg, NSG: nsg, Transit: transit, ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, Data: EncodeKeys(kvs)})
	got, err := ParseKeys(r.Data)
	if err != nil {
		d.t.Fatalf("target sent malformed text: %v", err)
	}
	d.lastKVs = map[string]string{}
	for _, kv := range got {
		d.lastKVs[kv.Key] = kv.Value
		switch kv.Key {
		case "CHAP_I":
			n, _ := strconv.Atoi(kv.Value)
			d.id = byte(n)
		case "CHAP_C":
			d.ch, _ = DecodeBinary(kv.Value)
		case "CHAP_A":
			d.alg = kv.Value
		}
	}
	d.last = r
	return r
}

// challenge runs the login up to the target's CHAP challenge.
func (d *secDriver) challenge(algs string, extra ...string) {
	d.t.Helper()
	r := d.step(0, 1, true, append([]string{"InitiatorName=iqn.x:h", "TargetName=" + secTarget, "AuthMethod=CHAP"}, extra...)...)
	if r.Failed || d.lastKVs["AuthMethod"] != "CHAP" {
		d.t.Fatalf("AuthMethod=CHAP: %v %v", r.Status, d.lastKVs)
	}
	r = d.step(0, 1, true, "CHAP_A="+algs)
	if r.Failed || r.Transit || len(d.ch) == 0 {
		d.t.Fatalf("CHAP_A=%s: status %v, keys %v", algs, r.Status, d.lastKVs)
	}
}

func (d *secDriver) response(secret string) []byte {
	return chapResponseAlg(d.alg, d.id, secret, d.ch)
}

func wantFailed(t *testing.T, what string, r Response, st Status) {
	t.Helper()
	if !r.Failed || r.Done || r.Status != st {
		t.Errorf("%s: status %v failed=%v done=%v; want failed with %v", what, r.Status, r.Failed, r.Done, st)
	}
}

func wantAuthenticated(t *testing.T, what string, r Response) {
	t.Helper()
	if r.Failed || r.Status != StatusSuccess || !r.Transit {
		t.Errorf("%s: status %v failed=%v T=%v; want the security stage passed", what, r.Status, r.Failed, r.Transit)
	}
}

var alice = config.Auth{Incoming: []config.Account{{User: "alice", Secret: "alicesecret12"}}}

// TestDecodeBinaryForms: RFC 7143 6.1 binary values: 0x/0X hex in
// either case (an odd digit count has an implied leading zero), 0b/0B
// base64 with or without padding; anything else, an empty value or one
// over MaxBinaryValueLen is refused.
func TestDecodeBinaryForms(t *testing.T) {
	raw := []byte{0x0a, 0xbc, 0xde, 0xf0, 0x12}
	for _, c := range []struct {
		in   string
		want []byte
	}{
		{"0x0abcdef012", raw},
		{"0X0ABCDEF012", raw},
		{"0x0AbCdEf012", raw},
		{"0xabcdef012", raw}, // odd: leading zero implied
		{"0xf", []byte{0x0f}},
		{"0b" + base64.StdEncoding.EncodeToString(raw), raw},
		{"0B" + base64.StdEncoding.EncodeToString(raw), raw},
		{"0b" + base64.RawStdEncoding.EncodeToString(raw), raw},
	} {
		got, err := DecodeBinary(c.in)
		if err != nil || !bytes.Equal(got, c.want) {
			t.Errorf("DecodeBinary(%q) = %x, %v; want %x", c.in, got, err, c.want)
		}
	}
	for _, in := range []string{
		"", "0x", "0b", "0", "abcdef", "0abc", "x0ab", "0xzz", "0x12 34", "0x-1", "0b!!!!", "0b====",
		"0c1234", "1x1234", " 0x1234",
		"0x" + strings.Repeat("ab", MaxBinaryValueLen/2), // over the bound with its prefix
		"0b" + strings.Repeat("A", MaxBinaryValueLen),
	} {
		if got, err := DecodeBinary(in); err == nil {
			t.Errorf("DecodeBinary(%.40q) = %x; want an error", in, got)
		}
	}
}

// TestCHAPResponseForms: the same CHAP response is accepted in every
// encoding RFC 7143 allows; a response of the wrong length (truncated,
// extended, another algorithm's size) or malformed is refused.
func TestCHAPResponseForms(t *testing.T) {
	forms := map[string]func([]byte) string{
		"lower hex": func(b []byte) string { return "0x" + hex.EncodeToString(b) },
		"upper hex": func(b []byte) string { return "0X" + strings.ToUpper(hex.EncodeToString(b)) },
		"base64":    func(b []byte) string { return "0b" + base64.StdEncoding.EncodeToString(b) },
		"base64 0B": func(b []byte) string { return "0B" + base64.StdEncoding.EncodeToString(b) },
	}
	for name, enc := range forms {
		d := newSecDriver(t, alice, config.Auth{})
		d.challenge("5")
		wantAuthenticated(t, name, d.step(0, 1, true, "CHAP_N=alice", "CHAP_R="+enc(d.response("alicesecret12"))))
	}
	bad := map[string]func(good []byte) string{
		"truncated":          func(g []byte) string { return EncodeHex(g[:len(g)-1]) },
		"one byte too many":  func(g []byte) string { return EncodeHex(append(append([]byte(nil), g...), 0)) },
		"first byte only":    func(g []byte) string { return EncodeHex(g[:1]) },
		"SHA-256 size":       func(g []byte) string { return EncodeHex(append(append([]byte(nil), g...), g...)) },
		"not hex":            func(g []byte) string { return "0x" + strings.Repeat("g", 2*len(g)) },
		"no prefix":          func(g []byte) string { return hex.EncodeToString(g) },
		"empty":              func(g []byte) string { return "" },
		"the secret":         func(g []byte) string { return "alicesecret12" },
		"over-long":          func(g []byte) string { return "0x" + strings.Repeat("00", MaxBinaryValueLen) },
		"right bytes, 1 bit": func(g []byte) string { b := append([]byte(nil), g...); b[0] ^= 1; return EncodeHex(b) },
	}
	for name, f := range bad {
		d := newSecDriver(t, alice, config.Auth{})
		d.challenge("5")
		wantFailed(t, "CHAP_R "+name, d.step(0, 1, true, "CHAP_N=alice", "CHAP_R="+f(d.response("alicesecret12"))), StatusAuthFailure)
	}
}

// TestCHAPAlgorithmLists: the initiator's first supported algorithm is
// used, unknown ones are skipped; a list with none we support, an empty
// value or a second CHAP_A fails the login. The response is checked with
// the algorithm chosen (an MD5 response to a SHA-256 exchange fails).
func TestCHAPAlgorithmLists(t *testing.T) {
	for _, c := range []struct{ list, want string }{
		{"5", "5"}, {"99,5", "5"}, {"0,x,5,7", "5"}, {"7,5", "7"}, {"255,8", "8"},
	} {
		d := newSecDriver(t, alice, config.Auth{})
		d.challenge(c.list)
		if d.alg != c.want {
			t.Errorf("CHAP_A=%s: target chose %s, want %s", c.list, d.alg, c.want)
		}
		wantAuthenticated(t, "CHAP_A="+c.list, d.step(0, 1, true, "CHAP_N=alice", "CHAP_R="+EncodeHex(d.response("alicesecret12"))))
	}
	for _, list := range []string{"99", "", "md5", "MD5", "05x", "1,2,3,4", "5 "} {
		d := newSecDriver(t, alice, config.Auth{})
		d.step(0, 1, true, "InitiatorName=iqn.x:h", "TargetName="+secTarget, "AuthMethod=CHAP")
		wantFailed(t, "CHAP_A="+list, d.step(0, 1, true, "CHAP_A="+list), StatusAuthFailure)
	}
	d := newSecDriver(t, alice, config.Auth{})
	d.challenge("7")
	md5Resp := chapResponseAlg(chapMD5, d.id, "alicesecret12", d.ch)
	wantFailed(t, "MD5 response in a SHA-256 exchange", d.step(0, 1, true, "CHAP_N=alice", "CHAP_R="+EncodeHex(md5Resp)), StatusAuthFailure)

	d = newSecDriver(t, alice, config.Auth{})
	d.challenge("5")
	wantFailed(t, "second CHAP_A (a new challenge asked for)", d.step(0, 1, true, "CHAP_A=5"), StatusAuthFailure)
}

// TestCHAPChallenges: with the default source (crypto/rand) challenges
// are at least 16 bytes, sent as hex, and differ from login to login;
// CHAP_I is a decimal 0..255.
func TestCHAPChallenges(t *testing.T) {
	seen := map[string]bool{}
	for i := range 20 {
		d := newSecDriver(t, alice, config.Auth{})
		d.challenge("5")
		c := d.lastKVs["CHAP_C"]
		if !strings.HasPrefix(c, "0x") || len(d.ch) < 16 {
			t.Fatalf("challenge %q: want 0x hex of at least 16 bytes", c)
		}
		if n, err := strconv.Atoi(d.lastKVs["CHAP_I"]); err != nil || n < 0 || n > 255 {
			t.Fatalf("CHAP_I=%q: want a decimal 0..255", d.lastKVs["CHAP_I"])
		}
		if seen[c] {
			t.Fatalf("login %d repeated an earlier challenge %s", i, c)
		}
		seen[c] = true
	}
}

// TestCHAPUserNames: CHAP_N must be a configured user as written (IET
// compared them exactly); only NetBSD's auths (FoldUsers) ignore case.
// An account with an empty secret never authenticates (anyone could
// compute its response).
func TestCHAPUserNames(t *testing.T) {
	for _, n := range []string{"Alice", "ALICE", "alice ", " alice", "alic", "alice\t"} {
		d := newSecDriver(t, alice, config.Auth{})
		d.challenge("5")
		wantFailed(t, "CHAP_N="+strconv.Quote(n), d.step(0, 1, true, "CHAP_N="+n, "CHAP_R="+EncodeHex(d.response("alicesecret12"))), StatusAuthFailure)
	}
	// The failure reason (logged) never repeats a CHAP_N that names no
	// account (often a secret typed in the user field); a configured
	// name in another case is pointed out.
	for _, c := range []struct{ n, want string }{
		{"Alice", `case-sensitive: the account is "alice"`},
		{"Typed-Secret-0815", "CHAP_N (17 bytes) names no account"},
	} {
		d := newSecDriver(t, alice, config.Auth{})
		d.challenge("5")
		d.step(0, 1, true, "CHAP_N="+c.n, "CHAP_R="+EncodeHex(d.response("alicesecret12")))
		if r := d.m.FailReason; !strings.Contains(r, c.want) || strings.Contains(r, c.n) {
			t.Errorf("CHAP_N=%s: reason %q; want %q and not the name sent", c.n, r, c.want)
		}
	}
	fold := alice
	fold.FoldUsers = true
	d := newSecDriver(t, fold, config.Auth{})
	d.challenge("5")
	wantAuthenticated(t, "CHAP_N=ALICE with FoldUsers", d.step(0, 1, true, "CHAP_N=ALICE", "CHAP_R="+EncodeHex(d.response("alicesecret12"))))

	empty := config.Auth{Incoming: []config.Account{{User: "eve", Secret: ""}, {User: "alice", Secret: "alicesecret12"}}}
	d = newSecDriver(t, empty, config.Auth{})
	d.challenge("5")
	wantFailed(t, "account with an empty secret", d.step(0, 1, true, "CHAP_N=eve", "CHAP_R="+EncodeHex(d.response(""))), StatusAuthFailure)
	d = newSecDriver(t, empty, config.Auth{})
	d.challenge("5")
	wantAuthenticated(t, "the other account next to it", d.step(0, 1, true, "CHAP_N=alice", "CHAP_R="+EncodeHex(d.response("alicesecret12"))))
}

// TestAuthMethodLists: with CHAP required, None is refused whatever the
// list; a list naming CHAP anywhere chooses it; without accounts, None.
func TestAuthMethodLists(t *testing.T) {
	optional := alice
	optional.Optional = true
	for _, c := range []struct {
		name string
		auth config.Auth
		list string
		want string // "" = refused
	}{
		{"required", alice, "None", ""},
		{"required", alice, "CHAP,None", "CHAP"},
		{"required", alice, "None,CHAP", "CHAP"},
		{"required", alice, "SRP,KRB5", ""},
		{"required", alice, "chap", ""}, // values are case-sensitive
		{"required", alice, "", ""},
		{"optional", optional, "None,CHAP", "None"},
		{"optional", optional, "CHAP,None", "CHAP"},
		{"no accounts", config.Auth{}, "CHAP,None", "None"},
		{"no accounts", config.Auth{}, "CHAP", ""},
	} {
		d := newSecDriver(t, c.auth, config.Auth{})
		r := d.step(0, 1, true, "InitiatorName=iqn.x:h", "TargetName="+secTarget, "AuthMethod="+c.list)
		what := c.name + ": AuthMethod=" + c.list
		if c.want == "" {
			wantFailed(t, what, r, StatusAuthFailure)
			continue
		}
		if r.Failed || d.lastKVs["AuthMethod"] != c.want {
			t.Errorf("%s: status %v, AuthMethod=%s; want %s", what, r.Status, d.lastKVs["AuthMethod"], c.want)
		}
		if c.want == "CHAP" && r.Transit {
			t.Errorf("%s: the target agreed to leave the security stage before CHAP", what)
		}
	}
}

// TestSecurityStageCannotBeSkipped: when CHAP is required, no sequence
// of stage numbers and T bits gets past the security stage without a
// verified CHAP_R: starting in the operational stage, asking for the
// full feature phase at once, switching to the operational stage in the
// middle of the exchange, or sending CHAP_N without CHAP_R.
func TestSecurityStageCannotBeSkipped(t *testing.T) {
	first := []string{"InitiatorName=iqn.x:h", "TargetName=" + secTarget}
	for _, tc := range []struct {
		name string
		run  func(d *secDriver) Response
	}{
		{"CSG=1 from the start", func(d *secDriver) Response { return d.step(1, 3, true, first...) }},
		{"CSG=1 from the start, no T", func(d *secDriver) Response { return d.step(1, 1, false, first...) }},
		{"CSG=0 T to full feature, no AuthMethod", func(d *secDriver) Response { return d.step(0, 3, true, first...) }},
		{"CSG=0 T to operational, no AuthMethod", func(d *secDriver) Response { return d.step(0, 1, true, first...) }},
		{"CSG=1 after AuthMethod=CHAP", func(d *secDriver) Response {
			d.step(0, 1, true, append(first, "AuthMethod=CHAP")...)
			return d.step(1, 3, true)
		}},
		{"CSG=1 after the challenge", func(d *secDriver) Response {
			d.challenge("5")
			return d.step(1, 3, true)
		}},
		{"CSG=1 with the right response", func(d *secDriver) Response {
			d.challenge("5")
			return d.step(1, 3, true, "CHAP_N=alice", "CHAP_R="+EncodeHex(d.response("alicesecret12")))
		}},
		{"CHAP_N without CHAP_R", func(d *secDriver) Response {
			d.challenge("5")
			return d.step(0, 3, true, "CHAP_N=alice")
		}},
		{"CHAP_R before CHAP_A", func(d *secDriver) Response {
			d.step(0, 1, false, append(first, "AuthMethod=CHAP")...)
			return d.step(0, 1, true, "CHAP_N=alice", "CHAP_R=0x00112233445566778899aabbccddeeff")
		}},
		{"empty request T to full feature", func(d *secDriver) Response {
			d.challenge("5")
			return d.step(0, 3, true)
		}},
		{"AuthMethod=None after CHAP was chosen", func(d *secDriver) Response {
			d.step(0, 1, false, append(first, "AuthMethod=CHAP")...)
			return d.step(0, 3, true, "AuthMethod=None")
		}},
	} {
		d := newSecDriver(t, alice, config.Auth{})
		var r Response
		for range 3 {
			// An answer with T=0 is no way through: send it again
			// (bounded) until the login fails or passes.
			r = tc.run(d)
			if r.Failed || r.Transit || r.Done {
				break
			}
			d = &secDriver{t: t, m: d.m, id: d.id, ch: d.ch, alg: d.alg}
		}
		if r.Done || (r.Transit && !r.Failed) || d.m.Result().AuthUser != "" && tc.name != "CSG=1 with the right response" {
			t.Errorf("%s: status %v T=%v done=%v: the security stage was skipped", tc.name, r.Status, r.Transit, r.Done)
		}
		if !r.Failed {
			t.Errorf("%s: status %v; want the login failed", tc.name, r.Status)
		}
	}
}

// TestMutualCHAPRules: mutual CHAP needs an outgoing account (refused
// without one), both CHAP_I and CHAP_C, a CHAP_I of 0..255, a challenge
// of 1..1024 bytes that is not the target's own (reflection, RFC 7143
// 12.1.3); the target's answer is the outgoing secret's response.
func TestMutualCHAPRules(t *testing.T) {
	mutual := alice
	mutual.Outgoing = &config.Account{User: "tgt", Secret: "targetsecret1"}
	ic := bytes.Repeat([]byte{0x5a}, 16)
	for _, c := range []struct {
		name string
		auth config.Auth
		keys func(d *secDriver) []string
		ok   bool
	}{
		{"good", mutual, func(d *secDriver) []string { return []string{"CHAP_I=9", "CHAP_C=" + EncodeHex(ic)} }, true},
		{"no OutgoingUser", alice, func(d *secDriver) []string { return []string{"CHAP_I=9", "CHAP_C=" + EncodeHex(ic)} }, false},
		{"reflected challenge", mutual, func(d *secDriver) []string { return []string{"CHAP_I=9", "CHAP_C=" + EncodeHex(d.ch)} }, false},
		{"reflected challenge in base64", mutual, func(d *secDriver) []string {
			return []string{"CHAP_I=9", "CHAP_C=0b" + base64.StdEncoding.EncodeToString(d.ch)}
		}, false},
		{"reflected challenge and id", mutual, func(d *secDriver) []string {
			return []string{"CHAP_I=" + strconv.Itoa(int(d.id)), "CHAP_C=" + EncodeHex(d.ch)}
		}, false},
		{"CHAP_I 256", mutual, func(d *secDriver) []string { return []string{"CHAP_I=256", "CHAP_C=" + EncodeHex(ic)} }, false},
		{"CHAP_I negative", mutual, func(d *secDriver) []string { return []string{"CHAP_I=-1", "CHAP_C=" + EncodeHex(ic)} }, false},
		{"CHAP_I empty", mutual, func(d *secDriver) []string { return []string{"CHAP_I=", "CHAP_C=" + EncodeHex(ic)} }, false},
		{"CHAP_C only", mutual, func(d *secDriver) []string { return []string{"CHAP_C=" + EncodeHex(ic)} }, false},
		{"CHAP_C over 1024 bytes", mutual, func(d *secDriver) []string {
			return []string{"CHAP_I=9", "CHAP_C=" + EncodeHex(make([]byte, 1025))}
		}, false},
		{"CHAP_C of 1024 bytes", mutual, func(d *secDriver) []string {
			return []string{"CHAP_I=9", "CHAP_C=" + EncodeHex(bytes.Repeat([]byte{7}, 1024))}
		}, true},
	} {
		d := newSecDriver(t, c.auth, config.Auth{})
		d.challenge("5")
		keys := append([]string{"CHAP_N=alice", "CHAP_R=" + EncodeHex(d.response("alicesecret12"))}, c.keys(d)...)
		r := d.step(0, 1, true, keys...)
		if !c.ok {
			wantFailed(t, "mutual CHAP, "+c.name, r, StatusAuthFailure)
			if d.lastKVs["CHAP_R"] != "" {
				t.Errorf("mutual CHAP, %s: the target answered the challenge although it refused the login", c.name)
			}
			continue
		}
		wantAuthenticated(t, "mutual CHAP, "+c.name, r)
		ch, _ := DecodeBinary(keys[len(keys)-1][len("CHAP_C="):])
		want := EncodeHex(chapResponseAlg(chapMD5, 9, "targetsecret1", ch))
		if d.lastKVs["CHAP_N"] != "tgt" || d.lastKVs["CHAP_R"] != want || !d.m.Result().MutualAuth {
			t.Errorf("mutual CHAP, %s: target answered %v; want CHAP_N=tgt CHAP_R=%s", c.name, d.lastKVs, want)
		}
	}
	// The target answers the initiator's challenge only once the
	// initiator proved itself: a wrong CHAP_R gets no CHAP_R back (no
	// oracle for the outgoing secret).
	d := newSecDriver(t, mutual, config.Auth{})
	d.challenge("5")
	r := d.step(0, 1, true, "CHAP_N=alice", "CHAP_R="+EncodeHex(d.response("wrongsecret1")), "CHAP_I=9", "CHAP_C="+EncodeHex(ic))
	wantFailed(t, "mutual CHAP with a wrong initiator response", r, StatusAuthFailure)
	if len(r.Data) != 0 {
		t.Errorf("the refused login's response carries text: %q", r.Data)
	}
}

// TestDiscoveryCHAP: a discovery account makes CHAP mandatory for
// discovery sessions (not for normal ones of an open target); without
// one, discovery needs none.
func TestDiscoveryCHAP(t *testing.T) {
	disc := config.Auth{Incoming: []config.Account{{User: "disc", Secret: "discsecret123"}}}
	start := []string{"InitiatorName=iqn.x:h", "SessionType=Discovery"}
	d := newSecDriver(t, config.Auth{}, disc)
	wantFailed(t, "discovery AuthMethod=None with a discovery account", d.step(0, 1, true, append(start, "AuthMethod=None")...), StatusAuthFailure)
	d = newSecDriver(t, config.Auth{}, disc)
	wantFailed(t, "discovery skipping security with a discovery account", d.step(1, 3, true, start...), StatusAuthFailure)
	d = newSecDriver(t, config.Auth{}, disc)
	d.step(0, 1, true, append(start, "AuthMethod=CHAP")...)
	d.step(0, 1, true, "CHAP_A=5")
	wantFailed(t, "discovery CHAP with a target's account", d.step(0, 1, true, "CHAP_N=alice", "CHAP_R="+EncodeHex(d.response("alicesecret12"))), StatusAuthFailure)
	d = newSecDriver(t, alice, disc)
	d.step(0, 1, true, append(start, "AuthMethod=CHAP")...)
	d.step(0, 1, true, "CHAP_A=5")
	wantAuthenticated(t, "discovery CHAP with the discovery account", d.step(0, 1, true, "CHAP_N=disc", "CHAP_R="+EncodeHex(d.response("discsecret123"))))
	d = newSecDriver(t, alice, config.Auth{})
	if r := d.step(1, 3, true, start...); r.Failed || !r.Done {
		t.Errorf("discovery without discovery accounts: %v; want logged in", r.Status)
	}
	d = newSecDriver(t, config.Auth{}, disc)
	if r := d.step(1, 3, true, "InitiatorName=iqn.x:h", "TargetName="+secTarget); r.Failed || !r.Done {
		t.Errorf("normal session to an open target with a discovery account: %v; want logged in", r.Status)
	}
}
