package compat

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/ietgo/ietd/target/config"
)

// RenderIET renders the model as ietd.conf text. Access-control files are
// rendered by RenderACL. Parsing the result gives the same model (positions
// aside); NetBSD-only fields (extent names, netmasks, NetBSD indexes) are
// not part of ietd.conf (see MigrateNetBSD).
func RenderIET(cfg *config.Config) string { return renderIET(cfg, renderOptions{}) }

// renderOptions: comments are lines written at the top of some target
// sections; maskSecrets writes every account line commented out, without
// its secret.
type renderOptions struct {
	comments    map[*config.Target][]string
	maskSecrets bool
}

func renderIET(cfg *config.Config, o renderOptions) string {
	var b strings.Builder
	if cfg == nil {
		return ""
	}
	renderAccounts(&b, "", cfg.Discovery, o.maskSecrets)
	if is := cfg.ISNS; is != nil {
		if is.Server != "" {
			srv := is.Server
			if is.Port != 0 {
				srv = net.JoinHostPort(srv, strconv.Itoa(is.Port))
			}
			fmt.Fprintf(&b, "iSNSServer %s\n", srv)
		}
		if is.AccessControl {
			b.WriteString("iSNSAccessControl Yes\n")
		}
	}
	for _, t := range cfg.Targets {
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		renderTarget(&b, t, o)
	}
	return b.String()
}

func yn(v bool) string {
	if v {
		return "Yes"
	}
	return "No"
}

func renderTarget(b *strings.Builder, t *config.Target, o renderOptions) {
	fmt.Fprintf(b, "Target %s\n", t.Name)
	for _, c := range o.comments[t] {
		fmt.Fprintf(b, "\t%s\n", c)
	}
	if t.Alias != "" {
		fmt.Fprintf(b, "\tAlias %s\n", t.Alias)
	}
	renderAccounts(b, "\t", t.Auth, o.maskSecrets)
	for _, l := range t.LUNs {
		fmt.Fprintf(b, "\tLun %d %s\n", l.Number, RenderLunParams(l))
	}
	def := config.NewTarget(0, "")
	p, d := t.Params, def.Params
	ints := []struct {
		key       string
		v, defval int
	}{
		{"MaxConnections", p.MaxConnections, d.MaxConnections},
		{"MaxSessions", t.MaxSessions, def.MaxSessions},
		{"MaxRecvDataSegmentLength", p.MaxRecvDataSegmentLength, d.MaxRecvDataSegmentLength},
		{"MaxXmitDataSegmentLength", p.MaxXmitDataSegmentLength, d.MaxXmitDataSegmentLength},
		{"MaxBurstLength", p.MaxBurstLength, d.MaxBurstLength},
		{"FirstBurstLength", p.FirstBurstLength, d.FirstBurstLength},
		{"DefaultTime2Wait", p.DefaultTime2Wait, d.DefaultTime2Wait},
		{"DefaultTime2Retain", p.DefaultTime2Retain, d.DefaultTime2Retain},
		{"MaxOutstandingR2T", p.MaxOutstandingR2T, d.MaxOutstandingR2T},
		{"ErrorRecoveryLevel", p.ErrorRecoveryLevel, d.ErrorRecoveryLevel},
		{"OFMarkInt", p.OFMarkInt, d.OFMarkInt},
		{"IFMarkInt", p.IFMarkInt, d.IFMarkInt},
		{"Wthreads", t.Wthreads, def.Wthreads},
		{"QueuedCommands", t.QueuedCommands, def.QueuedCommands},
		{"NOPInterval", t.NOPInterval, def.NOPInterval},
		{"NOPTimeout", t.NOPTimeout, def.NOPTimeout},
	}
	for _, k := range ints {
		if k.v != k.defval {
			fmt.Fprintf(b, "\t%s %d\n", k.key, k.v)
		}
	}
	bools := []struct {
		key       string
		v, defval bool
	}{
		{"InitialR2T", p.InitialR2T, d.InitialR2T},
		{"ImmediateData", p.ImmediateData, d.ImmediateData},
		{"DataPDUInOrder", p.DataPDUInOrder, d.DataPDUInOrder},
		{"DataSequenceInOrder", p.DataSequenceInOrder, d.DataSequenceInOrder},
		{"OFMarker", p.OFMarker, d.OFMarker},
		{"IFMarker", p.IFMarker, d.IFMarker},
	}
	for _, k := range bools {
		if k.v != k.defval {
			fmt.Fprintf(b, "\t%s %s\n", k.key, yn(k.v))
		}
	}
	if hd := strings.Join(p.HeaderDigest, ","); hd != strings.Join(d.HeaderDigest, ",") && hd != "" {
		fmt.Fprintf(b, "\tHeaderDigest %s\n", hd)
	}
	if dd := strings.Join(p.DataDigest, ","); dd != strings.Join(d.DataDigest, ",") && dd != "" {
		fmt.Fprintf(b, "\tDataDigest %s\n", dd)
	}
}

// RenderLunParams renders the parameter string of a Lun line.
func RenderLunParams(l *config.LUN) string {
	var ps []string
	add := func(k, v string) { ps = append(ps, k+"="+v) }
	s := l.Store
	switch {
	case l.Type == "nullio" || s == nil:
	case s.Kind == config.StoreFile:
		add("Path", s.Path)
		if s.Offset != 0 {
			add("Offset", strconv.FormatInt(s.Offset, 10))
		}
		if s.Size != 0 {
			add("Size", strconv.FormatInt(s.Size, 10))
		}
	default:
		add("Store", RenderStore(s))
	}
	typ := l.Type
	if typ == "" {
		typ = "fileio"
	}
	add("Type", typ)
	if typ == "nullio" {
		if l.Blocks != 0 && l.Blocks != config.DefaultNullioBlocks {
			add("Blocks", strconv.FormatUint(l.Blocks, 10))
		}
	} else if l.IOMode != "" && l.IOMode != "wt" {
		add("IOMode", l.IOMode)
	}
	if storeCreates(s) {
		add("Create", "Yes")
	}
	if l.ScsiID != "" {
		add("ScsiId", l.ScsiID)
	}
	if l.ScsiSN != "" {
		add("ScsiSN", l.ScsiSN)
	}
	if l.BlockSize != 0 {
		add("BlockSize", strconv.Itoa(l.BlockSize))
	}
	if l.Vendor != "" {
		add("Vendor", l.Vendor)
	}
	if l.Product != "" {
		add("Product", l.Product)
	}
	if l.Revision != "" {
		add("Revision", l.Revision)
	}
	if l.ScsiVersion != 0 {
		add("ScsiVersion", strconv.Itoa(l.ScsiVersion))
	}
	if l.Removable {
		add("Removable", "Yes")
	}
	if l.Identity != "" {
		add("Identity", string(l.Identity))
	}
	if l.NAA != nil {
		v := "No"
		if *l.NAA {
			v = "Yes"
		}
		add("NAA", v)
	}
	return strings.Join(ps, ",")
}

func storeCreates(s *config.Store) bool {
	if s == nil {
		return false
	}
	if s.Kind == config.StoreFile {
		return s.Create
	}
	for _, m := range s.Members {
		if storeCreates(m) {
			return true
		}
	}
	return false
}

// RenderStore renders a store in our Store= syntax:
// raid0(m;m...), raid1(m;m...), PATH[@OFFSET][+SIZE].
func RenderStore(s *config.Store) string {
	switch s.Kind {
	case config.StoreConcat, config.StoreMirror:
		ms := make([]string, len(s.Members))
		for i, m := range s.Members {
			ms[i] = RenderStore(m)
		}
		lvl := "raid0"
		if s.Kind == config.StoreMirror {
			lvl = "raid1"
		}
		return lvl + "(" + strings.Join(ms, ";") + ")"
	}
	out := s.Path
	if strings.ContainsAny(out, storeSpecial) {
		out = `"` + out + `"`
	}
	if s.Offset != 0 {
		out += "@" + strconv.FormatInt(s.Offset, 10)
	}
	if s.Size != 0 {
		out += "+" + strconv.FormatInt(s.Size, 10)
	}
	return out
}

// RenderACL renders an access-control file.
func RenderACL(f *config.ACLFile) string {
	if f == nil {
		return ""
	}
	var b strings.Builder
	for _, r := range f.Rules {
		items := make([]string, len(r.Items))
		for i, it := range r.Items {
			items[i] = it.Text
		}
		fmt.Fprintf(&b, "%s %s\n", r.Target, strings.Join(items, ", "))
	}
	return b.String()
}

// AccountExpressible reports whether an account can be written on an
// IncomingUser/OutgoingUser line (see AccountProblem).
func AccountExpressible(a config.Account) bool { return AccountProblem(a) == "" }

// AccountProblem says why an account cannot be written on an
// IncomingUser/OutgoingUser line ("" when it can): ietd.conf words cannot
// be empty or hold blanks. A '#' at the start of a user name or secret is
// fine: only a line's first word starts a comment.
func AccountProblem(a config.Account) string {
	bad := func(what, s string) string {
		switch {
		case s == "":
			return "the " + what + " is empty"
		case strings.ContainsAny(s, " \t\r\n\v\f"):
			return "the " + what + " holds blanks, which ietd.conf cannot hold"
		}
		return ""
	}
	if p := bad("user name", a.User); p != "" {
		return p
	}
	return bad("secret", a.Secret)
}

// MaskedSecret stands for a secret in text shown on a terminal.
const MaskedSecret = "********"

func renderAccounts(b *strings.Builder, indent string, au config.Auth, mask bool) {
	line := func(kw string, a config.Account) {
		switch p := AccountProblem(a); {
		case p != "":
			fmt.Fprintf(b, "%s# %s %q omitted: %s\n", indent, kw, a.User, p)
		case mask:
			// Commented out: a masked line must never serve as an
			// account with a known secret.
			fmt.Fprintf(b, "%s# %s %s %s  (secret not shown)\n", indent, kw, a.User, MaskedSecret)
		default:
			fmt.Fprintf(b, "%s%s %s %s\n", indent, kw, a.User, a.Secret)
		}
	}
	for _, a := range au.Incoming {
		line("IncomingUser", a)
	}
	if a := au.Outgoing; a != nil {
		line("OutgoingUser", *a)
	}
}
