package acl_test

import (
	"net/netip"
	"testing"

	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/acl"
	"github.com/ietgo/ietd/target/config"
)

const (
	tA = "iqn.2001-04.com.example:a"
	tB = "iqn.2001-04.com.example:b"
)

func aclFile(t *testing.T, name, text string, initiators bool) *config.ACLFile {
	t.Helper()
	if text == "-" {
		return nil
	}
	var ds config.Diagnostics
	f := compat.ParseACL(name, []byte(text), initiators, &ds)
	if ds.HasErrors() {
		t.Fatalf("%s: %v", name, ds)
	}
	return f
}

func TestInitiatorAllowed(t *testing.T) {
	const linux = "iqn.1993-08.org.debian:01:abc"
	cases := []struct {
		name        string
		allow, deny string
		target      string
		initiator   string
		peer        string
		want        bool
	}{
		{"no files", "-", "-", tA, linux, "10.0.0.1", true},
		{"ALL ALL", "ALL ALL\n", "-", tA, linux, "10.0.0.1", true},
		{"empty allow denies", "", "-", tA, linux, "10.0.0.1", false},
		{"other target only: implicit deny", tB + " ALL\n", "-", tA, linux, "10.0.0.1", false},
		{"target name case-insensitive", "IQN.2001-04.COM.EXAMPLE:A ALL\n", "-", tA, linux, "10.0.0.1", true},
		{"exact address", tA + " 10.0.0.1\n", "-", tA, linux, "10.0.0.1", true},
		{"exact address other", tA + " 10.0.0.1\n", "-", tA, linux, "10.0.0.2", false},
		{"cidr", tA + " 192.168.0.0/16\n", "-", tA, linux, "192.168.7.9", true},
		{"cidr outside", tA + " 192.168.0.0/16\n", "-", tA, linux, "192.169.0.1", false},
		{"/32 works", tA + " 10.0.0.1/32\n", "-", tA, linux, "10.0.0.1", true},
		{"/0 matches all v4", tA + " 0.0.0.0/0\n", "-", tA, linux, "8.8.8.8", true},
		{"v4 item vs v6 peer", tA + " 0.0.0.0/0\n", "-", tA, linux, "2001:db8::1", false},
		{"v4-mapped peer", tA + " 10.0.0.0/8\n", "-", tA, linux, "::ffff:10.1.2.3", true},
		{"ipv6 prefix inside brackets", tA + " [2001:db8::/32]\n", "-", tA, linux, "2001:db8::5", true},
		{"ipv6 bracket prefix", tA + " [2001:db8::]/32\n", "-", tA, linux, "2001:db8::5", true},
		{"ipv6 exact", tA + " [fe80::1]\n", "-", tA, linux, "fe80::1", true},
		{"regex", tA + " iqn\\.1993-08\\.org\\.debian:.*\n", "-", tA, linux, "10.0.0.1", true},
		{"regex anchored", tA + " debian\n", "-", tA, linux, "10.0.0.1", false},
		{"regex case-sensitive", tA + " IQN.1993-08.org.debian:01:abc\n", "-", tA, linux, "10.0.0.1", false},
		{"item list", tA + " 10.9.9.9, iqn.2000-01.x:y ,1.2.3.4\n", "-", tA, linux, "1.2.3.4", true},
		{"first applicable line decides", tA + " 10.0.0.1\nALL ALL\n", "-", tA, linux, "10.0.0.2", false},
		{"ALL line first", "ALL 10.0.0.1\n" + tA + " ALL\n", "-", tA, linux, "10.0.0.2", false},
		{"comment skipped", "# " + tA + " 10.0.0.1\nALL ALL\n", "-", tA, linux, "10.0.0.2", true},
		{"legacy: deny all, allow one", tA + " 10.0.0.1\n", "ALL ALL\n", tA, linux, "10.0.0.1", true},
		{"legacy: deny all, others denied", tA + " 10.0.0.1\n", "ALL ALL\n", tA, linux, "10.0.0.2", false},
		{"legacy: not mentioned allowed", tB + " 10.0.0.1\n", tB + " ALL\n", tA, linux, "10.0.0.2", true},
		{"legacy: allow absent, deny matches", "-", "ALL 10.0.0.0/8\n", tA, linux, "10.0.0.2", false},
		{"legacy: allow absent, deny misses", "-", "ALL 10.0.0.0/8\n", tA, linux, "11.0.0.2", true},
		{"host name localhost", tA + " localhost\n", "-", tA, linux, "127.0.0.1", true},
		{"host name as initiator name", tA + " initiator1\n", "-", tA, "initiator1", "10.0.0.1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := &config.Config{
				InitiatorsAllow: aclFile(t, "initiators.allow", c.allow, true),
				InitiatorsDeny:  aclFile(t, "initiators.deny", c.deny, true),
			}
			ta, tb := config.NewTarget(1, tA), config.NewTarget(2, tB)
			cfg.Targets = []*config.Target{ta, tb}
			tg := cfg.TargetByName(c.target)
			got, why := acl.InitiatorAllowed(cfg, tg, c.initiator, netip.MustParseAddr(c.peer))
			if got != c.want {
				t.Fatalf("allowed = %v (%s), want %v", got, why, c.want)
			}
			if !got && why == "" {
				t.Fatal("denied without a reason")
			}
		})
	}
}

func TestNetBSDNetmasks(t *testing.T) {
	cases := []struct {
		mask, peer string
		want       bool
	}{
		{"10.4/16", "10.4.0.29", true},
		{"10.4/16", "10.5.0.29", false},
		{"10.4/0", "1.2.3.4", true},
		{"10.4", "10.4.0.19", false},
		{"10.4", "10.4.0.0", true},
		{"10.4.3/8", "10.4.3.7", true},
		{"10.4.3/24", "10.4.3.7", true},
		{"none", "0.0.0.0", true},
		{"none", "10.0.0.1", false},
		{"any", "192.0.2.1", true},
		// NetBSD let every IPv6 peer through; an IPv4 mask admits none
		// (except IPv4-mapped ones), "any" and /0 admit all.
		{"10.4/16", "2001:db8::1", false},
		{"10.4/16", "::ffff:10.4.0.29", true},
		{"10.4/16", "::ffff:10.5.0.29", false},
		{"none", "::", false},
		{"any", "2001:db8::1", true},
		{"all", "::1", true},
		{"0/0", "fe80::1", true},
		{"0.0.0.0/0", "2001:db8::1", true},
		{"garbage/0", "2001:db8::1", true},
		{"127.0.0.1", "::1", false},
		{"2001:db8::/32", "2001:db8::1", true},
		{"2001:db8::/32", "2001:db9::1", false},
		{"2001:db8::/32", "10.0.0.1", false},
	}
	for _, c := range cases {
		nm, err := compat.ParseNetmask(c.mask)
		if err != nil {
			t.Fatalf("%s: %v", c.mask, err)
		}
		tg := config.NewTarget(1, "iqn.1994-04.org.netbsd.iscsi-target:target0")
		tg.AllowedNets = []config.Netmask{nm}
		got, why := acl.InitiatorAllowed(&config.Config{Targets: []*config.Target{tg}}, tg, "iqn.x", netip.MustParseAddr(c.peer))
		if got != c.want {
			t.Errorf("mask %s (%s) peer %s: %v (%s), want %v", c.mask, nm.CIDR, c.peer, got, why, c.want)
		}
	}
}

func TestPortalAllowed(t *testing.T) {
	cases := []struct {
		file, local string
		target      string
		want        bool
	}{
		{"-", "10.0.0.1", tA, true},
		{"ALL ALL\n", "10.0.0.1", tA, true},
		{tA + " 192.168.1.0/24\n", "192.168.1.10", tA, true},
		{tA + " 192.168.1.0/24\n", "10.0.0.1", tA, false},
		{tA + " 192.168.1.0/24\n", "10.0.0.1", tB, false}, // present file, no rule: no match
		{tA + " [::1]\n", "::1", tA, true},
	}
	for i, c := range cases {
		cfg := &config.Config{TargetsAllow: aclFile(t, "targets.allow", c.file, false)}
		cfg.Targets = []*config.Target{config.NewTarget(1, tA), config.NewTarget(2, tB)}
		if got := acl.PortalAllowed(cfg, cfg.TargetByName(c.target), netip.MustParseAddr(c.local)); got != c.want {
			t.Errorf("case %d (%q, %s): %v, want %v", i, c.file, c.local, got, c.want)
		}
	}
}

func TestCompileInitiatorRegex(t *testing.T) {
	cases := []struct {
		bre, s string
		want   bool
	}{
		{`iqn\.2000-01\.com\.x:.*`, "iqn.2000-01.com.x:host1", true},
		{`iqn.2000`, "iqnX2000", true},
		{`a+`, "a+", true},
		{`a+`, "aa", false},
		{`a\+`, "aaa", true},
		{`\(ab\)*`, "abab", true},
		{`x`, "xx", false},
	}
	for _, c := range cases {
		re, err := acl.CompileInitiatorRegex(c.bre)
		if err != nil {
			t.Fatalf("%s: %v", c.bre, err)
		}
		if got := re.MatchString(c.s); got != c.want {
			t.Errorf("%s ~ %s = %v, want %v", c.bre, c.s, got, c.want)
		}
	}
}
