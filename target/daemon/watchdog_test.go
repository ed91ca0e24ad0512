package daemon

import (
	"sync/atomic"
	"testing"
	"time"
)

// While a reload runs, the watchdog is fed from beside the main loop; the
// feeding stops when the reload is over, and with no watchdog there is
// none.
func TestFeedWatchdog(t *testing.T) {
	var pings atomic.Int32
	stop := feedWatchdog(5*time.Millisecond, func() { pings.Add(1) })
	for i := 0; i < 1000 && pings.Load() < 3; i++ {
		time.Sleep(time.Millisecond)
	}
	stop()
	n := pings.Load()
	if n < 3 {
		t.Fatalf("%d pings in a second at a 5 ms period", n)
	}
	time.Sleep(20 * time.Millisecond)
	if m := pings.Load(); m != n {
		t.Fatalf("pinged %d times after stop", m-n)
	}
	feedWatchdog(0, func() { t.Error("pinged without a watchdog") })()
}
