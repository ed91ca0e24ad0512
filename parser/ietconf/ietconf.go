package ietconf

import (
	"strconv"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/ietgo/ietd/parser/internal/linelex"
	"github.com/ietgo/ietd/target/config"
)

// File is a parsed ietd.conf.
type File struct {
	Name string
	// Directives in file order (comments and blank lines dropped). Lun
	// and account lines with syntax errors are kept, marked Bad, so that
	// the lowering can say what is left out.
	Directives []*Directive
}

// Directive is one non-comment line. Exactly one field is set.
type Directive struct {
	Pos     lexer.Position
	Target  *TargetLine  `parser:"  @@"`
	Lun     *LunLine     `parser:"| @@"`
	Account *AccountLine `parser:"| @@"`
	Setting *SettingLine `parser:"| @@"`
}

// Word is one whitespace-separated token.
type Word struct {
	Pos  lexer.Position
	Text string `parser:"@Word"`
}

// TargetLine is "Target <name>".
type TargetLine struct {
	Pos     lexer.Position
	Keyword string  `parser:"@\"Target\""`
	Name    *Word   `parser:"@@?"`
	Extra   []*Word `parser:"@@*"`
}

// AccountLine is "IncomingUser <user> <secret>" or "OutgoingUser ...".
type AccountLine struct {
	Pos     lexer.Position
	Keyword string  `parser:"@(\"IncomingUser\" | \"OutgoingUser\")"`
	User    *Word   `parser:"@@?"`
	Secret  *Word   `parser:"@@?"`
	Extra   []*Word `parser:"@@*"`

	// Bad is set when the line has errors (reported): IET rejects the
	// account. A bare line (User nil) is Bad with only a warning: IET
	// rejects it and starts all the same.
	Bad bool
}

// Incoming reports whether this is an IncomingUser line.
func (a *AccountLine) Incoming() bool { return strings.EqualFold(a.Keyword, "IncomingUser") }

// SettingLine is any other "<Keyword> <value>..." line (known or not).
type SettingLine struct {
	Pos     lexer.Position
	Keyword *Word   `parser:"@@"`
	Values  []*Word `parser:"@@*"`
}

// LunLine is "Lun <n> <params>".
type LunLine struct {
	Pos     lexer.Position
	Keyword string  `parser:"@\"Lun\""`
	Args    []*Word `parser:"@@*"`

	// Filled in after the grammar ran (see Parse).
	Number    uint64
	NumberPos lexer.Position
	// Params is the Key=Value form (nil for the positional form).
	Params []*LunParam
	// Positional is the 0.4.x form: Path, then Type (optional).
	Positional []*Word
	// Raw is the whole parameter text as written.
	Raw string
	// Bad is set when the line has syntax errors (reported); Number is
	// then only meaningful when NumberPos is set.
	Bad bool
}

// LunParam is one Key=Value item of a Lun line.
type LunParam struct {
	Pos      lexer.Position
	Key      string // as written (IET >= 1.4.20 matches it case-insensitively)
	Value    string
	ValuePos lexer.Position
}

type line struct {
	Directive *Directive `parser:"@@"`
}

var (
	lexDef = lexer.MustStateful(lexer.Rules{
		"Root": {
			{Name: "Newline", Pattern: `\n`},
			{Name: "Space", Pattern: `[ \t\r\f\v]+`},
			{Name: "Comment", Pattern: `#[^\n]*`},
			{Name: "Word", Pattern: `[^ \t\r\f\v\n]+`, Action: lexer.Push("Line")},
		},
		"Line": {
			{Name: "Newline", Pattern: `\n`, Action: lexer.Pop()},
			{Name: "Space", Pattern: `[ \t\r\f\v]+`},
			{Name: "Word", Pattern: `[^ \t\r\f\v\n]+`},
		},
	})
	grammar = participle.MustBuild[line](
		participle.Lexer(lexDef),
		participle.CaseInsensitive("Word"),
		participle.UseLookahead(2),
	)
)

// MaxLun is the largest LUN number IET accepts.
const MaxLun = 16383

// Parse parses src (the content of the file filename). It never fails as a
// whole: every problem is a diagnostic and bad lines are skipped.
func Parse(filename string, src []byte) (*File, config.Diagnostics) {
	var ds config.Diagnostics
	f := &File{Name: filename}
	text := linelex.StripBOM(filename, string(src), &ds)
	lines, err := linelex.Split(lexDef, filename, text, "Newline", "Space", "Comment")
	if err != nil {
		p, msg := linelex.ErrorPos(err, lexer.Position{Filename: filename})
		ds.Errorf(p, "%s", msg)
	}
	for _, l := range lines {
		warnBackslash(l, &ds)
		ln, err := linelex.Parse(grammar, l)
		if err != nil {
			p, msg := linelex.ErrorPos(err, l.Tokens[0].Pos)
			ds.Errorf(p, "%s", msg)
			continue
		}
		d := ln.Directive
		switch {
		case d.Lun != nil:
			d.Lun.Bad = !finishLun(d.Lun, text, &ds)
		case d.Account != nil:
			d.Account.Bad = !checkDirective(d, &ds)
		default:
			checkDirective(d, &ds)
		}
		f.Directives = append(f.Directives, d)
	}
	if n := len(text); n > 0 && text[n-1] != '\n' && len(lines) > 0 {
		last := lines[len(lines)-1]
		switch {
		case strings.HasPrefix(strings.TrimLeft(text[strings.LastIndexByte(text, '\n')+1:], " \t\r\f\v"), "#"):
		case strings.EqualFold(last.Tokens[0].Value, "Lun"):
			// IET takes the rest of a Lun line raw: it works without
			// the newline too.
		default:
			ds.Warnf(linelex.Pos(last.Tokens[0].Pos), "last line has no newline: IET would ignore its last word (accepted here)")
		}
	}
	return f, ds
}

// warnBackslash reports a line that ends in a backslash: IET's man page
// promised line continuation, no IET parser implemented it.
func warnBackslash(l linelex.Line, ds *config.Diagnostics) {
	last := l.Tokens[len(l.Tokens)-1]
	if !strings.HasSuffix(last.Value, `\`) {
		return
	}
	p := last.Pos
	p.Advance(last.Value[:len(last.Value)-1])
	ds.Warnf(pos(p), "line continuation is not supported (IET never supported it): the backslash stays in the word and the next line is read on its own")
}

func pos(p lexer.Position) config.Position { return linelex.Pos(p) }

// checkDirective reports syntax problems of non-Lun directives; false
// means the line is unusable.
func checkDirective(d *Directive, ds *config.Diagnostics) bool {
	switch {
	case d.Target != nil:
		t := d.Target
		if t.Name == nil {
			ds.Errorf(pos(t.Pos), "Target without a name (IET closes the previous target here; the following lines are ignored until the next Target)")
			return true
		}
		if ex := trailing(t.Extra); len(ex) > 0 {
			ds.Warnf(pos(ex[0].Pos), "extra text after the target name ignored: %q", joinWords(ex))
		}
	case d.Account != nil:
		a := d.Account
		switch {
		case a.User == nil:
			// A template line (HowtoForge, linux-training): IET rejects
			// it and starts all the same, with no account from it.
			if a.Incoming() {
				ds.Warnf(pos(a.Pos), "%s without a user and secret ignored (as IET): it adds no CHAP account", a.Keyword)
			} else {
				ds.Warnf(pos(a.Pos), "%s without a user and secret ignored (as IET): no mutual CHAP", a.Keyword)
			}
			return false
		case a.Secret == nil:
			ds.Errorf(pos(a.User.Pos), "%s %s has no secret (IET rejects the account)", a.Keyword, a.User.Text)
			return false
		case strings.HasPrefix(a.Secret.Text, "#"):
			// IET only knows whole-line comments: this is the secret.
			ds.Warnf(pos(a.Secret.Pos), "the secret of %s %s starts with '#': it is the secret, not a comment (as IET)", a.Keyword, a.User.Text)
		}
		if ex := trailing(a.Extra); len(ex) > 0 {
			ds.Warnf(pos(ex[0].Pos), "extra text after the secret ignored: %q", joinWords(ex))
		}
	}
	return true
}

// trailing returns the words before a '#' comment word.
func trailing(ws []*Word) []*Word {
	for i, w := range ws {
		if strings.HasPrefix(w.Text, "#") {
			return ws[:i]
		}
	}
	return ws
}

func joinWords(ws []*Word) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.Text
	}
	return strings.Join(s, " ")
}

// finishLun splits a Lun line's arguments into its number and parameters.
func finishLun(l *LunLine, src string, ds *config.Diagnostics) bool {
	if len(l.Args) == 0 {
		ds.Errorf(pos(l.Pos), "Lun needs a number and parameters (Lun 0 Path=/dev/sdb,Type=fileio)")
		return false
	}
	first := l.Args[0]
	digits := 0
	for digits < len(first.Text) && first.Text[digits] >= '0' && first.Text[digits] <= '9' {
		digits++
	}
	if digits == 0 {
		ds.Errorf(pos(first.Pos), "Lun number %q is not a number", first.Text)
		return false
	}
	n, err := strconv.ParseUint(first.Text[:digits], 10, 64)
	if err != nil || n > MaxLun {
		ds.Errorf(pos(first.Pos), "Lun number %s out of range (0..%d)", first.Text[:digits], MaxLun)
		return false
	}
	l.Number, l.NumberPos = n, first.Pos

	// The parameter text runs from just after the digits to the end of
	// the last word before a '#' comment word.
	start := first.Pos
	start.Advance(first.Text[:digits])
	args := l.Args[1:]
	if digits == len(first.Text) {
		if len(args) > 0 {
			start = args[0].Pos
		}
	} else {
		args = append([]*Word{{Pos: start, Text: first.Text[digits:]}}, args...)
	}
	kept := trailing(args)
	if len(kept) < len(args) {
		ds.Warnf(pos(args[len(kept)].Pos), "comment after a Lun line is not allowed by IET (it would break the LUN); ignored")
	}
	if len(kept) == 0 {
		ds.Errorf(pos(l.Pos), "Lun %d has no parameters (Lun %d Path=/dev/sdb,Type=fileio)", n, n)
		return false
	}
	last := kept[len(kept)-1]
	end := last.Pos.Offset + len(last.Text)
	if start.Offset < 0 || end > len(src) || start.Offset > end {
		ds.Errorf(pos(l.Pos), "internal: bad Lun offsets")
		return false
	}
	l.Raw = src[start.Offset:end]
	if !strings.Contains(l.Raw, "=") {
		l.Positional = kept
		if len(kept) > 2 {
			ds.Errorf(pos(kept[2].Pos), "old-style Lun line takes a path and a type (Lun %d /dev/sdb fileio); extra text %q", n, joinWords(kept[2:]))
			return false
		}
		return true
	}
	ok := true
	p := start
	for _, item := range strings.Split(l.Raw, ",") {
		itemPos := p
		p.Advance(item + ",")
		trimmed := strings.TrimSpace(item)
		if trimmed == "" {
			continue
		}
		if trimmed != item {
			lead := item[:strings.Index(item, trimmed)]
			itemPos.Advance(lead)
			ds.Warnf(pos(itemPos), "space around ',' in Lun parameters (IET would reject this LUN); accepted")
		}
		k, v, found := strings.Cut(trimmed, "=")
		if !found || strings.TrimSpace(k) == "" {
			ds.Errorf(pos(itemPos), "Lun %d parameter %q is not Key=Value", n, trimmed)
			ok = false
			continue
		}
		vp := itemPos
		vp.Advance(k + "=")
		l.Params = append(l.Params, &LunParam{Pos: itemPos, Key: k, Value: v, ValuePos: vp})
	}
	return ok
}
