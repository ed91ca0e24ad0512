package admin

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestListenRefusesWhatItWouldFollow: a file, a symbolic link (to a file
// or to a live socket) or a directory at the socket's path is refused
// and left as it was: never removed, never followed by the chmod.
func TestListenRefusesWhatItWouldFollow(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	ll, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ll.Close()

	cases := []struct {
		name, want string
		make       func(p string) error
	}{
		{"regular file", "not a socket", func(p string) error { return os.WriteFile(p, []byte("x"), 0o644) }},
		{"symlink to a file", "symbolic link", func(p string) error { return os.Symlink(victim, p) }},
		{"symlink to a live socket", "symbolic link", func(p string) error { return os.Symlink(live, p) }},
		{"dangling symlink", "symbolic link", func(p string) error { return os.Symlink(filepath.Join(dir, "nothing"), p) }},
		{"directory", "not a socket", func(p string) error { return os.Mkdir(p, 0o700) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".sock")
			if err := c.make(p); err != nil {
				t.Fatal(err)
			}
			before, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			l, err := Listen(p)
			if err == nil {
				l.Close()
				t.Fatalf("Listen over a %s succeeded", c.name)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("Listen over a %s: %v; want the path and %q", c.name, err, c.want)
			}
			if errors.Is(err, ErrSocketInUse) {
				t.Errorf("Listen over a %s followed it to the socket it names: %v", c.name, err)
			}
			after, err := os.Lstat(p)
			if err != nil {
				t.Fatalf("the %s at the path was removed: %v", c.name, err)
			}
			if after.Mode() != before.Mode() || !os.SameFile(before, after) {
				t.Errorf("the %s at the path changed: %v -> %v", c.name, before.Mode(), after.Mode())
			}
		})
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep me" {
		t.Errorf("the file a link pointed to changed: %q %v", b, err)
	}
	if fi, err := os.Stat(victim); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the mode of the file a link pointed to changed: %v %v", fi.Mode(), err)
	}
}

// TestListenStaleAndLiveSockets: a stale socket is replaced by one of
// mode 0600 that serves; a socket another server answers on is refused.
func TestListenStaleAndLiveSockets(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ietd.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("no stale socket to test with: %v %v", fi, err)
	}
	l, err := Listen(p)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer l.Close()
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %v %v; want a socket of mode 0600", fi.Mode(), err)
	}
	srv := &Server{Handler: freshOps{}, AllowUID: os.Getuid()}
	go srv.Serve(l)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Do(ctx, p, &Request{Op: OpShow}); err != nil {
		t.Fatalf("request on the new socket: %v", err)
	}
	if l2, err := Listen(p); !errors.Is(err, ErrSocketInUse) {
		if l2 != nil {
			l2.Close()
		}
		t.Fatalf("second Listen on a served socket: %v; want ErrSocketInUse", err)
	}
}

// TestListenRefusesDirectoriesOthersCanWrite: in a directory other users
// can write to (and that is not sticky) they could swap the socket for
// their own or for a link; a sticky one (/tmp) is accepted.
func TestListenRefusesDirectoriesOthersCanWrite(t *testing.T) {
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true},
		{0o755, true},
		{0o777, false},
		{0o775, false},
		{os.ModeSticky | 0o777, true},
	} {
		dir := filepath.Join(t.TempDir(), "run")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, c.mode); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "ietd.sock")
		l, err := Listen(p)
		if l != nil {
			l.Close()
		}
		if c.ok && err != nil {
			t.Errorf("directory of mode %v: %v; want accepted", c.mode, err)
		}
		if !c.ok {
			if err == nil || !strings.Contains(err.Error(), "writable by other users") {
				t.Errorf("directory of mode %v: %v; want refused as writable by other users", c.mode, err)
			}
			if _, serr := os.Lstat(p); serr == nil {
				t.Errorf("directory of mode %v: a socket was created although refused", c.mode)
			}
		}
	}
	if l, err := Listen(filepath.Join(t.TempDir(), "missing", "ietd.sock")); err == nil {
		l.Close()
		t.Error("Listen in a directory that does not exist succeeded")
	}
}
