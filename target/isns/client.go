package isns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// Client reaches one iSNS server over TCP. Each exchange dials its own
// connection (Open), bounded by Timeout. The zero XID counter is fine.
type Client struct {
	// Addr is host:port of the server.
	Addr string
	// Timeout bounds a dial and each exchange (default 5s).
	Timeout time.Duration
	// Dial replaces net.Dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	xid atomic.Uint32
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 5 * time.Second
}

// Conn is one connection to the server.
type Conn struct {
	c    *Client
	nc   net.Conn
	ctx  context.Context
	stop func() bool
}

// Open connects to the server.
func (c *Client) Open(ctx context.Context) (*Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	dial := c.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(dctx, "tcp", c.Addr)
	if err != nil {
		return nil, err
	}
	// A cancelled ctx interrupts a read or write in progress.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return &Conn{c: c, nc: nc, ctx: ctx, stop: stop}, nil
}

// Local is the local address of the connection (the address the server
// sees this host at).
func (k *Conn) Local() netip.Addr {
	if a, ok := k.nc.LocalAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// Close closes the connection.
func (k *Conn) Close() error {
	k.stop()
	return k.nc.Close()
}

// Do sends m (its XID is set) and returns the server's response to it.
// A response with a status other than success is returned with that
// Status as the error. Server-initiated messages arriving meanwhile (an
// ESI, an SCN) are answered "not supported" and skipped.
func (k *Conn) Do(m *Message) (*Message, error) {
	if err := k.ctx.Err(); err != nil {
		return nil, err
	}
	m.XID = uint16(k.c.xid.Add(1))
	k.nc.SetDeadline(time.Now().Add(k.c.timeout()))
	if err := WriteMessage(k.nc, m); err != nil {
		return nil, k.err(err)
	}
	for range 8 {
		rsp, err := ReadMessage(k.nc, 0)
		if err != nil {
			return nil, k.err(err)
		}
		if !rsp.Function.IsResponse() {
			WriteMessage(k.nc, ErrorResponse(rsp, StatusNotSupported))
			continue
		}
		if rsp.XID != m.XID || rsp.Function != m.Function.Response() {
			return nil, fmt.Errorf("iSNS server answered %v transaction %d to %v transaction %d", rsp.Function, rsp.XID, m.Function, m.XID)
		}
		if rsp.Status != StatusSuccess {
			return rsp, rsp.Status
		}
		return rsp, nil
	}
	return nil, fmt.Errorf("iSNS server sent no response to %v", m.Function)
}

func (k *Conn) err(err error) error {
	if cerr := k.ctx.Err(); cerr != nil {
		return cerr
	}
	return err
}

// Do runs one exchange on a connection of its own.
func (c *Client) Do(ctx context.Context, m *Message) (*Message, error) {
	k, err := c.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	return k.Do(m)
}
