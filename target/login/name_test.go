package login

import (
	"strings"
	"testing"
)

func TestCheckISCSIName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"iqn.1993-08.org.debian:01:a1b2c3", true},
		{"eui.02004567A425678D", true},
		{"iqn.2001-04.com.example:ünïcode", true},
		{strings.Repeat("a", 223), true},
		{strings.Repeat("a", 224), false},
		{strings.Repeat("a", 4000), false},
		{"iqn.bad\xff\xfe", false},
		{"iqn.with space", false},
		{"iqn.ctl\x01", false},
	} {
		if got := checkISCSIName(tc.name) == ""; got != tc.ok {
			t.Errorf("checkISCSIName(%.40q) valid=%v, want %v", tc.name, got, tc.ok)
		}
	}
}
