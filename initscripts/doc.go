// Package initscripts holds no Go code of its own: it is the home of the
// service files that start ietd and iscsi-target on real hosts (Red Hat and
// Debian SysV scripts, the NetBSD rc.d script, the Solaris SMF manifest and
// method, systemd units), their man pages (man/) and the Makefile that
// installs them. Its tests lint every file with the platform tools when
// they are installed and run the shell scripts for real against temporary
// paths, with a fake daemon and, when $IETD_BIN_DIR is set, the real one.
package initscripts
