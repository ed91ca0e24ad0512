package isns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxPDUPayload is the largest payload one PDU carries (the length field
// is 16 bits; payloads are whole 4-byte words).
const MaxPDUPayload = 0xFFFC

// DefaultMaxMessage bounds a message reassembled from several PDUs.
const DefaultMaxMessage = 1 << 20

// Header is the 12-byte iSNSP PDU header.
type Header struct {
	Version  uint16
	Function Function
	Length   uint16 // payload length
	Flags    uint16
	XID      uint16 // transaction ID
	Seq      uint16 // sequence ID of this PDU within the message
}

// ParseHeader decodes a PDU header.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLen {
		return Header{}, fmt.Errorf("iSNSP header: %d bytes, need %d", len(b), HeaderLen)
	}
	h := Header{
		Version:  binary.BigEndian.Uint16(b[0:]),
		Function: Function(binary.BigEndian.Uint16(b[2:])),
		Length:   binary.BigEndian.Uint16(b[4:]),
		Flags:    binary.BigEndian.Uint16(b[6:]),
		XID:      binary.BigEndian.Uint16(b[8:]),
		Seq:      binary.BigEndian.Uint16(b[10:]),
	}
	if h.Version != Version {
		return h, fmt.Errorf("iSNSP version %d, want %d", h.Version, Version)
	}
	if h.Length%4 != 0 {
		return h, fmt.Errorf("iSNSP %v: payload length %d is not a multiple of 4", h.Function, h.Length)
	}
	return h, nil
}

func (h Header) append(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Function))
	b = binary.BigEndian.AppendUint16(b, h.Length)
	b = binary.BigEndian.AppendUint16(b, h.Flags)
	b = binary.BigEndian.AppendUint16(b, h.XID)
	return binary.BigEndian.AppendUint16(b, h.Seq)
}

// Message is one iSNSP message (one or more PDUs of one transaction).
type Message struct {
	Function Function
	// Flags are the header flags other than First and Last (set by
	// Encode).
	Flags uint16
	XID   uint16
	// Status is a response's status (responses only: the first word of
	// their payload).
	Status Status
	// Attrs in wire order, delimiters included (Tag 0): for a request the
	// source, the message key, a delimiter and the operating attributes;
	// for a response the key and operating attributes.
	Attrs []Attr
}

// Keys are the attributes before the first delimiter (a request's source
// first).
func (m *Message) Keys() []Attr {
	for i, a := range m.Attrs {
		if a.Tag == TagDelimiter {
			return m.Attrs[:i]
		}
	}
	return m.Attrs
}

// Operating are the attributes after the first delimiter.
func (m *Message) Operating() []Attr {
	for i, a := range m.Attrs {
		if a.Tag == TagDelimiter {
			return m.Attrs[i+1:]
		}
	}
	return nil
}

// Find returns the first attribute with tag in attrs.
func Find(attrs []Attr, tag uint32) (Attr, bool) {
	for _, a := range attrs {
		if a.Tag == tag {
			return a, true
		}
	}
	return Attr{}, false
}

// payload is the message's payload as one byte string.
func (m *Message) payload() []byte {
	var b []byte
	if m.Function.IsResponse() {
		b = binary.BigEndian.AppendUint32(b, uint32(m.Status))
	}
	return appendAttrs(b, m.Attrs)
}

// Encode returns the message as PDUs, split on attribute boundaries when
// it does not fit in one. An attribute larger than a PDU is an error.
func (m *Message) Encode() ([][]byte, error) {
	var chunks [][]byte
	var cur []byte
	if m.Function.IsResponse() {
		cur = binary.BigEndian.AppendUint32(cur, uint32(m.Status))
	}
	for _, a := range m.Attrs {
		enc := appendAttrs(nil, []Attr{a})
		if len(enc) > MaxPDUPayload {
			return nil, fmt.Errorf("attribute %d: %d bytes do not fit in a PDU", a.Tag, len(a.Value))
		}
		if len(cur)+len(enc) > MaxPDUPayload {
			chunks = append(chunks, cur)
			cur = nil
		}
		cur = append(cur, enc...)
	}
	chunks = append(chunks, cur)
	if len(chunks) > 0xFFFF {
		return nil, errors.New("message too large")
	}
	out := make([][]byte, len(chunks))
	for i, c := range chunks {
		h := Header{Version: Version, Function: m.Function, Length: uint16(len(c)),
			Flags: m.Flags &^ (FlagFirst | FlagLast), XID: m.XID, Seq: uint16(i)}
		if i == 0 {
			h.Flags |= FlagFirst
		}
		if i == len(chunks)-1 {
			h.Flags |= FlagLast
		}
		out[i] = append(h.append(make([]byte, 0, HeaderLen+len(c))), c...)
	}
	return out, nil
}

// WriteMessage writes m's PDUs to w.
func WriteMessage(w io.Writer, m *Message) error {
	pdus, err := m.Encode()
	if err != nil {
		return err
	}
	for _, p := range pdus {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// ReadMessage reads the PDUs of one message from r (until the one with
// the Last flag) and decodes it. max bounds the reassembled payload
// (DefaultMaxMessage when 0); nothing larger than that and one PDU is
// allocated, whatever the headers claim.
func ReadMessage(r io.Reader, max int) (*Message, error) {
	if max <= 0 {
		max = DefaultMaxMessage
	}
	var first Header
	var payload []byte
	var hb [HeaderLen]byte
	for seq := 0; ; seq++ {
		if _, err := io.ReadFull(r, hb[:]); err != nil {
			if seq > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h, err := ParseHeader(hb[:])
		if err != nil {
			return nil, err
		}
		if seq == 0 {
			first = h
		} else if h.Function != first.Function || h.XID != first.XID {
			return nil, fmt.Errorf("iSNSP: PDU of %v transaction %d inside %v transaction %d", h.Function, h.XID, first.Function, first.XID)
		}
		if int(h.Seq) != seq {
			return nil, fmt.Errorf("iSNSP %v: PDU sequence %d, want %d", h.Function, h.Seq, seq)
		}
		if len(payload)+int(h.Length) > max {
			return nil, fmt.Errorf("iSNSP %v: message longer than %d bytes", h.Function, max)
		}
		n := len(payload)
		payload = append(payload, make([]byte, h.Length)...)
		if _, err := io.ReadFull(r, payload[n:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if h.Flags&FlagLast != 0 {
			break
		}
	}
	return DecodePayload(first.Function, first.Flags&^(FlagFirst|FlagLast), first.XID, payload)
}

// DecodePayload decodes a reassembled message payload.
func DecodePayload(f Function, flags, xid uint16, payload []byte) (*Message, error) {
	m := &Message{Function: f, Flags: flags, XID: xid}
	if flags&FlagAuth != 0 {
		return m, fmt.Errorf("iSNSP %v: authentication blocks are not supported", f)
	}
	if f.IsResponse() {
		if len(payload) < 4 {
			return m, fmt.Errorf("iSNSP %v: no status", f)
		}
		m.Status = Status(binary.BigEndian.Uint32(payload))
		payload = payload[4:]
	}
	attrs, err := ParseAttrs(payload)
	m.Attrs = attrs
	if err != nil {
		return m, fmt.Errorf("iSNSP %v: %w", f, err)
	}
	return m, nil
}
