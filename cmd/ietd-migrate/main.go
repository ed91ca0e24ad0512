// Command ietd-migrate converts a NetBSD iscsi-target configuration
// (targets + auths) into ietd.conf and initiators.allow for ietd.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/config"
	"github.com/urfave/cli/v2"
)

func main() {
	app := &cli.App{
		Name:      "ietd-migrate",
		Usage:     "convert a NetBSD iscsi-target config into ietd.conf + initiators.allow",
		ArgsUsage: "[TARGETS-FILE]   (default /etc/iscsi/targets)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "auths", Value: "/etc/iscsi/auths", Usage: "NetBSD CHAP accounts `FILE` (skipped when absent)"},
			&cli.StringFlag{Name: "t", Aliases: []string{"base"}, Value: "iqn.1994-04.org.netbsd.iscsi-target", Usage: "base target `NAME` (iscsi-target -t)"},
			&cli.StringFlag{Name: "out-dir", Aliases: []string{"o"}, Usage: "write ietd.conf and initiators.allow into `DIR` (default: print to stdout)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing files in --out-dir"},
		},
		HideHelpCommand: true,
		Action:          run,
	}
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "ietd-migrate: %v\n", err)
		os.Exit(1)
	}
}

func run(c *cli.Context) error {
	src := "/etc/iscsi/targets"
	if c.NArg() > 1 {
		return fmt.Errorf("one targets file at most")
	}
	if c.NArg() == 1 {
		src = c.Args().First()
	}
	auths := c.String("auths")
	if _, err := os.Stat(auths); err != nil {
		if c.IsSet("auths") {
			return fmt.Errorf("auths file: %w", err)
		}
		auths = ""
	}
	cfg, diags, err := compat.Load(src, compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: auths, NetBSDBase: c.String("t")})
	for _, d := range diags {
		fmt.Fprintln(os.Stderr, d.String())
	}
	if err != nil {
		return fmt.Errorf("%s: not converted", src)
	}
	conf, allow, notes := compat.MigrateNetBSD(cfg)
	for _, n := range notes {
		fmt.Fprintf(os.Stderr, "note: %s\n", n)
	}
	dir := c.String("out-dir")
	if dir == "" {
		fmt.Printf("# ---- ietd.conf ----\n%s", conf)
		fmt.Printf("# ---- initiators.allow ----\n%s", allow)
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, text := range map[string]string{"ietd.conf": conf, "initiators.allow": allow} {
		p := filepath.Join(dir, name)
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if c.Bool("force") {
			flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		}
		f, err := os.OpenFile(p, flags, 0o600)
		if err != nil {
			return fmt.Errorf("%w (use --force to overwrite)", err)
		}
		if _, err := f.WriteString(text); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", p)
	}
	return nil
}
