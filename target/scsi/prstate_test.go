package scsi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"golang.org/x/sys/unix"
)

const prTestTarget = "iqn.2026-01.org.ietgo:unit"

// newStateTarget is newTestTarget with a state directory (LUNs 0 and 1);
// hook collects the log. The power-on unit attentions are consumed.
func newStateTarget(t *testing.T, dir string) (*Target, *Nexus, *Nexus, *test.Hook) {
	t.Helper()
	return newNamedStateTarget(t, dir, prTestTarget)
}

func newNamedStateTarget(t *testing.T, dir, name string) (*Target, *Nexus, *Nexus, *test.Hook) {
	t.Helper()
	tc := config.NewTarget(1, name)
	for n := uint64(0); n < 2; n++ {
		tc.LUNs = append(tc.LUNs, &config.LUN{Number: n, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "mem"}})
	}
	lg, hook := test.NewNullLogger()
	tg, err := NewTarget(tc, Options{StateDir: dir, Log: logrus.NewEntry(lg), OpenStore: func(*config.LUN) (backing.Store, error) {
		return backing.NewMemory(1 << 20), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{0x80, 0, 0, 0, 0, 1}, TargetName: tc.Name}
	b := &Nexus{ID: 2, InitiatorName: "iqn.b", ISID: [6]byte{0x80, 0, 0, 0, 0, 2}, TargetName: tc.Name}
	tg.NexusAttach(a)
	tg.NexusAttach(b)
	for _, n := range []*Nexus{a, b} {
		for lun := range tg.luns {
			c := &Command{Nexus: n, LUN: lun, CDB: cdb(0x00, 6), ExpectedLen: 0}
			tg.Execute(t.Context(), c)
		}
	}
	return tg, a, b, hook
}

func prOutAPTPL(sa, typ byte, key, sak uint64, aptpl bool) ([]byte, []byte) {
	c, p := prOut(sa, typ, key, sak)
	if aptpl {
		p[20] |= 0x01
	}
	return c, p
}

// prView is what READ KEYS and READ RESERVATION return.
func prView(t *testing.T, tg *Target, n *Nexus) string {
	t.Helper()
	var out []string
	for _, sa := range []byte{0, 1} {
		c := cdb(0x5e, 10)
		c[1] = sa
		binary.BigEndian.PutUint16(c[7:], 512)
		r := run(tg, n, c, nil)
		if r.Status != StatusGood {
			t.Fatalf("PERSISTENT RESERVE IN %d: %+v", sa, r)
		}
		out = append(out, fmt.Sprintf("% x", r.Data))
	}
	return strings.Join(out, " / ")
}

func setupAPTPL(t *testing.T, tg *Target, a, b *Nexus) {
	t.Helper()
	for _, s := range []struct {
		n       *Nexus
		sa, typ byte
		key     uint64
		sak     uint64
	}{{a, 0, 0, 0, 0xa1}, {b, 0, 0, 0, 0xb2}, {a, 1, prWERO, 0xa1, 0}} {
		c, p := prOutAPTPL(s.sa, s.typ, s.key, s.sak, true)
		if r := run(tg, s.n, c, p); r.Status != StatusGood {
			t.Fatalf("PR OUT sa %d from %s: %+v", s.sa, s.n.InitiatorName, r)
		}
	}
}

// APTPL registrations and the reservation are the same after a restart
// (a new Target on the same state directory); LUN 1 stays without any.
func TestAPTPLStateSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tg, a, b, _ := newStateTarget(t, dir)
	setupAPTPL(t, tg, a, b)
	want := prView(t, tg, a)
	// A leftover temporary file of a crashed write is not read.
	os.WriteFile(prStatePath(dir, prTestTarget, 0)+".tmp123", []byte("{garbage"), 0o600)
	fi, err := os.Stat(prStatePath(dir, prTestTarget, 0))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("state file mode %v: readable by others", fi.Mode())
	}
	tg2, a2, _, hook := newStateTarget(t, dir)
	if len(tg2.luns) != 2 {
		t.Fatalf("LUNs served after restart: %d (%v)", len(tg2.luns), hook.AllEntries())
	}
	if got := prView(t, tg2, a2); got != want {
		t.Fatalf("after restart:\n%s\nwant\n%s", got, want)
	}
	// The reservation is in force again: under Write Exclusive,
	// Registrants Only an unregistered nexus may not write.
	c := rw16(0x8a, 0, 1, 0)
	other := &Nexus{ID: 3, InitiatorName: "iqn.c", ISID: [6]byte{0x80, 0, 0, 0, 0, 3}, TargetName: prTestTarget}
	tg2.NexusAttach(other)
	run(tg2, other, cdb(0, 6), nil)
	if r := run(tg2, other, c, make([]byte, 512)); r.Status != StatusReservationConflict {
		t.Fatalf("unregistered write after restart: %+v", r)
	}
	lun1 := &Command{Nexus: a2, LUN: 1, CDB: cdb(0x5e, 10), ExpectedLen: 512}
	binary.BigEndian.PutUint16(lun1.CDB[7:], 512)
	if r := tg2.Execute(t.Context(), lun1); r.Status != StatusGood || binary.BigEndian.Uint32(r.Data[4:]) != 0 {
		t.Fatalf("LUN 1 took LUN 0's registrations: %+v", r)
	}
	// APTPL=0 on a REGISTER removes the file: the next restart has none.
	cc, p := prOutAPTPL(0, 0, 0xa1, 0xa1, false)
	if r := run(tg2, a2, cc, p); r.Status != StatusGood {
		t.Fatalf("register APTPL=0: %+v", r)
	}
	if _, err := os.Stat(prStatePath(dir, prTestTarget, 0)); !os.IsNotExist(err) {
		t.Fatalf("state file after APTPL=0: %v", err)
	}
}

// A change that cannot be saved fails and is not made.
func TestAPTPLWriteFailureFailsTheCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tg, a, b, hook := newStateTarget(t, dir)
	setupAPTPL(t, tg, a, b)
	before := prView(t, tg, a)
	file, _ := os.ReadFile(prStatePath(dir, prTestTarget, 0))
	for _, tc := range []struct {
		err       error
		key       byte
		asc       asc
		sa, typ   byte
		rk, sak   uint64
		from      *Nexus
		operation string
	}{
		{syscall.ENOSPC, keyIllegalRequest, ascInsufficientRegResources, 0, 0, 0xb2, 0xb3, b, "re-register"},
		{syscall.EIO, keyHardwareError, ascInternalTargetFailure, 5, prEA, 0xb2, 0xa1, b, "preempt and abort"},
		{syscall.EIO, keyHardwareError, ascInternalTargetFailure, 2, prWERO, 0xa1, 0, a, "release"},
		{syscall.EDQUOT, keyIllegalRequest, ascInsufficientRegResources, 3, 0, 0xa1, 0, a, "clear"},
	} {
		fail := &os.PathError{Op: "write", Path: "x", Err: tc.err}
		writeState = func(string, []byte) error { return fail }
		removeState = func(string) error { return fail }
		c, p := prOutAPTPL(tc.sa, tc.typ, tc.rk, tc.sak, true)
		r := run(tg, tc.from, c, p)
		writeState, removeState = defaultWriteState, defaultRemoveState
		if r.Status != StatusCheckCondition || senseKey(r) != tc.key || senseASC(r) != tc.asc {
			t.Fatalf("%s with %v: %+v", tc.operation, tc.err, r)
		}
		if got := prView(t, tg, a); got != before {
			t.Fatalf("%s that could not be saved changed the state:\n%s\nwas\n%s", tc.operation, got, before)
		}
		if got, _ := os.ReadFile(prStatePath(dir, prTestTarget, 0)); !bytes.Equal(got, file) {
			t.Fatalf("%s: file changed", tc.operation)
		}
		// Nobody was told of a change that did not happen.
		if r := run(tg, a, cdb(0, 6), nil); r.Status != StatusGood {
			t.Fatalf("%s: unit attention for a change not made: %+v", tc.operation, r)
		}
	}
	if !strings.Contains(logText(hook), prStatePath(dir, prTestTarget, 0)) {
		t.Fatalf("failure log does not name the file: %s", logText(hook))
	}
	// A real failure: the state directory became a file.
	os.RemoveAll(dir)
	os.WriteFile(dir, nil, 0o600)
	c, p := prOutAPTPL(0, 0, 0xb2, 0xb4, true)
	if r := run(tg, b, c, p); r.Status != StatusCheckCondition || senseKey(r) != keyHardwareError {
		t.Fatalf("register with the state directory gone: %+v", r)
	}
	if got := prView(t, tg, a); got != before {
		t.Fatalf("state changed though not saved:\n%s\nwas\n%s", got, before)
	}
}

var defaultWriteState, defaultRemoveState = writeState, removeState

func logText(h *test.Hook) string {
	var b strings.Builder
	for _, e := range h.AllEntries() {
		s, _ := e.String()
		b.WriteString(s)
	}
	return b.String()
}

// Without a state directory APTPL cannot be honoured: PTPL_C is 0 and
// APTPL=1 is refused.
func TestAPTPLRefusedWithoutStateDir(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	rc := cdb(0x5e, 10)
	rc[1] = 2
	binary.BigEndian.PutUint16(rc[7:], 8)
	if r := run(tg, a, rc, nil); r.Status != StatusGood || r.Data[2]&0x01 != 0 {
		t.Fatalf("REPORT CAPABILITIES without a state directory: %+v", r)
	}
	c, p := prOutAPTPL(0, 0, 0, 0xa, true)
	if r := run(tg, a, c, p); senseKey(r) != keyIllegalRequest || senseASC(r) != ascInvalidFieldParam {
		t.Fatalf("APTPL=1 without a state directory: %+v", r)
	}
	if got := prView(t, tg, a); !strings.HasPrefix(got, "00 00 00 00 00 00 00 00 /") {
		t.Fatalf("refused registration was made: %s", got)
	}
	tg2, a2, _, _ := newStateTarget(t, t.TempDir())
	if r := run(tg2, a2, rc, nil); r.Status != StatusGood || r.Data[2]&0x01 == 0 {
		t.Fatalf("REPORT CAPABILITIES with a state directory: %+v", r)
	}
}

// A state file that cannot be trusted keeps its LUN out of service with
// an error naming it; it is left as it is, and the other LUN is served.
func TestCorruptPRStateKeepsLUNOut(t *testing.T) {
	good := func() []byte {
		d := filepath.Join(t.TempDir(), "s")
		tg, a, b, _ := newStateTarget(t, d)
		setupAPTPL(t, tg, a, b)
		g, err := os.ReadFile(prStatePath(d, prTestTarget, 0))
		if err != nil {
			t.Fatal(err)
		}
		return g
	}()
	var f prFile
	if err := json.Unmarshal(good, &f); err != nil {
		t.Fatal(err)
	}
	edit := func(fn func(*prFile)) []byte {
		g := f
		g.Regs = map[string]uint64{}
		for k, v := range f.Regs {
			g.Regs[k] = v
		}
		g.Order = append([]string(nil), f.Order...)
		fn(&g)
		b, _ := json.Marshal(g)
		return b
	}
	cases := map[string][]byte{
		"empty":          {},
		"truncated":      good[:len(good)/2],
		"random":         {0x8b, 0x1f, 0x00, 0xff, 0x13, 0x37, 'x'},
		"null":           []byte("null"),
		"object":         []byte("{}"),
		"two values":     append(append([]byte{}, good...), good...),
		"trailing brace": append(append([]byte{}, good...), '}'),
		"mirror record":  []byte(`{"device":"device0","failed":[]}`),
		"newer version":  edit(func(g *prFile) { g.Version = 99 }),
		"other LUN":      edit(func(g *prFile) { g.LUN = 1 }),
		"other target":   edit(func(g *prFile) { g.Target = "iqn.2026-01.org.ietgo:other" }),
		"legacy of other target": edit(func(g *prFile) {
			g.Version, g.Target = 0, ""
			for k, v := range f.Regs {
				delete(g.Regs, k)
				nk := strings.Replace(k, prTestTarget, "iqn.2026-01.org.ietgo:other", 1)
				g.Regs[nk] = v
				for i := range g.Order {
					if g.Order[i] == k {
						g.Order[i] = nk
					}
				}
			}
			g.Holder = strings.Replace(g.Holder, prTestTarget, "iqn.2026-01.org.ietgo:other", 1)
		}),
		"holder not registered": edit(func(g *prFile) { g.Holder = "iqn.z,i,0x800000000009|" + prTestTarget }),
		"bad type":              edit(func(g *prFile) { g.Type = 2 }),
		"type without holder":   edit(func(g *prFile) { g.Holder = "" }),
		"order short":           edit(func(g *prFile) { g.Order = g.Order[:1] }),
		"order twice":           edit(func(g *prFile) { g.Order[1] = g.Order[0] }),
		"key zero":              edit(func(g *prFile) { g.Regs[g.Order[1]] = 0 }),
		"APTPL off":             edit(func(g *prFile) { g.APTPL = false }),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			os.MkdirAll(dir, 0o700)
			p := prStatePath(dir, prTestTarget, 0)
			if err := os.WriteFile(p, content, 0o600); err != nil {
				t.Fatal(err)
			}
			tg, _, _, hook := newStateTarget(t, dir)
			if _, ok := tg.luns[0]; ok {
				t.Fatalf("LUN 0 served over %s state", name)
			}
			if _, ok := tg.luns[1]; !ok {
				t.Fatal("LUN 1 left out too")
			}
			if msg := logText(hook); !strings.Contains(msg, p) {
				t.Fatalf("error does not name %s: %s", p, msg)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, content) {
				t.Fatal("the untrusted file was changed")
			}
		})
	}
	t.Run("not a regular file", func(t *testing.T) {
		for _, mk := range []func(p string) error{
			func(p string) error { return os.Mkdir(p, 0o700) },
			func(p string) error { return unix.Mkfifo(p, 0o600) },
			func(p string) error { return os.Symlink("/dev/zero", p) },
		} {
			dir := filepath.Join(t.TempDir(), "state")
			os.MkdirAll(dir, 0o700)
			p := prStatePath(dir, prTestTarget, 0)
			if err := mk(p); err != nil {
				t.Fatal(err)
			}
			tg, _, _, hook := newStateTarget(t, dir)
			if _, ok := tg.luns[0]; ok || !strings.Contains(logText(hook), p) {
				t.Fatalf("LUN served over a non-regular state file, or no error naming it: %s", logText(hook))
			}
		}
	})
	t.Run("huge", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		os.MkdirAll(dir, 0o700)
		p := prStatePath(dir, prTestTarget, 0)
		fh, _ := os.Create(p)
		fh.Truncate(1 << 30)
		fh.Close()
		tg, _, _, hook := newStateTarget(t, dir)
		if _, ok := tg.luns[0]; ok || !strings.Contains(logText(hook), "more than a state file holds") {
			t.Fatalf("huge file: %s", logText(hook))
		}
	})
	t.Run("symlink to a good file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		os.MkdirAll(dir, 0o700)
		real := filepath.Join(t.TempDir(), "real.json")
		os.WriteFile(real, good, 0o600)
		os.Symlink(real, prStatePath(dir, prTestTarget, 0))
		tg, a, _, hook := newStateTarget(t, dir)
		if _, ok := tg.luns[0]; !ok {
			t.Fatalf("LUN 0 left out: %s", logText(hook))
		}
		if v := prView(t, tg, a); strings.HasPrefix(v, "00 00 00 00 00 00 00 00 /") {
			t.Fatalf("state not loaded: %s", v)
		}
	})
	t.Run("legacy file", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		os.MkdirAll(dir, 0o700)
		// The format before the file named its target and LUN.
		legacy := edit(func(g *prFile) { g.Version, g.Target, g.LUN = 0, "", 0 })
		var m map[string]any
		json.Unmarshal(legacy, &m)
		delete(m, "Version")
		delete(m, "Target")
		delete(m, "LUN")
		legacy, _ = json.Marshal(m)
		os.WriteFile(prStatePath(dir, prTestTarget, 0), legacy, 0o600)
		tg, a, _, hook := newStateTarget(t, dir)
		if _, ok := tg.luns[0]; !ok {
			t.Fatalf("legacy state refused: %s", logText(hook))
		}
		if v := prView(t, tg, a); strings.HasPrefix(v, "00 00 00 00 00 00 00 00 /") {
			t.Fatalf("legacy state not loaded: %s", v)
		}
	})
}

// FuzzDecodePRState: the decoder never panics, and what it accepts is
// written back as a file it accepts again with the same state.
func FuzzDecodePRState(f *testing.F) {
	k := "iqn.a,i,0x800000000001|" + prTestTarget
	f.Add([]byte(`{"Version":1,"Target":"` + prTestTarget + `","LUN":0,"Generation":3,"Regs":{"` + k + `":161},"Order":["` + k + `"],"Holder":"` + k + `","Type":5,"APTPL":true}`))
	f.Add([]byte(`{"Generation":1,"Regs":{"` + k + `":1},"Order":["` + k + `"],"Holder":"","Type":0,"APTPL":true}`))
	f.Add([]byte(`{"device":"d","failed":[]}`))
	f.Add([]byte("null"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodePRState(b, prTestTarget, 0)
		if err != nil {
			return
		}
		p := prState{Regs: st.Regs, Order: st.Order, Holder: st.Holder, Type: st.Type, APTPL: st.APTPL, Generation: st.Generation}
		again, err := decodePRState(p.encode(prTestTarget, 0), prTestTarget, 0)
		if err != nil {
			t.Fatalf("re-encoded state refused: %v", err)
		}
		if again.Holder != st.Holder || again.Type != st.Type || again.Generation != st.Generation ||
			fmt.Sprint(again.Order) != fmt.Sprint(st.Order) || fmt.Sprint(again.Regs) != fmt.Sprint(st.Regs) {
			t.Fatalf("state changed through a write: %+v then %+v", st, again)
		}
	})
}

// A reload that removes a LUN with APTPL state says the file stays, and
// the LUN added back has its registrations and reservation again.
func TestRemovedLUNKeepsAPTPLState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tg, a, b, hook := newStateTarget(t, dir)
	setupAPTPL(t, tg, a, b)
	want := prView(t, tg, a)
	full := tg.cfg
	without := *full
	without.LUNs = full.LUNs[1:]
	if err := tg.Reconfigure(&without); err != nil {
		t.Fatal(err)
	}
	file := prStatePath(dir, prTestTarget, 0)
	var noted bool
	for _, e := range hook.AllEntries() {
		if e.Data["file"] == file && e.Data["lun"] == uint64(0) && strings.Contains(e.Message, "remove the file") {
			noted = true
		}
	}
	if !noted {
		t.Fatalf("no log line names the kept state file %s:\n%s", file, logText(hook))
	}
	if strings.Contains(logText(hook), "lun=1") {
		t.Fatalf("LUN 1 (no state) logged:\n%s", logText(hook))
	}
	if err := tg.Reconfigure(full); err != nil {
		t.Fatal(err)
	}
	// The unit attentions of the reloads (REPORTED LUNS DATA HAS CHANGED).
	for i := 0; i < 4 && run(tg, a, cdb(0, 6), nil).Status != StatusGood; i++ {
	}
	if got := prView(t, tg, a); got != want {
		t.Fatalf("re-added LUN's reservations:\n%s\nwant\n%s", got, want)
	}
}

// Targets whose names differ only in characters a file name does not take
// (a:b and a_b) keep their states apart; one differing only in case is
// the same target (iSCSI names compare without case) and has the file.
func TestPRStateFileNamesDoNotCollide(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	const colon, under = "iqn.2026-01.org.ietgo:x:y", "iqn.2026-01.org.ietgo:x_y"
	if prStatePath(dir, colon, 0) == prStatePath(dir, under, 0) {
		t.Fatal("a:b and a_b share a state file name")
	}
	if prStatePath(dir, colon, 0) != prStatePath(dir, strings.ToUpper(colon), 0) {
		t.Fatal("names differing in case have different state files")
	}
	if long := prStatePath(dir, "iqn.2026-01.org.ietgo:"+strings.Repeat("é", 100), 0); len(filepath.Base(long)) > 255 {
		t.Fatalf("state file name of %d bytes", len(filepath.Base(long)))
	}
	tg, a, b, _ := newNamedStateTarget(t, dir, colon)
	setupAPTPL(t, tg, a, b)
	want := prView(t, tg, a)
	tu, ua, _, _ := newNamedStateTarget(t, dir, under)
	c, p := prOutAPTPL(0, 0, 0, 0xee, true)
	if r := run(tu, ua, c, p); r.Status != StatusGood {
		t.Fatalf("register on %s: %+v", under, r)
	}
	tg2, a2, _, hook := newNamedStateTarget(t, dir, strings.ToUpper(colon))
	if len(tg2.luns) != 2 {
		t.Fatalf("LUNs served after restart: %d\n%s", len(tg2.luns), logText(hook))
	}
	if got := prView(t, tg2, a2); got != want {
		t.Fatalf("%s after %s registered:\n%s\nwant\n%s", colon, under, got, want)
	}
}

// A state file under the name daemons before used (a:b and a_b shared
// it) is read and moved to the LUN's own name; one of the other target
// of that shared name is left alone.
func TestLegacyPRStateFileMoves(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	const colon, under = "iqn.2026-01.org.ietgo:x:y", "iqn.2026-01.org.ietgo:x_y"
	tg, a, b, _ := newNamedStateTarget(t, dir, colon)
	setupAPTPL(t, tg, a, b)
	want := prView(t, tg, a)
	cur, legacy := prStatePath(dir, colon, 0), prLegacyStatePath(dir, colon, 0)
	if legacy != prLegacyStatePath(dir, under, 0) {
		t.Fatal("the legacy names of a:b and a_b differ: this test needs them shared")
	}
	if err := os.Rename(cur, legacy); err != nil {
		t.Fatal(err)
	}
	// The other target of the shared legacy name: not its state.
	tu, ua, _, hook := newNamedStateTarget(t, dir, under)
	if len(tu.luns) != 2 {
		t.Fatalf("%s kept a LUN out over %s's legacy file:\n%s", under, colon, logText(hook))
	}
	if got := prView(t, tu, ua); !strings.HasPrefix(got, "00 00 00 00 00 00 00 00 /") {
		t.Fatalf("%s took %s's registrations: %s", under, colon, got)
	}
	if _, err := os.Stat(legacy); err != nil {
		t.Fatalf("%s touched %s's legacy file: %v", under, colon, err)
	}
	tg2, a2, _, hook := newNamedStateTarget(t, dir, colon)
	if got := prView(t, tg2, a2); got != want {
		t.Fatalf("from the legacy file:\n%s\nwant\n%s\n%s", got, want, logText(hook))
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Fatalf("legacy file left after its move: %v", err)
	}
	if _, err := os.Stat(cur); err != nil {
		t.Fatalf("no state file under the new name: %v", err)
	}
	if !strings.Contains(logText(hook), "moved to its new name") {
		t.Fatalf("the move is not logged:\n%s", logText(hook))
	}
	// A version 0 file (no Target field) of the other target is told
	// apart by its registrations' target port.
	b0, err := os.ReadFile(cur)
	if err != nil {
		t.Fatal(err)
	}
	var f prFile
	if err := json.Unmarshal(b0, &f); err != nil {
		t.Fatal(err)
	}
	f.Version, f.Target, f.LUN = 0, "", 0
	v0, _ := json.Marshal(f)
	if !otherTargets(v0, under) || otherTargets(v0, colon) || otherTargets(v0, strings.ToUpper(colon)) {
		t.Fatal("a version 0 file is not told apart by its registrations")
	}
}

// A target a reload removes says which state files its LUNs leave.
func TestRemovedTargetNotesAPTPLState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	tg, a, b, hook := newStateTarget(t, dir)
	setupAPTPL(t, tg, a, b)
	tg.NoteRemoved()
	var files []any
	for _, e := range hook.AllEntries() {
		if strings.Contains(e.Message, "remove the file") {
			files = append(files, e.Data["file"])
		}
	}
	if len(files) != 1 || files[0] != prStatePath(dir, prTestTarget, 0) {
		t.Fatalf("kept state files logged: %v\n%s", files, logText(hook))
	}
}
