package iscsi

import (
	"net/netip"
	"sync"
)

// loginSlots bounds the connections in the login phase to total at once.
// Any address may use free slots (one host logging in to hundreds of
// targets at boot is normal: open-iscsi's login --all, a Cinder compute
// host). When every slot is taken, a newcomer from an address that holds
// fewer than fairShare takes the slot of the oldest login of the address
// that holds the most, if that one holds more than fairShare: that login
// is closed (its initiator retries). So one host that opens connections
// and never finishes logging in cannot keep the others out; a few
// addresses that each hold their share still can, until LoginTimeout
// ends their logins. IPv6 addresses count by /64 (peerKey).
type loginSlots struct {
	mu        sync.Mutex
	total     int
	fairShare int
	n         int
	byPeer    map[netip.Addr][]*conn // oldest first
}

func newLoginSlots(total, fairShare int) *loginSlots {
	return &loginSlots{total: total, fairShare: fairShare, byPeer: make(map[netip.Addr][]*conn)}
}

// acquire takes a slot for c. ok false: none is free (full is then how
// many are taken). evicted, when not nil, is a login of another address
// whose slot c took: the caller closes it.
func (l *loginSlots) acquire(c *conn) (ok bool, evicted *conn, full int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := peerKey(c.peer)
	if l.n < l.total {
		l.n++
		l.byPeer[key] = append(l.byPeer[key], c)
		return true, nil, 0
	}
	if len(l.byPeer[key]) >= l.fairShare {
		return false, nil, l.n
	}
	var hog netip.Addr
	most := 0
	for p, cs := range l.byPeer {
		if len(cs) > most {
			hog, most = p, len(cs)
		}
	}
	if most <= l.fairShare {
		return false, nil, l.n
	}
	evicted = l.byPeer[hog][0]
	l.byPeer[hog] = l.byPeer[hog][1:]
	l.byPeer[key] = append(l.byPeer[key], c)
	return true, evicted, 0
}

// release gives back c's slot. false: c holds none, because it was
// evicted (or released before). A login calls it before its final
// response, so that one evicted meanwhile fails rather than succeeding
// and being closed in its full feature phase.
func (l *loginSlots) release(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := peerKey(c.peer)
	cs := l.byPeer[key]
	for i, x := range cs {
		if x == c {
			l.n--
			cs = append(cs[:i:i], cs[i+1:]...)
			if len(cs) == 0 {
				delete(l.byPeer, key)
			} else {
				l.byPeer[key] = cs
			}
			return true
		}
	}
	return false
}

// peerKey is the address a login slot is counted against: an IPv6
// address counts as its /64 (one host, or one site's subnet, is free to
// use any address of it).
func peerKey(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

// inUse is how many slots are taken, in all and from peer.
func (l *loginSlots) inUse(peer netip.Addr) (all, fromPeer int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, len(l.byPeer[peerKey(peer)])
}
