package initscripts

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// shellScripts maps every shipped shell file to its shell dialect.
var shellScripts = map[string]string{
	"redhat/iscsi-target":      "bash",
	"redhat/sysconfig":         "sh",
	"debian/iscsitarget":       "sh",
	"debian/default":           "sh",
	"netbsd/iscsi_target":      "sh",
	"solaris/svc-iscsi-target": "sh",
}

var (
	manPages5 = []string{"ietd.conf.5", "targets.5"}
	manPages8 = []string{"ietd.8", "ietadm.8", "iscsi-target.8", "ietd-migrate.8"}
	units     = []string{"ietd.service", "ietd.socket", "netbsd-iscsi.service"}
)

func tool(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

func TestShellcheck(t *testing.T) {
	sc := needTool(t, "shellcheck")
	for path, shell := range shellScripts {
		out, err := tool(t, sc, "-s", shell, "-x", path)
		if err != nil || out != "" {
			t.Errorf("shellcheck %s: %v\n%s", path, err, out)
		}
	}
}

// TestShellSyntax parses every script with the shells it runs under
// (dash as the strictest POSIX sh available).
func TestShellSyntax(t *testing.T) {
	for path, shell := range shellScripts {
		shells := []string{shell}
		if shell == "sh" {
			shells = append(shells, "dash", "bash")
		}
		for _, sh := range shells {
			p, err := exec.LookPath(sh)
			if err != nil {
				continue
			}
			if out, err := tool(t, p, "-n", path); err != nil {
				t.Errorf("%s -n %s: %v\n%s", sh, path, err, out)
			}
		}
	}
}

// TestScriptHeaders checks the metadata that chkconfig, insserv/update-rc.d
// and rcorder read.
func TestScriptHeaders(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rh := read("redhat/iscsi-target")
	for _, want := range []string{"# chkconfig: - 39 35", "# pidfile: /var/run/ietd.pid", "# processname: ietd", "### BEGIN INIT INFO", "### END INIT INFO"} {
		if !strings.Contains(rh, want) {
			t.Errorf("redhat/iscsi-target lacks %q", want)
		}
	}
	deb := read("debian/iscsitarget")
	lsb := regexp.MustCompile(`(?s)### BEGIN INIT INFO\n(.*?)### END INIT INFO`).FindStringSubmatch(deb)
	if lsb == nil {
		t.Fatal("debian/iscsitarget has no LSB block")
	}
	for _, key := range []string{"Provides:", "Required-Start:", "Required-Stop:", "Default-Start:", "Default-Stop:", "Short-Description:"} {
		if !strings.Contains(lsb[1], "# "+key) {
			t.Errorf("LSB block lacks %s", key)
		}
	}
	if !regexp.MustCompile(`# Provides:\s+iscsitarget`).MatchString(lsb[1]) {
		t.Error("LSB Provides must name iscsitarget")
	}
	nb := read("netbsd/iscsi_target")
	for _, want := range []string{"# PROVIDE: iscsi_target", "# REQUIRE: NETWORKING", `name="iscsi_target"`, "run_rc_command \"$1\""} {
		if !strings.Contains(nb, want) {
			t.Errorf("netbsd/iscsi_target lacks %q", want)
		}
	}
}

// TestSystemdUnits runs systemd-analyze verify on copies of the units
// whose binaries point at files that exist, with MANPATH set to our man
// pages so the Documentation= references are checked too.
func TestSystemdUnits(t *testing.T) {
	sa := needTool(t, "systemd-analyze")
	dir := t.TempDir()
	binFor := func(name string) string {
		if d := os.Getenv("IETD_BIN_DIR"); d != "" {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				return filepath.Join(d, name)
			}
		}
		p, err := exec.LookPath("true")
		if err != nil {
			t.Skip("no true(1)")
		}
		return p
	}
	repl := strings.NewReplacer("/usr/sbin/ietd", binFor("ietd"), "/usr/sbin/iscsi-target", binFor("iscsi-target"),
		"/bin/kill", mustLook(t, "kill"))
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join("systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		writeFile(t, p, repl.Replace(string(b)))
		paths = append(paths, p)
	}
	man := manTree(t)
	cmd := exec.Command(sa, append([]string{"verify"}, paths...)...)
	cmd.Env = append(os.Environ(), "MANPATH="+man, "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	var bad []string
	for _, line := range strings.Split(string(out), "\n") {
		for _, u := range units {
			if strings.Contains(line, u) {
				bad = append(bad, line)
				break
			}
		}
	}
	if len(bad) > 0 || err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The content systemd cannot judge: readiness protocol, reload and
	// the options variables the SysV files define.
	svc, _ := os.ReadFile("systemd/ietd.service")
	for _, want := range []string{"Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "$ISCSITARGET_OPTIONS", "$OPTIONS",
		"EnvironmentFile=-/etc/default/iscsitarget", "EnvironmentFile=-/etc/sysconfig/iscsi-target", "WatchdogSec="} {
		if !strings.Contains(string(svc), want) {
			t.Errorf("ietd.service lacks %q", want)
		}
	}
	sock, _ := os.ReadFile("systemd/ietd.socket")
	if !strings.Contains(string(sock), "ListenStream=3260") || !strings.Contains(string(sock), "Service=ietd.service") {
		t.Errorf("ietd.socket must listen on 3260 for ietd.service")
	}
}

func mustLook(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{"/bin/" + name, "/usr/bin/" + name} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found", name)
	}
	return p
}

// manTree lays our pages out as a man hierarchy (man5/, man8/).
func manTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for sec, pages := range map[string][]string{"man5": manPages5, "man8": manPages8} {
		if err := os.MkdirAll(filepath.Join(root, sec), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range pages {
			abs, err := filepath.Abs(filepath.Join("man", p))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(abs, filepath.Join(root, sec, p)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// smfManifest is the part of the SMF DTD the tests look at.
type smfManifest struct {
	XMLName xml.Name `xml:"service_bundle"`
	Type    string   `xml:"type,attr"`
	Service struct {
		Name    string `xml:"name,attr"`
		Methods []struct {
			Name string `xml:"name,attr"`
			Exec string `xml:"exec,attr"`
		} `xml:"exec_method"`
		Groups []struct {
			Name  string `xml:"name,attr"`
			Props []struct {
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"propval"`
		} `xml:"property_group"`
	} `xml:"service"`
}

func TestSMFManifest(t *testing.T) {
	data, err := os.ReadFile("solaris/iscsi-target.xml")
	if err != nil {
		t.Fatal(err)
	}
	var m smfManifest
	if err := xml.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest is not well-formed XML: %v", err)
	}
	if m.Type != "manifest" || m.Service.Name != "network/iscsi-target" {
		t.Fatalf("bundle type %q service %q", m.Type, m.Service.Name)
	}
	methods := map[string]string{}
	for _, em := range m.Service.Methods {
		methods[em.Name] = em.Exec
	}
	for _, name := range []string{"start", "stop", "refresh"} {
		if methods[name] != "/lib/svc/method/svc-iscsi-target "+name {
			t.Errorf("exec_method %s = %q", name, methods[name])
		}
	}
	// Every property the method script reads must exist in the manifest.
	method, _ := os.ReadFile("solaris/svc-iscsi-target")
	props := map[string]bool{}
	for _, g := range m.Service.Groups {
		if g.Name == "ietd" {
			for _, p := range g.Props {
				props[p.Name] = true
			}
		}
	}
	read := regexp.MustCompile("`getprop ([a-z_]+)`").FindAllStringSubmatch(string(method), -1)
	if len(read) == 0 {
		t.Fatal("method script reads no properties")
	}
	for _, r := range read {
		if !props[r[1]] {
			t.Errorf("method reads ietd/%s, not defined in the manifest", r[1])
		}
	}

	xl := needTool(t, "xmllint")
	if out, err := tool(t, xl, "--noout", "solaris/iscsi-target.xml"); err != nil || out != "" {
		t.Fatalf("xmllint: %v\n%s", err, out)
	}
}

// overstrike matches the "character backspace" pairs of bold/underline
// output.
var overstrike = regexp.MustCompile(".\b")

func TestManPages(t *testing.T) {
	all := append(append([]string(nil), manPages5...), manPages8...)
	for _, p := range all {
		data, err := os.ReadFile(filepath.Join("man", p))
		if err != nil {
			t.Fatalf("man page %s: %v", p, err)
		}
		s := string(data)
		name := strings.TrimSuffix(p, filepath.Ext(p))
		sec := strings.TrimPrefix(filepath.Ext(p), ".")
		th := regexp.MustCompile(`(?m)^\.TH "?([^" ]+)"? "?(\d)"?`).FindStringSubmatch(s)
		if th == nil || !strings.EqualFold(th[1], name) || th[2] != sec {
			t.Errorf("%s: .TH %v does not name %s(%s)", p, th, name, sec)
		}
		for _, sh := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "DIFFERENCES FROM THE ORIGINAL", "SEE ALSO"} {
			if !regexp.MustCompile(`(?m)^\.SH "?` + sh + `"?\s*$`).MatchString(s) {
				t.Errorf("%s: no %s section", p, sh)
			}
		}
	}
	checked := false
	if groff, err := exec.LookPath("groff"); err == nil {
		checked = true
		for _, p := range all {
			out, err := tool(t, groff, "-z", "-ww", "-man", "-t", filepath.Join("man", p))
			if err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("groff %s: %v\n%s", p, err, out)
			}
		}
	}
	if mandoc, err := exec.LookPath("mandoc"); err == nil {
		checked = true
		for _, p := range all {
			out, err := tool(t, mandoc, "-T", "lint", "-W", "warning", filepath.Join("man", p))
			if err != nil {
				t.Errorf("mandoc -T lint %s: %v\n%s", p, err, out)
			}
		}
	}
	if man, err := exec.LookPath("man"); err == nil {
		checked = true
		for _, p := range all {
			cmd := exec.Command(man, "--warnings", "-l", "-E", "UTF-8", filepath.Join("man", p))
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "PAGER=cat", "MANPAGER=cat")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || strings.TrimSpace(stderr.String()) != "" {
				t.Errorf("man --warnings %s: %v\n%s", p, err, stderr.String())
			}
			if !strings.Contains(overstrike.ReplaceAllString(stdout.String(), ""), "DIFFERENCES FROM THE ORIGINAL") {
				t.Errorf("man %s: rendered page lacks the differences section", p)
			}
		}
	}
	if !checked {
		t.Skip("no groff, mandoc or man: only the structure was checked")
	}
}

// TestSolarisMethodIsBourneShell: the SMF method runs under /bin/sh, which
// on Solaris 10 (named by the manifest) is the Bourne shell, not a POSIX
// shell. No Bourne shell runs here, so the POSIX-only constructs are
// looked for in the code (comments aside).
func TestSolarisMethodIsBourneShell(t *testing.T) {
	data, err := os.ReadFile("solaris/svc-iscsi-target")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "#!/bin/sh\n") {
		t.Fatal("the method must start with #!/bin/sh")
	}
	posixOnly := []struct{ re, what string }{
		{`\$\(`, "$(...) command substitution or $((...)) arithmetic"},
		{`\bcommand\s+-[vV]`, "command -v"},
		{`\bread\s+-`, "read options"},
		{`\btest\s+-e\b|\[\s+-e\b`, "test -e"},
		{`(^|[;&|]\s*|\b(if|while|until)\s+)!\s`, "! pipeline negation"},
		{`\blocal\s`, "local"},
		{`\$\{#|\$\{[A-Za-z_][A-Za-z0-9_]*(%|#)`, "${#var}, ${var%...}, ${var#...}"},
		{`\bexport\s+[A-Za-z_][A-Za-z0-9_]*=`, "export NAME=value"},
		{`\[\[`, "[["},
	}
	for i, line := range strings.Split(string(data), "\n") {
		code := strings.TrimSpace(line)
		if strings.HasPrefix(code, "#") {
			continue
		}
		for _, p := range posixOnly {
			if regexp.MustCompile(p.re).MatchString(code) {
				t.Errorf("solaris/svc-iscsi-target:%d: %s is not Bourne shell: %s", i+1, p.what, code)
			}
		}
	}
}
