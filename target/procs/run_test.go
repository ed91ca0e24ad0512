package procs

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// hostDefault is the runtime's default GOMAXPROCS here (applied).
func hostDefault(t *testing.T) int {
	t.Helper()
	runtime.SetDefaultGOMAXPROCS()
	return runtime.GOMAXPROCS(0)
}

// startRun runs Run in a goroutine with GOMAXPROCS unset in the
// environment and at two, and returns its cancel and a channel closed when
// Run has returned.
func startRun(t *testing.T, s Settings) (context.CancelFunc, <-chan struct{}) {
	t.Helper()
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(2) // what enabled looks for, whatever this host has
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, nil, s)
	}()
	return cancel, done
}

// waitFor polls GOMAXPROCS until it is n, for at most 5 s.
func waitFor(t *testing.T, n int, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); runtime.GOMAXPROCS(0) != n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: GOMAXPROCS %d, want %d", what, runtime.GOMAXPROCS(0), n)
		}
	}
}

func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5 s of its context ending")
	}
}

// Set in the environment, GOMAXPROCS is left alone and Run returns at once.
func TestRunNotEnabled(t *testing.T) {
	defer runtime.SetDefaultGOMAXPROCS()
	for _, c := range []struct {
		env   string
		procs int
	}{{"2", 2}, {"1", 2}, {"", 3}, {"", 1}} {
		t.Setenv("GOMAXPROCS", c.env)
		runtime.GOMAXPROCS(c.procs)
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(context.Background(), nil, Settings{Tick: time.Millisecond})
		}()
		waitDone(t, done)
		if got := runtime.GOMAXPROCS(0); got != c.procs {
			t.Errorf("GOMAXPROCS=%q at %d: Run left %d", c.env, c.procs, got)
		}
	}
}

// Run starts at one P and, when its context ends, returns and hands the
// runtime its default back (never one P on a host whose default is more).
func TestRunHandsBackTheDefault(t *testing.T) {
	def := hostDefault(t)
	cancel, done := startRun(t, Settings{Tick: 2 * time.Millisecond, Hold: 2})
	defer cancel()
	waitFor(t, 1, "tuning an idle process")
	cancel()
	waitDone(t, done)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("after Run: GOMAXPROCS %d, the runtime's default %d", got, def)
	}
}

// When the runtime's default stops being two (a CPU limit or affinity
// changed), Run leaves GOMAXPROCS to the runtime until it is two again,
// then tunes afresh from one P.
func TestRunFollowsTheDefault(t *testing.T) {
	def := hostDefault(t)
	var fake atomic.Int64
	fake.Store(2)
	oldRecheck, oldDefault := recheck, runtimeDefault
	recheck = 5 * time.Millisecond
	runtimeDefault = func() int {
		n := int(fake.Load())
		runtime.GOMAXPROCS(n)
		return n
	}
	defer func() { recheck, runtimeDefault = oldRecheck, oldDefault }()

	cancel, done := startRun(t, Settings{Tick: 2 * time.Millisecond})
	defer cancel()
	waitFor(t, 1, "tuning")
	fake.Store(3)
	waitFor(t, 3, "the default became 3")
	for i := 0; i < 50; i++ { // 25 ticks and 10 rechecks
		time.Sleep(time.Millisecond)
		if got := runtime.GOMAXPROCS(0); got != 3 {
			t.Fatalf("default 3: Run set GOMAXPROCS %d", got)
		}
	}
	fake.Store(2)
	waitFor(t, 1, "the default back at two, tuning again")
	cancel()
	waitDone(t, done)
	if got := runtime.GOMAXPROCS(0); got != def {
		t.Fatalf("after Run: GOMAXPROCS %d, the runtime's default %d", got, def)
	}
}
