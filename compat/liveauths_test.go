package compat

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

func TestLiveAuthsFollowsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auths")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	users := func(a config.Auth) (out []string) {
		for _, acc := range a.Incoming {
			out = append(out, acc.User)
		}
		return out
	}
	write("alice:chap:alicesecret123\nnobody:none:\n")
	tg := &config.Target{Name: "t"}
	// As loaded at start, plus an account added at run time (ietadm).
	tg.Auth.Incoming = []config.Account{{User: "alice", Secret: "old", Pos: config.Position{File: path, Line: 1}},
		{User: "admin", Secret: "fromietadm123"}}
	l := NewLiveAuths(path, nil)
	a := l.Auth(tg)
	if got := users(a); len(got) != 2 || got[0] != "admin" || got[1] != "alice" || a.Incoming[1].Secret != "alicesecret123" {
		t.Fatalf("users %v", a.Incoming)
	}
	if !a.Optional || !a.FoldUsers || !a.MutualWithIncoming {
		t.Fatalf("NetBSD rules not applied: %+v", a)
	}
	write("alice:chap:alicesecret123\nbob:chap:bobsecret12345\n")
	if got := users(l.Auth(tg)); len(got) != 3 || got[2] != "bob" {
		t.Fatalf("after adding bob: %v", got)
	}
	os.Remove(path)
	if got := users(l.Auth(tg)); len(got) != 1 || got[0] != "admin" {
		t.Fatalf("file gone: %v", got)
	}
	if len(tg.Auth.Incoming) != 2 || tg.Auth.Incoming[0].Secret != "old" {
		t.Fatalf("the config's target was changed: %v", tg.Auth.Incoming)
	}
}

// An edit that keeps the size and the modification time is seen too
// (rsync -t --inplace): the file is compared by content.
func TestLiveAuthsSeesSameSizeEdits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auths")
	if err := os.WriteFile(path, []byte("alice:chap:secretAAAAAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	l := NewLiveAuths(path, nil)
	tg := &config.Target{Name: "t"}
	if a := l.Auth(tg); len(a.Incoming) != 1 || a.Incoming[0].Secret != "secretAAAAAAA" {
		t.Fatalf("%+v", a.Incoming)
	}
	if err := os.WriteFile(path, []byte("alice:chap:secretBBBBBBB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if a := l.Auth(tg); len(a.Incoming) != 1 || a.Incoming[0].Secret != "secretBBBBBBB" {
		t.Fatalf("same-size edit not seen: %+v", a.Incoming)
	}
}

// The auths file is NetBSD's alone: a target from ietd.conf (or one
// added with ietadm) keeps its own accounts whatever the file holds.
func TestLiveAuthsLeavesIETTargetsAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auths")
	if err := os.WriteFile(path, []byte("alice:chap:alicesecret123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg := &config.Target{Name: "t", NetBSDIndex: -1}
	tg.Auth.Incoming = []config.Account{{User: "joe", Secret: "joesecret1234"}}
	a := NewLiveAuths(path, nil).Auth(tg)
	if len(a.Incoming) != 1 || a.Incoming[0].User != "joe" || a.Optional || a.FoldUsers {
		t.Fatalf("an IET target got NetBSD's auths: %+v", a)
	}
}
