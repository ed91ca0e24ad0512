package login

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
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
		return b, nil
	}
	return nil, errBadBinary
}

// EncodeHex encodes binary as 0x-prefixed hex.
func EncodeHex(b []byte) string { return "0x" + hex.EncodeToString(b) }

// chapResponse computes MD5(id || secret || challenge).
func chapResponse(id byte, secret string, challenge []byte) []byte {
	h := md5.New()
	h.Write([]byte{id})
	h.Write([]byte(secret))
	h.Write(challenge)
	return h.Sum(nil)
}

// chapVerify checks a response in constant time.
func chapVerify(id byte, secret string, challenge, response []byte) bool {
	want := chapResponse(id, secret, challenge)
	return subtle.ConstantTimeCompare(want, response) == 1
}
