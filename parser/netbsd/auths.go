package netbsd

import (
	"fmt"
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
		warnCollapsed(e, text, &ds)
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

// warnCollapsed reports an entry with an empty field ("bad::secret",
// ":chap:secret"): runs of ':' collapse, in NetBSD and here, so the
// fields move left and the entry is not what it looks like.
func warnCollapsed(e *AuthEntry, text string, ds *config.Diagnostics) {
	first := e.Fields[0].Pos.Offset
	collapsed := false
	if first <= len(text) {
		// A ':' before the first field (the lexer drops it).
		collapsed = strings.Contains(text[strings.LastIndexByte(text[:first], '\n')+1:first], ":")
	}
	for i := 1; i < len(e.Fields) && !collapsed; i++ {
		a, b := e.Fields[i-1], e.Fields[i]
		if end := a.Pos.Offset + len(a.Raw); end <= b.Pos.Offset && b.Pos.Offset <= len(text) {
			collapsed = strings.Count(text[end:b.Pos.Offset], ":") > 1
		}
	}
	if !collapsed {
		return
	}
	var is []string
	for i, what := range []string{"user", "authtype", "secret"} {
		switch {
		case i < len(e.Fields) && i == 2:
			is = append(is, "a secret")
		case i == 1 && i < len(e.Fields):
			// Not printed unless it is an authtype: it may be the
			// secret, moved left (secrets are never logged).
			if t := strings.TrimRight(unescape(e.Fields[i].Raw, ":"), "\r"); strings.EqualFold(t, "chap") || strings.EqualFold(t, "none") {
				is = append(is, fmt.Sprintf("authtype %q", t))
			} else {
				is = append(is, "an unknown authtype (the field after the user, not shown: it may be the secret)")
			}
		case i < len(e.Fields):
			is = append(is, fmt.Sprintf("%s %q", what, strings.TrimRight(unescape(e.Fields[i].Raw, ":"), "\r")))
		case i == 1:
			is = append(is, "authtype none")
		default:
			is = append(is, "no secret")
		}
	}
	use := "never used for CHAP"
	if len(e.Fields) >= 3 && strings.EqualFold(strings.TrimRight(unescape(e.Fields[1].Raw, ":"), "\r"), "chap") {
		use = "used as such"
	}
	ds.Warnf(pos(e.Pos), "empty field: runs of ':' collapse (as NetBSD), so this entry is %s: %s", strings.Join(is, ", "), use)
}
