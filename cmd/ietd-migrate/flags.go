package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/ietgo/ietd/cmd/internal/argv"
	"github.com/urfave/cli/v2"
)

// netbsdFlags are iscsi-target's flags (cmd/iscsi-target), to read the
// rc.conf variable iscsi_target_flags as iscsi-target reads it.
func netbsdFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "4"},
		&cli.BoolFlag{Name: "6"},
		&cli.IntFlag{Name: "b"},
		&cli.BoolFlag{Name: "D"},
		&cli.StringFlag{Name: "f"},
		&cli.IntFlag{Name: "p"},
		&cli.IntFlag{Name: "s"},
		&cli.StringFlag{Name: "t"},
		&cli.BoolFlag{Name: "V"},
		&cli.StringSliceFlag{Name: "v"},
		&cli.StringFlag{Name: "auths"},
		&cli.StringSliceFlag{Name: "address"},
		&cli.StringFlag{Name: "pid-file"},
		&cli.StringFlag{Name: "admin-socket"},
		&cli.StringFlag{Name: "state-dir"},
		&cli.BoolFlag{Name: "check"},
	}
}

// netbsdArgs is what ietd-migrate takes from iscsi-target's flags; a
// zero value is a flag that was not given.
type netbsdArgs struct {
	blockLen, maxSessions int
	base, targets, auths  string
	// notes say what was not carried over, and what to do instead.
	notes []string
}

// parseNetBSDFlags reads an iscsi_target_flags string as iscsi-target
// would (getopt clusters such as -b4096 and -Df FILE included): what
// ietd.conf can hold is returned, every other flag gets a note. A string
// iscsi-target would refuse is an error, as it would not have started.
func parseNetBSDFlags(s string) (netbsdArgs, error) {
	var a netbsdArgs
	words, err := shellWords(s)
	if err != nil {
		return a, err
	}
	flags := netbsdFlags()
	app := &cli.App{
		Name: "iscsi-target", Flags: flags, HideHelp: true, HideVersion: true,
		Writer: io.Discard, ErrWriter: io.Discard,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error { return err },
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("iscsi-target takes no arguments (%q)", c.Args().First())
			}
			note := func(format string, args ...any) { a.notes = append(a.notes, fmt.Sprintf(format, args...)) }
			if c.IsSet("b") {
				a.blockLen = c.Int("b")
				if !validBlockLen(a.blockLen) {
					return fmt.Errorf("Invalid block len %d. Choose one of 512, 1024, 2048, 4096, or 8192.", a.blockLen)
				}
			}
			if c.IsSet("s") {
				a.maxSessions = c.Int("s")
				if a.maxSessions < 1 || a.maxSessions > 127 {
					note("-s %d: iscsi-target ignored it (1..127) and used 16: MaxSessions 16 is written", a.maxSessions)
					a.maxSessions = 16
				}
			}
			a.base, a.targets, a.auths = c.String("t"), c.String("f"), c.String("auths")
			if c.IsSet("p") {
				note("-p %d: ietd.conf holds no port: start ietd with -p %d (IET's ietd -p)", c.Int("p"), c.Int("p"))
			}
			for _, f := range []string{"4", "6"} {
				if c.Bool(f) {
					note("-%s: ietd.conf holds no address family: start ietd with -a and the IPv%s addresses to listen on (ietd listens on every IPv4 and IPv6 address by default)", f, f)
				}
			}
			if v := c.StringSlice("address"); len(v) > 0 {
				note("--address %s: ietd.conf holds no listen address: start ietd with -a %s", strings.Join(v, ","), strings.Join(v, " -a "))
			}
			for _, f := range []string{"pid-file", "admin-socket", "state-dir"} {
				if c.IsSet(f) {
					note("--%s %s: not an ietd.conf setting: start ietd with --%s %s if it should stay", f, c.String(f), f, c.String(f))
				}
			}
			if c.Bool("D") {
				note("-D: not an ietd.conf setting: ietd -f stays in the foreground")
			}
			if len(c.StringSlice("v")) > 0 {
				note("-v %s: not an ietd.conf setting: ietd -d 2 traces", strings.Join(c.StringSlice("v"), ","))
			}
			if c.Bool("V") {
				note("-V: ignored (iscsi-target only printed its version)")
			}
			if c.Bool("check") {
				note("--check: ignored (iscsi-target only checked the file; ietd --check checks the result)")
			}
			return nil
		},
	}
	// iscsi-target warns about an unknown option and carries on
	// (argv.DropUnknown, as NetBSD's getopt): so does the migration.
	args, warnings := argv.DropUnknown(append([]string{"iscsi-target"}, words...), flags)
	for _, w := range warnings {
		a.notes = append(a.notes, "iscsi_target_flags: "+w)
	}
	if err := app.Run(argv.Normalize(args, flags)); err != nil {
		return a, err
	}
	return a, nil
}

// shellWords splits s into words as sh(1) does for a command line: blanks
// separate, '...' and "..." quote, a backslash escapes the next character
// (inside "..." only before $ ` " and \), a backslash before a newline is
// removed with it (a continued line). Expansions ($x, `...`)
// are refused: the flags must be given as the shell expanded them.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '$' || s[i] == '`' {
					return nil, fmt.Errorf("%q: give the flags as the shell expands them (no $ or `)", s)
				}
				if s[i] == '\\' && i+1 < len(s) && s[i+1] == '\n' {
					i++ // a line continuation: removed
					continue
				}
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			inWord = true
		case ch == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i++ // a line continuation (rc.conf lines pasted whole): removed
		case ch == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		case ch == '$' || ch == '`':
			return nil, fmt.Errorf("%q: give the flags as the shell expands them (no $ or `)", s)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
