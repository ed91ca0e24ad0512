package compat

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/config")

const fixtures = "../testdata/config"

// loadFixture loads one fixture directory (relative paths in messages).
func loadFixture(t *testing.T, dir string) (*config.Config, config.Diagnostics, error) {
	t.Helper()
	opts := LoadOptions{ACLDir: dir, AuthsPath: filepath.Join(dir, "auths")}
	if _, err := os.Stat(opts.AuthsPath); err != nil {
		opts.AuthsPath = filepath.Join(dir, "no-auths-file")
	}
	for _, name := range []string{"ietd.conf", "targets"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			if name == "targets" {
				if _, err := os.Stat(filepath.Join(dir, "auths")); err != nil {
					return loadNoAuths(t, p, opts)
				}
			}
			return Load(p, opts)
		}
	}
	t.Fatalf("%s: no ietd.conf or targets", dir)
	return nil, nil, nil
}

func loadNoAuths(t *testing.T, p string, opts LoadOptions) (*config.Config, config.Diagnostics, error) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var ds config.Diagnostics
	cfg := &config.Config{Dialect: config.DialectNetBSD, Source: p}
	if d := DetectDialect(p, b); d != config.DialectNetBSD {
		t.Fatalf("%s detected as %s", p, d)
	}
	cfg2, ds2, err := LoadBytes(p, b, LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
	_ = cfg
	ds = append(ds, ds2...)
	return cfg2, ds, err
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./compat -update)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run go test ./compat -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func diagText(ds config.Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	t.Chdir(fixtures)
	dirs, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if !d.IsDir() || d.Name() == wildDir {
			continue // wild-iet has its own test (wild_test.go)
		}
		name := d.Name()
		t.Run(name, func(t *testing.T) {
			cfg, ds, err := loadFixture(t, name)
			if cfg == nil {
				t.Fatalf("no model: %v", err)
			}
			if (err != nil) != ds.HasErrors() {
				t.Fatalf("err = %v but HasErrors = %v", err, ds.HasErrors())
			}
			if strings.Contains(name, "malformed") && err == nil {
				t.Fatal("malformed fixture loaded without error")
			}
			golden(t, filepath.Join(name, "diagnostics.golden"), diagText(ds))
			golden(t, filepath.Join(name, "ietd.conf.golden"), RenderIET(cfg))
			if cfg.Dialect == config.DialectIET {
				var acls strings.Builder
				for _, f := range []*config.ACLFile{cfg.InitiatorsAllow, cfg.InitiatorsDeny, cfg.TargetsAllow} {
					if f != nil {
						acls.WriteString("# " + f.Path + "\n" + RenderACL(f))
					}
				}
				golden(t, filepath.Join(name, "acl.golden"), acls.String())
			}
			if cfg.Dialect == config.DialectNetBSD {
				conf, allow, notes := MigrateNetBSD(cfg)
				golden(t, filepath.Join(name, "migrated.ietd.conf.golden"), conf)
				golden(t, filepath.Join(name, "migrated.initiators.allow.golden"), allow)
				golden(t, filepath.Join(name, "migrated.notes.golden"), strings.Join(notes, "\n")+"\n")
			}
		})
	}
}

// stripPositions zeroes every Position (and Source) so that models from
// different texts compare equal.
func stripPositions(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			stripPositions(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			stripPositions(v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(config.Position{}) {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Name == "Source" {
				v.Field(i).SetString("")
				continue
			}
			stripPositions(v.Field(i))
		}
	}
}

func comparable(c *config.Config) *config.Config {
	c = c.Clone()
	c.InitiatorsAllow, c.InitiatorsDeny, c.TargetsAllow = nil, nil, nil
	stripPositions(reflect.ValueOf(c))
	return c
}

func TestRoundTrip(t *testing.T) {
	t.Chdir(fixtures)
	for _, name := range []string{"iet-full", "iet-extensions", "iet-malformed", "netbsd-full", "netbsd-user"} {
		t.Run(name, func(t *testing.T) {
			cfg, orig, _ := loadFixture(t, name)
			text := RenderIET(cfg)
			back, ds, err := LoadBytes("rendered", []byte(text), LoadOptions{Dialect: config.DialectIET, ACLDir: t.TempDir()})
			if err != nil {
				t.Fatalf("rendered config does not load: %v\n%s", err, text)
			}
			seen := map[string]bool{}
			for _, d := range orig {
				seen[d.Msg] = true
			}
			for _, d := range ds {
				if !seen[d.Msg] {
					t.Errorf("rendered config has a new warning: %s", d)
				}
			}
			want := comparable(cfg)
			want.Dialect = config.DialectIET
			for _, tg := range want.Targets {
				tg.AllowedNets, tg.NetBSDIndex = nil, -1
				tg.Auth.Optional = false           // ietd.conf has no optional CHAP
				tg.Auth.FoldUsers = false          // nor user names without case
				tg.Auth.MutualWithIncoming = false // nor mutual CHAP without OutgoingUser
				var accs []config.Account
				for _, a := range tg.Auth.Incoming {
					if AccountExpressible(a) {
						accs = append(accs, a)
					}
				}
				tg.Auth.Incoming = accs
				for _, l := range tg.LUNs {
					clearNames(l.Store)
				}
			}
			if got := comparable(back); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip changed the model:\n%s", text)
			}
			// And a second render is byte-identical.
			if again := RenderIET(back); again != text && !strings.Contains(text, " omitted: ") {
				t.Fatalf("render not stable:\n%s\n---\n%s", text, again)
			}
		})
	}
}

func clearNames(s *config.Store) {
	if s == nil {
		return
	}
	s.Name = ""
	for _, m := range s.Members {
		clearNames(m)
	}
}

// migrationRoundTrip migrates a NetBSD model and reads the result back as
// ietd.conf: unless a note says to edit it by hand, the targets must come
// back with the same names, TIDs, LUNs and stores (NetBSD names, netmasks
// and accounts ietd.conf cannot hold aside).
func migrationRoundTrip(cfg *config.Config, dir string) (byHand bool, err error) {
	conf, _, notes := MigrateNetBSD(cfg)
	if strings.Contains(strings.Join(notes, "\n"), "by hand") {
		return true, nil
	}
	back, ds, err := LoadBytes("migrated", []byte(conf), LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
	if err != nil {
		return false, fmt.Errorf("migration does not load: %v\n%s", ds, conf)
	}
	want := comparable(cfg)
	want.Dialect = config.DialectIET
	for _, tg := range want.Targets {
		tg.AllowedNets, tg.NetBSDIndex = nil, -1
		if tg.MaxSessions == 0 {
			tg.MaxSessions = DefaultNetBSDMaxSessions // iscsi-target's without -s
		}
		tg.Auth.Optional = false
		tg.Auth.FoldUsers = false
		tg.Auth.MutualWithIncoming = false
		var accs []config.Account
		for _, a := range tg.Auth.Incoming {
			if AccountExpressible(a) {
				accs = append(accs, a)
			}
		}
		tg.Auth.Incoming = accs
		for _, l := range tg.LUNs {
			clearNames(l.Store)
			l.Identity = config.DialectNetBSD // what the NetBSD dialect implied
			if l.BlockSize == 0 {
				l.BlockSize = DefaultNetBSDBlockSize // iscsi-target's without -b
			}
		}
	}
	if got := comparable(back); !reflect.DeepEqual(got, want) {
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		return false, fmt.Errorf("migration changed the model:\n%s\ngot  %s\nwant %s", conf, gj, wj)
	}
	return false, nil
}

func TestMigrateLoads(t *testing.T) {
	t.Chdir(fixtures)
	for _, name := range []string{"netbsd-full", "netbsd-user"} {
		cfg, _, _ := loadFixture(t, name)
		conf, allow, _ := MigrateNetBSD(cfg)
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "ietd.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, InitiatorsAllow), []byte(allow), 0o600); err != nil {
			t.Fatal(err)
		}
		got, ds, err := Load(filepath.Join(dir, "ietd.conf"), LoadOptions{ACLDir: dir})
		if err != nil {
			t.Fatalf("%s: migrated config does not load: %v", name, err)
		}
		if ds.HasErrors() || len(got.Targets) != len(cfg.Targets) || got.InitiatorsAllow == nil {
			t.Fatalf("%s: %v", name, ds)
		}
		for i, tg := range cfg.Targets {
			g := got.Targets[i]
			if g.Name != tg.Name || g.TID != tg.TID || g.LUNs[0].IOMode != tg.LUNs[0].IOMode || len(g.Auth.Incoming) > len(tg.Auth.Incoming) {
				t.Errorf("%s: target %d: %+v vs %+v", name, i, g, tg)
			}
		}
	}
	for _, name := range []string{"netbsd-full", "netbsd-user", "netbsd-malformed"} {
		cfg, _, _ := loadFixture(t, name)
		if byHand, err := migrationRoundTrip(cfg, t.TempDir()); err != nil || byHand {
			t.Errorf("%s: by hand %v: %v", name, byHand, err)
		}
	}
}

func TestMigratePathsALunLineCannotHold(t *testing.T) {
	// Each path is written in a targets file (blanks escaped) and must
	// either come back unchanged from the migrated ietd.conf or be noted
	// as "edit by hand".
	cases := []struct {
		path   string
		byHand bool
		// storeByHand: by hand inside Store= only
		storeByHand bool
	}{
		{"/tmp/plain", false, false},
		{"/tmp/my disk", false, false},
		{"/tmp/a#b", false, false},
		{"/tmp/a=b", false, false},
		{"/tmp/disk #1", true, false}, // " #" starts a comment on a Lun line
		{"/tmp/disk\t#1", true, false},
		{"/tmp/a,b", true, false},
		{"/tmp/trailing ", true, false},
		{"/tmp/a+b@c(1);2", false, false}, // quoted inside Store=
		{`/tmp/a"b`, false, false},
		{`/tmp/a"b+c`, false, true}, // a quote and a special: Store= cannot quote it
		{`"/tmp/q`, false, true},    // a leading quote would open a quoted path
	}
	dir := t.TempDir()
	for _, c := range cases {
		esc := strings.NewReplacer(" ", "\\ ", "\t", "\\\t").Replace(c.path)
		for i, src := range []string{
			"extent0 " + esc + " 0 1M\ntarget0 rw extent0 0/0\n",
			// inside Store= (a RAID1 of two extents)
			"extent0 " + esc + " 0 1M\nextent1 /tmp/other 0 1M\ndevice0 RAID1 extent0 extent1\ntarget0 rw device0 0/0\n",
		} {
			wantByHand := c.byHand || (i == 1 && c.storeByHand)
			cfg, ds, err := LoadBytes("targets", []byte(src), LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull})
			if err != nil || cfg.Targets[0].LUNs[0].Store == nil {
				t.Fatalf("%q: %v %v", src, err, ds)
			}
			byHand, err := migrationRoundTrip(cfg, dir)
			if err != nil {
				t.Errorf("%q: %v", c.path, err)
			}
			if byHand != wantByHand {
				t.Errorf("%q in %q: edit by hand = %v, want %v", c.path, src, byHand, wantByHand)
			}
			if !byHand {
				continue
			}
			// The LUN is left commented out, never written as a Lun
			// line that reads back as another file.
			conf, _, _ := MigrateNetBSD(cfg)
			back, _, _ := LoadBytes("m", []byte(conf), LoadOptions{Dialect: config.DialectIET, ACLDir: dir})
			if !strings.Contains(conf, "\t# Lun 0 ") || back == nil || len(back.Targets) != 1 || len(back.Targets[0].LUNs) != 0 {
				t.Errorf("%q: not left out:\n%s", c.path, conf)
			}
			// Uncommented by hand, it is still the same disk.
			if !strings.Contains(conf, ",Identity=netbsd  (edit by hand") {
				t.Errorf("%q: the held line lacks Identity=netbsd:\n%s", c.path, conf)
			}
		}
	}
}
