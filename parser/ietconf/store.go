package ietconf

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// StoreExpr is the value of our Lun key Store= (an extension, see package
// compat): a file window or a RAID composition of stores.
//
//	store := "raid0(" store {";" store} ")" | "raid1(" ... ")" | file
//	file  := PATH ["@" OFFSET] ["+" SIZE]
//	PATH  := text without ; ( ) @ + | '"' text without '"' '"'
//
// A PATH holding one of ; ( ) @ + is written in double quotes (the
// quotes are not part of it). No PATH holds a ',' (it ends the Lun
// line's parameter).
type StoreExpr struct {
	Pos       lexer.Position
	Composite *CompositeExpr `parser:"  @@"`
	File      *FileExpr      `parser:"| @@"`
}

// CompositeExpr is "raidN(member;member...)".
type CompositeExpr struct {
	Pos     lexer.Position
	Level   string       `parser:"@Text '('"`
	Members []*StoreExpr `parser:"@@ ( ';' @@ )* ')'"`
}

// FileExpr is "PATH[@OFFSET][+SIZE]".
type FileExpr struct {
	Pos    lexer.Position
	Path   string `parser:"( @Quoted | @Text )"`
	Offset string `parser:"( '@' @Text )?"`
	Size   string `parser:"( '+' @Text )?"`
}

var (
	storeLexer = lexer.MustSimple([]lexer.SimpleRule{
		{Name: "Quoted", Pattern: `"[^"]*"`},
		{Name: "Punct", Pattern: `[();@+]`},
		{Name: "Text", Pattern: `[^();@+]+`},
	})
	storeQuoted = storeLexer.Symbols()["Quoted"]
	storeParser = participle.MustBuild[StoreExpr](participle.Lexer(storeLexer), participle.UseLookahead(2))
)

// ParseStore parses a Store= value written at pos.
func ParseStore(value string, pos lexer.Position) (*StoreExpr, error) {
	lex, err := storeLexer.LexString(pos.Filename, value)
	if err != nil {
		return nil, err
	}
	pl, err := lexer.Upgrade(&shifted{lex: lex, base: pos})
	if err != nil {
		return nil, err
	}
	return storeParser.ParseFromLexer(pl)
}

// shifted moves token positions to where the value sits in the file and
// takes the quotes off a quoted path.
type shifted struct {
	lex  lexer.Lexer
	base lexer.Position
}

func (s *shifted) Next() (lexer.Token, error) {
	t, err := s.lex.Next()
	t.Pos.Filename = s.base.Filename
	t.Pos.Line = s.base.Line
	t.Pos.Column = s.base.Column + t.Pos.Column - 1
	t.Pos.Offset += s.base.Offset
	if t.Type == storeQuoted {
		t.Value = t.Value[1 : len(t.Value)-1]
	}
	return t, err
}
