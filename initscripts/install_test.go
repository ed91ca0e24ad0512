package initscripts

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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
		"usr/lib/systemd/system/iscsi-target.service": 0o644,
		"etc/rc.d/init.d/iscsi-target":                0o755,
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
	for _, rel := range []string{"usr/local/lib/systemd/system/ietd.service", "etc/rc.d/init.d/iscsi-target", "etc/rc.d/iscsi_target", "lib/svc/manifest/network/iscsi-target.xml"} {
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
