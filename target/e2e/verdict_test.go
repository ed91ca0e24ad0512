//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
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
	timedOut    bool   // a read the verdict depended on timed out: neither an answer nor a close
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
	if v.timedOut {
		parts = append(parts, "TIMEOUT")
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
			switch {
			case isTimeout(err):
				if !v.rejected && v.loginStatus == 0 && !v.answered && !v.loginGoesOn {
					v.timedOut = true
				}
			case isClosed(err):
				v.closed = true
			default:
				v.other = "reading the answer: " + err.Error()
			}
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

// isTimeout reports a deadline that passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isClosed reports an error that means the peer closed or reset the
// connection.
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

// errVerdict classifies an error from the test client: a timeout is
// never mistaken for a refusal.
func errVerdict(err error) verdict {
	switch {
	case isTimeout(err):
		return verdict{timedOut: true}
	case isClosed(err):
		return verdict{closed: true}
	}
	return verdict{other: err.Error()}
}

// tally records outcomes per case for the report table.
type tally struct {
	title string
	mu    sync.Mutex
	rows  map[string]map[string]int
}

// runReport gathers every tally of the run and the tests skipped for a
// known defect; TestMain prints it (and writes testdata/e2e/last-run.txt)
// after m.Run, verbose or not.
var runReport struct {
	mu       sync.Mutex
	sections []*tally
	skips    []string
}

// reportTally returns the run-wide tally titled title (created on first
// use, so that -count=N and several tests add to one table).
func reportTally(title string) *tally {
	runReport.mu.Lock()
	defer runReport.mu.Unlock()
	for _, t := range runReport.sections {
		if t.title == title {
			return t
		}
	}
	t := &tally{title: title, rows: map[string]map[string]int{}}
	runReport.sections = append(runReport.sections, t)
	return t
}

// knownDefect skips a test that exposes a defect being fixed outside
// target/e2e; IETD_E2E_KNOWN_DEFECTS=1 runs it anyway (to check a fix).
func knownDefect(t *testing.T, msg string) {
	t.Helper()
	runReport.mu.Lock()
	if line := t.Name() + ": " + msg; !slices.Contains(runReport.skips, line) {
		runReport.skips = append(runReport.skips, line)
	}
	runReport.mu.Unlock()
	if os.Getenv("IETD_E2E_KNOWN_DEFECTS") == "1" {
		t.Logf("known defect (running anyway, IETD_E2E_KNOWN_DEFECTS=1): %s", msg)
		return
	}
	t.Skip("known defect: " + msg + " (issue 7)")
}

func (t *tally) add(name, outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rows[name] == nil {
		t.rows[name] = map[string]int{}
	}
	t.rows[name][outcome]++
}

func (t *tally) render() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.rows))
	for n := range t.rows {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n| case | tries | outcomes |\n|---|---|---|\n", t.title)
	for _, n := range names {
		total := 0
		var outs []string
		for o, k := range t.rows[n] {
			total += k
			outs = append(outs, fmt.Sprintf("%s x%d", o, k))
		}
		sort.Strings(outs)
		fmt.Fprintf(&b, "| %s | %d | %s |\n", strings.ReplaceAll(n, "|", "/"), total, strings.ReplaceAll(strings.Join(outs, ", "), "|", "/"))
	}
	return b.String()
}

func (t *tally) log(tb testing.TB) { tb.Log(t.render()) }

// writeRunReport prints the run's tables to stdout and writes them to
// testdata/e2e/last-run.txt (git-ignored).
func writeRunReport(code int) {
	runReport.mu.Lock()
	sections := slices.Clone(runReport.sections)
	skips := slices.Clone(runReport.skips)
	runReport.mu.Unlock()
	if len(sections) == 0 && len(skips) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# target/e2e run report (%s, exit %d)\n\n", time.Now().UTC().Format(time.RFC3339), code)
	for _, s := range sections {
		b.WriteString(s.render())
		b.WriteString("\n")
	}
	if len(skips) > 0 {
		b.WriteString("skipped for a known defect (IETD_E2E_KNOWN_DEFECTS=1 runs them):\n")
		for _, s := range skips {
			b.WriteString("- " + s + "\n")
		}
	}
	fmt.Print(b.String())
	p := filepath.Join(repoRoot(), "testdata", "e2e", "last-run.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot write %s: %v\n", p, err)
	} else {
		fmt.Printf("(report written to %s)\n", p)
	}
}
