package login

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// Login stages (CSG/NSG values).
const (
	StageSecurity    = 0
	StageOperational = 1
	StageFullFeature = 3
)

// Session types.
const (
	SessionNormal    = "Normal"
	SessionDiscovery = "Discovery"
)

// maxPendingText bounds text accumulated over Continue PDUs.
const maxPendingText = 64 << 10

// maxLoginText bounds the text of a whole login, every request together
// (a login is a few hundred bytes; CHAP with long challenges a few KiB):
// a client that keeps sending new keys before it authenticated must not
// make the target keep them without end. maxLoginRequests bounds the
// Login Requests of one login.
const (
	maxLoginText     = 256 << 10
	maxLoginRequests = 256
)

// Env is what a Machine needs from its surroundings.
type Env struct {
	// LookupTarget resolves TargetName for a normal session, applying
	// access control; it returns the target or a failure status (usually
	// StatusNotFound).
	LookupTarget func(targetName, initiatorName string) (*config.Target, Status)
	// Discovery holds the accounts for discovery sessions.
	Discovery config.Auth
	// Accounts, when set, gives a target's CHAP accounts at the time of
	// the login instead of t.Auth (NetBSD's auths file, re-read when it
	// changes).
	Accounts func(t *config.Target) config.Auth
	// TPGT is the target portal group tag sent in the first response.
	TPGT uint16
	// Rand is the source of CHAP challenges (nil: crypto/rand).
	Rand io.Reader
	// JoinSession is called on the first request of a login with a
	// non-zero TSIH (a connection added to an existing session): the
	// status refuses it at once instead of at the end of the login
	// (StatusSessionNotFound, or StatusTooManyConnections when the session
	// exists, since one connection per session is implemented). Nil
	// leaves the check to Admit.
	JoinSession func(initiatorName string, isid [6]byte, tsih uint16) Status
	// Admit is called when the login is about to enter the full feature
	// phase: it allocates the TSIH (or validates a non-zero one), handles
	// reinstatement and session limits. A non-success status fails the login.
	Admit func(r *Result) (tsih uint16, st Status)
	// Log receives debug messages (never secrets); nil disables logging.
	Log *logrus.Entry
}

// Request is a decoded Login Request.
type Request struct {
	Transit, Continue      bool
	CSG, NSG               int
	VersionMax, VersionMin byte
	ISID                   [6]byte
	TSIH                   uint16
	CID                    uint16
	ITT                    uint32
	Data                   []byte
}

// Response is the Login Response to send.
type Response struct {
	Transit, Continue bool
	CSG, NSG          int
	Status            Status
	TSIH              uint16
	Data              []byte
	// Done is set when the connection enters the full feature phase.
	Done bool
	// Failed is set when the connection must be closed after this response.
	Failed bool
}

// Result is what a finished login established.
type Result struct {
	SessionType    string
	InitiatorName  string
	InitiatorAlias string
	TargetName     string
	Target         *config.Target // nil for discovery
	ISID           [6]byte
	TSIH           uint16 // from the first request; Admit's value after login
	CID            uint16
	Params         Params
	// AuthUser is the CHAP user that authenticated ("" = none).
	AuthUser string
	// MutualAuth is set when the target authenticated itself too.
	MutualAuth bool
}

type chapState int

const (
	chapNone chapState = iota
	chapWaitAlgorithm
	chapWaitResponse
	chapDone
)

// Machine runs one connection's login. It is not safe for concurrent use.
type Machine struct {
	env Env
	res Result
	lim limits

	started      bool
	stage        int
	authRequired bool
	authOptional bool // accounts exist but CHAP is not mandatory
	authDone     bool
	authMethod   string
	chap         chapState
	chapID       byte
	challenge    []byte
	chapAlg      string // CHAP_A chosen
	accounts     config.Auth
	seen         map[string]string // negotiated keys and the value offered
	proposed     map[string]bool   // our proposals awaiting an answer
	answered     map[string]bool   // our proposals the initiator answered
	declared     bool              // operational declarations sent
	pending      []byte
	// rest is the part of a response that did not fit in one Login
	// Response (MaxLoginSegment): sent, in parts, as the initiator asks
	// for it with empty Login Requests.
	rest *Response
	// textTotal and requests count what the whole login sent.
	textTotal, requests int
	done, failed        bool
	// FailReason is a human-readable reason for the last failure (no secrets).
	FailReason string
}

// New returns a Machine for one connection.
func New(env Env) *Machine {
	if env.Rand == nil {
		env.Rand = rand.Reader
	}
	m := &Machine{env: env, seen: map[string]string{}, proposed: map[string]bool{}, answered: map[string]bool{}}
	m.res.Params = defaultParams()
	return m
}

// Result returns the login result (complete once a Response had Done).
func (m *Machine) Result() *Result { return &m.res }

// Done reports whether the login has finished successfully.
func (m *Machine) Done() bool { return m.done }

func (m *Machine) fail(req *Request, st Status, reason string) Response {
	m.failed = true
	m.FailReason = reason
	if m.env.Log != nil {
		m.env.Log.WithField("status", st.String()).Debugf("login failed: %s", reason)
	}
	return Response{CSG: req.CSG, NSG: req.NSG, Status: st, TSIH: req.TSIH, Failed: true}
}

// MaxLoginSegment is the longest data segment of a Login Request or
// Response: MaxRecvDataSegmentLength is 8192 until the login ends (RFC
// 7143 13.12).
const MaxLoginSegment = 8192

// Step processes one Login Request and returns the response. A response
// whose text does not fit in MaxLoginSegment bytes goes out in parts:
// each but the last has C=1 and T=0, and the initiator asks for the next
// with an empty Login Request (RFC 7143 6.3, 11.13.2); only the last
// part has the response's T bit, stage, status and Done.
func (m *Machine) Step(req Request) Response {
	if m.rest != nil {
		// RFC 7143 6.2: the answer to a C=1 response is a request with
		// no data segment; its T bit (an initiator that keeps asking
		// to leave the stage) changes nothing, the last part carries
		// the response's own.
		if req.Continue || len(req.Data) > 0 || req.CSG != m.rest.CSG {
			m.rest = nil
			return m.fail(&req, StatusInitiatorError, "login request while the target's text was continued: want an empty request for the rest")
		}
		return m.split(*m.rest)
	}
	return m.split(m.step(req))
}

// split returns the first MaxLoginSegment-sized part of resp and keeps
// the rest.
func (m *Machine) split(resp Response) Response {
	m.rest = nil
	if len(resp.Data) <= MaxLoginSegment || resp.Failed {
		return resp
	}
	cut := MaxLoginSegment
	for i := cut - 1; i > 0; i-- {
		if resp.Data[i] == 0 {
			cut = i + 1 // at a key boundary when one is in reach
			break
		}
	}
	rest := resp
	rest.Data = resp.Data[cut:]
	m.rest = &rest
	return Response{CSG: resp.CSG, Continue: true, Status: StatusSuccess, TSIH: resp.TSIH, Data: resp.Data[:cut]}
}

func (m *Machine) step(req Request) Response {
	m.textTotal += len(req.Data)
	m.requests++
	if m.textTotal > maxLoginText || m.requests > maxLoginRequests {
		return m.fail(&req, StatusInitiatorError, fmt.Sprintf("login too long: %d requests, %d bytes of text (at most %d and %d)",
			m.requests, m.textTotal, maxLoginRequests, maxLoginText))
	}
	if m.done || m.failed {
		return m.fail(&req, StatusInitiatorError, "login request after the login ended")
	}
	if req.Continue {
		if req.Transit {
			// RFC 7143 11.12.2: a request with C=1 MUST have T=0.
			return m.fail(&req, StatusInitiatorError, "login request with both the C and the T bit")
		}
		if req.CSG != StageSecurity && req.CSG != StageOperational {
			return m.fail(&req, StatusInitiatorError, "invalid CSG")
		}
		if len(m.pending)+len(req.Data) > maxPendingText {
			return m.fail(&req, StatusInitiatorError, "continued login text too long")
		}
		m.pending = append(m.pending, req.Data...)
		return Response{CSG: req.CSG, TSIH: req.TSIH}
	}
	data := req.Data
	if len(m.pending) > 0 {
		data = append(m.pending, data...)
		m.pending = nil
	}

	first := !m.started
	if first {
		m.started = true
		if req.VersionMin > 0 {
			return m.fail(&req, StatusVersionUnsupported, "unsupported iSCSI version")
		}
		m.res.ISID, m.res.TSIH, m.res.CID = req.ISID, req.TSIH, req.CID
	} else if req.ISID != m.res.ISID || req.TSIH != m.res.TSIH {
		return m.fail(&req, StatusInitiatorError, "ISID or TSIH changed during login")
	}
	if req.CSG != StageSecurity && req.CSG != StageOperational {
		return m.fail(&req, StatusInitiatorError, "invalid CSG")
	}
	if req.Transit && (req.NSG != StageOperational && req.NSG != StageFullFeature || req.NSG <= req.CSG) {
		return m.fail(&req, StatusInitiatorError, "invalid NSG")
	}
	kvs, err := ParseKeys(data)
	if err != nil {
		return m.fail(&req, StatusInitiatorError, err.Error())
	}

	if first {
		if st, reason := m.start(kvs); st != StatusSuccess {
			return m.fail(&req, st, reason)
		}
	}
	if req.CSG < m.stage {
		return m.fail(&req, StatusInitiatorError, "login stage went backwards")
	}
	if req.CSG == StageOperational && m.stage == StageSecurity {
		if !first {
			// The stage ends only with the target's T=1 answer (RFC
			// 7143 6.3); ours in the security stage was T=0.
			return m.fail(&req, StatusInitiatorError, "operational stage entered before the target agreed to leave the security stage")
		}
		if (m.authRequired || m.authMethod == "CHAP") && !m.authDone {
			return m.fail(&req, StatusAuthFailure, "security stage skipped but authentication is required")
		}
		m.authDone = true
		m.stage = StageOperational
	}

	var out []KV
	if first {
		out = append(out, KV{"TargetPortalGroupTag", strconv.Itoa(int(m.env.TPGT))})
	}
	sec := map[string]string{}
	for _, kv := range kvs {
		spec, known := keyTable[kv.Key]
		switch {
		case known && spec.kind == kindSecurity:
			if _, dup := sec[kv.Key]; dup {
				return m.fail(&req, StatusInitiatorError, "security key repeated: "+kv.Key)
			}
			sec[kv.Key] = kv.Value
			continue
		case known && spec.kind == kindDeclarative:
			if st, reason := m.declarative(kv); st != StatusSuccess {
				return m.fail(&req, st, reason)
			}
			continue
		case m.proposed[kv.Key]:
			m.lim.applyProposalAnswer(&m.res.Params, kv.Key, kv.Value)
			delete(m.proposed, kv.Key)
			m.answered[kv.Key] = true
			continue
		}
		// RFC 7143 6.2: a key negotiated or declared once may not come
		// again in the login, even with the same value (declarations of
		// the names and SessionType above may repeat unchanged: libiscsi
		// sends them in the security and the operational stage).
		if _, ok := m.seen[kv.Key]; ok || m.answered[kv.Key] {
			return m.fail(&req, StatusInitiatorError, "key sent twice: "+kv.Key)
		}
		m.seen[kv.Key] = kv.Value
		if ans := m.lim.negotiate(&m.res.Params, kv.Key, kv.Value); ans != "" {
			out = append(out, KV{kv.Key, ans})
		}
	}
	if clampFirstBurst(&m.res.Params) {
		// Both answered here (e.g. MaxBurstLength=8192 after
		// FirstBurstLength=65536): the answer must not exceed it either.
		for i := range out {
			if out[i].Key == "FirstBurstLength" && out[i].Value != valReject && out[i].Value != valIrrelevant {
				out[i].Value = strconv.Itoa(m.res.Params.FirstBurstLength)
			}
		}
	}

	chapBusy := false
	if len(sec) > 0 {
		if req.CSG != StageSecurity {
			if _, ok := sec["AuthMethod"]; ok && len(sec) == 1 {
				out = append(out, KV{"AuthMethod", valIrrelevant})
			} else {
				return m.fail(&req, StatusAuthFailure, "CHAP keys outside the security stage")
			}
		} else {
			var st Status
			var reason string
			out, chapBusy, st, reason = m.security(sec, out)
			if st != StatusSuccess {
				return m.fail(&req, st, reason)
			}
		}
	}

	if req.CSG == StageOperational && !m.declared {
		m.declared = true
		if !m.lim.discovery && m.res.Target != nil && m.res.Target.Alias != "" {
			out = append(out, KV{"TargetAlias", m.res.Target.Alias})
		}
		mrdsl := m.lim.cfg.MaxRecvDataSegmentLength
		if mrdsl < 512 {
			mrdsl = 8192
		}
		m.res.Params.TargetMaxRecvDSL = mrdsl
		out = append(out, KV{"MaxRecvDataSegmentLength", strconv.Itoa(mrdsl)})
		offered := map[string]bool{}
		for k := range m.seen {
			offered[k] = true
		}
		for _, p := range m.lim.proposals(offered) {
			m.proposed[p.Key] = true
			m.lim.applyProposalAnswer(&m.res.Params, p.Key, p.Value)
			out = append(out, p)
		}
	}

	resp := Response{CSG: req.CSG, NSG: req.NSG, TSIH: m.res.TSIH, Data: EncodeKeys(out)}
	if !req.Transit {
		resp.NSG = 0
		return resp
	}
	ready := true
	switch req.CSG {
	case StageSecurity:
		// CHAP chosen (mandatory, or optional and preferred): it must
		// finish before the stage can end.
		chapChosen := m.authMethod == "CHAP"
		if (m.authRequired || chapChosen) && !m.authDone {
			if !chapBusy {
				return m.fail(&req, StatusAuthFailure, "authentication required")
			}
			ready = false
		}
		if !m.authRequired && !chapChosen {
			m.authDone = true
		}
	case StageOperational:
		if len(m.proposed) > 0 {
			ready = false
		}
	}
	if !ready {
		resp.NSG = 0
		return resp
	}
	resp.Transit = true
	if req.NSG == StageOperational {
		m.stage = StageOperational
		return resp
	}
	// Entering the full feature phase.
	clampFirstBurst(&m.res.Params)
	if !m.declared {
		m.res.Params.TargetMaxRecvDSL = 8192 // never declared: RFC default
	}
	if m.env.Admit != nil {
		tsih, st := m.env.Admit(&m.res)
		if st != StatusSuccess {
			return m.fail(&req, st, "session admission refused")
		}
		m.res.TSIH = tsih
	}
	resp.TSIH = m.res.TSIH
	resp.Done = true
	m.done = true
	return resp
}

// start handles the first request's declarations.
func (m *Machine) start(kvs []KV) (Status, string) {
	get := func(k string) (string, bool) {
		for _, kv := range kvs {
			if kv.Key == k {
				return kv.Value, true
			}
		}
		return "", false
	}
	name, ok := get("InitiatorName")
	if !ok || name == "" {
		return StatusMissingParameter, "InitiatorName missing"
	}
	if msg := checkISCSIName(name); msg != "" {
		return StatusInitiatorError, "InitiatorName " + msg
	}
	m.res.InitiatorName = name
	if m.res.TSIH != 0 && m.env.JoinSession != nil {
		if st := m.env.JoinSession(name, m.res.ISID, m.res.TSIH); st != StatusSuccess {
			return st, "connection refused for the session of TSIH " + strconv.Itoa(int(m.res.TSIH))
		}
	}
	st, _ := get("SessionType")
	switch st {
	case "", SessionNormal:
		m.res.SessionType = SessionNormal
	case SessionDiscovery:
		m.res.SessionType = SessionDiscovery
	default:
		return StatusSessionTypeUnsupp, "unsupported SessionType"
	}
	tn, _ := get("TargetName")
	m.res.TargetName = tn
	if m.res.SessionType == SessionDiscovery {
		m.lim = limits{cfg: config.DefaultParams(), discovery: true}
		m.accounts = m.env.Discovery
	} else {
		if tn == "" {
			return StatusMissingParameter, "TargetName missing"
		}
		if m.env.LookupTarget == nil {
			return StatusNotFound, "no targets"
		}
		t, st := m.env.LookupTarget(tn, name)
		if t == nil || st != StatusSuccess {
			if st == StatusSuccess {
				st = StatusNotFound
			}
			return st, "target not found or access denied"
		}
		m.res.Target = t
		m.lim = limits{cfg: t.Params}
		m.accounts = t.Auth
		if m.env.Accounts != nil {
			m.accounts = m.env.Accounts(t)
		}
	}
	m.res.Params.MaxXmitDSL = m.lim.cfg.MaxXmitDataSegmentLength
	m.authRequired = len(m.accounts.Incoming) > 0 && !m.accounts.Optional
	m.authOptional = len(m.accounts.Incoming) > 0 && m.accounts.Optional
	return StatusSuccess, ""
}

func (m *Machine) declarative(kv KV) (Status, string) {
	switch kv.Key {
	case "InitiatorAlias":
		m.res.InitiatorAlias = kv.Value
		return StatusSuccess, ""
	case "InitiatorName":
		if kv.Value != m.res.InitiatorName {
			return StatusInitiatorError, "InitiatorName changed during login"
		}
	case "TargetName":
		if kv.Value != m.res.TargetName {
			return StatusInitiatorError, "TargetName changed during login"
		}
	case "SessionType":
		if kv.Value != m.res.SessionType && !(kv.Value == "" && m.res.SessionType == SessionNormal) {
			return StatusInitiatorError, "SessionType changed during login"
		}
	}
	return StatusSuccess, ""
}

// security runs AuthMethod and the CHAP exchange. busy reports that the
// CHAP exchange is in progress after this step.
func (m *Machine) security(sec map[string]string, out []KV) ([]KV, bool, Status, string) {
	if v, ok := sec["AuthMethod"]; ok {
		if m.authMethod != "" {
			return out, false, StatusInitiatorError, "AuthMethod renegotiated"
		}
		offers := splitList(v)
		switch {
		case m.authRequired && slices.Contains(offers, "CHAP"):
			m.authMethod = "CHAP"
			m.chap = chapWaitAlgorithm
		case m.authOptional && firstOf(offers, "CHAP", "None") == "CHAP":
			// CHAP is optional (NetBSD auths) and the initiator prefers it
			// to None (RFC 7143 6.2.1: the first offered value we support).
			m.authMethod = "CHAP"
			m.chap = chapWaitAlgorithm
		case !m.authRequired && slices.Contains(offers, "None"):
			m.authMethod = "None"
			m.authDone = true
		default:
			return append(out, KV{"AuthMethod", valReject}), false, StatusAuthFailure, "no acceptable AuthMethod"
		}
		out = append(out, KV{"AuthMethod", m.authMethod})
	}
	if v, ok := sec["CHAP_A"]; ok {
		if m.chap != chapWaitAlgorithm {
			return out, false, StatusAuthFailure, "unexpected CHAP_A"
		}
		alg, ok := chooseCHAP(splitList(v))
		if !ok {
			return append(out, KV{"CHAP_A", valReject}), false, StatusAuthFailure, "no supported CHAP algorithm"
		}
		m.chapAlg = alg
		var buf [1 + ChallengeLen]byte
		if _, err := io.ReadFull(m.env.Rand, buf[:]); err != nil {
			return out, false, StatusTargetError, "no random data"
		}
		m.chapID = buf[0]
		m.challenge = append([]byte(nil), buf[1:]...)
		m.chap = chapWaitResponse
		out = append(out, KV{"CHAP_A", alg}, KV{"CHAP_I", strconv.Itoa(int(m.chapID))},
			KV{"CHAP_C", EncodeHex(m.challenge)})
		return out, true, StatusSuccess, ""
	}
	n, hasN := sec["CHAP_N"]
	r, hasR := sec["CHAP_R"]
	ci, hasI := sec["CHAP_I"]
	cc, hasC := sec["CHAP_C"]
	if !hasN && !hasR && !hasI && !hasC {
		return out, m.chap == chapWaitAlgorithm, StatusSuccess, ""
	}
	if m.chap != chapWaitResponse || !hasN || !hasR {
		return out, false, StatusAuthFailure, "unexpected or incomplete CHAP response"
	}
	resp, err := DecodeBinary(r)
	if err != nil {
		return out, false, StatusAuthFailure, "malformed CHAP_R"
	}
	var acct config.Account
	found := false
	for _, a := range m.accounts.Incoming {
		if a.User == n || (m.accounts.FoldUsers && strings.EqualFold(a.User, n)) {
			acct, found = a, true
			break
		}
	}
	if !found {
		// The name is not shown: a CHAP_N that names no account is
		// often a secret typed in the user field (the log must not
		// hold it). A configured name in another case is named.
		reason := fmt.Sprintf("CHAP authentication failed: CHAP_N (%d bytes) names no account", len(n))
		for _, a := range m.accounts.Incoming {
			if strings.EqualFold(a.User, n) {
				reason += fmt.Sprintf(" (user names are case-sensitive: the account is %q)", a.User)
				break
			}
		}
		return out, false, StatusAuthFailure, reason
	}
	if !chapVerify(m.chapAlg, m.chapID, acct.Secret, m.challenge, resp) {
		return out, false, StatusAuthFailure, "CHAP authentication failed for user " + strconv.Quote(acct.User)
	}
	m.res.AuthUser = n
	if hasI || hasC {
		if !hasI || !hasC {
			return out, false, StatusAuthFailure, "mutual CHAP needs both CHAP_I and CHAP_C"
		}
		o := m.accounts.Outgoing
		if o == nil && m.accounts.MutualWithIncoming {
			o = &acct
		}
		if o == nil {
			return out, false, StatusAuthFailure, "mutual CHAP requested but no outgoing account"
		}
		id, ok := parseNumber(ci)
		if !ok || id > 255 {
			return out, false, StatusAuthFailure, "malformed CHAP_I"
		}
		ch, err := DecodeBinary(cc)
		if err != nil || len(ch) < minInitiatorChallenge || len(ch) > maxInitiatorChallenge {
			return out, false, StatusAuthFailure, "malformed CHAP_C"
		}
		if bytes.Equal(ch, m.challenge) {
			return out, false, StatusAuthFailure, "reflected CHAP challenge"
		}
		out = append(out, KV{"CHAP_N", o.User}, KV{"CHAP_R", EncodeHex(chapResponseAlg(m.chapAlg, byte(id), o.Secret, ch))})
		m.res.MutualAuth = true
	}
	m.chap = chapDone
	m.authDone = true
	m.challenge = nil
	return out, false, StatusSuccess, ""
}

// maxNameLen is the longest iSCSI name (RFC 7143 section 4.2.7.1: 223 bytes).
const maxNameLen = 223

// checkISCSIName returns why name is not a valid iSCSI name ("" if valid):
// UTF-8, at most 223 bytes, no control characters or spaces.
func checkISCSIName(name string) string {
	if len(name) > maxNameLen {
		return fmt.Sprintf("longer than %d bytes", maxNameLen)
	}
	if !utf8.ValidString(name) {
		return "is not valid UTF-8"
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return "contains a control character or space"
		}
	}
	return ""
}

// firstOf is the first of offers that is one of want ("" if none is).
func firstOf(offers []string, want ...string) string {
	for _, o := range offers {
		if slices.Contains(want, o) {
			return o
		}
	}
	return ""
}
