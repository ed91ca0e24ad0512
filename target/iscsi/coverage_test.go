package iscsi

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

func TestCoverage(t *testing.T) {
	type step struct {
		off, n uint32
		ok     bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
		spans []span
	}{
		{"in order", []step{{0, 8, true}, {8, 8, true}, {16, 4, true}}, []span{{0, 20}}},
		{"same range twice", []step{{0, 8, true}, {0, 8, false}, {8, 8, true}}, []span{{0, 16}}},
		{"partial overlap", []step{{0, 8, true}, {4, 8, false}}, []span{{0, 8}}},
		{"overlap from the left", []step{{8, 8, true}, {4, 8, false}}, []span{{8, 16}}},
		{"fills a gap", []step{{0, 4, true}, {8, 4, true}, {4, 4, true}}, []span{{0, 12}}},
		{"gap filled too far", []step{{0, 4, true}, {8, 4, true}, {4, 6, false}}, []span{{0, 4}, {8, 12}}},
		{"before", []step{{8, 4, true}, {0, 4, true}}, []span{{0, 4}, {8, 12}}},
		{"joins the next", []step{{8, 4, true}, {4, 4, true}}, []span{{4, 12}}},
		{"empty", []step{{0, 0, true}, {0, 4, true}, {2, 0, true}}, []span{{0, 4}}},
		{"inside", []step{{0, 16, true}, {4, 4, false}}, []span{{0, 16}}},
		{"covers", []step{{4, 4, true}, {0, 16, false}}, []span{{4, 8}}},
	} {
		var cv coverage
		cv.reset()
		for i, s := range tc.steps {
			if got := cv.add(s.off, s.n); got != s.ok {
				t.Errorf("%s: step %d add(%d,%d) = %v, want %v", tc.name, i, s.off, s.n, got, s.ok)
			}
		}
		if len(cv.spans) != len(tc.spans) {
			t.Errorf("%s: spans %v, want %v", tc.name, cv.spans, tc.spans)
			continue
		}
		for i := range tc.spans {
			if cv.spans[i] != tc.spans[i] {
				t.Errorf("%s: spans %v, want %v", tc.name, cv.spans, tc.spans)
			}
		}
	}
}

// Random PDUs against a byte map: add accepts exactly the ranges that touch
// no filled byte, and the spans are exactly the filled bytes.
func TestCoverageAgainstAByteMap(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 2000; round++ {
		const size = 64
		var filled [size]bool
		var cv coverage
		cv.reset()
		for k := 0; k < 12; k++ {
			off := uint32(rng.Intn(size))
			n := uint32(rng.Intn(size - int(off) + 1))
			free := true
			for b := off; b < off+n; b++ {
				free = free && !filled[b]
			}
			if got := cv.add(off, n); got != free {
				t.Fatalf("round %d: add(%d,%d) = %v, want %v (spans %v)", round, off, n, got, free, cv.spans)
			}
			if free {
				for b := off; b < off+n; b++ {
					filled[b] = true
				}
			}
			var want [size]bool
			for i, s := range cv.spans {
				if s.start >= s.end || (i > 0 && cv.spans[i-1].end >= s.start) {
					t.Fatalf("round %d: spans not sorted, merged and non-empty: %v", round, cv.spans)
				}
				for b := s.start; b < s.end; b++ {
					want[b] = true
				}
			}
			if want != filled {
				t.Fatalf("round %d: spans %v do not match the filled bytes", round, cv.spans)
			}
		}
	}
}

func TestCoverageInOrderDoesNotAllocate(t *testing.T) {
	var cv coverage
	allocs := testing.AllocsPerRun(100, func() {
		cv.reset()
		for off := uint32(0); off < 1<<20; off += 8192 {
			cv.add(off, 8192)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations for a write in order, want 0", allocs)
	}
}

func TestCoverageBoundsItsSpans(t *testing.T) {
	var cv coverage
	cv.reset()
	for i := uint32(0); i < maxCoverageSpans; i++ {
		if !cv.add(i*2, 1) {
			t.Fatalf("span %d refused", i)
		}
	}
	if cv.add(maxCoverageSpans*2, 1) {
		t.Fatal("one span more than maxCoverageSpans accepted")
	}
	if !cv.add(1, 1) { // fills a hole: fewer spans, still fine
		t.Fatal("filling a hole refused at the limit")
	}
	if len(cv.spans) != maxCoverageSpans-1 {
		t.Fatalf("%d spans after filling a hole, want %d", len(cv.spans), maxCoverageSpans-1)
	}
}

func TestCoverageHoles(t *testing.T) {
	var cv coverage
	for _, r := range [][2]uint32{{100, 50}, {300, 100}, {0, 20}} {
		if !cv.add(r[0], r[1]) {
			t.Fatalf("add %v refused", r)
		}
	}
	for _, c := range []struct {
		start, end uint32
		want       string
	}{
		{0, 500, "[20 100] [150 300] [400 500]"},
		{0, 20, ""},
		{10, 120, "[20 100]"},
		{120, 310, "[150 300]"},
		{420, 430, "[420 430]"},
		{160, 170, "[160 170]"},
	} {
		var got []string
		cv.holes(c.start, c.end, func(g span) { got = append(got, fmt.Sprint([]uint32{g.start, g.end})) })
		if s := strings.Join(got, " "); s != c.want {
			t.Errorf("holes(%d, %d) = %q, want %q", c.start, c.end, s, c.want)
		}
	}
}
