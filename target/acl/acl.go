// Package acl evaluates access control: IET's initiators.allow,
// initiators.deny and targets.allow, and NetBSD per-target netmasks.
//
// STUB: the config owner replaces this file.
package acl

import (
	"net/netip"

	"github.com/ietgo/ietd/target/config"
)

// InitiatorAllowed reports whether an initiator (name and peer address)
// may log in to / discover target t, and the reason when it may not.
func InitiatorAllowed(cfg *config.Config, t *config.Target, initiatorName string, peer netip.Addr) (bool, string) {
	return true, ""
}

// PortalAllowed reports whether target t may be reached through (and be
// advertised on) the local portal address (targets.allow).
func PortalAllowed(cfg *config.Config, t *config.Target, local netip.Addr) bool { return true }
