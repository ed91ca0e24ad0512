package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
)

// freshOps answers each request with Ops over a fresh engine holding one
// target with a LUN and accounts, so that fuzzed requests do not pile up
// state between runs.
type freshOps struct{}

func (freshOps) Handle(ctx context.Context, req *Request) *Response {
	o, fe := newOps()
	t := config.NewTarget(1, "iqn.2001-04.com.example:fuzz")
	t.LUNs = []*config.LUN{{Number: 0, Type: "fileio", Store: &config.Store{Path: "/srv/a.img", Size: 1 << 20}}}
	t.Auth.Incoming = []config.Account{{User: "u", Secret: "secretsecret"}}
	fe.cfg = &config.Config{Dialect: config.DialectIET, Targets: []*config.Target{t}}
	return o.Handle(ctx, req)
}

// FuzzAdminRequest sends arbitrary bytes as a request over a real admin
// socket (peer credentials checked, the request decoded and handled as
// the daemon does): the server must answer every connection with one
// well-formed Response and close it, never panic or hang. Seeds:
// testdata/fuzz/FuzzAdminRequest (requests captured from bin/ietadm).
func FuzzAdminRequest(f *testing.F) {
	for _, r := range []Request{
		{Op: OpShow, Listing: "volume"},
		{Op: OpNew, TID: ip(0), Params: "Name=iqn.2001-04.com.example:b"},
		{Op: OpNew, TID: ip(1), LUN: u64(1), Params: "Path=/srv/b.img,Type=fileio"},
		{Op: OpShow, TID: ip(1), User: true, Params: "IncomingUser=u"},
		{Op: OpDelete, TID: ip(1), SID: u64(1), CID: u32(0)},
	} {
		b, _ := json.Marshal(r)
		f.Add(append(b, '\n'))
	}
	f.Add([]byte(`{"op":"show","tid":-1,"lun":18446744073709551615}`))
	f.Add([]byte(`{"op":`))
	f.Add(bytes.Repeat([]byte{'['}, 5000))
	path := filepath.Join(f.TempDir(), "admin.sock")
	l, err := Listen(path)
	if err != nil {
		f.Fatal(err)
	}
	srv := &Server{Handler: freshOps{}, AllowUID: os.Getuid()}
	go srv.Serve(l)
	f.Cleanup(func() { srv.Close() })
	f.Fuzz(func(t *testing.T, req []byte) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%v for %q", d, req)
			}
		}()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(req) // the server may answer (and close) before reading it all
		c.(*net.UnixConn).CloseWrite()
		out, err := io.ReadAll(io.LimitReader(c, 16<<20))
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("no answer within 10s to %q", req)
			}
		}
		var resp Response
		dec := json.NewDecoder(bytes.NewReader(out))
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("answer %q to %q is not a Response: %v", out, req, err)
		}
		if resp.Errno < 0 {
			t.Fatalf("negative errno %d", resp.Errno)
		}
		if dec.More() {
			t.Fatalf("more than one answer to %q: %q", req, out)
		}
	})
}
