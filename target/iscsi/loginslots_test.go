package iscsi

import (
	"net/netip"
	"testing"
)

// The books of the login slots: an evicted login holds no slot any more
// (its final release says so, and its login then fails instead of
// succeeding); when full, a newcomer evicts only from an address holding
// at least two more than it (max-min fairness, ties to the oldest login);
// IPv6 addresses of one /64 count together.
func TestLoginSlotsBooks(t *testing.T) {
	at := func(a string) *conn { return &conn{peer: netip.MustParseAddr(a)} }
	l := newLoginSlots(3)
	a, b, c := at("192.0.2.1"), at("192.0.2.1"), at("192.0.2.2")
	for _, x := range []*conn{a, b, c} {
		if ok, ev, _ := l.acquire(x); !ok || ev != nil {
			t.Fatalf("free slot refused or evicting: %v %v", ok, ev)
		}
	}
	// Full: 192.0.2.1 holds 2, 192.0.2.2 holds 1. Another from
	// 192.0.2.2 would only even them out: refused.
	if ok, _, full := l.acquire(at("192.0.2.2")); ok || full != 3 {
		t.Fatalf("an address one below the most got a slot: %v %d", ok, full)
	}
	// A newcomer (0) takes the slot of 192.0.2.1's oldest login, a.
	d := at("198.51.100.7")
	if ok, ev, _ := l.acquire(d); !ok || ev != a {
		t.Fatalf("newcomer: ok %v evicted %p, want %p", ok, ev, a)
	}
	if l.release(a) {
		t.Fatal("the evicted login still held a slot")
	}
	// Everybody holds one now: a fourth address is refused.
	if ok, ev, _ := l.acquire(at("203.0.113.9")); ok || ev != nil {
		t.Fatalf("evicted a login while all hold the same: %v %v", ok, ev)
	}
	if !l.release(b) || l.release(b) {
		t.Fatal("release of b: want true once, then false")
	}
	if all, _ := l.inUse(netip.Addr{}); all != 2 {
		t.Fatalf("%d slots in use, want 2", all)
	}
	// Ties go to the address whose oldest login is oldest; a few
	// addresses that each hold as many cannot keep another out.
	lt := newLoginSlots(4)
	x1, y1, x2, y2 := at("192.0.2.1"), at("192.0.2.2"), at("192.0.2.1"), at("192.0.2.2")
	for _, x := range []*conn{y1, x1, x2, y2} {
		lt.acquire(x)
	}
	if ok, ev, _ := lt.acquire(at("203.0.113.9")); !ok || ev != y1 {
		t.Fatalf("newcomer against two equal holders: ok %v evicted %p, want y1 %p", ok, ev, y1)
	}
	if ok, ev, _ := lt.acquire(at("203.0.113.10")); !ok || ev != x1 {
		t.Fatalf("second newcomer: ok %v evicted %p, want x1 %p", ok, ev, x1)
	}
	if ok, _, _ := lt.acquire(at("203.0.113.9")); ok {
		t.Fatal("203.0.113.9 (1) evicted from an address holding 1")
	}
	// One /64: 2001:db8::1 and 2001:db8::2 share a count.
	l6 := newLoginSlots(8)
	l6.acquire(at("2001:db8::1"))
	l6.acquire(at("2001:db8::2"))
	l6.acquire(at("2001:db8:0:1::1"))
	if _, n := l6.inUse(netip.MustParseAddr("2001:db8::ffff")); n != 2 {
		t.Fatalf("2001:db8::/64 holds %d, want 2", n)
	}
}
