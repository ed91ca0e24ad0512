package compat

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ietgo/ietd/parser/ietconf"
	"github.com/ietgo/ietd/parser/netbsd"
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

// DefaultAuthsPath is where NetBSD's iscsi-target reads CHAP users.
const DefaultAuthsPath = "/etc/iscsi/auths"

// Load reads the config at path (and its companion files), returning the
// model and every diagnostic. err is non-nil when the file cannot be read
// or diags holds errors; the model is returned whenever the file was read.
func Load(path string, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("compat: %w", err)
	}
	return LoadBytes(path, b, opts)
}

// LoadBytes is Load on content already read from path.
func LoadBytes(path string, src []byte, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	var ds config.Diagnostics
	d := opts.Dialect
	if d == "" {
		d = DetectDialect(path, src)
	}
	cfg := &config.Config{Dialect: d, Source: path}
	switch d {
	case config.DialectIET:
		f, pds := ietconf.Parse(path, src)
		ds = append(ds, pds...)
		lowerIET(f, cfg, &ds)
		if err := loadACLs(cfg, opts.ACLDir, &ds); err != nil {
			return cfg, ds, err
		}
	case config.DialectNetBSD:
		f, pds := netbsd.ParseTargets(path, src)
		ds = append(ds, pds...)
		lowerNetBSD(f, opts.NetBSDBase, cfg, &ds)
		if err := loadAuths(cfg, opts.AuthsPath, &ds); err != nil {
			return cfg, ds, err
		}
	default:
		return nil, nil, fmt.Errorf("compat: unknown dialect %q (want %s or %s)", d, config.DialectIET, config.DialectNetBSD)
	}
	sortDiagnostics(ds)
	return cfg, ds, ds.Err()
}

// sortDiagnostics orders diagnostics by position within each file, files
// in the order they first appear.
func sortDiagnostics(ds config.Diagnostics) {
	fileOrder := map[string]int{}
	for _, d := range ds {
		if _, ok := fileOrder[d.Pos.File]; !ok {
			fileOrder[d.Pos.File] = len(fileOrder)
		}
	}
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return fileOrder[a.File] < fileOrder[b.File]
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

func loadAuths(cfg *config.Config, path string, ds *config.Diagnostics) error {
	explicit := path != ""
	if !explicit {
		path = DefaultAuthsPath
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return nil
	case err != nil:
		return fmt.Errorf("compat: auths: %w", err)
	}
	f, pds := netbsd.ParseAuths(path, b)
	*ds = append(*ds, pds...)
	lowerAuths(f, cfg, ds)
	return nil
}

// DetectDialect guesses the format of a config file: NetBSD when a line
// starts with extentN/deviceN or a targetN/lunN name (IET's keywords are
// exactly "Target" and "Lun"), IET otherwise; the file name decides when
// the content says nothing.
func DetectDialect(path string, src []byte) config.Dialect {
	for _, line := range strings.Split(string(src), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		k := fields[0]
		switch {
		case strings.HasPrefix(k, "extent") || strings.HasPrefix(k, "device"):
			return config.DialectNetBSD
		case (strings.HasPrefix(k, "target") || strings.HasPrefix(k, "lun")) &&
			!strings.EqualFold(k, "target") && !strings.EqualFold(k, "lun") && len(fields) >= 3:
			return config.DialectNetBSD
		case strings.EqualFold(k, "target"), strings.EqualFold(k, "lun"), strings.EqualFold(k, "incominguser"):
			return config.DialectIET
		}
	}
	if filepath.Base(path) == "targets" {
		return config.DialectNetBSD
	}
	return config.DialectIET
}
