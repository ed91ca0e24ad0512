package compat

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ietgo/ietd/parser/netbsd"
	"github.com/ietgo/ietd/target/config"
)

// DefaultNetBSDBase is the NetBSD target's default base IQN (-t).
const DefaultNetBSDBase = "iqn.1994-04.org.netbsd.iscsi-target"

type nbStore struct {
	store *config.Store
	size  int64 // nominal length (NetBSD rules), -1 = to the end of file
	used  bool
	pos   config.Position
}

// lowerNetBSD turns a targets syntax tree into cfg.
func lowerNetBSD(f *netbsd.Targets, base string, cfg *config.Config, ds *config.Diagnostics) {
	if base == "" {
		base = DefaultNetBSDBase
	}
	extents := map[string]*nbStore{}
	devices := map[string]*nbStore{}
	later := map[string]config.Position{} // names defined anywhere, for forward-reference hints
	for _, ln := range f.Lines {
		switch {
		case ln.Extent != nil:
			if _, ok := later[ln.Extent.Name]; !ok {
				later[ln.Extent.Name] = pos(ln.Pos)
			}
		case ln.Device != nil:
			if _, ok := later[ln.Device.Name]; !ok {
				later[ln.Device.Name] = pos(ln.Pos)
			}
		}
	}
	unknown := func(p config.Position, what, name string) {
		if def, ok := later[name]; ok {
			ds.Errorf(p, "no %s found for %q: it is defined later, at %s (definitions must come before use)", what, name, def)
			return
		}
		ds.Errorf(p, "no %s found for %q", what, name)
	}
	names := map[string]config.Position{}
	for _, ln := range f.Lines {
		switch {
		case ln.Extent != nil:
			e := ln.Extent
			p := pos(e.Pos)
			if prev, dup := extents[e.Name]; dup {
				ds.Errorf(p, "attempt to re-define extent %s (first at %s)", e.Name, prev.pos)
				continue
			}
			st, size, ok := lowerExtent(e, ds)
			if ok {
				extents[e.Name] = &nbStore{store: st, size: size, pos: p}
			}
		case ln.Device != nil:
			d := ln.Device
			p := pos(d.Pos)
			if prev, dup := devices[d.Name]; dup {
				ds.Errorf(p, "attempt to re-define device %s (first at %s)", d.Name, prev.pos)
				continue
			}
			if st, size, ok := lowerDevice(d, extents, devices, unknown, ds); ok {
				devices[d.Name] = &nbStore{store: st, size: size, pos: p}
			}
		case ln.Target != nil:
			t := ln.Target
			p := pos(t.Pos)
			if prev, dup := names[t.Name]; dup {
				ds.Errorf(p, "attempt to re-define target %s (first at %s)", t.Name, prev)
				continue
			}
			names[t.Name] = p
			var src *nbStore
			if s, ok := devices[t.Storage.Text]; ok {
				src = s
			} else if s, ok := extents[t.Storage.Text]; ok {
				src = s
			} else {
				unknown(pos(t.Storage.Pos), "device or extent", t.Storage.Text)
				continue
			}
			iqn := base + ":" + t.Name
			if t.HasIQN {
				iqn = t.IQN
				if iqn == "" {
					ds.Errorf(p, "target %s has an empty name after '='", t.Name)
					continue
				}
			}
			if other := cfg.TargetByName(iqn); other != nil {
				ds.Errorf(p, "target %s has the same IQN %s as the target at %s", t.Name, iqn, other.Pos)
				continue
			}
			ro := readOnlyFlag(t, ds)
			tg := config.NewTarget(len(cfg.Targets)+1, iqn)
			tg.Pos = p
			tg.NetBSDIndex = len(cfg.Targets)
			if t.Netmask != nil {
				nm, err := ParseNetmask(t.Netmask.Text)
				if err != nil {
					ds.Errorf(pos(t.Netmask.Pos), "target %s: %v", t.Name, err)
					continue
				}
				nm.Pos = pos(t.Netmask.Pos)
				tg.AllowedNets = []config.Netmask{nm}
			}
			lun := &config.LUN{Number: 0, Pos: p, Type: "fileio", IOMode: "wb", Store: cloneStore(src.store)}
			if ro {
				lun.IOMode = "ro"
			} else {
				setCreate(lun.Store, true)
			}
			tg.LUNs = []*config.LUN{lun}
			cfg.Targets = append(cfg.Targets, tg)
		}
	}
	if len(cfg.Targets) == 0 {
		ds.Errorf(config.Position{File: f.Name, Line: 1, Col: 1}, "no targets defined (NetBSD's iscsi-target refuses to start)")
	}
}

func cloneStore(s *config.Store) *config.Store {
	c := *s
	c.Members = nil
	for _, m := range s.Members {
		c.Members = append(c.Members, cloneStore(m))
	}
	return &c
}

func readOnlyFlag(t *netbsd.Target, ds *config.Diagnostics) bool {
	if t.OldForm {
		ds.Warnf(pos(t.Pos), "old 3-field target entry %s: read-only (as NetBSD); write \"%s ro %s %s\" or \"%s rw ...\"", t.Name, t.RawName, t.Storage.Text, t.Netmask.Text, t.RawName)
		return true
	}
	switch f := t.Flags.Text; f {
	case "ro", "r", "readonly":
		return true
	case "rw":
		return false
	default:
		if l := strings.ToLower(f); l == "ro" || l == "r" || l == "readonly" {
			ds.Warnf(pos(t.Flags.Pos), "flag %q: NetBSD only knows ro, r, readonly (lower case) and would make the target read-write; read-only here", f)
			return true
		}
		ds.Warnf(pos(t.Flags.Pos), "unknown flag %q: read-write (as NetBSD); use rw or ro", f)
		return false
	}
}

// strtoll is C strtoll(s, &end, 10): leading blanks and sign, then digits.
func strtoll(s string) (n int64, rest string) {
	t := strings.TrimLeft(s, " \t")
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg, t = t[0] == '-', t[1:]
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		if n < (1<<62)/10 {
			n = n*10 + int64(t[i]-'0')
		}
		i++
	}
	if i == 0 {
		return 0, s
	}
	if neg {
		n = -n
	}
	return n, t[i:]
}

func unitShift(c byte) int {
	switch c {
	case 't', 'T':
		return 40
	case 'g', 'G':
		return 30
	case 'm', 'M':
		return 20
	case 'k', 'K':
		return 10
	}
	return 0
}

func lowerExtent(e *netbsd.Extent, ds *config.Diagnostics) (*config.Store, int64, bool) {
	st := &config.Store{Kind: config.StoreFile, Name: e.Name, Path: e.Path.Text, Pos: pos(e.Pos)}
	off, rest := strtoll(e.Offset.Text)
	switch {
	case rest == e.Offset.Text:
		ds.Errorf(pos(e.Offset.Pos), "extent %s: offset %q is not a number", e.Name, e.Offset.Text)
		return nil, 0, false
	case off < 0:
		ds.Errorf(pos(e.Offset.Pos), "extent %s: negative offset", e.Name)
		return nil, 0, false
	case rest != "":
		ds.Warnf(pos(e.Offset.Pos), "extent %s: offset %q is read as %d bytes (NetBSD takes no unit on offsets)", e.Name, e.Offset.Text, off)
	}
	st.Offset = off
	lt := e.Length.Text
	if strings.EqualFold(lt, "size") {
		if off > 0 {
			ds.Warnf(pos(e.Length.Pos), "extent %s: \"size\" with an offset: NetBSD does not subtract the offset; here the extent ends at the end of the file", e.Name)
		}
		return st, -1, true
	}
	n, rest := strtoll(lt)
	if rest == lt || n < 0 {
		ds.Errorf(pos(e.Length.Pos), "extent %s: length %q is not a number or \"size\"", e.Name, lt)
		return nil, 0, false
	}
	if strings.HasPrefix(rest, ".") {
		// "1.5GB": NetBSD stops at '.', giving 1 byte; the user meant 1.5 GiB.
		frac, r2 := rest[1:], ""
		j := 0
		for j < len(frac) && frac[j] >= '0' && frac[j] <= '9' {
			j++
		}
		frac, r2 = frac[:j], frac[j:]
		shift := 0
		if r2 != "" {
			shift = unitShift(r2[0])
		}
		if f, err := strconv.ParseFloat(fmt.Sprintf("%d.%s", n, frac), 64); err == nil && shift > 0 {
			v := int64(f * float64(int64(1)<<shift))
			ds.Warnf(pos(e.Length.Pos), "extent %s: length %q: NetBSD reads %d byte(s); read here as %d bytes", e.Name, lt, n, v)
			st.Size = v
			return st, v, true
		}
	}
	if rest != "" {
		n <<= unitShift(rest[0])
	} else if len(e.Fields) > 3 && len(e.Fields[3].Text) > 0 && unitShift(e.Fields[3].Text[0]) > 0 {
		u := e.Fields[3].Text
		v := n << unitShift(u[0])
		ds.Warnf(pos(e.Fields[3].Pos), "extent %s: unit %q separated from the length: NetBSD reads %d bytes; read here as %d bytes", e.Name, u, n, v)
		n = v
	}
	if n == 0 {
		ds.Errorf(pos(e.Length.Pos), "extent %s has length 0", e.Name)
		return nil, 0, false
	}
	st.Size = n
	return st, n, true
}

func lowerDevice(d *netbsd.Device, extents, devices map[string]*nbStore, unknown func(config.Position, string, string), ds *config.Diagnostics) (*config.Store, int64, bool) {
	level := 0
	lv := d.Level.Text
	if len(lv) >= 4 && strings.EqualFold(lv[:4], "raid") {
		n, _ := strtoll(lv[4:])
		level = int(n)
	} else {
		ds.Warnf(pos(d.Level.Pos), "device %s: level %q does not start with RAID: RAID0 (as NetBSD)", d.Name, lv)
	}
	st := &config.Store{Name: d.Name, Pos: pos(d.Pos)}
	switch level {
	case 0:
		st.Kind = config.StoreConcat
	case 1:
		st.Kind = config.StoreMirror
	default:
		ds.Errorf(pos(d.Level.Pos), "device %s: RAID%d is not supported (only RAID0 and RAID1; NetBSD gives it size 0)", d.Name, level)
		return nil, 0, false
	}
	if len(d.Members) == 0 {
		ds.Errorf(pos(d.Pos), "device %s has no members", d.Name)
		return nil, 0, false
	}
	ok := true
	var nominal int64
	var total int64
	for i, m := range d.Members {
		var ms *nbStore
		what := "extent"
		if s, found := extents[m.Text]; found {
			ms = s
		} else if s, found := devices[m.Text]; found {
			ms, what = s, "device"
		} else {
			unknown(pos(m.Pos), "extent or device", m.Text)
			ok = false
			continue
		}
		if i == 0 {
			nominal = ms.size
		}
		if ms.used {
			ds.Errorf(pos(m.Pos), "%s %s has already been used in a device", what, m.Text)
			ok = false
			continue
		}
		ms.used = true
		if level == 1 && what == "extent" && ms.size != nominal {
			ds.Errorf(pos(m.Pos), "extent %s has size %d, not %d (RAID1 members must be equal)", m.Text, ms.size, nominal)
			ok = false
		}
		if ms.size < 0 {
			total = -1
		} else if total >= 0 {
			total += ms.size
		}
		st.Members = append(st.Members, cloneStore(ms.store))
	}
	if level == 1 && len(d.Members) < 2 {
		ds.Errorf(pos(d.Pos), "device %s is RAID1, but has only %d sub-devices/extents", d.Name, len(d.Members))
		ok = false
	}
	if level == 0 {
		nominal = total
	}
	return st, nominal, ok
}

// ParseNetmask parses a NetBSD netmask field ("any", "all", "none",
// "10.4/16", "0/0", "192.168.1.7"; IPv6 CIDR is our extension).
func ParseNetmask(text string) (config.Netmask, error) {
	nm := config.Netmask{Text: text}
	switch text {
	case "any", "all":
		nm.CIDR = "0.0.0.0/0"
		return nm, nil
	case "none":
		nm.CIDR = "0.0.0.0/32"
		return nm, nil
	}
	addr, bits, hasBits := strings.Cut(text, "/")
	if strings.Contains(addr, ":") {
		p, err := ParseAddress(text)
		if err != nil {
			return nm, fmt.Errorf("can't interpret mask %q", text)
		}
		nm.CIDR = p.String()
		return nm, nil
	}
	prefix := 32
	if hasBits {
		n, rest := strtoll(bits)
		if rest != "" || n < 0 || n > 32 {
			return nm, fmt.Errorf("can't interpret mask %q: prefix length must be 0..32", text)
		}
		prefix = int(n)
	}
	if prefix == 0 {
		nm.CIDR = "0.0.0.0/0"
		return nm, nil
	}
	parts := strings.Split(addr, ".")
	if len(parts) > 4 {
		return nm, fmt.Errorf("can't interpret mask %q", text)
	}
	for len(parts) < 4 {
		parts = append(parts, "0")
	}
	a, err := netip.ParseAddr(strings.Join(parts, "."))
	if err != nil {
		return nm, fmt.Errorf("can't interpret mask %q", text)
	}
	p, _ := a.Prefix(prefix)
	nm.CIDR = p.String()
	return nm, nil
}

// lowerAuths attaches the CHAP users of an auths file.
func lowerAuths(f *netbsd.Auths, cfg *config.Config, ds *config.Diagnostics) {
	var accs []config.Account
	for _, e := range f.Entries {
		p := pos(e.Pos)
		if e.AuthType == nil || !strings.EqualFold(e.AuthType.Text, "chap") {
			continue // "none" entries are never used by the target
		}
		if e.Secret == nil || e.Secret.Text == "" {
			ds.Warnf(p, "user %s has no CHAP secret: never usable", e.User.Text)
			continue
		}
		accs = append(accs, config.Account{User: e.User.Text, Secret: e.Secret.Text, Pos: p})
	}
	if len(accs) == 0 {
		return
	}
	for _, t := range cfg.Targets {
		t.Auth.Incoming = append(t.Auth.Incoming, accs...)
		// As NetBSD: CHAP is checked when the initiator offers it,
		// logins without CHAP still work.
		t.Auth.Optional = true
	}
}
