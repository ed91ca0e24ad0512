//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A LUN ietadm adds with NAA=Yes shows libiscsi's iscsi-inq an NAA
// designator in VPD page 0x83 next to IET's T10 one; the LUN of the
// config file, without it, keeps IET's single designator.
func TestIetadmLunNAA(t *testing.T) {
	realDaemonOnly(t)
	inq, err := exec.LookPath("iscsi-inq")
	if err != nil {
		t.Skip("iscsi-inq (libiscsi-bin) not installed")
	}
	dir := t.TempDir()
	const iqn = "iqn.2026-01.org.ietgo.e2e:naa"
	d := startDaemon(t, dir, renderConf(t, nil, simpleTarget(dir, iqn, 1<<20)))
	img := filepath.Join(dir, "lun1.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := d.adm("--op", "new", "--tid=1", "--lun=1", "--params", "Path="+img+",Type=fileio,NAA=Yes"); r.code != 0 {
		t.Fatalf("ietadm new lun: %d %s", r.code, r.stderr)
	}
	page := func(lun int) string {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, inq, "-e", "1", "-c", "131", fmt.Sprintf("iscsi://%s/%s/%d", d.addr, iqn, lun)).CombinedOutput()
		if err != nil {
			t.Fatalf("iscsi-inq LUN %d: %v\n%s", lun, err, out)
		}
		return string(out)
	}
	one := page(1)
	if !strings.Contains(one, "Designator Type:(3) NAA") || !strings.Contains(one, "Designator Type:(1) T10_VENDORT_ID") {
		t.Fatalf("LUN 1 (NAA=Yes) VPD 0x83:\n%s", one)
	}
	if zero := page(0); strings.Contains(zero, "NAA") || strings.Count(zero, "DEVICE DESIGNATOR #") != 1 {
		t.Fatalf("LUN 0 (IET's identity) VPD 0x83:\n%s", zero)
	}
	if r := d.adm("--op", "new", "--tid=1", "--lun=2", "--params", "Path="+img+",NAA=sometimes"); r.code == 0 || !strings.Contains(r.stderr, `NAA must be Yes or No, not "sometimes"`) {
		t.Fatalf("ietadm NAA=sometimes: %d %s", r.code, r.stderr)
	}
}
