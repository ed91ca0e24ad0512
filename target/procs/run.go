package procs

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

const latencies = "/sched/latencies:seconds"

// enabled reports whether Run would tune: GOMAXPROCS is not set in the
// environment and the runtime's default (the CPUs the process may use)
// is two.
func enabled() bool {
	return os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) == 2
}

// recheck is how often Run checks that the runtime's default is still two
// (a container's CPU limit or the CPU affinity may change while it runs),
// and runtimeDefault how: it applies the default, as the runtime itself
// would once a second while nothing sets GOMAXPROCS, and returns it.
var (
	recheck        = 10 * time.Second
	runtimeDefault = func() int {
		runtime.SetDefaultGOMAXPROCS()
		return runtime.GOMAXPROCS(0)
	}
)

// Run tunes GOMAXPROCS until ctx ends, then gives the runtime its default
// back. It returns at once, leaving the default, when not enabled
// (GOMAXPROCS set, or a default other than two) or when the runtime does
// not offer the scheduling latencies it reads. While it tunes the runtime
// no longer follows the CPU limit by itself, so every recheck Run applies
// the default: if that is no longer two it leaves it to the runtime (which
// then follows the limit again) until the default is two again, when the
// tuning starts afresh. The Tuner's moves are logged at debug level, every
// sample at trace level.
func Run(ctx context.Context, log *logrus.Entry, s Settings) {
	if !enabled() {
		return
	}
	t := NewTuner(s)
	s = t.Settings()
	sm, ok := newSampler(latencies, s.SlowWait)
	if !ok {
		if log != nil {
			log.Debugf("procs: the runtime has no %s: GOMAXPROCS stays at its default", latencies)
		}
		return
	}
	defer runtime.SetDefaultGOMAXPROCS()
	cur := t.Procs()
	runtime.GOMAXPROCS(cur)
	debug := func(format string, args ...any) {
		if log != nil && log.Logger.IsLevelEnabled(logrus.DebugLevel) {
			log.Debugf(format, args...)
		}
	}
	debug("procs: GOMAXPROCS tuned between 1 and 2 (every %v: two when %.0f%% of ready goroutines waited %v, %d ticks in a row, or %.0f%% in one; set GOMAXPROCS to keep it fixed)",
		s.Tick, 100*s.UpShare, s.SlowWait, s.UpTicks, 100*s.JumpShare)
	tick := time.NewTicker(s.Tick)
	defer tick.Stop()
	check := time.NewTicker(recheck)
	defer check.Stop()
	paused := false // the default is not two: the runtime has GOMAXPROCS
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			d := runtimeDefault()
			switch {
			case d != 2 && !paused:
				debug("procs: the runtime's default GOMAXPROCS is now %d (CPU limit or affinity changed): left to the runtime while it is not 2", d)
				paused = true
			case d == 2 && paused:
				debug("procs: the runtime's default GOMAXPROCS is 2 again: tuning afresh")
				paused = false
				t = NewTuner(s)
				sm.read() // the next sample starts now
				cur = t.Procs()
				runtime.GOMAXPROCS(cur)
			case d == 2:
				runtime.GOMAXPROCS(cur) // the default was applied: the Tuner's choice again
			}
			continue
		case <-tick.C:
		}
		if paused {
			continue
		}
		smp := sm.read()
		n := t.Step(smp)
		if log != nil && log.Logger.IsLevelEnabled(logrus.TraceLevel) {
			log.Tracef("procs: %d scheduled, %d waited >= %v, CPU %v, GOMAXPROCS %d",
				smp.Scheduled, smp.Waited, s.SlowWait, smp.CPU.Round(time.Millisecond), n)
		}
		if n != cur {
			runtime.GOMAXPROCS(n)
			debug("procs: GOMAXPROCS %d -> %d (%d of %d scheduled goroutines waited >= %v)",
				cur, n, smp.Waited, smp.Scheduled, s.SlowWait)
			cur = n
		}
	}
}

// sampler turns the runtime's cumulative histogram of scheduling
// latencies into per-tick Samples.
type sampler struct {
	slow     float64 // seconds
	m        []metrics.Sample
	lastAll  uint64
	lastSlow uint64
	lastCPU  time.Duration
}

// newSampler reads the histogram metric name once; ok is false when the
// runtime does not have it.
func newSampler(name string, slow time.Duration) (s *sampler, ok bool) {
	s = &sampler{slow: slow.Seconds(), m: []metrics.Sample{{Name: name}}}
	s.read()
	return s, s.m[0].Value.Kind() == metrics.KindFloat64Histogram
}

func (s *sampler) read() Sample {
	metrics.Read(s.m)
	if s.m[0].Value.Kind() != metrics.KindFloat64Histogram {
		return Sample{}
	}
	all, slow := split(s.m[0].Value.Float64Histogram(), s.slow)
	cpu := processCPU()
	out := Sample{Scheduled: all - s.lastAll, Waited: slow - s.lastSlow, CPU: cpu - s.lastCPU}
	s.lastAll, s.lastSlow, s.lastCPU = all, slow, cpu
	return out
}

// processCPU is the user+system time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// split sums a histogram's counts, in all and in the buckets that start
// at or above slow.
func split(h *metrics.Float64Histogram, slow float64) (all, over uint64) {
	for i, c := range h.Counts {
		all += c
		if h.Buckets[i] >= slow {
			over += c
		}
	}
	return all, over
}
