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
// is closed (its initiator retries), so that one host that opens
// connections and never finishes logging in cannot lock the others out.
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
	if l.n < l.total {
		l.n++
		l.byPeer[c.peer] = append(l.byPeer[c.peer], c)
		return true, nil, 0
	}
	if len(l.byPeer[c.peer]) >= l.fairShare {
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
	l.byPeer[c.peer] = append(l.byPeer[c.peer], c)
	return true, evicted, 0
}

// release gives back c's slot (nothing when it was evicted).
func (l *loginSlots) release(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cs := l.byPeer[c.peer]
	for i, x := range cs {
		if x == c {
			l.n--
			cs = append(cs[:i:i], cs[i+1:]...)
			if len(cs) == 0 {
				delete(l.byPeer, c.peer)
			} else {
				l.byPeer[c.peer] = cs
			}
			return
		}
	}
}

// inUse is how many slots are taken, in all and from peer.
func (l *loginSlots) inUse(peer netip.Addr) (all, fromPeer int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, len(l.byPeer[peer])
}
