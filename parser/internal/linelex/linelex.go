// Package linelex runs a participle grammar line by line over a
// line-oriented config file, so that a bad line is reported and skipped
// while every other line is still parsed (all problems in one pass), and
// every token keeps its exact file:line:col.
package linelex

import (
	"fmt"
	"strings"

	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"

	"github.com/ietgo/ietd/target/config"
)

// Line is the tokens of one logical line (newline tokens removed).
type Line struct {
	Tokens []lexer.Token
	// End is the position just after the last token of the line.
	End lexer.Position
}

// Split lexes src with def and groups the tokens by line. Tokens of type
// newline end a line and are dropped; tokens whose type is in drop are
// dropped too. A lexer error is returned together with the lines lexed so
// far.
func Split(def lexer.Definition, filename, src, newline string, drop ...string) ([]Line, error) {
	syms := def.Symbols()
	nl, ok := syms[newline]
	if !ok {
		return nil, fmt.Errorf("linelex: no token type %q", newline)
	}
	dropped := map[lexer.TokenType]bool{}
	for _, d := range drop {
		if tt, ok := syms[d]; ok {
			dropped[tt] = true
		}
	}
	lx, err := def.Lex(filename, strings.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("linelex: %w", err)
	}
	var (
		lines []Line
		cur   Line
	)
	flush := func(end lexer.Position) {
		if len(cur.Tokens) > 0 {
			cur.End = end
			lines = append(lines, cur)
		}
		cur = Line{}
	}
	for {
		t, err := lx.Next()
		if err != nil {
			flush(t.Pos)
			return lines, err
		}
		switch {
		case t.EOF():
			flush(t.Pos)
			return lines, nil
		case t.Type == nl:
			flush(t.Pos)
		case dropped[t.Type]:
		default:
			cur.Tokens = append(cur.Tokens, t)
		}
	}
}

// sliceLexer replays a fixed token slice.
type sliceLexer struct {
	toks []lexer.Token
	end  lexer.Position
	i    int
}

func (s *sliceLexer) Next() (lexer.Token, error) {
	if s.i >= len(s.toks) {
		return lexer.EOFToken(s.end), nil
	}
	t := s.toks[s.i]
	s.i++
	return t, nil
}

// Parse parses one line with p.
func Parse[G any](p *participle.Parser[G], l Line) (*G, error) {
	pl, err := lexer.Upgrade(&sliceLexer{toks: l.Tokens, end: l.End})
	if err != nil {
		return nil, err
	}
	return p.ParseFromLexer(pl)
}

// Pos converts a participle position into a model position.
func Pos(p lexer.Position) config.Position {
	return config.Position{File: p.Filename, Line: p.Line, Col: p.Column}
}

// ErrorPos returns the position of a participle error (or at when err does
// not carry one) and its message without the position prefix.
func ErrorPos(err error, at lexer.Position) (config.Position, string) {
	if pe, ok := err.(participle.Error); ok {
		p := pe.Position()
		if p.Line == 0 {
			p = at
		}
		return Pos(p), pe.Message()
	}
	if le, ok := err.(*lexer.Error); ok {
		return Pos(le.Pos), le.Msg
	}
	return Pos(at), err.Error()
}

// bom is the UTF-8 byte order mark some editors put at the start of a file.
const bom = "\uFEFF"

// StripBOM removes a UTF-8 byte order mark from the start of src with a
// warning. The original daemons read it as part of the first word (an
// unknown keyword, a target named with it); nothing means it. Columns of
// the first line count from after it.
func StripBOM(filename, src string, ds *config.Diagnostics) string {
	if !strings.HasPrefix(src, bom) {
		return src
	}
	ds.Warnf(config.Position{File: filename, Line: 1, Col: 1}, "UTF-8 byte order mark at the start of the file ignored (the original read it as part of the first word)")
	return src[len(bom):]
}
