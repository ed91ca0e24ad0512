// Package e2e holds only end-to-end tests of the real daemons and the
// helpers they need; it exports nothing and nothing imports it.
//
// The tests build (or take from $IETD_BIN_DIR) the ietd binary, start it on
// a free 127.0.0.1 port with a config written into a temporary directory,
// and talk to it through a small iSCSI initiator of their own (wire_test.go,
// client_test.go). That initiator is an independent implementation of the
// RFC 7143 framing, login (with and without CHAP MD5, one-way and mutual),
// SCSI READ/WRITE with immediate, unsolicited and solicited data, NOP-Out,
// Text/SendTargets and Logout: it deliberately does not import target/pdu
// or target/login, so that every test also cross-checks the real codec.
//
// What is covered (issue 7, reliability and security):
//
//   - hostile input (hostile_test.go): truncated and malformed PDUs, bad
//     lengths and digests, out-of-phase PDUs, login key floods, odd CHAP,
//     garbage SendTargets; after each the daemon is up, the offender got a
//     Reject or was closed, and an honest session doing verified I/O
//     alongside was not disturbed;
//   - stalled peers (stall_test.go): unfinished logins, initiators that stop
//     reading, silent connections; all are dropped and their descriptors
//     freed (counted in /proc/PID/fd);
//   - security (security_test.go): CHAP failures and replays, mandatory
//     CHAP, mutual CHAP, initiators.allow by name and address, read-only
//     LUNs;
//   - faults (fault_test.go): kill -9 during write-through and FUA writes
//     loses no acknowledged block, SIGHUP reload under I/O, ENOSPC;
//   - load (load_test.go): hundreds of concurrent connections and dozens
//     of sessions with verified I/O, bounded RSS, no starved session.
//     Tests whose names contain "Soak" run long only with IETD_SOAK=1
//     (make soak).
//
// Tests that need tools from the system (qemu-img, iscsi-ls) or root
// (tmpfs) skip with a message when those are missing.
package e2e
