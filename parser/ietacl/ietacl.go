package ietacl

import (
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/ietgo/ietd/parser/internal/linelex"
	"github.com/ietgo/ietd/target/config"
)

// File is a parsed access-control file.
type File struct {
	Name  string
	Rules []*Rule
}

// Rule is one line.
type Rule struct {
	Pos    lexer.Position
	Target *Word   `parser:"@@"`
	Items  []*Item `parser:"( @@ | ',' )*"`
}

// Word is one token.
type Word struct {
	Pos  lexer.Position
	Text string `parser:"@(Name | Word)"`
}

// Item is one comma-separated item.
type Item struct {
	Pos   lexer.Position
	Words []*Word `parser:"@@+"`
	// Text is the item as written (inner spaces kept, trimmed).
	Text string
}

var (
	lexDef = lexer.MustStateful(lexer.Rules{
		"Root": {
			{Name: "Newline", Pattern: `\n`},
			{Name: "Space", Pattern: `[ \t\r\f\v]+`},
			{Name: "Comment", Pattern: `#[^\n]*`},
			{Name: "Name", Pattern: `[^ \t\r\f\v\n]+`, Action: lexer.Push("Line")},
		},
		"Line": {
			{Name: "Newline", Pattern: `\n`, Action: lexer.Pop()},
			{Name: "Space", Pattern: `[ \t\r\f\v]+`},
			{Name: "Comma", Pattern: `,`},
			{Name: "Word", Pattern: `[^ \t\r\f\v\n,]+`},
		},
	})
	grammar = participle.MustBuild[Rule](participle.Lexer(lexDef))
)

// Parse parses src (the content of filename), reporting every problem.
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
		if last := l.Tokens[len(l.Tokens)-1]; strings.HasSuffix(last.Value, `\`) {
			p := last.Pos
			p.Advance(last.Value[:len(last.Value)-1])
			ds.Warnf(linelex.Pos(p), "line continuation is not supported (IET never supported it): the backslash stays in the item and the next line is read on its own")
		}
		r, err := linelex.Parse(grammar, l)
		if err != nil {
			p, msg := linelex.ErrorPos(err, l.Tokens[0].Pos)
			ds.Errorf(p, "%s", msg)
			continue
		}
		for _, it := range r.Items {
			first, last := it.Words[0], it.Words[len(it.Words)-1]
			end := last.Pos.Offset + len(last.Text)
			if first.Pos.Offset >= 0 && end <= len(text) && first.Pos.Offset <= end {
				it.Text = text[first.Pos.Offset:end]
			}
		}
		if len(r.Items) == 0 {
			ds.Warnf(linelex.Pos(r.Pos), "rule for %q lists no initiators or addresses (it never matches)", r.Target.Text)
		}
		f.Rules = append(f.Rules, r)
	}
	if n := len(text); n > 0 && text[n-1] != '\n' && len(lines) > 0 {
		tail := strings.TrimLeft(text[strings.LastIndexByte(text, '\n')+1:], " \t\r\f\v")
		if !strings.HasPrefix(tail, "#") {
			last := lines[len(lines)-1]
			ds.Warnf(linelex.Pos(last.Tokens[0].Pos), "last line has no newline: IET ignores such a line (accepted here)")
		}
	}
	return f, ds
}
