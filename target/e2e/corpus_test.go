//go:build linux

package e2e

// The seed corpora of the project's fuzz targets come from real inputs:
// the config fixtures (testdata/config), the login transcripts
// (target/login/testdata), PDUs and CDBs captured between real initiators
// (libiscsi's tools and test suite, qemu-img) and ietd through a
// recording proxy, and the requests bin/ietadm sends. TestWriteFuzzCorpora
// regenerates them (IETD_E2E_WRITE_CORPUS=1; root for nothing, about a
// minute); the files are committed, in `go test fuzz v1` format, under
// each package's testdata/fuzz/FuzzX/ (`go test` runs them as seeds).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// corpusValue is one argument of a fuzz input.
type corpusValue any

// encodeCorpus renders a `go test fuzz v1` file.
func encodeCorpus(vals ...corpusValue) []byte {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch v := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
		case bool:
			fmt.Fprintf(&b, "bool(%v)\n", v)
		case uint64:
			fmt.Fprintf(&b, "uint64(%d)\n", v)
		default:
			panic(fmt.Sprintf("corpus type %T", v))
		}
	}
	return b.Bytes()
}

// corpusWriter collects files per fuzz target directory.
type corpusWriter struct {
	t     *testing.T
	root  string
	mu    sync.Mutex
	count map[string]int
}

// add writes one input for fuzz target name of package pkg (a directory
// relative to the module root), named by its hash as `go test` does.
func (w *corpusWriter) add(pkg, name, origin string, vals ...corpusValue) {
	body := encodeCorpus(vals...)
	sum := sha256.Sum256(body)
	dir := filepath.Join(w.root, pkg, "testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:8])), body, 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.count[pkg+" "+name+" ("+origin+")"]++
	w.mu.Unlock()
}

// TestWriteFuzzCorpora regenerates every seed corpus from real inputs.
func TestWriteFuzzCorpora(t *testing.T) {
	if os.Getenv("IETD_E2E_WRITE_CORPUS") != "1" {
		t.Skip("regenerates the fuzz seed corpora from fixtures and captures: IETD_E2E_WRITE_CORPUS=1")
	}
	w := &corpusWriter{t: t, root: repoRoot(), count: map[string]int{}}
	corpusFromConfigFixtures(t, w)
	corpusFromLoginTranscripts(t, w)
	corpusFromCaptures(t, w)
	corpusFromIetadm(t, w)
	var lines []string
	for k, n := range w.count {
		lines = append(lines, fmt.Sprintf("%4d %s", n, k))
	}
	sort.Strings(lines)
	t.Logf("seed inputs written:\n%s", strings.Join(lines, "\n"))
}

// ---- config fixtures -------------------------------------------------------

func corpusFromConfigFixtures(t *testing.T, w *corpusWriter) {
	files, err := filepath.Glob(filepath.Join(w.root, "testdata", "config", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	lunLine := regexp.MustCompile(`(?m)^\s*Lun\s+(\d+)\s+(\S.*?)\s*$`)
	store := regexp.MustCompile(`Store=([^,\s]+)`)
	for _, p := range files {
		base := filepath.Base(p)
		if strings.HasSuffix(base, ".golden") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		origin := "testdata/config"
		switch base {
		case "ietd.conf":
			w.add("parser/ietconf", "FuzzParse", origin, b)
			w.add("compat", "FuzzLoadIET", origin, b)
			for _, m := range lunLine.FindAllSubmatch(b, -1) {
				n, _ := strconv.ParseUint(string(m[1]), 10, 64)
				params := string(m[2])
				if i := strings.Index(params, " #"); i >= 0 {
					params = strings.TrimSpace(params[:i])
				}
				w.add("cmd/internal/service", "FuzzParseLUN", origin+" Lun lines", n, params)
				for _, s := range store.FindAllSubmatch(m[2], -1) {
					w.add("parser/ietconf", "FuzzParseStore", origin+" Store= values", string(s[1]))
				}
			}
		case "targets":
			w.add("parser/netbsd", "FuzzParseTargets", origin, b)
			w.add("compat", "FuzzLoadNetBSD", origin, b)
		case "auths":
			w.add("parser/netbsd", "FuzzParseAuths", origin, b)
		case "initiators.allow", "targets.allow", "initiators.deny":
			w.add("parser/ietacl", "FuzzParse", origin, b)
			w.add("compat", "FuzzParseACL", origin, b)
		}
	}
	// The --params the command tests give ietadm.
	for _, p := range []string{
		"Path=/srv/b.img,Type=fileio,ScsiSN=SN-B",
		"Path=/srv/b.img",
		"Type=nullio,Blocks=2048",
		"Path=/dev/sdb,Type=blockio,IOMode=wb",
	} {
		w.add("cmd/internal/service", "FuzzParseLUN", "ietadm --params of the command tests", uint64(0), p)
	}
}

// ---- login transcripts -----------------------------------------------------

// transcriptRequest is one "> ..." line of target/login/testdata.
type transcriptRequest struct {
	flags byte // T<<7 | C<<6 | CSG<<2 | NSG
	data  []byte
}

var chapPlaceholder = regexp.MustCompile(`@[a-z]+(\([^)]*\))?`)

// parseTranscripts returns each session ("new"-separated block) of a
// transcript as its requests. Placeholders (@chap(secret), @ourchallenge)
// become plausible values; the names are mapped to those of the fuzz
// environment of FuzzLoginStateMachine (target "t", account "u") so that
// the seeds reach past the target lookup.
func parseTranscripts(t *testing.T, path string) [][]transcriptRequest {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sessions [][]transcriptRequest
	var cur []transcriptRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "new":
			if len(cur) > 0 {
				sessions = append(sessions, cur)
			}
			cur = nil
		case strings.HasPrefix(line, ">"):
			head, keys, _ := strings.Cut(line[1:], ";")
			var r transcriptRequest
			for _, f := range strings.Fields(head) {
				switch {
				case f == "T":
					r.flags |= 0x80
				case f == "C":
					r.flags |= 0x40
				case strings.HasPrefix(f, "csg="):
					n, _ := strconv.Atoi(f[4:])
					r.flags |= byte(n&3) << 2
				case strings.HasPrefix(f, "nsg="):
					n, _ := strconv.Atoi(f[4:])
					r.flags |= byte(n & 3)
				}
			}
			var kvs []keyValue
			for _, kv := range strings.Fields(keys) {
				k, v, _ := strings.Cut(kv, "=")
				v = chapPlaceholder.ReplaceAllString(v, "0x"+strings.Repeat("5a", 16))
				kvs = append(kvs, keyValue{k, v})
			}
			r.data = encodeKeys(kvs)
			cur = append(cur, r)
		}
	}
	if len(cur) > 0 {
		sessions = append(sessions, cur)
	}
	return sessions
}

func corpusFromLoginTranscripts(t *testing.T, w *corpusWriter) {
	files, err := filepath.Glob(filepath.Join(w.root, "target", "login", "testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no login transcripts: %v", err)
	}
	for _, p := range files {
		origin := "target/login/testdata"
		for _, s := range parseTranscripts(t, p) {
			for _, r := range s {
				w.add("target/login", "FuzzLoginKeys", origin, r.data)
			}
			// The state machine seed: flags and the first three
			// requests, with the fuzz environment's names. Discovery
			// sessions are left out: FuzzLoginStateMachine's property
			// ("no login finishes unauthenticated") does not yet allow
			// for a discovery session without discovery accounts, which
			// rightly logs in without CHAP.
			if bytes.Contains(s[0].data, []byte("SessionType=Discovery")) {
				continue
			}
			var flags []byte
			var data [3][]byte
			for i := range min(3, len(s)) {
				flags = append(flags, s[i].flags)
				kvs, _ := decodeKeys(s[i].data)
				for j := range kvs {
					switch kvs[j].k {
					case "TargetName":
						kvs[j].v = "t"
					case "CHAP_N":
						kvs[j].v = "u"
					}
				}
				data[i] = encodeKeys(kvs)
			}
			w.add("target/login", "FuzzLoginStateMachine", origin, flags, data[0], data[1], data[2])
		}
	}
}

// ---- captures through a recording proxy ------------------------------------

// recorder is a TCP proxy that keeps what each initiator sent, per
// connection, together with what the target answered.
type recorder struct {
	l       net.Listener
	backend string
	mu      sync.Mutex
	conns   []*recordedConn
	wg      sync.WaitGroup
}

type recordedConn struct {
	up, down bytes.Buffer // initiator->target, target->initiator
}

func startRecorder(t *testing.T, backend string) *recorder {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{l: l, backend: backend}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			rc := &recordedConn{}
			r.mu.Lock()
			r.conns = append(r.conns, rc)
			r.mu.Unlock()
			r.wg.Add(2)
			copyRec := func(dst, src net.Conn, buf *bytes.Buffer) {
				defer r.wg.Done()
				tmp := make([]byte, 64<<10)
				for {
					src.SetReadDeadline(time.Now().Add(30 * time.Second))
					n, err := src.Read(tmp)
					if n > 0 {
						r.mu.Lock()
						if buf.Len() < 64<<20 {
							buf.Write(tmp[:n])
						}
						r.mu.Unlock()
						if _, werr := dst.Write(tmp[:n]); werr != nil {
							break
						}
					}
					if err != nil {
						break
					}
				}
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
			}
			go copyRec(b, c, &rc.up)
			go copyRec(c, b, &rc.down)
		}
	}()
	t.Cleanup(func() { l.Close() })
	return r
}

func (r *recorder) addr() string { return r.l.Addr().String() }

// capturedPDU is one PDU an initiator sent, as it was on the wire.
type capturedPDU struct {
	p      *pdu
	raw    []byte
	hd, dd bool // digests in force for it
}

// splitStream cuts a recorded connection into PDUs: login PDUs without
// digests, then full feature phase PDUs with the digests the login
// negotiated (read from the target's answers).
func splitStream(rc *recordedConn) []capturedPDU {
	hd, dd := false, false
	down := bytes.NewReader(rc.down.Bytes())
	logins := 0
	var keys []keyValue
	for {
		p, err := readPDU(down, false, false)
		if err != nil || p.h.opcode() != opLoginResp {
			break
		}
		logins++
		k, _ := decodeKeys(p.data)
		keys = append(keys, k...)
		if p.h.flags()&loginTransit != 0 && p.h.flags()&3 == 3 {
			v, _ := lookupKey(keys, "HeaderDigest")
			hd = v == "CRC32C"
			v, _ = lookupKey(keys, "DataDigest")
			dd = v == "CRC32C"
			break
		}
	}
	var out []capturedPDU
	b := rc.up.Bytes()
	for i, pos := 0, 0; pos < len(b); i++ {
		c := capturedPDU{}
		if i >= logins {
			c.hd, c.dd = hd, dd
		}
		rd := bytes.NewReader(b[pos:])
		p, err := readPDU(rd, c.hd, c.dd)
		if err != nil {
			break
		}
		n := len(b[pos:]) - rd.Len()
		c.p, c.raw = p, b[pos:pos+n]
		out = append(out, c)
		pos += n
	}
	return out
}

// cdbLen is the length of a CDB by its group code.
func cdbLen(cdb []byte) int {
	switch cdb[0] >> 5 {
	case 0:
		return 6
	case 1, 2:
		return 10
	case 4:
		return 16
	case 5:
		return 12
	}
	return 16
}

func corpusFromCaptures(t *testing.T, w *corpusWriter) {
	for _, tool := range []string{"iscsi-ls", "iscsi-inq", "iscsi-test-cu", "iscsi-readcapacity16"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for the captures (libiscsi-bin)", tool)
		}
	}
	dir := t.TempDir()
	const iqn = "iqn.2026-01.org.ietgo.e2e:capture"
	const chapIQNc = "iqn.2026-01.org.ietgo.e2e:capture-chap"
	conf := renderConf(t, nil,
		targetSpec{name: iqn, luns: []lunSpec{{n: 0, path: filepath.Join(dir, "lun0.img"), size: 64 << 20}}, lines: []string{"HeaderDigest CRC32C,None", "DataDigest CRC32C,None"}},
		simpleTarget(dir, chapIQNc, 8<<20, "IncomingUser "+chapUser+" "+chapSecret))
	d := startDaemon(t, dir, conf)
	rec := startRecorder(t, d.addr)
	run := func(timeout time.Duration, name string, args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil && ctx.Err() == nil {
			t.Logf("%s %v: %v (%d bytes of output)", name, args, err, len(out))
		}
	}
	url := fmt.Sprintf("iscsi://%s/%s/0", rec.addr(), iqn)
	run(30*time.Second, "iscsi-ls", "-s", "iscsi://"+rec.addr())
	run(30*time.Second, "iscsi-inq", url)
	run(30*time.Second, "iscsi-inq", "-e", "1", "-c", "0x83", url)
	run(30*time.Second, "iscsi-readcapacity16", url)
	run(30*time.Second, "iscsi-inq", fmt.Sprintf("iscsi://%s%%%s@%s/%s/0", chapUser, chapSecret, rec.addr(), chapIQNc))
	// libiscsi's own test suite: the CDBs real conformance runs send.
	suites := []string{"TestUnitReady", "Inquiry", "ReadCapacity10", "ReadCapacity16", "Read6", "Read10", "Read16",
		"Write10", "Write16", "WriteSame10", "WriteSame16", "Unmap", "Verify10", "Verify16", "WriteVerify10",
		"CompareAndWrite", "OrWrite", "ModeSense6", "ReportSupportedOpcodes", "PrinReadKeys", "ProutRegister",
		"ProutReserve", "PreventAllow", "StartStopUnit", "GetLBAStatus", "Prefetch10", "Reserve6", "iSCSIcmdsn", "iSCSITMF"}
	for _, s := range suites {
		run(60*time.Second, "iscsi-test-cu", "-d", "-s", "-t", "ALL."+s, url)
	}
	// qemu-img with digests on, when the iscsi driver is there.
	if _, err := exec.LookPath("qemu-img"); err == nil {
		run(30*time.Second, "qemu-img", "info", "--image-opts",
			fmt.Sprintf("driver=iscsi,transport=tcp,portal=%s,target=%s,lun=0,header-digest=crc32c", rec.addr(), iqn))
	}
	// Our own client with digests, for digest-framed seeds.
	if c, err := dial(rec.addr(), 10*time.Second); err == nil {
		if c.login(loginOpts{target: iqn, headerDigest: "CRC32C", dataDigest: "CRC32C"}) == nil {
			c.capacity(0)
			c.write(0, 0, bytes.Repeat([]byte{0x42}, 4096), 512, true)
			c.read(0, 0, 8, 512)
			c.ping([]byte("capture"))
			c.logout()
		}
		c.close()
	}
	time.Sleep(500 * time.Millisecond)
	rec.l.Close()
	rec.wg.Wait()

	perKind := map[string]int{}
	streams := map[string]bool{}
	cdbs := map[string]bool{}
	pdus := 0
	for _, rc := range rec.conns {
		up := splitStream(rc)
		// Data-Out by ITT, to pair CDBs with their data.
		outData := map[uint32][]byte{}
		var cmds []*pdu
		for _, c := range up {
			p := c.p
			kind := fmt.Sprintf("op%#x", p.h.opcode())
			switch p.h.opcode() {
			case opSCSICmd:
				kind += fmt.Sprintf("/cdb%#x", p.h[32])
				cmds = append(cmds, p)
				outData[p.h.itt()] = append([]byte(nil), p.data...)
			case opDataOut:
				if itt := p.h.itt(); len(outData[itt]) < 64<<10 {
					outData[itt] = append(outData[itt], p.data...)
				}
			}
			kind += fmt.Sprintf("/hd%v", c.hd)
			if perKind[kind] < 3 && len(c.raw) <= 20<<10 {
				perKind[kind]++
				w.add("target/pdu", "FuzzPDU", "captured from libiscsi, qemu-img and the e2e client", c.raw, c.hd, c.dd)
				w.add("target/pdu", "FuzzDecodeBHS", "captured headers", append([]byte(nil), c.raw[:bhsLen]...))
				pdus++
			}
		}
		// One stream of the first four full feature phase PDUs.
		first := 0
		for first < len(up) && up[first].p.h.opcode() == opLoginReq {
			first++
		}
		if first < len(up) {
			var s []byte
			shape := ""
			for _, c := range up[first:min(first+4, len(up))] {
				s = append(s, c.raw...)
				shape += fmt.Sprintf("%#x/%#x ", c.p.h.opcode(), c.p.h[32])
			}
			if !streams[shape] && len(s) <= 64<<10 {
				streams[shape] = true
				w.add("target/pdu", "FuzzPDU", "captured streams", s, up[first].hd, up[first].dd)
			}
		}
		for _, p := range cmds {
			cdb := append([]byte(nil), p.h[32:32+cdbLen(p.h[32:48])]...)
			key := hex.EncodeToString(cdb[:2])
			if cdbs[key] {
				continue
			}
			cdbs[key] = true
			out := outData[p.h.itt()]
			if len(out) > 1<<16 {
				out = out[:1<<16]
			}
			w.add("target/scsi", "FuzzExecute", "CDBs and data of a libiscsi run", cdb, out)
		}
	}
	t.Logf("%d connections captured, %d PDU seeds, %d distinct CDB openings", len(rec.conns), pdus, len(cdbs))
	if len(cdbs) < 20 {
		t.Errorf("only %d distinct CDBs captured from libiscsi's suites", len(cdbs))
	}
}

// ---- ietadm requests ---------------------------------------------------------

func corpusFromIetadm(t *testing.T, w *corpusWriter) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "fake.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reqs := make(chan []byte, 64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			line, _ := bufio.NewReader(c).ReadBytes('\n')
			reqs <- line
			io.WriteString(c, `{"errno":0}`+"\n")
			c.Close()
		}
	}()
	for _, args := range [][]string{
		{"--op", "show", "--volumes"},
		{"--op", "show", "--sessions"},
		{"--op", "new", "--tid=0", "--params", "Name=iqn.2001-04.com.example:storage.disk2"},
		{"--op", "new", "--tid=2", "--lun=0", "--params", "Path=/srv/b.img,Type=fileio,ScsiSN=SN-B"},
		{"--op", "delete", "--tid=2", "--lun=0"},
		{"--op", "delete", "--tid=2"},
		{"--op", "show", "--tid=1"},
		{"--op", "show", "--tid=1", "--sid=281474980708352"},
		{"--op", "delete", "--tid=1", "--sid=281474980708352", "--cid=0"},
		{"--op", "update", "--tid=1", "--params", "MaxRecvDataSegmentLength=65536,InitialR2T=No"},
		{"--op", "new", "--tid=1", "--user", "--params", "IncomingUser=joe,Password=secretsecret"},
		{"--op", "show", "--tid=1", "--user"},
		{"--op", "delete", "--tid=0", "--user", "--params", "OutgoingUser=tgt"},
		{"--op", "update", "--tid=1", "--redirect", "10.0.0.1:3260"},
	} {
		r := runIetadm(t, nil, append([]string{"--socket", sock}, args...)...)
		select {
		case b := <-reqs:
			w.add("target/admin", "FuzzAdminRequest", "requests sent by bin/ietadm", b)
		case <-time.After(10 * time.Second):
			t.Errorf("ietadm %v sent nothing (exit %d %s)", args, r.code, r.stderr)
		}
	}
}
