//go:build linux

package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQemuImgRoundTrip uses a real initiator (qemu-img's libiscsi driver)
// with an honest session of our own alongside: qemu-img writes 8 MiB, then
// compares the LUN with the source.
func TestQemuImgRoundTrip(t *testing.T) {
	t.Parallel()
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed")
	}
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so"); err != nil {
		if out, _ := exec.Command(qemu, "--help").CombinedOutput(); !strings.Contains(string(out), "iscsi") {
			t.Skip("qemu-img has no iscsi driver (qemu-block-extra)")
		}
	}
	dir := t.TempDir()
	iqn := "iqn.2026-01.org.ietgo.e2e:qemu"
	d := startDaemon(t, dir, renderConf(t, nil, targetSpec{name: iqn, luns: []lunSpec{
		{n: 0, path: filepath.Join(dir, "lun0.img"), size: 8 << 20},
		{n: 1, path: filepath.Join(dir, "lun1.img"), size: 4 << 20},
	}}))
	h := startHonest(t, d.addr, iqn, 1, 0, 1024, 5)
	src := filepath.Join(dir, "src.raw")
	buf := make([]byte, 8<<20)
	rand.Read(buf)
	if err := os.WriteFile(src, buf, 0o600); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("iscsi://%s/%s/0", d.addr, iqn)
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, qemu, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}
	run("convert", "-n", "-f", "raw", "-O", "raw", src, url)
	run("compare", "-f", "raw", "-F", "raw", src, url)
	h.checkpoint(t, "qemu-img traffic", 10*time.Second)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}
