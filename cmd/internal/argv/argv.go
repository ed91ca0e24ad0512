package argv

import (
	"fmt"
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
	short, long := flagTable(flags)
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

// flagTable maps each one-letter name of flags (short) and each longer
// name (long) to whether the option takes a value.
func flagTable(flags []cli.Flag) (short map[byte]bool, long map[string]bool) {
	short, long = map[byte]bool{}, map[string]bool{}
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
	return short, long
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

// DropUnknown returns args (args[0] is the program name) without the
// options that are not among flags, and a warning for each, for a
// program whose original's getopt(3) complained about an unknown option
// and carried on (NetBSD's iscsi-target). An unknown letter in a cluster
// is dropped and the other letters kept ("-Dx" is -D); an unknown long
// option ("--foo", "--foo=bar") is dropped whole.
//
// An unknown option's argument cannot be known, so getopt never takes
// one; the word after an unknown option is dropped too only when it
// cannot be an option (it does not start with '-') and the unknown
// option ends its word: it is then either that option's argument or a
// stray word, and a stray word is ignored anyway (NetBSD ignores extra
// arguments), so dropping it changes nothing but lets the options after
// it be read ("-u foo -f FILE" reads -f; NetBSD's getopt stopped at
// "foo" and left -f unread, which the warning says). A word starting with
// '-' after an unknown option is read as an option.
func DropUnknown(args []string, flags []cli.Flag) (out []string, warnings []string) {
	if len(args) == 0 {
		return args, nil
	}
	short, long := flagTable(flags)
	for b, takes := range short {
		long[string(b)] = takes // "--b" names the short option b too
	}
	out = append(make([]string, 0, len(args)), args[0])
	// dropNext drops the word after an unknown option at i, when it is
	// not an option; it returns the new index.
	dropNext := func(i int, opt string) int {
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			warnings = append(warnings, fmt.Sprintf("unknown option %s ignored, and the word %q after it (its argument, or a stray word; NetBSD's getopt read no option after it)", opt, args[i+1]))
			return i + 1
		}
		warnings = append(warnings, fmt.Sprintf("unknown option %s ignored", opt))
		return i
	}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i:]...), warnings
		case len(a) < 2 || a[0] != '-':
			out = append(out, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if takes, ok := long[name]; ok && (strings.HasPrefix(a, "--") || len(name) > 1) {
			out = append(out, a)
			if takes && !hasValue && i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		if strings.HasPrefix(a, "--") {
			if hasValue {
				warnings = append(warnings, fmt.Sprintf("unknown option %s ignored", a))
				continue
			}
			i = dropNext(i, a)
			continue
		}
		// A short cluster: getopt reads it letter by letter.
		kept := "-"
		takesNext := false
		for j := 1; j < len(a); j++ {
			c := a[j]
			takes, ok := short[c]
			if !ok {
				if j == len(a)-1 {
					i = dropNext(i, "-"+string(c))
				} else {
					warnings = append(warnings, fmt.Sprintf("unknown option -%c ignored", c))
				}
				continue
			}
			kept += string(c)
			if takes {
				if j+1 < len(a) {
					kept += a[j+1:]
				} else {
					takesNext = true
				}
				break
			}
		}
		if kept != "-" {
			out = append(out, kept)
		}
		if takesNext && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out, warnings
}
