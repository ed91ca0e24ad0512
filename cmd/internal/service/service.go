package service

import (
	"context"
	"fmt"
	"io"
	"log/syslog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ietgo/ietd/cmd/internal/journal"
	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/daemon"
	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"
)

// Version is the program version.
const Version = "0.9.0"

// Logger builds the process logger. level: 0 = warnings, 1 = info,
// 2+ = debug (IET's -d).
func Logger(name string, foreground bool, level int) (*logrus.Entry, error) {
	l := logrus.New()
	switch {
	case level >= 2:
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

// Loader returns the config loading function of a daemon. An empty path
// with no file found gives an IET config with no targets (IET: "configure
// through ietadm") and the access-control files of opts.ACLDir.
func Loader(path string, candidates []string, opts compat.LoadOptions, log *logrus.Entry) func() (*config.Config, config.Diagnostics, error) {
	return func() (*config.Config, config.Diagnostics, error) {
		p := path
		if p == "" {
			for i, c := range candidates {
				if _, err := os.Stat(c); err == nil {
					p = c
					if i > 0 && log != nil {
						log.Warnf("using %s; %s is the preferred location", c, candidates[0])
					}
					break
				}
			}
			if p == "" {
				if log != nil {
					log.Warnf("%s not found, configure through ietadm", strings.Join(candidates, " or "))
				}
				// No targets yet, but IET's access-control files apply.
				o := opts
				o.Dialect = config.DialectIET
				return compat.LoadBytes("", nil, o)
			}
		}
		return compat.Load(p, opts)
	}
}

// ParseLUN parses ietadm LUN parameters with exactly the rules of a Lun
// line in ietd.conf (it runs them through the ietd.conf reader).
func ParseLUN(number uint64, params string) (*config.LUN, error) {
	if strings.ContainsAny(params, "\n\r") {
		return nil, fmt.Errorf("LUN parameters must be one line")
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
			if d.Severity == config.Error {
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

// Check loads a config and prints every diagnostic; it returns an error
// when there are errors.
func Check(w io.Writer, load func() (*config.Config, config.Diagnostics, error)) error {
	cfg, diags, err := load()
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
	}
	if err != nil {
		if len(diags) == 0 {
			fmt.Fprintln(w, err)
		}
		return err
	}
	luns := 0
	for _, t := range cfg.Targets {
		luns += len(t.LUNs)
	}
	fmt.Fprintf(w, "%s: ok (%s, %d target(s), %d LUN(s))\n", cfg.Source, cfg.Dialect, len(cfg.Targets), luns)
	return nil
}

// Start runs the daemon: in the foreground directly, otherwise detached
// with the parent returning once the child is ready. It returns the
// process exit status.
func Start(foreground bool, opts daemon.Options, stderr io.Writer, name string) int {
	if addr := os.Getenv("IETD_PPROF"); addr != "" {
		// Profiling for `make bench` (never on by default).
		go http.ListenAndServe(addr, nil)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// Data buffers in flight and pooled are bounded (16 + 16 MiB);
		// keep the garbage collector close to that.
		debug.SetMemoryLimit(48 << 20)
	}
	if !foreground {
		done, report, err := daemon.Detach(30 * time.Second)
		if done {
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", name, err)
				return 1
			}
			return 0
		}
		opts.Ready = report
	}
	if err := daemon.Run(context.Background(), opts); err != nil {
		if opts.Log != nil {
			opts.Log.WithError(err).Error("exiting")
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}
