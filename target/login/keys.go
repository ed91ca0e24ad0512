package login

import (
	"bytes"
	"errors"
	"fmt"
)

// KV is one key=value pair of a text data segment.
type KV struct {
	Key, Value string
}

// Limits from RFC 7143 section 6.1.
const (
	MaxKeyLen   = 63
	MaxValueLen = 255
	// MaxBinaryValueLen bounds encoded binary values (CHAP_C/CHAP_R).
	MaxBinaryValueLen = 8192
)

// ErrBadText is wrapped by ParseKeys errors.
var ErrBadText = errors.New("malformed text key")

// ParseKeys parses a text data segment: key=value pairs each terminated by
// a NUL byte (a missing final NUL is tolerated; empty entries from extra
// NUL padding are skipped). It returns an error for a pair without '=',
// with an empty key or with a key longer than MaxKeyLen (RFC 7143 6.1).
func ParseKeys(data []byte) ([]KV, error) {
	var out []KV
	for len(data) > 0 {
		i := bytes.IndexByte(data, 0)
		var item []byte
		if i < 0 {
			item, data = data, nil
		} else {
			item, data = data[:i], data[i+1:]
		}
		if len(item) == 0 {
			continue
		}
		eq := bytes.IndexByte(item, '=')
		if eq <= 0 {
			return out, fmt.Errorf("%w: %q", ErrBadText, truncate(item))
		}
		if eq > MaxKeyLen {
			return out, fmt.Errorf("%w: key of %d bytes (at most %d): %q", ErrBadText, eq, MaxKeyLen, truncate(item))
		}
		out = append(out, KV{Key: string(item[:eq]), Value: string(item[eq+1:])})
	}
	return out, nil
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}

// AppendKey appends key=value and a NUL terminator.
func AppendKey(dst []byte, key, value string) []byte {
	dst = append(dst, key...)
	dst = append(dst, '=')
	dst = append(dst, value...)
	return append(dst, 0)
}

// EncodeKeys encodes pairs in order.
func EncodeKeys(kvs []KV) []byte {
	var b []byte
	for _, kv := range kvs {
		b = AppendKey(b, kv.Key, kv.Value)
	}
	return b
}
