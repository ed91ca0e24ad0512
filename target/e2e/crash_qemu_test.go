//go:build linux

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestKill9QemuIOKeepsAcknowledgedWrites is the crash test with a real
// initiator: qemu-io (libiscsi) writes 4 KiB blocks, each at its own
// offset with its own pattern, one after the other; ietd gets SIGKILL in
// the middle. Every write qemu-io reported done ("wrote ... at offset N")
// was acknowledged by the target, so after a restart each of them must
// read back with its pattern. Write-through LUN with plain writes, and a
// write-back LUN with FUA on every write (qemu-io write -f).
func TestKill9QemuIOKeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	qemuIO, err := exec.LookPath("qemu-io")
	if err != nil {
		t.Skip("qemu-io not installed (qemu-utils)")
	}
	requireQemuISCSI(t)
	for _, mode := range []struct {
		iomode string
		fua    bool
	}{{"wt", false}, {"wb", true}} {
		t.Run(fmt.Sprintf("IOMode %s FUA %v", mode.iomode, mode.fua), func(t *testing.T) {
			const blocks = 16384 // 4 KiB each: a 64 MiB sparse LUN, far more than get done before the kill
			dir := t.TempDir()
			iqn := "iqn.2026-01.org.ietgo.e2e:qcrash-" + mode.iomode
			d := startDaemon(t, dir, renderConf(t, nil, targetSpec{name: iqn, luns: []lunSpec{
				{n: 0, path: filepath.Join(dir, "lun0.img"), size: blocks * 4096, iomode: mode.iomode}}}))
			pattern := func(i int) byte { return byte(i*7%255 + 1) } // never 0 (unwritten)
			args := []string{"--image-opts", fmt.Sprintf(
				"driver=iscsi,transport=tcp,portal=%s,target=%s,lun=0,initiator-name=iqn.2026-01.org.ietgo.e2e:qemu-io",
				d.addr, iqn)}
			for i := range blocks {
				f := ""
				if mode.fua {
					f = "-f "
				}
				args = append(args, "-c", fmt.Sprintf("write %s-P %d %d 4096", f, pattern(i), i*4096))
			}
			cmd := exec.Command(qemuIO, args...)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Collect the acknowledged offsets as qemu-io reports them.
			wrote := regexp.MustCompile(`^wrote 4096/4096 bytes at offset (\d+)$`)
			var mu sync.Mutex
			acked := map[int]bool{}
			var lines []string
			readDone := make(chan struct{})
			go func() {
				defer close(readDone)
				br := bufio.NewReader(out)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						// The last line, cut by the kill, has no newline:
						// "offset 13189" of "offset 13189120" is no ack.
						return
					}
					line = line[:len(line)-1]
					mu.Lock()
					if m := wrote.FindStringSubmatch(line); m != nil {
						off, _ := strconv.Atoi(m[1])
						acked[off] = true
					} else if len(lines) < 20 {
						lines = append(lines, line)
					}
					mu.Unlock()
				}
			}()
			count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
			// Kill ietd once a few hundred writes are acknowledged (bounded
			// wait; qemu-io's output comes in buffered chunks).
			deadline := time.Now().Add(60 * time.Second)
			for count() < 300 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			n := count()
			d.kill9()
			// qemu-io would retry the connection: stop it by its pid.
			time.Sleep(200 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
			<-readDone
			cmd.Wait()
			mu.Lock()
			total := len(acked)
			head := lines
			mu.Unlock()
			if n < 300 {
				t.Fatalf("only %d writes acknowledged in 60 s; qemu-io said: %q", n, head)
			}
			if total >= blocks {
				t.Fatalf("all %d writes finished before the kill: the test proved nothing", total)
			}
			d.start()
			c := mustSession(t, d.addr, iqn)
			if _, _, err := c.capacity(0); err != nil {
				t.Fatal(err)
			}
			bad := 0
			for off := range acked {
				r, err := c.read(0, uint64(off/512), 8, 512)
				if err != nil {
					t.Fatal(err)
				}
				// A failed or short read must not pass as "no byte
				// differed": every acknowledged block is read in full.
				if !r.ok() || len(r.data) != 4096 {
					t.Fatalf("read back of acknowledged offset %d: %v, %d bytes; want GOOD and 4096 bytes", off, r, len(r.data))
				}
				want := pattern(off / 4096)
				for j, b := range r.data {
					if b != want {
						if bad++; bad <= 5 {
							t.Errorf("LOST WRITE: offset %d byte %d = %#x, want %#x", off, j, b, want)
						}
						break
					}
				}
			}
			reportTally("kill -9 under writes, read back after a restart").add(fmt.Sprintf("qemu-io, IOMode %s FUA %v", mode.iomode, mode.fua), fmt.Sprintf("lost %d", bad))
			if bad > 0 {
				t.Fatalf("%d of %d acknowledged writes lost", bad, total)
			}
			t.Logf("%d writes acknowledged to qemu-io before kill -9 (of %d issued); all read back intact", total, blocks)
		})
	}
}

// requireQemuISCSI skips when qemu has no iscsi block driver.
func requireQemuISCSI(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so", "/usr/lib/aarch64-linux-gnu/qemu/block-iscsi.so"} {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	if out, _ := exec.Command("qemu-img", "--help").CombinedOutput(); regexp.MustCompile(`\biscsi\b`).Match(out) {
		return
	}
	t.Skip("qemu has no iscsi driver (qemu-block-extra)")
}
