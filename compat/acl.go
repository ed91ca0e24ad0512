package compat

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/ietgo/ietd/parser/ietacl"
	"github.com/ietgo/ietd/target/acl"
	"github.com/ietgo/ietd/target/config"
)

// ACL file names.
const (
	InitiatorsAllow = "initiators.allow"
	InitiatorsDeny  = "initiators.deny"
	TargetsAllow    = "targets.allow"
)

// aclDirs is IET's search order for the access-control files.
var aclDirs = []string{"/etc/iet", "/etc"}

// loadACLs reads the three access-control files into cfg: from dir when
// set, else from /etc/iet, falling back to /etc only when the file does not
// exist there (as IET 1.4.18+ does).
func loadACLs(cfg *config.Config, dir string, ds *config.Diagnostics) error {
	dirs := aclDirs
	if dir != "" {
		dirs = []string{dir}
	}
	for _, name := range []string{InitiatorsAllow, InitiatorsDeny, TargetsAllow} {
		f, err := readACL(dirs, name, ds)
		if err != nil {
			return err
		}
		// Right after the file's own diagnostics: files keep their order.
		warnNoSuchTarget(cfg, f, ds)
		switch name {
		case InitiatorsAllow:
			cfg.InitiatorsAllow = f
		case InitiatorsDeny:
			cfg.InitiatorsDeny = f
			if f != nil {
				p := config.Position{File: f.Path, Line: 1, Col: 1}
				if len(f.Rules) > 0 {
					p = f.Rules[0].Pos
				}
				ds.Warnf(p, "initiators.deny is deprecated (legacy allow/deny mode: initiators not matched by the deny file are allowed)")
			}
		default:
			cfg.TargetsAllow = f
		}
	}
	warnUnreachable(cfg, ds)
	return nil
}

// warnNoSuchTarget warns about a line of f naming no configured target:
// it applies to nothing (a typo?).
func warnNoSuchTarget(cfg *config.Config, f *config.ACLFile, ds *config.Diagnostics) {
	if f == nil {
		return
	}
	for _, r := range f.Rules {
		if r.Target == "ALL" || slices.ContainsFunc(cfg.Targets, func(t *config.Target) bool { return strings.EqualFold(t.Name, r.Target) }) {
			continue
		}
		ds.Warnf(r.Pos, "%s: no target %s is configured: this line applies to nothing", filepath.Base(f.Path), r.Target)
	}
}

// warnUnreachable warns about what IET's first-match rules do silently:
// with initiators.allow present (and no initiators.deny) a target no line
// applies to (by name or ALL) is refused to every initiator.
func warnUnreachable(cfg *config.Config, ds *config.Diagnostics) {
	allow := cfg.InitiatorsAllow
	if allow == nil || cfg.InitiatorsDeny != nil {
		return
	}
	for _, t := range cfg.Targets {
		if !slices.ContainsFunc(allow.Rules, func(r config.ACLRule) bool { return r.Target == "ALL" || strings.EqualFold(r.Target, t.Name) }) {
			ds.Warnf(t.Pos, "target %s has no line in %s (nor an ALL line): every initiator is refused, as in IET (add \"%s ALL\" to let all in)", t.Name, allow.Path, t.Name)
		}
	}
}

func readACL(dirs []string, name string, ds *config.Diagnostics) (*config.ACLFile, error) {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &FileError{Path: p, What: "access-control file", Err: err}
		}
		return ParseACL(p, b, name != TargetsAllow, ds), nil
	}
	return nil, nil
}

// ParseACL parses and lowers one access-control file. initiators selects
// the item forms of initiators.allow/deny (which add initiator-name
// regular expressions); targets.allow items are local addresses only.
func ParseACL(path string, src []byte, initiators bool, ds *config.Diagnostics) *config.ACLFile {
	pf, pds := ietacl.Parse(path, src)
	*ds = append(*ds, pds...)
	f := &config.ACLFile{Path: path, Rules: []config.ACLRule{}}
	for _, r := range pf.Rules {
		rule := config.ACLRule{Target: r.Target.Text, Pos: pos(r.Pos), Items: []config.ACLItem{}}
		if strings.EqualFold(rule.Target, "ALL") && rule.Target != "ALL" {
			ds.Warnf(rule.Pos, "%q: IET only recognises ALL in upper case (taken as a target name)", rule.Target)
		}
		afterHash, aborted := false, false
		for _, it := range r.Items {
			text, tail, tailPos := splitItem(it.Text, pos(it.Pos))
			item, ok := ParseACLItem(text, initiators)
			item.Pos = pos(it.Pos)
			if tail != "" && (!ok || item.Kind != config.ACLAddress) {
				// Only a numeric address stops at the blank (IET's
				// address parser does): anything else is one item.
				text, tail = it.Text, ""
				item, ok = ParseACLItem(text, initiators)
				item.Pos = pos(it.Pos)
			}
			if !ok && strings.HasPrefix(text, "[") && !strings.Contains(text, "]") {
				// IET gives up on the whole line: it applies and
				// matches no one (an allow line then denies). The
				// rest of the line is still checked, to report it all.
				ds.Errorf(item.Pos, "%s; the whole line never matches, as in IET", item.CIDR)
				aborted = true
				continue
			}
			if !ok {
				ds.Errorf(item.Pos, "%s; the item is left out (it never matches)", item.CIDR)
				continue
			}
			switch {
			case tail != "" && strings.HasPrefix(tail, "#"):
				ds.Warnf(tailPos, "%q after the address %s is ignored, as IET does (IET has no comments after a line's first word, but reads an address only up to the blank); put comments on their own line", tail, text)
			case tail != "":
				ds.Warnf(tailPos, "%q after the address %s is ignored, as IET does (it reads an address only up to the blank): separate items with commas", tail, text)
			case afterHash:
				ds.Warnf(item.Pos, "item %q follows a '#' on this line: it is an item all the same (IET has no comments after a line's first word)", text)
			}
			if w := aclItemWarning(text, item, initiators); w != "" {
				ds.Warnf(item.Pos, "%s", w)
			}
			if strings.Contains(it.Text, "#") {
				afterHash = true
			}
			rule.Items = append(rule.Items, item)
		}
		if aborted {
			rule.Items = []config.ACLItem{}
		}
		f.Rules = append(f.Rules, rule)
	}
	warnShadowed(f, ds)
	return f
}

// warnShadowed warns about the lines no check ever reaches: the first
// line that applies to a target decides (IET, and acl.check), and an ALL
// line applies to every target, a named line to that name (compared
// without case). So a line after an ALL line, or after a line for the
// same target, never applies, whatever the targets and the initiator.
func warnShadowed(f *config.ACLFile, ds *config.Diagnostics) {
	firstAll := -1
	firstFor := map[string]int{}
	for i, r := range f.Rules {
		switch {
		case firstAll >= 0:
			ds.Warnf(r.Pos, "%s: this line never applies: the ALL line at %s applies to every target first (IET stops at the first line that applies)", filepath.Base(f.Path), f.Rules[firstAll].Pos)
		case r.Target == "ALL":
			firstAll = i
		default:
			key := strings.ToLower(r.Target)
			if j, seen := firstFor[key]; seen {
				ds.Warnf(r.Pos, "%s: this line never applies: the line at %s for the same target comes first (IET stops at the first line that applies)", filepath.Base(f.Path), f.Rules[j].Pos)
				continue
			}
			firstFor[key] = i
		}
	}
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$`)

// ParseACLItem classifies one item. When ok is false, item.CIDR holds the
// error message.
func ParseACLItem(text string, initiators bool) (item config.ACLItem, ok bool) {
	item.Text = text
	if text == "ALL" {
		item.Kind = config.ACLAll
		return item, true
	}
	if p, err := ParseAddress(text); err == nil {
		item.Kind, item.CIDR = config.ACLAddress, p.String()
		return item, true
	} else if strings.HasPrefix(text, "[") || looksNumeric(text) {
		item.CIDR = err.Error()
		return item, false
	}
	if hostRE.MatchString(text) && strings.ContainsAny(text, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") &&
		!hasIQNPrefix(text) {
		item.Kind = config.ACLHost
		return item, true
	}
	if !initiators {
		item.CIDR = fmt.Sprintf("%q is not an address, a [IPv6] address, a CIDR network or a host name", text)
		return item, false
	}
	if _, err := CompileInitiatorRegex(text); err != nil {
		item.CIDR = fmt.Sprintf("%q is not a valid initiator-name regular expression: %v", text, err)
		return item, false
	}
	item.Kind = config.ACLRegex
	return item, true
}

// splitItem cuts an item at its first blank: text is the first word,
// tail the rest (trimmed) and tailPos where it starts.
func splitItem(item string, at config.Position) (text, tail string, tailPos config.Position) {
	i := strings.IndexAny(item, " \t\r\f\v")
	if i < 0 {
		return item, "", config.Position{}
	}
	rest := strings.TrimLeft(item[i:], " \t\r\f\v")
	tailPos = at
	tailPos.Col += len(item) - len(rest) // items hold no newline
	return item[:i], rest, tailPos
}

// nameChars are the characters of iSCSI names (RFC 3720 section 3.2.6:
// iqn., eui. and naa. names, lower case after normalisation) and
// regexMeta those of a (basic) regular expression over them.
const (
	nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-"
	regexMeta = `.*[]^$\+?(){}|`
)

// regexItemWarning says why an initiator-name regular expression item
// cannot be what the user meant ("" when it looks like a name pattern).
func regexItemWarning(text string) string {
	switch {
	case strings.ContainsAny(text, " \t\r\f\v"):
		return fmt.Sprintf("item %q holds blanks: it is read as one initiator-name regular expression, which no initiator name matches (as IET); separate items with commas, and put comments on their own line", text)
	case strings.Contains(text, "#"):
		return fmt.Sprintf("item %q holds a '#', which no initiator name has: it never matches (as IET; '#' starts a comment only as a line's first word)", text)
	}
	for _, c := range text {
		// Non-ASCII is fine: iqn. names may hold UTF-8.
		if c < 0x80 && !strings.ContainsRune(nameChars, c) && !strings.ContainsRune(regexMeta, c) {
			return fmt.Sprintf("item %q is neither an address, a host name, nor an initiator name or pattern (%q cannot occur in an initiator name): read as an initiator-name regular expression", text, c)
		}
	}
	if hasIQNPrefix(strings.TrimPrefix(strings.ReplaceAll(text, `\.`, "."), "^")) || strings.ContainsAny(text, regexMeta) {
		return ""
	}
	return fmt.Sprintf("item %q is neither an address, a host name, nor an initiator name (iqn., eui., naa.) or a regular expression: read as an initiator-name regular expression", text)
}

func hasIQNPrefix(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "iqn.") || strings.HasPrefix(l, "eui.") || strings.HasPrefix(l, "naa.")
}

func looksNumeric(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c == '.' || c == '/') {
			return false
		}
	}
	return strings.Count(s, ".") == 3
}

func aclItemWarning(text string, item config.ACLItem, initiators bool) string {
	switch item.Kind {
	case config.ACLAddress:
		addr, _, hasPrefix := strings.Cut(text, "/")
		if hasPrefix {
			if p, err := netip.ParsePrefix(strings.Trim(addr, "[]") + "/" + strings.SplitN(text, "/", 2)[1]); err == nil && p.Masked() != p {
				return fmt.Sprintf("%s has host bits set: IET never matches it; read here as %s", text, item.CIDR)
			}
		}
		if p, err := netip.ParsePrefix(item.CIDR); err == nil && hasPrefix {
			switch {
			case p.Addr().Is4() && p.Bits() == 32:
				return fmt.Sprintf("%s: IET never matched a /32 item (its mask arithmetic overflows); here it matches %s", text, p.Addr())
			case p.Addr().Is4() && p.Bits() == 0:
				return fmt.Sprintf("%s: IET matched only the address 0.0.0.0 with a /0 item; here it matches every IPv4 address", text)
			case p.Addr().Is6() && p.Bits() == 128:
				return fmt.Sprintf("%s: IET never matched a /128 item; here it matches %s", text, p.Addr())
			}
		}
		if strings.Contains(addr, ":") && !strings.HasPrefix(addr, "[") {
			return fmt.Sprintf("IPv6 address %s without brackets: IET needs [%s]; accepted", text, addr)
		}
		if a, err := netip.ParseAddr(addr); err == nil && !hasPrefix && a.Is4() && a.As4()[3] == 0 && !a.IsUnspecified() {
			// Likely meant as a network; IET (and we) match the one address.
			// 0.0.0.0 alone is no network anyone means: it matches no
			// initiator (ietd-migrate writes it for NetBSD's "none").
			return fmt.Sprintf("%s without a prefix length matches that one address only (as IET); for the network write e.g. %s/24", text, text)
		}
	case config.ACLRegex:
		return regexItemWarning(text)
	case config.ACLHost:
		if initiators {
			return fmt.Sprintf("host name %s: IET does not resolve host names (it would be taken as an initiator-name pattern); resolved here at login, and also matched as an initiator name", text)
		}
		return fmt.Sprintf("host name %s: IET does not resolve host names; resolved here", text)
	}
	return ""
}

// ParseAddress parses an IET address item: a.b.c.d, [v6], either with an
// optional /prefix (v6 also accepted without brackets). The result is the
// masked network (a host is /32 or /128).
func ParseAddress(s string) (netip.Prefix, error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") && strings.Contains(s, "/") {
		s = strings.Replace(s[:len(s)-1], "/", "]/", 1) // [v6/len] -> [v6]/len
	}
	addr, bits, hasBits := strings.Cut(s, "/")
	if strings.HasPrefix(addr, "[") {
		if !strings.HasSuffix(addr, "]") {
			return netip.Prefix{}, fmt.Errorf("%q: '[' without ']'", s)
		}
		addr = addr[1 : len(addr)-1]
		if !strings.Contains(addr, ":") {
			return netip.Prefix{}, fmt.Errorf("%q: only IPv6 addresses go in brackets", s)
		}
	}
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not a numeric address", s)
	}
	if !hasBits {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(a.String() + "/" + bits)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: bad prefix length", s)
	}
	// An IPv4-mapped item (::ffff:10.1.2.3, /96 and longer) is the IPv4
	// network it maps: peers are compared unmapped, so the mapped form
	// would never match (and a deny rule would let it in).
	if a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// CompileInitiatorRegex compiles an IET initiator-name item (see package
// acl).
func CompileInitiatorRegex(bre string) (*regexp.Regexp, error) { return acl.CompileInitiatorRegex(bre) }
