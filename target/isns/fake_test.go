package isns

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is an in-memory iSNS server reached through net.Pipe.
type fakeServer struct {
	mu         sync.Mutex
	down       bool
	stall      bool                // accept but never answer
	entities   map[string][]string // EID -> node names
	periods    map[string]uint32
	visible    map[string][]string // target -> initiators it may see
	queries    int
	lastPeriod uint32
	answer     uint32 // registration period answered (0: the asked one)
}

func newFake() *fakeServer {
	return &fakeServer{entities: map[string][]string{}, periods: map[string]uint32{}, visible: map[string][]string{}}
}

func (f *fakeServer) client() *Client {
	return &Client{Addr: "fake:3205", Timeout: 300 * time.Millisecond, Dial: f.dial}
}

func (f *fakeServer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	f.mu.Lock()
	down, stall := f.down, f.stall
	f.mu.Unlock()
	if down {
		return nil, errors.New("connection refused")
	}
	c, s := net.Pipe()
	go f.serve(s, stall)
	return c, nil
}

func (f *fakeServer) serve(c net.Conn, stall bool) {
	defer c.Close()
	for {
		m, err := ReadMessage(c, 0)
		if err != nil {
			return
		}
		if stall {
			continue
		}
		rsp := f.handle(m)
		rsp.XID = m.XID
		if WriteMessage(c, rsp) != nil {
			return
		}
	}
}

func (f *fakeServer) handle(m *Message) *Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	rsp := &Message{Function: m.Function.Response(), Flags: FlagServer}
	switch m.Function {
	case DevAttrReg:
		eid, _ := Find(m.Keys(), TagEID)
		var names []string
		for _, a := range m.Operating() {
			if a.Tag == TagISCSIName {
				names = append(names, a.Str())
			}
			if a.Tag == TagRegistrationPeriod {
				f.lastPeriod, _ = a.Uint32()
			}
		}
		old := f.entities[eid.Str()]
		for _, n := range names {
			if !slices.Contains(old, n) {
				old = append(old, n)
			}
		}
		f.entities[eid.Str()] = old
		p := f.answer
		if p == 0 {
			p = f.lastPeriod
		}
		rsp.Attrs = []Attr{eid, Delimiter(), eid, Uint32(TagRegistrationPeriod, p)}
	case DevDereg:
		for _, a := range m.Operating() {
			switch a.Tag {
			case TagEID:
				if _, ok := f.entities[a.Str()]; !ok {
					rsp.Status = StatusNoSuchEntry
				}
				delete(f.entities, a.Str())
			case TagISCSIName:
				for e, ns := range f.entities {
					f.entities[e] = slices.DeleteFunc(ns, func(n string) bool { return strings.EqualFold(n, a.Str()) })
				}
			}
		}
	case DevAttrQry:
		f.queries++
		src := m.Keys()[0].Str()
		rsp.Attrs = []Attr{Uint32(TagISCSINodeType, NodeInitiator), Delimiter()}
		for _, n := range f.visible[src] {
			rsp.Attrs = append(rsp.Attrs, String(TagISCSIName, n), Uint32(TagISCSINodeType, NodeInitiator))
		}
	default:
		rsp.Status = StatusNotSupported
	}
	return rsp
}

func (f *fakeServer) nodes(eid string) ([]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ns, ok := f.entities[eid]
	return slices.Clone(ns), ok
}

func (f *fakeServer) set(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// eventually polls cond for up to 5s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
