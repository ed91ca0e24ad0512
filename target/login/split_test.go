package login

import (
	"fmt"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

// A response whose text exceeds MaxLoginSegment goes out in parts with
// C=1 and T=0; the initiator asks for each next part with an empty
// request, and only the last part carries T, NSG and Done.
func TestLoginResponseSplit(t *testing.T) {
	tg := &config.Target{Name: "iqn.2026-01.test:t", Params: config.DefaultParams()}
	env := Env{TPGT: 1, Rand: &countingRand{},
		JoinSession: func(string, [6]byte, uint16) Status { return StatusSessionNotFound },
		Admit:       func(*Result) (uint16, Status) { return 7, StatusSuccess },
		LookupTarget: func(name, ini string) (*config.Target, Status) {
			return tg, StatusSuccess
		}}
	m := New(env)
	isid := [6]byte{0x80, 0, 0, 0, 0, 1}
	// 700 unknown keys, each answered NotUnderstood: about 18 KiB of
	// answer to a request the initiator itself continued over C=1 PDUs.
	kvs := []KV{{"InitiatorName", "iqn.2026-01.test:i"}, {"TargetName", tg.Name}, {"SessionType", "Normal"}, {"AuthMethod", "None"}}
	for i := range 700 {
		kvs = append(kvs, KV{fmt.Sprintf("X-test.k%04d", i), "1"})
	}
	text := EncodeKeys(kvs)
	for len(text) > MaxLoginSegment {
		r := m.Step(Request{Continue: true, CSG: StageSecurity, NSG: StageOperational, ISID: isid, Data: text[:MaxLoginSegment]})
		if r.Failed || r.Transit || r.Continue || len(r.Data) != 0 {
			t.Fatalf("answer to a continued request: %+v", r)
		}
		text = text[MaxLoginSegment:]
	}
	r := m.Step(Request{Transit: true, CSG: StageSecurity, NSG: StageOperational, ISID: isid, Data: text})
	var got []KV
	parts := 0
	for range 10 {
		if r.Failed {
			t.Fatalf("part %d failed: %s", parts, m.FailReason)
		}
		if len(r.Data) > MaxLoginSegment {
			t.Fatalf("part %d has %d bytes", parts, len(r.Data))
		}
		// Each part ends at a key boundary here (the keys are short).
		if len(r.Data) == 0 || r.Data[len(r.Data)-1] != 0 {
			t.Fatalf("part %d does not end with a NUL", parts)
		}
		part, err := ParseKeys(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, part...)
		parts++
		if !r.Continue {
			break
		}
		if r.Transit || r.CSG != StageSecurity {
			t.Fatalf("continued part %d: %+v", parts, r)
		}
		// An empty request asks for the next part, whether or not it
		// keeps the T bit of the request being answered.
		r = m.Step(Request{Transit: parts%2 == 0, CSG: StageSecurity, NSG: StageOperational, ISID: isid})
	}
	if parts < 3 || r.Continue || !r.Transit || r.NSG != StageOperational {
		t.Fatalf("%d parts, last %+v", parts, r)
	}
	nu := 0
	for _, kv := range got {
		if kv.Value == "NotUnderstood" {
			nu++
		}
	}
	if nu != 700 {
		t.Fatalf("%d NotUnderstood answers in %d keys, want 700", nu, len(got))
	}

	// Anything but an empty request while a response is continued fails.
	m2 := New(env)
	text = EncodeKeys(kvs)
	for len(text) > MaxLoginSegment {
		m2.Step(Request{Continue: true, CSG: StageSecurity, NSG: StageOperational, ISID: isid, Data: text[:MaxLoginSegment]})
		text = text[MaxLoginSegment:]
	}
	if r := m2.Step(Request{Transit: true, CSG: StageSecurity, NSG: StageOperational, ISID: isid, Data: text}); !r.Continue {
		t.Fatalf("want a continued answer: %+v", r)
	}
	if r := m2.Step(Request{Transit: true, CSG: StageSecurity, NSG: StageOperational, ISID: isid, Data: EncodeKeys([]KV{{"HeaderDigest", "None"}})}); !r.Failed {
		t.Fatalf("a request with keys during a continued response: %+v", r)
	}
}

// A login that keeps sending new keys in the security stage (T=0, never
// authenticating) is ended once its text passes maxLoginText.
func TestLoginTextIsBounded(t *testing.T) {
	tg := &config.Target{Name: "iqn.2026-01.test:t", Params: config.DefaultParams()}
	env := Env{TPGT: 1, Rand: &countingRand{},
		JoinSession:  func(string, [6]byte, uint16) Status { return StatusSessionNotFound },
		Admit:        func(*Result) (uint16, Status) { return 7, StatusSuccess },
		LookupTarget: func(string, string) (*config.Target, Status) { return tg, StatusSuccess }}
	m := New(env)
	isid := [6]byte{0x80, 0, 0, 0, 0, 1}
	first := EncodeKeys([]KV{{"InitiatorName", "iqn.2026-01.test:i"}, {"TargetName", tg.Name}, {"SessionType", "Normal"}, {"AuthMethod", "None"}})
	if r := m.Step(Request{CSG: StageSecurity, NSG: StageOperational, ISID: isid, Data: first}); r.Failed {
		t.Fatalf("first request: %s", m.FailReason)
	}
	big := make([]byte, 8000)
	for i := range big {
		big[i] = 'v'
	}
	for i := range 100 {
		r := m.Step(Request{CSG: StageSecurity, NSG: StageOperational, ISID: isid,
			Data: EncodeKeys([]KV{{fmt.Sprintf("X-k%d", i), string(big)}})})
		if r.Failed {
			if i*8000 < maxLoginText-16000 {
				t.Fatalf("failed after %d bytes: %s", i*8000, m.FailReason)
			}
			return
		}
	}
	t.Fatalf("800 KB of login text accepted")
}
