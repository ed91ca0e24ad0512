package netbsd

import (
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/ietgo/ietd/parser/internal/linelex"
	"github.com/ietgo/ietd/target/config"
)

// Auths is a parsed auths file.
type Auths struct {
	Name    string
	Entries []*AuthEntry
}

// AuthEntry is "USER[:AUTHTYPE[:SECRET]]".
type AuthEntry struct {
	Pos    lexer.Position
	Fields []*Field `parser:"@@+"`

	User     *Field
	AuthType *Field // nil = "none"
	Secret   *Field // nil when absent
}

const authChars = `(?:\\\r?\n|\\[^\n]|\\$|[^:\n\\])`

var (
	authsLex = lexer.MustStateful(lexer.Rules{
		"Root": {
			{Name: "Newline", Pattern: `\n`},
			{Name: "Space", Pattern: `[ \t\r\f\v]+`},
			{Name: "Comment", Pattern: `#[^\n]*`},
			{Name: "Colon", Pattern: `:+`, Action: lexer.Push("Line")},
			{Name: "Field", Pattern: authChars + `+`, Action: lexer.Push("Line")},
		},
		"Line": {
			{Name: "Newline", Pattern: `\n`, Action: lexer.Pop()},
			{Name: "Colon", Pattern: `:+`},
			{Name: "Field", Pattern: authChars + `+`},
		},
	})
	authsGrammar = participle.MustBuild[AuthEntry](participle.Lexer(authsLex))
)

// ParseAuths parses an auths file, reporting every problem.
func ParseAuths(filename string, src []byte) (*Auths, config.Diagnostics) {
	var ds config.Diagnostics
	f := &Auths{Name: filename}
	text := linelex.StripBOM(filename, string(src), &ds)
	warnCR(filename, text, &ds)
	lines, err := linelex.Split(authsLex, filename, text, "Newline", "Space", "Colon", "Comment")
	if err != nil {
		p, msg := linelex.ErrorPos(err, lexer.Position{Filename: filename})
		ds.Errorf(p, "%s", msg)
	}
	for _, l := range lines {
		e, err := linelex.Parse(authsGrammar, l)
		if err != nil {
			p, msg := linelex.ErrorPos(err, l.Tokens[0].Pos)
			ds.Errorf(p, "%s", msg)
			continue
		}
		for _, fl := range e.Fields {
			fl.Text = strings.TrimRight(unescape(fl.Raw, ":"), "\r")
		}
		e.User = e.Fields[0]
		if len(e.Fields) > 1 {
			e.AuthType = e.Fields[1]
		}
		switch n := len(e.Fields); {
		case n == 3:
			e.Secret = e.Fields[2]
		case n > 3:
			// NetBSD drops the secret; the user meant a ':' in it.
			s := *e.Fields[2]
			parts := make([]string, 0, n-2)
			for _, fl := range e.Fields[2:] {
				parts = append(parts, fl.Text)
			}
			s.Text = strings.Join(parts, ":")
			e.Secret = &s
			ds.Warnf(pos(e.Fields[3].Pos), "unescaped ':' in the secret of %s (NetBSD would drop the secret; write \\:); kept here", e.User.Text)
		}
		if e.Secret != nil {
			if t := strings.TrimRight(e.Secret.Text, " \t"); t != e.Secret.Text {
				ds.Warnf(pos(e.Secret.Pos), "trailing blanks in the secret of %s: NetBSD keeps them; dropped here", e.User.Text)
				e.Secret.Text = t
			}
		}
		f.Entries = append(f.Entries, e)
	}
	return f, ds
}
