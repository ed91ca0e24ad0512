package iscsi

import (
	"context"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
)

const testIQN = "iqn.2026-01.org.ietgo:disk1"

type testServer struct {
	srv  *Server
	addr string
	disk *fakeDisk
	done chan error
}

func startServer(t *testing.T, cfg *config.Config, disk *fakeDisk) *testServer {
	t.Helper()
	return startServerWith(t, cfg, disk, Options{})
}

// startServerWith starts a server with opts (Config, Log and NewDevice are
// filled in).
func startServerWith(t *testing.T, cfg *config.Config, disk *fakeDisk, opts Options) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startServerOn(t, cfg, disk, opts, l)
}

// startServerOn is startServerWith serving listener l.
func startServerOn(t *testing.T, cfg *config.Config, disk *fakeDisk, opts Options, l net.Listener) *testServer {
	t.Helper()
	lg := logrus.New()
	lg.SetLevel(logrus.WarnLevel)
	if testing.Verbose() {
		lg.SetLevel(logrus.DebugLevel)
	}
	opts.Config, opts.Log = cfg, logrus.NewEntry(lg)
	if opts.NewDevice == nil {
		opts.NewDevice = func(*config.Target, scsi.Options) (Device, error) { return disk, nil }
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: l.Addr().String(), disk: disk, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		select {
		case <-ts.done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return ts
}

func basicConfig() (*config.Config, *config.Target) {
	tg := config.NewTarget(1, testIQN)
	tg.LUNs = []*config.LUN{{Number: 0, Type: "nullio"}}
	return &config.Config{Dialect: config.DialectIET, Targets: []*config.Target{tg}}, tg
}

func needTool(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

// run runs a tool with a bounded time and returns its output.
func run(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}
