// Package scsi emulates SBC-3/SPC-4 direct-access logical units over backing
// stores: CDB decoding, sense data, unit attentions, reservations and
// persistent reservations, and the per-target LUN set.
package scsi
