package acl_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/acl"
	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

type parseCounter struct{ n int }

func (p *parseCounter) parse(path string, src []byte, initiators bool) (*config.ACLFile, config.Diagnostics) {
	p.n++
	var ds config.Diagnostics
	return compat.ParseACL(path, src, initiators, &ds), ds
}

func write(t *testing.T, path, text string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func items(f *config.ACLFile) string {
	if f == nil {
		return "absent"
	}
	var out []string
	for _, r := range f.Rules {
		for _, it := range r.Items {
			out = append(out, r.Target+" "+it.Text)
		}
	}
	return strings.Join(out, "; ")
}

func errorsLogged(h *test.Hook) int {
	n := 0
	for _, e := range h.AllEntries() {
		if e.Level == logrus.ErrorLevel {
			n++
		}
	}
	return n
}

func TestFilesRereadOnChange(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "initiators.allow")
	t0 := time.Unix(1_700_000_000, 0)
	write(t, p, "ALL 10.0.0.1\n", t0)
	logger, hook := test.NewNullLogger()
	pc := &parseCounter{}
	f := acl.NewFiles([]string{dir}, pc.parse, logrus.NewEntry(logger))

	allow, deny, targets := f.Current()
	if items(allow) != "ALL 10.0.0.1" || deny != nil || targets != nil {
		t.Fatalf("got %s / %s / %s", items(allow), items(deny), items(targets))
	}
	f.Current()
	if pc.n != 1 {
		t.Fatalf("unchanged file parsed %d times, want 1", pc.n)
	}

	// Pacemaker appends a line.
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("ALL 10.0.0.2\n")
	fh.Close()
	if allow, _, _ = f.Current(); items(allow) != "ALL 10.0.0.1; ALL 10.0.0.2" {
		t.Fatalf("after append: %s", items(allow))
	}

	// Same size, new modification time.
	write(t, p, "ALL 10.0.0.3\nALL 10.0.0.4\n", t0.Add(time.Second))
	if allow, _, _ = f.Current(); items(allow) != "ALL 10.0.0.3; ALL 10.0.0.4" {
		t.Fatalf("after rewrite: %s", items(allow))
	}

	// Same size and time, new inode (an editor's rename).
	tmp := filepath.Join(dir, "new")
	write(t, tmp, "ALL 10.0.0.5\nALL 10.0.0.6\n", t0.Add(time.Second))
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if allow, _, _ = f.Current(); items(allow) != "ALL 10.0.0.5; ALL 10.0.0.6" {
		t.Fatalf("after rename: %s", items(allow))
	}

	// A broken edit: logged once and applied as IET reads it, the item
	// in error matching no one (keeping the rules before would let in
	// whom the edit meant to drop, and everyone when the file is new).
	n := pc.n
	write(t, p, "ALL 10.0.0.7/99, 10.0.0.9\n", t0.Add(2*time.Second))
	for i := 0; i < 3; i++ {
		if allow, _, _ = f.Current(); items(allow) != "ALL 10.0.0.9" {
			t.Fatalf("broken file: rules %s, want the good item only", items(allow))
		}
	}
	if pc.n != n+1 {
		t.Errorf("broken file parsed %d times, want once", pc.n-n)
	}
	errs := errorsLogged(hook)
	if errs == 0 {
		t.Fatal("parse error not logged")
	}
	var msgs []string
	for _, e := range hook.AllEntries() {
		msgs = append(msgs, e.Message)
	}
	if !strings.Contains(strings.Join(msgs, "\n"), p+":1:") {
		t.Errorf("error lacks the file position:\n%s", strings.Join(msgs, "\n"))
	}
	f.Current()
	if errorsLogged(hook) != errs {
		t.Error("the same error was logged again")
	}
	write(t, p, "ALL 10.0.0.8\n", t0.Add(3*time.Second))
	if allow, _, _ = f.Current(); items(allow) != "ALL 10.0.0.8" {
		t.Fatalf("after the fix: %s", items(allow))
	}

	// Removed: absent again (IET: no initiators.allow = allowed).
	os.Remove(p)
	if allow, _, _ = f.Current(); allow != nil {
		t.Fatalf("removed file still applies: %s", items(allow))
	}
}

func TestFilesSearchOrder(t *testing.T) {
	etcIET, etc := t.TempDir(), t.TempDir()
	write(t, filepath.Join(etc, "targets.allow"), "ALL 127.0.0.1\n", time.Unix(1_700_000_000, 0))
	pc := &parseCounter{}
	f := acl.NewFiles([]string{etcIET, etc}, pc.parse, nil)
	if _, _, ta := f.Current(); ta == nil || ta.Path != filepath.Join(etc, "targets.allow") {
		t.Fatalf("fallback file not used: %+v", ta)
	}
	// A file created in the first directory shadows the fallback.
	write(t, filepath.Join(etcIET, "targets.allow"), "ALL 127.0.0.2\n", time.Unix(1_700_000_000, 0))
	if _, _, ta := f.Current(); ta == nil || ta.Path != filepath.Join(etcIET, "targets.allow") || items(ta) != "ALL 127.0.0.2" {
		t.Fatalf("got %+v", ta)
	}
}

func TestFilesSeed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "initiators.allow")
	write(t, p, "ALL 10.0.0.1\n", time.Unix(1_700_000_000, 0))
	cfg, _, err := compat.LoadBytes("", nil, compat.LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pc := &parseCounter{}
	f := acl.NewFiles([]string{dir}, pc.parse, nil)
	f.Seed(cfg)
	n := pc.n
	if allow, _, _ := f.Current(); items(allow) != "ALL 10.0.0.1" || pc.n != n {
		t.Fatalf("after Seed: %s, %d more parses", items(allow), pc.n-n)
	}
	// A file broken at the first check applies as IET reads it: a '['
	// without ']' makes its line match no one (the line still applies,
	// so the allow file denies everyone).
	f = acl.NewFiles([]string{dir}, pc.parse, nil)
	write(t, p, "ALL 10.0.0.1, [::1\n", time.Unix(1_700_000_001, 0))
	f.Seed(cfg)
	allow, _, _ := f.Current()
	if allow == nil || len(allow.Rules) != 1 || len(allow.Rules[0].Items) != 0 {
		t.Fatalf("broken file at start: %s, want one line that matches no one", items(allow))
	}
}

// A new initiators.allow with an error in it restricts at once: it must not
// leave the "absent" rules (no restriction) in force.
func TestNewBrokenAllowFileDoesNotFailOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, acl.InitiatorsAllowFile)
	pc := &parseCounter{}
	f := acl.NewFiles([]string{dir}, pc.parse, nil)
	if allow, _, _ := f.Current(); allow != nil {
		t.Fatalf("no file: %s, want absent", items(allow))
	}
	write(t, p, "ALL 10.0.0.0/8, [fe80::1\n", time.Unix(1_700_000_000, 0))
	allow, _, _ := f.Current()
	if allow == nil {
		t.Fatal("a new allow file with an error left the rules absent: everyone may log in")
	}
	if len(allow.Rules) != 1 || len(allow.Rules[0].Items) != 0 {
		t.Fatalf("rules %s, want one line that matches no one (IET: '[' without ']' aborts the line)", items(allow))
	}
}

func TestLiveNetmaskWarnings(t *testing.T) {
	logger, hook := test.NewNullLogger()
	now := time.Unix(1_700_000_000, 0)
	live := &acl.Live{Log: logrus.NewEntry(logger), Now: func() time.Time { return now }}
	nm, err := compat.ParseNetmask("10.4/16")
	if err != nil {
		t.Fatal(err)
	}
	t0 := config.NewTarget(1, "iqn.1994-04.org.netbsd.iscsi-target:target0")
	t1 := config.NewTarget(2, "iqn.1994-04.org.netbsd.iscsi-target:target1")
	t0.AllowedNets = []config.Netmask{nm}
	t1.AllowedNets = []config.Netmask{nm}
	cfg := &config.Config{Dialect: config.DialectNetBSD, Targets: []*config.Target{t0, t1}}
	peer := netip.MustParseAddr("192.0.2.7")
	warnings := func() int {
		n := 0
		for _, e := range hook.AllEntries() {
			if e.Level == logrus.WarnLevel {
				n++
			}
		}
		return n
	}
	for i := 0; i < 20; i++ { // a looping initiator
		if ok, _ := live.For(cfg).InitiatorAllowed(t0, "iqn.x", peer, false); ok {
			t.Fatal("netmask not applied")
		}
	}
	if warnings() != 1 {
		t.Fatalf("%d warnings for 20 refusals within a minute, want 1", warnings())
	}
	e := hook.LastEntry()
	if !strings.Contains(e.Message, "login refused") || !strings.Contains(e.Message, "10.4/16") || e.Data["peer"] != "192.0.2.7" {
		t.Errorf("warning %q %v", e.Message, e.Data)
	}
	live.For(cfg).InitiatorAllowed(t1, "iqn.x", peer, true)
	if warnings() != 2 || !strings.Contains(hook.LastEntry().Message, "discovery") {
		t.Fatalf("other target: %d warnings, last %q", warnings(), hook.LastEntry().Message)
	}
	now = now.Add(61 * time.Second)
	live.For(cfg).InitiatorAllowed(t0, "iqn.x", peer, false)
	if warnings() != 3 {
		t.Fatalf("after a minute: %d warnings, want 3", warnings())
	}
	if ok, _ := live.For(cfg).InitiatorAllowed(t0, "iqn.x", netip.MustParseAddr("10.4.1.1"), false); !ok {
		t.Fatal("address inside the netmask refused")
	}
	// A nil Live evaluates the same rules and logs nothing.
	var none *acl.Live
	if ok, _ := none.For(cfg).InitiatorAllowed(t0, "iqn.x", peer, false); ok {
		t.Fatal("nil Live ignored the netmask")
	}
}

func TestLiveUsesFilesForIETOnly(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "initiators.allow"), "ALL 192.0.2.1\n", time.Unix(1_700_000_000, 0))
	live := &acl.Live{Files: acl.NewFiles([]string{dir}, (&parseCounter{}).parse, nil)}
	tg := config.NewTarget(1, tA)
	peer := netip.MustParseAddr("127.0.0.1")
	iet := &config.Config{Dialect: config.DialectIET, Targets: []*config.Target{tg}}
	if ok, _ := live.For(iet).InitiatorAllowed(tg, "iqn.x", peer, false); ok {
		t.Fatal("IET config: initiators.allow on disk not applied")
	}
	if iet.InitiatorsAllow != nil {
		t.Fatal("For modified the running config")
	}
	nb := &config.Config{Dialect: config.DialectNetBSD, Targets: []*config.Target{tg}}
	if ok, _ := live.For(nb).InitiatorAllowed(tg, "iqn.x", peer, false); !ok {
		t.Fatal("NetBSD config: IET files applied")
	}
}
