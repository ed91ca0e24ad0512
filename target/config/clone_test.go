package config

import (
	"reflect"
	"testing"
)

func TestCloneIsDeep(t *testing.T) {
	c := &Config{Dialect: DialectNetBSD, Source: "/etc/iscsi/targets"}
	tg := NewTarget(1, "iqn.2001-04.com.example:a")
	tg.LUNs = []*LUN{{Number: 0, Type: "fileio", IOMode: "wb", Store: &Store{Kind: StoreMirror,
		Members: []*Store{{Kind: StoreFile, Path: "/a", Size: 1 << 20}, {Kind: StoreFile, Path: "/b", Offset: 512, Size: 1 << 20}}}}}
	tg.Auth.Outgoing = &Account{User: "u", Secret: "s"}
	tg.AllowedNets = []Netmask{{Text: "10.4/16", CIDR: "10.4.0.0/16"}}
	c.Targets = append(c.Targets, tg)
	c.InitiatorsAllow = &ACLFile{Path: "/etc/iet/initiators.allow", Rules: []ACLRule{{Target: "ALL", Items: []ACLItem{{Kind: ACLRegex, Text: "iqn.*"}}}}}

	d := c.Clone()
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("clone differs:\n%+v\n%+v", c, d)
	}
	d.Targets[0].LUNs[0].Store.Members[1].Path = "/changed"
	d.Targets[0].Auth.Outgoing.Secret = "x"
	if c.Targets[0].LUNs[0].Store.Members[1].Path != "/b" || c.Targets[0].Auth.Outgoing.Secret != "s" {
		t.Fatal("clone shares memory with the original")
	}
	if got := c.NextTID(); got != 2 {
		t.Fatalf("NextTID = %d, want 2", got)
	}
}
