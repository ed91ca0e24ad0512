package argv

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// valueTaker is implemented by every urfave/cli flag type.
type valueTaker interface {
	TakesValue() bool
}

// Normalize returns args (args[0] is the program name) with every
// getopt-style short option cluster split the way getopt(3) reads it:
// each letter of "-abc" is an option; the first letter that takes a value
// takes the rest of the word ("-d1", "-c/path") or, when nothing is left,
// the next word. Long options ("--name", "--name=value", and "-name" for a
// defined long name) and the value words they take are copied unchanged,
// as is everything after "--". A cluster with a letter that is not a
// defined short option is left as it is, for the parser to report.
func Normalize(args []string, flags []cli.Flag) []string {
	if len(args) == 0 {
		return args
	}
	short := map[byte]bool{} // letter -> takes a value
	long := map[string]bool{}
	for _, f := range flags {
		takes := true
		if v, ok := f.(valueTaker); ok {
			takes = v.TakesValue()
		}
		for _, n := range f.Names() {
			if len(n) == 1 {
				short[n[0]] = takes
			} else {
				long[n] = takes
			}
		}
	}
	out := append(make([]string, 0, len(args)+4), args[0])
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...)
		case len(a) < 2 || a[0] != '-':
			out = append(out, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, isLong := long[name]
		if strings.HasPrefix(a, "--") || isLong {
			if len(name) == 1 {
				takes = short[name[0]]
			}
			out = append(out, a)
			if takes && !hasValue && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		split, consumedNext := cluster(a[1:], short)
		if split == nil {
			out = append(out, a) // unknown letter: let the parser complain
			continue
		}
		out = append(out, split...)
		if consumedNext && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// cluster splits the letters of one short-option word. It returns nil when
// a letter is not a known option; needNext is true when the last option
// takes its value from the next word.
func cluster(letters string, short map[byte]bool) (words []string, needNext bool) {
	for j := 0; j < len(letters); j++ {
		takes, ok := short[letters[j]]
		if !ok {
			return nil, false
		}
		words = append(words, "-"+letters[j:j+1])
		if takes {
			if rest := letters[j+1:]; rest != "" {
				return append(words, rest), false
			}
			return words, true
		}
	}
	return words, false
}
