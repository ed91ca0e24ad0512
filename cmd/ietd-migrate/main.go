// Command ietd-migrate converts a NetBSD iscsi-target configuration
// (targets + auths) into ietd.conf and initiators.allow for ietd.
package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
			&cli.StringFlag{Name: "auths", Value: "/etc/iscsi/auths", Usage: "NetBSD CHAP accounts `FILE` (the default is skipped when absent)"},
			&cli.StringFlag{Name: "t", Aliases: []string{"base"}, Value: "iqn.1994-04.org.netbsd.iscsi-target", Usage: "base target `NAME` (iscsi-target -t)"},
			&cli.IntFlag{Name: "b", Value: compat.DefaultNetBSDBlockSize, Usage: "block `LENGTH` iscsi-target served (iscsi-target -b: 512, 1024, 2048, 4096 or 8192), written as BlockSize= on every Lun"},
			&cli.StringFlag{Name: "flags", Usage: "iscsi-target's `FLAGS` (rc.conf iscsi_target_flags): -b, -s, -t, -f and --auths are carried over, the others noted"},
			&cli.StringFlag{Name: "out-dir", Aliases: []string{"o"}, Usage: "write ietd.conf and initiators.allow (mode 0600) into `DIR` (default: print to stdout, CHAP secrets masked)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing files in --out-dir"},
			&cli.BoolFlag{Name: "show-secrets", Usage: "print CHAP secrets on stdout instead of masking them"},
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
	dir := c.String("out-dir")
	if dir != "" && c.Bool("show-secrets") {
		return fmt.Errorf("--show-secrets is for printing on stdout; with --out-dir the secrets go into the files")
	}
	blockLen := c.Int("b")
	if !validBlockLen(blockLen) {
		// iscsi-target's own message for the same -b.
		return fmt.Errorf("Invalid block len %d. Choose one of 512, 1024, 2048, 4096, or 8192.", blockLen)
	}
	base, auths, authsSet := c.String("t"), c.String("auths"), c.IsSet("auths")
	var nb netbsdArgs
	if c.IsSet("flags") {
		var err error
		if nb, err = parseNetBSDFlags(c.String("flags")); err != nil {
			return fmt.Errorf("--flags: %w", err)
		}
		// What both give must agree: either could be the one served.
		for _, d := range []struct {
			name      string
			set       bool
			mine, got string
		}{
			{"-b", c.IsSet("b") && nb.blockLen != 0, strconv.Itoa(blockLen), strconv.Itoa(nb.blockLen)},
			{"-t", c.IsSet("t") && nb.base != "", base, nb.base},
			{"--auths", authsSet && nb.auths != "", auths, nb.auths},
			{"the targets file", c.NArg() == 1 && nb.targets != "", src, nb.targets},
		} {
			if d.set && d.mine != d.got {
				return fmt.Errorf("%s %s differs from --flags (%s)", d.name, d.mine, d.got)
			}
		}
		if nb.blockLen != 0 {
			blockLen = nb.blockLen
		}
		if nb.base != "" {
			base = nb.base
		}
		if nb.auths != "" {
			auths, authsSet = nb.auths, true
		}
		if nb.targets != "" {
			src = nb.targets
		}
	}
	if _, err := os.Stat(auths); err != nil {
		if authsSet {
			return fmt.Errorf("auths file: %w", err)
		}
		auths = ""
	}
	cfg, diags, err := compat.Load(src, compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: auths, NetBSDBase: base})
	for _, d := range diags {
		fmt.Fprintln(os.Stderr, d.String())
	}
	if err != nil {
		return fmt.Errorf("%s: not converted", src)
	}
	mask := dir == "" && !c.Bool("show-secrets")
	m := compat.MigrateNetBSDReport(cfg, compat.MigrateOptions{MaskSecrets: mask, BlockSize: blockLen, MaxSessions: nb.maxSessions})
	conf, allow := m.IETDConf, m.InitiatorsAllow
	for _, n := range append(nb.notes, m.Notes...) {
		fmt.Fprintf(os.Stderr, "note: %s\n", n)
	}
	if dir == "" {
		fmt.Printf("# ---- ietd.conf ----\n%s", conf)
		fmt.Printf("# ---- initiators.allow ----\n%s", allow)
		if mask && strings.Contains(conf, compat.MaskedSecret) {
			fmt.Fprintln(os.Stderr, "note: CHAP secrets are masked on stdout; -o DIR writes them into DIR/ietd.conf (mode 0600), --show-secrets prints them")
		}
	} else if err := writeOutputs(os.Stderr, dir, []output{{"ietd.conf", conf}, {compat.InitiatorsAllow, allow}}, c.Bool("force")); err != nil {
		return err
	}
	if n := len(m.HeldBack); n > 0 {
		// Written, but a script must not take it for the whole
		// migration: a disk or an account would be lost unnoticed.
		fmt.Fprintf(os.Stderr, "ietd-migrate: %d item(s) held back (see the notes above): the result does not serve everything the NetBSD target did\n", n)
		os.Exit(exitHeldBack)
	}
	return nil
}

// exitHeldBack is the exit status when the result was written (or
// printed) but holds back a LUN, an account, a target name or a netmask
// (ietd-migrate(8) EXIT STATUS).
const exitHeldBack = 2

// validBlockLen reports whether iscsi-target -b takes n.
func validBlockLen(n int) bool {
	switch n {
	case 512, 1024, 2048, 4096, 8192:
		return true
	}
	return false
}

// output is one file to write.
type output struct {
	name, text string
}

// writeOutputs writes the files into dir, in order, all or nothing as far
// as the file system allows: every existing file is reported before
// anything is written (unless force), each file is written to a temporary
// file in dir, synced, and only then moved into place. Without force the
// move refuses to replace a file that appeared in the meantime.
func writeOutputs(log io.Writer, dir string, outs []output, force bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if !force {
		var existing []string
		for _, o := range outs {
			p := filepath.Join(dir, o.name)
			if _, err := os.Lstat(p); err == nil {
				existing = append(existing, p)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		switch len(existing) {
		case 0:
		case 1:
			return fmt.Errorf("%s already exists; nothing written (use --force to overwrite)", existing[0])
		default:
			return fmt.Errorf("%s already exist; nothing written (use --force to overwrite)", strings.Join(existing, " and "))
		}
	}
	temps := make([]string, len(outs))
	defer func() {
		for _, t := range temps {
			if t != "" {
				os.Remove(t)
			}
		}
	}()
	for i, o := range outs {
		t, err := writeTemp(dir, o)
		if err != nil {
			return err
		}
		temps[i] = t
	}
	var linked []string
	for i, o := range outs {
		p := filepath.Join(dir, o.name)
		if force {
			if err := os.Rename(temps[i], p); err != nil {
				return err
			}
		} else {
			// link(2) never replaces an existing file.
			if err := os.Link(temps[i], p); err != nil {
				for _, l := range linked {
					os.Remove(l) // they did not exist before
				}
				return fmt.Errorf("%w; nothing written (use --force to overwrite)", err)
			}
			linked = append(linked, p)
			os.Remove(temps[i])
		}
		temps[i] = ""
	}
	for _, o := range outs {
		fmt.Fprintf(log, "wrote %s\n", filepath.Join(dir, o.name))
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func writeTemp(dir string, o output) (string, error) {
	f, err := os.CreateTemp(dir, "."+o.name+".*.tmp")
	if err != nil {
		return "", err
	}
	// CreateTemp makes the file 0600: it holds CHAP secrets.
	_, err = f.WriteString(o.text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
