// Command ietadm manages a running ietd: targets, LUNs, accounts, sessions,
// with IET's options, output formats and exit statuses.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ietgo/ietd/cmd/internal/argv"
	"github.com/ietgo/ietd/cmd/internal/service"
	"github.com/ietgo/ietd/target/admin"
	"github.com/urfave/cli/v2"
)

func main() {
	os.Exit(realMain(os.Args))
}

func realMain(args []string) int {
	status := 0
	cli.VersionPrinter = func(c *cli.Context) {
		fmt.Fprintf(c.App.Writer, "ietadm version %s\n", service.Version)
	}
	app := &cli.App{
		Name:    "ietadm",
		Usage:   "manage a running ietd",
		Version: service.Version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "op", Aliases: []string{"o"}, Usage: "`new|delete|update|show`"},
			&cli.StringFlag{Name: "tid", Aliases: []string{"t"}, Usage: "target id"},
			&cli.StringFlag{Name: "sid", Aliases: []string{"s"}, Usage: "session id (as in the session listing)"},
			&cli.StringFlag{Name: "cid", Aliases: []string{"c"}, Usage: "connection id"},
			&cli.StringFlag{Name: "lun", Aliases: []string{"l"}, Usage: "logical unit number"},
			&cli.StringFlag{Name: "params", Aliases: []string{"p"}, Usage: "`key=value,...`"},
			&cli.StringFlag{Name: "redirect", Aliases: []string{"r"}, Usage: "redirect destination (not supported)"},
			&cli.BoolFlag{Name: "user", Aliases: []string{"u"}, Usage: "account operation"},
			&cli.BoolFlag{Name: "volumes", Usage: "with --op show: print the /proc/net/iet/volume listing"},
			&cli.BoolFlag{Name: "sessions", Usage: "with --op show: print the /proc/net/iet/session listing"},
			&cli.StringFlag{Name: "socket", Value: "/var/run/ietd.sock", Usage: "ietd admin socket `PATH`"},
		},
		HideHelpCommand: true,
		// IET's usage(-1): one hint on stderr, not the help on stdout.
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			fmt.Fprintf(os.Stderr, "ietadm: %v\n", err)
			fmt.Fprintln(os.Stderr, tryHelp)
			return errUsage
		},
		Action: func(c *cli.Context) error {
			status = run(c)
			return nil
		},
	}
	if err := app.Run(argv.Normalize(args, append(app.Flags, cli.VersionFlag, cli.HelpFlag))); err != nil {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "ietadm: %v\n", err)
		}
		return 255
	}
	return status
}

// tryHelp is IET's usage(-1) line.
const tryHelp = "Try `ietadm --help' for more information."

var errUsage = errors.New("usage")

func num[T uint64 | uint32](c *cli.Context, name string, bits int) (*T, error) {
	if !c.IsSet(name) {
		return nil, nil
	}
	n, err := strconv.ParseUint(c.String(name), 10, bits)
	if errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("--%s: %s is out of range (0..%d)", name, c.String(name), uint64(1)<<bits-1)
	}
	if err != nil {
		return nil, fmt.Errorf("--%s: %q is not a decimal number", name, c.String(name))
	}
	v := T(n)
	return &v, nil
}

func run(c *cli.Context) int {
	// IET checks --op before the extra arguments.
	req := &admin.Request{Op: admin.Op(c.String("op")), Params: c.String("params"), User: c.Bool("user")}
	switch req.Op {
	case admin.OpNew, admin.OpDelete, admin.OpUpdate, admin.OpShow:
	default:
		fmt.Fprintln(os.Stderr, "You must specify the operation type")
		return admin.ExitStatus(syscall.EINVAL)
	}
	if c.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unrecognized: %s\n", strings.Join(c.Args().Slice(), " "))
		fmt.Fprintln(os.Stderr, tryHelp)
		return 255
	}
	tid, err := num[uint32](c, "tid", 32)
	if err == nil && tid != nil {
		t := int(*tid)
		req.TID = &t
	}
	var err2, err3, err4 error
	req.SID, err2 = num[uint64](c, "sid", 64)
	req.CID, err3 = num[uint32](c, "cid", 32)
	req.LUN, err4 = num[uint64](c, "lun", 64)
	for _, e := range []error{err, err2, err3, err4} {
		if e != nil {
			fmt.Fprintln(os.Stderr, e)
			return 255
		}
	}
	if len(req.Params) > admin.MaxParams {
		// Said here: the daemon would refuse the request as a whole.
		fmt.Fprintln(os.Stderr, admin.ErrnoText(syscall.EINVAL))
		fmt.Fprintf(os.Stderr, "ietadm: --params: %d bytes, more than the %d it may hold\n", len(req.Params), admin.MaxParams)
		return admin.ExitStatus(syscall.EINVAL)
	}
	if c.IsSet("redirect") {
		r := c.String("redirect")
		req.Redirect = &r
	}
	switch {
	case c.Bool("volumes"):
		req.Listing = "volume"
	case c.Bool("sessions"):
		req.Listing = "session"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := admin.Do(ctx, c.String("socket"), req)
	if err != nil {
		// IET reports "Connection refused." when ietd is not running, and
		// EPERM (exit 255) for a user that may not use it.
		no := syscall.ECONNREFUSED
		what := "cannot reach ietd"
		switch e := admin.ErrnoOf(err); {
		case e == syscall.EACCES || e == syscall.EPERM:
			no = syscall.EPERM
		case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || e == syscall.ETIMEDOUT:
			// ietd answered the connection but not in time: the
			// operation may still complete; not "ietd is down".
			no, what = syscall.ETIMEDOUT, "no answer in time from ietd (the operation may still complete)"
		}
		fmt.Fprintln(os.Stderr, admin.ErrnoText(no))
		fmt.Fprintf(os.Stderr, "ietadm: %s at %s: %v\n", what, c.String("socket"), err)
		return admin.ExitStatus(no)
	}
	fmt.Print(resp.Output)
	for _, w := range resp.Warnings {
		fmt.Fprintf(os.Stderr, "ietadm: warning: %s\n", w)
	}
	if resp.Errno != 0 {
		no := syscall.Errno(resp.Errno)
		if resp.Unsupported {
			fmt.Fprintln(os.Stderr, "Unsupported.")
			return admin.ExitStatus(no)
		}
		fmt.Fprintln(os.Stderr, admin.ErrnoText(no))
		if resp.Message != "" {
			fmt.Fprintf(os.Stderr, "ietadm: %s\n", resp.Message)
		}
		return admin.ExitStatus(no)
	}
	return 0
}
