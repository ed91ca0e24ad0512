package iscsi

import (
	"net/netip"
	"sync"
)

// loginSlots bounds the connections in the login phase to total at once.
// Any address may use free slots (one host logging in to hundreds of
// targets at boot is normal: open-iscsi's login --all, a Cinder compute
// host). When every slot is taken the slots are shared max-min fairly: a
// newcomer from an address holding k takes the slot of the oldest login
// of the address holding the most, if that one holds at least k+2 (ties:
// the address whose oldest login is oldest); that login is closed and its
// initiator retries. So no set of addresses keeps another out, short of
// holding a single slot each from total different addresses; a host
// that opens connections and never finishes logging in only ever loses
// its own. IPv6 addresses count by /64 (peerKey).
type loginSlots struct {
	mu     sync.Mutex
	total  int
	n      int
	seq    uint64                     // order of acquisition
	byPeer map[netip.Addr][]loginSlot // oldest first
}

type loginSlot struct {
	c   *conn
	seq uint64
}

func newLoginSlots(total int) *loginSlots {
	return &loginSlots{total: total, byPeer: make(map[netip.Addr][]loginSlot)}
}

// acquire takes a slot for c. ok false: none is free (full is then how
// many are taken). evicted, when not nil, is a login of another address
// whose slot c took: the caller closes it.
func (l *loginSlots) acquire(c *conn) (ok bool, evicted *conn, full int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := peerKey(c.peer)
	mine := len(l.byPeer[key])
	if l.n >= l.total {
		var hog netip.Addr
		most := 0
		for p, ss := range l.byPeer {
			if len(ss) > most || len(ss) == most && most > 0 && ss[0].seq < l.byPeer[hog][0].seq {
				hog, most = p, len(ss)
			}
		}
		if most < mine+2 {
			return false, nil, l.n
		}
		evicted = l.byPeer[hog][0].c
		l.byPeer[hog] = l.byPeer[hog][1:]
		l.n--
	}
	l.n++
	l.seq++
	l.byPeer[key] = append(l.byPeer[key], loginSlot{c: c, seq: l.seq})
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
	ss := l.byPeer[key]
	for i, x := range ss {
		if x.c == c {
			l.n--
			ss = append(ss[:i:i], ss[i+1:]...)
			if len(ss) == 0 {
				delete(l.byPeer, key)
			} else {
				l.byPeer[key] = ss
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
