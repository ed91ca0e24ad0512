// Package netbsd is the participle/v2 grammar of the NetBSD iscsi-target
// configuration: /etc/iscsi/targets (extent, device and target lines) and
// /etc/iscsi/auths (user:authtype:secret lines).
//
// The tokenizer follows the original conffile.c: fields are separated by
// runs of spaces/TABs in targets (by ':' in auths), a line whose first
// non-blank character is '#' is a comment, "\ " (targets) and "\:" (auths)
// escape a separator, any other backslash stays literal, and a backslash at
// the end of a line joins the next line. The line kind is chosen by the
// prefix of its first field (extent, device, target or lun), case-sensitive.
//
// Where the original is buggy this parser accepts what the user obviously
// meant and warns: a CR from a CRLF file is dropped, a trailing "# comment"
// on a device line is not taken as RAID members, "target0 rw extent0" (flags
// but no netmask) is read as flags + storage, an unescaped ':' in a secret is
// kept. Lines with too few fields are errors (the original read stale
// memory). Meaning (sizes, references) is given by package compat.
package netbsd
