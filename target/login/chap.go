package login

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
)

// CHAP algorithm identifiers (RFC 1994 / RFC 7143 12.1.3).
const chapMD5 = "5"

// ChallengeLen is the length of the challenges we send.
const ChallengeLen = 32

// Limits on initiator challenges (mutual CHAP).
const (
	minInitiatorChallenge = 1
	maxInitiatorChallenge = 1024
)

var errBadBinary = errors.New("bad binary value")

// DecodeBinary decodes a CHAP binary value: "0x"/"0X" hex or "0b"/"0B"
// base64 (RFC 7143 section 6.1).
func DecodeBinary(s string) ([]byte, error) {
	if len(s) < 3 || len(s) > MaxBinaryValueLen {
		return nil, errBadBinary
	}
	switch s[:2] {
	case "0x", "0X":
		h := s[2:]
		if len(h)%2 == 1 {
			h = "0" + h
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			return nil, errBadBinary
		}
		return b, nil
	case "0b", "0B":
		b, err := base64.StdEncoding.DecodeString(s[2:])
		if err != nil {
			b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(s[2:], "="))
			if err != nil {
				return nil, errBadBinary
			}
		}
		if len(b) == 0 {
			return nil, errBadBinary // "0b====": no byte at all
		}
		return b, nil
	}
	return nil, errBadBinary
}

// EncodeHex encodes binary as 0x-prefixed hex.
func EncodeHex(b []byte) string { return "0x" + hex.EncodeToString(b) }

// chapAlgorithms are the CHAP_A values we accept (IANA PPP authentication
// algorithms: 5 MD5, 6 SHA-1, 7 SHA-256, 8 SHA3-256), strongest first when
// the initiator leaves the choice open.
var chapAlgorithms = map[string]func() hash.Hash{
	chapMD5: md5.New,
	"6":     sha1.New,
	"7":     sha256.New,
	"8":     func() hash.Hash { return sha3.New256() },
}

// chooseCHAP picks the first algorithm of the initiator's list we support.
func chooseCHAP(offers []string) (string, bool) {
	for _, o := range offers {
		if _, ok := chapAlgorithms[o]; ok {
			return o, true
		}
	}
	return "", false
}

// chapResponse computes MD5(id || secret || challenge).
func chapResponse(id byte, secret string, challenge []byte) []byte {
	return chapResponseAlg(chapMD5, id, secret, challenge)
}

// chapResponseAlg computes H(id || secret || challenge) with alg's hash.
func chapResponseAlg(alg string, id byte, secret string, challenge []byte) []byte {
	newHash, ok := chapAlgorithms[alg]
	if !ok {
		newHash = md5.New
	}
	h := newHash()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return h.Sum(nil)
}

// chapVerify checks a response in constant time. An empty secret never
// verifies: anyone can compute the response to it.
func chapVerify(alg string, id byte, secret string, challenge, response []byte) bool {
	if secret == "" {
		return false
	}
	want := chapResponseAlg(alg, id, secret, challenge)
	return subtle.ConstantTimeCompare(want, response) == 1
}
