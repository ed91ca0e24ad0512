package procs

import (
	"math"
	"runtime/metrics"
	"testing"
	"time"
)

// Samples used below: busy with few waits, busy with many, idle.
var (
	calm  = Sample{Scheduled: 10000, Waited: 100, CPU: 30 * time.Millisecond}  // 1% waited
	queue = Sample{Scheduled: 10000, Waited: 4000, CPU: 45 * time.Millisecond} // 40% waited
	quiet = Sample{Scheduled: 10, Waited: 10, CPU: 1 * time.Millisecond}       // idle
	few   = Sample{Scheduled: 10, Waited: 10, CPU: 40 * time.Millisecond}      // busy, too few samples
	flood = Sample{Scheduled: 1000, Waited: 500, CPU: 45 * time.Millisecond}   // 50% waited
)

func TestTunerTranscript(t *testing.T) {
	s := Settings{Hold: 3, MaxHold: 12, ProbeTicks: 2, UpTicks: 1}
	type step struct {
		in   Sample
		want int
	}
	cases := []struct {
		name  string
		steps []step
		moves int
	}{
		{"calm load stays at one", []step{{calm, 1}, {calm, 1}, {calm, 1}}, 0},
		{"idle stays at one, whatever waited", []step{{quiet, 1}, {quiet, 1}}, 0},
		{"waits at one move to two, probe after the hold finds it calm", []step{
			{queue, 2},                        // hold 3
			{queue, 2}, {queue, 2}, {calm, 1}, // hold over: probe (one P)
			{calm, 1}, {calm, 1}, // probe over, stays at one
			{calm, 1},
		}, 2},
		{"a failed probe doubles the hold up to MaxHold", []step{
			{queue, 2},
			{queue, 2}, {queue, 2}, {queue, 1}, // probe
			{queue, 2},                                                             // probe saw waits: back to two, hold 6
			{queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 1}, // probe after 6
			{queue, 2}, // hold 12
			{queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 2},
			{queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 1}, // after 12
			{queue, 2}, // hold stays 12 (MaxHold)
			{queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 2},
			{queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 2}, {queue, 1},
		}, 8},
		{"idle at two goes back to one and resets the hold", []step{
			{queue, 2}, {queue, 2}, {queue, 2}, {queue, 1}, {queue, 2}, // hold now 6
			{quiet, 1},                                    // idle
			{queue, 2}, {queue, 2}, {queue, 2}, {calm, 1}, // hold 3 again
		}, 6},
		{"a probe that goes idle ends at one", []step{
			{queue, 2}, {queue, 2}, {queue, 2}, {calm, 1}, {quiet, 1}, {quiet, 1},
		}, 2},
		{"exactly the share moves up", []step{{Sample{Scheduled: 1000, Waited: 250, CPU: 3 * time.Millisecond}, 2}}, 1},
		{"just under the share does not", []step{{Sample{Scheduled: 1000, Waited: 249, CPU: 3 * time.Millisecond}, 1}}, 0},
		{"waits while idle do not count", []step{{Sample{Scheduled: 1000, Waited: 999, CPU: 2 * time.Millisecond}, 1}}, 0},
		{"busy ticks with too few samples keep two", []step{
			{queue, 2}, {few, 2}, {few, 2}, {few, 1}, {few, 1}, {few, 1}, {few, 1},
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tu := NewTuner(s)
			if tu.Procs() != 1 {
				t.Fatalf("starts at %d", tu.Procs())
			}
			for i, st := range c.steps {
				if got := tu.Step(st.in); got != st.want {
					t.Fatalf("step %d (%+v): %d Ps, want %d", i, st.in, got, st.want)
				}
				if tu.Procs() != st.want {
					t.Fatalf("step %d: Procs %d after Step returned %d", i, tu.Procs(), st.want)
				}
			}
			if tu.Moves() != c.moves {
				t.Errorf("moves %d, want %d", tu.Moves(), c.moves)
			}
		})
	}
}

// With the defaults a move to two needs waits in two ticks in a row, at
// one P and in a probe alike; a probe's count starts with the probe.
func TestTunerNeedsWaitsInARow(t *testing.T) {
	tu := NewTuner(Settings{Hold: 2})
	steps := []struct {
		in   Sample
		want int
	}{
		{queue, 1}, {calm, 1}, {queue, 1}, {calm, 1}, // never twice in a row
		{queue, 1}, {few, 1}, {queue, 2}, {calm, 2}, {quiet, 1}, // too few samples: the run goes on
		{flood, 2}, {quiet, 1}, // half of them waited: two at once
		{queue, 1}, {queue, 2}, // twice: two, hold 2
		{queue, 2}, {queue, 1}, // hold over: probe of 3 ticks
		{queue, 1}, {queue, 2}, // two waiting probe ticks: back to two, hold 4
		{calm, 2}, {calm, 2}, {calm, 2}, {queue, 1}, // probe; that queue at two does not count
		{calm, 1}, {queue, 1}, {queue, 2}, // waits in its last two ticks: two, hold 8
		{calm, 2}, {calm, 2}, {calm, 2}, {calm, 2}, {calm, 2}, {calm, 2}, {calm, 2}, {calm, 1},
		{calm, 1}, {queue, 1}, {calm, 1}, // probe over: one
		{calm, 1}, {queue, 1}, {queue, 2},
	}
	for i, st := range steps {
		if got := tu.Step(st.in); got != st.want {
			t.Fatalf("step %d (%+v): %d Ps, want %d", i, st.in, got, st.want)
		}
	}
}

func TestSettingsDefaults(t *testing.T) {
	d := NewTuner(Settings{}).Settings()
	if d.Tick <= 0 || d.SlowWait <= 0 || d.UpShare <= 0 || d.MinSched == 0 || d.Hold <= 0 ||
		d.MaxHold < d.Hold || d.ProbeTicks <= 0 {
		t.Fatalf("defaults not filled: %+v", d)
	}
	if got := NewTuner(Settings{Hold: 900}).Settings().MaxHold; got < 900 {
		t.Fatalf("MaxHold %d below Hold 900", got)
	}
}

func TestSplit(t *testing.T) {
	h := &metrics.Float64Histogram{
		Counts:  []uint64{5, 7, 11, 13},
		Buckets: []float64{math.Inf(-1), 10e-6, 50e-6, 100e-6, math.Inf(1)},
	}
	all, over := split(h, 50e-6)
	if all != 36 || over != 24 {
		t.Fatalf("split = %d, %d; want 36, 24", all, over)
	}
	if all, over := split(h, 1); all != 36 || over != 0 {
		t.Fatalf("split above every bucket = %d, %d", all, over)
	}
}

// The sampler reports deltas: a second read right after the first sees
// no more than what ran in between.
func TestSamplerDeltas(t *testing.T) {
	sm, ok := newSampler(latencies, 50e3)
	if !ok {
		t.Fatalf("the runtime has no %s", latencies)
	}
	a := sm.read()
	if a.Waited > a.Scheduled {
		t.Fatalf("waited %d > scheduled %d", a.Waited, a.Scheduled)
	}
	done := make(chan struct{})
	for i := 0; i < 1000; i++ {
		go func() { done <- struct{}{} }()
		<-done
	}
	b := sm.read()
	if b.Scheduled == 0 {
		t.Fatalf("1000 goroutines scheduled, sampler saw none: %+v", b)
	}
	if b.Waited > b.Scheduled {
		t.Fatalf("waited %d > scheduled %d", b.Waited, b.Scheduled)
	}
	// CPU: spin for 30 ms of process CPU time, then read.
	for start := processCPU(); processCPU()-start < 30*time.Millisecond; {
	}
	if c := sm.read(); c.CPU < 30*time.Millisecond {
		t.Fatalf("30 ms of CPU read as %v", c.CPU)
	}
}

// Without its metric the sampler says so, and Run leaves GOMAXPROCS alone
// rather than tune on empty samples (which read as idle: one P for good).
func TestSamplerWithoutMetric(t *testing.T) {
	sm, ok := newSampler("/no/such/metric:seconds", 50e3)
	if ok {
		t.Fatal("a metric the runtime does not have reported as available")
	}
	if s := sm.read(); s.Scheduled != 0 || s.Waited != 0 {
		t.Fatalf("samples from a missing metric: %+v", s)
	}
}

// FuzzTuner feeds arbitrary settings (the first four bytes: Hold,
// MaxHold, UpTicks, ProbeTicks, zero for the default) and sample sequences
// (three bytes a tick) and checks the invariants: one or two Ps, Procs
// agrees with Step, a move is counted for each change, the hold stays
// within [Hold, MaxHold], an idle tick always ends at one P, a move to two
// comes only on a tick that itself shows waits (busy, enough samples, at
// least UpShare of them waited), and two Ps never last more than MaxHold
// ticks without a probe at one.
func FuzzTuner(f *testing.F) {
	f.Add([]byte{3, 12, 0, 0, 200, 100, 40, 200, 100, 40, 10, 1, 1})
	f.Add([]byte{3, 12, 0, 0, 255, 255, 255, 0, 0, 0, 30, 10, 50})
	f.Add([]byte{1, 1, 1, 1, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Add([]byte{0, 0, 4, 2, 255, 200, 255, 5, 255, 255, 255, 70, 255, 255, 70, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 4 {
			return
		}
		tu := NewTuner(Settings{Hold: int(b[0] % 20), MaxHold: int(b[1] % 50), UpTicks: int(b[2] % 5), ProbeTicks: int(b[3] % 6)})
		set := tu.Settings()
		b = b[4:]
		prev, moves, atTwo := tu.Procs(), 0, 0
		for i := 0; i+2 < len(b); i += 3 {
			s := Sample{Scheduled: uint64(b[i]) * 4, CPU: time.Duration(b[i+2]) * time.Millisecond / 4}
			s.Waited = s.Scheduled * uint64(b[i+1]) / 255
			idle := float64(s.CPU) < set.IdleCPU*float64(set.Tick)
			got := tu.Step(s)
			if got != 1 && got != 2 {
				t.Fatalf("tick %d: %d Ps", i/3, got)
			}
			if got != tu.Procs() {
				t.Fatalf("tick %d: Step %d, Procs %d", i/3, got, tu.Procs())
			}
			if got == 2 && prev == 1 && (idle || s.Scheduled < set.MinSched ||
				float64(s.Waited) < set.UpShare*float64(s.Scheduled)) {
				t.Fatalf("tick %d: moved to two on %+v, which shows no waits (%+v)", i/3, s, set)
			}
			if got != prev {
				moves++
			}
			prev = got
			if got == 2 {
				atTwo++
			} else {
				atTwo = 0
			}
			if atTwo > set.MaxHold {
				t.Fatalf("tick %d: %d ticks at two without a probe, MaxHold %d", i/3, atTwo, set.MaxHold)
			}
			if tu.hold < set.Hold || tu.hold > set.MaxHold {
				t.Fatalf("tick %d: hold %d outside [%d, %d]", i/3, tu.hold, set.Hold, set.MaxHold)
			}
			if idle && got != 1 {
				t.Fatalf("tick %d: idle (%v) but %d Ps", i/3, s.CPU, got)
			}
		}
		if moves != tu.Moves() {
			t.Fatalf("%d changes seen, Moves says %d", moves, tu.Moves())
		}
	})
}
