// Package ietacl is the participle/v2 grammar of IET's access-control
// files: initiators.allow, initiators.deny and targets.allow.
//
// Each line is "<target-name|ALL> <item>[, <item>]...". A line whose first
// token starts with '#' is a comment. Items are split on commas and trimmed;
// an item may contain inner spaces (IET splits on ',' only). Classifying an
// item (ALL, address, CIDR, [IPv6], host name, initiator-name regex) is
// left to package compat; this package checks syntax only.
package ietacl
