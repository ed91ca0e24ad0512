// Command iscsi-target is the NetBSD iSCSI target's command line on the
// shared engine: same flags and defaults, /etc/iscsi/targets and
// /etc/iscsi/auths.
package main

import (
	"fmt"
	"os"

	"github.com/ietgo/ietd/cmd/internal/argv"
	"github.com/ietgo/ietd/cmd/internal/service"
	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/daemon"
	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:        "iscsi-target",
		Usage:       "iSCSI target (NetBSD iscsi-target compatible)",
		HideVersion: true,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "4", Usage: "IPv4 only"},
			&cli.BoolFlag{Name: "6", Usage: "IPv6 only"},
			&cli.IntFlag{Name: "b", Value: 512, Usage: "block `LENGTH` for every target (512, 1024, 2048, 4096 or 8192)"},
			&cli.BoolFlag{Name: "D", Usage: "do not detach"},
			&cli.StringFlag{Name: "f", Value: "/etc/iscsi/targets", Usage: "configuration `FILE`"},
			&cli.IntFlag{Name: "p", Value: 3260, Usage: "listening `PORT`"},
			&cli.IntFlag{Name: "s", Value: 16, Usage: "maximum `N` of sessions per target (1..127)"},
			&cli.StringFlag{Name: "t", Value: "iqn.1994-04.org.netbsd.iscsi-target", Usage: "base target `NAME`"},
			&cli.BoolFlag{Name: "V", Usage: "print the version and exit"},
			&cli.StringSliceFlag{Name: "v", Usage: "debug tracing `WHAT`: net, iscsi, scsi or all"},
			&cli.StringFlag{Name: "auths", Value: "/etc/iscsi/auths", Usage: "CHAP accounts `FILE`"},
			&cli.StringSliceFlag{Name: "address", Usage: "listen `ADDR` (our extension; default all addresses)"},
			&cli.StringFlag{Name: "pid-file", Value: "/var/run/iscsi-target.pid", Usage: "pid `FILE`"},
			&cli.StringFlag{Name: "admin-socket", Value: "/var/run/iscsi-target.sock", Usage: "admin socket `PATH` (ietadm --socket)"},
			&cli.StringFlag{Name: "state-dir", Value: "/var/lib/iscsi-target", Usage: "`DIR` for persistent reservation state"},
			&cli.BoolFlag{Name: "check", Usage: "check the configuration, print every problem, exit 1 on errors"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	// As NetBSD's getopt: an unknown option is complained about and the
	// program carries on (argv.DropUnknown says which words go).
	args, warnings := argv.DropUnknown(os.Args, append(app.Flags, cli.HelpFlag))
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "iscsi-target: warning: %s\n", w)
	}
	if err := app.Run(argv.Normalize(args, append(app.Flags, cli.HelpFlag))); err != nil {
		fmt.Fprintf(os.Stderr, "iscsi-target: %v\n", err)
		// A detached child's stderr is /dev/null: its parent prints it.
		daemon.StartFailed(err)
		os.Exit(1)
	}
}

func run(c *cli.Context) error {
	if c.Bool("V") {
		fmt.Printf("\"netbsd-iscsi\" compatible ietgo %s\n", service.Version)
		return nil
	}
	switch c.Int("b") {
	case 512, 1024, 2048, 4096, 8192:
	default:
		fmt.Fprintf(os.Stderr, "Invalid block len %d. Choose one of 512, 1024, 2048, 4096, or 8192.\n", c.Int("b"))
		os.Exit(1)
	}
	level := 0
	for _, w := range c.StringSlice("v") {
		switch w {
		case "net", "iscsi", "scsi", "all":
			level = 2
		}
	}
	fg := c.Bool("D") || c.Bool("check")
	log, err := service.Logger("iscsi-target", fg, level)
	if err != nil {
		return err
	}
	// NetBSD's iscsi-target reads its files and opens its extents
	// before daemon(3) changes to /: relative paths are relative to
	// where it was started, in the detached child too.
	dir, err := daemon.StartDir()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	abs := func(p string) string { return service.AbsFrom(dir, p) }
	auths := abs(c.String("auths"))
	if _, err := os.Stat(auths); err != nil && !c.IsSet("auths") {
		auths = ""
	}
	lo := compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: auths, NetBSDBase: c.String("t"), BaseDir: dir}
	baseLoad, baseStart := service.Loaders(abs(c.String("f")), nil, lo, log)
	blockLen, maxSess := c.Int("b"), c.Int("s")
	if maxSess < 1 || maxSess > 127 {
		log.Warnf("-s %d ignored (1..127); using 16", maxSess)
		maxSess = 16
	}
	// -b and -s apply to every target the file defines.
	withFlags := func(base service.LoadFunc) service.LoadFunc {
		return func() (*config.Config, config.Diagnostics, error) {
			cfg, diags, err := base()
			if err != nil {
				return cfg, diags, err
			}
			for _, t := range cfg.Targets {
				if t.MaxSessions == 0 {
					t.MaxSessions = maxSess
				}
				for _, l := range t.LUNs {
					if l.BlockSize == 0 {
						l.BlockSize = blockLen
					}
				}
			}
			return cfg, diags, nil
		}
	}
	load, start := withFlags(baseLoad), withFlags(baseStart)
	if c.Bool("check") {
		if err := service.Check(os.Stdout, start); err != nil {
			os.Exit(1)
		}
		return nil
	}
	network := "tcp"
	switch {
	case c.Bool("4") && !c.Bool("6"):
		network = "tcp4"
	case c.Bool("6") && !c.Bool("4"):
		network = "tcp6"
	}
	opts := daemon.Options{
		Log:         log,
		Load:        load,
		LoadAtStart: start,
		Addresses:   c.StringSlice("address"),
		Network:     network,
		Port:        c.Int("p"),
		PIDFile:     abs(c.String("pid-file")),
		AdminSocket: abs(c.String("admin-socket")),
		// NetBSD only printed a message when it could not write its pid
		// file; the admin socket (ietadm) is ours. Both are warned and
		// the target runs without them, unless another instance holds
		// them.
		PIDFileOptional:     true,
		AdminSocketOptional: true,
		StateDir:            abs(c.String("state-dir")),
		UID:                 -1,
		GID:                 -1,
		ParseLUN:            service.ParseLUN,
		// NetBSD opened auths on every CHAP exchange: edits count
		// without a restart.
		Accounts: compat.NewLiveAuths(auths, log).Auth,
	}
	os.Exit(service.Start(c.Bool("D"), opts, os.Stderr, "iscsi-target"))
	return nil
}
