package login

import (
	"strconv"

	"github.com/ietgo/ietd/target/config"
)

// Params are the negotiated parameters of a session and connection.
type Params struct {
	HeaderDigest bool // CRC32C
	DataDigest   bool // CRC32C

	MaxConnections      int
	InitialR2T          bool
	ImmediateData       bool
	MaxBurstLength      int
	FirstBurstLength    int
	DefaultTime2Wait    int
	DefaultTime2Retain  int
	MaxOutstandingR2T   int
	DataPDUInOrder      bool
	DataSequenceInOrder bool
	ErrorRecoveryLevel  int
	IFMarker, OFMarker  bool

	// InitiatorMaxRecvDSL is what the initiator declared it can receive
	// (the limit for Data-In / Text / NOP-In segments we send).
	InitiatorMaxRecvDSL int
	// TargetMaxRecvDSL is what we declared (the limit on what we accept).
	TargetMaxRecvDSL int
	// MaxXmitDSL caps our sent segments (IET MaxXmitDataSegmentLength).
	MaxXmitDSL int
}

// RFC 7143 defaults used when a key is not negotiated.
func defaultParams() Params {
	return Params{
		MaxConnections:      1,
		InitialR2T:          true,
		ImmediateData:       true,
		MaxBurstLength:      262144,
		FirstBurstLength:    65536,
		DefaultTime2Wait:    2,
		DefaultTime2Retain:  20,
		MaxOutstandingR2T:   1,
		DataPDUInOrder:      true,
		DataSequenceInOrder: true,
		InitiatorMaxRecvDSL: 8192,
		TargetMaxRecvDSL:    8192,
		MaxXmitDSL:          8192,
	}
}

// SendSegmentLimit is the largest data segment we may send.
func (p *Params) SendSegmentLimit() int {
	n := p.InitiatorMaxRecvDSL
	if p.MaxXmitDSL > 0 && p.MaxXmitDSL < n {
		n = p.MaxXmitDSL
	}
	if n <= 0 {
		n = 8192
	}
	return n
}

// Map renders the parameters as iSCSI key=value strings (for listings).
func (p *Params) Map() map[string]string {
	yn := func(b bool) string {
		if b {
			return "Yes"
		}
		return "No"
	}
	dg := func(b bool) string {
		if b {
			return "CRC32C"
		}
		return "None"
	}
	return map[string]string{
		"HeaderDigest":             dg(p.HeaderDigest),
		"DataDigest":               dg(p.DataDigest),
		"MaxConnections":           strconv.Itoa(p.MaxConnections),
		"InitialR2T":               yn(p.InitialR2T),
		"ImmediateData":            yn(p.ImmediateData),
		"MaxRecvDataSegmentLength": strconv.Itoa(p.TargetMaxRecvDSL),
		"MaxXmitDataSegmentLength": strconv.Itoa(p.SendSegmentLimit()),
		"MaxBurstLength":           strconv.Itoa(p.MaxBurstLength),
		"FirstBurstLength":         strconv.Itoa(p.FirstBurstLength),
		"DefaultTime2Wait":         strconv.Itoa(p.DefaultTime2Wait),
		"DefaultTime2Retain":       strconv.Itoa(p.DefaultTime2Retain),
		"MaxOutstandingR2T":        strconv.Itoa(p.MaxOutstandingR2T),
		"DataPDUInOrder":           yn(p.DataPDUInOrder),
		"DataSequenceInOrder":      yn(p.DataSequenceInOrder),
		"ErrorRecoveryLevel":       strconv.Itoa(p.ErrorRecoveryLevel),
		"IFMarker":                 yn(p.IFMarker),
		"OFMarker":                 yn(p.OFMarker),
	}
}

// keyKind is how a key is negotiated.
type keyKind int

const (
	kindDeclarative keyKind = iota // no answer
	kindMin                        // numeric, result = min
	kindMax                        // numeric, result = max
	kindOr                         // boolean OR
	kindAnd                        // boolean AND
	kindList                       // first of the offer we accept
	kindMinDeclared                // numeric, declarative (MaxRecvDataSegmentLength)
	kindIrrelevant                 // always answered Irrelevant
	kindSecurity                   // AuthMethod / CHAP_*: handled by the CHAP code
	kindTargetOnly                 // keys only a target may send
	kindObsolete                   // RFC 7143 13.25: answered Reject
)

type keySpec struct {
	kind      keyKind
	min, max  int
	discIrrel bool // Irrelevant in discovery sessions
	// zeroOK: numeric zero allowed
}

var keyTable = map[string]keySpec{
	"HeaderDigest":             {kind: kindList},
	"DataDigest":               {kind: kindList},
	"MaxConnections":           {kind: kindMin, min: 1, max: 65535},
	"InitialR2T":               {kind: kindOr, discIrrel: true},
	"ImmediateData":            {kind: kindAnd, discIrrel: true},
	"MaxRecvDataSegmentLength": {kind: kindMinDeclared, min: 512, max: 1<<24 - 1},
	"MaxBurstLength":           {kind: kindMin, min: 512, max: 1<<24 - 1, discIrrel: true},
	"FirstBurstLength":         {kind: kindMin, min: 512, max: 1<<24 - 1, discIrrel: true},
	"DefaultTime2Wait":         {kind: kindMax, min: 0, max: 3600},
	"DefaultTime2Retain":       {kind: kindMin, min: 0, max: 3600},
	"MaxOutstandingR2T":        {kind: kindMin, min: 1, max: 65535, discIrrel: true},
	"DataPDUInOrder":           {kind: kindOr, discIrrel: true},
	"DataSequenceInOrder":      {kind: kindOr, discIrrel: true},
	"ErrorRecoveryLevel":       {kind: kindMin, min: 0, max: 2},
	"OFMarker":                 {kind: kindAnd},
	"IFMarker":                 {kind: kindAnd},
	"OFMarkInt":                {kind: kindObsolete},
	"IFMarkInt":                {kind: kindObsolete},
	"TaskReporting":            {kind: kindList},
	"iSCSIProtocolLevel":       {kind: kindMin, min: 0, max: 31},
	"SendTargets":              {kind: kindIrrelevant},
	"InitiatorName":            {kind: kindDeclarative},
	"InitiatorAlias":           {kind: kindDeclarative},
	"TargetName":               {kind: kindDeclarative},
	"SessionType":              {kind: kindDeclarative},
	"TargetAlias":              {kind: kindTargetOnly},
	"TargetAddress":            {kind: kindTargetOnly},
	"TargetPortalGroupTag":     {kind: kindTargetOnly},
	"AuthMethod":               {kind: kindSecurity},
	"CHAP_A":                   {kind: kindSecurity},
	"CHAP_I":                   {kind: kindSecurity},
	"CHAP_C":                   {kind: kindSecurity},
	"CHAP_N":                   {kind: kindSecurity},
	"CHAP_R":                   {kind: kindSecurity},
}

// Answer values.
const (
	valReject        = "Reject"
	valIrrelevant    = "Irrelevant"
	valNotUnderstood = "NotUnderstood"
)

// parseNumber accepts decimal and 0x-prefixed hexadecimal (RFC 7143 5.1).
func parseNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 16 {
		return 0, false
	}
	var v uint64
	var err error
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		v, err = strconv.ParseUint(s[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(s, 10, 32)
	}
	if err != nil {
		return 0, false
	}
	return int(v), true
}

func parseBool(s string) (bool, bool) {
	switch s {
	case "Yes":
		return true, true
	case "No":
		return false, true
	}
	return false, false
}

func boolStr(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// limits are the target's offers for one session.
type limits struct {
	cfg       config.Params
	discovery bool
}

func (l *limits) digestAccept(key string) []string {
	if l.discovery {
		return []string{"None", "CRC32C"}
	}
	if key == "HeaderDigest" {
		return config.DigestOffer(l.cfg.HeaderDigest)
	}
	return config.DigestOffer(l.cfg.DataDigest)
}

// targetNumber returns the target's limit/offer for a numeric key.
func (l *limits) targetNumber(key string) int {
	c := &l.cfg
	switch key {
	case "MaxConnections":
		// One connection per session is implemented: never offer more
		// (a second connection would only be refused at login).
		return 1
	case "MaxBurstLength":
		return c.MaxBurstLength
	case "FirstBurstLength":
		// RFC 7143 13.14: FirstBurstLength MUST NOT exceed
		// MaxBurstLength (a config with MaxBurstLength 16384 keeps the
		// default FirstBurstLength 65536).
		return min(c.FirstBurstLength, c.MaxBurstLength)
	case "DefaultTime2Wait":
		return c.DefaultTime2Wait
	case "DefaultTime2Retain":
		return c.DefaultTime2Retain
	case "MaxOutstandingR2T":
		return c.MaxOutstandingR2T
	case "ErrorRecoveryLevel":
		return 0 // only ERL 0 is implemented
	case "iSCSIProtocolLevel":
		return 1
	}
	return 0
}

func (l *limits) targetBool(key string) bool {
	c := &l.cfg
	switch key {
	case "InitialR2T":
		return c.InitialR2T
	case "ImmediateData":
		return c.ImmediateData
	case "DataPDUInOrder":
		return true // we require in-order data
	case "DataSequenceInOrder":
		return true
	}
	return false // markers are not implemented
}

// negotiate computes the answer for one offered key and records the
// result in p. It returns the answer value ("" = no answer).
func (l *limits) negotiate(p *Params, key, value string) string {
	spec, ok := keyTable[key]
	if !ok {
		return valNotUnderstood
	}
	if l.discovery && spec.discIrrel {
		return valIrrelevant
	}
	if len(value) > MaxValueLen {
		return valReject
	}
	switch spec.kind {
	case kindObsolete:
		// "when an IFMarkInt or OFMarkInt key is received, a compliant
		// iSCSI implementation MUST respond with the constant Reject".
		return valReject
	case kindIrrelevant, kindTargetOnly:
		return valIrrelevant
	case kindMinDeclared:
		v, ok := parseNumber(value)
		if !ok || v < spec.min {
			return valReject
		}
		if v > spec.max {
			v = spec.max
		}
		p.InitiatorMaxRecvDSL = v
		return ""
	case kindMin, kindMax:
		v, ok := parseNumber(value)
		if !ok || v < spec.min || v > spec.max {
			return valReject
		}
		t := l.targetNumber(key)
		r := v
		if (spec.kind == kindMin && t < v) || (spec.kind == kindMax && t > v) {
			r = t
		}
		setNumber(p, key, r)
		return strconv.Itoa(r)
	case kindOr, kindAnd:
		v, ok := parseBool(value)
		if !ok {
			return valReject
		}
		t := l.targetBool(key)
		r := v || t
		if spec.kind == kindAnd {
			r = v && t
		}
		setBool(p, key, r)
		return boolStr(r)
	case kindList:
		var accept []string
		switch key {
		case "TaskReporting":
			accept = []string{"RFC3720"}
		default:
			accept = l.digestAccept(key)
		}
		for _, offer := range splitList(value) {
			for _, a := range accept {
				if offer == a {
					if key == "HeaderDigest" {
						p.HeaderDigest = a == "CRC32C"
					} else if key == "DataDigest" {
						p.DataDigest = a == "CRC32C"
					}
					return a
				}
			}
		}
		return valReject
	}
	return ""
}

func splitList(v string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ',' {
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return out
}

func setNumber(p *Params, key string, v int) {
	switch key {
	case "MaxConnections":
		p.MaxConnections = v
	case "MaxBurstLength":
		p.MaxBurstLength = v
	case "FirstBurstLength":
		p.FirstBurstLength = v
	case "DefaultTime2Wait":
		p.DefaultTime2Wait = v
	case "DefaultTime2Retain":
		p.DefaultTime2Retain = v
	case "MaxOutstandingR2T":
		p.MaxOutstandingR2T = v
	case "ErrorRecoveryLevel":
		p.ErrorRecoveryLevel = v
	}
}

func setBool(p *Params, key string, v bool) {
	switch key {
	case "InitialR2T":
		p.InitialR2T = v
	case "ImmediateData":
		p.ImmediateData = v
	case "DataPDUInOrder":
		p.DataPDUInOrder = v
	case "DataSequenceInOrder":
		p.DataSequenceInOrder = v
	case "IFMarker":
		p.IFMarker = v
	case "OFMarker":
		p.OFMarker = v
	}
}

// proposals returns the keys the target must propose because the
// initiator did not offer them and the target's value is stricter than
// the RFC default (IET behaviour, reference/iet.md 7.1).
func (l *limits) proposals(offered map[string]bool) []KV {
	if l.discovery {
		return nil
	}
	d := defaultParams()
	var out []KV
	num := func(key string, def int) {
		if offered[key] {
			return
		}
		if v := l.targetNumber(key); v != def {
			out = append(out, KV{key, strconv.Itoa(v)})
		}
	}
	boolean := func(key string, def bool) {
		if offered[key] {
			return
		}
		if v := l.targetBool(key); v != def {
			out = append(out, KV{key, boolStr(v)})
		}
	}
	boolean("InitialR2T", d.InitialR2T)
	boolean("ImmediateData", d.ImmediateData)
	num("MaxBurstLength", d.MaxBurstLength)
	num("FirstBurstLength", d.FirstBurstLength)
	num("DefaultTime2Wait", d.DefaultTime2Wait)
	num("DefaultTime2Retain", d.DefaultTime2Retain)
	num("MaxOutstandingR2T", d.MaxOutstandingR2T)
	return out
}

// clampFirstBurst keeps FirstBurstLength within MaxBurstLength (RFC 7143
// 13.14) whichever order and values the two were negotiated in; it reports
// whether it changed p.
func clampFirstBurst(p *Params) bool {
	if p.FirstBurstLength > p.MaxBurstLength {
		p.FirstBurstLength = p.MaxBurstLength
		return true
	}
	return false
}

// applyProposalAnswer folds the initiator's answer to one of our
// proposals into p.
func (l *limits) applyProposalAnswer(p *Params, key, value string) {
	spec := keyTable[key]
	// An answer that is not a value (Reject, NotUnderstood, Irrelevant)
	// leaves the key at its RFC 7143 default, on both sides (6.2).
	def := defaultParams()
	switch spec.kind {
	case kindMin, kindMax:
		t := l.targetNumber(key)
		v, ok := parseNumber(value)
		if !ok {
			v, _ = parseNumber(def.Map()[key])
		} else if (spec.kind == kindMin && t < v) || (spec.kind == kindMax && t > v) {
			v = t
		}
		setNumber(p, key, v)
	case kindOr, kindAnd:
		v, ok := parseBool(value)
		switch {
		case !ok:
			v, _ = parseBool(def.Map()[key])
		case spec.kind == kindAnd:
			v = v && l.targetBool(key) // the result function of both values (6.2.2)
		default:
			v = v || l.targetBool(key)
		}
		setBool(p, key, v)
	}
}
