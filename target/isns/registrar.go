package isns

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Registrar keeps one Network Entity registered at an iSNS server from a
// goroutine of its own: Set gives what should be registered (never
// blocks), the goroutine registers it, deregisters nodes that went
// away, refreshes the registration before the period the server answered
// ends (a full re-registration, which also recovers from a server that
// restarted and forgot us), retries failures with backoff, and
// deregisters the entity on Stop.
type Registrar struct {
	Client *Client
	Log    *logrus.Entry
	EID    string
	// Period is the registration period asked for (default 30s, IET's).
	Period time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after a failure
	// (defaults 1s and 60s).
	MinBackoff, MaxBackoff time.Duration
	// StopTimeout bounds the deregistration on Stop (default 3s).
	StopTimeout time.Duration
	// Synced, when set, is called after each attempt (tests).
	Synced func(err error)

	mu     sync.Mutex
	want   Entity
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Set replaces what should be registered: the portals (an unspecified
// address stands for the local address the server is reached from, as
// IET registered) and the target nodes. It returns at once.
func (r *Registrar) Set(portals []netip.AddrPort, nodes []Node) {
	r.mu.Lock()
	r.want.Portals = slices.Clone(portals)
	r.want.Nodes = slices.Clone(nodes)
	kick := r.kick
	r.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// Start runs the registration goroutine until ctx ends or Stop.
func (r *Registrar) Start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.kick = make(chan struct{}, 1)
	r.kick <- struct{}{}
	r.cancel, r.done = cancel, make(chan struct{})
	kick, done := r.kick, r.done
	r.mu.Unlock()
	go func() {
		defer close(done)
		r.run(ctx, kick)
	}()
}

// Stop ends the goroutine after it deregistered (bounded by
// StopTimeout).
func (r *Registrar) Stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (r *Registrar) log() *logrus.Entry {
	if r.Log != nil {
		return r.Log.WithField("isns", r.Client.Addr)
	}
	return discard().WithField("isns", r.Client.Addr)
}

func (r *Registrar) run(ctx context.Context, kick <-chan struct{}) {
	log := r.log()
	minB, maxB := r.MinBackoff, r.MaxBackoff
	if minB <= 0 {
		minB = time.Second
	}
	if maxB < minB {
		maxB = max(60*time.Second, minB)
	}
	backoff := minB
	var have *Entity // what the server holds from us, as far as we know
	logged := ""     // the state last logged: "", "ok" or an error
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			r.deregister(have, log)
			return
		case <-kick:
		case <-timer.C:
		}
		r.mu.Lock()
		want := Entity{EID: r.EID, Period: r.Period, Portals: r.want.Portals, Nodes: r.want.Nodes}
		r.mu.Unlock()
		if want.Period == 0 {
			want.Period = 30 * time.Second
		}
		got, period, err := r.sync(ctx, have, &want)
		if ctx.Err() != nil {
			r.deregister(have, log)
			return
		}
		if r.Synced != nil {
			r.Synced(err)
		}
		timer.Stop()
		if err != nil {
			if msg := err.Error(); msg != logged {
				log.WithError(err).Warnf("iSNS registration failed; retrying (iSCSI service goes on)")
				logged = msg
			} else {
				log.WithError(err).Debug("iSNS registration failed again")
			}
			timer.Reset(backoff)
			backoff = min(2*backoff, maxB)
			continue
		}
		have, backoff = got, minB
		refresh := refreshInterval(period, want.Period)
		f := logrus.Fields{"targets": nodeCount(have), "period": period, "next": refresh}
		if logged != "ok" {
			log.WithFields(f).Info("registered with the iSNS server")
		} else {
			log.WithFields(f).Debug("iSNS registration refreshed")
		}
		logged = "ok"
		if have != nil {
			timer.Reset(refresh)
		}
	}
}

func nodeCount(e *Entity) int {
	if e == nil {
		return 0
	}
	return len(e.Nodes)
}

// refreshInterval is when to refresh a registration the server keeps
// for period (asked when it answered none): two thirds of it, at least a
// second; a server that never expires entries is still refreshed every
// ten minutes (it may have restarted).
func refreshInterval(period, asked time.Duration) time.Duration {
	if period <= 0 {
		period = asked
	}
	if period <= 0 {
		return 10 * time.Minute
	}
	return min(max(period*2/3, time.Second), 10*time.Minute)
}

// sync brings the server to want. It returns what the server holds.
func (r *Registrar) sync(ctx context.Context, have, want *Entity) (*Entity, time.Duration, error) {
	if len(want.Nodes) == 0 {
		// An entity without nodes: nothing to register.
		if have == nil {
			return nil, 0, nil
		}
		k, err := r.Client.Open(ctx)
		if err != nil {
			return have, 0, err
		}
		defer k.Close()
		_, err = k.Do(DeregisterEntityRequest(have.Nodes[0].Name, have.EID))
		if err != nil && !gone(err) {
			return have, 0, err
		}
		return nil, 0, nil
	}
	k, err := r.Client.Open(ctx)
	if err != nil {
		return have, 0, err
	}
	defer k.Close()
	reg := *want
	reg.Portals = resolvePortals(want.Portals, k.Local())
	if have != nil && !slices.Equal(have.Portals, reg.Portals) {
		// The portals changed: the entity is registered anew.
		if _, err := k.Do(DeregisterEntityRequest(have.Nodes[0].Name, have.EID)); err != nil && !gone(err) {
			return have, 0, err
		}
		have = nil
	}
	if have != nil {
		var removed []string
		for _, n := range have.Nodes {
			if !slices.ContainsFunc(reg.Nodes, func(m Node) bool { return sameName(m.Name, n.Name) }) {
				removed = append(removed, n.Name)
			}
		}
		if len(removed) > 0 {
			if _, err := k.Do(DeregisterNodesRequest(removed[0], removed)); err != nil && !gone(err) {
				return have, 0, err
			}
		}
	}
	rsp, err := k.Do(RegisterRequest(&reg, reg.Nodes[0].Name, 0))
	if err != nil {
		return have, 0, err
	}
	period, _ := RegistrationPeriod(rsp)
	return &reg, period, nil
}

// gone tells whether a deregistration failed only because the server
// no longer has the object.
func gone(err error) bool {
	var s Status
	return errors.As(err, &s) && (s == StatusNoSuchEntry || s == StatusSourceUnknown)
}

// resolvePortals replaces unspecified addresses with local and drops
// duplicates.
func resolvePortals(ps []netip.AddrPort, local netip.Addr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, p := range ps {
		if p.Addr().IsUnspecified() {
			if !local.IsValid() {
				continue
			}
			p = netip.AddrPortFrom(local, p.Port())
		}
		p = netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

func (r *Registrar) deregister(have *Entity, log *logrus.Entry) {
	if have == nil || len(have.Nodes) == 0 {
		return
	}
	t := r.StopTimeout
	if t <= 0 {
		t = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), t)
	defer cancel()
	_, err := r.Client.Do(ctx, DeregisterEntityRequest(have.Nodes[0].Name, have.EID))
	if err != nil && !gone(err) {
		log.WithError(err).Warn("iSNS deregistration failed (the server drops the entity when its registration period ends)")
		return
	}
	log.Info("deregistered from the iSNS server")
}

func discard() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(nopWriter{})
	return logrus.NewEntry(l)
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
