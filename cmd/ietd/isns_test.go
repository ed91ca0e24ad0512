//go:build linux

package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dt "github.com/ietgo/ietd/cmd/internal/daemontest"
)

// Ports of this test (given to the iSNS work): iSCSI and isnsd.
const (
	isnsTestISCSIPort = 3450
	isnsTestServer    = "127.0.0.1:3451"
)

// isnsServer starts open-isns's isnsd on isnsTestServer with its own
// config and database in dir (no security, a default discovery domain
// so that unassigned nodes see each other) and returns a function running
// isnsadm against it (its own source name).
func isnsServer(t *testing.T, dir string) (adm func(source string, args ...string) string) {
	t.Helper()
	isnsd := sbinTool(t, "isnsd", "open-isns-server")
	isnsadm := sbinTool(t, "isnsadm", "open-isns-utils")
	db := filepath.Join(dir, "isnsdb")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(dir, "isnsctl")
	conf := filepath.Join(dir, "isnsd.conf")
	writeFile(t, conf, "BindAddress "+isnsTestServer+"\nControlSocket "+ctl+"\nPIDFile "+filepath.Join(dir, "isnsd.pid")+
		"\nDatabase "+db+"\nSecurity 0\nSourceName iqn.2026-01.test:isnsd\nDefaultDiscoveryDomain 1\n")
	cmd := exec.Command(isnsd, "--config", conf, "--foreground")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("isnsd output:\n%s", out)
		}
	})
	up := false
	for i := 0; i < 100 && !up; i++ {
		select {
		case <-done:
			t.Fatalf("isnsd exited during start-up:\n%s", out)
		default:
		}
		if c, err := net.DialTimeout("tcp", isnsTestServer, 100*time.Millisecond); err == nil {
			c.Close()
			up = true
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !up {
		t.Fatalf("isnsd not listening on %s:\n%s", isnsTestServer, out)
	}
	return func(source string, args ...string) string {
		c := filepath.Join(dir, "isnsadm-"+strings.ReplaceAll(source, ":", "_")+".conf")
		writeFile(t, c, "ServerAddress "+isnsTestServer+"\nControlSocket "+ctl+"\nSecurity 0\nSourceName "+source+"\n")
		o, _ := dt.Run(t, 20*time.Second, isnsadm, append([]string{"--config", c}, args...)...)
		return o
	}
}

// sbinTool finds a tool in $PATH or /usr/sbin (not in a user's $PATH),
// or skips.
func sbinTool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not installed (apt-get install %s, or `make deps` as root)", name, pkg)
	}
	return p
}

// TestISNSRegistration: ietd registers its entity, portal and targets
// with a real iSNS server, follows a SIGHUP that removes a target, and
// deregisters everything when it stops.
func TestISNSRegistration(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	dir := t.TempDir()
	adm := isnsServer(t, dir)
	const admSource = "iqn.2026-01.test:admin"
	listNodes := func() string { return adm(admSource, "--local", "--list", "nodes") }
	iqnB := "iqn.2001-04.com.example:cmd-b"
	conf := filepath.Join(dir, "ietd.conf")
	stanzas := "Target " + iqnA + "\n\tAlias disk-a\n\tLun 0 Type=nullio\nTarget " + iqnB + "\n\tLun 0 Type=nullio\n"
	writeFile(t, conf, "iSNSServer "+isnsTestServer+"\n"+stanzas)
	port := isnsTestISCSIPort
	d := dt.Start(t, port, ietd, append([]string{"-f", "-d", "2"}, daemonArgs(dir, conf, port)...)...)

	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(listNodes(), `iSCSI name = "`+iqnA+`"`, `iSCSI alias = "disk-a"`, `iSCSI name = "`+iqnB+`"`, "node type = Target")
	})
	if msg := dt.Contains(adm(admSource, "--local", "--list", "portals"), "Portal IP address = 127.0.0.1", "port = 3450/tcp"); msg != "" {
		t.Fatalf("portal: %s", msg)
	}
	if msg := dt.Contains(adm(admSource, "--local", "--list", "portal-groups"), `Portal group name = "`+iqnA+`"`, "Portal group tag = 1"); msg != "" {
		t.Errorf("portal group: %s", msg)
	}
	if msg := dt.Contains(adm(admSource, "--server", isnsTestServer, "--query", "iscsi-name="+iqnB), iqnB); msg != "" {
		t.Errorf("query over the network: %s", msg)
	}

	// SIGHUP without target B: B is deregistered, A stays.
	writeFile(t, conf, "iSNSServer "+isnsTestServer+"\nTarget "+iqnA+"\n\tLun 0 Type=nullio\n")
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string {
		out := listNodes()
		if strings.Contains(out, iqnB) {
			return "target B still registered:\n" + out
		}
		return dt.Contains(out, iqnA)
	})

	// ietadm --op delete without a selector deregisters (IET 1.4.20);
	// the next reload registers again.
	ietadm := dt.Bin(t, "ietadm")
	if out, code := dt.Run(t, 20*time.Second, ietadm, "--socket", filepath.Join(dir, "ietadm.sock"), "--op", "delete"); code != 0 {
		t.Fatalf("ietadm --op delete: exit %d: %s", code, out)
	}
	dt.Eventually(t, 10*time.Second, func() string {
		if out := listNodes(); strings.Contains(out, iqnA) {
			return "still registered after ietadm --op delete:\n" + out
		}
		return ""
	})
	d.Signal(syscall.SIGHUP)
	dt.Eventually(t, 10*time.Second, func() string { return dt.Contains(listNodes(), iqnA) })

	// Stopping deregisters the entity and everything in it.
	d.Signal(syscall.SIGTERM)
	if !d.WaitExit(15 * time.Second) {
		t.Fatal("ietd did not stop")
	}
	for _, kind := range []string{"nodes", "portals", "entities"} {
		if out := adm(admSource, "--local", "--list", kind); strings.Contains(out, "iqn.2001-04") || strings.Contains(out, "3450/tcp") {
			t.Errorf("%s still registered after ietd stopped:\n%s", kind, out)
		}
	}
	if !strings.Contains(d.Stderr.String(), "deregistered from the iSNS server") {
		t.Errorf("no deregistration logged:\n%s", d.Stderr.String())
	}
}

// TestISNSAccessControl: with iSNSAccessControl Yes, SendTargets lists
// and logins reach only the targets the iSNS server's discovery domains
// let the initiator see.
func TestISNSAccessControl(t *testing.T) {
	ietd := dt.Bin(t, "ietd")
	iscsiLs := dt.Tool(t, "iscsi-ls")
	iscsiInq := dt.Tool(t, "iscsi-inq")
	dir := t.TempDir()
	adm := isnsServer(t, dir)
	const (
		admSource = "iqn.2026-01.test:admin"
		iniX      = "iqn.2026-01.test:ini-x" // in dd1 with target A
		iniY      = "iqn.2026-01.test:ini-y" // in the default domain with B
		iniZ      = "iqn.2026-01.test:ini-z" // not registered
	)
	iqnB := "iqn.2001-04.com.example:cmd-b"
	conf := filepath.Join(dir, "ietd.conf")
	writeFile(t, conf, "iSNSServer "+isnsTestServer+"\niSNSAccessControl Yes\nTarget "+iqnA+
		"\n\tLun 0 Type=nullio\nTarget "+iqnB+"\n\tLun 0 Type=nullio\n")
	port := isnsTestISCSIPort
	d := dt.Start(t, port, ietd, append([]string{"-f", "-d", "2"}, daemonArgs(dir, conf, port)...)...)
	dt.Eventually(t, 10*time.Second, func() string {
		return dt.Contains(adm(admSource, "--local", "--list", "nodes"), iqnA, iqnB)
	})
	for _, ini := range []string{iniX, iniY} {
		if out := adm(ini, "--server", isnsTestServer, "--register", "initiator"); strings.Contains(strings.ToLower(out), "error") {
			t.Fatalf("registering %s: %s", ini, out)
		}
	}
	if out := adm(admSource, "--local", "--dd-register", "dd-name=dd1", "member-name="+iqnA, "member-name="+iniX); strings.Contains(strings.ToLower(out), "error") {
		t.Fatalf("dd-register: %s", out)
	}

	discover := func(ini string) string {
		out, _ := dt.Run(t, 20*time.Second, iscsiLs, "-i", ini, dt.Portal(port))
		return out
	}
	login := func(ini, target string) int {
		_, code := dt.Run(t, 20*time.Second, iscsiInq, "-i", ini, dt.Portal(port)+"/"+target+"/0")
		return code
	}
	// The cache keeps answers 5 s: the first answers may predate the DD.
	dt.Eventually(t, 15*time.Second, func() string {
		out := discover(iniX)
		if strings.Contains(out, iqnB) {
			return "X sees B:\n" + out
		}
		return dt.Contains(out, iqnA)
	})
	if out := discover(iniY); !strings.Contains(out, iqnB) || strings.Contains(out, iqnA) {
		t.Errorf("Y's discovery, want B only:\n%s", out)
	}
	if out := discover(iniZ); strings.Contains(out, iqnA) || strings.Contains(out, iqnB) {
		t.Errorf("unregistered Z's discovery, want nothing:\n%s", out)
	}
	if code := login(iniX, iqnA); code != 0 {
		t.Errorf("X to A: exit %d, want 0", code)
	}
	if code := login(iniY, iqnA); code == 0 {
		t.Error("Y logged in to A")
	}
	if code := login(iniY, iqnB); code != 0 {
		t.Errorf("Y to B: exit %d, want 0", code)
	}
	if !strings.Contains(d.Stderr.String(), "iSNSAccessControl: the iSNS server's discovery domains do not let the initiator see the target") {
		t.Errorf("no refusal logged:\n%s", d.Stderr.String())
	}
}
