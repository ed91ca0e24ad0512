package config

import (
	"fmt"
	"slices"
	"strings"
)

// The values of IET's boolean and digest keys, read one way by the
// ietd.conf loader and by ietadm --op update. IET compared them with
// strcmp (exact case) and refused the rest; any case is accepted here,
// with a warning, since a config that says "yes" means Yes.

// ParseYesNo reads a boolean key's value: Yes or No in any case. exact
// reports whether it was written as IET required.
func ParseYesNo(s string) (value, exact, ok bool) {
	switch strings.ToLower(s) {
	case "yes":
		return true, s == "Yes", true
	case "no":
		return false, s == "No", true
	}
	return false, false, false
}

// YesNoCaseNote is the warning for a boolean value not written Yes or No.
func YesNoCaseNote(key, value string) string {
	return fmt.Sprintf("%s value %q: IET only accepts Yes or No (exact case); accepted", key, value)
}

// ParseDigests reads a HeaderDigest or DataDigest list ("None",
// "CRC32C", "CRC32C,None", items in any case) into the list as written,
// in IET's case (what ietadm --op show prints back); DigestOffer is what
// the target then negotiates. inexact are the items not written as IET
// required; bad is the first item that is neither (ok is then false).
func ParseDigests(value string) (list, inexact []string, bad string, ok bool) {
	for _, item := range strings.Split(value, ",") {
		switch {
		case item == "None" || item == "CRC32C":
			list = append(list, item)
		case strings.EqualFold(item, "None"):
			inexact = append(inexact, item)
			list = append(list, "None")
		case strings.EqualFold(item, "CRC32C"):
			inexact = append(inexact, item)
			list = append(list, "CRC32C")
		default:
			return nil, nil, item, false
		}
	}
	return list, inexact, "", true
}

// DigestOffer is the list a target with digest setting list accepts, in
// its order of preference: CRC32C alone also allows None, as IET
// negotiated CRC32C when both sides allow it and None otherwise (so
// "HeaderDigest CRC32C" never refused an initiator offering only None).
func DigestOffer(list []string) []string {
	if slices.Contains(list, "CRC32C") && !slices.Contains(list, "None") {
		return append(slices.Clip(list), "None")
	}
	return list
}

// DigestCaseNote is the warning for a digest item not written None or
// CRC32C.
func DigestCaseNote(key, item string) string {
	return fmt.Sprintf("%s value %q: IET only accepts None or CRC32C (exact case); accepted", key, item)
}
