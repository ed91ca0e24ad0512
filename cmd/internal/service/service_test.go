package service

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ietgo/ietd/compat"
	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
	"golang.org/x/sys/unix"
)

func TestParseLUNMessages(t *testing.T) {
	l, err := ParseLUN(5, "Type=nullio,Blocks=2048")
	if err != nil || l.Number != 5 || l.Blocks != 2048 || l.Pos.Line != 0 {
		t.Fatalf("%+v %v", l, err)
	}
	// Only the causes, not the "left out" line naming the internal target.
	_, err = ParseLUN(5, "Path=/x,Colour=red")
	if err == nil || err.Error() != `Lun 5: unknown parameter "Colour" (IET refuses the LUN)` {
		t.Fatalf("error %q", err)
	}
}

func TestLoadersAndCheck(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ietd.conf")
	if err := os.WriteFile(conf, []byte("Target iqn.x:a\n\tLun 0 Type=nullio\n\tLun 1 Path=/y,Colour=red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load, start := Loaders(conf, nil, compat.LoadOptions{ACLDir: dir}, nil)
	if _, _, err := load(); err == nil {
		t.Fatal("strict load accepted an error")
	}
	cfg, ds, err := start()
	if err != nil || len(cfg.Targets) != 1 || len(cfg.Targets[0].LUNs) != 1 || !ds.HasErrors() {
		t.Fatalf("start: %v %+v %v", err, cfg, ds)
	}
	var out bytes.Buffer
	if err := Check(&out, start); err == nil {
		t.Fatal("Check passed a file with errors")
	}
	want := conf + ":3:2: error: Lun 1 of target iqn.x:a is left out (the errors on its line)\n" +
		conf + ":3:16: error: Lun 1: unknown parameter \"Colour\" (IET refuses the LUN)\n" +
		conf + ": 1 error(s): a start serves the rest (iet, 1 target(s), 1 LUN(s)) without what is left out above; a reload (SIGHUP) with this file is refused\n"
	if out.String() != want {
		t.Fatalf("Check printed\n%s\nwant\n%s", out.String(), want)
	}

	// No file among the candidates: an empty IET config, as IET.
	load, start = Loaders("", []string{filepath.Join(dir, "none.conf")}, compat.LoadOptions{ACLDir: dir}, nil)
	for _, f := range []LoadFunc{load, start} {
		if cfg, ds, err := f(); err != nil || len(cfg.Targets) != 0 || len(ds) != 0 {
			t.Fatalf("no file: %v %v", err, ds)
		}
	}
	out.Reset()
	if err := Check(&out, start); err != nil || !strings.Contains(out.String(), ": ok (iet, 0 target(s), 0 LUN(s))") {
		t.Fatalf("Check without a file: %v %q", err, out.String())
	}
}

// --check names the LUNs whose files do not exist: a start leaves them out.
func TestCheckNamesMissingFiles(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.img")
	conf := filepath.Join(dir, "ietd.conf")
	src := "Target iqn.x:a\n\tLun 0 Path=" + missing + ",Type=fileio\n\tLun 1 Path=" + img + ",Type=fileio\n"
	if err := os.WriteFile(conf, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(conf, nil, compat.LoadOptions{ACLDir: dir}, nil)
	var out bytes.Buffer
	if err := Check(&out, start); err != nil {
		t.Fatalf("Check: %v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, conf+":2:") || !strings.Contains(got, "LUN 0 of target iqn.x:a") ||
		!strings.Contains(got, "a start leaves this LUN out") || strings.Contains(got, "LUN 1 of") {
		t.Fatalf("Check printed\n%s", got)
	}
}

// --check also names files a start cannot use although they exist or will
// be created: an empty file (less than one block), a NetBSD extent of
// length "size" on a missing file, one to create in a missing directory.
func TestCheckNamesUnusableFiles(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.img")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.img")
	if err := os.WriteFile(good, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "ietd.conf")
	if err := os.WriteFile(conf, []byte("Target iqn.x:a\n\tLun 0 Path="+empty+",Type=fileio\n\tLun 1 Path="+good+",Type=fileio\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(conf, nil, compat.LoadOptions{ACLDir: dir}, nil)
	var out bytes.Buffer
	Check(&out, start)
	if got := out.String(); !strings.Contains(got, "LUN 0 of target iqn.x:a: "+empty+" holds 0 byte(s)") || strings.Contains(got, "LUN 1 of") {
		t.Fatalf("IET check printed\n%s", got)
	}
	targets := filepath.Join(dir, "targets")
	nb := "extent0 " + filepath.Join(dir, "nonexist") + " 0 size\nextent1 /nonexistent-dir/x 0 1MB\nextent2 " + filepath.Join(dir, "new") + " 0 1MB\n" +
		"target0 rw extent0 0/0\ntarget1 rw extent1 0/0\ntarget2 rw extent2 0/0\n"
	if err := os.WriteFile(targets, []byte(nb), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start = Loaders(targets, nil, compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull}, nil)
	out.Reset()
	Check(&out, start)
	got := out.String()
	if !strings.Contains(got, "target0: "+filepath.Join(dir, "nonexist")+" does not exist, and its length is the file's own") ||
		!strings.Contains(got, "target1: /nonexistent-dir/x cannot be created") ||
		!strings.Contains(got, "target2: "+filepath.Join(dir, "new")+" does not exist: a start creates it (1048576 bytes, sparse)\n") {
		t.Fatalf("NetBSD check printed\n%s", got)
	}
}

// A NetBSD extent whose file is missing is created by a start (as NetBSD
// did, with O_CREAT), sparse, up to the extent's end: --check says so, the
// more loudly under /dev, where the file would stand in for a disk. A
// read-only target's file is never created: left out.
func TestCheckSaysWhatAStartCreates(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "disk")
	targets := filepath.Join(dir, "targets")
	nb := "extent0 " + sub + " 512 20971520\nextent1 /dev/ietd-test-no-such-disk 0 20971520\nextent2 " + filepath.Join(dir, "ro") + " 0 1MB\n" +
		"target0 rw extent0 0/0\ntarget1 rw extent1 0/0\ntarget2 ro extent2 0/0\n"
	if err := os.WriteFile(targets, []byte(nb), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(targets, nil, compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull}, nil)
	var out bytes.Buffer
	if err := Check(&out, start); err == nil {
		t.Fatalf("Check passed a file whose read-only extent is missing\n%s", out.String())
	}
	const base = "iqn.1994-04.org.netbsd.iscsi-target:"
	want := targets + ":1:1: warning: LUN 0 of target " + base + "target0: " + sub + " does not exist: a start creates it (20972032 bytes, sparse)\n" +
		targets + ":2:1: warning: LUN 0 of target " + base + "target1: /dev/ietd-test-no-such-disk does not exist: a start creates a regular file of 20971520 bytes (sparse) there, not a disk; is the disk missing or its name wrong? (on Linux /dev is in memory: what is written to the file is lost at reboot)\n" +
		targets + ":3:1: error: LUN 0 of target " + base + "target2: stat " + filepath.Join(dir, "ro") + ": no such file or directory: a start leaves this LUN out (NetBSD's iscsi-target refused to start)\n" +
		targets + ": 1 error(s): a start serves the rest (netbsd, 3 target(s), 2 LUN(s)) without the LUNs left out above\n"
	if out.String() != want {
		t.Fatalf("Check printed\n%s\nwant\n%s", out.String(), want)
	}
	// What a start does: the file is there, sparse, of that length.
	cfg, _, err := start()
	if err != nil {
		t.Fatal(err)
	}
	st, err := backing.Open(cfg.Targets[0].LUNs[0], backing.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if fi, err := os.Stat(sub); err != nil || fi.Size() != 20972032 {
		t.Fatalf("created %v %v", fi, err)
	}
}

// ietadm LUN parameters with a '#' at the start of a word are refused: the
// ietd.conf reader would drop the rest of the line as a comment.
func TestParseLUNRefusesCommentSign(t *testing.T) {
	for _, p := range []string{"Path=/tmp/x.img #x,Type=fileio", "Path=/tmp/x.img,Type=fileio,\t#IOMode=ro", "#Path=/tmp/x"} {
		if _, err := ParseLUN(1, p); err == nil || !strings.Contains(err.Error(), "comment") {
			t.Errorf("%q: %v", p, err)
		}
	}
	if l, err := ParseLUN(1, "Path=/tmp/a#b.img,Type=fileio"); err != nil || l.Store.Path != "/tmp/a#b.img" {
		t.Errorf("'#' inside a word: %+v %v", l, err)
	}
}

// --check and a start agree on what a LUN's file can be: what --check
// says a start leaves out, backing.Open refuses, and the rest it opens.
// A directory, a character device (/dev/null) and a named pipe are no
// stores (IET: EISDIR for fileio, "not a block device" for blockio).
func TestCheckAgreesWithOpen(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		params  string
		leftOut string // what --check says, "" when a start serves the LUN
	}{
		{"Path=" + img + ",Type=fileio", ""},
		{"Path=" + img + ",Type=fileio,IOMode=ro", ""},
		{"Path=" + img + ",Type=blockio", ""}, // served, with a warning (below)
		{"Path=" + dir + "/,Type=fileio", dir + "/ is a directory"},
		{"Path=" + dir + "/,Type=blockio", dir + "/ is a directory"},
		{"Path=" + dir + ",Type=fileio,IOMode=ro", dir + " is a directory"},
		{"Path=/dev/null,Type=fileio", "/dev/null is not a regular file or a block device (a character device)"},
		{"Path=" + fifo + ",Type=fileio", fifo + " is not a regular file or a block device (a named pipe)"},
		{"Path=" + fifo + ",Type=fileio,IOMode=ro", fifo + " is not a regular file or a block device (a named pipe)"}, // an open for reading blocked
		{"Path=" + filepath.Join(dir, "none") + ",Type=fileio", "stat " + filepath.Join(dir, "none") + ": no such file or directory"},
		{"Path=" + filepath.Join(dir, "ro-new") + ",Size=1M,Create=Yes,IOMode=ro", "stat " + filepath.Join(dir, "ro-new") + ": no such file or directory"},
	}
	for _, c := range cases {
		l, err := ParseLUN(0, c.params)
		if err != nil {
			t.Fatalf("%s: %v", c.params, err)
		}
		var out []string
		for _, mf := range lunFiles(l) {
			if mf.leftOut {
				out = append(out, mf.msg)
			}
		}
		if got := strings.Join(out, "; "); got != c.leftOut {
			t.Errorf("%s: --check says %q, want %q", c.params, got, c.leftOut)
		}
		st, err := backing.Open(l, backing.OpenOptions{})
		if err == nil {
			st.Close()
		}
		if (err != nil) != (c.leftOut != "") {
			t.Errorf("%s: backing.Open: %v, but --check says %q", c.params, err, c.leftOut)
		}
	}
	// The whole line, as --check prints it.
	conf := filepath.Join(dir, "ietd.conf")
	if err := os.WriteFile(conf, []byte("Target iqn.x:a\n  Lun 0 Path="+dir+"/,Type=blockio \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(conf, nil, compat.LoadOptions{ACLDir: dir}, nil)
	var b bytes.Buffer
	if err := Check(&b, start); err != nil {
		t.Fatal(err)
	}
	want := conf + ":2:14: warning: LUN 0 of target iqn.x:a: " + dir + "/ is a directory: a start leaves this LUN out (as IET)\n" +
		conf + ": ok (iet, 1 target(s), 0 LUN(s))\n"
	if b.String() != want {
		t.Fatalf("Check printed\n%s\nwant\n%s", b.String(), want)
	}
}

// Type=blockio on a regular file: IET refused it, a start serves it (with
// a warning in the log), and --check says both without leaving it out.
func TestCheckBlockioOnRegularFile(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.bin")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "ietd.conf")
	if err := os.WriteFile(conf, []byte("Target iqn.x:a\n\tLun 0 Path="+img+",Type=blockio\n\tLun 1 Path="+img+",Type=fileio\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(conf, nil, compat.LoadOptions{ACLDir: dir}, nil)
	var out bytes.Buffer
	if err := Check(&out, start); err != nil {
		t.Fatal(err)
	}
	want := conf + ":2:13: warning: LUN 0 of target iqn.x:a: " + img + " is a regular file: IET refused Type=blockio on it (block device only); served here with O_DIRECT on the file (through the page cache where the file system refuses O_DIRECT)\n" +
		conf + ": ok (iet, 1 target(s), 2 LUN(s))\n"
	if out.String() != want {
		t.Fatalf("Check printed\n%s\nwant\n%s", out.String(), want)
	}
}

// A NetBSD file that leaves no target: --check prints the file's error
// once, after the line errors, and nothing repeats it.
func TestCheckNoTargetLeftOnce(t *testing.T) {
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("# targets\nextent0 "+dir+"/x 0 1MB\ntarget0 rw extent9 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(targets, nil, compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull}, nil)
	var out bytes.Buffer
	if err := Check(&out, start); err == nil {
		t.Fatal("Check passed a file with no target")
	}
	want := targets + ":3:1: error: target target0 is left out (the errors on its line)\n" +
		targets + ":3:12: error: no device or extent found for \"extent9\"\n" +
		targets + ": error: no target left to serve: every target line has errors (NetBSD's iscsi-target refuses to start too)\n"
	if out.String() != want {
		t.Fatalf("Check printed\n%s\nwant\n%s", out.String(), want)
	}
}

// TestCheckNetBSDLUNsAStartDrops: in a NetBSD file every LUN a start
// leaves out is an error of --check (NetBSD refused to start: a missing
// read-only file is fatal, a failed storage open exits 1), found with the
// start's own open and checks: an extent under one block, a read-only
// extent whose offset is past the end of its file. A read-only extent
// that runs past the end of its file is served with a warning (reads
// there return zeros; NetBSD failed them); a read-write file shorter than
// its extent is extended by the start, and --check says so.
func TestCheckNetBSDLUNsAStartDrops(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, make([]byte, 100<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, make([]byte, 100<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	targets := filepath.Join(dir, "targets")
	nb := "extent0 " + filepath.Join(dir, "tiny") + " 0 100\n" + // created, 100 bytes
		"extent1 " + small + " 1048576 1MB\n" + // offset past the end
		"extent2 " + small + " 0 1MB\n" + // runs past the end
		"extent3 " + short + " 0 1MB\n" + // read-write: extended
		"target0 rw extent0 0/0\ntarget1 ro extent1 0/0\ntarget2 ro extent2 0/0\ntarget3 rw extent3 0/0\n"
	if err := os.WriteFile(targets, []byte(nb), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(targets, nil, compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull}, nil)
	var out bytes.Buffer
	if err := Check(&out, start); err == nil {
		t.Fatalf("Check passed LUNs a start leaves out\n%s", out.String())
	}
	const base = "iqn.1994-04.org.netbsd.iscsi-target:"
	want := targets + ":1:1: warning: LUN 0 of target " + base + "target0: " + filepath.Join(dir, "tiny") + " does not exist: a start creates it (100 bytes, sparse)\n" +
		targets + ":1:1: error: LUN 0 of target " + base + "target0: backing store of 100 bytes is smaller than one 512-byte block: a start leaves this LUN out (NetBSD's iscsi-target refused to start)\n" +
		targets + ":2:1: error: LUN 0 of target " + base + "target1: backing: open " + small + ": access beyond end of backing store: offset 1048576 is at or past the end of the file (102400 bytes): a read-only extent with no data: a start leaves this LUN out (NetBSD's iscsi-target refused to start)\n" +
		targets + ":3:1: warning: LUN 0 of target " + base + "target2: read-only extent [0,+1048576) runs past the end of " + small + " (102400 bytes): reads past byte 102400 return zeros (NetBSD failed them, a short read)\n" +
		targets + ":4:1: warning: LUN 0 of target " + base + "target3: " + short + " is 102400 bytes: a start extends it to 1048576 bytes (ftruncate, sparse; nothing is written; NetBSD grew it too)\n" +
		targets + ": 2 error(s): a start serves the rest (netbsd, 4 target(s), 2 LUN(s)) without the LUNs left out above\n"
	if out.String() != want {
		t.Fatalf("Check printed\n%s\nwant\n%s", out.String(), want)
	}
	// --check changed nothing.
	if fi, err := os.Stat(short); err != nil || fi.Size() != 100<<10 {
		t.Fatalf("short: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tiny")); err == nil {
		t.Fatal("--check created the tiny extent")
	}
}

// A file a start would create in a directory it cannot write to is one
// error (the start's own), not also a warning that a start creates it.
func TestCheckDoesNotPromiseWhatFails(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	// chattr +i refuses root too (a 0555 directory would not).
	if out, err := exec.Command("chattr", "+i", locked).CombinedOutput(); err != nil {
		t.Skipf("chattr +i: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", locked).Run() })
	targets := filepath.Join(dir, "targets")
	if err := os.WriteFile(targets, []byte("extent0 "+filepath.Join(locked, "new")+" 0 1MB\ntarget0 rw extent0 0/0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(targets, nil, compat.LoadOptions{Dialect: config.DialectNetBSD, AuthsPath: os.DevNull}, nil)
	var out bytes.Buffer
	if err := Check(&out, start); err == nil {
		t.Fatalf("Check passed\n%s", out.String())
	}
	if s := out.String(); strings.Contains(s, "a start creates it") || !strings.Contains(s, ":1:1: error: LUN 0 of target") {
		t.Fatalf("Check printed\n%s", s)
	}
}

// A LUN configured for writes on a read-only block device (losetup -r):
// --check warns that a start serves it write-protected; configured
// read-only, nothing is said.
func TestCheckReadOnlyBlockDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.bin")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-r", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup -r: %v %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", dev, err, out)
		}
	})
	conf := filepath.Join(dir, "ietd.conf")
	if err := os.WriteFile(conf, []byte("Target iqn.x:a\n\tLun 0 Path="+dev+",Type=fileio\n\tLun 1 Path="+dev+",Type=fileio,IOMode=ro\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, start := Loaders(conf, nil, compat.LoadOptions{ACLDir: dir}, nil)
	var buf bytes.Buffer
	if err := Check(&buf, start); err != nil {
		t.Fatal(err)
	}
	want := conf + ":2:13: warning: LUN 0 of target iqn.x:a: " + backing.WriteProtectedNote(dev) + "\n" +
		conf + ": ok (iet, 1 target(s), 2 LUN(s))\n"
	if buf.String() != want {
		t.Fatalf("Check printed\n%s\nwant\n%s", buf.String(), want)
	}
}
