package daemon

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

// The /proc/net/iet style listings exist when the daemon reports ready:
// the detached parent exits then, and what comes next (an init script, a
// Pacemaker agent looking its tid up in the volume listing) reads them at
// once. They used to be written only after the ready report.
func TestProcListingsWrittenBeforeReady(t *testing.T) {
	dir := t.TempDir()
	procDir := filepath.Join(dir, "proc")
	load := func() (*config.Config, config.Diagnostics, error) {
		c := &config.Config{Dialect: config.DialectIET}
		c.Targets = append(c.Targets, config.NewTarget(1, "iqn.2026-01.example:ready"))
		return c, nil, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	listing := make(chan string, 1)
	go func() {
		done <- Run(ctx, Options{Load: load, Listeners: []net.Listener{l}, ProcDir: procDir, UID: -1, GID: -1,
			Signals: make(chan os.Signal), Ready: func(err error) {
				if err != nil {
					listing <- "ready: " + err.Error()
					return
				}
				// Read in the ready report itself: nothing the daemon
				// does after it can have run yet.
				b, rerr := os.ReadFile(filepath.Join(procDir, "volume"))
				if rerr != nil {
					listing <- rerr.Error()
					return
				}
				listing <- string(b)
			}})
	}()
	defer func() { cancel(); <-done }()
	got := <-listing
	if !strings.Contains(got, "tid:1 name:iqn.2026-01.example:ready") {
		t.Fatalf("volume listing at the ready report: %q", got)
	}
	if _, err := os.Stat(filepath.Join(procDir, "session")); err != nil {
		t.Errorf("session listing at the ready report: %v", err)
	}
}
