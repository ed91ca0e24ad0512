package login

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata transcripts with actual responses")

// countingRand yields 1, 2, 3, ... so challenges are reproducible.
type countingRand struct{ n byte }

func (r *countingRand) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n
	}
	return len(p), nil
}

func parseAccount(s string) config.Account {
	u, sec, _ := strings.Cut(s, ":")
	return config.Account{User: u, Secret: sec}
}

// transcript runs one testdata/*.txt file: directives set up the
// environment, "> ..." lines are login requests and "< ..." lines the
// expected responses. CHAP_R=@chap(secret) in a request is replaced by
// the response to the last CHAP_I/CHAP_C the target sent.
func runTranscript(t *testing.T, path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	targets := map[string]*config.Target{}
	env := Env{TPGT: 1, Rand: &countingRand{}}
	admitTSIH, admitStatus := uint16(1), StatusSuccess
	joinStatus := StatusSessionNotFound
	env.JoinSession = func(ini string, isid [6]byte, tsih uint16) Status { return joinStatus }
	env.Admit = func(r *Result) (uint16, Status) { return admitTSIH, admitStatus }
	env.LookupTarget = func(name, ini string) (*config.Target, Status) {
		if t, ok := targets[name]; ok {
			return t, StatusSuccess
		}
		return nil, StatusNotFound
	}
	var m *Machine
	var lastID byte
	lastAlg := chapMD5
	var lastChallenge []byte
	var out bytes.Buffer
	var tsih uint16
	sc := bufio.NewScanner(bytes.NewReader(raw))
	lineNo := 0
	var pendingExpect *string
	for sc.Scan() {
		line := sc.Text()
		lineNo++
		if strings.HasPrefix(line, "< ") {
			if pendingExpect == nil {
				t.Fatalf("%s:%d: response without request", path, lineNo)
			}
			if !*rewrite && line != *pendingExpect {
				t.Errorf("%s:%d:\n got: %s\nwant: %s", path, lineNo, *pendingExpect, line)
			}
			out.WriteString(*pendingExpect + "\n")
			pendingExpect = nil
			continue
		}
		if pendingExpect != nil {
			if !*rewrite {
				t.Errorf("%s:%d: missing expected response: %s", path, lineNo, *pendingExpect)
			}
			out.WriteString(*pendingExpect + "\n")
			pendingExpect = nil
		}
		out.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "target":
			tg := config.NewTarget(len(targets)+1, f[1])
			for _, a := range f[2:] {
				k, v, _ := strings.Cut(a, "=")
				switch k {
				case "incoming":
					tg.Auth.Incoming = append(tg.Auth.Incoming, parseAccount(v))
				case "outgoing":
					acc := parseAccount(v)
					tg.Auth.Outgoing = &acc
				case "alias":
					tg.Alias = v
				case "optional":
					tg.Auth.Optional = v == "yes"
				case "foldusers":
					tg.Auth.FoldUsers = v == "yes"
				case "mutualwithincoming":
					tg.Auth.MutualWithIncoming = v == "yes"
				case "MaxBurstLength":
					tg.Params.MaxBurstLength, _ = strconv.Atoi(v)
				case "FirstBurstLength":
					tg.Params.FirstBurstLength, _ = strconv.Atoi(v)
				case "MaxConnections":
					tg.Params.MaxConnections, _ = strconv.Atoi(v)
				case "MaxRecvDataSegmentLength":
					tg.Params.MaxRecvDataSegmentLength, _ = strconv.Atoi(v)
				case "InitialR2T":
					tg.Params.InitialR2T = v == "Yes"
				case "digests":
					tg.Params.HeaderDigest = strings.Split(v, ",")
					tg.Params.DataDigest = strings.Split(v, ",")
				default:
					t.Fatalf("%s:%d: unknown target option %s", path, lineNo, k)
				}
			}
			targets[tg.Name] = tg
		case "discovery":
			for _, a := range f[1:] {
				k, v, _ := strings.Cut(a, "=")
				if k == "incoming" {
					env.Discovery.Incoming = append(env.Discovery.Incoming, parseAccount(v))
				} else if k == "outgoing" {
					acc := parseAccount(v)
					env.Discovery.Outgoing = &acc
				}
			}
		case "join":
			// join status=N: JoinSession's answer for a non-zero TSIH.
			_, v, _ := strings.Cut(f[1], "=")
			n, _ := strconv.ParseUint(v, 0, 16)
			joinStatus = Status(n)
		case "admit":
			k, v, _ := strings.Cut(f[1], "=")
			n, _ := strconv.ParseUint(v, 0, 16)
			if k == "tsih" {
				admitTSIH = uint16(n)
			} else {
				admitStatus = Status(n)
			}
		case "new":
			// The next request starts a new login, with the
			// environment as the directives up to it left it.
			m = nil
			tsih = 0
		case "params":
			// params Key=Value...: the parameters negotiated so far.
			if m == nil {
				t.Fatalf("%s:%d: params before any login", path, lineNo)
			}
			got := m.Result().Params.Map()
			for _, a := range f[1:] {
				k, v, _ := strings.Cut(a, "=")
				if got[k] != v {
					t.Errorf("%s:%d: %s=%s, want %s", path, lineNo, k, got[k], v)
				}
			}
		case ">":
			if m == nil {
				m = New(env)
			}
			req := Request{TSIH: tsih, ISID: [6]byte{0x80, 0, 0, 0, 0, 1}}
			var kvs []KV
			for _, tok := range f[1:] {
				switch {
				case tok == "T":
					req.Transit = true
				case tok == "C":
					req.Continue = true
				case strings.HasPrefix(tok, "csg="):
					req.CSG, _ = strconv.Atoi(tok[4:])
				case strings.HasPrefix(tok, "nsg="):
					req.NSG, _ = strconv.Atoi(tok[4:])
				case strings.HasPrefix(tok, "tsih="):
					v, _ := strconv.ParseUint(tok[5:], 0, 16)
					req.TSIH = uint16(v)
				case strings.HasPrefix(tok, "vmin="):
					v, _ := strconv.Atoi(tok[5:])
					req.VersionMin = byte(v)
				case tok == ";":
				default:
					k, v, _ := strings.Cut(tok, "=")
					if v == "@ourchallenge" {
						v = EncodeHex(lastChallenge)
					} else if strings.HasPrefix(v, "@chap(") {
						sec := strings.TrimSuffix(strings.TrimPrefix(v, "@chap("), ")")
						v = EncodeHex(chapResponseAlg(lastAlg, lastID, sec, lastChallenge))
					} else if strings.HasPrefix(v, "@b64chap(") {
						sec := strings.TrimSuffix(strings.TrimPrefix(v, "@b64chap("), ")")
						v = "0b" + b64(chapResponseAlg(lastAlg, lastID, sec, lastChallenge))
					}
					kvs = append(kvs, KV{k, v})
				}
			}
			req.Data = EncodeKeys(kvs)
			resp := m.Step(req)
			got, _ := ParseKeys(resp.Data)
			for _, kv := range got {
				switch kv.Key {
				case "CHAP_I":
					n, _ := strconv.Atoi(kv.Value)
					lastID = byte(n)
				case "CHAP_C":
					lastChallenge, _ = DecodeBinary(kv.Value)
				case "CHAP_A":
					lastAlg = kv.Value
				}
			}
			tsih = 0
			s := render(resp, got)
			pendingExpect = &s
		default:
			t.Fatalf("%s:%d: unknown directive %q", path, lineNo, f[0])
		}
	}
	if pendingExpect != nil {
		if !*rewrite {
			t.Errorf("%s: missing final expected response: %s", path, *pendingExpect)
		}
		out.WriteString(*pendingExpect + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func render(r Response, kvs []KV) string {
	var b strings.Builder
	b.WriteString("<")
	if r.Transit {
		b.WriteString(" T")
	}
	fmt.Fprintf(&b, " csg=%d nsg=%d status=0x%04x tsih=%d", r.CSG, r.NSG, uint16(r.Status), r.TSIH)
	if r.Done {
		b.WriteString(" done")
	}
	if r.Failed {
		b.WriteString(" failed")
	}
	if len(kvs) > 0 {
		b.WriteString(" ;")
		for _, kv := range kvs {
			b.WriteString(" " + kv.Key + "=" + kv.Value)
		}
	}
	return b.String()
}

func TestTranscripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no transcripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}
