package isns

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Attr is one TLV attribute. Value holds the bytes as on the wire (a
// string NUL-terminated and padded to a multiple of 4); an empty Value is
// a zero-length attribute (a query asking for that attribute, or the
// delimiter).
type Attr struct {
	Tag   uint32
	Value []byte
}

// Delimiter separates the message key from the operating attributes.
func Delimiter() Attr { return Attr{Tag: TagDelimiter} }

// Empty is a zero-length attribute: in a query, "return this attribute".
func Empty(tag uint32) Attr { return Attr{Tag: tag} }

// String is a NUL-terminated UTF-8 string attribute, padded to 4 bytes.
func String(tag uint32, s string) Attr {
	n := (len(s) + 1 + 3) &^ 3
	v := make([]byte, n)
	copy(v, s)
	return Attr{Tag: tag, Value: v}
}

// Uint32 is a 4-byte integer attribute.
func Uint32(tag, v uint32) Attr {
	return Attr{Tag: tag, Value: binary.BigEndian.AppendUint32(nil, v)}
}

// IP is a 16-byte address attribute (IPv4 as an IPv4-mapped address).
func IP(tag uint32, a netip.Addr) Attr {
	b := a.As16()
	return Attr{Tag: tag, Value: b[:]}
}

// Port is a TCP (udp false) or UDP port attribute.
func Port(tag uint32, port uint16, udp bool) Attr {
	v := uint32(port)
	if udp {
		v |= 1 << 16
	}
	return Uint32(tag, v)
}

// Str is the attribute's string value (up to the first NUL).
func (a Attr) Str() string {
	if i := bytes.IndexByte(a.Value, 0); i >= 0 {
		return string(a.Value[:i])
	}
	return string(a.Value)
}

// Uint32 is the attribute's 4-byte integer value.
func (a Attr) Uint32() (uint32, bool) {
	if len(a.Value) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(a.Value), true
}

// IP is the attribute's address (IPv4-mapped addresses unmapped).
func (a Attr) IP() (netip.Addr, bool) {
	if len(a.Value) != 16 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(a.Value)).Unmap(), true
}

func (a Attr) String() string {
	switch a.Tag {
	case TagEID, TagPortalSymName, TagISCSIName, TagISCSIAlias, TagPGISCSIName:
		return fmt.Sprintf("%d=%q", a.Tag, a.Str())
	case TagPortalIPAddress, TagPGPortalIPAddr, TagMgmtIPAddress:
		if ip, ok := a.IP(); ok {
			return fmt.Sprintf("%d=%s", a.Tag, ip)
		}
	}
	if v, ok := a.Uint32(); ok {
		return fmt.Sprintf("%d=%d", a.Tag, v)
	}
	return fmt.Sprintf("%d=%x", a.Tag, a.Value)
}

// appendAttrs appends the TLV encoding of attrs to b.
func appendAttrs(b []byte, attrs []Attr) []byte {
	for _, a := range attrs {
		b = binary.BigEndian.AppendUint32(b, a.Tag)
		b = binary.BigEndian.AppendUint32(b, uint32(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

// ParseAttrs splits b into attributes. The values alias b. A length
// running past the end of b, or one that is not a multiple of 4, is an
// error (RFC 4171 section 5.1.3: values are padded to 4 bytes).
func ParseAttrs(b []byte) ([]Attr, error) {
	var out []Attr
	off := 0
	for off < len(b) {
		if len(b)-off < 8 {
			return out, fmt.Errorf("attribute at byte %d: %d bytes left, a tag and length need 8", off, len(b)-off)
		}
		tag := binary.BigEndian.Uint32(b[off:])
		n := binary.BigEndian.Uint32(b[off+4:])
		if n%4 != 0 {
			return out, fmt.Errorf("attribute %d at byte %d: length %d is not a multiple of 4", tag, off, n)
		}
		if uint64(n) > uint64(len(b)-off-8) {
			return out, fmt.Errorf("attribute %d at byte %d: length %d runs past the end of the message", tag, off, n)
		}
		v := b[off+8 : off+8+int(n) : off+8+int(n)]
		if n == 0 {
			v = nil
		}
		out = append(out, Attr{Tag: tag, Value: v})
		off += 8 + int(n)
	}
	return out, nil
}
