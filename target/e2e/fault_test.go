//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// crashWriter writes verified blocks in its region and remembers, per
// block, the last acknowledged generation and any unacknowledged one.
type crashWriter struct {
	id      uint32
	start   uint64
	blocks  int
	acked   []uint32
	pending []uint32 // gen of a write sent but not acknowledged (0 = none)
	writes  int
	err     error
}

func (w *crashWriter) run(addr, target string, fua bool, stop <-chan struct{}) {
	c, err := session(addr, target)
	if err != nil {
		w.err = err
		return
	}
	defer c.close()
	if _, _, err := c.capacity(0); err != nil {
		w.err = err
		return
	}
	rng := rand.New(rand.NewPCG(uint64(w.id), 3))
	buf := make([]byte, 32*512)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n := 1 + rng.IntN(32)
		off := rng.IntN(w.blocks - n + 1)
		for i := range n {
			b := off + i
			g := max(w.acked[b], w.pending[b]) + 1
			w.pending[b] = g
			fillBlock(buf[i*512:(i+1)*512], w.id, w.start+uint64(b), g)
		}
		r, err := c.write(0, w.start+uint64(off), buf[:n*512], 512, fua)
		if err != nil {
			return // the daemon died: the pending blocks may hold either
		}
		if !r.ok() {
			w.err = fmt.Errorf("writer %d: write: %v", w.id, r)
			return
		}
		for i := range n {
			w.acked[off+i] = w.pending[off+i]
			w.pending[off+i] = 0
		}
		w.writes++
	}
}

// verify reads the region back and checks every block.
func (w *crashWriter) verify(c *clientConn) error {
	want := make([]byte, 512)
	for off := 0; off < w.blocks; off += 128 {
		n := min(128, w.blocks-off)
		r, err := c.read(0, w.start+uint64(off), n, 512)
		if err != nil || !r.ok() {
			return fmt.Errorf("read back lba %d: %v %v", w.start+uint64(off), r, err)
		}
		for i := range n {
			b := off + i
			got := r.data[i*512 : (i+1)*512]
			ok := false
			for _, g := range []uint32{w.acked[b], w.pending[b]} {
				if g == 0 {
					if w.acked[b] == 0 && bytes.Count(got, []byte{0}) == 512 {
						ok = true
					}
					continue
				}
				fillBlock(want, w.id, w.start+uint64(b), g)
				if bytes.Equal(got, want) {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("LOST WRITE at lba %d: acknowledged gen %d (pending %d), found %s",
					w.start+uint64(b), w.acked[b], w.pending[b], describeBlock(got))
			}
		}
	}
	return nil
}

// TestKill9KeepsAcknowledgedWrites kills ietd with SIGKILL while 4
// sessions write (write-through LUN; write-back LUN with FUA on every
// write), restarts it and checks that every acknowledged block reads back.
func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	for _, mode := range []struct {
		iomode string
		fua    bool
	}{{"wt", false}, {"wb", true}} {
		t.Run(fmt.Sprintf("IOMode %s FUA %v", mode.iomode, mode.fua), func(t *testing.T) {
			dir := t.TempDir()
			iqn := "iqn.2026-01.org.ietgo.e2e:crash-" + mode.iomode
			conf := renderConf(t, nil, targetSpec{name: iqn, luns: []lunSpec{
				{n: 0, path: filepath.Join(dir, "lun0.img"), size: 16 << 20, iomode: mode.iomode}}})
			d := startDaemon(t, dir, conf)
			ws := make([]*crashWriter, 4)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i := range ws {
				ws[i] = &crashWriter{id: uint32(i + 1), start: uint64(i) * 4096, blocks: 4096,
					acked: make([]uint32, 4096), pending: make([]uint32, 4096)}
				wg.Add(1)
				go func(w *crashWriter) { defer wg.Done(); w.run(d.addr, iqn, mode.fua, stop) }(ws[i])
			}
			time.Sleep(2 * time.Second)
			d.kill9()
			close(stop)
			wg.Wait()
			total := 0
			for _, w := range ws {
				if w.err != nil {
					t.Fatal(w.err)
				}
				total += w.writes
			}
			if total < 20 {
				t.Fatalf("only %d writes acknowledged before the kill", total)
			}
			d.start()
			c := mustSession(t, d.addr, iqn)
			if _, _, err := c.capacity(0); err != nil {
				t.Fatal(err)
			}
			for _, w := range ws {
				if err := w.verify(c); err != nil {
					reportTally("kill -9 under writes, read back after a restart").add(fmt.Sprintf("e2e client, IOMode %s FUA %v", mode.iomode, mode.fua), "LOST WRITE")
					t.Fatal(err)
				}
			}
			reportTally("kill -9 under writes, read back after a restart").add(fmt.Sprintf("e2e client, IOMode %s FUA %v", mode.iomode, mode.fua), "all acknowledged blocks intact")
			t.Logf("%d acknowledged writes by 4 sessions survived kill -9", total)
		})
	}
}

// TestReloadUnderIO sends SIGHUP repeatedly while sessions do verified
// I/O on the target being reloaded: targets come and go, LUNs are added to
// the busy target (a new session then does verified I/O on one), and once
// the config is broken: that reload is refused (logged) and the running
// config stays exactly as it was (ietadm --op show --volumes). No I/O error,
// no mismatch; unit attentions are retried as an initiator does.
func TestReloadUnderIO(t *testing.T) {
	realDaemonOnly(t)
	t.Parallel()
	dir := t.TempDir()
	base := simpleTarget(dir, hostileIQN, 32<<20)
	d := startDaemon(t, dir, renderConf(t, nil, base))
	var hs []*honest
	for i := range 4 {
		hs = append(hs, startHonestOpts(t, &honest{addr: d.addr, target: hostileIQN, start: uint64(i) * 4096, blocks: 4096, writer: uint32(i + 1), retryUA: true}))
	}
	for _, h := range hs {
		h.checkpoint(t, "start", 10*time.Second)
	}
	tl := reportTally("SIGHUP reloads under verified I/O (4 sessions)")
	volumes := func() string {
		t.Helper()
		r := d.adm("--op", "show", "--volumes")
		if r.code != 0 {
			t.Fatalf("ietadm --op show --volumes: exit %d %s", r.code, r.stderr)
		}
		return r.stdout
	}
	lun := func(n int) lunSpec {
		return lunSpec{n: n, path: filepath.Join(dir, fmt.Sprintf("extra-lun%d.img", n)), size: 4 << 20}
	}
	var last string
	for round := range 6 {
		busy := base
		what := ""
		switch round {
		case 0:
			what = "add a target"
		case 1, 2:
			what = fmt.Sprintf("add LUN %d to the busy target and a target", round)
		case 3:
			what = "broken config"
		case 4, 5:
			what = "another target, the busy target unchanged"
		}
		for n := 1; n <= min(round, 2); n++ {
			busy.luns = append(slices.Clone(busy.luns), lun(n))
		}
		targets := []targetSpec{busy}
		before := volumes()
		failedBefore := strings.Count(d.allLogs(), "reload failed")
		if round == 3 {
			// A broken config: the old one must stay in force.
			os.WriteFile(d.conf, []byte("Target iqn.2026-01.org.ietgo.e2e:broken\n\tLun 0 Path=/nonexistent/e2e/x.img,Type=fileio\n\tLun zero Path=,Type=nosuchtype\n"), 0o600)
		} else {
			last = fmt.Sprintf("iqn.2026-01.org.ietgo.e2e:added%d", round)
			targets = append(targets, simpleTarget(dir, last, 1<<20))
			os.WriteFile(d.conf, []byte(renderConf(t, nil, targets...)), 0o600)
		}
		if err := d.signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		d.requireAlive(t, fmt.Sprintf("SIGHUP #%d", round+1))
		for _, h := range hs {
			h.checkpoint(t, fmt.Sprintf("SIGHUP #%d (%s)", round+1, what), 10*time.Second)
		}
		if round == 3 {
			deadline := time.Now().Add(10 * time.Second)
			for strings.Count(d.allLogs(), "reload failed") == failedBefore && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			refusedLogged := strings.Count(d.allLogs(), "reload failed") > failedBefore
			after := volumes()
			tl.add("SIGHUP with a broken config", fmt.Sprintf("refused-logged=%v config-unchanged=%v", refusedLogged, after == before))
			if !refusedLogged {
				t.Errorf("SIGHUP #%d with a broken config: no \"reload failed\" log line", round+1)
			}
			if after != before {
				t.Errorf("SIGHUP #%d with a broken config changed the running config:\nbefore:\n%s\nafter:\n%s", round+1, before, after)
			}
			continue
		}
		c := mustSession(t, d.addr, "")
		names, _, err := c.sendTargets("All")
		if err != nil {
			t.Fatal(err)
		}
		ok := contains(names, hostileIQN) && contains(names, last) && len(names) == 2
		if !ok {
			t.Errorf("after SIGHUP #%d SendTargets lists %v; want %s and %s", round+1, names, hostileIQN, last)
		}
		if round > 0 && contains(names, fmt.Sprintf("iqn.2026-01.org.ietgo.e2e:added%d", round-1)) {
			ok = false
			t.Errorf("a removed target is still listed after SIGHUP #%d", round+1)
		}
		c.logout()
		// The busy target has exactly the LUNs of the file.
		if vol := volumes(); listedLUNs(vol, hostileIQN) != len(busy.luns) {
			ok = false
			t.Errorf("after SIGHUP #%d the busy target does not list its %d LUNs:\n%s", round+1, len(busy.luns), vol)
		}
		if round == 1 {
			// A new session does verified I/O on the LUN just added.
			hs = append(hs, startHonestOpts(t, &honest{addr: d.addr, target: hostileIQN, lun: 1, blocks: 4096, writer: 9, retryUA: true}))
			hs[len(hs)-1].checkpoint(t, "I/O on the added LUN", 10*time.Second)
		}
		tl.add("SIGHUP: "+what, fmt.Sprintf("applied=%v", ok))
	}
	var uas int64
	for _, h := range hs {
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}
		uas += h.uas.Load()
	}
	tl.add("I/O of the sessions on the busy target", fmt.Sprintf("no error; %d unit attentions retried", uas))
}

// listedLUNs counts the lun: lines of target name in a volume listing.
func listedLUNs(listing, name string) int {
	n, in := 0, false
	for _, line := range strings.Split(listing, "\n") {
		if strings.HasPrefix(line, "tid:") {
			in = strings.HasSuffix(line, " name:"+name)
		} else if in && strings.HasPrefix(strings.TrimSpace(line), "lun:") {
			n++
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestBackingENOSPC puts one LUN on a 1 MiB tmpfs: writes past the space
// get CHECK CONDITION, the LUN next to it keeps working, nothing crashes.
func TestBackingENOSPC(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.Mkdir(small, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "e2e-enospc", small).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	iqn := "iqn.2026-01.org.ietgo.e2e:enospc"
	conf := renderConf(t, nil, targetSpec{name: iqn, luns: []lunSpec{
		{n: 0, path: filepath.Join(small, "thin.img"), size: 16 << 20},
		{n: 1, path: filepath.Join(dir, "other.img"), size: 4 << 20},
	}})
	d := startDaemon(t, dir, conf)
	h := startHonest(t, d.addr, iqn, 1, 0, 2048, 7)
	c := mustSession(t, d.addr, iqn)
	if _, _, err := c.capacity(0); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0x5a}, 64<<10)
	var failed *scsiResult
	for lba := uint64(0); lba < 4<<20/512; lba += 128 {
		r, err := c.write(0, lba, data, 512, true)
		if err != nil {
			t.Fatalf("write at lba %d: %v", lba, err)
		}
		if !r.ok() {
			failed = r
			break
		}
	}
	if failed == nil {
		t.Fatal("4 MiB written to a 1 MiB tmpfs without an error")
	}
	// The mapping documented in target/scsi (ioError): out of space is
	// DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (07/27/07).
	if failed.status != 0x02 || !failed.hasSense || failed.sense != (senseInfo{key: 0x07, asc: 0x27, ascq: 0x07}) {
		t.Fatalf("ENOSPC answered with %v; want CHECK CONDITION, DATA PROTECT 07/27/07 (SPACE ALLOCATION FAILED WRITE PROTECT)", failed)
	}
	t.Logf("ENOSPC answered with %v", failed)
	// Reads of what fit still work.
	if r, err := c.read(0, 0, 8, 512); err != nil || !r.ok() || !bytes.Equal(r.data, data[:4096]) {
		t.Fatalf("read after ENOSPC: %v %v", r, err)
	}
	h.checkpoint(t, "ENOSPC on the other LUN", 10*time.Second)
	d.requireAlive(t, "ENOSPC")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}
