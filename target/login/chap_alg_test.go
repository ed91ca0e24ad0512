package login

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha3"
	"testing"
)

func TestCHAPAlgorithms(t *testing.T) {
	if a, ok := chooseCHAP([]string{"99", "7", "5"}); !ok || a != "7" {
		t.Fatalf("chooseCHAP picked %q %v, want the initiator's first supported (7)", a, ok)
	}
	if _, ok := chooseCHAP([]string{"99", "x"}); ok {
		t.Fatal("unsupported list accepted")
	}
	ch := []byte("challenge-bytes-0123456789abcdef")
	in := append(append([]byte{42}, "secretsecret"...), ch...)
	m := md5.Sum(in)
	s2 := sha256.Sum256(in)
	s3 := sha3.Sum256(in)
	for alg, want := range map[string][]byte{"5": m[:], "7": s2[:], "8": s3[:]} {
		got := chapResponseAlg(alg, 42, "secretsecret", ch)
		if string(got) != string(want) {
			t.Errorf("alg %s: response differs", alg)
		}
		if !chapVerify(alg, 42, "secretsecret", ch, got) || chapVerify(alg, 42, "wrongsecret!", ch, got) {
			t.Errorf("alg %s: verify wrong", alg)
		}
	}
	if len(chapResponseAlg("6", 1, "s", ch)) != 20 {
		t.Error("SHA-1 response must be 20 bytes")
	}
}
