package ietacl

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := "# comment\nALL ALL\niqn.2001-04.com.example:a 10.0.0.0/8, [fe80::1] ,iqn\\.1993-08\\.org\\.debian:.*,,a b\n  #x y\nlonely\n"
	f, ds := Parse("initiators.allow", []byte(src))
	if len(f.Rules) != 3 {
		t.Fatalf("rules %d: %+v %v", len(f.Rules), f.Rules, ds)
	}
	r := f.Rules[1]
	var items []string
	for _, it := range r.Items {
		items = append(items, it.Text)
	}
	if got := strings.Join(items, "|"); got != `10.0.0.0/8|[fe80::1]|iqn\.1993-08\.org\.debian:.*|a b` {
		t.Fatalf("items %q", got)
	}
	if r.Pos.Line != 3 || r.Items[1].Pos.Column != 39 {
		t.Fatalf("pos %v %v", r.Pos, r.Items[1].Pos)
	}
	if len(ds) != 1 || ds[0].String() != `initiators.allow:5:1: warning: rule for "lonely" lists no initiators or addresses (it never matches)` {
		t.Fatalf("diags %v", ds)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"ALL ALL\n", "t 1.2.3.4/8, [::1]/64,iqn.*\n#c\n", "x ,,, \r\n[", "\xff ,\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fl, _ := Parse("fuzz", b)
		for _, r := range fl.Rules {
			if r.Target == nil {
				t.Fatal("rule without target")
			}
		}
	})
}

func TestBackslashIsNoContinuation(t *testing.T) {
	f, ds := Parse("a", []byte("ALL 10.0.0.1, \\\n10.0.0.2\n"))
	if len(f.Rules) != 2 || f.Rules[1].Target.Text != "10.0.0.2" {
		t.Fatalf("rules %+v", f.Rules)
	}
	if len(ds) < 1 || ds[0].String() != "a:1:15: warning: line continuation is not supported (IET never supported it): the backslash stays in the item and the next line is read on its own" {
		t.Fatalf("diagnostics %v", ds)
	}
}
