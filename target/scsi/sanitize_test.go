package scsi

import (
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

func sanitizeOverwrite(immed, ause bool, pattern byte) ([]byte, []byte) {
	c := cdb(0x48, 10)
	c[1] = 0x01
	if immed {
		c[1] |= 0x80
	}
	if ause {
		c[1] |= 0x20
	}
	p := make([]byte, 4+512)
	p[0] = 1 // one pass
	binary.BigEndian.PutUint16(p[2:], 512)
	for i := 4; i < len(p); i++ {
		p[i] = pattern
	}
	binary.BigEndian.PutUint16(c[7:], uint16(len(p)))
	return c, p
}

// waitGood polls TEST UNIT READY (bounded) until the unit is ready.
func waitGood(t *testing.T, tg *Target, n *Nexus) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		if r := run(tg, n, cdb(0, 6), nil); r.Status == StatusGood {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the unit did not become ready")
}

// While a SANITIZE runs, commands other than INQUIRY, REPORT LUNS and
// REQUEST SENSE get NOT READY / SANITIZE IN PROGRESS with a progress
// indication, from every nexus; afterwards the medium holds the pattern.
func TestSanitizeInProgress(t *testing.T) {
	gs := newGateStore(backing.NewMemory(1 << 20))
	tg, a, b := storeTarget(t, gs)
	gs.armWrite.Store(true)
	c, p := sanitizeOverwrite(true, false, 0x5c)
	if r := run(tg, a, c, p); r.Status != StatusGood {
		t.Fatalf("SANITIZE IMMED: %+v", r)
	}
	<-gs.stopped
	gs.armWrite.Store(false)
	for _, cmd := range [][]byte{cdb(0, 6), rw16(0x88, 0, 1, 0), cdb(0x1b, 6)} {
		r := run(tg, b, cmd, nil)
		if senseKey(r) != keyNotReady || senseASC(r) != ascNotReadySanitize || r.Sense[15]&0x80 == 0 {
			t.Fatalf("%#x during SANITIZE: %+v", cmd[0], r)
		}
	}
	inq := cdb(0x12, 6)
	inq[4] = 96
	if r := run(tg, b, inq, nil); r.Status != StatusGood {
		t.Fatalf("INQUIRY during SANITIZE: %+v", r)
	}
	rs := cdb(0x03, 6)
	rs[4] = 18
	if r := run(tg, b, rs, nil); r.Status != StatusGood || r.Data[2]&0x0f != keyNotReady || r.Data[12] != 0x04 || r.Data[13] != 0x1b {
		t.Fatalf("REQUEST SENSE during SANITIZE: %+v", r)
	}
	c2, p2 := sanitizeOverwrite(false, false, 0)
	if r := run(tg, b, c2, p2); senseASC(r) != ascNotReadySanitize {
		t.Fatalf("second SANITIZE while one runs: %+v", r)
	}
	close(gs.resume)
	waitGood(t, tg, a)
	if r := run(tg, b, rw16(0x88, 100, 1, 0), nil); !bytes.Equal(r.Data, bytes.Repeat([]byte{0x5c}, 512)) {
		t.Fatal("the medium does not hold the sanitize pattern")
	}
}

// A SANITIZE that fails leaves the unit in sanitize failure mode: medium
// access gets MEDIUM ERROR / SANITIZE COMMAND FAILED until a sanitize
// completes; EXIT FAILURE MODE is allowed only if the failed one set AUSE.
func TestSanitizeFailureMode(t *testing.T) {
	f := backing.NewFaulty(backing.NewMemory(1 << 20))
	tg, a, _ := storeTarget(t, f)
	f.FailEIO(512*1000, 512)
	c, p := sanitizeOverwrite(false, false, 0x11)
	if r := run(tg, a, c, p); senseKey(r) != keyMediumError {
		t.Fatalf("failing SANITIZE: %+v", r)
	}
	f.Clear()
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); senseKey(r) != keyMediumError || senseASC(r) != ascSanitizeFailed {
		t.Fatalf("READ in sanitize failure mode: %+v", r)
	}
	exit := cdb(0x48, 10)
	exit[1] = 0x1f
	if r := run(tg, a, exit, nil); senseASC(r) != ascInvalidFieldCDB {
		t.Fatalf("EXIT FAILURE MODE after a failure without AUSE: %+v", r)
	}
	if r := run(tg, a, c, p); r.Status != StatusGood {
		t.Fatalf("SANITIZE retried: %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood {
		t.Fatalf("READ after a completed SANITIZE: %+v", r)
	}
	f.FailEIO(512*1000, 512)
	ca, pa := sanitizeOverwrite(false, true, 0x22)
	run(tg, a, ca, pa)
	f.Clear()
	if r := run(tg, a, exit, nil); r.Status != StatusGood {
		t.Fatalf("EXIT FAILURE MODE after an AUSE failure: %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 0, 1, 0), nil); r.Status != StatusGood {
		t.Fatalf("READ after EXIT FAILURE MODE: %+v", r)
	}
}

// Aborting a SANITIZE command does not stop the operation (SBC-3).
func TestSanitizeContinuesAfterAbort(t *testing.T) {
	gs := newGateStore(backing.NewMemory(1 << 20))
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:san")
	tc.LUNs = []*config.LUN{memLUN(0, nil)}
	tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) { return gs, nil }})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tc.Name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil)
	gs.armWrite.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	c, p := sanitizeOverwrite(false, false, 0x33)
	res := make(chan Result, 1)
	go func() { res <- tg.Execute(ctx, &Command{Nexus: a, CDB: c, DataOut: p, ExpectedLen: uint32(len(p))}) }()
	<-gs.stopped
	gs.armWrite.Store(false)
	cancel()
	if r := <-res; r.Status != StatusTaskAborted {
		t.Fatalf("aborted SANITIZE: %+v", r)
	}
	if r := run(tg, a, cdb(0, 6), nil); senseASC(r) != ascNotReadySanitize {
		t.Fatalf("the sanitize stopped with its command: %+v", r)
	}
	close(gs.resume)
	waitGood(t, tg, a)
	if r := run(tg, a, rw16(0x88, 2047, 1, 0), nil); !bytes.Equal(r.Data, bytes.Repeat([]byte{0x33}, 512)) {
		t.Fatal("the sanitize did not complete")
	}
}

// A pattern shorter than the block and not dividing it restarts at every
// logical block (each block starts with the pattern), with the inverted
// pattern on the second pass of INVERT.
func TestSanitizePatternStartsEachBlock(t *testing.T) {
	tg, a, _ := storeTarget(t, backing.NewMemory(1<<20))
	pat := []byte{1, 2, 3}
	for _, invert := range []bool{false, true} {
		c := cdb(0x48, 10)
		c[1] = 0x01
		p := make([]byte, 4+len(pat))
		p[0] = 1
		want := pat
		if invert {
			p[0] = 0x80 | 2 // INVERT, two passes: the last one inverted
			want = []byte{^pat[0], ^pat[1], ^pat[2]}
		}
		binary.BigEndian.PutUint16(p[2:], uint16(len(pat)))
		copy(p[4:], pat)
		binary.BigEndian.PutUint16(c[7:], uint16(len(p)))
		if r := run(tg, a, c, p); r.Status != StatusGood {
			t.Fatalf("SANITIZE OVERWRITE: %+v", r)
		}
		block := bytes.Repeat(want, 512/len(want)+1)[:512]
		for _, lba := range []uint64{0, 1, 2, 2047} {
			r := run(tg, a, rw16(0x88, lba, 1, 0), nil)
			if !bytes.Equal(r.Data, block) {
				t.Fatalf("invert %v: LBA %d starts % x, want % x", invert, lba, r.Data[:6], block[:6])
			}
		}
	}
}

// A SANITIZE is said at the default level (who started it, and when it
// ended), since it erases the LUN; an IMMED one too, after its command.
func TestSanitizeLogged(t *testing.T) {
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.WarnLevel)
	tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:sanlog")
	tc.LUNs = []*config.LUN{{Number: 0, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "m"}}}
	tg, err := NewTarget(tc, Options{Log: logrus.NewEntry(logger), OpenStore: func(*config.LUN) (backing.Store, error) {
		return backing.NewMemory(1 << 20), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := &Nexus{ID: 1, InitiatorName: "iqn.2026-01.org.ietgo:who", ISID: [6]byte{1}, TargetName: tc.Name}
	tg.NexusAttach(n)
	run(tg, n, cdb(0, 6), nil)
	c, p := sanitizeOverwrite(true, false, 0x5c)
	if r := run(tg, n, c, p); r.Status != StatusGood {
		t.Fatalf("SANITIZE IMMED: %+v", r)
	}
	waitGood(t, tg, n)
	var lines []string
	for i := 0; i < 5000 && len(lines) < 2; i++ {
		lines = lines[:0]
		for _, e := range hook.AllEntries() {
			if e.Data["initiator"] == n.InitiatorName && e.Data["lun"] == uint64(0) {
				lines = append(lines, e.Message)
			}
		}
		time.Sleep(time.Millisecond)
	}
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "SANITIZE OVERWRITE (1 pass(es)) started: the LUN's 1048576 bytes are erased") ||
		!strings.HasPrefix(lines[1], "SANITIZE OVERWRITE (1 pass(es)) done in ") {
		t.Fatalf("log lines %q", lines)
	}
}

// The progress of a long sanitize: each tenth at most once, not within
// 10 s of the start or of the line before, never at 100% (the done line
// says that).
func TestSanitizeReporter(t *testing.T) {
	logger, hook := test.NewNullLogger()
	t0 := time.Unix(1000, 0)
	r := sanitizeReporter{log: logrus.NewEntry(logger), total: 1000, start: t0}
	steps := []struct {
		done int64
		at   time.Duration
	}{
		{100, 5 * time.Second},   // 10%, but within 10 s of the start
		{150, 11 * time.Second},  // 10%: logged
		{190, 15 * time.Second},  // still 10%
		{300, 18 * time.Second},  // 30%, but 7 s after the last line
		{350, 22 * time.Second},  // 30%: logged
		{1000, 60 * time.Second}, // done: not a progress line
	}
	for _, s := range steps {
		r.progress(s.done, t0.Add(s.at))
	}
	var got []string
	for _, e := range hook.AllEntries() {
		got = append(got, e.Message)
	}
	want := []string{"SANITIZE 10% done (11s so far, about 1m2s left)", "SANITIZE 30% done (22s so far, about 41s left)"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("progress lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
