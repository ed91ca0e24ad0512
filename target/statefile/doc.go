// Package statefile writes the daemon's small state files (persistent
// reservations with APTPL, RAID1 failure records) so that a crash leaves
// either the old file or the new one, and the new one has reached the
// disk when Write returns.
package statefile
