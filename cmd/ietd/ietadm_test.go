package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dt "github.com/ietgo/ietd/cmd/internal/daemontest"
)

// ietadmRun is one ietadm run: stdout and stderr apart (IET prints
// errors and usage hints on stderr only).
type ietadmRun struct {
	stdout, stderr string
	code           int
}

// startForIetadm starts ietd on a config with target iqnA (tid 1, a
// nullio LUN 0) and returns a runner of ietadm against it.
func startForIetadm(t *testing.T) (*dt.Proc, string, func(args ...string) ietadmRun) {
	t.Helper()
	ietd, ietadm := dt.Bin(t, "ietd"), dt.Bin(t, "ietadm")
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "Target "+iqnA+"\n\tLun 0 Type=nullio,Blocks=2048\n")
	port := dt.FreePort(t)
	d := dt.Start(t, port, ietd, append([]string{"-f"}, daemonArgs(dir, conf, port)...)...)
	sock := filepath.Join(dir, "ietadm.sock")
	return d, dir, func(args ...string) ietadmRun {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, ietadm, append([]string{"--socket", sock}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("ietadm %v: %v", args, err)
			}
			code = ee.ExitCode()
		}
		return ietadmRun{out.String(), errb.String(), code}
	}
}

// TestIetadmUpdateWarnsOfWhatIsUsed: values the engine forces or clamps
// are stored as used, ietadm says so on stderr (exit 0) and the daemon
// logs it.
func TestIetadmUpdateWarnsOfWhatIsUsed(t *testing.T) {
	d, _, adm := startForIetadm(t)
	r := adm("--op", "update", "--tid=1", "--params", "DataPDUInOrder=No,OFMarker=Yes,ErrorRecoveryLevel=2,Wthreads=999,DefaultTime2Wait=99999")
	want := "ietadm: warning: DataPDUInOrder No: out-of-order Data PDUs are not implemented; Yes is offered (IET forced it too)\n" +
		"ietadm: warning: OFMarker Yes: markers are not implemented; No is offered (IET forced it too)\n" +
		"ietadm: warning: ErrorRecoveryLevel 2: only level 0 is implemented; 0 is offered (IET forced 0 too)\n" +
		"ietadm: warning: Wthreads 999 out of range (1..128): using 128\n" +
		"ietadm: warning: DefaultTime2Wait 99999 out of range (0..3600): using 3600\n"
	if r.code != 0 || r.stdout != "" || r.stderr != want {
		t.Fatalf("update: exit %d\nstdout %q\nstderr:\n%s\nwant:\n%s", r.code, r.stdout, r.stderr, want)
	}
	r = adm("--op", "show", "--tid=1", "--sid=0")
	if msg := dt.Contains(r.stdout, "DataPDUInOrder=Yes\n", "OFMarker=No\n", "ErrorRecoveryLevel=0\n", "DefaultTime2Wait=3600\n"); msg != "" {
		t.Fatal(msg)
	}
	dt.Eventually(t, 5*time.Second, func() string {
		return dt.Contains(d.Stderr.String(), `level=warning msg="ietadm: Wthreads 999 out of range (1..128): using 128"`,
			`level=warning msg="ietadm: OFMarker Yes: markers are not implemented; No is offered (IET forced it too)"`)
	})
	if strings.Contains(adm("--op", "update", "--tid=1", "--params", "Wthreads=16").stderr, "warning") {
		t.Fatal("a value in range warned")
	}
}

// TestIetadmUsageErrors: as IET's usage(-1), a usage error prints one
// hint on stderr (not the help on stdout) and exits 255; --op is checked
// before extra arguments (234).
func TestIetadmUsageErrors(t *testing.T) {
	_, _, adm := startForIetadm(t)
	const try = "Try `ietadm --help' for more information.\n"
	for _, c := range []struct {
		args   []string
		stderr string
		code   int
	}{
		{[]string{"--op", "show", "extra"}, "unrecognized: extra\n" + try, 255},
		{[]string{"--bogusflag"}, "ietadm: flag provided but not defined: -bogusflag\n" + try, 255},
		{[]string{"extra"}, "You must specify the operation type\n", 234},
		{[]string{"--op", "show", "--tid=4294967296"}, "--tid: 4294967296 is out of range (0..4294967295)\n", 255},
		{[]string{"--op", "show", "--tid=1", "--sid=18446744073709551616"}, "--sid: 18446744073709551616 is out of range (0..18446744073709551615)\n", 255},
	} {
		r := adm(c.args...)
		if r.code != c.code || r.stdout != "" || r.stderr != c.stderr {
			t.Errorf("ietadm %v: exit %d\nstdout %q\nstderr %q\nwant exit %d, stderr %q", c.args, r.code, r.stdout, r.stderr, c.code, c.stderr)
		}
	}
	if r := adm("--help"); r.code != 0 || !strings.Contains(r.stdout, "--op") {
		t.Errorf("--help: exit %d\n%s", r.code, r.stdout)
	}
}

// TestIetadmMessages: what IET answers "Unsupported." to prints only
// that (234); an error prints its errno's text once; a cid beyond 16 bits
// on a session that does not exist is ENOENT, as any cid (IET looks the
// session up first).
func TestIetadmMessages(t *testing.T) {
	_, _, adm := startForIetadm(t)
	for _, args := range [][]string{
		{"--op", "update", "--tid=1", "--lun=0", "--params", "Type=fileio"},
		{"--op", "new", "--tid=1", "--sid=1"},
		{"--op", "update", "--tid=1", "--sid=0", "--params", "Wthreads=4"},
		{"--op", "show", "--tid=1", "--sid=1", "--cid=0"},
		{"--op", "update", "--tid=1", "--user", "--params", "IncomingUser=a,Password=secretsecret12"},
	} {
		if r := adm(args...); r.code != 234 || r.stdout != "" || r.stderr != "Unsupported.\n" {
			t.Errorf("ietadm %v: exit %d, stderr %q; want 234 and \"Unsupported.\\n\"", args, r.code, r.stderr)
		}
	}
	if r := adm("--op", "show", "--tid=10"); r.code != 254 || r.stderr != "No such file or directory.\nietadm: no target with tid 10\n" {
		t.Errorf("unknown tid: exit %d, stderr %q", r.code, r.stderr)
	}
	r := adm("--op", "new", "--tid=1", "--lun=2", "--params", "Path=/nonexistent")
	if r.code != 254 || !strings.Contains(r.stderr, "lun 2: backing: open /nonexistent") || strings.Count(r.stderr, "backing:") != 1 {
		t.Errorf("missing path: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, cid := range []string{"--cid=0", "--cid=65536"} {
		if r := adm("--op", "delete", "--tid=1", "--sid=5", cid); r.code != 254 {
			t.Errorf("%s on a missing session: exit %d, want 254 (ENOENT)\n%s", cid, r.code, r.stderr)
		}
	}
}

// TestIetadmBlockioOnFileWarns: a blockio LUN on a regular file is
// served, as at start, and ietadm says what that means (exit 0).
func TestIetadmBlockioOnFileWarns(t *testing.T) {
	_, dir, adm := startForIetadm(t)
	img := filepath.Join(dir, "d.img")
	sparse(t, img, 1<<20)
	r := adm("--op", "new", "--tid=1", "--lun=1", "--params", "Path="+img+",Type=blockio")
	want := "ietadm: warning: LUN 1: Type=blockio on " + img + ", a regular file: served, with direct I/O where its file system allows it (IET's blockio took block devices only); Type=fileio serves a file through the page cache\n"
	if r.code != 0 || r.stderr != want {
		t.Fatalf("blockio on a file: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if out := adm("--op", "show", "--volumes").stdout; !strings.Contains(out, "lun:1 state:0 iotype:blockio") {
		t.Fatalf("blockio LUN not served:\n%s", out)
	}
	if r := adm("--op", "new", "--tid=1", "--lun=2", "--params", "Path="+img+",Type=fileio"); r.code != 0 || r.stderr != "" {
		t.Fatalf("fileio on a file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestIetadmParamsChecks: an item without '=' is warned (exit 0, as IET
// skipped it), a digest list after HeaderDigest= is kept whole, and
// --params too long for a request is refused by ietadm itself naming
// --params (234), with nothing changed.
func TestIetadmParamsChecks(t *testing.T) {
	_, _, adm := startForIetadm(t)
	r := adm("--op", "update", "--tid=1", "--params", "HeaderDigest=None,CRC32C,QueuedCommands")
	if r.code != 0 || r.stderr != "ietadm: warning: --params item \"QueuedCommands\" is not key=value: ignored (IET ignored it too)\n" {
		t.Fatalf("update: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := adm("--op", "show", "--tid=1", "--sid=0").stdout; !strings.Contains(out, "HeaderDigest=None,CRC32C\n") {
		t.Fatalf("digest list not kept:\n%s", out)
	}
	long := "Name=iqn.2001-04.com.example:" + strings.Repeat("x", 100<<10)
	r = adm("--op", "new", "--tid=0", "--params", long)
	if r.code != 234 || !strings.HasPrefix(r.stderr, "Invalid argument.\nietadm: --params: ") {
		t.Fatalf("long --params: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := adm("--op", "show", "--volumes").stdout; strings.Count(out, "tid:") != 1 {
		t.Fatalf("a refused request changed the targets:\n%s", out)
	}
}
