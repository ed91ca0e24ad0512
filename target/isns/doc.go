// Package isns speaks the Internet Storage Name Service protocol (iSNSP,
// RFC 4171) as an iSCSI target needs it: the PDU codec (header, TLV
// attributes, the DevAttrReg, DevAttrQry, DevDereg and SCN messages and
// their responses), a Registrar that keeps one Network Entity with its
// portals and targets registered at a server (re-registered on changes,
// refreshed before the registration period ends, deregistered at stop),
// and an Access cache answering which initiators the server's discovery
// domains let see a target (IET's iSNSAccessControl).
//
// Nothing here keeps global state; every network exchange runs with a
// timeout, from the caller's goroutine or the Registrar's own, so a server
// that is down or slow never blocks the iSCSI service.
package isns
