package netbsd

import (
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	src := "# comment\n" +
		"extent0 /tmp/iscsi-target0 0 100MB\n" +
		"\n" +
		"extent1 /tmp/my\\ disk 1M size # trailing ok\n" +
		"extent2 /tmp/fo\\\no 0 1GB\r\n" +
		"device0 RAID1 extent0 extent1 # mirror\n" +
		"target0 rw extent0\n" +
		"target1=iqn.2001-04.com.example:disk1 ro device0 10.4/16\n" +
		"lun3 extent2 192.168.1.0/24\n" +
		"extnet9 /x 0 1\n" +
		"extent5 /x\n"
	f, ds := ParseTargets("targets", []byte(src))
	if len(f.Extents) != 3 || len(f.Devices) != 1 || len(f.Targets) != 3 {
		t.Fatalf("extents %d devices %d targets %d\n%v", len(f.Extents), len(f.Devices), len(f.Targets), ds)
	}
	if got := f.Extents[1].Path.Text; got != "/tmp/my disk" {
		t.Errorf("escaped path = %q", got)
	}
	if got := f.Extents[2].Path.Text; got != "/tmp/foo" || f.Extents[2].Length.Text != "1GB" {
		t.Errorf("continued path = %q len %q", got, f.Extents[2].Length.Text)
	}
	if d := f.Devices[0]; d.Level.Text != "RAID1" || len(d.Members) != 2 {
		t.Errorf("device %+v", d)
	}
	t0 := f.Targets[0]
	if t0.Flags.Text != "rw" || t0.Storage.Text != "extent0" || t0.Netmask != nil || t0.OldForm {
		t.Errorf("target0 %+v", t0)
	}
	t1 := f.Targets[1]
	if !t1.HasIQN || t1.Name != "target1" || t1.IQN != "iqn.2001-04.com.example:disk1" || t1.Netmask.Text != "10.4/16" {
		t.Errorf("target1 %+v", t1)
	}
	if t2 := f.Targets[2]; !t2.OldForm || t2.Storage.Text != "extent2" || t2.Pos.Line != 10 {
		t.Errorf("lun3 %+v", t2)
	}
	want := []string{
		"targets:6:8: warning: carriage return",
		"targets:7:31: warning: trailing comment on a device line",
		"targets:8:12: warning: target target0 has no netmask",
		"targets:11:1: warning: line does not start with extent",
		"targets:12:1: error: extent extent5 needs a path, an offset and a length",
	}
	if len(ds) != len(want) {
		t.Fatalf("diags:\n%v", ds)
	}
	for i, w := range want {
		if !strings.HasPrefix(ds[i].String(), w) {
			t.Errorf("diag %d = %q, want %q", i, ds[i], w)
		}
	}
}

func TestParseAuths(t *testing.T) {
	src := "# users\nchaptest3:chap:Rhode Island Red\niqn.1991-05.com.microsoft\\:ws2:CHAP:1234567890123456\r\nnulltest:none:\nbad:chap:a:b\nsolo\n"
	f, ds := ParseAuths("auths", []byte(src))
	if len(f.Entries) != 5 {
		t.Fatalf("entries %d %v", len(f.Entries), ds)
	}
	e := f.Entries
	if e[0].User.Text != "chaptest3" || e[0].Secret.Text != "Rhode Island Red" {
		t.Errorf("e0 %+v", e[0])
	}
	if e[1].User.Text != "iqn.1991-05.com.microsoft:ws2" || e[1].Secret.Text != "1234567890123456" || e[1].AuthType.Text != "CHAP" {
		t.Errorf("e1 user %q secret %q", e[1].User.Text, e[1].Secret.Text)
	}
	if e[2].Secret != nil || e[2].AuthType.Text != "none" {
		t.Errorf("e2 %+v", e[2])
	}
	if e[3].Secret.Text != "a:b" || e[4].AuthType != nil {
		t.Errorf("e3 %q", e[3].Secret.Text)
	}
	if len(ds) != 2 || ds[0].Pos.Line != 3 || ds[1].Pos.Line != 5 || ds[1].Pos.Col != 12 {
		t.Errorf("diags %v", ds)
	}
}

func FuzzParseTargets(f *testing.F) {
	for _, s := range []string{
		"extent0 /tmp/iscsi-target0 0 100MB\n\ntarget0 rw extent0\n",
		"device0 RAID0 extent0 \\\n extent1\r\ntarget0=iqn.x ro device0 any\nlun1 a b\n",
		"extent\\", "target \\\r\n\\\\ \\ \t#\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, _ := ParseTargets("fuzz", b)
		for _, x := range fl.Extents {
			if x.Path == nil || x.Length == nil {
				t.Fatal("extent without fields")
			}
		}
		for _, x := range fl.Targets {
			if x.Storage == nil {
				t.Fatal("target without storage")
			}
		}
	})
}

func FuzzParseAuths(f *testing.F) {
	for _, s := range []string{"u:chap:secret\n", "::a\\:b:::c\r\n#x\n", "\\", "a:\\\n:b"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, _ := ParseAuths("fuzz", b)
		for _, e := range fl.Entries {
			if e.User == nil {
				t.Fatal("entry without user")
			}
		}
	})
}

// Runs of ':' collapse (NetBSD's tokenizer has no empty fields): an entry
// with an empty field is not what it looks like, and the warning says what
// it is (never the secret itself).
func TestAuthsEmptyFieldWarns(t *testing.T) {
	src := "bad::secret\nbad2::none\n:chap:secret12\nok:chap:secret12\nesc\\:aped:chap:s\\:s\nx::chap:secret12\n"
	f, ds := ParseAuths("auths", []byte(src))
	if len(f.Entries) != 6 || f.Entries[0].AuthType.Text != "secret" || f.Entries[0].Secret != nil || f.Entries[2].User.Text != "chap" {
		t.Fatalf("entries %+v", f.Entries)
	}
	want := []string{
		`auths:1:1: warning: empty field: runs of ':' collapse (as NetBSD), so this entry is user "bad", an unknown authtype (the field after the user, not shown: it may be the secret), no secret: never used for CHAP`,
		`auths:2:1: warning: empty field: runs of ':' collapse (as NetBSD), so this entry is user "bad2", authtype "none", no secret: never used for CHAP`,
		`auths:3:2: warning: empty field: runs of ':' collapse (as NetBSD), so this entry is user "chap", an unknown authtype (the field after the user, not shown: it may be the secret), no secret: never used for CHAP`,
		`auths:6:1: warning: empty field: runs of ':' collapse (as NetBSD), so this entry is user "x", authtype "chap", a secret: used as such`,
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diagnostics\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
