package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

// wildDir holds ietd.conf and access-control files as they are found on
// real hosts (IET's sample and man pages, distribution wikis, tutorials,
// Openfiler, OpenStack Cinder, forum posts), reduced and renamed: one
// directory per file set, each with the golden diagnostics and model.
const wildDir = "wild-iet"

// wildLun is "N:type:iomode:path" (path "-" for nullio), with
// " id=X sn=Y bs=N blocks=N" when set.
func wildLun(l *config.LUN) string {
	path := "-"
	if l.Store != nil {
		path = l.Store.Path
	}
	s := fmt.Sprintf("%d:%s:%s:%s", l.Number, l.Type, l.IOMode, path)
	if l.ScsiID != "" {
		s += " id=" + l.ScsiID
	}
	if l.ScsiSN != "" {
		s += " sn=" + l.ScsiSN
	}
	if l.BlockSize != 0 {
		s += fmt.Sprintf(" bs=%d", l.BlockSize)
	}
	if l.Type == "nullio" {
		s += fmt.Sprintf(" blocks=%d", l.Blocks)
	}
	return s
}

func wildLuns(t *config.Target) []string {
	var out []string
	for _, l := range t.LUNs {
		out = append(out, wildLun(l))
	}
	return out
}

func users(as []config.Account) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.User)
	}
	return out
}

// wildCase is what IET would have made of a file set, per
// /work/shared/reference/iet.md (sections named), and what we make of it
// where we differ on purpose.
type wildCase struct {
	// errors is whether the set has errors (--check exits 1).
	errors bool
	// diags are substrings that must appear among the diagnostics.
	diags []string
	check func(t *testing.T, cfg *config.Config)
}

var wildCases = map[string]wildCase{
	// IET's shipped sample with the '#' of every setting removed: the
	// trailing comments after values and the comment-only continuation
	// lines are harmless (§1.3); the values are IET's defaults, except
	// MaxRecv/XmitDataSegmentLength 8192 as written.
	"sample-uncommented": {
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if !slices.Equal(users(cfg.Discovery.Incoming), []string{"discuser"}) || cfg.Discovery.Outgoing == nil || cfg.Discovery.Outgoing.User != "discout" {
				t.Errorf("discovery %+v", cfg.Discovery)
			}
			if !slices.Equal(users(tg.Auth.Incoming), []string{"tuser"}) || tg.Auth.Outgoing.User != "tout" {
				t.Errorf("target accounts %+v", tg.Auth)
			}
			p := tg.Params
			if p.MaxRecvDataSegmentLength != 8192 || p.MaxXmitDataSegmentLength != 8192 || p.MaxConnections != 1 || !p.InitialR2T || !p.ImmediateData {
				t.Errorf("params %+v", p)
			}
			if !slices.Equal(p.HeaderDigest, []string{"None", "CRC32C"}) || !slices.Equal(p.DataDigest, []string{"None", "CRC32C"}) {
				t.Errorf("digests %v %v", p.HeaderDigest, p.DataDigest)
			}
			if tg.Wthreads != 8 || tg.QueuedCommands != 32 || tg.Alias != "Test" {
				t.Errorf("Wthreads %d QueuedCommands %d Alias %q", tg.Wthreads, tg.QueuedCommands, tg.Alias)
			}
			if cfg.ISNS == nil || cfg.ISNS.Server != "192.0.2.16" || cfg.ISNS.AccessControl {
				t.Errorf("iSNS %+v", cfg.ISNS)
			}
		},
	},
	// The 0.4.15 man page example: unindented stanza, Sectors= (the old
	// name of Blocks=), ImmediateData No, MaxOutstandingR2T 8.
	"manpage-0415": {
		diags: []string{"CHAP secret of joe is shorter than 12 characters"},
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if got := wildLuns(tg); !slices.Equal(got, []string{"0:fileio:wt:/srv/wild/man0415.img", "1:nullio:wt:- blocks=10000"}) {
				t.Errorf("LUNs %v", got)
			}
			if tg.Params.ImmediateData || tg.Params.MaxOutstandingR2T != 8 || tg.Params.DefaultTime2Retain != 20 {
				t.Errorf("params %+v", tg.Params)
			}
		},
	},
	// The 1.4.20 man page example: Blocks= with BlockSize=, the NOP keys,
	// and the shipped "ALL ALL" access-control files.
	"manpage-1420": {
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if got := wildLuns(tg); !slices.Equal(got, []string{"0:fileio:wt:/srv/wild/man1420.img", "1:nullio:wt:- bs=4096 blocks=10000"}) {
				t.Errorf("LUNs %v", got)
			}
			if tg.Params.DefaultTime2Retain != 0 || tg.NOPInterval != 0 || tg.MaxSessions != 0 {
				t.Errorf("DefaultTime2Retain %d NOPInterval %d", tg.Params.DefaultTime2Retain, tg.NOPInterval)
			}
			if cfg.InitiatorsAllow == nil || cfg.TargetsAllow == nil || cfg.InitiatorsAllow.Rules[0].Items[0].Kind != config.ACLAll {
				t.Errorf("ACL files %+v %+v", cfg.InitiatorsAllow, cfg.TargetsAllow)
			}
		},
	},
	// A wiki's multipath target: blockio with ScsiId/ScsiSN, values
	// aligned with blanks and followed by comments.
	"debian-multipath": {
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if got := wildLuns(tg); !slices.Equal(got, []string{"0:blockio:wt:/dev/wild-sdb id=xyz sn=xyz", "1:blockio:wt:/dev/wild-sdc id=abc sn=abc"}) {
				t.Errorf("LUNs %v", got)
			}
			if !slices.Equal(tg.Params.HeaderDigest, []string{"None", "CRC32C"}) || tg.Params.MaxRecvDataSegmentLength != 8192 {
				t.Errorf("params %+v", tg.Params)
			}
		},
	},
	// A tutorial: blank lines inside the stanza, a bare OutgoingUser
	// template line (IET rejects it and starts, §1.5.1), an allow line
	// with a x.y.z.0 address that matches that one address only (§2.2).
	"vn-tutorial": {
		diags: []string{
			"OutgoingUser without a user and secret ignored (as IET): no mutual CHAP",
			"172.16.1.0 without a prefix length matches that one address only (as IET)",
		},
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if !slices.Equal(users(tg.Auth.Incoming), []string{"vnuser"}) || tg.Auth.Outgoing != nil || tg.Alias != "LUN1" {
				t.Errorf("auth %+v alias %q", tg.Auth, tg.Alias)
			}
			it := cfg.InitiatorsAllow.Rules[0].Items[0]
			if it.Kind != config.ACLAddress || it.CIDR != "172.16.1.0/32" {
				t.Errorf("allow item %+v", it)
			}
		},
	},
	// tgt keywords pasted into ietd.conf: ignored as by IET (§1.5.4),
	// with a warning that access is not limited; a lower-case keyword
	// still works (keywords are case-insensitive, §1.3).
	"vn-tgt-mix": {
		diags: []string{"unknown keyword initiator-address ignored: a tgt keyword: access is NOT limited by it"},
		check: func(t *testing.T, cfg *config.Config) {
			if tg := cfg.Targets[0]; !slices.Equal(users(tg.Auth.Incoming), []string{"winter"}) {
				t.Errorf("accounts %+v", tg.Auth)
			}
		},
	},
	// Lun and Alias lines appended after the stock all-comment sample,
	// with no Target line: IET ignores them (§1.4) and serves nothing.
	"cn-appended": {
		diags: []string{`Lun 0 outside a Target section is left out`, `Lun 1 outside a Target section is left out`},
		check: func(t *testing.T, cfg *config.Config) {
			if len(cfg.Targets) != 0 {
				t.Errorf("targets %v", cfg.Targets)
			}
		},
	},
	// The three-line setup of a tutorial and a targets.allow limiting
	// the portals to a /24.
	"cn-minimal": {
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if got := wildLuns(tg); !slices.Equal(got, []string{"0:fileio:wt:/dev/wild-xvdb1"}) || tg.Alias != "Test" {
				t.Errorf("LUNs %v alias %q", got, tg.Alias)
			}
			if it := cfg.TargetsAllow.Rules[0]; it.Target != "ALL" || it.Items[0].CIDR != "10.12.13.0/24" {
				t.Errorf("targets.allow %+v", it)
			}
		},
	},
	// A 0.4.5-era host: the positional Lun form must work (§1.7.4),
	// the type defaulting to fileio.
	"old-positional": {
		diags: []string{"old (IET 0.4.5) Lun form accepted; the current form is: Lun 0 Path=/dev/wild-sdb,Type=fileio"},
		check: func(t *testing.T, cfg *config.Config) {
			if got := wildLuns(cfg.Targets[0]); !slices.Equal(got, []string{"0:fileio:wt:/dev/wild-sdb"}) {
				t.Errorf("LUNs %v", got)
			}
			if got := wildLuns(cfg.Targets[1]); !slices.Equal(got, []string{"0:fileio:wt:/srv/wild/old2.img"}) {
				t.Errorf("LUNs %v", got)
			}
			if len(cfg.Targets[0].Auth.Incoming) != 0 {
				t.Errorf("the commented IncomingUser counted")
			}
		},
	},
	// The pre-0.4.1 keyword User: no examined IET reads it (§1.5.4), so
	// no account (the target is open, as under IET 0.4.1+), warned.
	"pre041-user": {
		diags: []string{"unknown keyword User ignored: the pre-0.4.1 name of IncomingUser"},
		check: func(t *testing.T, cfg *config.Config) {
			if len(cfg.Discovery.Incoming) != 0 || len(cfg.Targets[0].Auth.Incoming) != 0 {
				t.Errorf("User lines made accounts")
			}
		},
	},
	// Edited on Windows: CRLF everywhere, tabs; CR is a blank (§1.3), so
	// no value or secret keeps a CR.
	"crlf-windows": {
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if tg.Name != "iqn.2024-01.test.wild:crlf.disk" || tg.Auth.Incoming[0].Secret != "winsecret0001" {
				t.Errorf("name %q secret %q", tg.Name, tg.Auth.Incoming[0].Secret)
			}
			if got := wildLuns(tg); !slices.Equal(got, []string{"0:fileio:wt:/srv/wild/crlf.img"}) {
				t.Errorf("LUNs %q", got)
			}
			if !slices.Equal(tg.Params.HeaderDigest, []string{"CRC32C", "None"}) {
				t.Errorf("HeaderDigest %q", tg.Params.HeaderDigest)
			}
			if it := cfg.InitiatorsAllow.Rules[0].Items[0]; it.CIDR != "192.168.7.0/24" {
				t.Errorf("allow item %+v", it)
			}
		},
	},
	// Keywords and Lun keys in any case work (keywords always, Lun keys
	// from 1.4.20, §1.7.2); values: Type=FileIO was refused by every IET
	// (so here too), IOMode=WB served write-through before 1.4.20 (here
	// too, warned), Yes/No and digests in another case were lines
	// IET skipped (read here as written, warned); 064 is octal; the last
	// line lacks its newline.
	"odd-case": {
		errors: true,
		diags: []string{
			`type "FileIO" must be fileio, blockio or nullio in lower case (IET refuses this LUN too)`,
			`Lun 1 IOMode "WB": IET knew only lower-case wt, wb and ro`,
			`headerdigest value "crc32c": IET took only None and CRC32C in exact case and ignored this line (headerdigest stayed None); read here as CRC32C`,
			`queuedcommands value "064" is octal for 52`,
			`last line has no newline`,
		},
		check: func(t *testing.T, cfg *config.Config) {
			one, two := cfg.Targets[0], cfg.Targets[1]
			if got := wildLuns(one); !slices.Equal(got, []string{"0:fileio:wb:/srv/wild/odd1.img", "1:fileio:ro:/srv/wild/odd1b.img id=odd1b sn=SNODD1B"}) {
				t.Errorf("LUNs %v", got)
			}
			if one.Params.InitialR2T || !one.Params.ImmediateData || one.Wthreads != 16 || one.QueuedCommands != 52 {
				t.Errorf("params %+v Wthreads %d QueuedCommands %d", one.Params, one.Wthreads, one.QueuedCommands)
			}
			if got := wildLuns(two); !slices.Equal(got, []string{"1:fileio:wt:/srv/wild/odd2b.img", "2:fileio:wt:/srv/wild/odd2c.img"}) {
				t.Errorf("LUNs %v", got)
			}
			if two.NOPInterval != 5 {
				t.Errorf("NOPInterval %d", two.NOPInterval)
			}
		},
	},
	// Openfiler's generated stanza (ScsiSN/ScsiId of 16 characters,
	// IOMode=wt) and its legacy allow/deny pair: with initiators.deny
	// present, IET's tcpd-like mode applies (§2.3).
	"openfiler": {
		diags: []string{"initiators.deny is deprecated"},
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if got := wildLuns(tg); !slices.Equal(got, []string{"0:blockio:wt:/dev/wildvg/lun0 id=Ab12Cd-Ef34-Gh56 sn=Ab12Cd-Ef34-Gh56"}) {
				t.Errorf("LUNs %v", got)
			}
			if tg.Params.MaxRecvDataSegmentLength != 131072 || tg.Params.FirstBurstLength != 262144 || tg.Params.ImmediateData {
				t.Errorf("params %+v", tg.Params)
			}
			if cfg.InitiatorsDeny == nil || cfg.InitiatorsDeny.Rules[0].Items[0].Kind != config.ACLAll {
				t.Errorf("deny %+v", cfg.InitiatorsDeny)
			}
		},
	},
	// Tuned for ESXi: a later line wins (IET applied them one by one,
	// §1.6); QueuedCommands 512 is clamped to the nearest bound (IET:
	// to the minimum, a documented difference).
	"vmware-tuned": {
		diags: []string{"QueuedCommands 512 out of range (1..256): using 256"},
		check: func(t *testing.T, cfg *config.Config) {
			tg := cfg.Targets[0]
			if tg.Params.MaxRecvDataSegmentLength != 1048576 || tg.Params.MaxBurstLength != 16776192 || tg.Params.InitialR2T {
				t.Errorf("params %+v", tg.Params)
			}
			if tg.Wthreads != 16 || tg.QueuedCommands != 256 || tg.NOPInterval != 20 || tg.NOPTimeout != 10 {
				t.Errorf("Wthreads %d QueuedCommands %d NOP %d/%d", tg.Wthreads, tg.QueuedCommands, tg.NOPInterval, tg.NOPTimeout)
			}
		},
	},
	// A Target line without a name closes the stanza (§1.4): its Lun and
	// account are not anyone's; a comment after the target name is
	// ignored (only the first word is the name).
	"blank-target": {
		errors: true,
		diags: []string{
			"Target without a name (IET closes the previous target here",
			"IncomingUser in an ignored Target section is ignored (IET would make it a discovery account)",
		},
		check: func(t *testing.T, cfg *config.Config) {
			if len(cfg.Targets) != 2 || cfg.Targets[0].Name != "iqn.2024-01.test.wild:blank.first" || cfg.Targets[1].TID != 2 {
				t.Fatalf("targets %+v", cfg.Targets)
			}
			if got := wildLuns(cfg.Targets[0]); !slices.Equal(got, []string{"0:fileio:wt:/srv/wild/first.img"}) {
				t.Errorf("LUNs %v", got)
			}
			if len(cfg.Discovery.Incoming) != 0 {
				t.Errorf("the orphan account became a discovery account")
			}
		},
	},
	// IET's own initiators.allow examples and the other item forms: a
	// list with blanks after commas, [IPv6] and [v6]/64, [::1], a BRE
	// over initiator names, a literal name, a line indented with a tab,
	// /32 (IET never matched it), host bits, and an ALL line last.
	"acl-forms": {
		diags: []string{
			"127.0.0.1/32: IET never matched a /32 item",
			"192.168.1.5/24 has host bits set: IET never matches it",
		},
		check: func(t *testing.T, cfg *config.Config) {
			var got []string
			for _, r := range cfg.InitiatorsAllow.Rules {
				var items []string
				for _, it := range r.Items {
					items = append(items, fmt.Sprintf("%s=%s", aclKindName[it.Kind], cmpOr(it.CIDR, it.Text)))
				}
				got = append(got, r.Target+" "+strings.Join(items, ","))
			}
			want := []string{
				"iqn.2024-01.test.wild:acl.sys1 address=192.168.22.2/32,address=192.168.3.8/32",
				"iqn.2024-01.test.wild:acl.sys2 address=3ffe:302:11:1:211:43ff:fe31:5ae2/128,address=3ffe:505:2:1::/64,address=::1/128",
				`iqn.2024-01.test.wild:acl.sys3 address=10.0.0.0/8,regex=iqn\.1994-05\.com\.redhat:[0-9a-f]*,regex=iqn.1991-05.com.microsoft:wildhost`,
				"iqn.2024-01.test.wild:acl.sys4 address=127.0.0.1/32,address=192.168.1.0/24",
				"ALL address=192.168.0.0/16",
			}
			if !slices.Equal(got, want) {
				t.Errorf("initiators.allow\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		},
	},
	// What OpenStack Cinder's IetAdm helper appends (§4.5).
	"cinder-generated": {
		check: func(t *testing.T, cfg *config.Config) {
			if len(cfg.Targets) != 2 || cfg.Targets[0].Auth.Incoming[0].Secret != "cindersecret00000001" || len(cfg.Targets[1].Auth.Incoming) != 0 {
				t.Errorf("targets %+v", cfg.Targets)
			}
			if cfg.Targets[1].LUNs[0].Type != "blockio" {
				t.Errorf("LUN %+v", cfg.Targets[1].LUNs[0])
			}
		},
	},
}

var aclKindName = map[config.ACLItemKind]string{config.ACLAll: "all", config.ACLAddress: "address", config.ACLHost: "host", config.ACLRegex: "regex"}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestWildIET loads every file set of testdata/config/wild-iet: the
// diagnostics and the model (rendered) must match the golden files, and
// the facts of wildCases must hold. Every directory needs a case.
func TestWildIET(t *testing.T) {
	t.Chdir(filepath.Join(fixtures, wildDir))
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		name := d.Name()
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			c, ok := wildCases[name]
			if !ok {
				t.Fatalf("no wildCases entry for %s", name)
			}
			cfg, ds, err := Load(filepath.Join(name, "ietd.conf"), LoadOptions{ACLDir: name})
			if cfg == nil {
				t.Fatalf("no model: %v", err)
			}
			if ds.HasErrors() != c.errors || (err != nil) != c.errors {
				t.Fatalf("errors %v (err %v), want %v:\n%s", ds.HasErrors(), err, c.errors, diagText(ds))
			}
			if cfg.Dialect != config.DialectIET {
				t.Fatalf("dialect %s", cfg.Dialect)
			}
			text := diagText(ds)
			for _, want := range c.diags {
				if !strings.Contains(text, want) {
					t.Errorf("no %q in\n%s", want, text)
				}
			}
			if c.check != nil {
				c.check(t, cfg)
			}
			golden(t, filepath.Join(name, "diagnostics.golden"), text)
			var model strings.Builder
			model.WriteString(RenderIET(cfg))
			for _, f := range []*config.ACLFile{cfg.InitiatorsAllow, cfg.InitiatorsDeny, cfg.TargetsAllow} {
				if f != nil {
					model.WriteString("# " + f.Path + "\n" + RenderACL(f))
				}
			}
			golden(t, filepath.Join(name, "model.golden"), model.String())
			// What we render reads back to the same targets.
			if !c.errors {
				back, bds, err := LoadBytes("rendered", []byte(RenderIET(cfg)), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
				if err != nil || len(back.Targets) != len(cfg.Targets) {
					t.Fatalf("rendered model does not load back: %v\n%s", err, diagText(bds))
				}
				for i, tg := range back.Targets {
					if a, b := strings.Join(wildLuns(tg), "|"), strings.Join(wildLuns(cfg.Targets[i]), "|"); a != b {
						t.Errorf("target %s LUNs after render %s, want %s", tg.Name, a, b)
					}
				}
			}
		})
	}
	for name := range wildCases {
		if !seen[name] {
			t.Errorf("wildCases has %s but %s/%s does not exist", name, wildDir, name)
		}
	}
}
