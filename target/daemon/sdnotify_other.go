//go:build !linux

package daemon

import "time"

// No systemd here: notifications go nowhere (NetBSD rc.d and Solaris SMF
// wait for the pid file or the detached parent's exit instead).
const (
	notifyReady = iota
	notifyReloading
	notifyWatchdog
	notifyStopping
)

func notify(int) {}

func watchdogInterval() time.Duration { return 0 }
