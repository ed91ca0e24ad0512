package initscripts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// helpFlag is one option of a binary's --help: its names (as typed, with
// the dashes) and the default the help prints, if any.
type helpFlag struct {
	names []string
	def   string // "" when the help prints none, or a boolean's "false"
}

var (
	flagName = regexp.MustCompile(`(?:^|[\s,"\[(|])(--?[A-Za-z0-9][A-Za-z0-9-]*)`)
	// urfave/cli prints a flag's default value as (default: "x") or
	// (default: x); a usage text's own "(default: every address)" has
	// blanks.
	helpDefault = regexp.MustCompile(`\(default: "?([^") ]*)"?\)\s*$`)
)

// parseHelp reads the GLOBAL OPTIONS of a urfave/cli --help output.
func parseHelp(t *testing.T, out string) []helpFlag {
	t.Helper()
	_, opts, ok := strings.Cut(out, "GLOBAL OPTIONS:\n")
	if !ok {
		t.Fatalf("no GLOBAL OPTIONS in the help:\n%s", out)
	}
	var flags []helpFlag
	for _, line := range strings.Split(opts, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-") {
			continue
		}
		// The names column ends at the first run of blanks wider than
		// the " [ --address ADDR ]" repetition mark.
		col := regexp.MustCompile(`\s{2,}`).Split(line, 2)
		var f helpFlag
		for _, m := range flagName.FindAllStringSubmatch(" "+col[0], -1) {
			if !slices.Contains(f.names, m[1]) {
				f.names = append(f.names, m[1])
			}
		}
		if len(col) == 2 {
			if m := helpDefault.FindStringSubmatch(col[1]); m != nil && m[1] != "false" {
				f.def = m[1]
			}
		}
		flags = append(flags, f)
	}
	if len(flags) == 0 {
		t.Fatalf("no options parsed from the help:\n%s", out)
	}
	return flags
}

// manOptions returns the option names that head an item (.TP/.TQ) of a
// man page's OPTIONS section, and each item's text with the roff escapes
// that matter here undone.
func manOptions(t *testing.T, page string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("man", page))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n.SH OPTIONS\n")
	if !ok {
		t.Fatalf("%s: no OPTIONS section", page)
	}
	if i := strings.Index(sec, "\n.SH "); i >= 0 {
		sec = sec[:i]
	}
	unroff := strings.NewReplacer(`\-`, "-", `\fI`, "", `\fB`, "", `\fR`, "", `\fP`, "", `\(*m`, "µ")
	items := map[string]string{}
	lines := strings.Split(sec, "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] != ".TP" && lines[i] != ".TQ" || i+1 >= len(lines) {
			continue
		}
		head := unroff.Replace(lines[i+1])
		// The item's text: up to the next item (an .IP continues it).
		var body []string
		for j := i + 2; j < len(lines) && lines[j] != ".TP" && lines[j] != ".TQ"; j++ {
			body = append(body, unroff.Replace(lines[j]))
		}
		text := head + "\n" + strings.Join(body, "\n")
		head = strings.TrimLeft(strings.TrimPrefix(strings.TrimPrefix(head, ".BR"), ".BI"), ". B")
		for _, m := range flagName.FindAllStringSubmatch(" "+head, -1) {
			items[m[1]] += text
		}
	}
	return items
}

// manSynopsis returns the options a man page's SYNOPSIS shows, a cluster
// such as -46DV as its letters.
func manSynopsis(t *testing.T, page string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("man", page))
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n.SH SYNOPSIS\n")
	if !ok {
		t.Fatalf("%s: no SYNOPSIS section", page)
	}
	sec, _, _ = strings.Cut(sec, "\n.SH ")
	sec = strings.NewReplacer(`\-`, "-", `\fI`, " ", `\fB`, " ", `\fR`, " ", `\fP`, " ").Replace(sec)
	var out []string
	for _, m := range flagName.FindAllStringSubmatch(sec, -1) {
		n := m[1]
		if !strings.HasPrefix(n, "--") && len(n) > 2 {
			for _, c := range n[1:] {
				out = append(out, "-"+string(c))
			}
			continue
		}
		out = append(out, n)
	}
	return out
}

// TestManPagesDocumentEveryFlag: every option a binary's --help lists is
// an item of its man page's OPTIONS section, with the default the help
// prints, and every option the section documents exists.
func TestManPagesDocumentEveryFlag(t *testing.T) {
	pages := map[string]string{"ietd": "ietd.8", "ietadm": "ietadm.8", "iscsi-target": "iscsi-target.8", "ietd-migrate": "ietd-migrate.8"}
	// Defaults the help prints that the page gives in other words.
	sameDefault := map[string]bool{
		"ietd -1":         true, // --uid/--gid: no switch
		"ietd 0":          true, // --debug: "0 warnings and errors (default)"
		"iscsi-target 16": true,
	}
	for bin, page := range pages {
		t.Run(bin, func(t *testing.T) {
			exe := realBin(t, bin)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, exe, "--help").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --help: %v\n%s", bin, err, out)
			}
			items := manOptions(t, page)
			known := map[string]bool{}
			for _, f := range parseHelp(t, string(out)) {
				for _, n := range f.names {
					known[n] = true
					text, ok := items[n]
					if !ok {
						t.Errorf("%s: %s %s is not documented in OPTIONS", page, bin, n)
						continue
					}
					if f.def != "" && !sameDefault[bin+" "+f.def] && !strings.Contains(text, f.def) {
						t.Errorf("%s: %s %s: the help's default %q is not in the page's item:\n%s", page, bin, n, f.def, text)
					}
				}
			}
			for n := range items {
				if !known[n] {
					t.Errorf("%s documents %s, which %s --help does not list", page, n, bin)
				}
			}
			for _, n := range manSynopsis(t, page) {
				if !known[n] {
					t.Errorf("%s: SYNOPSIS shows %s, which %s --help does not list", page, n, bin)
				}
			}
		})
	}
}

// TestParseHelp pins the help parsing on urfave/cli's layout.
func TestParseHelp(t *testing.T) {
	out := "GLOBAL OPTIONS:\n" +
		"   --config FILE, -c FILE                               config FILE (default /etc/x)\n" +
		"   --address ADDR, -a ADDR [ --address ADDR, -a ADDR ]  listen ADDR (default: all addresses)\n" +
		"   --port PORT, -p PORT                                 listen PORT (default: 3260)\n" +
		"   --pid-file FILE                                      pid FILE (default: \"/var/run/x.pid\")\n" +
		"   -4                                                   IPv4 only (default: false)\n"
	got := parseHelp(t, out)
	want := []helpFlag{
		{names: []string{"--config", "-c"}},
		{names: []string{"--address", "-a"}},
		{names: []string{"--port", "-p"}, def: "3260"},
		{names: []string{"--pid-file"}, def: "/var/run/x.pid"},
		{names: []string{"-4"}},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d flags, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !slices.Equal(got[i].names, want[i].names) || got[i].def != want[i].def {
			t.Errorf("flag %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestReadmeListsDaemonFlags: the README's "Running it" section names
// every long option of ietd and iscsi-target (the ones beyond the
// originals' flags are listed there as ours).
func TestReadmeListsDaemonFlags(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n## Running it\n")
	if !ok {
		t.Fatal("README.md has no Running it section")
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	// ietd's flags are in the table, iscsi-target's in the paragraph
	// after it.
	var table []string
	for _, l := range strings.Split(sec, "\n") {
		if strings.HasPrefix(l, "|") {
			table = append(table, l)
		}
	}
	i := strings.Index(sec, "NetBSD's `iscsi-target")
	if i < 0 {
		t.Fatal("README.md, Running it: no paragraph on iscsi-target's flags")
	}
	para, _, _ := strings.Cut(sec[i:], "\n\n")
	texts := map[string]string{"ietd": strings.Join(table, "\n"), "iscsi-target": para}
	for _, bin := range []string{"ietd", "iscsi-target"} {
		sec := texts[bin]
		exe := realBin(t, bin)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, exe, "--help").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s --help: %v\n%s", bin, err, out)
		}
		for _, f := range parseHelp(t, string(out)) {
			if slices.Contains(f.names, "--help") || slices.Contains(f.names, "--version") {
				continue
			}
			// Under any of its names (IET's flags by their letters).
			listed := false
			for _, n := range f.names {
				re := regexp.MustCompile("[`\\[ ]" + regexp.QuoteMeta(n) + "[ `\\]]")
				listed = listed || re.MatchString(sec)
			}
			if !listed {
				t.Errorf("README.md, Running it: %s %s is not listed", bin, strings.Join(f.names, ", "))
			}
		}
	}
}
