package compat

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/ietgo/ietd/parser/ietconf"
	"github.com/ietgo/ietd/target/config"
)

func pos(p lexer.Position) config.Position {
	return config.Position{File: p.Filename, Line: p.Line, Col: p.Column}
}

// errorPos splits a participle error into its position and message.
func errorPos(err error, at lexer.Position) (config.Position, string) {
	if pe, ok := err.(participle.Error); ok && pe.Position().Line > 0 {
		return pos(pe.Position()), pe.Message()
	}
	return pos(at), err.Error()
}

// intKey is an integer ietd.conf key with its range.
type intKey struct {
	min, max int
	set      func(t *config.Target, v int)
}

var intKeys = map[string]intKey{
	"maxconnections":           {1, 65535, func(t *config.Target, v int) { t.Params.MaxConnections = v }},
	"maxrecvdatasegmentlength": {512, 16777215, func(t *config.Target, v int) { t.Params.MaxRecvDataSegmentLength = v }},
	"maxxmitdatasegmentlength": {512, 16777215, func(t *config.Target, v int) { t.Params.MaxXmitDataSegmentLength = v }},
	"maxburstlength":           {512, 16777215, func(t *config.Target, v int) { t.Params.MaxBurstLength = v }},
	"firstburstlength":         {512, 16777215, func(t *config.Target, v int) { t.Params.FirstBurstLength = v }},
	"defaulttime2wait":         {0, 3600, func(t *config.Target, v int) { t.Params.DefaultTime2Wait = v }},
	"defaulttime2retain":       {0, 3600, func(t *config.Target, v int) { t.Params.DefaultTime2Retain = v }},
	"maxoutstandingr2t":        {1, 65535, func(t *config.Target, v int) { t.Params.MaxOutstandingR2T = v }},
	"errorrecoverylevel":       {0, 2, func(t *config.Target, v int) { t.Params.ErrorRecoveryLevel = v }},
	"ofmarkint":                {1, 65535, func(t *config.Target, v int) { t.Params.OFMarkInt = v }},
	"ifmarkint":                {1, 65535, func(t *config.Target, v int) { t.Params.IFMarkInt = v }},
	"wthreads":                 {1, 128, func(t *config.Target, v int) { t.Wthreads = v }},
	"type":                     {0, 0, func(t *config.Target, v int) {}},
	"queuedcommands":           {1, 256, func(t *config.Target, v int) { t.QueuedCommands = v }},
	"nopinterval":              {0, 90, func(t *config.Target, v int) { t.NOPInterval = v }},
	"noptimeout":               {0, 90, func(t *config.Target, v int) { t.NOPTimeout = v }},
	"maxsessions":              {0, 65535, func(t *config.Target, v int) { t.MaxSessions = v }},
}

// boolGet reads the values boolKeys set.
var boolGet = map[string]func(t *config.Target) bool{
	"initialr2t":          func(t *config.Target) bool { return t.Params.InitialR2T },
	"immediatedata":       func(t *config.Target) bool { return t.Params.ImmediateData },
	"datapduinorder":      func(t *config.Target) bool { return t.Params.DataPDUInOrder },
	"datasequenceinorder": func(t *config.Target) bool { return t.Params.DataSequenceInOrder },
	"ofmarker":            func(t *config.Target) bool { return t.Params.OFMarker },
	"ifmarker":            func(t *config.Target) bool { return t.Params.IFMarker },
}

var boolKeys = map[string]func(t *config.Target, v bool){
	"initialr2t":          func(t *config.Target, v bool) { t.Params.InitialR2T = v },
	"immediatedata":       func(t *config.Target, v bool) { t.Params.ImmediateData = v },
	"datapduinorder":      func(t *config.Target, v bool) { t.Params.DataPDUInOrder = v },
	"datasequenceinorder": func(t *config.Target, v bool) { t.Params.DataSequenceInOrder = v },
	"ofmarker":            func(t *config.Target, v bool) { t.Params.OFMarker = v },
	"ifmarker":            func(t *config.Target, v bool) { t.Params.IFMarker = v },
}

// notIET are names users copy from other targets; IET ignores them too.
var notIET = map[string]string{
	"rsptimeout":    "an iSCSI-SCST parameter",
	"nopininterval": "an iSCSI-SCST parameter (IET: NOPInterval)",
	"nopintimeout":  "an iSCSI-SCST parameter (IET: NOPTimeout)",
	"portal":        "not an IET keyword (use ietd -a/-p and targets.allow)",
	"user":          "the pre-0.4.1 name of IncomingUser",
	// tgt's targets.conf keywords, met in ietd.conf files written from
	// tgt howtos: the first two make an admin believe access is limited.
	"initiator-address": "a tgt keyword: access is NOT limited by it; list the allowed initiators in initiators.allow",
	"initiator-name":    "a tgt keyword: access is NOT limited by it; list the allowed initiators in initiators.allow",
	"backing-store":     "a tgt keyword: export a file or device with Lun N Path=PATH,Type=fileio",
	"direct-store":      "a tgt keyword: export a device with Lun N Path=PATH,Type=blockio",
}

// strtol parses an integer like C strtol(s, NULL, 0) on a whole token.
func strtol(s string) (int64, bool) {
	neg := false
	t := s
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		neg, t = t[0] == '-', t[1:]
	}
	base := 10
	switch {
	case len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X"):
		base, t = 16, t[2:]
	case len(t) > 1 && t[0] == '0':
		base, t = 8, t[1:]
	}
	v, err := strconv.ParseInt(t, base, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// cStrtol is C strtol(s, &end, 0) in full: the number its leading digits
// make (base from a 0x or 0 prefix, clamped to the int64 range on
// overflow as strtol clamps to LONG_MAX) and the rest where it stopped;
// digits is false when no digit was read.
func cStrtol(s string) (n int64, rest string, digits bool) {
	t := s
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg, t = t[0] == '-', t[1:]
	}
	base := 10
	switch {
	case len(t) > 2 && (t[:2] == "0x" || t[:2] == "0X") && strings.ContainsRune("0123456789abcdefABCDEF", rune(t[2])):
		base, t = 16, t[2:]
	case len(t) > 0 && t[0] == '0':
		base = 8
	}
	var v uint64
	over := false
	i := 0
	for ; i < len(t); i++ {
		d := strings.IndexByte("0123456789abcdef", t[i]|0x20)
		if d < 0 || d >= base || (t[i] < '0' || t[i] > '9') && base != 16 {
			break
		}
		if v > (math.MaxInt64-uint64(d))/uint64(base) {
			over = true
		} else {
			v = v*uint64(base) + uint64(d)
		}
	}
	if i == 0 {
		return 0, s, false
	}
	n = int64(v)
	if over {
		n = math.MaxInt64
	}
	if neg {
		n = -n
	}
	return n, t[i:], true
}

// octal reports whether strtol read s (a whole valid number) as octal
// with a value other than its decimal reading: "010" is 8, "00" is 0.
func octal(s string) bool {
	t := strings.TrimLeft(s, "+-")
	if len(t) < 2 || t[0] != '0' || strings.Trim(t, "01234567") != "" {
		return false
	}
	return len(strings.TrimLeft(t, "0")) > 1 // 01..07 are the same in both
}

// valueWords returns the words before a '#' comment word.
func valueWords(ws []*ietconf.Word) []*ietconf.Word {
	for i, w := range ws {
		if strings.HasPrefix(w.Text, "#") {
			return ws[:i]
		}
	}
	return ws
}

type ietLowerer struct {
	cfg *config.Config
	ds  *config.Diagnostics
	// cur is the target of the current stanza; nil before the first
	// Target or inside a failed stanza (failed tells which).
	cur    *config.Target
	failed bool
	// luns maps a LUN to its line for duplicate messages.
	lunLine map[*config.Target]map[uint64]config.Position
	// broken are targets with an IncomingUser line that has errors:
	// they are left out (without the account they would be open).
	broken map[*config.Target]config.Position
	// bare are targets with an IncomingUser line without user and
	// secret (ignored, as IET).
	bare map[*config.Target]config.Position
}

func lowerIET(f *ietconf.File, cfg *config.Config, ds *config.Diagnostics) {
	l := &ietLowerer{cfg: cfg, ds: ds, lunLine: map[*config.Target]map[uint64]config.Position{}, broken: map[*config.Target]config.Position{}, bare: map[*config.Target]config.Position{}}
	for _, d := range f.Directives {
		switch {
		case d.Target != nil:
			l.target(d.Target)
		case d.Lun != nil:
			l.lun(d.Lun)
		case d.Account != nil:
			l.account(d.Account)
		case d.Setting != nil:
			l.setting(d.Setting)
		}
	}
	kept := cfg.Targets[:0]
	for _, t := range cfg.Targets {
		if at, bad := l.broken[t]; bad && len(t.Auth.Incoming) == 0 {
			// With another account left CHAP stays mandatory and only
			// the bad line goes, as in IET; with none the target would
			// be open to every initiator.
			ds.LeftOutf(t.Pos, "target %s is left out: its IncomingUser line at %s has errors, and without that account the target would let in every initiator", t.Name, at)
			continue
		}
		if at, bare := l.bare[t]; bare && len(t.Auth.Incoming) == 0 {
			ds.Warnf(t.Pos, "target %s has no CHAP account (its IncomingUser line at %s is empty): every initiator the access-control files let in logs in without CHAP, as in IET", t.Name, at)
		}
		kept = append(kept, t)
	}
	cfg.Targets = kept
	if is := cfg.ISNS; is != nil && is.Server == "" && !is.AccessControl {
		// "iSNSAccessControl No" after a Yes: nothing configured (the
		// model keeps ISNS nil unless a server or access control is set).
		cfg.ISNS = nil
	}
	if is := cfg.ISNS; is != nil && is.Server == "" && is.AccessControl {
		ds.Warnf(is.Pos, "iSNSAccessControl Yes without iSNSServer does nothing (as in IET): logins and discovery are not filtered")
	}
	warnSecretBothWays(cfg.Discovery, "discovery", ds)
	for _, t := range cfg.Targets {
		warnSecretBothWays(t.Auth, "target "+t.Name, ds)
		if t.Params.FirstBurstLength > t.Params.MaxBurstLength {
			ds.Warnf(t.Pos, "target %s: FirstBurstLength %d is larger than MaxBurstLength %d (the negotiated FirstBurstLength will be capped)", t.Name, t.Params.FirstBurstLength, t.Params.MaxBurstLength)
		}
		if len(t.LUNs) == 0 {
			ds.Warnf(t.Pos, "target %s has no LUNs", t.Name)
		}
	}
}

func (l *ietLowerer) target(tl *ietconf.TargetLine) {
	l.cur, l.failed = nil, true
	if tl.Name == nil {
		return // the parser reported it
	}
	name := tl.Name.Text
	if len(name) > 255 {
		l.ds.Errorf(pos(tl.Name.Pos), "target name longer than 255 bytes; this Target section is left out")
		return
	}
	for _, t := range l.cfg.Targets {
		if strings.EqualFold(t.Name, name) {
			l.ds.Errorf(pos(tl.Name.Pos), "duplicated target %s (first defined at %s; names are compared case-insensitively); this Target section is left out", name, t.Pos)
			return
		}
	}
	t := config.NewTarget(l.cfg.NextTID(), name)
	t.Pos = pos(tl.Pos)
	l.cfg.Targets = append(l.cfg.Targets, t)
	l.cur, l.failed = t, false
}

// inTarget returns the current target, reporting a line outside any: a
// warning, as IET ignored such lines silently and started. addTarget
// adds the hint for a line that is no use without its target (a Lun).
func (l *ietLowerer) inTarget(p lexer.Position, what string, addTarget bool) *config.Target {
	if l.cur != nil {
		return l.cur
	}
	if l.failed {
		return nil // the Target line was reported
	}
	if addTarget {
		l.ds.Warnf(pos(p), "%s outside a Target section is left out (IET ignores target settings before the first Target line): add a \"Target iqn.YYYY-MM.reversed.domain:name\" line before it", what)
	} else {
		l.ds.Warnf(pos(p), "%s outside a Target section ignored (IET ignores target settings before the first Target line)", what)
	}
	return nil
}

// controlChar says whether s holds a control character or invalid UTF-8
// (the tokenizer splits words on blanks; the rest reaches the account).
func controlChar(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return true
		}
	}
	return false
}

func (l *ietLowerer) account(a *ietconf.AccountLine) {
	if a.Bad && a.User == nil {
		// A bare line (warned by the parser): no account, as IET.
		if l.cur != nil && a.Incoming() {
			if _, seen := l.bare[l.cur]; !seen {
				l.bare[l.cur] = pos(a.Pos)
			}
		}
		return
	}
	if !a.Bad && (controlChar(a.User.Text) || controlChar(a.Secret.Text)) {
		// ietadm refuses them too: the account listing is line based.
		what := "user name"
		if !controlChar(a.User.Text) {
			what = "secret"
		}
		l.ds.Errorf(pos(a.Pos), "%s %q: the %s holds a control character or invalid UTF-8 (the account is refused)", a.Keyword, a.User.Text, what)
		a.Bad = true
	}
	if a.Bad {
		switch {
		case l.cur != nil && a.Incoming():
			if _, seen := l.broken[l.cur]; !seen {
				l.broken[l.cur] = pos(a.Pos)
			}
		case l.cur == nil && !l.failed && a.Incoming():
			l.ds.Errorf(pos(a.Pos), "this discovery account is left out: discovery sessions need CHAP only if another global IncomingUser line is valid (as IET)")
		}
		return // the parser reported the line
	}
	acc := config.Account{User: a.User.Text, Secret: a.Secret.Text, Pos: pos(a.Pos)}
	auth := &l.cfg.Discovery
	where := "discovery"
	if l.cur != nil {
		auth, where = &l.cur.Auth, "target "+l.cur.Name
	} else if l.failed {
		l.ds.Errorf(pos(a.Pos), "%s in an ignored Target section is ignored (IET would make it a discovery account)", a.Keyword)
		return
	}
	if len(acc.Secret) < 12 {
		l.ds.Warnf(pos(a.Secret.Pos), "CHAP secret of %s is shorter than 12 characters (the Microsoft initiator refuses it)", acc.User)
	}
	if a.Incoming() {
		auth.Incoming = append(auth.Incoming, acc)
		return
	}
	if auth.Outgoing != nil {
		l.ds.Warnf(pos(a.Pos), "second OutgoingUser for %s replaces %s (only one is allowed)", where, auth.Outgoing.User)
	}
	auth.Outgoing = &acc
}

func (l *ietLowerer) setting(s *ietconf.SettingLine) {
	key := strings.ToLower(s.Keyword.Text)
	vals := valueWords(s.Values)
	switch key {
	case "isnsserver":
		if len(vals) == 0 {
			l.ds.Errorf(pos(s.Pos), "iSNSServer needs a host name or address; the line is left out")
			return
		}
		is := l.isns()
		is.Server, is.Port, is.Pos = vals[0].Text, 0, pos(s.Pos)
		if h, p, err := net.SplitHostPort(is.Server); err == nil && strings.HasPrefix(is.Server, "[") && isIPv6(h) {
			// [IPv6]:port
			if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
				is.Server, is.Port = h, n
				l.ds.Warnf(pos(vals[0].Pos), "iSNSServer host:port is our extension (IET always uses port 3205)")
			}
		} else if len(is.Server) > 2 && strings.HasPrefix(is.Server, "[") && strings.HasSuffix(is.Server, "]") && isIPv6(is.Server[1:len(is.Server)-1]) {
			is.Server = is.Server[1 : len(is.Server)-1]
		} else if h, p, ok := strings.Cut(is.Server, ":"); ok && !strings.Contains(p, ":") {
			if n, err := strconv.Atoi(p); err == nil && n > 0 && n < 65536 {
				is.Server, is.Port = h, n
				l.ds.Warnf(pos(vals[0].Pos), "iSNSServer host:port is our extension (IET always uses port 3205)")
			}
		}
		return
	case "isnsaccesscontrol":
		// IET: the value compared case-insensitively with Yes; the
		// last occurrence wins.
		on := len(vals) > 0 && strings.EqualFold(vals[0].Text, "Yes")
		if on || l.cfg.ISNS != nil {
			is := l.isns()
			is.AccessControl = on
			if is.Server == "" {
				is.Pos = pos(s.Pos)
			}
		}
		return
	}
	if hint, ok := notIET[key]; ok {
		l.ds.Warnf(pos(s.Keyword.Pos), "unknown keyword %s ignored: %s", s.Keyword.Text, hint)
		return
	}
	_, isInt := intKeys[key]
	_, isBool := boolKeys[key]
	known := isInt || isBool || key == "alias" || key == "headerdigest" || key == "datadigest"
	if !known {
		l.ds.Warnf(pos(s.Keyword.Pos), "unknown keyword %s ignored", s.Keyword.Text)
		return
	}
	t := l.inTarget(s.Pos, s.Keyword.Text, false)
	if t == nil {
		return
	}
	if key == "alias" {
		if len(vals) == 0 {
			l.ds.Warnf(pos(s.Pos), "Alias without a value ignored")
			return
		}
		ws := make([]string, len(vals))
		for i, w := range vals {
			ws[i] = w.Text
		}
		t.Alias = strings.Join(ws, " ")
		return
	}
	if len(vals) == 0 {
		l.ds.Errorf(pos(s.Pos), "%s needs a value; the line is left out (the default stays)", s.Keyword.Text)
		return
	}
	v := vals[0]
	if len(vals) > 1 {
		l.ds.Warnf(pos(vals[1].Pos), "extra text after the %s value ignored", s.Keyword.Text)
	}
	switch {
	case isInt:
		k := intKeys[key]
		n, ok := strtol(v.Text)
		if !ok {
			// IET read these with strtol: what the leading digits make
			// is the value ("1#x" is 1, "08" is 0, an overflow is the
			// largest number), whatever follows.
			if m, rest, digits := cStrtol(v.Text); digits {
				l.ds.Warnf(pos(v.Pos), "%s value %q read as %d, as IET did (its strtol stops at %q or clamps)", s.Keyword.Text, v.Text, m, rest)
				n, ok = m, true
			}
		}
		if !ok {
			l.ds.Errorf(pos(v.Pos), "%s value %q is not a number; the line is left out (the default stays)", s.Keyword.Text, v.Text)
			return
		}
		if octal(v.Text) {
			l.ds.Warnf(pos(v.Pos), "%s value %q is octal for %d, as IET read it (C strtol takes a leading 0 for octal): for %s write it without the leading 0", s.Keyword.Text, v.Text, n, strings.TrimLeft(strings.TrimLeft(v.Text, "+-"), "0"))
		}
		if n < int64(k.min) || n > int64(k.max) {
			c := int64(k.min)
			if n > int64(k.max) {
				c = int64(k.max)
			}
			l.ds.Warnf(pos(v.Pos), "%s %d out of range (%d..%d): using %d", s.Keyword.Text, n, k.min, k.max, c)
			n = c
		}
		if key == "errorrecoverylevel" && n > 0 {
			l.ds.Warnf(pos(v.Pos), "ErrorRecoveryLevel %d: only level 0 is implemented; 0 is offered (IET forced 0 too)", n)
			n = 0
		}
		k.set(t, int(n))
	case isBool:
		b, exact, ok := config.ParseYesNo(v.Text)
		if !ok {
			l.ds.Errorf(pos(v.Pos), "%s value %q must be Yes or No; the line is left out (the default stays, as IET)", s.Keyword.Text, v.Text)
			return
		}
		if !exact {
			l.ds.Warnf(pos(v.Pos), "%s value %q: IET took only Yes or No in exact case and ignored this line (%s stayed %s); read here as %s", s.Keyword.Text, v.Text, s.Keyword.Text, yn(boolGet[key](t)), yn(b))
		}
		if value, why, ok := config.ForcedBool(key); ok && b != value {
			l.ds.Warnf(pos(v.Pos), "%s %s: %s; %s is offered (IET forced it too)", s.Keyword.Text, yn(b), why, yn(value))
			b = value
		}
		boolKeys[key](t, b)
	default: // digests
		list, inexact, bad, ok := config.ParseDigests(v.Text)
		if !ok {
			l.ds.Errorf(pos(v.Pos), "%s value %q: each item must be None or CRC32C; the line is left out (the default stays, as IET)", s.Keyword.Text, bad)
			return
		}
		if len(inexact) > 0 {
			was := t.Params.HeaderDigest
			if key == "datadigest" {
				was = t.Params.DataDigest
			}
			l.ds.Warnf(pos(v.Pos), "%s value %q: IET took only None and CRC32C in exact case and ignored this line (%s stayed %s); read here as %s", s.Keyword.Text, v.Text, s.Keyword.Text, strings.Join(was, ","), strings.Join(list, ","))
		}
		if key == "headerdigest" {
			t.Params.HeaderDigest = list
		} else {
			t.Params.DataDigest = list
		}
	}
}

func yesNo(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes":
		return true, true
	case "no":
		return false, true
	}
	return false, false
}

// isIPv6 tells whether s is an IPv6 address (brackets around anything
// else are kept as written).
func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

func (l *ietLowerer) isns() *config.ISNS {
	if l.cfg.ISNS == nil {
		l.cfg.ISNS = &config.ISNS{}
	}
	return l.cfg.ISNS
}

// lunKeys are the Lun parameters we accept, lower-case.
var lunKeys = map[string]bool{
	"path": true, "type": true, "scsiid": true, "scsisn": true, "iomode": true,
	"blocksize": true, "sectors": true, "blocks": true,
	// our extensions
	"vendor": true, "product": true, "revision": true, "scsiversion": true,
	"offset": true, "size": true, "store": true, "create": true, "removable": true,
	"identity": true, "naa": true,
}

func (l *ietLowerer) lun(ll *ietconf.LunLine) {
	if ll.Bad {
		// The parser reported it; say what is lost.
		if l.cur != nil {
			what := "this Lun line"
			if ll.NumberPos.Line > 0 {
				what = fmt.Sprintf("Lun %d", ll.Number)
			}
			l.ds.LeftOutf(pos(ll.Pos), "%s of target %s is left out (the errors on its line)", what, l.cur.Name)
		}
		return
	}
	t := l.inTarget(ll.Pos, fmt.Sprintf("Lun %d", ll.Number), true)
	if t == nil {
		return
	}
	if !l.lunOK(t, ll) {
		l.ds.LeftOutf(pos(ll.Pos), "Lun %d of target %s is left out (the errors on its line)", ll.Number, t.Name)
	}
}

// lunOK lowers a Lun line into t; false when it has errors (reported).
func (l *ietLowerer) lunOK(t *config.Target, ll *ietconf.LunLine) bool {
	lun := &config.LUN{Number: ll.Number, Pos: pos(ll.Pos), IOMode: "wt"}
	ok := true
	if ll.Positional != nil {
		lun.Type = "fileio"
		lun.Store = &config.Store{Kind: config.StoreFile, Path: ll.Positional[0].Text, Pos: pos(ll.Positional[0].Pos)}
		if len(ll.Positional) > 1 {
			lun.Type = ll.Positional[1].Text
			if lun.Type != "fileio" && lun.Type != "blockio" {
				l.ds.Errorf(pos(ll.Positional[1].Pos), "Lun %d type %q must be fileio or blockio", ll.Number, lun.Type)
				ok = false
			}
		}
		if strings.Contains(lun.Store.Path, ",") {
			l.ds.Errorf(pos(ll.Positional[0].Pos), "Lun %d path %q contains ',' (a Lun line cannot hold it)", ll.Number, lun.Store.Path)
			ok = false
		}
		l.ds.Warnf(pos(ll.Positional[0].Pos), "old (IET 0.4.5) Lun form accepted; the current form is: Lun %d Path=%s,Type=%s", ll.Number, ll.Positional[0].Text, lun.Type)
	} else {
		ok = l.lunParams(ll, lun)
	}
	if !ok {
		return false
	}
	if l.lunLine[t] == nil {
		l.lunLine[t] = map[uint64]config.Position{}
	}
	if prev, dup := l.lunLine[t][lun.Number]; dup {
		l.ds.Errorf(pos(ll.NumberPos), "duplicate Lun %d in target %s (first at %s)", lun.Number, t.Name, prev)
		return false
	}
	l.lunLine[t][lun.Number] = lun.Pos
	t.LUNs = append(t.LUNs, lun)
	return true
}

func (l *ietLowerer) lunParams(ll *ietconf.LunLine, lun *config.LUN) bool {
	ok := true
	bad := func(p *ietconf.LunParam, format string, args ...any) {
		l.ds.Errorf(pos(p.ValuePos), "Lun %d %s: %s", ll.Number, p.Key, fmt.Sprintf(format, args...))
		ok = false
	}
	seen := map[string]*ietconf.LunParam{}
	for _, p := range ll.Params {
		k := strings.ToLower(p.Key)
		if !lunKeys[k] {
			l.ds.Errorf(pos(p.Pos), "Lun %d: unknown parameter %q (IET refuses the LUN)", ll.Number, p.Key)
			ok = false
			continue
		}
		if k == "sectors" {
			k = "blocks"
		}
		if prev := seen[k]; prev != nil {
			l.ds.Errorf(pos(p.Pos), "Lun %d: %s given twice", ll.Number, p.Key)
			ok = false
			continue
		}
		seen[k] = p
	}
	lun.Type = "fileio"
	if p := seen["type"]; p != nil {
		switch p.Value {
		case "fileio", "blockio", "nullio":
			lun.Type = p.Value
		default:
			bad(p, "type %q must be fileio, blockio or nullio in lower case (IET refuses this LUN too)", p.Value)
		}
	}
	nullio := lun.Type == "nullio"
	if p := seen["iomode"]; p != nil {
		switch {
		case nullio:
			bad(p, "IOMode is not allowed for nullio")
		case p.Value == "wt" || p.Value == "wb" || p.Value == "ro":
			lun.IOMode = p.Value
		case strings.EqualFold(p.Value, "wt") || strings.EqualFold(p.Value, "wb") || strings.EqualFold(p.Value, "ro"):
			// IET before 1.4.20 compared with strcmp and served any
			// other value write-through; 1.4.20 refused the LUN. The
			// LUN is served as it ran, write-through: the safe reading
			// of "WB", and "Ro" stays writable for the initiators that
			// wrote to it.
			lun.IOMode = "wt"
			l.ds.Warnf(pos(p.ValuePos), "Lun %d IOMode %q: IET knew only lower-case wt, wb and ro (before 1.4.20 it served this LUN write-through, 1.4.20 refused it); served write-through here too: write IOMode=%s for what it says", ll.Number, p.Value, strings.ToLower(p.Value))
		default:
			l.ds.Warnf(pos(p.ValuePos), "Lun %d IOMode %q is not wt, wb or ro: served write-through (wt), as IET before 1.4.20 did (1.4.20 refused the LUN)", ll.Number, p.Value)
		}
	}
	if p := seen["scsiid"]; p != nil {
		if len(p.Value) > 16 {
			bad(p, "ScsiId longer than 16 characters")
		}
		lun.ScsiID = p.Value
	}
	if p := seen["scsisn"]; p != nil {
		if len(p.Value) > 32 || !printable(p.Value) {
			bad(p, "ScsiSN must be at most 32 printable ASCII characters")
		}
		lun.ScsiSN = p.Value
	}
	if p := seen["blocksize"]; p != nil {
		n, good := strtol(p.Value)
		if !good || n < 512 || n > 8192 || n&(n-1) != 0 {
			bad(p, "BlockSize %q must be 512, 1024, 2048, 4096 or 8192", p.Value)
		} else if n > 4096 {
			// NetBSD's iscsi-target -b 8192: a disk migrated from it
			// keeps its blocks (IET stopped at 4096).
			l.ds.Warnf(pos(p.ValuePos), "Lun %d BlockSize %d: IET refused more than 4096, and Linux initiators cannot use logical blocks larger than 4096 (sd refuses the disk): serve it to initiators that can", ll.Number, n)
		}
		lun.BlockSize = int(n)
	}
	for _, f := range []struct {
		key  string
		max  int
		dest *string
	}{{"vendor", 8, &lun.Vendor}, {"product", 16, &lun.Product}, {"revision", 4, &lun.Revision}} {
		if p := seen[f.key]; p != nil {
			if len(p.Value) > f.max || !printable(p.Value) {
				bad(p, "%s must be at most %d printable ASCII characters", p.Key, f.max)
			}
			*f.dest = p.Value
		}
	}
	if p := seen["identity"]; p != nil {
		switch d := config.Dialect(strings.ToLower(p.Value)); d {
		case config.DialectIET, config.DialectNetBSD:
			lun.Identity = d
		default:
			bad(p, "Identity must be iet or netbsd, not %q", p.Value)
		}
	}
	if p := seen["naa"]; p != nil {
		b, good := yesNo(p.Value)
		if !good {
			bad(p, "NAA must be Yes or No, not %q", p.Value)
		}
		lun.NAA = &b
	}
	if p := seen["removable"]; p != nil {
		b, good := yesNo(p.Value)
		if !good {
			bad(p, "Removable must be Yes or No, not %q", p.Value)
		}
		lun.Removable = b
	}
	if p := seen["scsiversion"]; p != nil {
		n, good := strtol(p.Value)
		if !good || n < 0 || n > 0xff {
			bad(p, "ScsiVersion %q must be a byte (e.g. 5 for SPC-3, 6 for SPC-4)", p.Value)
		}
		lun.ScsiVersion = int(n)
	}
	if nullio {
		for _, k := range []string{"path", "store", "offset", "size", "create"} {
			if p := seen[k]; p != nil {
				bad(p, "%s is not allowed for nullio", p.Key)
			}
		}
		lun.Blocks = config.DefaultNullioBlocks
		if p := seen["blocks"]; p != nil {
			n, err := strconv.ParseUint(p.Value, 0, 64)
			if err != nil || n == 0 {
				bad(p, "%q is not a positive number", p.Value)
			}
			lun.Blocks = n
		}
		return ok
	}
	if p := seen["blocks"]; p != nil {
		bad(p, "%s is only allowed for nullio", p.Key)
	}
	path, store := seen["path"], seen["store"]
	switch {
	case path == nil && store == nil:
		l.ds.Errorf(pos(ll.Pos), "Lun %d needs Path= (Lun %d Path=/dev/sdb,Type=%s)", ll.Number, ll.Number, lun.Type)
		return false
	case path != nil && store != nil:
		bad(store, "Store= and Path= cannot be used together")
		return false
	case path != nil:
		if path.Value == "" {
			bad(path, "empty path")
		}
		lun.Store = &config.Store{Kind: config.StoreFile, Path: path.Value, Pos: pos(path.ValuePos)}
		for _, k := range []string{"offset", "size"} {
			p := seen[k]
			if p == nil {
				continue
			}
			n, err := parseBytes(p.Value)
			if err != nil {
				bad(p, "%v", err)
				continue
			}
			if k == "offset" {
				lun.Store.Offset = n
			} else {
				lun.Store.Size = n
			}
		}
	default:
		for _, k := range []string{"offset", "size"} {
			if p := seen[k]; p != nil {
				bad(p, "%s cannot be used with Store= (write PATH@OFFSET+SIZE inside Store=)", p.Key)
			}
		}
		expr, err := ietconf.ParseStore(store.Value, store.ValuePos)
		if err != nil {
			p, msg := errorPos(err, store.ValuePos)
			l.ds.Errorf(p, "Lun %d Store: %s", ll.Number, msg)
			return false
		}
		st, good := lowerStoreExpr(expr, l.ds)
		if !good {
			return false
		}
		lun.Store = st
	}
	if p := seen["create"]; p != nil {
		b, good := yesNo(p.Value)
		if !good {
			bad(p, "Create must be Yes or No")
		}
		setCreate(lun.Store, b)
	}
	return ok
}

func setCreate(s *config.Store, b bool) {
	if s == nil {
		return
	}
	if s.Kind == config.StoreFile {
		s.Create = b
	}
	for _, m := range s.Members {
		setCreate(m, b)
	}
}

func lowerStoreExpr(e *ietconf.StoreExpr, ds *config.Diagnostics) (*config.Store, bool) {
	if f := e.File; f != nil {
		s := &config.Store{Kind: config.StoreFile, Path: strings.TrimSpace(f.Path), Pos: pos(f.Pos)}
		if s.Path == "" {
			ds.Errorf(pos(f.Pos), "Store member: empty path")
			return nil, false
		}
		var err error
		if f.Offset != "" {
			if s.Offset, err = parseBytes(f.Offset); err != nil {
				ds.Errorf(pos(f.Pos), "Store member %s: offset: %v", f.Path, err)
				return nil, false
			}
		}
		if f.Size != "" {
			if s.Size, err = parseBytes(f.Size); err != nil {
				ds.Errorf(pos(f.Pos), "Store member %s: size: %v", f.Path, err)
				return nil, false
			}
		}
		return s, true
	}
	c := e.Composite
	s := &config.Store{Pos: pos(c.Pos)}
	switch strings.ToLower(strings.TrimSpace(c.Level)) {
	case "raid0":
		s.Kind = config.StoreConcat
	case "raid1":
		s.Kind = config.StoreMirror
		if len(c.Members) < 2 {
			ds.Errorf(pos(c.Pos), "raid1 needs at least 2 members")
			return nil, false
		}
	default:
		ds.Errorf(pos(c.Pos), "Store composition %q must be raid0 or raid1", c.Level)
		return nil, false
	}
	for _, m := range c.Members {
		ms, ok := lowerStoreExpr(m, ds)
		if !ok {
			return nil, false
		}
		s.Members = append(s.Members, ms)
	}
	return s, true
}

// parseBytes parses a byte count with an optional binary unit (K, M, G, T,
// optionally followed by B or iB).
func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a byte count", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, err)
	}
	shift := 0
	switch u := strings.ToUpper(t[i:]); u {
	case "":
	case "K", "KB", "KIB":
		shift = 10
	case "M", "MB", "MIB":
		shift = 20
	case "G", "GB", "GIB":
		shift = 30
	case "T", "TB", "TIB":
		shift = 40
	default:
		return 0, fmt.Errorf("%q: unknown unit %q", s, t[i:])
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// warnSecretBothWays warns of an OutgoingUser whose secret is also an
// IncomingUser's (served, as IET did; the secret is not shown).
func warnSecretBothWays(a config.Auth, where string, ds *config.Diagnostics) {
	if in, ok := a.SecretBothWays(); ok {
		ds.Warnf(a.Outgoing.Pos, "%s: OutgoingUser %s has the secret of IncomingUser %s: RFC 7143 12.1.3 forbids one CHAP secret for both directions (whoever has it can pose as the target); give the target its own secret", where, a.Outgoing.User, in.User)
	}
}
