package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/syslog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ietgo/ietd/cmd/internal/journal"
	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/crc32c"
	"github.com/ietgo/ietd/target/daemon"
	"github.com/ietgo/ietd/target/procs"
	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"
)

// Version is the program version.
const Version = "0.9.0"

// Logger builds the process logger. level: 0 = warnings, 1 = info,
// 2+ = debug (IET's -d).
//
// Without foreground, the process that detaches logs nothing (the child
// it starts runs the same start and logs it), and the detached child also
// hands its warnings and errors to the parent until it is ready: the
// parent prints them on its stderr (Start), as NetBSD's iscsi-target
// printed its parse errors before daemon(3) and IET's ietd before
// daemonizing, since the child's stderr is /dev/null and there may be no
// syslog.
func Logger(name string, foreground bool, level int) (*logrus.Entry, error) {
	l := logrus.New()
	if !foreground {
		if !daemon.IsDetachedChild() {
			l.SetOutput(io.Discard)
			l.SetLevel(logrus.WarnLevel)
			return logrus.NewEntry(l), nil
		}
		l.AddHook(startupRelay{name})
	}
	switch {
	case level >= 3:
		l.SetLevel(logrus.TraceLevel)
	case level == 2:
		l.SetLevel(logrus.DebugLevel)
	case level == 1:
		l.SetLevel(logrus.InfoLevel)
	default:
		l.SetLevel(logrus.WarnLevel)
	}
	switch {
	case os.Getenv("JOURNAL_STREAM") != "" || os.Getenv("INVOCATION_ID") != "":
		// systemd adds time stamps and the unit name; the journal takes
		// each line's priority from its "<N>" prefix.
		var f logrus.Formatter = &logrus.TextFormatter{DisableTimestamp: true, DisableColors: true}
		if journal.StderrIsJournal(os.Getenv("JOURNAL_STREAM"), os.Stderr) {
			f = journal.Formatter{Inner: f}
		}
		l.SetFormatter(f)
		l.SetOutput(os.Stderr)
	case foreground:
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02T15:04:05.000000", DisableColors: true})
		l.SetOutput(os.Stderr)
	default:
		h, err := lsyslog.NewSyslogHook("", "", syslog.LOG_DAEMON, name)
		if err != nil {
			// No syslog daemon (containers): keep logging to stderr.
			l.SetOutput(os.Stderr)
			break
		}
		l.AddHook(h)
		l.SetOutput(io.Discard)
	}
	return logrus.NewEntry(l), nil
}

// startupRelay hands a detached child's warnings and errors to its parent
// (daemon.StartupMessage does nothing once the child is ready).
type startupRelay struct{ name string }

func (startupRelay) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (h startupRelay) Fire(e *logrus.Entry) error {
	daemon.StartupMessage(startupLine(h.name, e))
	return nil
}

// startupLine is a log entry as the parent prints it: a diagnostic as it
// is (FILE:LINE:COL: error: ...), anything else as NAME: LEVEL: message
// followed by its fields.
func startupLine(name string, e *logrus.Entry) string {
	msg := e.Message
	if !strings.Contains(msg, ": error: ") && !strings.Contains(msg, ": warning: ") {
		sev := "error"
		if e.Level == logrus.WarnLevel {
			sev = "warning"
		}
		msg = name + ": " + sev + ": " + msg
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		msg += fmt.Sprintf(" %s=%v", k, e.Data[k])
	}
	return msg
}

// AbsFrom returns path made absolute against dir ("" stays ""): a daemon's
// command-line path, resolved against its start directory
// (daemon.StartDir) so that the detached daemon, which runs in /, uses
// the file the foreground one would.
func AbsFrom(dir, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(dir, path)
}

// LoadFunc reads a daemon's configuration.
type LoadFunc = func() (*config.Config, config.Diagnostics, error)

// Loaders returns the config loading functions of a daemon. load is the
// strict reading (compat.Load): a file with any error is refused, which is
// what a SIGHUP reload must do (the running config is kept). start is the
// reading at start-up (compat.LoadForStart): every valid target and LUN is
// served, each broken item is left out and logged. An empty path with no
// file found gives an empty IET config (IET: "configure through ietadm").
func Loaders(path string, candidates []string, opts compat.LoadOptions, log *logrus.Entry) (load, start LoadFunc) {
	find := func() string {
		if path != "" {
			return path
		}
		for i, c := range candidates {
			if _, err := os.Stat(c); err == nil {
				if i > 0 && log != nil {
					log.Warnf("using %s; %s is the preferred location", c, candidates[0])
				}
				return c
			}
		}
		if log != nil {
			log.Warnf("%s not found, configure through ietadm", strings.Join(candidates, " or "))
		}
		return ""
	}
	type reader = func(string, compat.LoadOptions) (*config.Config, config.Diagnostics, error)
	type bytesReader = func(string, []byte, compat.LoadOptions) (*config.Config, config.Diagnostics, error)
	with := func(read reader, readBytes bytesReader) LoadFunc {
		return func() (*config.Config, config.Diagnostics, error) {
			p := find()
			if p == "" {
				// No targets yet, but IET's access-control files apply.
				o := opts
				o.Dialect = config.DialectIET
				return readBytes("", nil, o)
			}
			return read(p, opts)
		}
	}
	return with(compat.Load, compat.LoadBytes), with(compat.LoadForStart, compat.LoadBytesForStart)
}

// ParseLUN parses ietadm LUN parameters with exactly the rules of a Lun
// line in ietd.conf (it runs them through the ietd.conf reader).
func ParseLUN(number uint64, params string) (*config.LUN, error) {
	if strings.ContainsAny(params, "\n\r") {
		return nil, fmt.Errorf("LUN parameters must be one line")
	}
	if strings.Contains(params, " #") || strings.Contains(params, "\t#") || strings.HasPrefix(params, "#") {
		// The ietd.conf reader would take the rest as a comment and
		// silently drop it (a path's tail, a later IOMode=ro).
		return nil, fmt.Errorf("LUN parameters: a '#' at the start of a word cannot be taken (ietd.conf reads it as a comment)")
	}
	text := fmt.Sprintf("Target iqn.2001-04.invalid.ietadm:lun\n\tLun %d %s\n", number, params)
	// An empty directory: no access-control files take part.
	empty, err := os.MkdirTemp("", "ietadm-lun")
	if err != nil {
		return nil, err
	}
	defer os.Remove(empty)
	cfg, diags, err := compat.LoadBytes("ietadm --params", []byte(text), compat.LoadOptions{Dialect: config.DialectIET, ACLDir: empty})
	if err != nil {
		var msgs []string
		for _, d := range diags {
			if d.Severity == config.Error && !d.LeftOut {
				msgs = append(msgs, d.Msg)
			}
		}
		if len(msgs) > 0 {
			return nil, fmt.Errorf("%s", strings.Join(msgs, "; "))
		}
		return nil, err
	}
	if len(cfg.Targets) != 1 || len(cfg.Targets[0].LUNs) != 1 {
		return nil, fmt.Errorf("LUN parameters %q did not define a LUN", params)
	}
	l := cfg.Targets[0].LUNs[0]
	l.Pos = config.Position{}
	return l, nil
}

// Check reads a config as the daemon does at start (start, from Loaders)
// and prints every diagnostic; it returns an error when there are errors,
// after saying what a start and a reload would do with the file.
func Check(w io.Writer, start LoadFunc) error {
	cfg, diags, err := start()
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
	}
	if err != nil {
		var none *compat.NothingToServeError
		if !errors.As(err, &none) {
			// (A NetBSD file with no target: the last diagnostic said so.)
			fmt.Fprintln(w, err)
		}
		return err
	}
	luns := 0 // the LUNs a start would serve
	// A LUN a start leaves out is an error in a NetBSD file (NetBSD's
	// iscsi-target refused to start: a missing read-only file, a failed
	// open); in an IET file a warning, as IET skipped it and started (and
	// a reload keeps such a LUN out with a warning rather than refusing).
	lunErrs := 0
	sev := "warning"
	if cfg.Dialect == config.DialectNetBSD {
		sev = "error"
	}
	leftOut := func() {
		if sev == "error" {
			lunErrs++
		}
	}
	for _, t := range cfg.Targets {
		for _, l := range t.LUNs {
			out := false
			files := lunFiles(l)
			for _, mf := range files {
				out = out || mf.leftOut
			}
			var probeErr error
			if !out {
				// What the files allow, the start's own open and checks
				// decide (block size, at least one block, windows).
				probeErr = daemon.ProbeLUN(l)
			}
			for _, mf := range files {
				switch {
				case mf.leftOut:
					leftOut()
					fmt.Fprintf(w, "%s: %s: LUN %d of target %s: %s: a start leaves this LUN out (%s)\n", mf.at, sev, l.Number, t.Name, mf.msg, leftOutNote(cfg.Dialect))
				case mf.creates && openRefused(probeErr):
					// The start's open fails before it creates anything.
				default:
					fmt.Fprintf(w, "%s: warning: LUN %d of target %s: %s\n", mf.at, l.Number, t.Name, mf.msg)
				}
			}
			if !out {
				if err := probeErr; err != nil {
					out = true
					leftOut()
					msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("LUN %d: ", l.Number))
					msg = strings.TrimPrefix(msg, fmt.Sprintf("lun %d: ", l.Number))
					at := l.Pos
					if l.Store != nil && l.Store.Pos.Line > 0 {
						at = l.Store.Pos // the extent's line (NetBSD), the Path= (IET)
					}
					fmt.Fprintf(w, "%s: %s: LUN %d of target %s: %s: a start leaves this LUN out (%s)\n", at, sev, l.Number, t.Name, msg, leftOutNote(cfg.Dialect))
				}
			}
			if !out {
				luns++
			}
		}
	}
	source := cfg.Source
	if source == "" {
		source = "(no config file)"
	}
	if diags.HasErrors() {
		// A left-out item is reported with its causes: count the causes
		// only, so one mistake does not read as two.
		n := lunErrs
		for _, d := range diags {
			if d.Severity == config.Error && !d.LeftOut {
				n++
			}
		}
		fmt.Fprintf(w, "%s: %d error(s): a start serves the rest (%s, %d target(s), %d LUN(s)) without what is left out above; a reload (SIGHUP) with this file is refused\n", source, n, cfg.Dialect, len(cfg.Targets), luns)
		return diags
	}
	if lunErrs > 0 {
		fmt.Fprintf(w, "%s: %d error(s): a start serves the rest (%s, %d target(s), %d LUN(s)) without the LUNs left out above\n", source, lunErrs, cfg.Dialect, len(cfg.Targets), luns)
		return fmt.Errorf("%s: %d LUN(s) cannot be served", source, lunErrs)
	}
	fmt.Fprintf(w, "%s: ok (%s, %d target(s), %d LUN(s))\n", source, cfg.Dialect, len(cfg.Targets), luns)
	return nil
}

// leftOutNote says what the original daemon did with a LUN whose file
// is missing.
func leftOutNote(d config.Dialect) string {
	if d == config.DialectNetBSD {
		return "NetBSD's iscsi-target refused to start"
	}
	return "as IET"
}

// openRefused says whether err is the open of a store failing (before a
// start would create or extend its file), not a check after it.
func openRefused(err error) bool {
	var be *backing.Error
	return errors.As(err, &be) && be.Op == "open"
}

type missingFile struct {
	at  config.Position // the extent's line when known, else the LUN's
	msg string
	// leftOut: a start cannot use the file and leaves the LUN out;
	// otherwise a start serves it and msg says what it does first.
	leftOut bool
	// creates: msg says a start creates or extends the file (not said
	// when the start fails anyway).
	creates bool
}

// lunFiles lists what a start will do with the files of a LUN's store
// that --check should tell (see missingFiles).
func lunFiles(l *config.LUN) []missingFile {
	return missingFiles(l.Store, fileCheck{
		blockSize: l.BlockSize,
		blockio:   l.Type == "blockio",
		readOnly:  l.ReadOnly(),
	}, l.Pos)
}

// fileCheck is what missingFiles needs to know of the LUN.
type fileCheck struct {
	blockSize int
	blockio   bool
	readOnly  bool // a read-only store is never created
}

// missingFiles lists the files of a store (and its members) a start
// cannot use, as backing.Open decides: missing and not to be created, to
// be created in a directory that does not exist or with no length to
// give them, too short to hold one block, a directory or anything else
// that is neither a regular file nor a block device. It also lists the
// missing files a start creates, and blockio on a regular file (served,
// IET refused it), and a read-only block device (served write-protected).
// It stats, and opens only a device, read-only, to ask whether it is
// read-only.
func missingFiles(st *config.Store, c fileCheck, at config.Position) []missingFile {
	if st == nil {
		return nil
	}
	if st.Pos.Line > 0 {
		at = st.Pos
	}
	blockSize := c.blockSize
	if blockSize <= 0 {
		blockSize = 512
	}
	var out []missingFile
	add := func(leftOut bool, format string, args ...any) {
		out = append(out, missingFile{at: at, msg: fmt.Sprintf(format, args...), leftOut: leftOut})
	}
	addCreates := func(format string, args ...any) {
		out = append(out, missingFile{at: at, msg: fmt.Sprintf(format, args...), creates: true})
	}
	create := st.Create && !c.readOnly
	if st.Kind == config.StoreFile && st.Path != "" {
		fi, err := os.Stat(st.Path)
		switch {
		case err != nil && !create:
			add(true, "%v", err)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			add(true, "%v", err)
		case err != nil && st.Size == 0:
			add(true, "%s does not exist, and its length is the file's own (\"size\"): nothing to create", st.Path)
		case err != nil:
			if _, derr := os.Stat(filepath.Dir(st.Path)); derr != nil {
				add(true, "%s cannot be created: %v", st.Path, derr)
				break
			}
			// As NetBSD (O_CREAT), never written: the file is only
			// extended to the extent's end.
			n := st.Offset + st.Size
			if strings.HasPrefix(filepath.Clean(st.Path), "/dev/") {
				addCreates("%s does not exist: a start creates a regular file of %d bytes (sparse) there, not a disk; is the disk missing or its name wrong? (on Linux /dev is in memory: what is written to the file is lost at reboot)", st.Path, n)
			} else {
				addCreates("%s does not exist: a start creates it (%d bytes, sparse)", st.Path, n)
			}
		case fi.IsDir():
			add(true, "%s is a directory", st.Path)
		case !backing.OpensMode(fi.Mode()):
			add(true, "%s is not a regular file or a block device (%s)", st.Path, modeName(fi.Mode()))
		case fi.Mode().IsRegular() && st.Size == 0 && fi.Size()-st.Offset < int64(blockSize):
			add(true, "%s holds %d byte(s) past offset %d, less than one %d-byte block", st.Path, max(fi.Size()-st.Offset, 0), st.Offset, blockSize)
		case fi.Mode().IsRegular() && c.blockio:
			add(false, "%s", backing.BlockioOnFileNote(st.Path))
		case fi.Mode()&fs.ModeDevice != 0 && !c.readOnly && backing.DeviceWriteProtected(st.Path):
			add(false, "%s", backing.WriteProtectedNote(st.Path))
		}
		if err == nil && fi.Mode().IsRegular() && st.Size > 0 && fi.Size() < st.Offset+st.Size {
			switch {
			case c.readOnly && st.Offset < fi.Size():
				// (An offset past the end: the start's open refuses it.)
				add(false, "%s", backing.PastEndNote(st.Path, st.Offset, st.Size, fi.Size()))
			case create:
				addCreates("%s is %d bytes: a start extends it to %d bytes (ftruncate, sparse; nothing is written; NetBSD grew it too)", st.Path, fi.Size(), st.Offset+st.Size)
			}
		}
	}
	for _, m := range st.Members {
		out = append(out, missingFiles(m, c, at)...)
	}
	return out
}

// modeName names a file type that is no store.
func modeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return fmt.Sprintf("mode %v", m.Type())
}

// Start runs the daemon: in the foreground directly, otherwise detached
// with the parent returning once the child is ready. It returns the
// process exit status.
func Start(foreground bool, opts daemon.Options, stderr io.Writer, name string) int {
	// First, before anything is printed or opened: once, the daemon
	// runs again with the runtime setting (a detached child inherits it).
	reexecErr := keepSysmonAwake()
	if addr := os.Getenv("IETD_PPROF"); addr != "" {
		// Profiling for `make bench` (never on by default).
		go http.ListenAndServe(addr, nil)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// Data buffers in flight and pooled are bounded (16 + 16 MiB);
		// keep the garbage collector close to that.
		debug.SetMemoryLimit(48 << 20)
		if os.Getenv("GOGC") == "" {
			// The limit bounds the heap; under it, collect when the
			// heap has grown 4x instead of 2x. The live heap of small
			// I/O is a few MiB, so with the default the collector ran
			// several times a second at 40k commands/s (mark, and a
			// sweep of every span, pooled buffers' included).
			debug.SetGCPercent(400)
		}
	}
	if !foreground {
		done, report, err := daemon.Detach(30*time.Second, stderr)
		if done {
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", name, err)
				return 1
			}
			return 0
		}
		opts.Ready = report
	}
	if opts.Signals == nil {
		// Catch the signals before anything else: the parent returns
		// (and an init script may send SIGTERM) as soon as the daemon
		// reports ready, which Run does before its main loop starts;
		// a SIGTERM then killed the daemon outright, pid file left behind.
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(sigs)
		opts.Signals = sigs
	}
	if opts.Log != nil && opts.Log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		opts.Log.Debug(sysmonNote(os.Getenv("GODEBUG"), reexecErr))
		opts.Log.Debug("digests: " + crc32c.Implementation())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go procs.Run(ctx, opts.Log, procs.Settings{}) // returns at once unless it tunes
	if err := daemon.Run(ctx, opts); err != nil {
		if opts.Log != nil {
			opts.Log.WithError(err).Error("exiting")
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
