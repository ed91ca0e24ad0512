package daemon

import (
	"context"
	"net"
	"os"
	"testing"
	"time"
)

// startRun runs Run with opts as a test's daemon: UID and GID -1, a
// loopback listener unless opts has listeners, and its own signal channel
// (returned). It waits (at most 10 s) until the daemon serves. Run's
// result arrives on the returned channel; at the test's end Run is
// cancelled and waited for.
func startRun(t *testing.T, opts Options) (chan<- os.Signal, <-chan error) {
	t.Helper()
	if len(opts.Listeners) == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts.Listeners = []net.Listener{l}
	}
	sigs := make(chan os.Signal, 1)
	ready, done, finished := make(chan error, 1), make(chan error, 1), make(chan struct{})
	opts.UID, opts.GID, opts.Signals = -1, -1, sigs
	opts.Ready = func(err error) { ready <- err }
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(finished)
		done <- Run(ctx, opts)
	}()
	t.Cleanup(func() {
		cancel()
		<-finished
	})
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not serve within 10 s")
	}
	return sigs, done
}
