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
	// BaseDir, when set, is what relative NetBSD extent paths are
	// relative to (NetBSD's iscsi-target opens them before it changes
	// to /, so they are relative to where it was started).
	BaseDir string
}

// DefaultAuthsPath is where NetBSD's iscsi-target reads CHAP users.
const DefaultAuthsPath = "/etc/iscsi/auths"

// AuthsPath is the auths file LoadOptions.AuthsPath names.
func AuthsPath(p string) string {
	if p == "" {
		return DefaultAuthsPath
	}
	return p
}

// Load reads the config at path (and its companion files), returning the
// model and every diagnostic. err is non-nil when a file cannot be read or
// diags holds errors: this is the strict reading of --check and of a
// reload (a file with errors is refused as a whole). The model is
// returned whenever the file was read; it leaves out every item with
// errors (a LUN, a target, an access-control item, a setting), and a
// diagnostic says what is left out.
func Load(path string, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	return strict(read(path, opts))
}

// LoadBytes is Load on content already read from path.
func LoadBytes(path string, src []byte, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	return strict(lower(path, src, opts))
}

// LoadForStart is Load for a daemon that is starting: it serves what is
// valid, as IET and NetBSD did. The model and the diagnostics are those
// of Load (errors included, for the log); err is non-nil only when a file
// cannot be read or nothing may be served: a NetBSD file that leaves no
// target (NetBSD's iscsi-target refuses to start then too).
func LoadForStart(path string, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	return forStart(read(path, opts))
}

// LoadBytesForStart is LoadForStart on content already read from path.
func LoadBytesForStart(path string, src []byte, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	return forStart(lower(path, src, opts))
}

func strict(cfg *config.Config, ds config.Diagnostics, ioErr error) (*config.Config, config.Diagnostics, error) {
	if ioErr != nil {
		return cfg, ds, ioErr
	}
	return cfg, ds, ds.Err()
}

func forStart(cfg *config.Config, ds config.Diagnostics, ioErr error) (*config.Config, config.Diagnostics, error) {
	if ioErr != nil {
		return cfg, ds, ioErr
	}
	if cfg.Dialect == config.DialectNetBSD && len(cfg.Targets) == 0 {
		return cfg, ds, &NothingToServeError{Source: cfg.Source}
	}
	return cfg, ds, nil
}

// NothingToServeError is LoadForStart's refusal of a NetBSD file that
// leaves no target; the diagnostics already hold the file's error that
// says so (--check prints that one only).
type NothingToServeError struct{ Source string }

func (e *NothingToServeError) Error() string {
	return fmt.Sprintf("%s: no target left to serve (NetBSD's iscsi-target refuses to start too)", e.Source)
}

func read(path string, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, &FileError{Path: path, What: "config file", Err: err}
	}
	return lower(path, b, opts)
}

// FileError is a config file that cannot be read, in the form of the
// diagnostics: "FILE: error: cannot open WHAT: CAUSE".
type FileError struct {
	Path string
	What string // "config file", "CHAP accounts file", ...
	Err  error
}

func (e *FileError) Error() string {
	verb, cause := "read", e.Err
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		// The path is already the message's first word.
		cause = pe.Err
		if pe.Op == "open" {
			verb = "open"
		}
	}
	return fmt.Sprintf("%s: error: cannot %s %s: %v", e.Path, verb, e.What, cause)
}

func (e *FileError) Unwrap() error { return e.Err }

// lower reads src; err is only for a file that cannot be read or an
// unknown dialect.
func lower(path string, src []byte, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
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
		lowerNetBSD(f, opts.NetBSDBase, opts.BaseDir, cfg, &ds)
		if err := loadAuths(cfg, opts.AuthsPath, &ds); err != nil {
			return cfg, ds, err
		}
	default:
		return nil, nil, fmt.Errorf("compat: unknown dialect %q (want %s or %s)", d, config.DialectIET, config.DialectNetBSD)
	}
	sortDiagnostics(ds)
	return cfg, ds, nil
}

// sortDiagnostics orders diagnostics by position within each file (those
// of the whole file, without a line, last), files in the order they first
// appear.
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
		if (a.Line == 0) != (b.Line == 0) {
			// A problem of the whole file comes after its lines'.
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

func loadAuths(cfg *config.Config, path string, ds *config.Diagnostics) error {
	explicit := path != ""
	path = AuthsPath(path)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return nil
	case err != nil:
		return &FileError{Path: path, What: "CHAP accounts file", Err: err}
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
