// Package service holds what the daemon mains share: logging set-up
// (stderr in the foreground, syslog when detached, journald-friendly under
// systemd), config loading through compat, LUN parameter parsing for
// ietadm, and the detach/run sequence.
package service
