//go:build linux

package e2e

// Cross-check of the test initiator itself against a reference target
// (tgtd from Debian's tgt package). Opt-in: IETD_E2E_TGTD=1, root, tgtd
// and tgtadm installed.

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestClientAgainstTGTD(t *testing.T) {
	if os.Getenv("IETD_E2E_TGTD") != "1" {
		t.Skip("reference check of the test initiator against tgtd: set IETD_E2E_TGTD=1")
	}
	if os.Geteuid() != 0 {
		t.Skip("tgtd needs root")
	}
	tgtd, err1 := exec.LookPath("tgtd")
	tgtadm, err2 := exec.LookPath("tgtadm")
	if err1 != nil || err2 != nil {
		t.Skip("tgtd/tgtadm not installed (apt-get install tgt)")
	}
	dir := t.TempDir()
	port := freePort(t)
	ctl := strconv.Itoa(1000 + port%1000)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var logb bytes.Buffer
	cmd := exec.Command(tgtd, "-f", "-C", ctl, "--iscsi", "portal="+addr)
	cmd.Stderr = &logb
	cmd.Stdout = &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("tgtd log:\n%s", logb.String())
		}
	})
	adm := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var out []byte
		var err error
		for range 50 {
			out, err = exec.CommandContext(ctx, tgtadm, append([]string{"-C", ctl, "--lld", "iscsi"}, args...)...).CombinedOutput()
			if err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("tgtadm %v: %v\n%s", args, err, out)
	}
	const iqn = "iqn.2026-01.org.ietgo.e2e:tgtd"
	img := filepath.Join(dir, "disk.img")
	f, _ := os.Create(img)
	f.Truncate(16 << 20)
	f.Close()
	adm("--op", "new", "--mode", "target", "--tid", "1", "-T", iqn)
	adm("--op", "new", "--mode", "logicalunit", "--tid", "1", "--lun", "1", "-b", img)
	adm("--op", "bind", "--mode", "target", "--tid", "1", "-I", "ALL")
	adm("--op", "update", "--mode", "target", "--tid", "1", "-n", "HeaderDigest", "-v", "CRC32C,None")
	adm("--op", "update", "--mode", "target", "--tid", "1", "-n", "DataDigest", "-v", "CRC32C,None")

	d, err := session(addr, "")
	if err != nil {
		t.Fatal(err)
	}
	names, _, err := d.sendTargets("All")
	if err != nil || len(names) != 1 || names[0] != iqn {
		t.Fatalf("SendTargets: %v %v", names, err)
	}
	d.logout()
	d.close()

	for _, digest := range []string{"None", "CRC32C"} {
		t.Run("digest="+digest, func(t *testing.T) {
			c, err := dial(addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			if err := c.login(loginOpts{target: iqn, headerDigest: digest, dataDigest: digest, initialR2T: "Yes"}); err != nil {
				t.Fatal(err)
			}
			if c.hd != (digest == "CRC32C") {
				t.Fatalf("header digest not negotiated: %v", c.keys)
			}
			if err := c.ping([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			n, bs, err := c.capacity(1)
			if err != nil || n != (16<<20)/512 || bs != 512 {
				t.Fatalf("capacity %d %d %v", n, bs, err)
			}
			data := make([]byte, 300*bs) // > FirstBurst: forces R2T
			for i := range 300 {
				fillBlock(data[i*bs:(i+1)*bs], 9, uint64(100+i), 1)
			}
			r, err := c.write(1, 100, data, bs, true)
			if err != nil || !r.ok() {
				t.Fatalf("write: %v %v", r, err)
			}
			r, err = c.read(1, 100, 300, bs)
			if err != nil || !r.ok() || !bytes.Equal(r.data, data) {
				t.Fatalf("read back: %v %v", r, err)
			}
			if err := c.logout(); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("chap-mutual", func(t *testing.T) {
		adm("--mode", "account", "--op", "new", "--user", "e2euser", "--password", "e2esecret1234")
		adm("--mode", "account", "--op", "new", "--user", "tgtuser", "--password", "tgtsecret12345")
		adm("--mode", "account", "--op", "bind", "--tid", "1", "--user", "e2euser")
		adm("--mode", "account", "--op", "bind", "--tid", "1", "--user", "tgtuser", "--outgoing")
		c, err := dial(addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.close()
		err = c.login(loginOpts{target: iqn, chap: &chapCreds{user: "e2euser", secret: "e2esecret1234",
			targetUser: "tgtuser", targetSecret: "tgtsecret12345"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ping(nil); err != nil {
			t.Fatal(err)
		}
		c2, _ := dial(addr, 10*time.Second)
		defer c2.close()
		err = c2.login(loginOpts{target: iqn, chap: &chapCreds{user: "e2euser", secret: "wrongsecret12"}})
		if se, ok := err.(*loginStatusError); !ok || se.class != 2 {
			t.Fatalf("wrong secret: %v", err)
		}
	})
}
