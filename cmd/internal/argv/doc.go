// Package argv rewrites getopt-style command lines (clustered short
// options "-fD", attached values "-d1", "-c/etc/ietd.conf") into the
// separate words the urfave/cli parser understands, so that the command
// lines written for IET's ietd and NetBSD's iscsi-target keep working.
package argv
