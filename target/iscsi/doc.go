// Package iscsi is the iSCSI transport (RFC 7143): listeners, login,
// discovery, sessions and connections, and the Server that ties them to the
// SCSI layer.
package iscsi
