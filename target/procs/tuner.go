package procs

import "time"

// Sample is what the process did during one tick.
type Sample struct {
	// Scheduled counts the (sampled) times goroutines went from ready to
	// running; Waited how many of them had waited at least SlowWait.
	Scheduled, Waited uint64
	// CPU is the process's CPU time (user+system) in the tick.
	CPU time.Duration
}

// Settings of the Tuner. Zero fields take the defaults.
type Settings struct {
	Tick     time.Duration // how often Run samples (default 50 ms)
	SlowWait time.Duration // a wait this long counts (default 100 µs)
	// UpShare: with one P, when at least this share of the scheduled
	// goroutines waited, UpTicks ticks in a row, move to two (defaults
	// 0.25 and 2).
	UpShare float64
	UpTicks int
	// JumpShare: a tick with this share of waits moves to two at once
	// (default 0.5).
	JumpShare float64
	// MinSched: a tick with fewer scheduled goroutines says nothing
	// about waits (default 20; the runtime samples one in eight).
	MinSched uint64
	// IdleCPU: a tick in which the process used less CPU than this share
	// of the tick is idle (default 0.05).
	IdleCPU    float64
	Hold       int // ticks at two before the first probe (default 40)
	MaxHold    int // longest hold between probes, in ticks (default 600)
	ProbeTicks int // ticks a probe at one P lasts (default 3, at least UpTicks)
}

func (s Settings) withDefaults() Settings {
	if s.Tick <= 0 {
		s.Tick = 50 * time.Millisecond
	}
	if s.SlowWait <= 0 {
		s.SlowWait = 100 * time.Microsecond
	}
	if s.UpShare <= 0 {
		s.UpShare = 0.25
	}
	if s.UpTicks <= 0 {
		s.UpTicks = 2
	}
	if s.JumpShare <= 0 {
		s.JumpShare = max(0.5, s.UpShare)
	}
	if s.MinSched == 0 {
		s.MinSched = 20
	}
	if s.IdleCPU <= 0 {
		s.IdleCPU = 0.05
	}
	if s.Hold <= 0 {
		s.Hold = 40
	}
	if s.MaxHold < s.Hold {
		s.MaxHold = max(600, s.Hold)
	}
	if s.ProbeTicks <= 0 {
		s.ProbeTicks = 3
	}
	s.ProbeTicks = max(s.ProbeTicks, s.UpTicks)
	return s
}

type state uint8

const (
	one   state = iota // one P
	two                // two Ps, until the next probe
	probe              // one P, trying whether that is enough
)

// Tuner chooses between one and two Ps, one Sample at a time. Use
// NewTuner.
type Tuner struct {
	set   Settings
	st    state
	left  int // ticks left in the hold (two) or the probe
	hold  int // the current hold, doubled after each failed probe
	run   int // ticks in a row with waits
	moves int // how many times the choice changed
}

// NewTuner returns a Tuner at one P.
func NewTuner(s Settings) *Tuner {
	s = s.withDefaults()
	return &Tuner{set: s, st: one, hold: s.Hold}
}

// Procs is the number of Ps the Tuner wants now.
func (t *Tuner) Procs() int {
	if t.st == two {
		return 2
	}
	return 1
}

// Moves counts the changes of Procs so far.
func (t *Tuner) Moves() int { return t.moves }

// Settings returns the settings in use, defaults filled in.
func (t *Tuner) Settings() Settings { return t.set }

// Step takes the Sample of the tick that just ended and returns the
// number of Ps for the next one.
func (t *Tuner) Step(s Sample) int {
	before := t.Procs()
	idle := float64(s.CPU) < t.set.IdleCPU*float64(t.set.Tick)
	switch {
	case idle:
		t.run = 0
	case s.Scheduled < t.set.MinSched:
		// No evidence either way: the run neither grows nor ends.
	case float64(s.Waited) >= t.set.JumpShare*float64(s.Scheduled):
		t.run = max(t.run+1, t.set.UpTicks)
	case float64(s.Waited) >= t.set.UpShare*float64(s.Scheduled):
		t.run++
	default:
		t.run = 0
	}
	waiting := t.run >= t.set.UpTicks
	switch t.st {
	case one:
		if waiting {
			t.st, t.left, t.run = two, t.hold, 0
		}
	case two:
		t.left--
		switch {
		case idle:
			// Nothing to lose: back to one, and the next load is
			// judged afresh.
			t.st, t.hold = one, t.set.Hold
		case t.left <= 0:
			// The probe judges only its own ticks.
			t.st, t.left, t.run = probe, t.set.ProbeTicks, 0
		}
	case probe:
		t.left--
		switch {
		case waiting:
			// Still needs two: probe less often while it does.
			t.hold = min(2*t.hold, t.set.MaxHold)
			t.st, t.left, t.run = two, t.hold, 0
		case t.left <= 0:
			t.st, t.hold = one, t.set.Hold
		}
	}
	if t.Procs() != before {
		t.moves++
	}
	return t.Procs()
}
