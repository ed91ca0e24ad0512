package daemon

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

type entries struct {
	mu  sync.Mutex
	all []*logrus.Entry
}

func (e *entries) Levels() []logrus.Level { return logrus.AllLevels }
func (e *entries) Fire(x *logrus.Entry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, x)
	return nil
}

func (e *entries) lines(lvl logrus.Level) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, x := range e.all {
		if x.Level == lvl {
			s := x.Message
			if err, ok := x.Data[logrus.ErrorKey]; ok {
				s += " error=" + err.(error).Error()
			}
			out = append(out, s)
		}
	}
	return out
}

// A SIGHUP whose file has errors: every error is logged on its own line
// with its file:line:col, the warnings once as warnings (not again inside
// an error), then the refusal.
func TestRefusedReloadLogsEachError(t *testing.T) {
	pos := func(line, col int) config.Position {
		return config.Position{File: "/etc/iet/ietd.conf", Line: line, Col: col}
	}
	var mu sync.Mutex
	broken := false
	load := func() (*config.Config, config.Diagnostics, error) {
		c := &config.Config{Dialect: config.DialectIET, Targets: []*config.Target{config.NewTarget(1, "iqn.2026-01.test:kept")}}
		mu.Lock()
		defer mu.Unlock()
		if !broken {
			return c, nil, nil
		}
		var ds config.Diagnostics
		ds.Errorf(pos(4, 6), "Lun number %q is not a number", "x")
		ds = append(ds, config.Diagnostic{Pos: pos(6, 2), Severity: config.Warning, Msg: "unknown keyword BogusKey ignored"})
		ds.Errorf(pos(5, 14), "MaxSessions value %q is not a number", "abc")
		return c, ds, ds.Err()
	}
	lg := logrus.New()
	lg.SetOutput(discard{})
	hook := &entries{}
	lg.AddHook(hook)
	sigs, _ := startRun(t, Options{Log: logrus.NewEntry(lg), Load: load})
	mu.Lock()
	broken = true
	mu.Unlock()
	sigs <- syscall.SIGHUP
	var errs []string
	for i := 0; ; i++ {
		errs = hook.lines(logrus.ErrorLevel)
		if len(errs) > 0 && strings.Contains(errs[len(errs)-1], "reload failed") {
			break
		}
		if i == 500 {
			t.Fatalf("no refusal logged; errors: %q", errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := []string{
		"/etc/iet/ietd.conf:4:6: error: Lun number \"x\" is not a number",
		"/etc/iet/ietd.conf:5:14: error: MaxSessions value \"abc\" is not a number",
		"reload failed; keeping the running configuration",
	}
	if strings.Join(errs, "\n") != strings.Join(want, "\n") {
		t.Errorf("error lines:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
	if w := hook.lines(logrus.WarnLevel); len(w) != 1 || !strings.Contains(w[0], ":6:2: warning: unknown keyword BogusKey") {
		t.Errorf("warning lines: %q, want the BogusKey warning once", w)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
