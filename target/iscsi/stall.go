package iscsi

import (
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// initiatorStallLimit is how long an initiator may leave its connection
// stalled while its session holds more than its share of the data budget
// and a command of another session waits for budget (as long, at least):
// then the connection is dropped (Server.watchBudget).
//
// Stalled means the initiator stopped doing what only it can do for the
// commands holding the budget: reading its responses (the writer sent
// nothing of its batch), sending the Data-Out its R2Ts (or unsolicited
// data) call for (none for any task came), or sending the command that
// closes a CmdSN gap (held commands wait). A backing store that is slow
// is not an initiator stall; a slow link still moves bytes.
//
// Under ErrorRecoveryLevel 0, recovery is session recovery (RFC 7143
// 7.1.5): the target drops the connection, its tasks end (their budget
// comes back, no Data-In is left out of a response that is sent), and the
// initiator logs in again and retries them. LIO drops the connection the
// same way when solicited Data-Out does not come in time, whatever the
// load; here only while others need the memory.
const initiatorStallLimit = time.Second

// watchTick is how often the watcher looks while commands wait.
const watchTick = initiatorStallLimit / 5

// watchBudget runs while a command waits for budget and several sessions
// use it (started by memBudget.enqueueLocked): it drops the connection of
// every session that hogs the budget (memBudget.hogging) while its
// initiator stalls it.
func (s *Server) watchBudget() {
	tick := time.NewTicker(watchTick)
	defer tick.Stop()
	idle := 0
	for range tick.C {
		if !s.mem.waitingNow() {
			// Keep going a little: waits come and go at high rates.
			if idle++; idle >= 5 && s.mem.stopWatching() {
				return
			}
			continue
		}
		idle = 0
		now := time.Now().UnixNano()
		cutoff := now - int64(initiatorStallLimit)
		for _, ss := range s.liveSessions() {
			if !s.mem.hogging(ss, cutoff) {
				continue
			}
			c := ss.connection()
			if c == nil || c.isClosing() {
				continue
			}
			if why := ss.initiatorStall(c, now); why != "" {
				s.log.WithFields(logrus.Fields{"initiator": ss.initiator, "tsih": ss.tsih,
					"peer": c.peer.String(), "held": s.mem.heldBy(ss)}).Warnf(
					"dropping the connection: it holds more than its share of the data budget (MaxDataInFlight %d) while other sessions wait, and %s", s.mem.limit, why)
				c.close()
				s.mem.wakeReader(ss)
			}
		}
	}
}

// initiatorStall says how the initiator has stalled c for at least
// initiatorStallLimit ("" if it has not). now is unix ns.
func (ss *session) initiatorStall(c *conn, now int64) string {
	limit := int64(initiatorStallLimit)
	if at := c.wbusy.Load(); at != 0 && now-at >= limit {
		return fmt.Sprintf("the initiator has read none of its responses for %v", time.Duration(now-at).Round(time.Millisecond))
	}
	lastData := c.lastDataOut.Load()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if now-lastData >= limit {
		for _, t := range ss.tasks {
			if at := t.dataOutWait.Load(); at != 0 && now-at >= limit && t.awaiting.Load() && !t.dispatched.Load() {
				return fmt.Sprintf("the initiator has sent no Data-Out for %v (ITT %#x waits for it)",
					time.Duration(now-max(at, lastData)).Round(time.Millisecond), t.itt)
			}
		}
	}
	if ss.heldSince != 0 && now-ss.heldSince >= limit {
		return fmt.Sprintf("commands have waited %v for the initiator to fill a CmdSN gap (ExpCmdSN %d)",
			time.Duration(now-ss.heldSince).Round(time.Millisecond), ss.expCmdSN.Load())
	}
	return ""
}

// liveSessions lists the normal sessions.
func (s *Server) liveSessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		out = append(out, ss)
	}
	return out
}
