package backing

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/statefile"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
	"golang.org/x/sys/unix"
)

func mirrorLUN(t *testing.T) (*config.LUN, string, string) {
	t.Helper()
	dir := t.TempDir()
	p0, p1 := filepath.Join(dir, "m0"), filepath.Join(dir, "m1")
	for _, p := range []string{p0, p1} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return &config.LUN{Type: "fileio", IOMode: "wb", Store: &config.Store{Kind: config.StoreMirror, Name: "device0",
		Members: []*config.Store{{Kind: config.StoreFile, Path: p0}, {Kind: config.StoreFile, Path: p1}}}}, p0, p1
}

// A failure record that cannot be trusted (corrupt, another device's,
// not a regular file) fails the open with an error naming it, and is
// left as it is: the device is not served with a stale member back.
func TestMirrorFailureRecordRefused(t *testing.T) {
	l, p0, _ := mirrorLUN(t)
	good := `{"device":"device0","failed":[{"member":"` + p0 + `","error":"EIO"}]}`
	for name, content := range map[string]string{
		"truncated":     good[:len(good)/2],
		"random":        "\x00\xff\x13garbage",
		"other device":  strings.Replace(good, `"device0"`, `"device1"`, 1),
		"null":          "null",
		"unknown field": `{"device":"device0","failed":[],"Regs":{}}`,
		"twice":         `{"device":"device0","failed":[{"member":"a"},{"member":"a"}]}`,
		"nameless":      `{"device":"device0","failed":[{"member":""}]}`,
		"trailing":      good + good,
		"PR state file": `{"Version":1,"Target":"iqn.x","LUN":0,"Regs":{},"APTPL":true}`,
	} {
		state := filepath.Join(t.TempDir(), "state")
		rec := mirrorStatePath(state, "device0")
		if err := statefile.Write(rec, []byte(content)); err != nil {
			t.Fatal(err)
		}
		s, err := Open(l, OpenOptions{StateDir: state})
		if err == nil {
			s.Close()
			t.Fatalf("%s: record accepted", name)
		}
		if !strings.Contains(err.Error(), rec) {
			t.Fatalf("%s: error does not name %s: %v", name, rec, err)
		}
		if b, _ := os.ReadFile(rec); string(b) != content {
			t.Fatalf("%s: record changed", name)
		}
	}
	state := filepath.Join(t.TempDir(), "state")
	os.MkdirAll(state, 0o700)
	rec := mirrorStatePath(state, "device0")
	if err := unix.Mkfifo(rec, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(l, OpenOptions{StateDir: state}); err == nil || !strings.Contains(err.Error(), rec) {
		t.Fatalf("FIFO record: %v", err)
	}
}

// A record of a member the mirror does not have (renamed in the
// config) is logged and kept when the record is written again.
func TestMirrorRecordOfUnknownMemberKept(t *testing.T) {
	l, p0, _ := mirrorLUN(t)
	state := filepath.Join(t.TempDir(), "state")
	rec := mirrorStatePath(state, "device0")
	if err := statefile.Write(rec, []byte(`{"device":"device0","failed":[{"member":"extent9","error":"EIO"}]}`)); err != nil {
		t.Fatal(err)
	}
	lg, hook := test.NewNullLogger()
	s, err := Open(l, OpenOptions{StateDir: state, Log: logrus.NewEntry(lg)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if h := MirrorHealth(s); h[0][0].Failed || h[0][1].Failed {
		t.Fatalf("health %+v", h)
	}
	warned := false
	for _, e := range hook.AllEntries() {
		warned = warned || (e.Level == logrus.WarnLevel && e.Data["member"] == "extent9")
	}
	if !warned {
		t.Fatalf("no warning for the unknown member: %v", hook.AllEntries())
	}
	m := s.(*MirrorStore)
	m.mu.Lock()
	m.failed[0] = &Error{Op: "write", Path: p0, Kind: ErrIO, Err: syscall.EIO}
	m.mu.Unlock()
	m.recordFailed()
	f, err := decodeMirrorState(readRecord(t, rec), "device0")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Failed) != 2 || f.Failed[0].Member != p0 || f.Failed[1].Member != "extent9" {
		t.Fatalf("record %+v", f)
	}
}

func readRecord(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeMirrorState: the decoder never panics and names no member
// twice in what it accepts.
func FuzzDecodeMirrorState(f *testing.F) {
	f.Add([]byte(`{"device":"device0","failed":[{"member":"extent0","since":"2026-01-02T03:04:05Z","error":"EIO"}]}`))
	f.Add([]byte(`{"device":"device0","failed":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeMirrorState(b, "device0")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, r := range st.Failed {
			if r.Member == "" || seen[r.Member] {
				t.Fatalf("accepted %+v", st)
			}
			seen[r.Member] = true
		}
	})
}
