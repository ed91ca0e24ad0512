//go:build linux

package scsi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// A sparse 16 MiB LUN file on a 2 MiB file system (tmpfs, mounted in the
// test's directory: root only): writes through the SCSI layer fill it and
// then fail with DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT, in
// write-back and write-through, FUA or not; none reports GOOD without
// its data (every block acknowledged reads back), and after an UNMAP
// frees space writes succeed again.
func TestSparseFileOnFullFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mount", "-t", "tmpfs", "-o", "size=2m", "ietgo-enospc", mnt).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	for _, tc := range []struct {
		mode  string
		flags byte
	}{{"wb", 0}, {"wb", 0x08}, {"wt", 0}} {
		p := filepath.Join(mnt, "lun.img")
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, 16<<20); err != nil {
			t.Fatal(err)
		}
		lc := &config.LUN{Number: 0, Type: "fileio", IOMode: tc.mode, Store: &config.Store{Kind: config.StoreFile, Path: p}}
		tcfg := config.NewTarget(1, "iqn.2026-01.org.ietgo:enospc")
		tcfg.LUNs = []*config.LUN{lc}
		tg, err := NewTarget(tcfg, Options{OpenStore: func(l *config.LUN) (backing.Store, error) {
			return backing.Open(l, backing.OpenOptions{})
		}})
		if err != nil {
			t.Fatal(err)
		}
		closed := false
		t.Cleanup(func() { // before the unmount
			if !closed {
				tg.Close()
			}
		})
		n := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tcfg.Name}
		tg.NexusAttach(n)
		run(tg, n, cdb(0, 6), nil)
		const chunk = 256 << 10
		var good [][]byte
		var last Result
		for i := 0; i < (16<<20)/chunk; i++ {
			d := bytes.Repeat([]byte{byte(i + 1)}, chunk)
			last = run(tg, n, rw16(0x8a, uint64(i*chunk/512), chunk/512, tc.flags), d)
			if last.Status != StatusGood {
				break
			}
			good = append(good, d)
		}
		if last.Status != StatusCheckCondition || senseKey(last) != keyDataProtect || senseASC(last) != ascSpaceAllocFailedWP {
			t.Fatalf("%s flags %#x: filling the file system ended with status %#x sense % x, want DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT",
				tc.mode, tc.flags, last.Status, last.Sense)
		}
		if len(good) == 0 || len(good) > 8 {
			t.Fatalf("%s: %d chunks of 256 KiB acknowledged on a 2 MiB file system", tc.mode, len(good))
		}
		for i, d := range good {
			r := run(tg, n, rw16(0x88, uint64(i*chunk/512), chunk/512, 0), nil)
			if r.Status != StatusGood || !bytes.Equal(r.Data, d) {
				t.Fatalf("%s: chunk %d was acknowledged GOOD but does not read back", tc.mode, i)
			}
		}
		if r := run(tg, n, cdb(0x35, 10), nil); r.Status != StatusGood {
			t.Fatalf("%s: SYNCHRONIZE CACHE after the refused write: %+v", tc.mode, r)
		}
		// Freeing space (UNMAP of what was written) makes writes work again.
		um := make([]byte, 24)
		um[1], um[3] = 22, 16
		um[16], um[17], um[18], um[19] = 0, 0, byte((len(good)*chunk/512)>>8), byte(len(good)*chunk/512)
		umc := cdb(0x42, 10)
		umc[8] = 24
		if r := run(tg, n, umc, um); r.Status != StatusGood {
			t.Fatalf("%s: UNMAP: %+v", tc.mode, r)
		}
		if r := run(tg, n, rw16(0x8a, 0, 8, tc.flags), make([]byte, 4096)); r.Status != StatusGood {
			t.Fatalf("%s: write after the UNMAP freed space: %+v", tc.mode, r)
		}
		closed = true
		if err := tg.Close(); err != nil {
			t.Fatalf("%s: close: %v", tc.mode, err)
		}
		os.Remove(p)
	}
}
