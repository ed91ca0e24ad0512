package daemon

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/isns"
)

// isnsState is the daemon's iSNS side (IET's iSNSServer and
// iSNSAccessControl): a Registrar per configured server and, with access
// control on, the cache of the server's answers. Its lock is taken after
// Daemon.mu (apply) and alone by the access check; nothing slow runs
// under it.
type isnsState struct {
	mu      sync.Mutex
	ctx     context.Context
	portals []netip.AddrPort
	cur     *isnsRun
	// stopping are registrars of servers no longer configured, still
	// deregistering; shutdown waits for them.
	stopping sync.WaitGroup
}

type isnsRun struct {
	addr   string
	client *isns.Client
	reg    *isns.Registrar // nil after ietadm --op delete, until a change
	access *isns.Access    // nil: access control off
}

// isnsApply makes the iSNS side follow cfg (start, a reload, an ietadm
// change). It never waits for the server.
func (d *Daemon) isnsApply(cfg *config.Config) {
	s := &d.isns
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil {
		return // not started (tests driving Reload without Run)
	}
	var addr string
	if is := cfg.ISNS; is != nil && is.Server != "" {
		port := is.Port
		if port == 0 {
			port = isns.DefaultPort
		}
		addr = net.JoinHostPort(is.Server, strconv.Itoa(port))
	}
	if s.cur != nil && s.cur.addr != addr {
		old := s.cur
		s.cur = nil
		if old.reg != nil {
			s.stopping.Add(1)
			go func() {
				defer s.stopping.Done()
				old.reg.Stop()
			}()
		}
	}
	if addr == "" {
		return
	}
	if s.cur == nil {
		s.cur = &isnsRun{addr: addr, client: &isns.Client{Addr: addr, Timeout: 5 * time.Second}}
	}
	var nodes []isns.Node
	for _, t := range cfg.Targets {
		nodes = append(nodes, isns.Node{Name: t.Name, Alias: t.Alias, PGT: 1})
	}
	if s.cur.reg == nil {
		s.cur.reg = &isns.Registrar{Client: s.cur.client, Log: d.log, EID: entityID(cfg)}
		s.cur.reg.Set(s.portals, nodes)
		s.cur.reg.Start(s.ctx)
		d.log.WithField("isns", addr).Info("registering the targets with the iSNS server")
	} else {
		s.cur.reg.Set(s.portals, nodes)
	}
	switch {
	case cfg.ISNS.AccessControl && s.cur.access == nil:
		s.cur.access = &isns.Access{Client: s.cur.client, Log: d.log}
	case !cfg.ISNS.AccessControl:
		s.cur.access = nil
	}
}

// isnsAllowed is the iSNSAccessControl check of a login or a SendTargets
// entry (true when access control is off or no server is configured, as
// in IET).
func (d *Daemon) isnsAllowed(target, initiator string) (bool, string) {
	d.isns.mu.Lock()
	var a *isns.Access
	if d.isns.cur != nil {
		a = d.isns.cur.access
	}
	d.isns.mu.Unlock()
	if a == nil {
		return true, ""
	}
	return a.Allowed(target, initiator)
}

// isnsDeregister is `ietadm --op delete` without a selector: the
// entity is deregistered now (IET 1.4.20 did only that; init scripts
// call it before stopping the daemon). The next reload or ietadm change
// registers again. It does not wait for the server.
func (d *Daemon) isnsDeregister() {
	s := &d.isns
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.reg == nil {
		return
	}
	// The access control (if on) goes on: only the registration stops.
	reg := s.cur.reg
	s.cur.reg = nil
	s.stopping.Add(1)
	go func() {
		defer s.stopping.Done()
		reg.Stop()
	}()
	d.log.WithField("isns", s.cur.addr).Info("deregistering from the iSNS server (ietadm --op delete); the next reload registers again")
}

// isnsStop deregisters (bounded by the Registrar's timeouts).
func (d *Daemon) isnsStop() {
	s := &d.isns
	s.mu.Lock()
	cur := s.cur
	s.cur, s.ctx = nil, nil
	s.mu.Unlock()
	if cur != nil && cur.reg != nil {
		cur.reg.Stop()
	}
	s.stopping.Wait()
}

// entityID is the Network Entity's identifier: the host name, stable
// across restarts (the first target name when the host has none).
func entityID(cfg *config.Config) string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	for _, t := range cfg.Targets {
		return strings.ToLower(t.Name)
	}
	return "ietd"
}

// listenerPortals are the listeners' addresses as iSNS portals.
func listenerPortals(ls []net.Listener) []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range ls {
		if a, ok := l.Addr().(*net.TCPAddr); ok {
			ip, _ := netip.AddrFromSlice(a.IP)
			out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(a.Port)))
		}
	}
	return out
}
