package compat

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
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
	// nbLen is the length NetBSD gave it: an extent's, or for a device
	// its first member's (NetBSD compared RAID1 members against it).
	nbLen int64
	used  bool
	pos   config.Position
}

// lowerNetBSD turns a targets syntax tree into cfg.
func lowerNetBSD(f *netbsd.Targets, base, dir string, cfg *config.Config, ds *config.Diagnostics) {
	if base == "" {
		base = DefaultNetBSDBase
	}
	extents := map[string]*nbStore{}
	devices := map[string]*nbStore{}
	// defs are the definition lines of every extent and device name,
	// good or bad, in file order: a reference that finds no name says
	// whether its definition failed or comes too late.
	defs := map[string][]config.Position{}
	for _, lines := range [][]*netbsd.Line{f.Lines, f.Invalid} {
		for _, ln := range lines {
			switch {
			case ln.Extent != nil:
				defs[ln.Extent.Name] = append(defs[ln.Extent.Name], pos(ln.Pos))
			case ln.Device != nil:
				defs[ln.Device.Name] = append(defs[ln.Device.Name], pos(ln.Pos))
			}
		}
	}
	unknown := func(p config.Position, what, name string) {
		var before, after *config.Position
		for i, d := range defs[name] {
			switch {
			case d.Line < p.Line && (before == nil || d.Line > before.Line):
				before = &defs[name][i]
			case d.Line > p.Line && (after == nil || d.Line < after.Line):
				after = &defs[name][i]
			}
		}
		switch {
		case before != nil:
			// Had it been good, the name would be known here.
			ds.Errorf(p, "no %s found for %q: its definition at %s had errors", what, name, *before)
		case after != nil:
			ds.Errorf(p, "no %s found for %q: it is defined later, at %s (definitions must come before use)", what, name, *after)
		default:
			ds.Errorf(p, "no %s found for %q", what, name)
		}
	}
	leftOut := func(t *netbsd.Target) {
		ds.LeftOutf(pos(t.Pos), "target %s is left out (the errors on its line)", t.Name)
	}
	for _, ln := range f.Invalid {
		if ln.Target != nil {
			leftOut(ln.Target) // the parser said why
		}
	}
	names := map[string]config.Position{}
	lineNames := map[*config.Target]string{}
	// onPurpose: a target left out for what NetBSD's parser accepted (a
	// host name as netmask, an extent length it misread), so NetBSD
	// would have started; strictDefs are such extent names.
	onPurpose := false
	strictDefs := map[string]bool{}
	for _, ln := range f.Lines {
		switch {
		case ln.Extent != nil:
			e := ln.Extent
			p := pos(e.Pos)
			if prev, dup := extents[e.Name]; dup {
				ds.Errorf(p, "attempt to re-define extent %s (first at %s)", e.Name, prev.pos)
				continue
			}
			st, size, ok := lowerExtent(e, dir, ds)
			if ok {
				extents[e.Name] = &nbStore{store: st, size: size, nbLen: size, pos: p}
			} else {
				strictDefs[e.Name] = true
			}
		case ln.Device != nil:
			d := ln.Device
			p := pos(d.Pos)
			if prev, dup := devices[d.Name]; dup {
				ds.Errorf(p, "attempt to re-define device %s (first at %s)", d.Name, prev.pos)
				continue
			}
			if st, size, nbLen, ok := lowerDevice(d, extents, devices, unknown, ds); ok {
				devices[d.Name] = &nbStore{store: st, size: size, nbLen: nbLen, pos: p}
			}
		case ln.Target != nil:
			t := ln.Target
			p := pos(t.Pos)
			if prev, dup := names[t.Name]; dup {
				ds.Errorf(p, "attempt to re-define target %s (first at %s)", t.Name, prev)
				leftOut(t)
				continue
			}
			names[t.Name] = p
			var src *nbStore
			if s, ok := devices[t.Storage.Text]; ok {
				src = s
			} else if s, ok := extents[t.Storage.Text]; ok {
				src = s
			} else {
				if hint := portColumnHint(t, func(n string) bool { return devices[n] != nil || extents[n] != nil }); hint != "" {
					ds.Errorf(pos(t.Storage.Pos), "no device or extent found for %q: %s", t.Storage.Text, hint)
				} else {
					unknown(pos(t.Storage.Pos), "device or extent", t.Storage.Text)
				}
				if strictDefs[t.Storage.Text] {
					onPurpose = true
				}
				leftOut(t)
				continue
			}
			iqn := base + ":" + t.Name
			if t.HasIQN {
				iqn = t.IQN
				if iqn == "" {
					ds.Errorf(p, "target %s has an empty name after '='", t.Name)
					onPurpose = true
					leftOut(t)
					continue
				}
			}
			if other := cfg.TargetByName(iqn); other != nil {
				ds.Errorf(p, "target %s has the same IQN %s as the target at %s", t.Name, iqn, other.Pos)
				onPurpose = true
				leftOut(t)
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
					onPurpose = true
					leftOut(t)
					continue
				}
				nm.Pos = pos(t.Netmask.Pos)
				if a, bits, _ := strings.Cut(t.Netmask.Text, "/"); bits == "" && a != t.Netmask.Text && !strings.Contains(a, ":") {
					// atoi("") is 0: a mask left unfinished admits everyone.
					ds.Warnf(nm.Pos, "target %s: mask %q has no prefix length after the slash: NetBSD's atoi read it as 0, and so does this reading: %s admits every initiator (write %s for this address only, or %s/N for a network)", t.Name, t.Netmask.Text, nm.CIDR, a, a)
				} else if n, junk, ok := netmaskIgnored(t.Netmask.Text); ok {
					ds.Warnf(nm.Pos, "target %s: mask %q: NetBSD's atoi read the prefix length as %d and ignored %q, and so does this reading: %s", t.Name, t.Netmask.Text, n, junk, nm.CIDR)
				}
				if nonDecimalParts(t.Netmask.Text) {
					ds.Warnf(nm.Pos, "target %s: mask %q is %s: NetBSD's inet_aton reads a part with a leading 0 as octal (010 is 8) and 0x as hexadecimal, and so does this reading", t.Name, t.Netmask.Text, nm.CIDR)
				}
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
			lineNames[tg] = t.Name
		}
	}
	warnOverlaps(cfg, lineNames, ds)
	if len(cfg.Targets) == 0 {
		// A problem of the whole file: no line:col, listed after the
		// line errors that caused it (sortDiagnostics).
		at := config.Position{File: f.Name}
		switch {
		case onPurpose:
			ds.Errorf(at, "no target left to serve: every target line has errors (NetBSD's iscsi-target read some of these lines and started; they are refused here on purpose, as said above)")
		case len(names) > 0 || slices.ContainsFunc(f.Invalid, func(ln *netbsd.Line) bool { return ln.Target != nil }):
			ds.Errorf(at, "no target left to serve: every target line has errors (NetBSD's iscsi-target refuses to start too)")
		default:
			ds.Errorf(at, "no targets defined (NetBSD's iscsi-target refuses to start)")
		}
	}
}

// window is a byte range of a file or device a target's LUN uses.
type window struct {
	path     string
	off, end int64 // end = math.MaxInt64: to the end of the file
}

func storeWindows(st *config.Store, out []window) []window {
	if st == nil {
		return out
	}
	if st.Kind == config.StoreFile && st.Path != "" {
		end := int64(math.MaxInt64)
		if st.Size > 0 {
			end = st.Offset + st.Size
		}
		return append(out, window{filepath.Clean(st.Path), st.Offset, end})
	}
	for _, m := range st.Members {
		out = storeWindows(m, out)
	}
	return out
}

// sameFile reports whether two paths name one file or device (the same
// path, or a link to it).
func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// warnOverlaps warns of read-write targets whose LUNs write the same
// bytes of a file or device (two targets on overlapping extents, or on
// an extent and a device holding it): NetBSD did not check, and two
// initiators writing there corrupt each other's data.
func warnOverlaps(cfg *config.Config, names map[*config.Target]string, ds *config.Diagnostics) {
	type use struct {
		t *config.Target
		w []window
	}
	var uses []use
	for _, t := range cfg.Targets {
		for _, l := range t.LUNs {
			if !l.ReadOnly() {
				uses = append(uses, use{t, storeWindows(l.Store, nil)})
			}
		}
	}
	for j := range uses {
		for i := 0; i < j; i++ {
			a, b := uses[i], uses[j]
			for _, wa := range a.w {
				for _, wb := range b.w {
					if !sameFile(wa.path, wb.path) {
						continue
					}
					lo, hi := max(wa.off, wb.off), min(wa.end, wb.end)
					if lo >= hi {
						continue
					}
					rng := fmt.Sprintf("bytes [%d,%d)", lo, hi)
					if hi == math.MaxInt64 {
						rng = fmt.Sprintf("bytes from %d to the end", lo)
					}
					ds.Warnf(b.t.Pos, "read-write targets %s and %s (at %s) both write %s of %s: two initiators writing there corrupt each other's data (NetBSD did not check)",
						names[b.t], names[a.t], a.t.Pos, rng, wb.path)
				}
			}
		}
	}
}

// portColumnHint explains a target line of NetBSD's February 2006 format
// "NAME STORAGE PORT NETMASK" (targets v1.1.1.1), read as "NAME FLAGS
// STORAGE NETMASK": the storage is a number and the flags name an extent
// or device. "" when the line is not one.
func portColumnHint(t *netbsd.Target, known func(string) bool) string {
	if t.OldForm || t.Flags == nil || t.Storage == nil || t.Netmask == nil || !known(t.Flags.Text) {
		return ""
	}
	if _, err := strconv.ParseUint(t.Storage.Text, 10, 16); err != nil {
		return ""
	}
	return fmt.Sprintf("the February 2006 format \"NAME STORAGE PORT NETMASK\" had a port column, which must go (the port is iscsi-target's -p): write \"%s rw %s %s\" (or ro)", t.RawName, t.Flags.Text, t.Netmask.Text)
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

// strtoll is C strtoll(s, &end, 10): leading blanks and sign, then
// digits. overflow is set when the digits do not fit an int64 (C clamps
// to LLONG_MAX; n is clamped the same way).
func strtoll(s string) (n int64, rest string, overflow bool) {
	t := strings.TrimLeft(s, " \t")
	neg := false
	if t != "" && (t[0] == '-' || t[0] == '+') {
		neg, t = t[0] == '-', t[1:]
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		d := int64(t[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			overflow, n = true, math.MaxInt64
		} else if !overflow {
			n = n*10 + d
		}
		i++
	}
	if i == 0 {
		return 0, s, false
	}
	if neg {
		n = -n
	}
	return n, t[i:], overflow
}

func unitShift(c byte) uint {
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

// unitTail reports whether s, what follows a unit letter, is empty or
// "B"/"iB" in any case (100M, 100MB, 100MiB).
func unitTail(s string) bool {
	switch strings.ToLower(s) {
	case "", "b", "ib":
		return true
	}
	return false
}

// scaled returns (whole + 0.frac) * 2^shift rounded down to whole bytes,
// and false when that does not fit an int64.
func scaled(whole int64, frac string, shift uint) (int64, bool) {
	v := new(big.Int).SetInt64(whole)
	den := big.NewInt(1)
	if frac != "" {
		f, _ := new(big.Int).SetString(frac, 10)
		den.Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
		v.Mul(v, den).Add(v, f)
	}
	v.Lsh(v, shift).Quo(v, den)
	if !v.IsInt64() {
		return 0, false
	}
	return v.Int64(), true
}

func lowerExtent(e *netbsd.Extent, dir string, ds *config.Diagnostics) (*config.Store, int64, bool) {
	path := e.Path.Text
	if dir != "" && path != "" && !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	st := &config.Store{Kind: config.StoreFile, Name: e.Name, Path: path, Pos: pos(e.Pos)}
	off, rest, ovf := strtoll(e.Offset.Text)
	switch {
	case rest == e.Offset.Text:
		ds.Errorf(pos(e.Offset.Pos), "extent %s: offset %q is not a number", e.Name, e.Offset.Text)
		return nil, 0, false
	case off < 0:
		ds.Errorf(pos(e.Offset.Pos), "extent %s: negative offset", e.Name)
		return nil, 0, false
	case ovf:
		ds.Errorf(pos(e.Offset.Pos), "extent %s: offset %q is too large (at most %d bytes)", e.Name, e.Offset.Text, int64(math.MaxInt64))
		return nil, 0, false
	case rest != "":
		ds.Warnf(pos(e.Offset.Pos), "extent %s: offset %q is read as %d byte(s) (NetBSD takes no unit on offsets)", e.Name, e.Offset.Text, off)
	}
	st.Offset = off
	lt := e.Length.Text
	if strings.EqualFold(lt, "size") {
		if off > 0 {
			ds.Warnf(pos(e.Length.Pos), "extent %s: \"size\" with an offset: NetBSD does not subtract the offset; here the extent ends at the end of the file", e.Name)
		}
		// NetBSD takes the file's length when it reads the line (what a
		// RAID1 device compares its members by); the LUN itself still
		// ends at the end of the file.
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			return st, fi.Size(), true
		}
		return st, -1, true
	}
	n, ok := lowerLength(e, ds)
	if !ok {
		return nil, 0, false
	}
	if n > math.MaxInt64-off {
		ds.Errorf(pos(e.Length.Pos), "extent %s: offset %d + length %d is beyond the largest file size (%d bytes)", e.Name, off, n, int64(math.MaxInt64))
		return nil, 0, false
	}
	st.Size = n
	return st, n, true
}

// lowerLength reads an extent length as NetBSD does (digits, then the
// first letter k, m, g or t, case-insensitive; binary multiples), with
// errors where NetBSD gave a useless or wrapped size: overflow, an
// unknown unit, a fraction without unit, zero. "1.5GB" is read as
// 1.5 GiB with a warning (NetBSD: 1 byte).
func lowerLength(e *netbsd.Extent, ds *config.Diagnostics) (int64, bool) {
	lt, lp := e.Length.Text, pos(e.Length.Pos)
	n, rest, ovf := strtoll(lt)
	if rest == lt || n < 0 {
		ds.Errorf(lp, "extent %s: length %q is not a number or \"size\"", e.Name, lt)
		return 0, false
	}
	if ovf {
		ds.Errorf(lp, "extent %s: length %q is too large (at most %d bytes)", e.Name, lt, int64(math.MaxInt64))
		return 0, false
	}
	frac := ""
	if strings.HasPrefix(rest, ".") {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		frac, rest = rest[1:j], rest[j:]
	}
	var shift uint
	switch {
	case rest == "" && frac == "" && len(e.Fields) > 3 && len(e.Fields[3].Text) > 0 && unitShift(e.Fields[3].Text[0]) > 0:
		u := e.Fields[3].Text
		shift = unitShift(u[0])
		v, ok := scaled(n, "", shift)
		if !ok {
			ds.Errorf(pos(e.Fields[3].Pos), "extent %s: length %s %s is too large (at most %d bytes)", e.Name, lt, u, int64(math.MaxInt64))
			return 0, false
		}
		ds.Warnf(pos(e.Fields[3].Pos), "extent %s: unit %q separated from the length: NetBSD reads %d bytes; read here as %d bytes", e.Name, u, n, v)
		return nonZero(e, v, ds)
	case rest == "":
	case strings.EqualFold(rest, "b") && frac == "":
		// "512B": bytes (NetBSD ignores the B).
	case unitShift(rest[0]) > 0:
		shift = unitShift(rest[0])
		if !unitTail(rest[1:]) {
			ds.Warnf(lp, "extent %s: length %q: only the first letter of the unit counts (as NetBSD)", e.Name, lt)
		}
	default:
		ds.Errorf(lp, "extent %s: length %q: unknown unit %q (NetBSD would read %d bytes); use k, m, g or t (binary multiples)", e.Name, lt, rest, n)
		return 0, false
	}
	if frac != "" && shift == 0 {
		ds.Errorf(lp, "extent %s: length %q has a fraction but no unit (NetBSD would read %d bytes)", e.Name, lt, n)
		return 0, false
	}
	v, ok := scaled(n, frac, shift)
	if !ok {
		ds.Errorf(lp, "extent %s: length %q is too large (at most %d bytes)", e.Name, lt, int64(math.MaxInt64))
		return 0, false
	}
	if frac != "" {
		ds.Warnf(lp, "extent %s: length %q: NetBSD reads %d byte(s); read here as %d bytes", e.Name, lt, n, v)
	}
	return nonZero(e, v, ds)
}

func nonZero(e *netbsd.Extent, n int64, ds *config.Diagnostics) (int64, bool) {
	if n == 0 {
		ds.Errorf(pos(e.Length.Pos), "extent %s has length 0", e.Name)
		return 0, false
	}
	return n, true
}

func lowerDevice(d *netbsd.Device, extents, devices map[string]*nbStore, unknown func(config.Position, string, string), ds *config.Diagnostics) (st *config.Store, nominal, nbLen int64, ok bool) {
	level := 0
	lv := d.Level.Text
	if len(lv) >= 4 && strings.EqualFold(lv[:4], "raid") {
		n, _, ovf := strtoll(lv[4:])
		if ovf || n > math.MaxInt32 || n < math.MinInt32 {
			n = -1 // reported as unsupported below
		}
		level = int(n)
	} else {
		ds.Warnf(pos(d.Level.Pos), "device %s: level %q does not start with RAID: RAID0 (as NetBSD)", d.Name, lv)
	}
	st = &config.Store{Name: d.Name, Pos: pos(d.Pos)}
	switch level {
	case 0:
		st.Kind = config.StoreConcat
	case 1:
		st.Kind = config.StoreMirror
	default:
		ds.Errorf(pos(d.Level.Pos), "device %s: %s is not supported (only RAID0 and RAID1; NetBSD gives it size 0)", d.Name, lv)
		return nil, 0, 0, false
	}
	if len(d.Members) == 0 {
		ds.Errorf(pos(d.Pos), "device %s has no members", d.Name)
		return nil, 0, 0, false
	}
	ok = true
	var total int64
	// known: the first member was found, so the others can be compared
	// with it (NetBSD only warned of an unknown first member; a size
	// check against nothing would be a second, misleading error).
	known := false
	var first string    // the first member, when a device
	var nbNominal int64 // what NetBSD compared RAID1 members with
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
			nominal, nbNominal, known = ms.size, ms.nbLen, true
			nbLen = ms.nbLen
			if what == "device" {
				first = m.Text
			}
		}
		if ms.used {
			ds.Errorf(pos(m.Pos), "%s %s has already been used in a device", what, m.Text)
			ok = false
			continue
		}
		ms.used = true
		if level == 1 && what == "extent" && known && i > 0 && ms.size >= 0 && nominal >= 0 {
			// NetBSD compared with the first member's length; for a
			// device that is its own first member's, not its size.
			netbsdSaid := ""
			if first != "" && nbNominal != nominal && nbNominal >= 0 {
				verdict := "refused it too"
				if ms.size == nbNominal {
					verdict = "accepted it"
				}
				netbsdSaid = fmt.Sprintf("; NetBSD compared it with %d, the length of %s's first member, and %s", nbNominal, first, verdict)
			}
			switch {
			case ms.size != nominal:
				ds.Errorf(pos(m.Pos), "extent %s has size %d, not %d (RAID1 members must be equal: %d is the size of %s%s)", m.Text, ms.size, nominal, nominal, d.Members[0].Text, netbsdSaid)
				ok = false
			case netbsdSaid != "":
				ds.Warnf(pos(m.Pos), "extent %s has the size of %s (%d bytes)%s: NetBSD refused this line", m.Text, first, nominal, strings.Replace(netbsdSaid, ", and refused it too", "", 1))
			}
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
	return st, nominal, nbLen, ok
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
		// atoi(3), as NetBSD: digits up to the first other character
		// (the caller warns of what is ignored, netmaskIgnored).
		n, _, _ := strtoll(bits)
		if m, err := netip.ParseAddr(bits); err == nil && m.Is4() && n != 0 {
			if ones, ok := maskOnes(m); ok {
				return nm, fmt.Errorf("can't interpret mask %q: a dotted netmask after the slash; NetBSD takes a prefix length there (its atoi read %d, and the comparison it then made is undefined): write %s/%d", text, n, addr, ones)
			}
		}
		if n < 0 || n > 32 {
			return nm, fmt.Errorf("can't interpret mask %q: prefix length must be 0..32", text)
		}
		prefix = int(n)
	}
	if prefix == 0 {
		nm.CIDR = "0.0.0.0/0"
		return nm, nil
	}
	if hostLike(addr) {
		return nm, fmt.Errorf("can't interpret mask %q: a host name, which NetBSD could not read either (it kept the line, but never listed the target in IPv4 discovery, and let any initiator log in); here the netmask restricts logins too, so write the host's address (192.0.2.7) or a prefix (192.0.2.0/24)", text)
	}
	parts := strings.Split(addr, ".")
	if len(parts) > 4 {
		return nm, fmt.Errorf("can't interpret mask %q", text)
	}
	for len(parts) < 4 {
		parts = append(parts, "0")
	}
	var b [4]byte
	for i, part := range parts {
		v, ok := atonPart(part)
		if !ok {
			return nm, fmt.Errorf("can't interpret mask %q", text)
		}
		b[i] = v
	}
	p, _ := netip.AddrFrom4(b).Prefix(prefix)
	nm.CIDR = p.String()
	return nm, nil
}

// hostLike reports whether a netmask's address part looks like a host
// name ("localhost", "nas.example.com"): a letter outside a 0x part.
func hostLike(addr string) bool {
	for _, part := range strings.Split(addr, ".") {
		if len(part) > 1 && (part[:2] == "0x" || part[:2] == "0X") {
			continue
		}
		if strings.IndexFunc(part, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0 {
			return true
		}
	}
	return false
}

// maskOnes returns the prefix length of a contiguous dotted netmask
// (255.255.255.0 is 24).
func maskOnes(m netip.Addr) (int, bool) {
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := bits.LeadingZeros32(^v)
	return ones, v<<ones == 0
}

// netmaskIgnored reports the prefix length read from an IPv4 mask whose
// text after the slash is not only digits (atoi stops at the first other
// character: "127.0.0.0/8x" is /8, "0/0\\" is /0) and what was ignored.
func netmaskIgnored(text string) (int64, string, bool) {
	addr, bits, ok := strings.Cut(text, "/")
	if !ok || strings.Contains(addr, ":") {
		return 0, "", false
	}
	n, rest, _ := strtoll(bits)
	if rest == "" {
		return 0, "", false
	}
	if len(rest) == len(bits) {
		rest = bits // no digits at all: atoi gives 0
	}
	return n, rest, true
}

// atonPart parses one dotted part as inet_aton(3) does: decimal, 0x
// hexadecimal or, with a leading 0, octal; at most 255.
func atonPart(s string) (byte, bool) {
	base := 10
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	v, err := strconv.ParseUint(s, base, 8)
	return byte(v), err == nil
}

// nonDecimalParts reports whether a netmask's address has a part that
// inet_aton reads as octal or hexadecimal ("010" is 8).
func nonDecimalParts(text string) bool {
	addr, _, _ := strings.Cut(text, "/")
	if strings.Contains(addr, ":") {
		return false
	}
	for _, part := range strings.Split(addr, ".") {
		if len(part) > 1 && part[0] == '0' {
			return true
		}
	}
	return false
}

// lowerAuths attaches the CHAP users of an auths file.
func lowerAuths(f *netbsd.Auths, cfg *config.Config, ds *config.Diagnostics) {
	accs := authsAccounts(f, ds)
	if len(accs) == 0 {
		return
	}
	for _, t := range cfg.Targets {
		t.Auth.Incoming = append(t.Auth.Incoming, accs...)
		netbsdAuthRules(&t.Auth)
	}
}

// authsAccounts are the usable CHAP users of an auths file.
func authsAccounts(f *netbsd.Auths, ds *config.Diagnostics) []config.Account {
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
	return accs
}

// netbsdAuthRules are how NetBSD's target used the auths users.
func netbsdAuthRules(a *config.Auth) {
	// CHAP is checked when the initiator offers it, logins without
	// CHAP still work.
	a.Optional = true
	// NetBSD looks the CHAP_N up without case.
	a.FoldUsers = true
	// NetBSD answers mutual CHAP with the initiator's own account.
	a.MutualWithIncoming = true
}
