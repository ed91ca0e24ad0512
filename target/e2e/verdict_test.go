package e2e

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// verdict is how the target answered a hostile connection.
type verdict struct {
	rejected    bool
	reason      byte // of the first Reject
	closed      bool
	loginStatus uint16 // non-zero: a login response with this status
	answered    bool   // the probe ping came back: the connection is usable
	loginGoesOn bool   // a login response with success status (negotiation continues)
	other       string // anything unexpected
}

func (v verdict) String() string {
	var parts []string
	if v.rejected {
		parts = append(parts, fmt.Sprintf("reject(%#x)", v.reason))
	}
	if v.loginStatus != 0 {
		parts = append(parts, fmt.Sprintf("login-refused(%#04x)", v.loginStatus))
	}
	if v.closed {
		parts = append(parts, "closed")
	}
	if v.answered {
		parts = append(parts, "still-usable")
	}
	if v.loginGoesOn {
		parts = append(parts, "login-continues")
	}
	if v.other != "" {
		parts = append(parts, "other: "+v.other)
	}
	if len(parts) == 0 {
		return "no reaction"
	}
	return strings.Join(parts, "+")
}

// refused reports a Reject, a refused login or a close.
func (v verdict) refused() bool { return v.rejected || v.closed || v.loginStatus != 0 }

// judge reads what the target does within d. With probe, an immediate
// NOP-Out is sent first so that a target that silently dropped the bad PDU
// answers it (answered=true).
func judge(c *clientConn, d time.Duration, probe bool) verdict {
	var v verdict
	var pingITT uint32 = noTag
	if probe {
		p := &pdu{}
		p.h[0] = opNOPOut | opImmediate
		p.h[1] = flagFinal
		pingITT = c.newITT()
		p.h.put32(16, pingITT)
		p.h.put32(20, noTag)
		p.h.put32(24, c.cmdSN)
		p.h.put32(28, c.expStatSN)
		if err := c.send(p); err != nil {
			v.closed = true
			// What was sent before the close may still be readable.
		}
	}
	deadline := time.Now().Add(d)
	for range 10000 {
		c.nc.SetReadDeadline(deadline)
		p, err := readPDU(c.nc, c.hd, c.dd)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return v
			}
			v.closed = true
			return v
		}
		c.trackSN(p)
		switch p.h.opcode() {
		case opReject:
			if !v.rejected {
				v.rejected, v.reason = true, p.h[2]
			}
		case opLoginResp:
			if p.h[36] != 0 {
				v.loginStatus = uint16(p.h[36])<<8 | uint16(p.h[37])
			} else {
				v.loginGoesOn = true
			}
		case opNOPIn:
			if probe && p.h.itt() == pingITT {
				v.answered = true
				return v
			}
			if ttt := p.h.u32(20); p.h.itt() == noTag && ttt != noTag {
				c.answerPing(ttt, p.data)
			}
		case opAsyncMsg, opSCSIResp, opDataIn, opR2T, opTextResp, opLogoutResp, opTMFResp:
			// answers to earlier (possibly duplicated) commands or TMFs: fine
		default:
			if v.other == "" {
				v.other = p.String()
			}
		}
	}
	return v
}

// tally records outcomes per case for the report table.
type tally struct {
	mu   sync.Mutex
	rows map[string]map[string]int
}

func newTally() *tally { return &tally{rows: map[string]map[string]int{}} }

func (t *tally) add(name, outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rows[name] == nil {
		t.rows[name] = map[string]int{}
	}
	t.rows[name][outcome]++
}

func (t *tally) log(tb testing.TB, title string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.rows))
	for n := range t.rows {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n| case | tries | outcomes |\n|---|---|---|\n", title)
	for _, n := range names {
		total := 0
		var outs []string
		for o, k := range t.rows[n] {
			total += k
			outs = append(outs, fmt.Sprintf("%s x%d", o, k))
		}
		sort.Strings(outs)
		fmt.Fprintf(&b, "| %s | %d | %s |\n", n, total, strings.Join(outs, ", "))
	}
	tb.Log(b.String())
}
