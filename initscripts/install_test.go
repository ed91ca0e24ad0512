package initscripts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func runMake(t *testing.T, args ...string) string {
	t.Helper()
	mk := needTool(t, "make")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mk, append([]string{"--no-print-directory", "-C", "."}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func checkMode(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Errorf("not installed: %v", err)
		return
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
	}
}

func TestMakeInstallAll(t *testing.T) {
	dest := t.TempDir()
	bins := t.TempDir()
	// A stand-in "built" binary: only ietd exists, the others are
	// reported as not built.
	writeFile(t, filepath.Join(bins, "ietd"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(bins, "ietd"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr", "INIT=all", "BINSRC="+bins)
	if !strings.Contains(out, "ietadm not built") {
		t.Errorf("missing binaries not reported:\n%s", out)
	}
	want := map[string]os.FileMode{
		"usr/sbin/ietd":                               0o755,
		"usr/share/man/man8/ietd.8":                   0o644,
		"usr/share/man/man8/ietadm.8":                 0o644,
		"usr/share/man/man8/iscsi-target.8":           0o644,
		"usr/share/man/man8/ietd-migrate.8":           0o644,
		"usr/share/man/man5/ietd.conf.5":              0o644,
		"usr/share/man/man5/targets.5":                0o644,
		"usr/lib/systemd/system/ietd.service":         0o644,
		"usr/lib/systemd/system/ietd.socket":          0o644,
		"usr/lib/systemd/system/netbsd-iscsi.service": 0o644,
		"etc/sysconfig/iscsi-target":                  0o644,
		"etc/init.d/iscsitarget":                      0o755,
		"etc/default/iscsitarget":                     0o644,
		"etc/rc.d/iscsi_target":                       0o555,
		"lib/svc/manifest/network/iscsi-target.xml":   0o444,
		"lib/svc/method/svc-iscsi-target":             0o555,
	}
	for rel, mode := range want {
		checkMode(t, filepath.Join(dest, rel), mode)
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/sbin/ietadm")); !os.IsNotExist(err) {
		t.Errorf("ietadm installed although it was not built")
	}
	// Installed scripts are byte-identical to the sources for PREFIX=/usr.
	for rel, src := range map[string]string{"etc/init.d/iscsitarget": "debian/iscsitarget", "etc/rc.d/iscsi_target": "netbsd/iscsi_target"} {
		a, _ := os.ReadFile(filepath.Join(dest, rel))
		b, _ := os.ReadFile(src)
		if string(a) != string(b) {
			t.Errorf("%s differs from %s", rel, src)
		}
	}

	// A second install keeps an edited configuration file.
	def := filepath.Join(dest, "etc/default/iscsitarget")
	writeFile(t, def, "ISCSITARGET_ENABLE=true\n")
	out = runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr", "INIT=debian", "BINSRC="+bins)
	if data, _ := os.ReadFile(def); string(data) != "ISCSITARGET_ENABLE=true\n" {
		t.Errorf("make install overwrote %s:\n%s", def, out)
	}
}

func TestMakeInstallPrefix(t *testing.T) {
	dest := t.TempDir()
	runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr/local", "INIT=systemd redhat netbsd solaris", "BINSRC="+t.TempDir())
	for _, rel := range []string{"usr/local/lib/systemd/system/ietd.service", "usr/local/lib/systemd/system/netbsd-iscsi.service", "etc/rc.d/iscsi_target", "lib/svc/manifest/network/iscsi-target.xml"} {
		data, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "/usr/sbin/") {
			t.Errorf("%s still names /usr/sbin with PREFIX=/usr/local", rel)
		}
		if !strings.Contains(string(data), "/usr/local/sbin/") {
			t.Errorf("%s does not name /usr/local/sbin", rel)
		}
	}
	if _, err := os.Stat(filepath.Join(dest, "etc/init.d/iscsitarget")); !os.IsNotExist(err) {
		t.Error("debian script installed although INIT did not ask for it")
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/local/share/man/man8/ietd.8")); err != nil {
		t.Errorf("man page not under PREFIX: %v", err)
	}
}

// TestMakeInstallServiceNames: on Red Hat "iscsi-target" is IET's ietd.
// With systemd it is ietd.service under an alias (systemd prefers a unit
// over a SysV script of the same name, so the NetBSD daemon's unit must not
// be called iscsi-target.service and the SysV script is left out); without
// systemd it is the SysV script.
func TestMakeInstallServiceNames(t *testing.T) {
	dest := t.TempDir()
	out := runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr", "INIT=systemd redhat", "BINSRC="+t.TempDir())
	units := filepath.Join(dest, "usr/lib/systemd/system")
	for _, alias := range []string{"iscsi-target.service", "iscsitarget.service"} {
		target, err := os.Readlink(filepath.Join(units, alias))
		if err != nil || target != "ietd.service" {
			t.Errorf("%s: link to %q (%v), want ietd.service", alias, target, err)
		}
	}
	nb, err := os.ReadFile(filepath.Join(units, "netbsd-iscsi.service"))
	if err != nil || !strings.Contains(string(nb), "ExecStart=/usr/sbin/iscsi-target ") {
		t.Errorf("netbsd-iscsi.service must run iscsi-target: %v", err)
	}
	ietd, _ := os.ReadFile(filepath.Join(units, "ietd.service"))
	if !strings.Contains(string(ietd), "ExecStart=/usr/sbin/ietd ") || !strings.Contains(string(ietd), "Alias=iscsitarget.service iscsi-target.service") {
		t.Errorf("ietd.service must run ietd and name its aliases:\n%s", ietd)
	}
	// systemd itself reads the links as aliases of ietd.service.
	if sc, err := exec.LookPath("systemctl"); err == nil {
		list, err := exec.Command(sc, "--root="+dest, "list-unit-files").CombinedOutput()
		if err != nil {
			t.Fatalf("systemctl list-unit-files: %v\n%s", err, list)
		}
		for _, re := range []string{`(?m)^iscsi-target\.service\s+alias`, `(?m)^iscsitarget\.service\s+alias`, `(?m)^netbsd-iscsi\.service\s+disabled`} {
			if !regexp.MustCompile(re).Match(list) {
				t.Errorf("systemctl list-unit-files lacks %s:\n%s", re, list)
			}
		}
	}
	if _, err := os.Lstat(filepath.Join(dest, "etc/rc.d/init.d/iscsi-target")); !os.IsNotExist(err) {
		t.Errorf("SysV iscsi-target installed next to the systemd units (%v):\n%s", err, out)
	}
	checkMode(t, filepath.Join(dest, "etc/sysconfig/iscsi-target"), 0o644)

	dest = t.TempDir()
	runMake(t, "install", "DESTDIR="+dest, "PREFIX=/usr", "INIT=redhat", "BINSRC="+t.TempDir())
	checkMode(t, filepath.Join(dest, "etc/rc.d/init.d/iscsi-target"), 0o755)
	script, _ := os.ReadFile(filepath.Join(dest, "etc/rc.d/init.d/iscsi-target"))
	if !strings.Contains(string(script), "/usr/sbin/ietd") {
		t.Error("the Red Hat iscsi-target script must run ietd")
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/lib/systemd/system")); !os.IsNotExist(err) {
		t.Error("INIT=redhat installed systemd units")
	}
}
