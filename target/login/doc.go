// Package login is the sans-I/O iSCSI login engine (RFC 7143 sections 6,
// 12 and 13): text key=value parsing and encoding, negotiation of every
// login/operational key, stage transitions (CSG/NSG), and CHAP
// authentication.
//
// A Machine is driven by feeding it decoded Login Request fields (Step)
// and returns the Login Response to send; it never touches a socket, so
// the whole login is testable from transcripts (testdata/*.txt). Session
// admission (TSIH allocation, reinstatement, MaxSessions) is left to the
// caller through Env.Admit.
//
// Secrets never leave this package: they are not logged and not part of
// any error or transcript.
package login
