package compat

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ietgo/ietd/target/config"
)

// MigrateNetBSD converts a NetBSD model (from Load with DialectNetBSD) to
// ietd.conf text and initiators.allow text. CHAP users of the auths file
// become IncomingUser lines of every target. Extents with an offset, a
// length or a RAID composition are written with our Lun extensions
// (Offset=, Size=, Store=, Create=; see the package documentation). notes
// say what changes or cannot be expressed.
func MigrateNetBSD(cfg *config.Config) (ietdConf, initiatorsAllow string, notes []string) {
	return MigrateNetBSDWith(cfg, MigrateOptions{})
}

// MigrateOptions change how MigrateNetBSDWith writes its result.
type MigrateOptions struct {
	// MaskSecrets writes the IncomingUser lines commented out with
	// MaskedSecret for the secret (for text shown on a terminal); the
	// result then lacks the accounts and says so in its header.
	MaskSecrets bool
	// BlockSize is the block length iscsi-target served with (its -b;
	// 0 = its default, 512). Every Lun line gets it as BlockSize=: the
	// targets file does not hold it, and without it ietd would serve
	// 512-byte blocks (or the device's own), moving every LBA.
	BlockSize int
	// MaxSessions is iscsi-target's session limit per target (its -s;
	// 0 = its default, 16), written as MaxSessions on every target:
	// IET's default is no limit.
	MaxSessions int
}

// DefaultNetBSDMaxSessions is iscsi-target's session limit without -s.
const DefaultNetBSDMaxSessions = 16

// DefaultNetBSDBlockSize is iscsi-target's block length without -b.
const DefaultNetBSDBlockSize = 512

// MigrateNetBSDWith is MigrateNetBSD with options.
func MigrateNetBSDWith(cfg *config.Config, opts MigrateOptions) (ietdConf, initiatorsAllow string, notes []string) {
	m := MigrateNetBSDReport(cfg, opts)
	return m.IETDConf, m.InitiatorsAllow, m.Notes
}

// Migration is the result of MigrateNetBSDReport.
type Migration struct {
	IETDConf, InitiatorsAllow string
	// Notes say what changes or cannot be expressed.
	Notes []string
	// HeldBack are the notes (also in Notes) about what the result
	// does not serve as the NetBSD target did: a LUN written commented
	// out, a CHAP user left out, a target name a Target line cannot
	// hold, a netmask that denies everyone. A scripted migration must
	// not pass unnoticed with one of these.
	HeldBack []string
}

// MigrateNetBSDReport is MigrateNetBSDWith, saying what is held back.
func MigrateNetBSDReport(cfg *config.Config, opts MigrateOptions) (m Migration) {
	if cfg == nil {
		return Migration{Notes: []string{"no configuration"}, HeldBack: []string{"no configuration"}}
	}
	var notes []string
	defer func() { m.Notes = notes }()
	c := cfg.Clone()
	c.Dialect = config.DialectIET
	noted := map[string]bool{}
	note := func(format string, args ...any) {
		s := fmt.Sprintf(format, args...)
		if !noted[s] {
			noted[s] = true
			notes = append(notes, s)
		}
	}
	heldNoted := map[string]bool{}
	holdBack := func(format string, args ...any) {
		note(format, args...)
		if s := fmt.Sprintf(format, args...); !heldNoted[s] {
			heldNoted[s] = true
			m.HeldBack = append(m.HeldBack, s)
		}
	}
	var allow strings.Builder
	allow.WriteString("# initiators.allow converted from the netmasks of " + cfg.Source + "\n")
	held := map[*config.Target][]string{}
	bs := opts.BlockSize
	if bs == 0 {
		bs = DefaultNetBSDBlockSize
	}
	if bs > 4096 {
		note("BlockSize=%d (iscsi-target -b %d) is written on every Lun line: ietd serves it, IET refused more than 4096, and Linux initiators cannot use logical blocks larger than 4096", bs, bs)
	}
	maxSess := opts.MaxSessions
	if maxSess == 0 {
		maxSess = DefaultNetBSDMaxSessions
	}
	for _, t := range c.Targets {
		if t.MaxSessions == 0 {
			t.MaxSessions = maxSess
		}
		if strings.ContainsAny(t.Name, blanks+"\n") {
			holdBack("target %q: the name holds blanks, which a Target line cannot hold: edit the result by hand", t.Name)
		}
		var luns []*config.LUN
		for _, l := range t.LUNs {
			// The same disk to initiators after the migration: NetBSD's
			// INQUIRY strings and NAA designator (the identifier and
			// serial number derive from the target name and LUN in both
			// dialects). Set before a held line is rendered too, so
			// that one uncommented by hand keeps it.
			l.Identity = config.DialectNetBSD
			// The same LBAs: iscsi-target served every LUN with
			// its -b block length, whatever the device's own.
			if l.BlockSize == 0 {
				l.BlockSize = bs
			}
			if describeStore(t, l.Store, note, holdBack) {
				luns = append(luns, l)
				continue
			}
			// Never write a Lun line that reads back as another
			// file: leave it commented out.
			held[t] = append(held[t], fmt.Sprintf("# Lun %d %s  (edit by hand: the path cannot be written on a Lun line)", l.Number, strings.ReplaceAll(RenderLunParams(l), "\n", " ")))
		}
		t.LUNs = luns
		// iscsi-target took the first user of the auths file that
		// matched the name without case; ietd takes the first exact
		// match. A later entry differing only in case (E then e) was
		// never used: written, it would let its secret in.
		var accs []config.Account
		for _, a := range t.Auth.Incoming {
			if i := slices.IndexFunc(accs, func(b config.Account) bool { return strings.EqualFold(a.User, b.User) }); i >= 0 {
				note("CHAP user %q of the auths file is left out: NetBSD matched user names without case and used the first entry, %q, so its secret was never accepted", a.User, accs[i].User)
				continue
			}
			accs = append(accs, a)
		}
		t.Auth.Incoming = accs
		for _, a := range t.Auth.Incoming {
			if p := AccountProblem(a); p != "" {
				holdBack("CHAP user %q cannot be migrated: %s (choose another)", a.User, p)
			}
		}
		if len(t.Auth.Incoming) > 0 {
			note("CHAP users of the auths file are IncomingUser lines of every target: CHAP becomes mandatory (NetBSD never required it), and initiators must send the user name exactly as written (NetBSD matched it without case); an initiator using mutual CHAP needs an OutgoingUser line added (NetBSD answered with the initiator's own name and secret)")
		}
		items := netmaskItems(t, note, holdBack)
		fmt.Fprintf(&allow, "%s %s\n", t.Name, strings.Join(items, ", "))
		t.AllowedNets = nil
		t.NetBSDIndex = -1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# ietd.conf converted from the NetBSD configuration %s\n", cfg.Source)
	b.WriteString("# Offset=, Size=, Store=, Create= and Identity= are ietd extensions (IET itself rejects them);\n")
	b.WriteString("# Identity=netbsd keeps NetBSD's INQUIRY data, so initiators see the same disks.\n")
	fmt.Fprintf(&b, "# BlockSize=%d is the block length iscsi-target served (-b %d): keep it, or every LBA moves.\n", bs, bs)
	if opts.MaskSecrets && hasAccounts(c) {
		b.WriteString("# CHAP secrets are not shown: the IncomingUser lines are commented out, so this\n# text is not the whole configuration (ietd-migrate -o DIR writes it with them).\n")
	}
	b.WriteString(renderIET(c, renderOptions{comments: held, maskSecrets: opts.MaskSecrets}))
	m.IETDConf, m.InitiatorsAllow = b.String(), allow.String()
	return m
}

func hasAccounts(c *config.Config) bool {
	if len(c.Discovery.Incoming) > 0 || c.Discovery.Outgoing != nil {
		return true
	}
	for _, t := range c.Targets {
		if len(t.Auth.Incoming) > 0 || t.Auth.Outgoing != nil {
			return true
		}
	}
	return false
}

// describeStore notes what the migration changes in a LUN's store; false
// when a path cannot be written back.
func describeStore(t *config.Target, s *config.Store, note, holdBack func(string, ...any)) bool {
	if s == nil {
		return true
	}
	if s.Name != "" {
		note("target %s: NetBSD names (%s) are not kept in ietd.conf", t.Name, s.Name)
	}
	switch s.Kind {
	case config.StoreConcat, config.StoreMirror:
		note("target %s: RAID composition written as Store=%s (ietd extension)", t.Name, RenderStore(s))
		ok := true
		var files func(*config.Store)
		files = func(m *config.Store) {
			if m.Kind == config.StoreFile {
				noteRelative(t, m.Path, note)
			}
			if m.Kind == config.StoreFile && !PathExpressible(m.Path, true) {
				holdBack("target %s: path %q contains ',', a '#' after a blank, surrounding blanks, a leading '\"', or a '\"' with one of ; ( ) @ +, and cannot be written inside Store=: the LUN is written commented out, edit the result by hand", t.Name, m.Path)
				ok = false
			}
			for _, c := range m.Members {
				files(c)
			}
		}
		files(s)
		return ok
	}
	noteRelative(t, s.Path, note)
	if !PathExpressible(s.Path, false) {
		holdBack("target %s: path %q contains ',', a '#' after a blank, or surrounding blanks, which a Lun line cannot hold: the LUN is written commented out, edit the result by hand", t.Name, s.Path)
		return false
	}
	if s.Offset != 0 || s.Size != 0 {
		if s.Offset != 0 {
			note("target %s: extent window of %s written as Offset=/Size= (ietd extension)", t.Name, s.Path)
		} else {
			note("target %s: extent length of %s written as Size= (ietd extension)", t.Name, s.Path)
		}
	}
	if s.Size == 0 {
		note("target %s: extent of %s with length \"size\" covers the file up to its end", t.Name, s.Path)
	}
	return true
}

// noteRelative warns about a relative path: NetBSD's iscsi-target opened
// it from the directory it was started in, ietd opens it from / once
// detached.
func noteRelative(t *config.Target, path string, note func(string, ...any)) {
	if path != "" && !filepath.IsAbs(path) {
		note("target %s: path %q is relative: NetBSD's iscsi-target opened it from the directory it was started in, ietd opens it from / when detached; write it as an absolute path", t.Name, path)
	}
}

// netmaskItems converts a target's netmask into initiators.allow items.
func netmaskItems(t *config.Target, note, holdBack func(string, ...any)) []string {
	if len(t.AllowedNets) == 0 {
		return []string{"ALL"}
	}
	var items []string
	for _, n := range t.AllowedNets {
		p, err := netip.ParsePrefix(n.CIDR)
		switch {
		case err != nil:
			holdBack("target %s: netmask %q cannot be converted; the target is denied to everyone", t.Name, n.Text)
			continue
		case p.Bits() == 0:
			items = append(items, "ALL")
			continue
		case p.Bits() == p.Addr().BitLen():
			// IET never matches /32 and /128: write the bare address.
			a := p.Addr().String()
			if p.Addr().Is6() {
				a = "[" + a + "]"
			}
			items = append(items, a)
		default:
			a := p.Addr().String()
			if p.Addr().Is6() {
				a = "[" + a + "]"
			}
			items = append(items, fmt.Sprintf("%s/%d", a, p.Bits()))
		}
		note("target %s: netmask %s now restricts logins too (NetBSD only filtered IPv4 discovery answers), and IPv6 initiators are no longer exempt", t.Name, n.Text)
	}
	if len(items) == 0 {
		return []string{"0.0.0.0/32"}
	}
	return items
}

// storeSpecial are the characters a path inside Store= holds only in
// double quotes (RenderStore writes them so).
const storeSpecial = ";()@+"

// PathExpressible reports whether path can be written as a Lun Path= value
// (inStore: inside a Store= expression) and read back unchanged: not
// empty, no surrounding blanks, no ',' or newline, and no word starting
// with '#' (a blank then '#' starts a comment on a Lun line). Inside
// Store= a path holding one of ; ( ) @ + is written in double quotes, so
// it cannot also hold a '"'; nor may it start with one.
func PathExpressible(path string, inStore bool) bool {
	if path == "" || strings.Trim(path, blanks) != path || strings.ContainsAny(path, ",\n") {
		return false
	}
	for i := 1; i < len(path); i++ {
		if path[i] == '#' && strings.IndexByte(blanks, path[i-1]) >= 0 {
			return false
		}
	}
	if !inStore {
		return true
	}
	if strings.HasPrefix(path, `"`) {
		return false
	}
	return !strings.ContainsAny(path, storeSpecial) || !strings.Contains(path, `"`)
}

// blanks separate words in ietd.conf.
const blanks = " \t\r\f\v"
