package login

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

func FuzzLoginKeys(f *testing.F) {
	f.Add([]byte("InitiatorName=iqn.x\x00SessionType=Discovery\x00"))
	f.Add([]byte("a=b\x00\x00=c"))
	f.Add([]byte("MaxBurstLength=0x10000\x00HeaderDigest=CRC32C,None"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kvs, err := ParseKeys(data)
		if err != nil {
			return
		}
		again, err := ParseKeys(EncodeKeys(kvs))
		if err != nil || len(again) != len(kvs) {
			t.Fatalf("re-parse: %v %d != %d", err, len(again), len(kvs))
		}
		var p Params
		lim := limits{cfg: config.DefaultParams()}
		for _, kv := range kvs {
			_ = lim.negotiate(&p, kv.Key, kv.Value)
			_, _ = DecodeBinary(kv.Value)
		}
	})
}

// FuzzLoginStateMachine drives a Machine with arbitrary request sequences:
// it must never panic, and must never finish a login to a target with an
// incoming account without a valid CHAP response.
func FuzzLoginStateMachine(f *testing.F) {
	f.Add([]byte{0x81, 0}, []byte("InitiatorName=i\x00TargetName=t\x00AuthMethod=CHAP\x00"), []byte("CHAP_A=5\x00"), []byte("CHAP_N=u\x00CHAP_R=0x00\x00"))
	f.Add([]byte{0x87, 0x87}, []byte("InitiatorName=i\x00TargetName=t\x00"), []byte("CHAP_N=u\x00"), []byte{})
	f.Fuzz(func(t *testing.T, flags []byte, d1, d2, d3 []byte) {
		tg := config.NewTarget(1, "t")
		tg.Auth.Incoming = []config.Account{{User: "u", Secret: "secretsecret"}}
		m := New(Env{
			LookupTarget: func(n, i string) (*config.Target, Status) {
				if n == "t" {
					return tg, StatusSuccess
				}
				return nil, StatusNotFound
			},
			Rand: &countingRand{},
		})
		for i, d := range [][]byte{d1, d2, d3} {
			fl := byte(0x81)
			if i < len(flags) {
				fl = flags[i]
			}
			resp := m.Step(Request{Transit: fl&0x80 != 0, Continue: fl&0x40 != 0, CSG: int(fl>>2) & 3, NSG: int(fl & 3), Data: d})
			if resp.Done && m.Result().AuthUser == "" {
				t.Fatal("login finished without authentication")
			}
			if resp.Failed {
				return
			}
		}
	})
}

func TestParseKeys(t *testing.T) {
	kvs, err := ParseKeys([]byte("A=1\x00B=x=y\x00C=\x00\x00"))
	if err != nil || len(kvs) != 3 || kvs[1].Value != "x=y" || kvs[2].Value != "" {
		t.Fatalf("%v %+v", err, kvs)
	}
	if _, err := ParseKeys([]byte("novalue\x00")); err == nil {
		t.Fatal("missing '=' accepted")
	}
	if _, err := ParseKeys([]byte(strings.Repeat("k", MaxKeyLen) + "=1\x00")); err != nil {
		t.Fatalf("key of %d bytes refused: %v", MaxKeyLen, err)
	}
	if _, err := ParseKeys([]byte(strings.Repeat("k", MaxKeyLen+1) + "=1\x00")); !errors.Is(err, ErrBadText) {
		t.Fatalf("key of %d bytes: %v", MaxKeyLen+1, err)
	}
	if !bytes.Equal(EncodeKeys(kvs), []byte("A=1\x00B=x=y\x00C=\x00")) {
		t.Fatal("encode")
	}
}

func TestDecodeBinary(t *testing.T) {
	for in, want := range map[string]string{"0x0a0B": "\x0a\x0b", "0Xabc": "\x0a\xbc", "0bAQID": "\x01\x02\x03", "0bAQI": "\x01\x02"} {
		got, err := DecodeBinary(in)
		if err != nil || string(got) != want {
			t.Errorf("%s: %x %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0x", "12", "0xzz", "0b!!"} {
		if _, err := DecodeBinary(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestParamsSendLimit(t *testing.T) {
	p := defaultParams()
	p.InitiatorMaxRecvDSL = 262144
	p.MaxXmitDSL = 65536
	if p.SendSegmentLimit() != 65536 {
		t.Fatal(p.SendSegmentLimit())
	}
	p.MaxXmitDSL = 0
	if p.SendSegmentLimit() != 262144 {
		t.Fatal(p.SendSegmentLimit())
	}
}
