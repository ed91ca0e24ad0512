package scsi

import (
	"context"
	"errors"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// Options configure a Target.
type Options struct {
	Log *logrus.Entry
	// StateDir is where persistent state (APTPL reservations) is kept; ""
	// disables persistence.
	StateDir string
	// Dialect selects identity defaults (IET vs NetBSD INQUIRY data).
	Dialect config.Dialect
}

// Target is the set of logical units of one iSCSI target. It is safe for
// concurrent use by every session of the target.
//
// STUB: the SCSI package owner replaces this file.
type Target struct{}

// NewTarget opens every LUN's backing store and builds the device set.
func NewTarget(cfg *config.Target, opts Options) (*Target, error) {
	return nil, errors.New("scsi: not implemented")
}

// Execute runs one command to completion. ctx is cancelled when the task is
// aborted.
func (t *Target) Execute(ctx context.Context, cmd *Command) Result {
	return Result{Status: StatusCheckCondition, XferLen: -1}
}

// TaskManagement performs the SCSI side of a TMF (unit attentions,
// reservation release) and returns the iSCSI TMF response code
// (0 complete, 1 task does not exist, 2 LUN does not exist, 5 not supported).
func (t *Target) TaskManagement(fn TMF, lun uint64, nexus *Nexus) byte { return 5 }

// NexusAttach registers a new I_T nexus (a new session): it gets a
// power-on/reset unit attention on every LUN.
func (t *Target) NexusAttach(n *Nexus) {}

// NexusDetach forgets a nexus (session gone): RESERVE(6/10) reservations it
// held are released; persistent reservations stay.
func (t *Target) NexusDetach(n *Nexus) {}

// Reconfigure applies a changed target config (LUNs added/removed/resized,
// identity changes) and queues the matching unit attentions.
func (t *Target) Reconfigure(cfg *config.Target) error { return errors.New("scsi: not implemented") }

// Close closes every backing store.
func (t *Target) Close() error { return nil }
