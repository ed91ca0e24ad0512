// Package compat gives each config dialect its meaning: it reads IET and
// NetBSD files (through the grammars in parser/), lowers them into the one
// model of target/config with defaults, ranges and cross-reference checks,
// renders the model back as ietd.conf, and migrates NetBSD configs.
//
// # IET (ietd.conf)
//
// Keywords are case-insensitive; targets get TIDs 1, 2, ... in file order;
// global (before the first Target) IncomingUser/OutgoingUser lines are the
// discovery accounts; session and target keys outside a Target are ignored
// with a warning, a Lun outside a Target is an error; unknown keywords are
// warnings. Out-of-range numbers are clamped to the nearest bound with a
// warning (IET clamps to the minimum silently). The 0.4.x Lun form
// "Lun 0 /dev/sdb fileio" is accepted with a warning.
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
// Store= cannot contain , ; ( ) @ or +.
//
// # NetBSD (targets, auths)
//
// Targets are named BASE:NAME unless written NAME=IQN, numbered in file
// order (TID = index + 1), and expose one LUN 0 (IOMode wb, or ro for
// read-only targets; files of read-write targets are created when missing).
// The netmask becomes Target.AllowedNets. Offsets take no unit (as NetBSD);
// lengths take one unit letter; "size" means up to the end of the file.
// CHAP users of the auths file become incoming accounts of every target
// (making CHAP mandatory, which NetBSD never did: a warning says so).
//
// MigrateNetBSD turns such a model into ietd.conf and initiators.allow text
// and notes what changes.
package compat
