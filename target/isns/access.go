package isns

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Access answers whether the iSNS server lets an initiator see a target
// (IET's iSNSAccessControl): a DevAttrQry with the target as source for
// the initiator nodes it may see, cached per target for TTL. A stale
// answer is refreshed on demand, one query per target at a time, waited
// for at most Wait (not at all for TTL after the server failed or did not
// answer in time); when the refresh fails the previous answer stays in
// force (as IET kept the list its last query or SCN gave), and a target
// the server never answered for admits nobody (IET: an empty list
// refuses every login).
type Access struct {
	Client *Client
	Log    *logrus.Entry
	// TTL is how long an answer is used without asking again (default
	// 5s).
	TTL time.Duration
	// Wait bounds how long a login or SendTargets answer waits for a
	// query (default 3s; the query goes on in the background after).
	Wait time.Duration
	// Now is the clock (tests).
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*accessEntry
	logged  string // the server state last logged
	// slowUntil: the server failed or did not answer within Wait; until
	// then, nobody waits for a query (a SendTargets answer checking many
	// targets would otherwise wait Wait for each).
	slowUntil time.Time
}

type accessEntry struct {
	names    map[string]bool // lower-cased initiator names; nil: no answer yet
	at       time.Time
	inflight chan struct{}
}

// maxAccessEntries bounds the cache (targets are few; names of targets
// that no longer exist are dropped when it is full).
const maxAccessEntries = 4096

func (a *Access) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Access) ttl() time.Duration {
	if a.TTL > 0 {
		return a.TTL
	}
	return 5 * time.Second
}

// Allowed tells whether initiator may see target, and why not.
func (a *Access) Allowed(target, initiator string) (bool, string) {
	key := strings.ToLower(target)
	ttl, wait := a.ttl(), a.Wait
	if wait <= 0 {
		wait = 3 * time.Second
	}
	a.mu.Lock()
	if a.entries == nil {
		a.entries = map[string]*accessEntry{}
	}
	e := a.entries[key]
	if e == nil {
		if len(a.entries) >= maxAccessEntries {
			for k, x := range a.entries {
				if x.inflight == nil {
					delete(a.entries, k)
				}
			}
		}
		e = &accessEntry{}
		a.entries[key] = e
	}
	stale := e.names == nil || a.now().Sub(e.at) >= ttl
	if stale && e.inflight == nil {
		e.inflight = make(chan struct{})
		go a.refresh(target, e, e.inflight)
	}
	ch := e.inflight
	waitFor := stale && ch != nil && !a.now().Before(a.slowUntil)
	a.mu.Unlock()
	timedOut := false
	if waitFor {
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
			timedOut = true
		}
		t.Stop()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if timedOut {
		a.slowUntil = a.now().Add(ttl)
	}
	switch {
	case e.names == nil:
		return false, "iSNSAccessControl: no answer from the iSNS server about this target yet"
	case e.names[strings.ToLower(initiator)]:
		return true, ""
	}
	return false, "iSNSAccessControl: the iSNS server's discovery domains do not let the initiator see the target"
}

func (a *Access) refresh(target string, e *accessEntry, done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), a.Client.timeout())
	defer cancel()
	rsp, err := a.Client.Do(ctx, InitiatorsQuery(target))
	a.mu.Lock()
	defer a.mu.Unlock()
	defer close(done)
	e.inflight = nil
	log := a.Log
	if log == nil {
		log = discard()
	}
	log = log.WithField("isns", a.Client.Addr)
	if err != nil {
		state := err.Error()
		if _, ok := err.(Status); !ok {
			state = "unreachable"
		}
		a.slowUntil = a.now().Add(a.ttl())
		if a.logged != state {
			a.logged = state
			log.WithError(err).WithField("target", target).Warn("iSNSAccessControl: query failed: earlier answers stay in force; logins to targets without one are refused")
		} else {
			log.WithError(err).WithField("target", target).Debug("iSNSAccessControl: query failed")
		}
		return
	}
	if a.logged != "" && a.logged != "ok" {
		log.Info("iSNSAccessControl: the iSNS server answers again")
	}
	a.logged = "ok"
	a.slowUntil = time.Time{}
	names := map[string]bool{}
	for _, n := range Initiators(rsp) {
		names[strings.ToLower(n)] = true
	}
	e.names, e.at = names, a.now()
	log.WithFields(logrus.Fields{"target": target, "initiators": len(names)}).Debug("iSNSAccessControl: answer")
}
