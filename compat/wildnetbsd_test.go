package compat

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

// The wild-netbsd-* fixtures are NetBSD targets and auths files met in
// the wild (the distribution's samples, FAQ and HOWTO, a boot test suite,
// admins' notes and scripts), reduced and renamed. TestGolden checks
// their diagnostics and renderings; TestWildNetBSD checks what each one
// means, against expect.golden (written by hand from targets(5) and the
// NetBSD sources, not generated), and that ietd-migrate's conversion
// loads cleanly and means the same.

// wildSummary is one line per target: the name, the mode, the netmask
// and the storage tree, then the CHAP users.
func wildSummary(cfg *config.Config) string {
	var b strings.Builder
	for _, t := range cfg.Targets {
		var nets []string
		for _, n := range t.AllowedNets {
			nets = append(nets, n.CIDR)
		}
		if len(nets) == 0 {
			nets = []string{"all"}
		}
		for _, l := range t.LUNs {
			fmt.Fprintf(&b, "%s lun%d %s %s %s\n", t.Name, l.Number, l.IOMode, strings.Join(nets, ","), wildStore(l.Store))
		}
		if len(t.LUNs) == 0 {
			fmt.Fprintf(&b, "%s no-lun %s\n", t.Name, strings.Join(nets, ","))
		}
	}
	if len(cfg.Targets) > 0 {
		var users []string
		for _, a := range cfg.Targets[0].Auth.Incoming {
			users = append(users, fmt.Sprintf("%q", a.User))
		}
		if len(users) > 0 {
			fmt.Fprintf(&b, "chap %s\n", strings.Join(users, " "))
		}
	}
	return b.String()
}

func wildStore(s *config.Store) string {
	if s == nil {
		return "none"
	}
	switch s.Kind {
	case config.StoreConcat, config.StoreMirror:
		kind := "raid0"
		if s.Kind == config.StoreMirror {
			kind = "raid1"
		}
		var ms []string
		for _, m := range s.Members {
			ms = append(ms, wildStore(m))
		}
		return kind + "(" + strings.Join(ms, " ") + ")"
	}
	size := "end"
	if s.Size > 0 {
		size = fmt.Sprint(s.Size)
	}
	create := ""
	if s.Create {
		create = "+create"
	}
	return fmt.Sprintf("%s@%d:%s%s", s.Path, s.Offset, size, create)
}

func TestWildNetBSD(t *testing.T) {
	t.Chdir(fixtures)
	dirs, err := filepath.Glob("wild-netbsd-*")
	if err != nil || len(dirs) < 10 {
		t.Fatalf("wild-netbsd fixtures: %v %v", dirs, err)
	}
	for _, dir := range dirs {
		t.Run(dir, func(t *testing.T) {
			cfg, ds, err := loadFixture(t, dir)
			if cfg == nil {
				t.Fatalf("no model: %v", err)
			}
			if cfg.Dialect != config.DialectNetBSD {
				t.Fatalf("dialect %s", cfg.Dialect)
			}
			want, rerr := os.ReadFile(filepath.Join(dir, "expect.golden"))
			if rerr != nil {
				t.Fatal(rerr)
			}
			// Lines starting with "!" are messages expected among the
			// diagnostics (a part of one is enough).
			var wantModel strings.Builder
			for _, line := range strings.SplitAfter(string(want), "\n") {
				if msg, ok := strings.CutPrefix(line, "! "); ok {
					msg = strings.TrimSuffix(msg, "\n")
					if !strings.Contains(diagText(ds), msg) {
						t.Errorf("no diagnostic says %q:\n%s", msg, diagText(ds))
					}
					continue
				}
				wantModel.WriteString(line)
			}
			if got := wildSummary(cfg); got != wantModel.String() {
				t.Errorf("model:\n%s\nwant:\n%s", got, wantModel.String())
			}
			malformed := strings.Contains(dir, "malformed")
			if malformed != (err != nil) {
				t.Fatalf("load error %v (fixture malformed: %v)\n%s", err, malformed, diagText(ds))
			}
			if malformed {
				return
			}
			// ietd-migrate's output loads with no error and no warning
			// of its own, and serves the same targets.
			conf, allow, _ := MigrateNetBSD(cfg)
			tmp := t.TempDir()
			if err := os.WriteFile(filepath.Join(tmp, "ietd.conf"), []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tmp, InitiatorsAllow), []byte(allow), 0o600); err != nil {
				t.Fatal(err)
			}
			back, bds, err := Load(filepath.Join(tmp, "ietd.conf"), LoadOptions{ACLDir: tmp})
			if err != nil || back == nil {
				t.Fatalf("migration does not load: %v\n%s\n%s", err, diagText(bds), conf)
			}
			for _, d := range bds {
				// The only warnings expected are about the data itself
				// (short CHAP secrets), not about what migrate wrote.
				if !strings.Contains(d.Msg, "CHAP secret of") {
					t.Errorf("migrated config warns: %s\n%s\n%s", d, conf, allow)
				}
			}
			if byHand, err := migrationRoundTrip(cfg, tmp); err != nil || byHand {
				t.Errorf("round trip: by hand %v: %v", byHand, err)
			}
			// The netmasks became initiators.allow rules of the same
			// targets: every NetBSD target with a netmask other than
			// 0/0 is named there.
			for _, tg := range cfg.Targets {
				restricted := false
				for _, n := range tg.AllowedNets {
					restricted = restricted || n.CIDR != "0.0.0.0/0"
				}
				if restricted && !strings.Contains(allow, tg.Name+" ") {
					t.Errorf("target %s restricted by %v is not in initiators.allow:\n%s", tg.Name, tg.AllowedNets, allow)
				}
			}
		})
	}
}
