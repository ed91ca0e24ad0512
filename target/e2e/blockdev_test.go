//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// needRoot skips unless the test runs as root with every tool in tools.
func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, mounts)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// attachLoopDev attaches path to a free loop device with the extra
// losetup arguments (-b 4096, -r); the device, by its name, is detached in
// t.Cleanup (registered before a daemon that uses it, so it runs after
// the daemon stopped). The test is skipped when losetup refuses.
func attachLoopDev(t *testing.T, path string, extra ...string) string {
	t.Helper()
	dev, err := losetupAttach(t, path, extra...)
	if err != nil {
		t.Skip(err)
	}
	return dev
}

// losetupAttach attaches path to a free loop device with the extra
// losetup arguments and detaches it, by its name, in t.Cleanup.
func losetupAttach(t *testing.T, path string, extra ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "losetup", append(append([]string{"--find", "--show"}, extra...), path)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("losetup %v %s: %v %s", extra, path, err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		for range 50 {
			if exec.Command("losetup", "-d", dev).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not detach %s", dev)
	})
	return dev, nil
}

// devGeometry is what blockdev --getsize64 and --getss say of dev.
func devGeometry(t *testing.T, dev string) (size int64, sector int) {
	t.Helper()
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	sz, err := unix.IoctlGetUint64(fd, unix.BLKGETSIZE64)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := unix.IoctlGetUint32(fd, unix.BLKSSZGET)
	if err != nil {
		t.Fatal(err)
	}
	return int64(sz), int(ss)
}

func sparseFile(t *testing.T, path string, size int64, data []byte) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFileAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func cdbUnmap(n int) []byte {
	cdb := make([]byte, 10)
	cdb[0] = 0x42
	binary.BigEndian.PutUint16(cdb[7:], uint16(8+16*n))
	return cdb
}

func unmapParams(lba uint64, blocks uint32) []byte {
	p := make([]byte, 24)
	binary.BigEndian.PutUint16(p[0:], 22)
	binary.BigEndian.PutUint16(p[2:], 16)
	binary.BigEndian.PutUint64(p[8:], lba)
	binary.BigEndian.PutUint32(p[16:], blocks)
	return p
}

func cdbWriteSame16Unmap(lba uint64, blocks uint32) []byte {
	cdb := make([]byte, 16)
	cdb[0] = 0x93
	cdb[1] = 0x08 // UNMAP
	binary.BigEndian.PutUint64(cdb[2:], lba)
	binary.BigEndian.PutUint32(cdb[10:], blocks)
	return cdb
}

// lunReset sends an immediate LOGICAL UNIT RESET and returns the TMF
// response code (0: function complete).
func (c *clientConn) lunReset(lun uint64) (byte, error) {
	p := &pdu{}
	p.h[0] = opTMFReq | opImmediate
	p.h[1] = flagFinal | 5 // LOGICAL UNIT RESET
	p.h.setLUN(lun)
	p.h.put32(16, c.newITT())
	p.h.put32(20, 0xffffffff)
	p.h.put32(24, c.cmdSN)
	p.h.put32(28, c.expStatSN)
	if err := c.send(p); err != nil {
		return 0, err
	}
	for range 8 {
		r, err := c.recv()
		if err != nil {
			return 0, err
		}
		if r.h.opcode() == opTMFResp {
			return r.h[2], nil
		}
	}
	return 0, fmt.Errorf("no TMF response")
}

// TestLoopDevices serves real loop devices (512- and 4096-byte sectors, a
// size that is not a multiple of the LUN's 4096-byte blocks, one attached
// read-only) and a read-only file through the daemon: READ CAPACITY(16)
// says what blockdev says (fileio on the 4096-byte-sector device has
// IET's fileio 512-byte blocks, also with BlockSize=512); acknowledged
// data is byte-exact in the files behind the loop devices; UNMAP and
// WRITE SAME with UNMAP deallocate the sparse file under the device and
// read back zeros; writes to the read-only LUNs get DATA PROTECT and
// change nothing.
func TestLoopDevices(t *testing.T) {
	realDaemonOnly(t)
	needRoot(t, "losetup")
	t.Parallel()
	dir := t.TempDir()
	roData := patternBlocks(21, 0, 2048, 1)
	f512 := sparseFile(t, filepath.Join(dir, "d512.img"), 8<<20, nil)
	f4k := sparseFile(t, filepath.Join(dir, "d4k.img"), 8<<20, nil)
	fodd := sparseFile(t, filepath.Join(dir, "odd.img"), 8<<20+1536, nil)
	fro := sparseFile(t, filepath.Join(dir, "ro.img"), 1<<20, roData)
	plainRO := sparseFile(t, filepath.Join(dir, "plain-ro.img"), 1<<20, roData)
	d512 := attachLoopDev(t, f512)
	d4k := attachLoopDev(t, f4k, "--sector-size", "4096")
	dodd := attachLoopDev(t, fodd)
	dro := attachLoopDev(t, fro, "-r")
	if _, ss := devGeometry(t, d4k); ss != 4096 {
		t.Skipf("%s has %d-byte sectors (kernel ignored --sector-size)", d4k, ss)
	}
	const iqn = "iqn.2026-01.org.ietgo.e2e:loopdev"
	d := startDaemon(t, dir, renderConf(t, nil, targetSpec{name: iqn, luns: []lunSpec{
		{n: 0, path: d512, typ: "blockio"},
		{n: 1, path: d4k, typ: "blockio"},
		{n: 2, path: d4k, typ: "fileio", iomode: "wb"},
		{n: 3, path: d4k, typ: "fileio", params: ",BlockSize=512"},
		{n: 4, path: dodd, typ: "blockio", params: ",BlockSize=4096"},
		{n: 5, path: dro, typ: "fileio"},
		{n: 6, path: plainRO, typ: "fileio", iomode: "ro"},
	}}))
	c := mustSession(t, d.addr, iqn)
	tl := reportTally("loop devices (blockio, fileio, read-only) through the daemon")

	for _, g := range []struct {
		lun uint64
		dev string
		bs  int // 0: the device's sector size
	}{{0, d512, 0}, {1, d4k, 0}, {2, d4k, 512}, {3, d4k, 512}, {4, dodd, 4096}, {5, dro, 512}} {
		size, ss := devGeometry(t, g.dev)
		bs := g.bs
		if bs == 0 {
			bs = ss
		}
		n, gotBS, err := c.capacity(g.lun)
		if err != nil {
			t.Fatalf("LUN %d: %v (not served? log:\n%s)", g.lun, err, d.allLogs())
		}
		tl.add(fmt.Sprintf("READ CAPACITY(16) LUN %d (%d bytes, %d-byte sectors)", g.lun, size, ss), fmt.Sprintf("%d x %d", n, gotBS))
		if gotBS != bs || n != uint64(size)/uint64(bs) {
			t.Errorf("LUN %d on %s (%d bytes, %d-byte sectors): %d blocks of %d; want %d of %d",
				g.lun, g.dev, size, ss, n, gotBS, uint64(size)/uint64(bs), bs)
		}
	}
	if _, _, err := c.capacity(6); err != nil {
		t.Fatal(err)
	}

	// Acknowledged (FUA) writes are in the files behind the devices.
	for _, w := range []struct {
		lun  uint64
		file string
		bs   int
		lba  uint64
		n    int
	}{
		{0, f512, 512, 3, 129},
		{1, f4k, 4096, 5, 17},
		{3, f4k, 512, 1025, 3}, // inside a 4096-byte sector, through the page cache
		{4, fodd, 4096, 2047, 1},
	} {
		data := patternBlocks(22, w.lba, w.n*w.bs/512, uint32(w.lun))
		r, err := c.write(w.lun, w.lba, data, w.bs, true)
		if err != nil || !r.ok() {
			t.Fatalf("LUN %d write at lba %d: %v %v", w.lun, w.lba, r, err)
		}
		got := readFileAt(t, w.file, int64(w.lba)*int64(w.bs), len(data))
		ok := bytes.Equal(got, data)
		tl.add(fmt.Sprintf("FUA WRITE LUN %d, %d bytes at lba %d, in the file under the device", w.lun, len(data), w.lba), fmt.Sprintf("exact=%v", ok))
		if !ok {
			t.Errorf("LUN %d: the data written at lba %d is not in %s", w.lun, w.lba, w.file)
		}
		r, err = c.read(w.lun, w.lba, w.n, w.bs)
		if err != nil || !r.ok() || !bytes.Equal(r.data, data) {
			t.Errorf("LUN %d: read back at lba %d: %v %v", w.lun, w.lba, r, err)
		}
	}

	// UNMAP and WRITE SAME with UNMAP deallocate the file under the device.
	data := patternBlocks(23, 4096, 4096, 1) // 2 MiB at LBA 4096
	if r, err := c.write(0, 4096, data, 512, true); err != nil || !r.ok() {
		t.Fatalf("write before UNMAP: %v %v", r, err)
	}
	before := allocatedBytes(t, f512)
	if r, err := c.command(0, cdbUnmap(1), unmapParams(4096, 2048), 0); err != nil || !r.ok() {
		t.Fatalf("UNMAP: %v %v", r, err)
	}
	if r, err := c.command(0, cdbWriteSame16Unmap(6144, 2048), make([]byte, 512), 0); err != nil || !r.ok() {
		t.Fatalf("WRITE SAME(16) UNMAP: %v %v", r, err)
	}
	after := allocatedBytes(t, f512)
	r, err := c.read(0, 4096, 4096, 512)
	zeros := err == nil && r.ok() && bytes.Equal(r.data, make([]byte, 2<<20))
	inFile := bytes.Equal(readFileAt(t, f512, 2<<20, 2<<20), make([]byte, 2<<20))
	tl.add("UNMAP + WRITE SAME UNMAP of 2 MiB on blockio", fmt.Sprintf("allocated %d -> %d KiB, zeros=%v in-file=%v", before>>10, after>>10, zeros, inFile))
	if before-after < 2<<20 {
		t.Errorf("UNMAP of 2 MiB freed %d bytes of %s (%d -> %d)", before-after, f512, before, after)
	}
	if !zeros || !inFile {
		t.Errorf("unmapped range: zeros through the LUN %v, in the file %v (%v %v)", zeros, inFile, r, err)
	}

	// Read-only: DATA PROTECT, WRITE PROTECTED; nothing written.
	for _, ro := range []struct {
		lun  uint64
		file string
	}{{5, fro}, {6, plainRO}} {
		r, err := c.write(ro.lun, 8, patternBlocks(24, 8, 8, 1), 512, false)
		tl.add(fmt.Sprintf("WRITE to read-only LUN %d", ro.lun), fmt.Sprint(r))
		wantSense(t, fmt.Sprintf("write to read-only LUN %d", ro.lun), r, err, 0x07, 0x27, 0x00)
		if got, _ := os.ReadFile(ro.file); !bytes.Equal(got, roData) {
			t.Errorf("LUN %d: %s changed", ro.lun, ro.file)
		}
	}
	d.requireAlive(t, "loop device I/O")
}

// TestLoopDeviceFails: a LUN on a loop device whose file system (ext4 on
// an image, under the loop device's file) is shut down while served
// (EXT4_IOC_SHUTDOWN: every I/O fails with EIO, as a disk that went
// away). Reads and writes get MEDIUM ERROR sense at once, a LOGICAL UNIT
// RESET and a logout still work, and SIGTERM stops the daemon in time,
// logging that the write-back LUN's last sync failed.
func TestLoopDeviceFails(t *testing.T) {
	realDaemonOnly(t)
	needRoot(t, "losetup", "mkfs.ext4", "mount", "umount")
	t.Parallel()
	dir := t.TempDir()
	img := sparseFile(t, filepath.Join(dir, "fs.img"), 32<<20, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Skipf("mkfs.ext4: %v %s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.CommandContext(ctx, "mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("mount -o loop: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", mnt, err, out)
		}
	})
	disk := sparseFile(t, filepath.Join(mnt, "disk.img"), 8<<20, nil)
	dev := attachLoopDev(t, disk)
	const iqn = "iqn.2026-01.org.ietgo.e2e:loopfail"
	d := startDaemon(t, dir, renderConf(t, nil, targetSpec{name: iqn, luns: []lunSpec{
		{n: 0, path: dev, typ: "blockio"},
		{n: 1, path: dev, typ: "fileio", iomode: "wb"},
	}}))
	c := mustSession(t, d.addr, iqn)
	for lun := range uint64(2) {
		if _, _, err := c.capacity(lun); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := c.write(0, 0, patternBlocks(25, 0, 64, 1), 512, true); err != nil || !r.ok() {
		t.Fatalf("write before the failure: %v %v", r, err)
	}
	if r, err := c.write(1, 64, patternBlocks(25, 64, 64, 1), 512, false); err != nil || !r.ok() {
		t.Fatalf("write-back write before the failure: %v %v", r, err)
	}
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	const ext4IocShutdown = 0x8004587d                    // _IOR('X', 125, __u32)
	err = unix.IoctlSetPointerInt(fd, ext4IocShutdown, 2) // EXT4_GOING_FLAGS_NOLOGFLUSH
	unix.Close(fd)
	if err != nil {
		t.Skipf("EXT4_IOC_SHUTDOWN: %v", err)
	}
	tl := reportTally("loop device whose file system is shut down under it")
	start := time.Now()
	r, err := c.read(0, 1000, 8, 512)
	tl.add("blockio READ", fmt.Sprint(r))
	wantSense(t, "blockio read", r, err, 0x03, 0x11, 0x00)
	r, err = c.write(0, 1000, patternBlocks(25, 1000, 8, 1), 512, true)
	tl.add("blockio WRITE", fmt.Sprint(r))
	wantSense(t, "blockio write", r, err, 0x03, 0x0c, 0x00)
	r, err = c.read(1, 12000, 8, 512)
	tl.add("fileio READ of an uncached range", fmt.Sprint(r))
	wantSense(t, "fileio read", r, err, 0x03, 0x11, 0x00)
	r, err = c.write(1, 200, patternBlocks(25, 200, 8, 1), 512, true)
	tl.add("fileio FUA WRITE", fmt.Sprint(r))
	wantSense(t, "fileio FUA write", r, err, 0x03, 0x0c, 0x00)
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("the failed I/O took %v", el)
	}
	resp, err := c.lunReset(1)
	tl.add("LOGICAL UNIT RESET", fmt.Sprintf("response %d err %v", resp, err))
	if err != nil || resp != 0 {
		t.Errorf("LOGICAL UNIT RESET: response %d, %v", resp, err)
	}
	if err := c.logout(); err != nil {
		t.Errorf("logout: %v", err)
	}
	d.requireAlive(t, "I/O errors")
	stopped := time.Now()
	d.stop()
	tl.add("SIGTERM", fmt.Sprintf("stopped in %v", time.Since(stopped).Round(time.Millisecond)))
	if !strings.Contains(d.allLogs(), "closing the target's backing stores failed") {
		t.Errorf("the failed final sync of the write-back LUN was not logged")
	}
}
