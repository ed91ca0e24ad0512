//go:build linux

package backing

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// attachLoop attaches path to a free loop device (root and losetup
// needed, else the test is skipped) and detaches it in Cleanup.
func attachLoop(t *testing.T, path string, sectorSize int) string {
	t.Helper()
	return attachLoopArgs(t, path, sectorSize, false)
}

// attachLoopRO is attachLoop with the device read-only (losetup -r).
func attachLoopRO(t *testing.T, path string) string {
	t.Helper()
	return attachLoopArgs(t, path, 0, true)
}

func attachLoopArgs(t *testing.T, path string, sectorSize int, readOnly bool) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	losetup, err := exec.LookPath("losetup")
	if err != nil {
		t.Skip("losetup not installed")
	}
	args := []string{"-f", "--show"}
	if sectorSize > 0 {
		args = append(args, "--sector-size", itoa(sectorSize))
	}
	if readOnly {
		args = append(args, "-r")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, losetup, append(args, path)...).CombinedOutput()
	if err != nil {
		t.Skipf("losetup %v: %v: %s", args, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, losetup, "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

func TestLoopDeviceFileio(t *testing.T) {
	dev := attachLoop(t, newTempFile(t, 4<<20), 0)
	s := mustOpen(t, fileLUN(dev, "fileio", "wb"))
	fs := s.(*FileStore)
	if s.Size() != 4<<20 || !fs.blockDev {
		t.Fatalf("size %d blockDev %v", s.Size(), fs.blockDev)
	}
	if fs.serialisesWrites() || fs.comb != nil {
		t.Error("wb writes to a block device are serialised")
	}
	if fs.LogicalBlockSize() != 512 {
		t.Fatalf("logical block size %d", fs.LogicalBlockSize())
	}
	ref := make([]byte, 4<<20)
	checkOps(t, s, ref, 1, 200, 100000, 1, false)
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// Unmap either zeroes reliably or says it cannot.
	mustWrite(t, s, pattern(2, 1<<20), 0)
	if err := s.Unmap(0, 1<<20); err == nil {
		equalBytes(t, "unmapped", mustRead(t, s, 1<<20, 0), make([]byte, 1<<20))
	} else {
		expectErr(t, "unmap", err, ErrNotSupported)
	}
	// A window that ends past the device is refused at open.
	_, err := Open(&config.LUN{Store: &config.Store{Kind: config.StoreFile, Path: dev, Offset: 1 << 20, Size: 4 << 20}}, OpenOptions{})
	expectErr(t, "window past device", err, ErrRange)
}

// Write-through fileio on a block device: the combiner syncs each batch
// (no O_DSYNC), and a write completes only after an fdatasync that began
// once its data was on the device's page cache.
func TestLoopDeviceFileioWriteThrough(t *testing.T) {
	dev := attachLoop(t, newTempFile(t, 4<<20), 0)
	s := mustOpen(t, fileLUN(dev, "fileio", "wt"))
	fs := s.(*FileStore)
	if fs.comb == nil || fs.comb.sync == nil {
		t.Fatal("write-through fileio on a block device has no syncing combiner")
	}
	if fl := openFlags(t, int(fs.f.Fd())); fl&oDSYNC != 0 {
		t.Errorf("opened O_DSYNC (flags %#o): the combiner syncs", fl)
	}
	want := pattern(4, 4096)
	syncs := 0
	datasync := fs.datasync
	fs.datasync = func() error {
		syncs++
		got := make([]byte, len(want))
		if _, err := fs.f.ReadAt(got, 8192); err != nil || string(got) != string(want) {
			t.Error("fdatasync ran before the write's data was on the device")
		}
		return datasync()
	}
	mustWrite(t, s, want, 8192)
	if syncs != 1 {
		t.Fatalf("%d syncs for one write-through write", syncs)
	}
	ref := make([]byte, 4<<20)
	copy(ref[8192:], want)
	checkOps(t, s, ref, 5, 100, 100000, 1, false)
}

func TestLoopDeviceBlockio(t *testing.T) {
	for _, sector := range []int{512, 4096} {
		t.Run(itoa(sector), func(t *testing.T) {
			dev := attachLoop(t, newTempFile(t, 2<<20), sector)
			l := fileLUN(dev, "blockio", "")
			s := mustOpen(t, l)
			fs := s.(*FileStore)
			if !fs.Direct() {
				t.Fatal("blockio on a loop device not O_DIRECT")
			}
			if fs.LogicalBlockSize() != sector {
				t.Skipf("loop device reports %d-byte sectors (kernel ignored --sector-size)", fs.LogicalBlockSize())
			}
			if s.Size() != 2<<20 {
				t.Fatalf("size %d", s.Size())
			}
			// Unaligned offsets, lengths and buffers all go through the bounce path.
			checkOps(t, s, make([]byte, 2<<20), 5, 300, 50000, 1, false)
			// Aligned I/O from an aligned buffer goes straight through.
			buf := alignedBuf(64 << 10)
			copy(buf, pattern(8, len(buf)))
			mustWrite(t, s, buf, int64(sector))
			equalBytes(t, "aligned", mustRead(t, s, len(buf), int64(sector)), buf)
			// What went through O_DIRECT is visible through the page cache.
			other := mustOpen(t, fileLUN(dev, "fileio", "ro"))
			equalBytes(t, "page cache view", mustRead(t, other, len(buf), int64(sector)), buf)
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// On a 4096-byte-sector device blockio reports the device's block size
// (the LUN's default and smallest BlockSize, as IET's blockio), while
// fileio, through the page cache, reports 512 as IET's fileio did: a LUN
// of 512-byte blocks there is served, and 512-byte writes at odd 512-byte
// offsets reach the device intact (the kernel reads and rewrites the
// 4096-byte sector). A blockio LUN whose O_DIRECT open falls back keeps
// the device's block size.
func TestLoopDevice4KFileioBlockSize(t *testing.T) {
	file := newTempFile(t, 2<<20)
	dev := attachLoop(t, file, 4096)
	bs := mustOpen(t, fileLUN(dev, "blockio", ""))
	defer bs.Close()
	if got := bs.(BlockSizer).LogicalBlockSize(); got != 4096 {
		t.Skipf("loop device reports %d-byte sectors (kernel ignored --sector-size)", got)
	}
	for _, iomode := range []string{"wt", "wb", "ro"} {
		for _, probe := range []bool{false, true} {
			logger, hook := test.NewNullLogger()
			s, err := Open(fileLUN(dev, "fileio", iomode), OpenOptions{Probe: probe, Log: logrus.NewEntry(logger)})
			if err != nil {
				t.Fatal(err)
			}
			if got := s.(BlockSizer).LogicalBlockSize(); got != 512 {
				t.Errorf("fileio %s probe=%v on a 4096-byte-sector device: LogicalBlockSize %d, want 512 (IET fileio)", iomode, probe, got)
			}
			// The change from the disk's block size (what earlier
			// releases served) is said, unless BlockSize is set.
			if e := hook.LastEntry(); e == nil || !strings.Contains(e.Message, "4096-byte sectors: this fileio LUN has 512-byte blocks") {
				t.Errorf("fileio %s probe=%v: no warning about the 512-byte default: %v", iomode, probe, e)
			}
			s.Close()
		}
	}
	logger, hook := test.NewNullLogger()
	l := fileLUN(dev, "fileio", "wb")
	l.BlockSize = 4096
	if s, err := Open(l, OpenOptions{Log: logrus.NewEntry(logger)}); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	for _, e := range hook.AllEntries() {
		t.Errorf("fileio with BlockSize=4096 warned: %s", e.Message)
	}
	s := mustOpen(t, fileLUN(dev, "fileio", "wt"))
	defer s.Close()
	want := make([]byte, 8192)
	for i, off := range []int64{512, 3584, 4096 + 1024} {
		p := pattern(int64(20+i), 512)
		mustWrite(t, s, p, off)
		copy(want[off:], p)
	}
	equalBytes(t, "fileio 512-byte blocks", mustRead(t, s, 8192, 0), want)
	got := make([]byte, 8192)
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "the loop device's backing file", got, want)

	fs, err := openFile(fileOptions{Path: dev, DeviceBlockSize: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if fs.Direct() || fs.LogicalBlockSize() != 4096 {
		t.Errorf("blockio without O_DIRECT: direct %v, LogicalBlockSize %d; want the device's 4096", fs.Direct(), fs.LogicalBlockSize())
	}
}

// A LUN configured for writes on a block device the system holds
// read-only (Linux opens it O_RDWR all the same and refuses each write) is
// served write-protected; configured read-only it is just read-only, and
// a probe says the same as the start. The device's data is never touched.
func TestReadOnlyLoopDeviceIsWriteProtected(t *testing.T) {
	file := newTempFile(t, 1<<20)
	want := pattern(3, 1<<20)
	if err := os.WriteFile(file, want, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := attachLoopRO(t, file)
	if !DeviceWriteProtected(dev) {
		t.Fatalf("DeviceWriteProtected(%s) = false for losetup -r", dev)
	}
	if DeviceWriteProtected(file) {
		t.Error("DeviceWriteProtected is true for a regular file")
	}
	for _, c := range []struct {
		typ, iomode string
		protected   bool
	}{
		{"fileio", "wb", true},
		{"fileio", "wt", true},
		{"fileio", "", true},
		{"blockio", "", true},
		{"fileio", "ro", false},
	} {
		for _, probe := range []bool{false, true} {
			s, err := Open(fileLUN(dev, c.typ, c.iomode), OpenOptions{Probe: probe})
			if err != nil {
				t.Fatalf("%s %s probe=%v: %v", c.typ, c.iomode, probe, err)
			}
			if got := WriteProtected(s); got != c.protected {
				t.Errorf("%s %s probe=%v: WriteProtected %v, want %v", c.typ, c.iomode, probe, got, c.protected)
			}
			if !probe {
				_, err := s.WriteAt(make([]byte, 4096), 0)
				expectErr(t, c.typ+" "+c.iomode+" write", err, ErrReadOnly)
				if wc, ok := s.(WriteCacher); ok && wc.WriteCacheEnabled() {
					t.Errorf("%s %s: write cache enabled on a read-only device", c.typ, c.iomode)
				}
				equalBytes(t, "device data", mustRead(t, s, 1<<20, 0), want)
			}
			s.Close()
		}
	}
	// A writable device next to it is not write-protected.
	rw := attachLoop(t, newTempFile(t, 1<<20), 0)
	if DeviceWriteProtected(rw) {
		t.Errorf("DeviceWriteProtected(%s) = true for a writable loop device", rw)
	}
	s := mustOpen(t, fileLUN(rw, "fileio", "wb"))
	defer s.Close()
	if WriteProtected(s) {
		t.Error("a writable loop device is write-protected")
	}
	// Inside a RAID0 or RAID1 the read-only member makes it write-protected.
	cat := NewConcat(s, mustOpen(t, fileLUN(dev, "fileio", "wb")))
	if !WriteProtected(cat) {
		t.Error("a concatenation with a read-only member is not write-protected")
	}
}

// TestENOSPC fills a real, tiny file system (ext4 on a loop device) through
// a sparse file much larger than it and expects ErrNoSpace, not a crash.
func TestENOSPC(t *testing.T) {
	img := newTempFile(t, 8<<20)
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	dev := attachLoop(t, img, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, mkfs, "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v: %s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.CommandContext(ctx, "mount", dev, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount not permitted here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, "umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	p := filepath.Join(mnt, "big")
	for _, iomode := range []string{"wb", "wt"} {
		l := &config.LUN{IOMode: iomode, Store: &config.Store{Kind: config.StoreFile, Path: p, Size: 64 << 20, Create: true}}
		s, err := Open(l, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		buf := pattern(1, 1<<20)
		var werr error
		for i := int64(0); i < 64 && werr == nil; i++ {
			_, werr = s.WriteAt(buf, i<<20)
			if werr == nil && iomode == "wb" {
				werr = s.SyncRange(i<<20, 1<<20)
			}
		}
		if !errors.Is(werr, ErrNoSpace) {
			t.Fatalf("%s: filling an 8 MiB file system gave %v, want ErrNoSpace", iomode, werr)
		}
		// Space comes back after an unmap.
		if err := s.Unmap(0, 64<<20); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, s, buf, 0)
		s.Close()
		os.Remove(p)
	}
}
