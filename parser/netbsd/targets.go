package netbsd

import (
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/ietgo/ietd/parser/internal/linelex"
	"github.com/ietgo/ietd/target/config"
)

// Targets is a parsed targets file.
type Targets struct {
	Name    string
	Extents []*Extent
	Devices []*Device
	Targets []*Target
	// Lines in file order, one of the three set (for ordering checks).
	Lines []*Line
	// Invalid are the extent, device and target lines left out for
	// errors (so that a later reference can say why the name is missing).
	Invalid []*Line
}

// Field is one field, unescaped.
type Field struct {
	Pos  lexer.Position
	Raw  string `parser:"@Field"`
	Text string
}

// Line is one non-comment line of a targets file.
type Line struct {
	Pos    lexer.Position
	Extent *Extent `parser:"  @@"`
	Device *Device `parser:"| @@"`
	Target *Target `parser:"| @@"`
	Other  *Other  `parser:"| @@"`
}

// Extent is "extentN PATH OFFSET LENGTH".
type Extent struct {
	Pos    lexer.Position
	Name   string   `parser:"@Extent"`
	Fields []*Field `parser:"@@*"`

	Path, Offset, Length *Field // set by Parse
}

// Device is "deviceN RAIDn MEMBER...".
type Device struct {
	Pos    lexer.Position
	Name   string   `parser:"@Device"`
	Fields []*Field `parser:"@@*"`

	Level   *Field
	Members []*Field
}

// Target is "NAME[=IQN] FLAGS STORAGE NETMASK" or the old 3-field form.
type Target struct {
	Pos     lexer.Position
	RawName string   `parser:"@Target"`
	Fields  []*Field `parser:"@@*"`

	Name   string // before '='
	IQN    string // after '=' (when HasIQN)
	HasIQN bool
	// Flags is nil in the old 3-field form; Netmask is nil when the line
	// gave flags and storage but no netmask ("target0 rw extent0").
	Flags, Storage, Netmask *Field
	// OldForm is the 3-field "NAME STORAGE NETMASK" form (read-only in
	// NetBSD).
	OldForm bool
}

// Other is a line whose first field is no keyword (NetBSD ignores it).
type Other struct {
	Pos    lexer.Position
	Fields []*Field `parser:"@@+"`
}

const fieldChars = `(?:\\\r?\n|\\[^\n]|\\$|[^ \t\r\n\\])`

var (
	targetsLex = lexer.MustStateful(lexer.Rules{
		"Root": {
			{Name: "Newline", Pattern: `\n`},
			{Name: "Space", Pattern: `[ \t\r\f\v]+`},
			{Name: "Cont", Pattern: `\\\r?\n`},
			{Name: "Comment", Pattern: `#[^\n]*`},
			{Name: "Extent", Pattern: `extent` + fieldChars + `*`, Action: lexer.Push("Line")},
			{Name: "Device", Pattern: `device` + fieldChars + `*`, Action: lexer.Push("Line")},
			{Name: "Target", Pattern: `(?:target|lun)` + fieldChars + `*`, Action: lexer.Push("Line")},
			{Name: "Field", Pattern: fieldChars + `+`, Action: lexer.Push("Line")},
		},
		"Line": {
			{Name: "Newline", Pattern: `\n`, Action: lexer.Pop()},
			{Name: "Sep", Pattern: `[ \t\r]+`},
			{Name: "Cont", Pattern: `\\\r?\n`},
			{Name: "Field", Pattern: fieldChars + `+`},
		},
	})
	targetsGrammar = participle.MustBuild[Line](participle.Lexer(targetsLex))
)

// unescapeTargets applies conffile.c's rules for the " \t" separator set.
func unescapeTargets(s string) string {
	return unescape(s, " \t")
}

func unescape(s, seps string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			n := s[i+1]
			switch {
			case n == '\n':
				i++
				continue
			case n == '\r' && i+2 < len(s) && s[i+2] == '\n':
				i += 2
				continue
			case strings.IndexByte(seps, n) >= 0:
				b.WriteByte(n)
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func pos(p lexer.Position) config.Position { return linelex.Pos(p) }

// warnCR reports the first CR of text (CRLF files).
func warnCR(filename, text string, ds *config.Diagnostics) {
	i := strings.IndexByte(text, '\r')
	if i < 0 {
		return
	}
	p := lexer.Position{Filename: filename, Line: 1, Column: 1}
	p.Advance(text[:i])
	ds.Warnf(pos(p), "carriage return (CRLF line ending): NetBSD keeps it in the last field; dropped here")
}

// ParseTargets parses a targets file, reporting every problem.
func ParseTargets(filename string, src []byte) (*Targets, config.Diagnostics) {
	var ds config.Diagnostics
	f := &Targets{Name: filename}
	text := linelex.StripBOM(filename, string(src), &ds)
	warnCR(filename, text, &ds)
	lines, err := linelex.Split(targetsLex, filename, text, "Newline", "Space", "Sep", "Cont", "Comment")
	if err != nil {
		p, msg := linelex.ErrorPos(err, lexer.Position{Filename: filename})
		ds.Errorf(p, "%s", msg)
	}
	for _, l := range lines {
		ln, err := linelex.Parse(targetsGrammar, l)
		if err != nil {
			p, msg := linelex.ErrorPos(err, l.Tokens[0].Pos)
			ds.Errorf(p, "%s", msg)
			continue
		}
		var fields []*Field
		switch {
		case ln.Extent != nil:
			fields = ln.Extent.Fields
			ln.Extent.Name = unescapeTargets(ln.Extent.Name)
		case ln.Device != nil:
			fields = ln.Device.Fields
			ln.Device.Name = unescapeTargets(ln.Device.Name)
		case ln.Target != nil:
			fields = ln.Target.Fields
			ln.Target.RawName = unescapeTargets(ln.Target.RawName)
		case ln.Other != nil:
			fields = ln.Other.Fields
		}
		for _, fl := range fields {
			fl.Text = unescapeTargets(fl.Raw)
		}
		switch {
		case ln.Extent != nil:
			if !finishExtent(ln.Extent, &ds) {
				f.Invalid = append(f.Invalid, ln)
				break
			}
			f.Extents = append(f.Extents, ln.Extent)
			f.Lines = append(f.Lines, ln)
		case ln.Device != nil:
			if !finishDevice(ln.Device, &ds) {
				f.Invalid = append(f.Invalid, ln)
				break
			}
			f.Devices = append(f.Devices, ln.Device)
			f.Lines = append(f.Lines, ln)
		case ln.Target != nil:
			if !finishTarget(ln.Target, &ds) {
				f.Invalid = append(f.Invalid, ln)
				break
			}
			f.Targets = append(f.Targets, ln.Target)
			f.Lines = append(f.Lines, ln)
		case ln.Other != nil:
			ds.Warnf(pos(ln.Pos), "line does not start with extent, device, target or lun: ignored (%q)", ln.Other.Fields[0].Text)
		}
	}
	return f, ds
}

func extraWarn(extra []*Field, ds *config.Diagnostics) {
	if len(extra) > 0 && !strings.HasPrefix(extra[0].Text, "#") {
		ds.Warnf(pos(extra[0].Pos), "extra fields ignored: %q", joinFields(extra))
	}
}

func joinFields(fs []*Field) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.Text
	}
	return strings.Join(s, " ")
}

func finishExtent(e *Extent, ds *config.Diagnostics) bool {
	if len(e.Fields) < 3 {
		ds.Errorf(pos(e.Pos), "extent %s needs a path, an offset and a length (extent0 /tmp/iscsi-target0 0 100MB); has %d field(s)", e.Name, len(e.Fields))
		return false
	}
	e.Path, e.Offset, e.Length = e.Fields[0], e.Fields[1], e.Fields[2]
	extra := e.Fields[3:]
	if len(extra) > 0 && isUnit(extra[0].Text) {
		extra = extra[1:] // "10 MB": package compat explains it
	}
	extraWarn(extra, ds)
	return true
}

func finishDevice(d *Device, ds *config.Diagnostics) bool {
	if len(d.Fields) < 1 {
		ds.Errorf(pos(d.Pos), "device %s needs a RAID level and members (device0 RAID1 extent0 extent1)", d.Name)
		return false
	}
	d.Level = d.Fields[0]
	for i, m := range d.Fields[1:] {
		if strings.HasPrefix(m.Text, "#") {
			ds.Warnf(pos(m.Pos), "trailing comment on a device line: NetBSD takes it as members (and fails); ignored here")
			break
		}
		d.Members = append(d.Members, d.Fields[1+i])
	}
	return true
}

func isFlag(s string) bool {
	switch strings.ToLower(s) {
	case "ro", "r", "readonly", "rw":
		return true
	}
	return false
}

func finishTarget(t *Target, ds *config.Diagnostics) bool {
	t.Name, t.IQN, t.HasIQN = strings.Cut(t.RawName, "=")
	n := len(t.Fields)
	switch {
	case n < 2:
		ds.Errorf(pos(t.Pos), "target %s needs flags, storage and a netmask (target0 rw extent0 0/0); has %d field(s)", t.Name, n)
		return false
	case n == 2:
		t.Storage, t.Netmask = t.Fields[0], t.Fields[1]
		t.OldForm = true
		if isFlag(t.Fields[0].Text) {
			// "target0 rw extent0": NetBSD reads storage "rw" and fails.
			t.Flags, t.Storage, t.Netmask = t.Fields[0], t.Fields[1], nil
			t.OldForm = false
			ds.Warnf(pos(t.Fields[1].Pos), "target %s has no netmask: NetBSD reads this line as the old 3-field form (storage %q) and fails; read here as flags %q and storage %q, visible to ALL initiators (as a config of this form was served; add a netmask such as 0/0 to say so, or 10.0.0.0/8 to limit it)", t.Name, t.Fields[0].Text, t.Fields[0].Text, t.Fields[1].Text)
		}
	default:
		t.Flags, t.Storage, t.Netmask = t.Fields[0], t.Fields[1], t.Fields[2]
		extraWarn(t.Fields[3:], ds)
	}
	return true
}

// isUnit reports whether s looks like a size unit ("MB", "g", "KiB").
func isUnit(s string) bool {
	if s == "" || len(s) > 3 || !strings.ContainsRune("kKmMgGtT", rune(s[0])) {
		return false
	}
	for _, c := range s[1:] {
		if !strings.ContainsRune("bBiI", c) {
			return false
		}
	}
	return true
}
