// Package acl evaluates access control: IET's initiators.allow,
// initiators.deny and targets.allow, and NetBSD per-target netmasks.
//
// IET semantics (1.4.18+): a file check scans the rules top to bottom and
// the first rule whose target is ALL or the target's name (compared
// case-insensitively) decides: "match" when one of its items matches, else
// "no match"; a file with no applicable rule is "no match"; a missing file
// is "absent". Without initiators.deny, an initiator is allowed when
// initiators.allow is absent or matches (so a present allow file denies
// targets it does not mention). With initiators.deny (legacy mode), it is
// denied only when the deny file matches and the allow file does not.
// Address items compare address families first; /32, /128 and /0 work.
//
// NetBSD netmasks (Target.AllowedNets) are checked at login and in
// discovery. "any", "all" and "0/0" admit everyone; any other IPv4 mask
// admits only the IPv4 initiators (and IPv4-mapped IPv6 peers) it contains,
// so native IPv6 initiators are refused (NetBSD did not check them); IPv6
// prefixes, our extension, admit IPv6 initiators.
package acl

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/ietgo/ietd/target/config"
)

// ResolveTimeout bounds the look-up of a host-name item.
const ResolveTimeout = 2 * time.Second

type verdict int

const (
	absent verdict = iota
	noMatch
	match
)

// InitiatorAllowed reports whether an initiator (name and peer address)
// may log in to / discover target t, and the reason when it may not.
func InitiatorAllowed(cfg *config.Config, t *config.Target, initiatorName string, peer netip.Addr) (bool, string) {
	if t == nil {
		return false, "no such target"
	}
	peer = peer.Unmap()
	if ok, why := netsAllow(t, peer); !ok {
		return false, why
	}
	if cfg == nil {
		return true, ""
	}
	m := func(it config.ACLItem) bool { return initiatorItemMatches(it, initiatorName, peer) }
	allow, allowRule := check(cfg.InitiatorsAllow, t, m)
	if cfg.InitiatorsDeny == nil {
		switch allow {
		case absent, match:
			return true, ""
		}
		if allowRule == nil {
			return false, fmt.Sprintf("%s has no rule for %s or ALL (implicit deny)", cfg.InitiatorsAllow.Path, t.Name)
		}
		return false, fmt.Sprintf("not allowed by %s (rule at %s)", cfg.InitiatorsAllow.Path, allowRule.Pos)
	}
	deny, denyRule := check(cfg.InitiatorsDeny, t, m)
	if deny == match && allow != match {
		return false, fmt.Sprintf("denied by %s (rule at %s)", cfg.InitiatorsDeny.Path, denyRule.Pos)
	}
	return true, ""
}

// PortalAllowed reports whether target t may be reached through (and be
// advertised on) the local portal address (targets.allow).
func PortalAllowed(cfg *config.Config, t *config.Target, local netip.Addr) bool {
	if cfg == nil || t == nil {
		return t != nil
	}
	local = local.Unmap()
	v, _ := check(cfg.TargetsAllow, t, func(it config.ACLItem) bool { return addressItemMatches(it, local) })
	return v != noMatch
}

// check applies the first rule of f that applies to t.
func check(f *config.ACLFile, t *config.Target, matches func(config.ACLItem) bool) (verdict, *config.ACLRule) {
	if f == nil {
		return absent, nil
	}
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Target != "ALL" && !strings.EqualFold(r.Target, t.Name) {
			continue
		}
		for _, it := range r.Items {
			if matches(it) {
				return match, r
			}
		}
		return noMatch, r
	}
	return noMatch, nil
}

func initiatorItemMatches(it config.ACLItem, name string, peer netip.Addr) bool {
	switch it.Kind {
	case config.ACLRegex, config.ACLHost:
		if re, err := CompileInitiatorRegex(it.Text); err == nil && re.MatchString(name) {
			return true
		}
		if it.Kind == config.ACLRegex {
			return false
		}
	}
	return addressItemMatches(it, peer)
}

func addressItemMatches(it config.ACLItem, a netip.Addr) bool {
	switch it.Kind {
	case config.ACLAll:
		return true
	case config.ACLAddress:
		return prefixContains(it.CIDR, a)
	case config.ACLHost:
		ctx, cancel := context.WithTimeout(context.Background(), ResolveTimeout)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", it.Text)
		if err != nil {
			return false
		}
		for _, h := range addrs {
			if h.Unmap() == a {
				return true
			}
		}
	}
	return false
}

func prefixContains(cidr string, a netip.Addr) bool {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !a.IsValid() {
		return false
	}
	if p.Addr().Is4() != a.Is4() {
		return false
	}
	return p.Contains(a.WithZone(""))
}

// netsAllow applies NetBSD netmasks. A mask of prefix length 0 ("any",
// "all", "0/0") admits every peer, IPv4 or IPv6; an IPv4 mask admits the
// IPv4 peers it contains (IPv4-mapped IPv6 peers are unmapped first); an
// IPv6 prefix (our extension) admits the IPv6 peers it contains. So a
// native IPv6 peer is refused by an IPv4-only mask: the NetBSD target did
// not check IPv6 initiators at all (reference/netbsd.md 2.6, 8 item 7).
func netsAllow(t *config.Target, peer netip.Addr) (bool, string) {
	if len(t.AllowedNets) == 0 {
		return true, ""
	}
	texts := make([]string, 0, len(t.AllowedNets))
	only4 := true
	for _, n := range t.AllowedNets {
		p, err := netip.ParsePrefix(n.CIDR)
		if err == nil && p.Bits() == 0 {
			return true, ""
		}
		if prefixContains(n.CIDR, peer) {
			return true, ""
		}
		if err == nil && p.Addr().Is6() {
			only4 = false
		}
		texts = append(texts, n.Text)
	}
	why := fmt.Sprintf("%s not in the netmask %s of %s", peer, strings.Join(texts, ", "), t.Name)
	if peer.Is6() && only4 {
		why += " (an IPv4 netmask admits no IPv6 initiator; the NetBSD target did not check them)"
	}
	return false, why
}

// CompileInitiatorRegex compiles an IET initiator-name item: a POSIX basic
// regular expression, implicitly anchored, case-sensitive.
func CompileInitiatorRegex(bre string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^(?:`)
	for i := 0; i < len(bre); i++ {
		c := bre[i]
		switch {
		case c == '\\' && i+1 < len(bre):
			n := bre[i+1]
			i++
			switch n {
			case '(', ')', '{', '}', '|', '+', '?':
				b.WriteByte(n) // BRE \( is a group; GNU \+ \? \| are operators
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == '(' || c == ')' || c == '{' || c == '}' || c == '|' || c == '+' || c == '?':
			b.WriteByte('\\') // literal in a BRE
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString(`)$`)
	return regexp.Compile(b.String())
}
