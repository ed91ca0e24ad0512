// Package journal makes log lines carry their syslog priority when
// standard error is connected to the systemd journal: each line gets the
// "<N>" prefix of sd-daemon(3), so journald records warnings as warnings
// and errors as errors instead of everything at the unit's default
// priority.
package journal
