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
//
// PATH may not contain ',', ';', '(', ')', '@' or '+'.
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
	Path   string `parser:"@Text"`
	Offset string `parser:"( '@' @Text )?"`
	Size   string `parser:"( '+' @Text )?"`
}

var storeParser = participle.MustBuild[StoreExpr](
	participle.Lexer(lexer.MustSimple([]lexer.SimpleRule{
		{Name: "Punct", Pattern: `[();@+]`},
		{Name: "Text", Pattern: `[^();@+]+`},
	})),
	participle.UseLookahead(2),
)

// ParseStore parses a Store= value written at pos.
func ParseStore(value string, pos lexer.Position) (*StoreExpr, error) {
	lex, err := storeParser.Lexer().(lexer.StringDefinition).LexString(pos.Filename, value)
	if err != nil {
		return nil, err
	}
	pl, err := lexer.Upgrade(&shifted{lex: lex, base: pos})
	if err != nil {
		return nil, err
	}
	return storeParser.ParseFromLexer(pl)
}

// shifted moves token positions to where the value sits in the file.
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
	return t, err
}
