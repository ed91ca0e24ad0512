package compat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

func TestUserConfigs(t *testing.T) {
	ietSrc := "#IncomingUser nwsmith secretsecret\nLun 0 /dev/sdb fileio\nAlias iscsitest01\n"
	cfg, ds, err := LoadBytes("ietd.conf", []byte(ietSrc), LoadOptions{ACLDir: t.TempDir()})
	// IET ignores the Lun and Alias lines silently and starts with no
	// target: a warning each, and the file loads (a reload takes it).
	if err != nil || cfg == nil || len(cfg.Targets) != 0 || len(cfg.Discovery.Incoming) != 0 {
		t.Fatalf("IET user config: err=%v cfg=%+v", err, cfg)
	}
	if ds[0].Severity != config.Warning || ds[0].Pos.String() != "ietd.conf:2:1" || !strings.Contains(ds[0].Msg, "outside a Target") ||
		!strings.Contains(ds[0].Msg, `add a "Target iqn.`) {
		t.Fatalf("first diagnostic %q", ds[0])
	}

	nbSrc := "extent0 /tmp/iscsi-target0 0 100MB\n\ntarget0 rw extent0\n"
	cfg, ds, err = LoadBytes("targets", []byte(nbSrc), LoadOptions{AuthsPath: "/nonexistent/auths-for-test"})
	if err == nil {
		t.Fatal("missing explicit auths file not reported")
	}
	cfg, ds, err = LoadBytes("targets", []byte(nbSrc), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: t.TempDir() + "/none"})
	_ = err
	cfg, ds, err = Load(writeTemp(t, "targets", nbSrc), LoadOptions{AuthsPath: writeTemp(t, "auths", "# none\n")})
	if err != nil || cfg.Dialect != config.DialectNetBSD || len(cfg.Targets) != 1 {
		t.Fatalf("NetBSD user config: %v %v", err, ds)
	}
	tg := cfg.Targets[0]
	l := tg.LUN(0)
	if tg.Name != "iqn.1994-04.org.netbsd.iscsi-target:target0" || tg.TID != 1 || tg.NetBSDIndex != 0 || l == nil ||
		l.ReadOnly() || l.Store.Path != "/tmp/iscsi-target0" || l.Store.Offset != 0 || l.Store.Size != 100<<20 || !l.Store.Create || len(tg.AllowedNets) != 0 {
		t.Fatalf("target %+v lun %+v store %+v", tg, l, l.Store)
	}
	if len(ds) != 1 || ds[0].Severity != config.Warning || ds[0].Pos.Line != 3 {
		t.Fatalf("diags %v", ds)
	}
}

func writeTemp(t *testing.T, name, text string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := osWriteFile(p, text); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTIDsAndNames(t *testing.T) {
	src := "Target iqn.a:1\nLun 0 Path=/a\nTarget iqn.A:1\nTarget iqn.a:2\nLun 0 Type=nullio\n"
	cfg, _, _ := LoadBytes("c", []byte(src), LoadOptions{ACLDir: t.TempDir()})
	if len(cfg.Targets) != 2 || cfg.Targets[0].TID != 1 || cfg.Targets[1].TID != 2 || cfg.Targets[1].Name != "iqn.a:2" {
		t.Fatalf("%+v", cfg.Targets)
	}
	if l := cfg.Targets[1].LUNs[0]; l.Store != nil || l.Blocks != config.DefaultNullioBlocks {
		t.Fatalf("nullio %+v", l)
	}
}

func TestDetectDialect(t *testing.T) {
	cases := map[string]config.Dialect{
		"Target iqn.x\n":                       config.DialectIET,
		"target iqn.x\n  lun 0 Path=/a\n":      config.DialectIET,
		"# c\nextent0 /a 0 1M\n":               config.DialectNetBSD,
		"target0 rw extent0 0/0\n":             config.DialectNetBSD,
		"IncomingUser a b\ntarget0 x y z\n":    config.DialectIET,
		"\n":                                   config.DialectIET,
		"device0 RAID0 extent0 extent1\n":      config.DialectNetBSD,
		"lun0 extent0 any\n":                   config.DialectNetBSD,
		"Lun 0 /dev/sdb fileio\nAlias x\n":     config.DialectIET,
		"#IncomingUser nwsmith secretsecret\n": config.DialectIET,
	}
	for src, want := range cases {
		if got := DetectDialect("x", []byte(src)); got != want {
			t.Errorf("%q: %s, want %s", src, got, want)
		}
	}
	if got := DetectDialect("/etc/iscsi/targets", nil); got != config.DialectNetBSD {
		t.Errorf("empty targets file: %s", got)
	}
}

func TestParseNetmask(t *testing.T) {
	cases := map[string]string{
		"any": "0.0.0.0/0", "all": "0.0.0.0/0", "none": "0.0.0.0/32", "0/0": "0.0.0.0/0",
		"10.4/16": "10.4.0.0/16", "10": "10.0.0.0/32", "10.4.3/8": "10.0.0.0/8",
		"192.168.1.7": "192.168.1.7/32", "garbage/0": "0.0.0.0/0", "2001:db8::/32": "2001:db8::/32",
		// inet_aton parts: octal and hexadecimal.
		"192.168.010.0/24": "192.168.8.0/24", "0x0a/8": "10.0.0.0/8", "010.0.0.1": "8.0.0.1/32",
		// The prefix length is read with atoi(3), as NetBSD read it.
		"127.0.0.0/8x": "127.0.0.0/8", "0/0\\": "0.0.0.0/0", "10.4/16 ": "10.4.0.0/16",
	}
	for in, want := range cases {
		nm, err := ParseNetmask(in)
		if err != nil || nm.CIDR != want || nm.Text != in {
			t.Errorf("%s: %+v %v, want %s", in, nm, err, want)
		}
	}
	for _, bad := range []string{"10.4/33", "1.2.3.4.5", "x.y", "10/-1", "256.0.0.0", "09.0.0.0", "10..1", "10.4/40x"} {
		if _, err := ParseNetmask(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	// What other tools take and NetBSD could not: the message says what
	// to write instead.
	for in, want := range map[string]string{
		"nas.example.com":           "a host name",
		"localhost":                 "a host name",
		"localhost/24":              "a host name",
		"192.0.2.0/255.255.255.0":   "write 192.0.2.0/24",
		"10.0.0.0/255.0.0.0":        "write 10.0.0.0/8",
		"192.0.2.0/255.255.255.255": "write 192.0.2.0/32",
	} {
		if _, err := ParseNetmask(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	// A prefix length of 0 still allows all, whatever is around it (as
	// NetBSD: the address is not even read).
	for _, in := range []string{"localhost/0", "10.0.0.0/0.0.0.0"} {
		if nm, err := ParseNetmask(in); err != nil || nm.CIDR != "0.0.0.0/0" {
			t.Errorf("%s: %+v %v", in, nm, err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	cases := map[string]int64{"0": 0, "512": 512, "1K": 1024, "100M": 100 << 20, "2GiB": 2 << 30, "1TB": 1 << 40}
	for in, want := range cases {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "1Q", "99999999999999999999", "9999999999T"} {
		if _, err := parseBytes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzLoadIET(f *testing.F) {
	for _, s := range []string{
		"Target iqn.a\n Lun 0 Path=/a,Type=fileio\n MaxBurstLength 0x100\n",
		"#IncomingUser nwsmith secretsecret\nLun 0 /dev/sdb fileio\nAlias iscsitest01\n",
		"Target t\nLun 1 Store=raid1(/a@1+2;raid0(/b;/c)),Create=Yes\nHeaderDigest CRC32C,None\n",
		"Target t\nLun 2 Path=/a,Identity=netbsd,Vendor=ACME,Product=Disk,Revision=1,ScsiVersion=6,Removable=Yes,Offset=1M,Size=2M\n",
		"Target t\nLun 0 Path=/a,NAA=Yes\nLun 1 Path=/b,Identity=netbsd,NAA=no\n",
		// testdata/config/wild-iet/odd-case: values in another case, octal
		"iSNSServer [2001:db8::1]:3206\niSNSAccessControl Yes\nTarget t\n",
		"iSNSServer []\niSNSServer [::1]\niSNSServer h:0\n",
		"target t\r\n\tLUN 1 PATH=/b,IOMODE=WB\r\n\tLun 2 Path=/c,IOMode=rw\n\tinitialr2t no\n\theaderdigest crc32c\n\tqueuedcommands 064\n\tNOPInterval 5",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, ds, err := LoadBytes("fuzz", b, LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
		if (err != nil) != ds.HasErrors() {
			t.Fatalf("err %v vs diags %v", err, ds)
		}
		// A start never refuses an IET file it could read.
		if _, _, err := LoadBytesForStart("fuzz", b, LoadOptions{Dialect: config.DialectIET, ACLDir: dir}); err != nil {
			t.Fatalf("start refused: %v", err)
		}
		// Whatever loaded must render into a config that loads cleanly.
		text := RenderIET(cfg)
		if _, ds2, err := LoadBytes("r", []byte(text), LoadOptions{Dialect: config.DialectIET, ACLDir: dir}); err != nil {
			t.Fatalf("render does not reload: %v\n%s\n%v", err, text, ds2)
		}
	})
}

func FuzzLoadNetBSD(f *testing.F) {
	for _, s := range []string{
		"extent0 /tmp/iscsi-target0 0 100MB\n\ntarget0 rw extent0\n",
		"extent0 /a 0 1M\nextent1 /b 0 1M\ndevice0 RAID1 extent0 extent1\ntarget0=iqn.x ro device0 10.4/16\n",
		"extent0 /a 1M 1.5GB\r\nlun0 extent0 any\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, ds, err := LoadBytes("fuzz", b, LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: "/dev/null"})
		if (err != nil) != ds.HasErrors() {
			t.Fatalf("err %v vs diags %v", err, ds)
		}
		// A start refuses only a file that leaves no target.
		if _, _, err := LoadBytesForStart("fuzz", b, LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: "/dev/null"}); (err != nil) != (len(cfg.Targets) == 0) {
			t.Fatalf("start: %v with %d target(s)", err, len(cfg.Targets))
		}
		// The migration reads back as the same targets, or says to
		// edit it by hand.
		if _, err := migrationRoundTrip(cfg, t.TempDir()); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseACL(f *testing.F) {
	for _, s := range []string{"ALL ALL\n", "t 10.0.0.0/8, [::1]/64, iqn\\..*, host.example\n", "x [\n", "ALL 10.1.2.3/32, 0.0.0.0/0, [::1]/128\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ds config.Diagnostics
		af := ParseACL("fuzz", b, true, &ds)
		for _, r := range af.Rules {
			for _, it := range r.Items {
				if it.Kind == config.ACLAddress && it.CIDR == "" {
					t.Fatal("address without CIDR")
				}
			}
		}
	})
}

func osWriteFile(p, text string) error { return os.WriteFile(p, []byte(text), 0o600) }

func TestHashSecrets(t *testing.T) {
	// An auths secret starting with '#' is migrated: only a line's first
	// word starts a comment in ietd.conf.
	dir := t.TempDir()
	targets := writeTemp(t, "targets", "extent0 "+dir+"/a 0 1M\ntarget0 rw extent0 0/0\n")
	auths := writeTemp(t, "auths", "joe:chap:#secret1234567\nbob:chap:with blanks 1234\n")
	cfg, ds, err := Load(targets, LoadOptions{AuthsPath: auths})
	if err != nil {
		t.Fatalf("%v %v", err, ds)
	}
	conf, _, notes := MigrateNetBSD(cfg)
	if !strings.Contains(conf, "\tIncomingUser joe #secret1234567\n") ||
		!strings.Contains(conf, "\t# IncomingUser \"bob\" omitted: the secret holds blanks, which ietd.conf cannot hold\n") {
		t.Fatalf("migrated:\n%s", conf)
	}
	if n := strings.Join(notes, "\n"); !strings.Contains(n, `CHAP user "bob" cannot be migrated: the secret holds blanks`) || strings.Contains(n, `"joe"`) {
		t.Fatalf("notes:\n%s", n)
	}
	back, ds, err := LoadBytes("m", []byte(conf), LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
	if err != nil || len(back.Targets) != 1 || len(back.Targets[0].Auth.Incoming) != 1 || back.Targets[0].Auth.Incoming[0].Secret != "#secret1234567" {
		t.Fatalf("migrated config: %v %v", err, ds)
	}
}

// loadIET loads an ietd.conf text with no access-control files.
func loadIET(t *testing.T, src string) (*config.Config, config.Diagnostics) {
	t.Helper()
	cfg, ds, _ := LoadBytes("c", []byte(src), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
	return cfg, ds
}

func diagStrings(ds config.Diagnostics) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func TestISNS(t *testing.T) {
	cases := []struct {
		src   string
		want  *config.ISNS // positions ignored
		diags []string
	}{
		{"iSNSAccessControl No\n", nil, nil},
		{"iSNSAccessControl Yes\niSNSAccessControl No\n", nil, nil},
		{"iSNSAccessControl yes\n", &config.ISNS{AccessControl: true}, []string{
			"c:1:1: warning: iSNSAccessControl Yes without iSNSServer does nothing (as in IET): logins and discovery are not filtered"}},
		{"iSNSServer isns.example\niSNSAccessControl No\n", &config.ISNS{Server: "isns.example"}, nil},
		{"iSNSServer isns.example\niSNSAccessControl Yes\n", &config.ISNS{Server: "isns.example", AccessControl: true}, nil},
		{"iSNSServer 192.0.2.1:3206\n", &config.ISNS{Server: "192.0.2.1", Port: 3206}, []string{
			"c:1:12: warning: iSNSServer host:port is our extension (IET always uses port 3205)"}},
		{"iSNSServer 2001:db8::1\n", &config.ISNS{Server: "2001:db8::1"}, nil},
		{"iSNSServer [2001:db8::1]\n", &config.ISNS{Server: "2001:db8::1"}, nil},
		{"iSNSServer [2001:db8::1]:3206\n", &config.ISNS{Server: "2001:db8::1", Port: 3206}, []string{
			"c:1:12: warning: iSNSServer host:port is our extension (IET always uses port 3205)"}},
	}
	for _, c := range cases {
		cfg, ds := loadIET(t, c.src)
		got := cfg.ISNS
		if got != nil {
			g := *got
			g.Pos = config.Position{}
			got = &g
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: ISNS %+v, want %+v", c.src, got, c.want)
		}
		if d := diagStrings(ds); !reflect.DeepEqual(d, c.diags) {
			t.Errorf("%q: diagnostics %q, want %q", c.src, d, c.diags)
		}
		// The rendered text gives the same model.
		back, _ := loadIET(t, RenderIET(cfg))
		if !reflect.DeepEqual(comparable(back), comparable(cfg)) {
			t.Errorf("%q: round trip changed the model: %q", c.src, RenderIET(cfg))
		}
	}
}

func TestForcedParams(t *testing.T) {
	// The engine negotiates only ERL 0, in-order data and no markers, as
	// IET's kernel forced them: the model holds what is offered.
	cases := []struct {
		line  string
		check func(config.Params) bool
		diag  string
	}{
		{"ErrorRecoveryLevel 2", func(p config.Params) bool { return p.ErrorRecoveryLevel == 0 },
			"c:3:21: warning: ErrorRecoveryLevel 2: only level 0 is implemented; 0 is offered (IET forced 0 too)"},
		{"ErrorRecoveryLevel 0", func(p config.Params) bool { return p.ErrorRecoveryLevel == 0 }, ""},
		{"DataPDUInOrder No", func(p config.Params) bool { return p.DataPDUInOrder },
			"c:3:17: warning: DataPDUInOrder No: out-of-order Data PDUs are not implemented; Yes is offered (IET forced it too)"},
		{"DataSequenceInOrder No", func(p config.Params) bool { return p.DataSequenceInOrder },
			"c:3:22: warning: DataSequenceInOrder No: out-of-order data sequences are not implemented; Yes is offered (IET forced it too)"},
		{"OFMarker Yes", func(p config.Params) bool { return !p.OFMarker },
			"c:3:11: warning: OFMarker Yes: markers are not implemented; No is offered (IET forced it too)"},
		{"IFMarker Yes", func(p config.Params) bool { return !p.IFMarker },
			"c:3:11: warning: IFMarker Yes: markers are not implemented; No is offered (IET forced it too)"},
		{"IFMarker No", func(p config.Params) bool { return !p.IFMarker }, ""},
	}
	for _, c := range cases {
		cfg, ds := loadIET(t, "Target iqn.x\n\tLun 0 Type=nullio\n\t"+c.line+"\n")
		if len(cfg.Targets) != 1 || !c.check(cfg.Targets[0].Params) {
			t.Errorf("%s: params %+v", c.line, cfg.Targets[0].Params)
		}
		want := []string(nil)
		if c.diag != "" {
			want = []string{c.diag}
		}
		if d := diagStrings(ds); !reflect.DeepEqual(d, want) {
			t.Errorf("%s: diagnostics %q, want %q", c.line, d, want)
		}
	}
}

// A problem of a whole file has no line:col (1:1 pointed at a comment)
// and comes after the line errors that cause it.
func TestWholeFileDiagnostics(t *testing.T) {
	_, ds, _ := LoadBytes("targets", []byte("# nothing\n"), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if d := diagStrings(ds); len(d) != 1 || d[0] != "targets: error: no targets defined (NetBSD's iscsi-target refuses to start)" {
		t.Fatalf("%q", d)
	}
	// NetBSD's targets v1.1.1.1 (February 2006): a port column.
	src := "# extents\nextent0\t/tmp/iscsi-target0\t0\t100MB\n\n# targets\ntarget0\textent0\t\t3260\t10.4.0.0/16\n"
	_, ds, err := LoadBytesForStart("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	want := []string{
		"targets:5:1: error: target target0 is left out (the errors on its line)",
		`targets:5:18: error: no device or extent found for "3260": the February 2006 format "NAME STORAGE PORT NETMASK" had a port column, which must go (the port is iscsi-target's -p): write "target0 rw extent0 10.4.0.0/16" (or ro)`,
		"targets: error: no target left to serve: every target line has errors (NetBSD's iscsi-target refuses to start too)",
	}
	var none *NothingToServeError
	if d := diagStrings(ds); !reflect.DeepEqual(d, want) || !errors.As(err, &none) {
		t.Fatalf("%q, %v\nwant %q", d, err, want)
	}
	// A number for the storage alone is no 2006 line: no hint.
	_, ds, _ = LoadBytes("targets", []byte("extent0 /a 0 1M\ntarget0 rw 3260 0/0\n"), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if d := diagStrings(ds); len(d) != 3 || d[1] != `targets:2:12: error: no device or extent found for "3260"` {
		t.Fatalf("%q", d)
	}
	dir := t.TempDir()
	writeTemp := func(name, text string) {
		if err := os.WriteFile(dir+"/"+name, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeTemp(InitiatorsDeny, "# legacy\n\nALL 10.0.0.0/8\n")
	_, ds, _ = LoadBytes("c", nil, LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
	if d := diagStrings(ds); len(d) != 1 || d[0] != dir+"/initiators.deny:3:1: warning: initiators.deny is deprecated (legacy allow/deny mode: initiators not matched by the deny file are allowed)" {
		t.Fatalf("%q", d)
	}
	writeTemp(InitiatorsDeny, "# only comments\n")
	_, ds, _ = LoadBytes("c", nil, LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
	if d := diagStrings(ds); len(d) != 1 || !strings.HasPrefix(d[0], dir+"/initiators.deny:1:1: warning: initiators.deny is deprecated") {
		t.Fatalf("%q", d)
	}
}

func TestNetBSDLengths(t *testing.T) {
	// NetBSD reads the digits, then looks at the first letter only (k, m,
	// g, t); what it read as a useless or wrapped size is an error here.
	cases := []struct {
		offset, length string
		size           int64  // 0: the extent is refused
		diag           string // the diagnostic on the extent line ("" = none)
	}{
		{"0", "100MB", 100 << 20, ""},
		{"0", "100mib", 100 << 20, ""},
		{"0", "100M", 100 << 20, ""},
		{"0", "2t", 2 << 40, ""},
		{"0", "512B", 512, ""},
		{"0", "4096", 4096, ""},
		{"0", "100Mxyz", 100 << 20, `t:1:14: warning: extent extent0: length "100Mxyz": only the first letter of the unit counts (as NetBSD)`},
		{"0", "1.5GB", 3 << 29, `t:1:14: warning: extent extent0: length "1.5GB": NetBSD reads 1 byte(s); read here as 1610612736 bytes`},
		{"0", "0.5k", 512, `t:1:14: warning: extent extent0: length "0.5k": NetBSD reads 0 byte(s); read here as 512 bytes`},
		{"0", "8388607T", 8388607 << 40, ""},
		{"0", "1P", 0, `t:1:14: error: extent extent0: length "1P": unknown unit "P" (NetBSD would read 1 bytes); use k, m, g or t (binary multiples)`},
		{"0", "100x", 0, `t:1:14: error: extent extent0: length "100x": unknown unit "x" (NetBSD would read 100 bytes); use k, m, g or t (binary multiples)`},
		{"0", "1.5", 0, `t:1:14: error: extent extent0: length "1.5" has a fraction but no unit (NetBSD would read 1 bytes)`},
		{"0", "99999999999T", 0, `t:1:14: error: extent extent0: length "99999999999T" is too large (at most 9223372036854775807 bytes)`},
		{"0", "16777216T", 0, `t:1:14: error: extent extent0: length "16777216T" is too large (at most 9223372036854775807 bytes)`},
		{"0", "8388608T", 0, `t:1:14: error: extent extent0: length "8388608T" is too large (at most 9223372036854775807 bytes)`},
		{"0", "99999999999999999999", 0, `t:1:14: error: extent extent0: length "99999999999999999999" is too large (at most 9223372036854775807 bytes)`},
		{"0", "99999999999999.5T", 0, `t:1:14: error: extent extent0: length "99999999999999.5T" is too large (at most 9223372036854775807 bytes)`},
		{"0", "0", 0, `t:1:14: error: extent extent0 has length 0`},
		{"0", "-5", 0, `t:1:14: error: extent extent0: length "-5" is not a number or "size"`},
		{"1M", "1M", 1 << 20, `t:1:12: warning: extent extent0: offset "1M" is read as 1 byte(s) (NetBSD takes no unit on offsets)`},
		{"99999999999999999999", "1M", 0, `t:1:12: error: extent extent0: offset "99999999999999999999" is too large (at most 9223372036854775807 bytes)`},
		{"9223372036854775807", "1", 0, `t:1:32: error: extent extent0: offset 9223372036854775807 + length 1 is beyond the largest file size (9223372036854775807 bytes)`},
	}
	for _, c := range cases {
		src := "extent0 /a " + c.offset + " " + c.length + "\ntarget0 rw extent0 0/0\n"
		cfg, ds, _ := LoadBytes("t", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
		var got []string
		for _, d := range ds {
			if d.Pos.Line == 1 && !strings.Contains(d.Msg, "no targets defined") {
				got = append(got, d.String())
			}
		}
		want := []string(nil)
		if c.diag != "" {
			want = []string{c.diag}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s: diagnostics %q, want %q", c.offset, c.length, got, want)
		}
		switch {
		case c.size == 0 && len(cfg.Targets) != 0:
			t.Errorf("%s %s: extent accepted (%+v)", c.offset, c.length, cfg.Targets[0].LUNs[0].Store)
		case c.size != 0 && (len(cfg.Targets) != 1 || cfg.Targets[0].LUNs[0].Store.Size != c.size):
			t.Errorf("%s %s: targets %+v, want size %d", c.offset, c.length, cfg.Targets, c.size)
		}
	}
	// A unit in its own field: NetBSD reads bytes; the unit is honoured here.
	_, ds, _ := LoadBytes("t", []byte("extent0 /a 0 10 MB\ntarget0 rw extent0 0/0\n"), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if d := diagStrings(ds); len(d) != 1 || d[0] != `t:1:17: warning: extent extent0: unit "MB" separated from the length: NetBSD reads 10 bytes; read here as 10485760 bytes` {
		t.Errorf("separate unit: %q", d)
	}
}

func TestACLItemsWithBlanksAndComments(t *testing.T) {
	cases := []struct {
		line  string
		items []string // kind:text of each item kept
		diags []string
	}{
		// IET reads an address only up to the blank (getaddrinfo of the
		// first word, strtoul of the prefix), so a trailing comment is
		// harmless there: the same here, with a warning.
		{"ALL 10.0.0.0/8 # lan\n", []string{"addr:10.0.0.0/8"}, []string{
			`a:1:16: warning: "# lan" after the address 10.0.0.0/8 is ignored, as IET does (IET has no comments after a line's first word, but reads an address only up to the blank); put comments on their own line`}},
		{"ALL [fe80::1] #v6\n", []string{"addr:[fe80::1]"}, []string{
			`a:1:15: warning: "#v6" after the address [fe80::1] is ignored, as IET does (IET has no comments after a line's first word, but reads an address only up to the blank); put comments on their own line`}},
		{"ALL 10.0.0.1 10.0.0.2\n", []string{"addr:10.0.0.1"}, []string{
			`a:1:14: warning: "10.0.0.2" after the address 10.0.0.1 is ignored, as IET does (it reads an address only up to the blank): separate items with commas`}},
		// Anything else with a blank is one regular expression that no
		// initiator name matches (IET: the same).
		{"ALL iqn.a:x iqn.b:y\n", []string{`re:iqn.a:x iqn.b:y`}, []string{
			`a:1:5: warning: item "iqn.a:x iqn.b:y" holds blanks: it is read as one initiator-name regular expression, which no initiator name matches (as IET); separate items with commas, and put comments on their own line`}},
		{"ALL iqn\\.1993-08\\.org\\.debian:.* # debian boxes, 10.1.0.0/16\n", []string{`re:iqn\.1993-08\.org\.debian:.* # debian boxes`, "addr:10.1.0.0/16"}, []string{
			`a:1:5: warning: item "iqn\\.1993-08\\.org\\.debian:.* # debian boxes" holds blanks: it is read as one initiator-name regular expression, which no initiator name matches (as IET); separate items with commas, and put comments on their own line`,
			`a:1:50: warning: item "10.1.0.0/16" follows a '#' on this line: it is an item all the same (IET has no comments after a line's first word)`}},
		{"ALL ALL # everyone\n", []string{"re:ALL # everyone"}, []string{
			`a:1:5: warning: item "ALL # everyone" holds blanks: it is read as one initiator-name regular expression, which no initiator name matches (as IET); separate items with commas, and put comments on their own line`}},
		{"ALL iqn.a:x#y\n", []string{"re:iqn.a:x#y"}, []string{
			`a:1:5: warning: item "iqn.a:x#y" holds a '#', which no initiator name has: it never matches (as IET; '#' starts a comment only as a line's first word)`}},
		// A regular expression must look like one, or like a name.
		{"ALL iqn.2001-04.com.example:host1, eui.0123456789abcdef, ^iqn\\..*, .*:backup\n", []string{
			"re:iqn.2001-04.com.example:host1", "re:eui.0123456789abcdef", `re:^iqn\..*`, "re:.*:backup"}, nil},
		{"ALL host_1\n", []string{"re:host_1"}, []string{
			`a:1:5: warning: item "host_1" is neither an address, a host name, nor an initiator name or pattern ('_' cannot occur in an initiator name): read as an initiator-name regular expression`}},
		// x.y.z.0 without a prefix is one address (IET too): say so.
		{"ALL 172.16.1.0, 10.0.0.0/8\n", []string{"addr:172.16.1.0", "addr:10.0.0.0/8"}, []string{
			`a:1:5: warning: 172.16.1.0 without a prefix length matches that one address only (as IET); for the network write e.g. 172.16.1.0/24`}},
		// 0.0.0.0 alone matches no initiator, which is what it is written
		// for (ietd-migrate's NetBSD "none"): no hint of a network.
		{"iqn.a:t 0.0.0.0\n", []string{"addr:0.0.0.0"}, nil},
		{"ALL initiator:one\n", []string{"re:initiator:one"}, []string{
			`a:1:5: warning: item "initiator:one" is neither an address, a host name, nor an initiator name (iqn., eui., naa.) or a regular expression: read as an initiator-name regular expression`}},
	}
	kinds := map[config.ACLItemKind]string{config.ACLAll: "all", config.ACLAddress: "addr", config.ACLHost: "host", config.ACLRegex: "re"}
	for _, c := range cases {
		var ds config.Diagnostics
		f := ParseACL("a", []byte(c.line), true, &ds)
		var items []string
		for _, r := range f.Rules {
			for _, it := range r.Items {
				items = append(items, kinds[it.Kind]+":"+it.Text)
			}
		}
		if !reflect.DeepEqual(items, c.items) {
			t.Errorf("%q: items %q, want %q", c.line, items, c.items)
		}
		if d := diagStrings(ds); !reflect.DeepEqual(d, c.diags) {
			t.Errorf("%q: diagnostics\n%q, want\n%q", c.line, d, c.diags)
		}
		// What is kept renders into a file that reads the same.
		var ds2 config.Diagnostics
		back := ParseACL("a", []byte(RenderACL(f)), true, &ds2)
		if !reflect.DeepEqual(comparableACL(back), comparableACL(f)) {
			t.Errorf("%q: render %q reads differently", c.line, RenderACL(f))
		}
	}
	// targets.allow: the address before a comment counts there too.
	var ds config.Diagnostics
	f := ParseACL("t", []byte("ALL 127.0.0.1 # loopback\n"), false, &ds)
	if len(f.Rules) != 1 || len(f.Rules[0].Items) != 1 || f.Rules[0].Items[0].CIDR != "127.0.0.1/32" || len(ds) != 1 || ds[0].Severity != config.Warning {
		t.Errorf("targets.allow: %+v %v", f.Rules, ds)
	}
}

func comparableACL(f *config.ACLFile) []string {
	var out []string
	for _, r := range f.Rules {
		for _, it := range r.Items {
			out = append(out, fmt.Sprintf("%s %d %s %s", r.Target, it.Kind, it.Text, it.CIDR))
		}
	}
	return out
}

func TestStartServesWhatIsValid(t *testing.T) {
	long := strings.Repeat("x", 256)
	src := "IncomingUser disc secretsecret12\n" +
		"Target iqn.a:good\n\tLun 0 Type=nullio\n" +
		"Target iqn.a:half\n\tLun 0 Type=nullio\n\tLun 1 Path=/x,Colour=blue\n\tLun 2 Path=/y,Type=FileIO\n\tLun 3 Type=nullio\n\tMaxBurstLength lots\n" +
		"Target iqn.A:GOOD\n\tIncomingUser dupuser secretsecret12\n\tLun 0 Type=nullio\n" + // duplicate: left out with its account
		"Target iqn.a:nosecret\n\tIncomingUser jim\n\tLun 0 Type=nullio\n" + // would be open without jim
		"Target " + long + "\n\tIncomingUser longuser secretsecret12\n" +
		"Target iqn.a:last\n\tLun 0 Type=nullio\n"
	cfg, ds, err := LoadBytesForStart("c", []byte(src), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start refused: %v", err)
	}
	var names []string
	for _, tg := range cfg.Targets {
		var luns []string
		for _, l := range tg.LUNs {
			luns = append(luns, fmt.Sprint(l.Number))
		}
		names = append(names, fmt.Sprintf("%d:%s[%s]", tg.TID, tg.Name, strings.Join(luns, ",")))
	}
	if got, want := strings.Join(names, " "), "1:iqn.a:good[0] 2:iqn.a:half[0,3] 4:iqn.a:last[0]"; got != want {
		t.Fatalf("served %s, want %s\n%v", got, want, ds)
	}
	if half := cfg.Targets[1]; half.Params.MaxBurstLength != config.DefaultParams().MaxBurstLength {
		t.Errorf("bad MaxBurstLength line changed the value: %d", half.Params.MaxBurstLength)
	}
	// IET's bug: the accounts of a failed stanza became discovery accounts.
	if len(cfg.Discovery.Incoming) != 1 || cfg.Discovery.Incoming[0].User != "disc" {
		t.Errorf("discovery accounts %+v", cfg.Discovery.Incoming)
	}
	for _, want := range []string{
		"c:6:2: error: Lun 1 of target iqn.a:half is left out (the errors on its line)",
		"c:7:2: error: Lun 2 of target iqn.a:half is left out (the errors on its line)",
		"c:10:8: error: duplicated target iqn.A:GOOD (first defined at c:2:1; names are compared case-insensitively); this Target section is left out",
		"c:11:2: error: IncomingUser in an ignored Target section is ignored (IET would make it a discovery account)",
		"c:13:1: error: target iqn.a:nosecret is left out: its IncomingUser line at c:14:2 has errors, and without that account the target would let in every initiator",
		"c:16:8: error: target name longer than 255 bytes; this Target section is left out",
	} {
		found := false
		for _, d := range ds {
			found = found || d.String() == want
		}
		if !found {
			t.Errorf("no diagnostic %q in\n%s", want, diagText(ds))
		}
	}
	// The strict reading (--check, SIGHUP) refuses the same file.
	if _, _, err := LoadBytes("c", []byte(src), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()}); err == nil {
		t.Fatal("strict load accepted a file with errors")
	}

	// NetBSD: a bad target line drops that target; none left refuses.
	nb := "extent0 /a 0 1M\ntarget0 rw extent0 0/0\ntarget1 rw extent9 0/0\ntarget2 rw extent0 10.0.0.0/40\n"
	cfg, ds, err = LoadBytesForStart("t", []byte(nb), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if err != nil || len(cfg.Targets) != 1 || cfg.Targets[0].Name != DefaultNetBSDBase+":target0" || !ds.HasErrors() {
		t.Fatalf("NetBSD start: %v %+v\n%v", err, cfg.Targets, ds)
	}
	_, _, err = LoadBytesForStart("t", []byte("extent0 /a 0 1P\ntarget0 rw extent0 0/0\n"), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if err == nil || !strings.Contains(err.Error(), "no target left to serve") {
		t.Fatalf("NetBSD without a valid target: %v", err)
	}
	// IET with no valid target comes up empty, as IET ("configure through ietadm").
	cfg, _, err = LoadBytesForStart("c", []byte("Lun 0 Type=nullio\n"), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
	if err != nil || len(cfg.Targets) != 0 {
		t.Fatalf("IET without a target: %v", err)
	}
}

// TestNetBSDRelativeExtents: with BaseDir, relative extent paths (a plain
// extent and a RAID member) are resolved against it, absolute ones kept;
// without it they stay as written and the migration says ietd would open
// them from /.
func TestNetBSDRelativeExtents(t *testing.T) {
	src := "extent0 a.img 0 1MB\nextent1 /abs/b.img 0 1MB\nextent2 sub/c.img 0 1MB\nextent3 d.img 0 1MB\ndevice0 RAID1 extent2 extent3\ntarget0 rw extent0 0/0\ntarget1 rw extent1 0/0\ntarget2 rw device0 0/0\n"
	cfg, ds, err := LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull, BaseDir: "/start/dir"})
	if err != nil {
		t.Fatalf("%v %v", err, ds)
	}
	var paths []string
	var walk func(*config.Store)
	walk = func(s *config.Store) {
		if s.Kind == config.StoreFile {
			paths = append(paths, s.Path)
		}
		for _, m := range s.Members {
			walk(m)
		}
	}
	for _, tg := range cfg.Targets {
		for _, l := range tg.LUNs {
			walk(l.Store)
		}
	}
	if got, want := strings.Join(paths, " "), "/start/dir/a.img /abs/b.img /start/dir/sub/c.img /start/dir/d.img"; got != want {
		t.Fatalf("paths %q, want %q", got, want)
	}
	cfg, ds, err = LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if err != nil {
		t.Fatalf("%v %v", err, ds)
	}
	_, _, notes := MigrateNetBSD(cfg)
	n := strings.Join(notes, "\n")
	for _, p := range []string{`"a.img" is relative`, `"sub/c.img" is relative`, `"d.img" is relative`} {
		if !strings.Contains(n, p) {
			t.Errorf("no note %q in:\n%s", p, n)
		}
	}
	if strings.Contains(n, `"/abs/b.img" is relative`) {
		t.Errorf("absolute path noted as relative:\n%s", n)
	}
}

// "HeaderDigest CRC32C" is kept as written (ietadm --op show prints it back
// as IET did) and allows digests without refusing initiators that offer
// only None (IET: CRC32C when both sides allow it, else None; the login
// transcript digest_crc32c_only.txt).
func TestDigestCRC32CKeepsNone(t *testing.T) {
	cfg, ds := loadIET(t, "Target iqn.2026-01.org.x:t\n\tHeaderDigest CRC32C\n\tDataDigest None,CRC32C\n")
	if ds.HasErrors() || len(cfg.Targets) != 1 {
		t.Fatalf("%v", diagStrings(ds))
	}
	p := cfg.Targets[0].Params
	if strings.Join(p.HeaderDigest, ",") != "CRC32C" || strings.Join(p.DataDigest, ",") != "None,CRC32C" {
		t.Fatalf("HeaderDigest %v DataDigest %v: want them as written", p.HeaderDigest, p.DataDigest)
	}
	if o := config.DigestOffer(p.HeaderDigest); strings.Join(o, ",") != "CRC32C,None" {
		t.Fatalf("HeaderDigest CRC32C offers %v, want CRC32C,None", o)
	}
}

// An IncomingUser line with errors next to a good one drops only that
// line (CHAP stays mandatory with the good account), as IET did; alone it
// leaves the target out (it would be open to everyone).
func TestBadIncomingUserBesideAGoodOne(t *testing.T) {
	cfg, ds := loadIET(t, "Target iqn.a:t1\n\tIncomingUser joe secretsecret12\n\tIncomingUser carl\nTarget iqn.a:t2\n\tIncomingUser carl\n")
	if len(cfg.Targets) != 1 || cfg.Targets[0].Name != "iqn.a:t1" {
		t.Fatalf("targets %v\n%s", cfg.Targets, diagText(ds))
	}
	if in := cfg.Targets[0].Auth.Incoming; len(in) != 1 || in[0].User != "joe" {
		t.Fatalf("accounts %+v", in)
	}
	if !ds.HasErrors() || !strings.Contains(diagText(ds), "target iqn.a:t2 is left out") || strings.Contains(diagText(ds), "target iqn.a:t1 is left out") {
		t.Fatalf("diagnostics:\n%s", diagText(ds))
	}
}

// With initiators.allow present, a target no line applies to is refused to
// everyone (IET's implicit deny) and a line for an unknown target applies
// to nothing: both are said.
func TestACLUnreachableTargetsWarned(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, InitiatorsAllow), []byte("iqn.a:t2 ALL\niqn.a:T3 10.0.0.0/8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds, err := LoadBytes("c", []byte("Target iqn.a:t1\nTarget iqn.a:t3\n"), LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
	if err != nil || len(cfg.Targets) != 2 {
		t.Fatalf("%v %v", err, diagText(ds))
	}
	text := diagText(ds)
	wantIn(t, text,
		"c:1:1: warning: target iqn.a:t1 has no line in "+filepath.Join(dir, InitiatorsAllow)+" (nor an ALL line): every initiator is refused",
		filepath.Join(dir, InitiatorsAllow)+":1:1: warning: initiators.allow: no target iqn.a:t2 is configured",
	)
	if strings.Contains(text, "iqn.a:t3 has no line") || strings.Contains(text, "no target iqn.a:T3") {
		t.Errorf("t3 has a line (names compare without case):\n%s", text)
	}
}

// A UTF-8 byte order mark at the start of a file is dropped with a
// warning: ietd.conf, initiators.allow, NetBSD targets and auths.
func TestByteOrderMarkIgnored(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, InitiatorsAllow), []byte("\uFEFFALL ALL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds, err := LoadBytes("c", []byte("\uFEFFTarget iqn.a:t1\n\tLun 0 Path=/tmp/x,Type=fileio\n"), LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
	if err != nil || len(cfg.Targets) != 1 || len(cfg.Targets[0].LUNs) != 1 || cfg.InitiatorsAllow == nil || cfg.InitiatorsAllow.Rules[0].Target != "ALL" {
		t.Fatalf("%v\n%s", err, diagText(ds))
	}
	if n := strings.Count(diagText(ds), "byte order mark"); n != 2 || ds.HasErrors() {
		t.Fatalf("want 2 byte-order-mark warnings and no error:\n%s", diagText(ds))
	}
	auths := filepath.Join(dir, "auths")
	if err := os.WriteFile(auths, []byte("\uFEFFjoe:chap:secretsecret1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds, err = LoadBytes("targets", []byte("\uFEFFextent0 /tmp/x 0 1MB\ntarget0 rw extent0 0/0\n"), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: auths})
	if err != nil || len(cfg.Targets) != 1 || len(cfg.Targets[0].Auth.Incoming) != 1 || cfg.Targets[0].Auth.Incoming[0].User != "joe" {
		t.Fatalf("%v\n%s", err, diagText(ds))
	}
	if n := strings.Count(diagText(ds), "byte order mark"); n != 2 {
		t.Fatalf("want 2 byte-order-mark warnings:\n%s", diagText(ds))
	}
}

// A NetBSD extent of length "size" has the file's length when the line is
// read, which a RAID1 device compares: equal to a "1MB" member of a 1 MiB
// file, different from a file of another length.
func TestNetBSDSizeExtentsInRAID1(t *testing.T) {
	dir := t.TempDir()
	for name, n := range map[string]int{"m0": 1 << 20, "m1": 1 << 20, "m2": 2 << 20} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func(src string) (*config.Config, config.Diagnostics) {
		cfg, ds, _ := LoadBytesForStart("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull, BaseDir: dir})
		return cfg, ds
	}
	cfg, ds := load("extent0 m0 0 size\nextent1 m1 0 1MB\ndevice0 RAID1 extent0 extent1\ntarget0 rw device0 0/0\n")
	if ds.HasErrors() || len(cfg.Targets) != 1 {
		t.Fatalf("size and 1MB of 1 MiB files:\n%s", diagText(ds))
	}
	_, ds = load("extent0 m0 0 size\nextent2 m2 0 size\ndevice0 RAID1 extent0 extent2\ntarget0 rw device0 0/0\n")
	if !strings.Contains(diagText(ds), "extent extent2 has size 2097152, not 1048576") {
		t.Fatalf("size extents of 1 and 2 MiB:\n%s", diagText(ds))
	}
}

// IET read numeric parameters with strtol: trailing text is ignored, a
// leading 0 is octal (stopping at 8), an overflow clamps. Same values
// here, with a warning; no digits at all is still an error.
func TestIETNumbersAsStrtol(t *testing.T) {
	cfg, ds := loadIET(t, "Target iqn.a:t\n\tMaxConnections 1#x\n\tMaxOutstandingR2T 010\n\tMaxBurstLength 08\n\tMaxSessions 99999999999999999999999\n\tNOPInterval 0x1e\n\tDefaultTime2Wait abc\n")
	if len(cfg.Targets) != 1 {
		t.Fatalf("%s", diagText(ds))
	}
	tg := cfg.Targets[0]
	if tg.Params.MaxConnections != 1 || tg.Params.MaxOutstandingR2T != 8 || tg.NOPInterval != 30 {
		t.Errorf("MaxConnections %d MaxOutstandingR2T %d NOPInterval %d", tg.Params.MaxConnections, tg.Params.MaxOutstandingR2T, tg.NOPInterval)
	}
	text := diagText(ds)
	for _, want := range []string{`MaxConnections value "1#x" read as 1`, `MaxBurstLength value "08" read as 0`, `MaxSessions value "99999999999999999999999" read as 9223372036854775807`, `DefaultTime2Wait value "abc" is not a number`} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

// IPv4-mapped IPv6 items are the IPv4 networks they map (peers are
// compared unmapped).
func TestParseAddressUnmapsIPv4Mapped(t *testing.T) {
	for in, want := range map[string]string{
		"[::ffff:10.1.2.3]":     "10.1.2.3/32",
		"[::ffff:10.1.2.0]/120": "10.1.2.0/24",
		"[::ffff:10.1.2.0/120]": "10.1.2.0/24",
		"::ffff:10.0.0.0/104":   "10.0.0.0/8",
		"10.1.2.3":              "10.1.2.3/32",
		"[fe80::1]/64":          "fe80::/64",
	} {
		p, err := ParseAddress(in)
		if err != nil || p.String() != want {
			t.Errorf("%s: %v %v, want %s", in, p, err, want)
		}
	}
}

// TestAccountControlCharacters: a user name or secret with a control
// character is refused (ietadm refuses it too: the account listing is
// line based); a target whose IncomingUser is refused is left out rather
// than served open.
func TestAccountControlCharacters(t *testing.T) {
	cfg, ds := loadIET(t, "IncomingUser d\x01isc secretsecret12\nTarget iqn.x:a\n\tIncomingUser ok secret\x7fsecret12\n\tLun 0 Type=nullio\n"+
		"Target iqn.x:b\n\tOutgoingUser ok secretsecret12\n\tLun 0 Type=nullio\n")
	if len(cfg.Discovery.Incoming) != 0 {
		t.Errorf("discovery accounts %+v", cfg.Discovery.Incoming)
	}
	if len(cfg.Targets) != 1 || cfg.Targets[0].Name != "iqn.x:b" || cfg.Targets[0].Auth.Outgoing == nil {
		t.Errorf("targets %+v", cfg.Targets)
	}
	var lines []string
	for _, d := range ds {
		lines = append(lines, d.String())
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		`c:1:1: error: IncomingUser "d\x01isc": the user name holds a control character or invalid UTF-8 (the account is refused)`,
		`c:3:2: error: IncomingUser "ok": the secret holds a control character or invalid UTF-8 (the account is refused)`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, text)
		}
	}
}

// A file that cannot be read is reported like a diagnostic, without the
// package's name: FILE: error: cannot open WHAT: CAUSE.
func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	if err := os.WriteFile(conf, []byte("Target iqn.x:a\n\tLun 0 Type=nullio\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 /a 0 1M\ntarget0 rw extent0 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aclDir := filepath.Join(dir, "acl")
	if err := os.MkdirAll(filepath.Join(aclDir, InitiatorsAllow), 0o700); err != nil { // a directory: unreadable
		t.Fatal(err)
	}
	cases := []struct {
		path string
		opts LoadOptions
		want string
	}{
		{filepath.Join(dir, "none.conf"), LoadOptions{ACLDir: dir}, filepath.Join(dir, "none.conf") + ": error: cannot open config file: no such file or directory"},
		{dir, LoadOptions{ACLDir: dir}, dir + ": error: cannot read config file: is a directory"},
		{targets, LoadOptions{AuthsPath: filepath.Join(dir, "no-auths")}, filepath.Join(dir, "no-auths") + ": error: cannot open CHAP accounts file: no such file or directory"},
		{conf, LoadOptions{ACLDir: aclDir}, filepath.Join(aclDir, InitiatorsAllow) + ": error: cannot read access-control file: is a directory"},
	}
	for _, c := range cases {
		for _, load := range []func(string, LoadOptions) (*config.Config, config.Diagnostics, error){Load, LoadForStart} {
			_, _, err := load(c.path, c.opts)
			var fe *FileError
			if err == nil || err.Error() != c.want || !errors.As(err, &fe) {
				t.Errorf("%s: %v, want %q", c.path, err, c.want)
			}
		}
	}
	if _, _, err := Load(filepath.Join(dir, "none.conf"), LoadOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}

// An access-control line after an ALL line, or after a line for the same
// target, is never consulted: the first line that applies decides.
func TestACLShadowedLines(t *testing.T) {
	src := "iqn.a:sys1 192.168.0.0/16\n" +
		"IQN.A:SYS1 10.0.0.0/8\n" + // the same target (names compare without case)
		"all 10.0.0.0/8\n" + // a target named "all": not ALL
		"iqn.a:sys2 ALL\n" +
		"ALL 192.168.0.0/16\n" +
		"iqn.a:sys5 192.0.0.0/8\n" +
		"ALL ALL\n"
	var ds config.Diagnostics
	ParseACL("/etc/iet/targets.allow", []byte(src), false, &ds)
	want := []string{
		"/etc/iet/targets.allow:2:1: warning: targets.allow: this line never applies: the line at /etc/iet/targets.allow:1:1 for the same target comes first (IET stops at the first line that applies)",
		"/etc/iet/targets.allow:3:1: warning: \"all\": IET only recognises ALL in upper case (taken as a target name)",
		"/etc/iet/targets.allow:6:1: warning: targets.allow: this line never applies: the ALL line at /etc/iet/targets.allow:5:1 applies to every target first (IET stops at the first line that applies)",
		"/etc/iet/targets.allow:7:1: warning: targets.allow: this line never applies: the ALL line at /etc/iet/targets.allow:5:1 applies to every target first (IET stops at the first line that applies)",
	}
	sortDiagnostics(ds)
	if d := diagStrings(ds); !reflect.DeepEqual(d, want) {
		t.Fatalf("%q\nwant %q", d, want)
	}
}

// The diagnostics of the access-control files come file by file, in the
// order they are read, whichever check found them.
func TestACLDiagnosticsInFileOrder(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		InitiatorsAllow: "iqn.x:typo ALL\nALL ALL\n",
		TargetsAllow:    "ALL ALL\niqn.x:a 10.0.0.0/8\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, ds, err := LoadBytes("c", []byte("Target iqn.x:a\n\tLun 0 Type=nullio\n"), LoadOptions{ACLDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, d := range ds {
		files = append(files, filepath.Base(d.Pos.File))
	}
	if want := []string{InitiatorsAllow, TargetsAllow}; !reflect.DeepEqual(files, want) {
		t.Fatalf("files %q, want %q:\n%v", files, want, ds)
	}
}

// BlockSize=8192 is read (a disk NetBSD's iscsi-target -b 8192 served
// keeps its blocks) with a warning; other sizes are still refused.
func TestBlockSize8192(t *testing.T) {
	cfg, ds := loadIET(t, "Target iqn.a:t\n\tLun 0 Path=/dev/null,BlockSize=8192\n\tLun 1 Path=/dev/null,BlockSize=16384\n\tLun 2 Path=/dev/null,BlockSize=4096\n")
	text := diagText(ds)
	if len(cfg.Targets) != 1 || len(cfg.Targets[0].LUNs) != 2 || cfg.Targets[0].LUNs[0].BlockSize != 8192 || cfg.Targets[0].LUNs[1].BlockSize != 4096 {
		t.Fatalf("%s", text)
	}
	wantIn(t, text,
		"c:2:33: warning: Lun 0 BlockSize 8192: IET refused more than 4096, and Linux initiators cannot use logical blocks larger than 4096",
		`c:3:33: error: Lun 1 BlockSize: BlockSize "16384" must be 512, 1024, 2048, 4096 or 8192`,
	)
	if strings.Count(text, "warning") != 1 {
		t.Errorf("BlockSize=4096 warned:\n%s", text)
	}
}

// The migrated LUNs keep the block length iscsi-target served (its -b,
// 512 without it): without BlockSize= ietd would serve 512-byte blocks
// (or the device's own) and every LBA would move.
func TestMigrateBlockSize(t *testing.T) {
	src := "extent0 /tmp/a 0 1M\nextent1 /tmp/b 0 1M\nextent2 /tmp/c 0 1M\ndevice0 RAID1 extent1 extent2\ntarget0 rw extent0 0/0\ntarget1 ro device0 0/0\n"
	cfg, ds, err := LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if err != nil {
		t.Fatalf("%v", ds)
	}
	for _, bs := range []int{0, 4096, 8192} {
		conf, _, notes := MigrateNetBSDWith(cfg, MigrateOptions{BlockSize: bs})
		want := bs
		if bs == 0 {
			want = 512
		}
		back, ds, err := LoadBytes("migrated", []byte(conf), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
		if err != nil || len(back.Targets) != 2 {
			t.Fatalf("-b %d: %v\n%s", bs, ds, conf)
		}
		for _, tg := range back.Targets {
			if len(tg.LUNs) != 1 || tg.LUNs[0].BlockSize != want {
				t.Errorf("-b %d: %s: %+v\n%s", bs, tg.Name, tg.LUNs, conf)
			}
		}
		if !strings.Contains(conf, fmt.Sprintf("# BlockSize=%d is the block length iscsi-target served (-b %d)", want, want)) {
			t.Errorf("-b %d: header:\n%s", bs, conf)
		}
		noted := strings.Contains(strings.Join(notes, "\n"), "Linux initiators cannot use logical blocks larger than 4096")
		if noted != (bs == 8192) {
			t.Errorf("-b %d: notes %q", bs, notes)
		}
	}
	// The model is not changed.
	if cfg.Targets[0].LUNs[0].BlockSize != 0 {
		t.Error("MigrateNetBSDWith changed its input")
	}
}

// MigrateNetBSDReport says what the result does not serve as NetBSD did:
// a LUN written commented out and a CHAP user left out; notes about what
// only changes (extent windows, names) are not held back.
func TestMigrateHeldBack(t *testing.T) {
	src := "extent0 /tmp/a 0 1M\nextent1 /tmp/odd\"+name@x 0 1M\nextent2 /tmp/b 0 1M\ndevice0 RAID1 extent1 extent2\ntarget0 rw extent0 0/0\ntarget1 rw device0 0/0\n"
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	auths := write("auths", "joe:chap:verysecret1234\nann:chap:secret with blanks\n")
	cfg, ds, err := LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: auths})
	if err != nil {
		t.Fatalf("%v", ds)
	}
	m := MigrateNetBSDReport(cfg, MigrateOptions{})
	held := strings.Join(m.HeldBack, "\n")
	if len(m.HeldBack) != 2 || !strings.Contains(held, `path "/tmp/odd\"+name@x"`) || !strings.Contains(held, `CHAP user "ann" cannot be migrated`) {
		t.Fatalf("held back:\n%s", held)
	}
	for _, h := range m.HeldBack {
		if !slices.Contains(m.Notes, h) {
			t.Errorf("%q is not a note", h)
		}
	}
	cfg, _, _ = LoadBytes("targets", []byte("extent0 /tmp/a 100 1M\ntarget0 rw extent0 10/8\n"), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: write("auths2", "joe:chap:verysecret1234\n")})
	if m := MigrateNetBSDReport(cfg, MigrateOptions{}); len(m.HeldBack) != 0 || len(m.Notes) == 0 {
		t.Fatalf("held back %q, notes %q", m.HeldBack, m.Notes)
	}
}

// A RAID member whose path holds one of ; ( ) @ + is written inside
// Store= in double quotes, and the result loads back to the same paths.
func TestMigrateQuotesStorePaths(t *testing.T) {
	src := "extent1 /tmp/odd+name@x(1);2 0 1M\nextent2 /tmp/b 0 1M\ndevice0 RAID1 extent1 extent2\ntarget1 rw device0 0/0\n"
	cfg, ds, err := LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD})
	if err != nil {
		t.Fatalf("%v", ds)
	}
	m := MigrateNetBSDReport(cfg, MigrateOptions{})
	if len(m.HeldBack) != 0 || !strings.Contains(m.IETDConf, `Store=raid1("/tmp/odd+name@x(1);2"+1048576;/tmp/b+1048576)`) {
		t.Fatalf("held back %q:\n%s", m.HeldBack, m.IETDConf)
	}
	back, ds, err := LoadBytes("ietd.conf", []byte(m.IETDConf), LoadOptions{Dialect: config.DialectIET})
	if err != nil || ds.HasErrors() {
		t.Fatalf("%v %v", err, diagStrings(ds))
	}
	st := back.Targets[0].LUNs[0].Store
	if st.Kind != config.StoreMirror || st.Members[0].Path != "/tmp/odd+name@x(1);2" || st.Members[0].Size != 1<<20 || st.Members[1].Path != "/tmp/b" {
		t.Fatalf("read back: %+v %+v", st.Members[0], st.Members[1])
	}
}

// auths users that differ only in case: iscsi-target used the first
// case-insensitive match, so the second secret never let anyone in; ietd
// matches names exactly, so the migration keeps only the first.
func TestMigrateCaseDuplicateUsers(t *testing.T) {
	auths := filepath.Join(t.TempDir(), "auths")
	if err := os.WriteFile(auths, []byte("E:chap:secretsecret12\ne:chap:othersecret123\nbob:chap:bobsecret1234\nBOB:chap:bobsecret5678\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds, err := LoadBytes("targets", []byte("extent0 /tmp/a 0 1M\ntarget0 rw extent0 0/0\n"), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: auths})
	if err != nil {
		t.Fatalf("%v", ds)
	}
	m := MigrateNetBSDReport(cfg, MigrateOptions{})
	back, ds, err := LoadBytes("migrated", []byte(m.IETDConf), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
	if err != nil {
		t.Fatalf("%v\n%s", ds, m.IETDConf)
	}
	var got []string
	for _, a := range back.Targets[0].Auth.Incoming {
		got = append(got, a.User+"/"+a.Secret)
	}
	if strings.Join(got, " ") != "E/secretsecret12 bob/bobsecret1234" {
		t.Fatalf("accounts %q\n%s", got, m.IETDConf)
	}
	notes := strings.Join(m.Notes, "\n")
	for _, want := range []string{
		`CHAP user "e" of the auths file is left out: NetBSD matched user names without case and used the first entry, "E", so its secret was never accepted`,
		`CHAP user "BOB" of the auths file is left out`,
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("no %q in\n%s", want, notes)
		}
	}
	if strings.Contains(notes, "othersecret") || len(m.HeldBack) != 0 {
		t.Errorf("secret in a note, or held back %q", m.HeldBack)
	}
	if len(cfg.Targets[0].Auth.Incoming) != 4 {
		t.Error("MigrateNetBSDReport changed its input")
	}
}

// TestNetBSDOverlappingWritersWarn: read-write targets on overlapping
// byte ranges of one file (overlapping extents, the same extent twice, an
// extent and a device holding it) are warned, naming both targets and the
// bytes; NetBSD did not check. Read-only targets and disjoint extents are
// not.
func TestNetBSDOverlappingWritersWarn(t *testing.T) {
	src := "extent0 /tmp/g1 0 768k\nextent1 /tmp/g1 262144 768k\nextent2 /tmp/g2 0 1MB\nextent3 /tmp/g2 1048576 1MB\n" +
		"extent4 /tmp/g3 0 1MB\nextent5 /tmp/g4 0 1MB\ndevice0 RAID0 extent4 extent5\n" +
		"target0 rw extent0 0/0\ntarget1 rw extent1 0/0\n" + // overlap [262144,786432)
		"target2 rw extent2 0/0\ntarget3 rw extent3 0/0\n" + // adjacent: none
		"target4 rw device0 0/0\ntarget5 rw extent4 0/0\n" + // extent4 inside device0
		"target6 ro extent0 0/0\n" // read-only: none
	_, ds, err := LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"targets:9:1: warning: read-write targets target1 and target0 (at targets:8:1) both write bytes [262144,786432) of /tmp/g1: two initiators writing there corrupt each other's data (NetBSD did not check)",
		"targets:13:1: warning: read-write targets target5 and target4 (at targets:12:1) both write bytes [0,1048576) of /tmp/g3: two initiators writing there corrupt each other's data (NetBSD did not check)",
	}
	if len(ds) != len(want) {
		t.Fatalf("diags:\n%v", ds)
	}
	for i, w := range want {
		if ds[i].String() != w {
			t.Errorf("diag %d = %q\nwant %q", i, ds[i], w)
		}
	}
}

// TestNetBSDRAID1FirstMemberMessages: a RAID1 whose first member is a
// device compares the other members with that device's size (our rule)
// and says what NetBSD compared them with (the device's first member's
// length) and what it decided; an unknown first member is one error, not
// a second "has size N, not 0".
func TestNetBSDRAID1FirstMemberMessages(t *testing.T) {
	src := "extent0 /tmp/r0 0 512k\nextent1 /tmp/r1 0 512k\ndevice0 RAID0 extent0 extent1\n" +
		"extent2 /tmp/r2 0 512k\ndevice1 RAID1 device0 extent2\n" + // NetBSD accepted it
		"extent3 /tmp/r3 0 512k\nextent4 /tmp/r4 0 512k\ndevice2 RAID0 extent3 extent4\n" +
		"extent5 /tmp/r5 0 1MB\ndevice3 RAID1 device2 extent5\n" + // NetBSD refused it
		"extent6 /tmp/r6 0 1MB\ndevice4 RAID1 device9 extent6\n" + // unknown first member
		"target0 rw device3 0/0\n"
	_, ds, _ := LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	want := []string{
		"targets:5:23: error: extent extent2 has size 524288, not 1048576 (RAID1 members must be equal: 1048576 is the size of device0; NetBSD compared it with 524288, the length of device0's first member, and accepted it)",
		"targets:10:23: warning: extent extent5 has the size of device2 (1048576 bytes); NetBSD compared it with 524288, the length of device2's first member: NetBSD refused this line",
		"targets:12:15: error: no extent or device found for \"device9\"",
	}
	if len(ds) != len(want) {
		t.Fatalf("diags:\n%v", ds)
	}
	for i, w := range want {
		if ds[i].String() != w {
			t.Errorf("diag %d = %q\nwant %q", i, ds[i], w)
		}
	}
}

// A mask whose prefix length has other characters after its digits is
// read as NetBSD's atoi read it, with a warning saying what was ignored;
// the target is served, not left out.
func TestNetmaskPrefixReadWithAtoi(t *testing.T) {
	cfg, ds, err := LoadBytes("targets", []byte("extent0 /tmp/a 0 1M\ntarget0 rw extent0 127.0.0.0/8x\n"),
		LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if err != nil || len(cfg.Targets) != 1 || cfg.Targets[0].AllowedNets[0].CIDR != "127.0.0.0/8" {
		t.Fatalf("%v %v", err, ds)
	}
	want := `targets:2:20: warning: target target0: mask "127.0.0.0/8x": NetBSD's atoi read the prefix length as 8 and ignored "x", and so does this reading: 127.0.0.0/8`
	if text := diagText(ds); !strings.Contains(text, want) {
		t.Errorf("no %q in\n%s", want, text)
	}
}

// A slash with nothing after it is /0 to atoi, as NetBSD read it: the
// target is served to everyone, which the admin rarely means, so it is
// warned (targets(5) says so); a full mask is not.
func TestNetmaskEmptyPrefixWarned(t *testing.T) {
	cfg, ds, err := LoadBytes("targets", []byte("extent0 /tmp/a 0 1M\ntarget0 ro extent0 10.0.0.0/\ntarget1 ro extent0 10.0.0.0/8\n"),
		LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	if err != nil || len(cfg.Targets) != 2 || cfg.Targets[0].AllowedNets[0].CIDR != "0.0.0.0/0" {
		t.Fatalf("%v %v", err, ds)
	}
	text := diagText(ds)
	want := `targets:2:20: warning: target target0: mask "10.0.0.0/" has no prefix length after the slash: NetBSD's atoi read it as 0, and so does this reading: 0.0.0.0/0 admits every initiator`
	if !strings.Contains(text, want) {
		t.Errorf("no %q in\n%s", want, text)
	}
	if strings.Contains(text, "targets:3:") {
		t.Errorf("a full mask is warned:\n%s", text)
	}
}

// A leading 0 makes an IET number octal (strtol base 0): "010" is 8,
// which the admin rarely means, so it is warned; 01..07 and 0x are not.
func TestIETOctalNumbersWarned(t *testing.T) {
	cfg, ds := loadIET(t, "Target iqn.a:t\n\tLun 0 Type=nullio\n\tQueuedCommands 064\n\tMaxSessions 010\n\tWthreads 07\n\tNOPInterval 0x10\n\tNOPTimeout 0\n")
	tg := cfg.Targets[0]
	if tg.QueuedCommands != 52 || tg.MaxSessions != 8 || tg.Wthreads != 7 || tg.NOPInterval != 16 {
		t.Fatalf("QueuedCommands %d MaxSessions %d Wthreads %d NOPInterval %d", tg.QueuedCommands, tg.MaxSessions, tg.Wthreads, tg.NOPInterval)
	}
	text := diagText(ds)
	wantIn(t, text,
		`c:3:17: warning: QueuedCommands value "064" is octal for 52, as IET read it (C strtol takes a leading 0 for octal): for 64 write it without the leading 0`,
		`c:4:14: warning: MaxSessions value "010" is octal for 8`,
	)
	for _, not := range []string{`"07"`, `"0x10"`, `NOPTimeout`} {
		if strings.Contains(text, not) {
			t.Errorf("%s warned:\n%s", not, text)
		}
	}
}

// IOMode: IET before 1.4.20 compared the value with strcmp and served any
// other value write-through (the LUN came up); 1.4.20 refused the LUN.
// A config that ran keeps running as it ran: write-through, whatever the
// value says ("WB" would lose durability, "Ro" would refuse the writes
// its initiators made), with a warning saying what to write.
func TestIETIOModeValues(t *testing.T) {
	cfg, ds := loadIET(t, "Target iqn.a:t\n"+
		"\tLun 0 Path=/a,Type=fileio,IOMode=WB\n"+
		"\tLun 1 Path=/b,Type=fileio,IOMode=Ro\n"+
		"\tLun 2 Path=/c,Type=fileio,IOMode=rw\n"+
		"\tLun 3 Path=/d,Type=fileio,iomode=wb\n"+
		"\tLun 4 Type=nullio,IOMode=WB\n")
	var got []string
	for _, l := range cfg.Targets[0].LUNs {
		got = append(got, fmt.Sprintf("%d:%s", l.Number, l.IOMode))
	}
	if g, want := strings.Join(got, " "), "0:wt 1:wt 2:wt 3:wb"; g != want {
		t.Fatalf("LUNs %s, want %s\n%s", g, want, diagText(ds))
	}
	text := diagText(ds)
	wantIn(t, text,
		`c:2:35: warning: Lun 0 IOMode "WB": IET knew only lower-case wt, wb and ro (before 1.4.20 it served this LUN write-through, 1.4.20 refused it); served write-through here too: write IOMode=wb for what it says`,
		`c:3:35: warning: Lun 1 IOMode "Ro": `,
		`c:4:35: warning: Lun 2 IOMode "rw" is not wt, wb or ro: served write-through (wt), as IET before 1.4.20 did (1.4.20 refused the LUN)`,
		`c:6:27: error: Lun 4 IOMode: IOMode is not allowed for nullio`,
	)
	if strings.Contains(text, "Lun 3 IOMode") {
		t.Errorf("iomode=wb (a key in other case, IET 1.4.20) warned:\n%s", text)
	}
}

// A Yes/No or digest value in another case: IET skipped the line (the
// value stayed), we read it as written; the warning says both.
func TestIETValueCaseSaysWhatIETKept(t *testing.T) {
	cfg, ds := loadIET(t, "Target iqn.a:t\n\tLun 0 Type=nullio\n\tImmediateData no\n\tHeaderDigest crc32c,None\n")
	tg := cfg.Targets[0]
	if tg.Params.ImmediateData || strings.Join(tg.Params.HeaderDigest, ",") != "CRC32C,None" {
		t.Fatalf("ImmediateData %v HeaderDigest %v", tg.Params.ImmediateData, tg.Params.HeaderDigest)
	}
	text := diagText(ds)
	wantIn(t, text,
		`c:3:16: warning: ImmediateData value "no": IET took only Yes or No in exact case and ignored this line (ImmediateData stayed Yes); read here as No`,
		`c:4:15: warning: HeaderDigest value "crc32c,None": IET took only None and CRC32C in exact case and ignored this line (HeaderDigest stayed None); read here as CRC32C,None`,
	)
}

// IET's prefix arithmetic broke /32 (never matched), IPv4 /0 (matched
// only 0.0.0.0) and /128 (never matched); ours match what they say, and
// the warning says IET did not.
func TestACLPrefixesIETGotWrong(t *testing.T) {
	var ds config.Diagnostics
	f := ParseACL("initiators.allow", []byte("ALL 10.1.2.3/32, 0.0.0.0/0, [::1]/128, [fe80::]/64, 10.0.0.0/8\n"), true, &ds)
	if len(f.Rules) != 1 || len(f.Rules[0].Items) != 5 {
		t.Fatalf("%+v\n%s", f, diagText(ds))
	}
	text := diagText(ds)
	wantIn(t, text,
		`initiators.allow:1:5: warning: 10.1.2.3/32: IET never matched a /32 item (its mask arithmetic overflows); here it matches 10.1.2.3`,
		`initiators.allow:1:18: warning: 0.0.0.0/0: IET matched only the address 0.0.0.0 with a /0 item; here it matches every IPv4 address`,
		`initiators.allow:1:29: warning: [::1]/128: IET never matched a /128 item; here it matches ::1`,
	)
	if n := strings.Count(text, "warning"); n != 3 {
		t.Errorf("%d warnings, want 3 (/64 and /8 are fine):\n%s", n, text)
	}
}

// RFC 7143 12.1.3: one CHAP secret for both directions is warned (with
// the position of the OutgoingUser line, never the secret) and served as
// IET served it; distinct secrets and NetBSD's mutual-with-incoming rule
// are not warned.
func TestSecretBothWaysWarned(t *testing.T) {
	const shared = "sharedsecret-X1"
	cfg, ds := loadIET(t, "IncomingUser disc discsecret123\nOutgoingUser dout discsecret123\n"+
		"Target iqn.x:a\n\tIncomingUser joe "+shared+"\n\tOutgoingUser tgt "+shared+"\n\tLun 0 Type=nullio\n"+
		"Target iqn.x:b\n\tIncomingUser joe "+shared+"\n\tOutgoingUser tgt othersecret-Y2\n\tLun 0 Type=nullio\n")
	text := diagText(ds)
	if ds.HasErrors() || len(cfg.Targets) != 2 || cfg.Targets[0].Auth.Outgoing == nil {
		t.Fatalf("targets %v (want both served)\n%s", cfg.Targets, text)
	}
	for _, want := range []string{
		"c:2:1: warning: discovery: OutgoingUser dout has the secret of IncomingUser disc: RFC 7143 12.1.3",
		"c:5:2: warning: target iqn.x:a: OutgoingUser tgt has the secret of IncomingUser joe",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "iqn.x:b: OutgoingUser") || strings.Count(text, "RFC 7143 12.1.3") != 2 {
		t.Errorf("distinct secrets warned, or a warning repeated:\n%s", text)
	}
	if strings.Contains(text, shared) || strings.Contains(text, "discsecret123") {
		t.Errorf("a secret appears in the diagnostics:\n%s", text)
	}
	if _, ok := (config.Auth{Incoming: []config.Account{{User: "u", Secret: "s"}}, MutualWithIncoming: true}).SecretBothWays(); ok {
		t.Error("NetBSD's mutual-with-incoming rule reported as a secret used both ways")
	}
}

// wantIn fails t for each of wants that text (diagnostics) lacks.
func wantIn(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

// NAA=Yes|No (ours) sets the LUN's NAA designator either way, renders
// back, and any other value is an error naming it.
func TestLunNAA(t *testing.T) {
	cfg, ds, err := LoadBytes("t.conf", []byte("Target t\nLun 0 Path=/a,NAA=Yes\nLun 1 Path=/b,Identity=netbsd,NAA=no\nLun 2 Path=/c\n"), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
	if err != nil || len(ds) != 0 {
		t.Fatalf("%v %v", err, ds)
	}
	ls := cfg.Targets[0].LUNs
	if ls[0].NAA == nil || !*ls[0].NAA || ls[1].NAA == nil || *ls[1].NAA || ls[2].NAA != nil {
		t.Fatalf("NAA: %v %v %v", ls[0].NAA, ls[1].NAA, ls[2].NAA)
	}
	text := RenderIET(cfg)
	if !strings.Contains(text, "Lun 0 Path=/a,Type=fileio,NAA=Yes") || !strings.Contains(text, "Identity=netbsd,NAA=No") || strings.Count(text, "NAA=") != 2 {
		t.Fatalf("rendered:\n%s", text)
	}
	_, ds, err = LoadBytes("t.conf", []byte("Target t\nLun 0 Path=/a,NAA=maybe\n"), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
	if err == nil || !strings.Contains(ds.Error(), "t.conf:2:") || !strings.Contains(ds.Error(), `NAA must be Yes or No, not "maybe"`) {
		t.Fatalf("NAA=maybe: %v\n%v", err, ds)
	}
}

// TestISNSRenderRoundTrip: the rendered iSNS lines load back to the same
// server and port (an IPv6 server with a port is bracketed).
func TestISNSRenderRoundTrip(t *testing.T) {
	for _, src := range []string{"iSNSServer 192.0.2.1:3206\n", "iSNSServer [2001:db8::1]:3206\n",
		"iSNSServer 2001:db8::1\niSNSAccessControl Yes\n", "iSNSServer isns.example\n"} {
		cfg, _ := loadIET(t, src)
		out := RenderIET(cfg)
		back, _ := loadIET(t, out)
		if cfg.ISNS == nil || back.ISNS == nil || back.ISNS.Server != cfg.ISNS.Server || back.ISNS.Port != cfg.ISNS.Port ||
			back.ISNS.AccessControl != cfg.ISNS.AccessControl {
			t.Errorf("%q rendered as %q: %+v, want %+v", src, out, back.ISNS, cfg.ISNS)
		}
	}
}
