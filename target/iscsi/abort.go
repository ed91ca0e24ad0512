package iscsi

import (
	"github.com/ietgo/ietd/target/scsi"
)

// taskAborter is the transport side of scsi.TaskAborter: it lets the SCSI
// layer abort the commands other sessions have in flight (PERSISTENT
// RESERVE OUT with PREEMPT AND ABORT).
type taskAborter struct{ srv *Server }

// AbortTasks aborts the tasks of the sessions of nexuses on LUN lun,
// except keep, without a response (TAS=0), and waits until the ones that
// were executing have returned from the device.
func (a taskAborter) AbortTasks(lun uint64, nexuses []*scsi.Nexus, keep *scsi.Command) {
	want := make(map[*scsi.Nexus]bool, len(nexuses))
	for _, n := range nexuses {
		want[n] = true
	}
	a.srv.mu.Lock()
	var sessions []*session
	for _, ss := range a.srv.sessions {
		if ss.nexus != nil && want[ss.nexus] {
			sessions = append(sessions, ss)
		}
	}
	a.srv.mu.Unlock()
	// Two PREEMPT AND ABORTs of one nexus may abort each other: neither
	// waits for a command that is itself waiting here, or both would
	// wait for ever. (Registered before the scan: of two that run at
	// once, at least one sees the other.)
	a.srv.preempting.Store(keep, true)
	defer a.srv.preempting.Delete(keep)
	var wait []*task
	for _, ss := range sessions {
		ss.mu.Lock()
		var victims []*task
		for _, t := range ss.tasks {
			if t.lun != lun || &t.cmd == keep {
				continue
			}
			victims = append(victims, t)
		}
		ss.mu.Unlock()
		// Not under ss.mu: abort may wake a worker waiting for budget
		// (memBudget.mu comes before session.mu, see LOCKS.md). A write
		// still waiting for its Data-Out, or held for its CmdSN turn,
		// ends now (abortTask), giving back its buffer and budget.
		for _, t := range victims {
			ss.abortTask(t)
			if _, waiting := a.srv.preempting.Load(&t.cmd); t.executing.Load() && !waiting {
				wait = append(wait, t)
			}
		}
	}
	// No time limit: the preempting nexus's next write must not be
	// overtaken by a preempted one still in the store.
	waitTasksEnded(nil, wait, a.srv.log, "PREEMPT AND ABORT")
}
