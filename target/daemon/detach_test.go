package daemon

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// A detached child that fails before it reports readiness (a command-line
// path it cannot read) hands its error to the parent, which returns it,
// instead of "daemon exited during start-up": the child's stderr is
// /dev/null. The test binary detaches itself; the child runs only this
// test.
func TestDetachRelaysEarlyFailure(t *testing.T) {
	if IsDetachedChild() {
		StartFailed(errors.New("config file: stat ietd.conf: no such file or directory"))
		StartFailed(errors.New("a second report is not sent"))
		os.Exit(1)
	}
	args := os.Args
	os.Args = []string{args[0], "-test.run=^TestDetachRelaysEarlyFailure$", "-test.count=1"}
	defer func() { os.Args = args }()
	done, report, err := Detach(30*time.Second, nil)
	if !done || report != nil {
		t.Fatalf("Detach in the parent: done %v, report %v", done, report != nil)
	}
	if err == nil || !strings.Contains(err.Error(), "config file: stat ietd.conf: no such file or directory") {
		t.Fatalf("parent's error %v, want the child's", err)
	}
	// Outside a detached child, StartFailed does nothing.
	StartFailed(errors.New("nowhere to send it"))
}
