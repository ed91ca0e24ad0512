package iscsi

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
)

func TestIscsiLsDiscovery(t *testing.T) {
	needTool(t, "iscsi-ls")
	cfg, _ := basicConfig()
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	out, err := run(t, 20*time.Second, "iscsi-ls", "-s", "iscsi://"+ts.addr)
	if err != nil {
		t.Fatalf("iscsi-ls: %v\n%s", err, out)
	}
	if !strings.Contains(out, testIQN) || !strings.Contains(out, ts.addr) {
		t.Fatalf("iscsi-ls output lacks target/portal:\n%s", out)
	}
}

func TestIscsiLsDiscoveryCHAP(t *testing.T) {
	needTool(t, "iscsi-ls")
	cfg, _ := basicConfig()
	cfg.Discovery.Incoming = []config.Account{{User: "disc", Secret: "discsecret123"}}
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	out, err := run(t, 20*time.Second, "iscsi-ls", "iscsi://disc%discsecret123@"+ts.addr)
	if err != nil || !strings.Contains(out, testIQN) {
		t.Fatalf("iscsi-ls with CHAP: %v\n%s", err, out)
	}
	out, err = run(t, 20*time.Second, "iscsi-ls", "iscsi://disc%wrongsecret1@"+ts.addr)
	if err == nil || strings.Contains(out, testIQN) {
		t.Fatalf("wrong secret accepted:\n%s", out)
	}
	out, err = run(t, 20*time.Second, "iscsi-ls", "iscsi://"+ts.addr)
	if err == nil || strings.Contains(out, testIQN) {
		t.Fatalf("discovery without CHAP accepted:\n%s", out)
	}
}

func TestIscsiInq(t *testing.T) {
	needTool(t, "iscsi-inq")
	cfg, tg := basicConfig()
	tg.Auth.Incoming = []config.Account{{User: "alice", Secret: "alicesecret12"}}
	ts := startServer(t, cfg, newFakeDisk(1<<20))
	out, err := run(t, 20*time.Second, "iscsi-inq", "iscsi://alice%alicesecret12@"+ts.addr+"/"+testIQN+"/0")
	if err != nil || !strings.Contains(out, "FAKEDISK") {
		t.Fatalf("iscsi-inq: %v\n%s", err, out)
	}
	out, err = run(t, 20*time.Second, "iscsi-inq", "iscsi://alice%badsecret123@"+ts.addr+"/"+testIQN+"/0")
	if err == nil {
		t.Fatalf("iscsi-inq with a wrong secret succeeded:\n%s", out)
	}
}

func qemuRoundTrip(t *testing.T, digest bool, mrdsl int) {
	needTool(t, "qemu-img")
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so"); err != nil {
		t.Skip("qemu iSCSI block driver (qemu-block-extra) not installed")
	}
	cfg, tg := basicConfig()
	if digest {
		tg.Params.HeaderDigest = []string{"CRC32C", "None"}
		tg.Params.DataDigest = []string{"CRC32C", "None"}
	}
	tg.Params.MaxRecvDataSegmentLength = mrdsl
	tg.Params.MaxXmitDataSegmentLength = mrdsl
	tg.Params.InitialR2T = false
	tg.Params.MaxBurstLength = 128 << 10
	const size = 4 << 20
	disk := newFakeDisk(size)
	ts := startServer(t, cfg, disk)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	url := "iscsi://" + ts.addr + "/" + testIQN + "/0"
	if digest {
		url += "?header-digest=crc32c"
	}
	args := []string{"convert", "-n", "-f", "raw", "-O", "raw", src, url}
	if digest {
		args = []string{"convert", "-n", "-f", "raw", "--target-image-opts", src,
			"driver=iscsi,transport=tcp,portal=" + ts.addr + ",target=" + testIQN + ",lun=0,header-digest=crc32c"}
	}
	if out, err := run(t, 60*time.Second, "qemu-img", args...); err != nil {
		t.Fatalf("qemu-img convert (write): %v\n%s", err, out)
	}
	disk.mu.RLock()
	same := bytes.Equal(disk.data, data)
	disk.mu.RUnlock()
	if !same {
		t.Fatal("LUN content differs from the written image")
	}
	dst := filepath.Join(dir, "dst.raw")
	if out, err := run(t, 60*time.Second, "qemu-img", "convert", "-f", "raw", "-O", "raw", "iscsi://"+ts.addr+"/"+testIQN+"/0", dst); err != nil {
		t.Fatalf("qemu-img convert (read): %v\n%s", err, out)
	}
	got, _ := os.ReadFile(dst)
	if !bytes.Equal(got, data) {
		t.Fatal("read back data differs")
	}
}

func TestQemuImgReadWrite(t *testing.T)        { qemuRoundTrip(t, false, 8192) }
func TestQemuImgReadWriteDigests(t *testing.T) { qemuRoundTrip(t, true, 65536) }
