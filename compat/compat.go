// Package compat gives each config dialect its meaning: it reads IET and
// NetBSD files (through the grammars in parser/), lowers them into the one
// model of target/config, renders the model back as ietd.conf, and migrates
// NetBSD configs.
//
// STUB: the config owner replaces this file.
package compat

import (
	"errors"

	"github.com/ietgo/ietd/target/config"
)

// LoadOptions say how to find and read a config.
type LoadOptions struct {
	// Dialect forces a format; "" detects it from the content.
	Dialect config.Dialect
	// ACLDir is where IET's initiators.allow/initiators.deny/targets.allow
	// are looked up; "" means IET's search order (/etc/iet, then /etc).
	ACLDir string
	// AuthsPath is the NetBSD auths file ("" = /etc/iscsi/auths if present).
	AuthsPath string
	// NetBSDBase is the NetBSD -t base name (default
	// iqn.1994-04.org.netbsd.iscsi-target).
	NetBSDBase string
}

// Load reads the config at path (and its companion files), returning the
// model and every diagnostic. err is non-nil when the file cannot be read
// or diags holds errors.
func Load(path string, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	return nil, nil, errors.New("compat: not implemented")
}

// RenderIET renders the model as ietd.conf text.
func RenderIET(cfg *config.Config) string { return "" }
