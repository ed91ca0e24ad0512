// Package admin is the management plane of the daemon: the unix-socket
// protocol between ietadm and ietd (one JSON request and one JSON reply per
// connection, peers checked with SO_PEERCRED), the meaning of every IET
// ietadm operation on the running engine, and the IET /proc/net/iet
// volume/session listings.
//
// Errors carry IET's errno so ietadm exits with the same status codes as
// the original (EINVAL 234, ENOENT 254, EEXIST 239, EBUSY 240, EPERM 255).
package admin
