// Command ietd is the iSCSI Enterprise Target daemon, in user space: same
// flags, config files and admin socket semantics as IET's ietd.
package main

import (
	"fmt"
	"os"

	"github.com/ietgo/ietd/cmd/internal/argv"
	"github.com/ietgo/ietd/cmd/internal/service"
	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/acl"
	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/daemon"
	"github.com/urfave/cli/v2"
)

func main() {
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "ietd version %s\n", service.Version)
	}
	app := &cli.App{
		Name:    "ietd",
		Usage:   "iSCSI target daemon (IET compatible, user space)",
		Version: service.Version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "config `FILE` (default /etc/iet/ietd.conf, then /etc/ietd.conf); an IET or NetBSD file"},
			&cli.BoolFlag{Name: "foreground", Aliases: []string{"f"}, Usage: "do not detach; log to stderr"},
			&cli.IntFlag{Name: "debug", Aliases: []string{"d"}, Usage: "debug `LEVEL` (0 warnings, 1 info, 2 debug, 3 trace)"},
			&cli.IntFlag{Name: "uid", Aliases: []string{"u"}, Usage: "run as `UID` after binding", Value: -1},
			&cli.IntFlag{Name: "gid", Aliases: []string{"g"}, Usage: "run as `GID` after binding", Value: -1},
			&cli.StringSliceFlag{Name: "address", Aliases: []string{"a"}, Usage: "listen `ADDR` (default: all IPv4 and IPv6 addresses)"},
			&cli.IntFlag{Name: "port", Aliases: []string{"p"}, Value: 3260, Usage: "listen `PORT`"},
			&cli.StringFlag{Name: "pid-file", Value: "/var/run/ietd.pid", Usage: "pid `FILE` (locked; a second ietd refuses to start)"},
			&cli.StringFlag{Name: "admin-socket", Value: "/var/run/ietd.sock", Usage: "unix socket `PATH` for ietadm"},
			&cli.StringFlag{Name: "acl-dir", Usage: "`DIR` holding initiators.allow, initiators.deny, targets.allow (default /etc/iet, then /etc)"},
			&cli.StringFlag{Name: "dialect", Usage: "config format `iet|netbsd` (default: detected)"},
			&cli.StringFlag{Name: "auths", Usage: "NetBSD auths `FILE` (with a NetBSD config; default /etc/iscsi/auths)"},
			&cli.StringFlag{Name: "state-dir", Value: "/var/lib/ietd", Usage: "`DIR` for persistent reservation state"},
			&cli.StringFlag{Name: "proc-dir", Value: "/run/iet", Usage: "`DIR` where the /proc/net/iet volume and session listings are written (\"\" = off)"},
			&cli.BoolFlag{Name: "check", Usage: "check the config: print every problem, exit 1 on errors"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(argv.Normalize(os.Args, append(app.Flags, cli.VersionFlag, cli.HelpFlag))); err != nil {
		fmt.Fprintf(os.Stderr, "ietd: %v\n", err)
		// A detached child's stderr is /dev/null: its parent prints it.
		daemon.StartFailed(err)
		os.Exit(1)
	}
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	fg := c.Bool("foreground") || c.Bool("check")
	log, err := service.Logger("ietd", fg, c.Int("debug"))
	if err != nil {
		return err
	}
	// The detached daemon runs in /: a relative path on the command line
	// is relative to the directory ietd was started in, as with -f (IET
	// read its config after its chdir("/"), so a relative -c named a
	// file under /).
	dir, err := daemon.StartDir()
	if err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	abs := func(name string) string { return service.AbsFrom(dir, c.String(name)) }
	lo := compat.LoadOptions{Dialect: config.Dialect(c.String("dialect")), ACLDir: abs("acl-dir"), AuthsPath: abs("auths")}
	switch lo.Dialect {
	case "", config.DialectIET, config.DialectNetBSD:
	default:
		return fmt.Errorf("--dialect must be iet or netbsd")
	}
	load, start := service.Loaders(abs("config"), []string{"/etc/iet/ietd.conf", "/etc/ietd.conf"}, lo, log)
	if c.Bool("check") {
		if err := service.Check(os.Stdout, start); err != nil {
			os.Exit(1)
		}
		return nil
	}
	if p := abs("config"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("config file: %w", err)
		}
	}
	aclDirs := []string{"/etc/iet", "/etc"}
	if lo.ACLDir != "" {
		aclDirs = []string{lo.ACLDir}
	}
	opts := daemon.Options{
		Log:         log,
		Load:        load,
		LoadAtStart: start,
		ACLFiles:    acl.NewFiles(aclDirs, parseACL, log),
		Addresses:   c.StringSlice("address"),
		Port:        c.Int("port"),
		PIDFile:     abs("pid-file"),
		AdminSocket: abs("admin-socket"),
		StateDir:    abs("state-dir"),
		ProcDir:     abs("proc-dir"),
		UID:         c.Int("uid"),
		GID:         c.Int("gid"),
		ParseLUN:    service.ParseLUN,
	}
	if lo.Dialect != config.DialectIET {
		// As NetBSD's iscsi-target: auths is read on every CHAP login to
		// a target from a NetBSD targets file, forced or detected.
		opts.Accounts = compat.NewLiveAuths(lo.AuthsPath, log).Auth
	}
	os.Exit(service.Start(c.Bool("foreground"), opts, os.Stderr, "ietd"))
	return nil
}

// parseACL reads an access-control file with the rules of compat.
func parseACL(path string, src []byte, initiators bool) (*config.ACLFile, config.Diagnostics) {
	var ds config.Diagnostics
	f := compat.ParseACL(path, src, initiators, &ds)
	return f, ds
}
