package config

import (
	"slices"
	"testing"
)

func TestParseYesNo(t *testing.T) {
	for _, c := range []struct {
		in               string
		value, exact, ok bool
	}{
		{"Yes", true, true, true}, {"No", false, true, true},
		{"yes", true, false, true}, {"NO", false, false, true},
		{"y", false, false, false}, {"", false, false, false}, {"1", false, false, false},
	} {
		v, e, ok := ParseYesNo(c.in)
		if v != c.value || e != c.exact || ok != c.ok {
			t.Errorf("ParseYesNo(%q) = %v %v %v, want %v %v %v", c.in, v, e, ok, c.value, c.exact, c.ok)
		}
	}
}

func TestParseDigests(t *testing.T) {
	for _, c := range []struct {
		in            string
		list, inexact []string
		bad           string
	}{
		{"None", []string{"None"}, nil, ""},
		{"CRC32C", []string{"CRC32C"}, nil, ""},
		{"CRC32C,None", []string{"CRC32C", "None"}, nil, ""},
		{"None,crc32c", []string{"None", "CRC32C"}, []string{"crc32c"}, ""},
		{"NONE", []string{"None"}, []string{"NONE"}, ""},
		{"None,md5", nil, nil, "md5"},
		{"", nil, nil, ""},
	} {
		list, inexact, bad, ok := ParseDigests(c.in)
		if !slices.Equal(list, c.list) || !slices.Equal(inexact, c.inexact) || bad != c.bad || ok != (c.list != nil) {
			t.Errorf("ParseDigests(%q) = %q %q %q %v, want %q %q %q", c.in, list, inexact, bad, ok, c.list, c.inexact, c.bad)
		}
	}
}

func TestDigestOffer(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"None"}, []string{"None"}},
		{[]string{"CRC32C"}, []string{"CRC32C", "None"}},
		{[]string{"CRC32C", "None"}, []string{"CRC32C", "None"}},
		{[]string{"None", "CRC32C"}, []string{"None", "CRC32C"}},
	} {
		in := slices.Clone(c.in)
		if got := DigestOffer(in); !slices.Equal(got, c.want) || !slices.Equal(in, c.in) {
			t.Errorf("DigestOffer(%q) = %q (input now %q), want %q", c.in, got, in, c.want)
		}
	}
}
