// Package iscsi is the iSCSI transport (RFC 7143): listeners, login,
// discovery, sessions and connections, and the Server that ties them to the
// SCSI layer.
//
// Each connection has one long-lived reader (the serve goroutine) and one
// writer goroutine. The reader runs the login (package login), then reads
// PDUs: SCSI commands are checked against the CmdSN window (MaxCmdSN =
// ExpCmdSN + QueuedCommands - 1, a slot reopening as each command ends),
// write data (immediate, unsolicited up to FirstBurstLength, then R2T
// solicited) is read straight into the command's buffer at its
// BufferOffset, and complete commands go to a bounded set of per-session
// workers (QueuedCommands goroutines) that call the Device, in CmdSN
// order: a command beyond a CmdSN gap is held until the gap fills, and a
// task-set TMF beyond one waits for the commands below it. Immediate
// commands (outside the window) are bounded per session. Responses are
// queued to the writer, which owns StatSN, splits read data into Data-In
// PDUs at the initiator's MaxRecvDataSegmentLength (capped by
// MaxXmitDataSegmentLength) in sequences of at most MaxBurstLength, with
// the status in the last one when there is no sense data, and sends each
// batch of queued responses with one writev.
//
// Only ErrorRecoveryLevel 0 and one connection per session are
// implemented. Lock order: LOCKS.md.
package iscsi
