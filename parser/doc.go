// Package parser is the root of the configuration grammars. Each dialect has
// its own package, built with participle/v2 and producing a syntax tree with
// exact positions (file:line:col):
//
//   - parser/ietconf: IET's ietd.conf
//   - parser/ietacl: IET's initiators.allow, initiators.deny, targets.allow
//   - parser/netbsd: NetBSD iscsi-target's targets and auths files
//
// The parsers check syntax only; package compat gives the trees their
// meaning (defaults, ranges, cross references) and lowers them into the one
// model of target/config.
package parser
