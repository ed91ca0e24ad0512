package iscsi

import (
	"net/netip"
	"sync"
)

// loginSlots bounds the connections in the login phase: at most total at
// once, and at most perPeer of them from one address, so that one host
// that opens connections and never finishes a login cannot take every
// slot from the others.
type loginSlots struct {
	mu      sync.Mutex
	total   int
	perPeer int
	n       int
	byPeer  map[netip.Addr]int
}

func newLoginSlots(total, perPeer int) *loginSlots {
	return &loginSlots{total: total, perPeer: perPeer, byPeer: make(map[netip.Addr]int)}
}

// acquire takes a slot for peer; false (with how many are in use, in all
// and from peer) when none is free.
func (l *loginSlots) acquire(peer netip.Addr) (ok bool, all, fromPeer int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.total || l.byPeer[peer] >= l.perPeer {
		return false, l.n, l.byPeer[peer]
	}
	l.n++
	l.byPeer[peer]++
	return true, l.n, l.byPeer[peer]
}

// release gives back a slot acquire took for peer.
func (l *loginSlots) release(peer netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n--
	if l.byPeer[peer]--; l.byPeer[peer] <= 0 {
		delete(l.byPeer, peer)
	}
}

// inUse is how many slots are taken, in all and from peer.
func (l *loginSlots) inUse(peer netip.Addr) (all, fromPeer int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.byPeer[peer]
}
