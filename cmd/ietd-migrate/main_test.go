package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	dt "github.com/ietgo/ietd/cmd/internal/daemontest"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteOutputsAllOrNothing(t *testing.T) {
	outs := []output{{"ietd.conf", "Target iqn.x\n"}, {"initiators.allow", "iqn.x ALL\n"}}
	dir := t.TempDir()
	var log bytes.Buffer
	if err := writeOutputs(&log, dir, outs, false); err != nil {
		t.Fatal(err)
	}
	if log.String() != "wrote "+dir+"/ietd.conf\nwrote "+dir+"/initiators.allow\n" {
		t.Fatalf("log %q", log.String())
	}
	for _, o := range outs {
		fi, err := os.Stat(filepath.Join(dir, o.name))
		b, _ := os.ReadFile(filepath.Join(dir, o.name))
		if err != nil || fi.Mode().Perm() != 0o600 || string(b) != o.text {
			t.Fatalf("%s: %v %v %q", o.name, err, fi.Mode(), b)
		}
	}

	// One existing file: refused before anything is written.
	dir = t.TempDir()
	write(t, filepath.Join(dir, "initiators.allow"), "old\n")
	err := writeOutputs(&log, dir, outs, false)
	if err == nil || !strings.Contains(err.Error(), "initiators.allow already exists; nothing written") {
		t.Fatalf("err %v", err)
	}
	if got := listDir(t, dir); len(got) != 1 || got[0] != "initiators.allow" {
		t.Fatalf("dir holds %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "initiators.allow")); string(b) != "old\n" {
		t.Fatalf("existing file changed: %q", b)
	}

	// --force replaces both, and leaves no temporary file.
	if err := writeOutputs(&log, dir, outs, true); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, dir); len(got) != 2 {
		t.Fatalf("dir holds %v", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "initiators.allow")); string(b) != outs[1].text {
		t.Fatalf("not replaced: %q", b)
	}

	// A write that fails (here: the second file cannot be created) leaves
	// nothing behind, not even the first file.
	dir = t.TempDir()
	bad := []output{outs[0], {"no/such/dir", "x"}}
	if err := writeOutputs(&log, dir, bad, false); err == nil {
		t.Fatal("impossible write succeeded")
	}
	if got := listDir(t, dir); len(got) != 0 {
		t.Fatalf("failed write left %v", got)
	}
}

func TestMigrateCommand(t *testing.T) {
	bin := dt.Bin(t, "ietd-migrate")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	auths := filepath.Join(dir, "auths")
	write(t, targets, "extent0 "+dir+"/disk0 0 1M\nextent1 "+dir+"/disk\\ #1 0 1M\ntarget0 rw extent0 10.0.0.0/8\ntarget1 rw extent1 0/0\n")
	write(t, auths, "joe:chap:verysecret1234\n")

	// stdout: the secret is masked and the account line commented out;
	// the path a Lun line cannot hold is noted and left out, and the
	// exit status says something is held back.
	out, code := dt.Run(t, 20*time.Second, bin, "--auths", auths, targets)
	if code != 2 || !strings.Contains(out, "ietd-migrate: 1 item(s) held back (see the notes above)") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if strings.Contains(out, "verysecret1234") {
		t.Fatalf("secret printed:\n%s", out)
	}
	if msg := dt.Contains(out, "\t# IncomingUser joe ********  (secret not shown)\n", "CHAP secrets are masked on stdout",
		"edit the result by hand", "\t# Lun 0 Path="+dir+"/disk #1,"); msg != "" {
		t.Fatal(msg)
	}
	out, _ = dt.Run(t, 20*time.Second, bin, "--auths", auths, "--show-secrets", targets)
	if !strings.Contains(out, "\tIncomingUser joe verysecret1234\n") {
		t.Fatalf("--show-secrets:\n%s", out)
	}

	// -o: both files, mode 0600, with the secret; a second run refuses
	// and writes nothing; --force replaces.
	outDir := filepath.Join(dir, "out")
	out, code = dt.Run(t, 20*time.Second, bin, "--auths", auths, "-o", outDir, targets)
	if code != 2 || !strings.Contains(out, "wrote "+outDir+"/ietd.conf\nwrote "+outDir+"/initiators.allow\n") {
		t.Fatalf("-o: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(filepath.Join(outDir, "ietd.conf"))
	if err != nil || !strings.Contains(string(b), "\tIncomingUser joe verysecret1234\n") {
		t.Fatalf("ietd.conf %v:\n%s", err, b)
	}
	if b, _ := os.ReadFile(filepath.Join(outDir, "initiators.allow")); !strings.Contains(string(b), "iqn.1994-04.org.netbsd.iscsi-target:target0 10.0.0.0/8\n") {
		t.Fatalf("initiators.allow:\n%s", b)
	}
	os.Remove(filepath.Join(outDir, "ietd.conf"))
	out, code = dt.Run(t, 20*time.Second, bin, "--auths", auths, "-o", outDir, targets)
	if code != 1 || !strings.Contains(out, "initiators.allow already exists; nothing written") || strings.Contains(out, "held back") {
		t.Fatalf("second run: exit %d\n%s", code, out)
	}
	if got := listDir(t, outDir); len(got) != 1 || got[0] != "initiators.allow" {
		t.Fatalf("refused run left %v", got)
	}
	if _, code = dt.Run(t, 20*time.Second, bin, "--auths", auths, "-o", outDir, "--force", targets); code != 2 {
		t.Fatal("--force failed")
	}
	if got := listDir(t, outDir); len(got) != 2 {
		t.Fatalf("--force left %v", got)
	}
	if _, code = dt.Run(t, 20*time.Second, bin, "--auths", auths, "-o", outDir, "--show-secrets", targets); code == 0 {
		t.Fatal("--show-secrets with -o accepted")
	}
}

// A migrated LUN is the same disk to initiators: iscsi-target on the
// NetBSD file and ietd on what ietd-migrate wrote report the same
// INQUIRY data, serial number and device identifiers (Linux multipath
// and ESXi name disks after the NAA designator of VPD page 0x83).
func TestMigratedLUNKeepsItsIdentity(t *testing.T) {
	migrate, netbsd, ietd := dt.Bin(t, "ietd-migrate"), dt.Bin(t, "iscsi-target"), dt.Bin(t, "ietd")
	inq := dt.Tool(t, "iscsi-inq")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	write(t, targets, "extent0 "+dir+"/disk0 0 1M\nextent1 "+dir+"/disk1 0 1M\ntarget0 rw extent0 0/0\ntarget1 rw extent1 0/0\n")
	auths := filepath.Join(dir, "auths")
	write(t, auths, "")
	identity := func(port int) string {
		t.Helper()
		var all strings.Builder
		for _, tn := range []string{"target0", "target1"} {
			url := dt.Portal(port) + "/iqn.1994-04.org.netbsd.iscsi-target:" + tn + "/0"
			for _, args := range [][]string{{url}, {"-e", "1", "-c", "128", url}, {"-e", "1", "-c", "131", url}} {
				out, code := dt.Run(t, 20*time.Second, inq, args...)
				if code != 0 {
					t.Fatalf("iscsi-inq %v: exit %d\n%s", args, code, out)
				}
				all.WriteString(out)
			}
		}
		return all.String()
	}
	stop := func(d *dt.Proc) {
		t.Helper()
		d.Signal(syscall.SIGTERM)
		if !d.WaitExit(15 * time.Second) {
			t.Fatal("daemon did not stop on SIGTERM")
		}
	}
	port := dt.FreePort(t)
	d := dt.Start(t, port, netbsd, "-D", "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
		"--auths", auths, "--pid-file", filepath.Join(dir, "pid1"),
		"--admin-socket", filepath.Join(dir, "admin1.sock"), "--state-dir", filepath.Join(dir, "state1"))
	before := identity(port)
	stop(d)
	if msg := dt.Contains(before, "NetBSD", "Unit Serial Number", "NAA"); msg != "" {
		t.Fatalf("%s\n%s", msg, before)
	}

	outDir := filepath.Join(dir, "out")
	if out, code := dt.Run(t, 20*time.Second, migrate, "--auths", auths, "-o", outDir, targets); code != 0 {
		t.Fatalf("ietd-migrate: exit %d\n%s", code, out)
	}
	port = dt.FreePort(t)
	d = dt.Start(t, port, ietd, "-f", "-c", filepath.Join(outDir, "ietd.conf"), "-a", "127.0.0.1", "-p", strconv.Itoa(port),
		"--pid-file", filepath.Join(dir, "pid2"), "--admin-socket", filepath.Join(dir, "admin2.sock"),
		"--acl-dir", outDir, "--state-dir", filepath.Join(dir, "state2"), "--proc-dir", filepath.Join(dir, "proc"))
	after := identity(port)
	stop(d)
	if after != before {
		t.Fatalf("the migrated LUNs report another identity:\n--- NetBSD file\n%s\n--- migrated\n%s", before, after)
	}
}

// iscsi-target -b N serves N-byte blocks; ietd-migrate -b N writes
// BlockSize=N, so ietd serves the same block length and block count (the
// same bytes at the same LBAs), 8192 included. Without it every LBA moved
// by N/512.
func TestMigratedBlockLength(t *testing.T) {
	migrate, netbsd, ietd := dt.Bin(t, "ietd-migrate"), dt.Bin(t, "iscsi-target"), dt.Bin(t, "ietd")
	rc16, img := dt.Tool(t, "iscsi-readcapacity16"), dt.Tool(t, "qemu-img")
	dir := t.TempDir()
	disk := make([]byte, 1<<20)
	for i := range disk {
		disk[i] = byte(i*7 + i>>9)
	}
	write(t, filepath.Join(dir, "disk"), string(disk))
	targets := filepath.Join(dir, "targets")
	write(t, targets, "extent0 "+dir+"/disk 0 1M\ntarget0 rw extent0 0/0\n")
	auths := filepath.Join(dir, "auths")
	write(t, auths, "")
	url := func(port int) string { return dt.Portal(port) + "/iqn.1994-04.org.netbsd.iscsi-target:target0/0" }
	// served is what an initiator sees: READ CAPACITY(16) and every byte.
	served := func(port int, name string) string {
		t.Helper()
		out, code := dt.Run(t, 20*time.Second, rc16, url(port))
		if code != 0 {
			t.Fatalf("iscsi-readcapacity16: exit %d\n%s", code, out)
		}
		copyPath := filepath.Join(dir, name)
		if o, code := dt.Run(t, 30*time.Second, img, "convert", "-O", "raw", url(port), copyPath); code != 0 {
			t.Fatalf("qemu-img convert: exit %d\n%s", code, o)
		}
		b, err := os.ReadFile(copyPath)
		if err != nil || !bytes.Equal(b, disk) {
			t.Fatalf("%s: the LUN's bytes differ from the file's (%v)", name, err)
		}
		return out
	}
	stop := func(d *dt.Proc) {
		t.Helper()
		d.Signal(syscall.SIGTERM)
		if !d.WaitExit(15 * time.Second) {
			t.Fatal("daemon did not stop on SIGTERM")
		}
	}
	for _, bs := range []string{"4096", "8192"} {
		port := dt.FreePort(t)
		d := dt.Start(t, port, netbsd, "-D", "-b", bs, "-f", targets, "-p", strconv.Itoa(port), "--address", "127.0.0.1",
			"--auths", auths, "--pid-file", filepath.Join(dir, "pid1"),
			"--admin-socket", filepath.Join(dir, "admin1.sock"), "--state-dir", filepath.Join(dir, "state1"))
		before := served(port, "netbsd-"+bs)
		stop(d)
		if !strings.Contains(before, "LOGICAL BLOCK LENGTH IN BYTES:"+bs+"\n") {
			t.Fatalf("iscsi-target -b %s:\n%s", bs, before)
		}

		outDir := filepath.Join(dir, "out"+bs)
		out, code := dt.Run(t, 20*time.Second, migrate, "-b", bs, "--auths", auths, "-o", outDir, targets)
		if code != 0 {
			t.Fatalf("ietd-migrate -b %s: exit %d\n%s", bs, code, out)
		}
		if b, _ := os.ReadFile(filepath.Join(outDir, "ietd.conf")); !strings.Contains(string(b), ",BlockSize="+bs+",") {
			t.Fatalf("no BlockSize=%s:\n%s", bs, b)
		}
		port = dt.FreePort(t)
		d = dt.Start(t, port, ietd, "-f", "-c", filepath.Join(outDir, "ietd.conf"), "-a", "127.0.0.1", "-p", strconv.Itoa(port),
			"--pid-file", filepath.Join(dir, "pid2"), "--admin-socket", filepath.Join(dir, "admin2.sock"),
			"--acl-dir", outDir, "--state-dir", filepath.Join(dir, "state2"), "--proc-dir", filepath.Join(dir, "proc"))
		after := served(port, "ietd-"+bs)
		stop(d)
		if after != before {
			t.Fatalf("-b %s: the migrated LUN has another geometry:\n--- iscsi-target\n%s\n--- ietd\n%s", bs, before, after)
		}
	}

	// iscsi-target's -b check and message.
	out, code := dt.Run(t, 20*time.Second, migrate, "-b", "1000", "--auths", auths, targets)
	if code != 1 || !strings.Contains(out, "Invalid block len 1000. Choose one of 512, 1024, 2048, 4096, or 8192.") || strings.Contains(out, "Target ") {
		t.Fatalf("-b 1000: exit %d\n%s", code, out)
	}
}

// --flags reads the rc.conf variable iscsi_target_flags as iscsi-target
// reads its command line: -b, -s, -t, -f and --auths are carried over,
// every other flag is noted with what to do instead, and flags
// iscsi-target would refuse are refused.
func TestMigrateFlags(t *testing.T) {
	bin := dt.Bin(t, "ietd-migrate")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	write(t, targets, "extent0 "+dir+"/disk0 0 1M\ntarget0 rw extent0 0/0\n")
	auths := filepath.Join(dir, "my auths")
	write(t, auths, "joe:chap:verysecret1234\n")
	flags := "-Db4096 -s 4 -t iqn.2000-01.com.example -p 3261 -4 -v net --pid-file /tmp/x.pid -f " + targets + " --auths '" + auths + "'"
	out, code := dt.Run(t, 20*time.Second, bin, "--flags", flags, "--show-secrets")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if msg := dt.Contains(out,
		"Target iqn.2000-01.com.example:target0\n",
		"\tIncomingUser joe verysecret1234\n",
		",BlockSize=4096,",
		"\tMaxSessions 4\n",
		"note: -p 3261: ietd.conf holds no port: start ietd with -p 3261",
		"note: -4: ietd.conf holds no address family: start ietd with -a and the IPv4 addresses",
		"note: -D: not an ietd.conf setting",
		"note: -v net: not an ietd.conf setting",
		"note: --pid-file /tmp/x.pid: not an ietd.conf setting",
	); msg != "" {
		t.Fatalf("%s\n%s", msg, out)
	}
	// iscsi-target's defaults without flags: 512-byte blocks, 16 sessions.
	out, _ = dt.Run(t, 20*time.Second, bin, "--flags", "", "--auths", auths, targets)
	if msg := dt.Contains(out, ",BlockSize=512,", "\tMaxSessions 16\n"); msg != "" {
		t.Fatalf("%s\n%s", msg, out)
	}
	// -s out of range: iscsi-target used 16.
	out, _ = dt.Run(t, 20*time.Second, bin, "--flags", "-s 500", "--auths", auths, targets)
	if msg := dt.Contains(out, "\tMaxSessions 16\n", "note: -s 500: iscsi-target ignored it (1..127) and used 16"); msg != "" {
		t.Fatalf("%s\n%s", msg, out)
	}
	for _, c := range []struct{ args, want string }{
		{"-b 1000", "--flags: Invalid block len 1000. Choose one of 512, 1024, 2048, 4096, or 8192."},
		{"-b", "--flags: flag needs an argument: -b"},
		{"-t $BASE", "give the flags as the shell expands them"},
		{"--auths 'x", "unterminated '"},
	} {
		out, code := dt.Run(t, 20*time.Second, bin, "--flags", c.args, "--auths", auths, targets)
		if code != 1 || !strings.Contains(out, c.want) || strings.Contains(out, "Target ") {
			t.Errorf("--flags %q: exit %d\n%s", c.args, code, out)
		}
	}
	// An unknown option is skipped with a note, as iscsi-target skips it.
	out, code = dt.Run(t, 20*time.Second, bin, "--flags", "-x", "--auths", auths, targets)
	if msg := dt.Contains(out, "note: iscsi_target_flags: unknown option -x ignored", "Target "); code != 0 || msg != "" {
		t.Errorf("--flags -x: exit %d %s\n%s", code, msg, out)
	}
	// The same setting given twice must agree.
	out, code = dt.Run(t, 20*time.Second, bin, "-b", "512", "--flags", "-b 4096", "--auths", auths, targets)
	if code != 1 || !strings.Contains(out, "-b 512 differs from --flags (4096)") {
		t.Fatalf("-b twice: exit %d\n%s", code, out)
	}
}

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		"":                    nil,
		"  -b 4096\t-D ":      {"-b", "4096", "-D"},
		`-f '/a b' -t "x\"y"`: {"-f", "/a b", "-t", `x"y`},
		`-f /a\ b ''`:         {"-f", "/a b", ""},
		`-f "/a\b"`:           {"-f", `/a\b`},
		`-t iqn.x'y'"z"`:      {"-t", "iqn.xyz"},
	} {
		got, err := shellWords(in)
		if err != nil || strings.Join(got, "|") != strings.Join(want, "|") || len(got) != len(want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// A migration that holds something back (a LUN written commented out, a
// CHAP user left out) still writes its result, and exits 2 so that a
// script does not lose a disk unnoticed; one that holds nothing back
// exits 0.
func TestMigrateHeldBackExitStatus(t *testing.T) {
	bin := dt.Bin(t, "ietd-migrate")
	dir := t.TempDir()
	targets := filepath.Join(dir, "targets")
	write(t, targets, "extent0 "+dir+"/a 0 512k\nextent1 "+dir+"/odd\"+name@x 0 512k\nextent2 "+dir+"/b 0 512k\n"+
		"device0 RAID1 extent1 extent2\ntarget0 rw extent0 0/0\ntarget1 rw device0 0/0\n")
	auths := filepath.Join(dir, "auths")
	write(t, auths, "joe:chap:verysecret1234\n")
	for _, c := range []struct {
		auths string
		want  int
		msg   []string
	}{
		{auths, 0, nil},
		{filepath.Join(dir, "blank-auths"), 2, []string{`note: CHAP user "ann" cannot be migrated`, "ietd-migrate: 1 item(s) held back"}},
	} {
		if c.want != 0 {
			write(t, c.auths, "ann:chap:secret with blanks\n")
		}
		outDir := filepath.Join(dir, "out"+strconv.Itoa(c.want))
		src := filepath.Join(dir, "plain")
		write(t, src, "extent0 "+dir+"/a 0 512k\ntarget0 rw extent0 0/0\n")
		out, code := dt.Run(t, 20*time.Second, bin, "--auths", c.auths, "-o", outDir, src)
		if code != c.want || !strings.Contains(out, "wrote "+outDir+"/ietd.conf") || (c.want == 0) == strings.Contains(out, "held back") {
			t.Fatalf("exit %d, want %d\n%s", code, c.want, out)
		}
		if msg := dt.Contains(out, c.msg...); msg != "" {
			t.Fatal(msg)
		}
	}
	// The RAID1 member a Store= cannot hold (a quote and a +): the LUN is written
	// commented out, the file is written, exit 2.
	outDir := filepath.Join(dir, "out-raid")
	out, code := dt.Run(t, 20*time.Second, bin, "--auths", auths, "-o", outDir, targets)
	if code != 2 || !strings.Contains(out, "ietd-migrate: 1 item(s) held back") || !strings.Contains(out, "the LUN is written commented out") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(outDir, "ietd.conf")); !strings.Contains(string(b), "\t# Lun 0 Store=raid1(") {
		t.Fatalf("ietd.conf:\n%s", b)
	}
}
