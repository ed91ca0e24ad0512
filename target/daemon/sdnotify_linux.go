package daemon

import (
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// systemd's service notifications (sd_notify(3)); nothing happens when
// the daemon was not started by systemd (no NOTIFY_SOCKET).
const (
	notifyReady     = sd.SdNotifyReady
	notifyReloading = sd.SdNotifyReloading
	notifyWatchdog  = sd.SdNotifyWatchdog
	notifyStopping  = sd.SdNotifyStopping
)

func notify(state string) { sd.SdNotify(false, state) }

// watchdogInterval is systemd's WatchdogSec for this process, 0 if none.
func watchdogInterval() time.Duration {
	iv, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return iv
}
