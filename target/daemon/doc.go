// Package daemon runs the target engine as a system service: pid file with
// a lock (a second instance refuses to start), listeners (bound addresses
// or systemd socket activation), the admin socket, privilege drop,
// SIGHUP reload (a bad config keeps the old one), SIGTERM orderly
// shutdown, systemd readiness/reload/stopping/watchdog notifications,
// detaching with the parent waiting for readiness, and the IET
// /proc/net/iet listings written as files.
package daemon
