// Package compat gives each config dialect its meaning: it reads IET and
// NetBSD files (through the grammars in parser/), lowers them into the one
// model of target/config with defaults, ranges and cross-reference checks,
// renders the model back as ietd.conf, and migrates NetBSD configs.
//
// # IET (ietd.conf)
//
// Keywords are case-insensitive; targets get TIDs 1, 2, ... in file order;
// global (before the first Target) IncomingUser/OutgoingUser lines are the
// discovery accounts; session and target keys and Lun lines outside a
// Target are ignored with a warning (IET ignored them silently and
// started); unknown keywords are warnings. Out-of-range numbers are clamped to the nearest bound with a
// warning (IET clamps to the minimum silently). The 0.4.x Lun form
// "Lun 0 /dev/sdb fileio" is accepted with a warning. Values the engine
// does not negotiate (ErrorRecoveryLevel > 0, DataPDUInOrder and
// DataSequenceInOrder No, OFMarker and IFMarker Yes) are warned and the
// model holds what is offered (0, Yes, No), as IET's kernel forced them.
//
// # Errors
//
// The model always leaves out the items with errors, and a diagnostic
// (Diagnostic.LeftOut) says what is left out: a Lun line with errors drops
// that LUN, a failed Target line its whole stanza (accounts included: IET
// made them discovery accounts), a bad value its line (the default stays),
// an access-control item with an error never matches, a NetBSD target
// line with errors (or whose extent or device had errors) that target. A
// target whose IncomingUser line is broken (a user without a secret) is
// left out, since serving it without the account would open it; a bare
// IncomingUser or OutgoingUser line (no user, no secret) is only a
// warning and adds no account, as in IET. Load is the strict reading (--check,
// SIGHUP: any error refuses the file); LoadForStart serves the rest, as IET
// and NetBSD did, and refuses only a NetBSD file with no target left.
//
// Access-control files are read from LoadOptions.ACLDir, else from
// /etc/iet, falling back to /etc only when a file does not exist there.
//
// # Lun extensions (ours)
//
// Besides IET's Path, Type, ScsiId, ScsiSN, IOMode, BlockSize, Blocks and
// Sectors, a Lun line accepts:
//
//	Vendor=STR        INQUIRY vendor (<= 8 characters)
//	Product=STR       INQUIRY product (<= 16 characters)
//	Revision=STR      INQUIRY revision (<= 4 characters)
//	ScsiVersion=N     INQUIRY version byte (5 = SPC-3, 6 = SPC-4)
//	Removable=Yes     report removable medium: START STOP UNIT ejects and
//	                  loads, PREVENT ALLOW MEDIUM REMOVAL applies
//	Identity=iet|netbsd  whose INQUIRY defaults (vendor, product, NAA
//	                  designator) the LUN reports; ietd-migrate writes netbsd
//	NAA=Yes|No        an NAA designator in VPD page 0x83 besides the T10 one
//	                  (default: the identity's, IET no, NetBSD yes)
//	Offset=BYTES      the LUN starts BYTES into Path
//	Size=BYTES        the LUN is BYTES long (default: up to the end)
//	Create=Yes        create a missing file (sparse, extended to Offset+Size)
//	Store=EXPR        a composed store instead of Path=
//
// BYTES is a number with an optional K, M, G or T suffix (powers of 1024).
// EXPR is:
//
//	EXPR := raid0(EXPR;EXPR...)    concatenation, in order
//	      | raid1(EXPR;EXPR...)    mirror (at least two members)
//	      | PATH[@OFFSET][+SIZE]   a file window
//
// for example Store=raid1(/dev/sdb@0+1G;/dev/sdc@0+1G). A PATH inside
// Store= holding one of ; ( ) @ + is written in double quotes
// (Store=raid0("/dev/a+b";/dev/c)); no PATH holds a ','.
//
// # NetBSD (targets, auths)
//
// Targets are named BASE:NAME unless written NAME=IQN, numbered in file
// order (TID = index + 1), and expose one LUN 0 (IOMode wb, or ro for
// read-only targets; files of read-write targets are created when missing).
// The netmask becomes Target.AllowedNets. Offsets take no unit (as NetBSD);
// lengths take one unit letter (k, m, g, t); unknown units, fractions
// without unit and sizes above 2^63-1 are errors where NetBSD read the
// digits as bytes or wrapped; "1.5GB" is 1.5 GiB (NetBSD: 1 byte); "size"
// means up to the end of the file. CHAP users of the auths file become
// incoming accounts of every target with Auth.Optional set: as in NetBSD,
// CHAP is used when the initiator offers it and logins without CHAP still
// work (a migration to ietd.conf makes it mandatory, and says so).
//
// MigrateNetBSD turns such a model into ietd.conf and initiators.allow text
// and notes what changes.
package compat
