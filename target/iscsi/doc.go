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
// task-set TMF beyond one waits for the commands below it. Task
// attributes are kept per LUN, over every session (taskset.go): an
// ORDERED command waits for the older ones and holds back the newer, a
// HEAD OF QUEUE one starts at once. Immediate
// commands (outside the window) are bounded per session. Responses are
// queued to the writer, which owns StatSN, splits read data into Data-In
// PDUs at the initiator's MaxRecvDataSegmentLength (capped by
// MaxXmitDataSegmentLength) in sequences of at most MaxBurstLength, with
// the status in the last one when there is no sense data, and sends each
// batch of queued responses with one writev.
//
// Data buffers come from a server-wide budget (Options.MaxDataInFlight,
// budget.go): a command waits for room rather than allocating, except
// small ones (64 KiB) and a reader whose own writes await Data-Out. Each
// session is charged for its commands; while another session waits, a
// session at its fair share gets no more, and waiters are served neediest
// session first, writes deferred with their immediate data in before all
// (that memory comes back only through them). A session whose initiator
// stalls its connection (reads no responses, sends no Data-Out its R2Ts
// asked for, or leaves a CmdSN gap open) for a second while it holds more
// than its share and another session's command has waited as long has
// its connection dropped (stall.go): under ErrorRecoveryLevel 0 that is
// session recovery, its commands end and the initiator retries them; no
// response goes out with part of its data. A batch the writer cannot get
// onto the wire within 30 s ends the connection in any case.
//
// Only ErrorRecoveryLevel 0 and one connection per session are
// implemented. Lock order: LOCKS.md.
package iscsi
