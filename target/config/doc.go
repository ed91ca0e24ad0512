// Package config is the one configuration model that every dialect (IET's
// ietd.conf and allow/deny files, NetBSD's targets and auths files) is lowered
// into, and that the target engine runs on.
//
// The model carries positions (file:line:col) for every element that came
// from a file, so that the engine and the admin tools can point back at the
// text that produced a target, LUN or account. Problems found while building
// a model are collected as Diagnostics and reported together.
package config
