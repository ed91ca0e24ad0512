package ietconf

import (
	"strings"
	"testing"
)

func TestParseBasic(t *testing.T) {
	src := "# global\nIncomingUser disc secretsecret12\n" +
		"target iqn.2001-04.com.example:disk1\n" +
		"    Lun 0 Path=/srv/my disk.img,Type=fileio,ScsiId=d1\n" +
		"\tLUN 1 /dev/sdb fileio\n" +
		"    MaxRecvDataSegmentLength 262144 # comment\n" +
		"    Lun 2 Path=/x, Type=blockio\n" +
		"    Lun x Path=/y\n" +
		"    OutgoingUser solo\n" +
		"Target\n"
	f, ds := Parse("ietd.conf", []byte(src))
	// Bad Lun and account lines are kept, marked, for the lowering.
	if len(f.Directives) != 9 {
		t.Fatalf("got %d directives, want 9; diags:\n%v", len(f.Directives), ds)
	}
	for i, d := range f.Directives {
		bad := (d.Lun != nil && d.Lun.Bad) || (d.Account != nil && d.Account.Bad)
		if bad != (i == 6 || i == 7) {
			t.Errorf("directive %d (line %d): bad = %v", i, d.Pos.Line, bad)
		}
	}
	acc := f.Directives[0].Account
	if acc == nil || !acc.Incoming() || acc.User.Text != "disc" || acc.Secret.Text != "secretsecret12" {
		t.Fatalf("account = %+v", acc)
	}
	tg := f.Directives[1].Target
	if tg == nil || tg.Name.Text != "iqn.2001-04.com.example:disk1" || tg.Pos.Line != 3 {
		t.Fatalf("target = %+v", tg)
	}
	l0 := f.Directives[2].Lun
	if l0 == nil || l0.Number != 0 || len(l0.Params) != 3 || l0.Params[0].Value != "/srv/my disk.img" {
		t.Fatalf("lun0 = %+v", l0)
	}
	if c := l0.Params[1].Pos.Column; c != 33 {
		t.Errorf("Type= column = %d, want 33", c)
	}
	l1 := f.Directives[3].Lun
	if l1 == nil || l1.Number != 1 || len(l1.Positional) != 2 || l1.Positional[1].Text != "fileio" {
		t.Fatalf("lun1 = %+v", l1)
	}
	s := f.Directives[4].Setting
	if s == nil || s.Keyword.Text != "MaxRecvDataSegmentLength" || s.Values[0].Text != "262144" {
		t.Fatalf("setting = %+v", s)
	}
	want := []string{
		"ietd.conf:7:20: warning: space around ','",
		"ietd.conf:8:9: error: Lun number \"x\" is not a number",
		"ietd.conf:9:18: error: OutgoingUser solo has no secret",
		"ietd.conf:10:1: error: Target without a name",
	}
	if len(ds) != len(want) {
		t.Fatalf("diagnostics:\n%v", ds)
	}
	for i, w := range want {
		if !strings.HasPrefix(ds[i].String(), w) {
			t.Errorf("diag %d = %q, want prefix %q", i, ds[i], w)
		}
	}
}

func TestNoTrailingNewline(t *testing.T) {
	f, ds := Parse("c", []byte("Target iqn.x"))
	if len(f.Directives) != 1 || f.Directives[0].Target.Name.Text != "iqn.x" {
		t.Fatalf("%+v", f.Directives)
	}
	if len(ds) != 1 || !strings.Contains(ds[0].Msg, "no newline") {
		t.Fatalf("diags %v", ds)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"Target iqn.a\n Lun 0 Path=/a,Type=fileio\n",
		"#IncomingUser nwsmith secretsecret\nLun 0 /dev/sdb fileio\nAlias iscsitest01\n",
		"Lun 0Path=/x,,Type=nullio # c\r\n",
		"IncomingUser\nTarget\nLun\nLun 99999999999999999999 a\n\xff\xfe",
		"Lun 0 \xffPath=,=\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, _ := Parse("fuzz", b)
		for _, d := range fl.Directives {
			if d.Target == nil && d.Lun == nil && d.Account == nil && d.Setting == nil {
				t.Fatal("empty directive")
			}
		}
	})
}

func TestParseStore(t *testing.T) {
	s, err := ParseStore("raid1(/a@512+1048576;raid0(/b;/c+1M))", lexerPos("f", 2, 10))
	if err != nil {
		t.Fatal(err)
	}
	c := s.Composite
	if c == nil || c.Level != "raid1" || len(c.Members) != 2 {
		t.Fatalf("%+v", s)
	}
	if f := c.Members[0].File; f.Path != "/a" || f.Offset != "512" || f.Size != "1048576" || f.Pos.Column != 16 {
		t.Fatalf("%+v", f)
	}
	if in := c.Members[1].Composite; in.Level != "raid0" || in.Members[1].File.Size != "1M" {
		t.Fatalf("%+v", in)
	}
	if _, err := ParseStore("raid0(/a;", lexerPos("f", 1, 1)); err == nil {
		t.Fatal("unterminated accepted")
	}
	// A quoted path holds ; ( ) @ +; the quotes are not part of it. A
	// quote inside an unquoted path is an ordinary character.
	s, err = ParseStore(`raid1("/d/a+b@c(1);2"@512+1M;/x"y)`, lexerPos("f", 3, 5))
	if err != nil {
		t.Fatal(err)
	}
	m := s.Composite.Members
	if f := m[0].File; f.Path != "/d/a+b@c(1);2" || f.Offset != "512" || f.Size != "1M" || f.Pos.Column != 11 {
		t.Fatalf("%+v", f)
	}
	if f := m[1].File; f.Path != `/x"y` {
		t.Fatalf("%+v", f)
	}
}

func FuzzParseStore(f *testing.F) {
	for _, s := range []string{"/a", "raid0(/a;/b)", "raid1(/a@1+2;raid0(/b))", "((;@+", "", `raid0("/a;b"@1;"")`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseStore(s, lexerPos("fuzz", 1, 1))
	})
}

func TestLineEnds(t *testing.T) {
	cases := []struct {
		src  string
		want []string // diagnostics, in order
	}{
		// IET takes a Lun line's rest raw: no newline is fine.
		{"Target iqn.x\nLun 0 Path=/a", nil},
		{"Target iqn.x\n  lun 0 Path=/a", nil},
		{"Target iqn.x\nMaxConnections 1", []string{"c:2:1: warning: last line has no newline: IET would ignore its last word (accepted here)"}},
		{"Target iqn.x\n# last", nil},
		// No line continuation: the backslash stays, the next line stands alone.
		{"Target iqn.x\nLun 0 Path=/a,\\\nType=fileio\n", []string{
			"c:2:15: warning: line continuation is not supported (IET never supported it): the backslash stays in the word and the next line is read on its own",
			"c:2:15: error: Lun 0 parameter \"\\\\\" is not Key=Value",
		}},
		{"Target iqn.x\\\n", []string{"c:1:13: warning: line continuation is not supported"}},
		{"# comment \\\nTarget iqn.x\n", nil},
	}
	for _, c := range cases {
		_, ds := Parse("c", []byte(c.src))
		if len(ds) != len(c.want) {
			t.Errorf("%q: diagnostics %v, want %q", c.src, ds, c.want)
			continue
		}
		for i, w := range c.want {
			if !strings.HasPrefix(ds[i].String(), w) {
				t.Errorf("%q: diagnostic %d = %q, want %q", c.src, i, ds[i], w)
			}
		}
	}
}

func TestSecretStartingWithHash(t *testing.T) {
	// IET only has whole-line comments: "#secret" is the secret.
	f, ds := Parse("c", []byte("IncomingUser joe #secret12345\nIncomingUser ann\n"))
	if len(f.Directives) != 2 || f.Directives[0].Account.Secret.Text != "#secret12345" || f.Directives[0].Account.Bad || !f.Directives[1].Account.Bad {
		t.Fatalf("directives %+v", f.Directives)
	}
	want := []string{
		"c:1:18: warning: the secret of IncomingUser joe starts with '#': it is the secret, not a comment (as IET)",
		"c:2:14: error: IncomingUser ann has no secret (IET rejects the account)",
	}
	if len(ds) != 2 || ds[0].String() != want[0] || ds[1].String() != want[1] {
		t.Fatalf("diagnostics %v, want %q", ds, want)
	}
}

// A bare account line (the HowtoForge / linux-training template) is a
// warning: IET rejects the line and starts all the same. The line is kept
// marked Bad, so the lowering adds no account.
func TestBareAccountLineIsAWarning(t *testing.T) {
	f, ds := Parse("c", []byte("Target iqn.x:a\n\tOutgoingUser\n\tIncomingUser  \n"))
	if len(f.Directives) != 3 || !f.Directives[1].Account.Bad || !f.Directives[2].Account.Bad {
		t.Fatalf("directives %+v", f.Directives)
	}
	want := []string{
		"c:2:2: warning: OutgoingUser without a user and secret ignored (as IET): no mutual CHAP",
		"c:3:2: warning: IncomingUser without a user and secret ignored (as IET): it adds no CHAP account",
	}
	if ds.HasErrors() || len(ds) != len(want) {
		t.Fatalf("diagnostics %v, want %q", ds, want)
	}
	for i, w := range want {
		if ds[i].String() != w {
			t.Errorf("diag %d = %q, want %q", i, ds[i], w)
		}
	}
}
