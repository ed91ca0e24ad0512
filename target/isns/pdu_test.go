package isns

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestAttrEncodings(t *testing.T) {
	cases := []struct {
		a    Attr
		wire string // hex of tag, length, value
	}{
		{String(TagISCSIName, "iqn"), "00000020" + "00000004" + "69716e00"},
		{String(TagEID, "host"), "00000001" + "00000008" + "686f737400000000"},
		{String(TagISCSIAlias, ""), "00000022" + "00000004" + "00000000"},
		{Uint32(TagISCSINodeType, NodeTarget), "00000021" + "00000004" + "00000001"},
		{Port(TagPortalPort, 3260, false), "00000011" + "00000004" + "00000cbc"},
		{Port(TagPortalPort, 3260, true), "00000011" + "00000004" + "00010cbc"},
		{IP(TagPortalIPAddress, netip.MustParseAddr("127.0.0.1")), "00000010" + "00000010" + "00000000000000000000ffff7f000001"},
		{Delimiter(), "00000000" + "00000000"},
	}
	for _, c := range cases {
		got := appendAttrs(nil, []Attr{c.a})
		if h := hexs(got); h != c.wire {
			t.Errorf("%v: wire %s, want %s", c.a, h, c.wire)
		}
		back, err := ParseAttrs(got)
		if err != nil || len(back) != 1 || back[0].Tag != c.a.Tag || !bytes.Equal(back[0].Value, c.a.Value) {
			t.Errorf("%v: parsed back %v, %v", c.a, back, err)
		}
	}
	if s := String(TagISCSIName, "iqn.x").Str(); s != "iqn.x" {
		t.Errorf("Str %q", s)
	}
	if ip, ok := IP(TagPortalIPAddress, netip.MustParseAddr("::1")).IP(); !ok || ip.String() != "::1" {
		t.Errorf("IP %v %v", ip, ok)
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(d[c>>4])
		s.WriteByte(d[c&15])
	}
	return s.String()
}

func TestParseAttrsErrors(t *testing.T) {
	cases := []struct {
		in   []byte
		want string
	}{
		{[]byte{0, 0, 0, 1}, "need 8"},
		{append(be32(32, 3), 1, 2, 3), "not a multiple of 4"},
		{be32(32, 4), "runs past the end"},
		{be32(32, 0xFFFFFFFC), "runs past the end"},
	}
	for _, c := range cases {
		_, err := ParseAttrs(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%x: %v, want %q", c.in, err, c.want)
		}
	}
}

func be32(vs ...uint32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func TestHeaderErrors(t *testing.T) {
	good := Header{Version: 1, Function: DevAttrReg, Length: 8, Flags: FlagClient | FlagFirst | FlagLast, XID: 7}.append(nil)
	if h, err := ParseHeader(good); err != nil || h.XID != 7 || h.Length != 8 || h.Function != DevAttrReg {
		t.Fatalf("%+v %v", h, err)
	}
	bad := bytes.Clone(good)
	bad[1] = 2
	if _, err := ParseHeader(bad); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("version: %v", err)
	}
	bad = bytes.Clone(good)
	bad[5] = 6
	if _, err := ParseHeader(bad); err == nil || !strings.Contains(err.Error(), "multiple of 4") {
		t.Errorf("length: %v", err)
	}
	if _, err := ParseHeader(good[:11]); err == nil {
		t.Error("short header accepted")
	}
}

func roundTrip(t *testing.T, m *Message) *Message {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteMessage(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMessage(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("%d bytes left", buf.Len())
	}
	return got
}

func TestMessagesRoundTrip(t *testing.T) {
	e := &Entity{EID: "host.example", Period: 30 * time.Second,
		Portals: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:3260"), netip.MustParseAddrPort("[::1]:3260")},
		Nodes:   []Node{{Name: "iqn.2001-04.com.example:a", Alias: "disk a", PGT: 1}, {Name: "iqn.2001-04.com.example:b", PGT: 1}}}
	reg := RegisterRequest(e, e.Nodes[0].Name, FlagReplace)
	got := roundTrip(t, reg)
	if got.Function != DevAttrReg || got.Flags != FlagClient|FlagReplace {
		t.Errorf("function %v flags %#x", got.Function, got.Flags)
	}
	keys := got.Keys()
	if len(keys) != 2 || keys[0].Str() != e.Nodes[0].Name || keys[1].Tag != TagEID || keys[1].Str() != "host.example" {
		t.Errorf("keys %v", keys)
	}
	var names, pgs []string
	var portals []string
	for _, a := range got.Operating() {
		switch a.Tag {
		case TagISCSIName:
			names = append(names, a.Str())
		case TagPGISCSIName:
			pgs = append(pgs, a.Str())
		case TagPortalIPAddress:
			ip, _ := a.IP()
			portals = append(portals, ip.String())
		case TagRegistrationPeriod:
			if v, _ := a.Uint32(); v != 30 {
				t.Errorf("period %d", v)
			}
		}
	}
	if !reflect.DeepEqual(names, []string{e.Nodes[0].Name, e.Nodes[1].Name}) {
		t.Errorf("names %v", names)
	}
	if len(pgs) != 4 || !reflect.DeepEqual(portals, []string{"127.0.0.1", "::1"}) {
		t.Errorf("pgs %v portals %v", pgs, portals)
	}
	if a, ok := Find(got.Operating(), TagISCSIAlias); !ok || a.Str() != "disk a" {
		t.Errorf("alias %v", a)
	}

	d := roundTrip(t, DeregisterNodesRequest("iqn.s", []string{"iqn.a", "iqn.b"}))
	if d.Function != DevDereg || len(d.Keys()) != 1 || len(d.Operating()) != 2 || d.Operating()[1].Str() != "iqn.b" {
		t.Errorf("dereg %v", d.Attrs)
	}
	de := roundTrip(t, DeregisterEntityRequest("iqn.s", "eid"))
	if a, ok := Find(de.Operating(), TagEID); !ok || a.Str() != "eid" {
		t.Errorf("dereg entity %v", de.Attrs)
	}
	q := roundTrip(t, InitiatorsQuery("iqn.t"))
	if v, _ := q.Keys()[1].Uint32(); q.Function != DevAttrQry || v != NodeInitiator || len(q.Operating()) != 2 {
		t.Errorf("query %v", q.Attrs)
	}
}

func TestResponses(t *testing.T) {
	rsp := &Message{Function: DevAttrQry.Response(), Flags: FlagServer, XID: 9, Status: StatusSuccess,
		Attrs: []Attr{Uint32(TagISCSINodeType, NodeInitiator), Delimiter(),
			String(TagISCSIName, "iqn.i1"), Uint32(TagISCSINodeType, NodeInitiator),
			String(TagISCSIName, "iqn.t1"), Uint32(TagISCSINodeType, NodeTarget),
			String(TagISCSIName, "iqn.i2"), Uint32(TagISCSINodeType, NodeInitiator|NodeControl),
			String(TagISCSIName, "iqn.i3")}}
	got := roundTrip(t, rsp)
	if got.Status != StatusSuccess || got.XID != 9 || !got.Function.IsResponse() {
		t.Errorf("%+v", got)
	}
	if ini := Initiators(got); !reflect.DeepEqual(ini, []string{"iqn.i1", "iqn.i2", "iqn.i3"}) {
		t.Errorf("initiators %v", ini)
	}
	reg := &Message{Function: DevAttrReg.Response(), Status: StatusSuccess,
		Attrs: []Attr{String(TagEID, "e"), Delimiter(), String(TagEID, "e"), Uint32(TagRegistrationPeriod, 900)}}
	if p, ok := RegistrationPeriod(roundTrip(t, reg)); !ok || p != 900*time.Second {
		t.Errorf("period %v %v", p, ok)
	}
	fail := roundTrip(t, &Message{Function: DevDereg.Response(), Status: StatusSourceUnknown})
	if fail.Status != StatusSourceUnknown || fail.Status.Error() != "iSNS server: source unknown" {
		t.Errorf("%v", fail.Status)
	}
	if s := Status(99).String(); s != "status 99" {
		t.Error(s)
	}
	if s := Function(0x8002).String(); s != "DevAttrQryRsp" {
		t.Error(s)
	}
}

func TestSCN(t *testing.T) {
	m := &Message{Function: SCN, Flags: FlagServer, XID: 3, Attrs: []Attr{
		String(TagISCSIName, "iqn.t"), {Tag: TagTimestamp, Value: make([]byte, 8)},
		Uint32(TagISCSISCNBitmap, SCNObjectAdded), String(TagISCSIName, "iqn.i"),
		Uint32(TagISCSISCNBitmap, SCNMemberRemoved), Uint32(TagDDID, 4)}}
	info, ok := ParseSCN(roundTrip(t, m))
	if !ok || info.Destination != "iqn.t" || len(info.Changes) != 2 || info.Changes[0].Bitmap != SCNObjectAdded ||
		info.Changes[0].Attrs[0].Str() != "iqn.i" || info.Changes[1].Bitmap != SCNMemberRemoved {
		t.Errorf("%+v %v", info, ok)
	}
	r := roundTrip(t, SCNResponse(m, "iqn.t"))
	if r.Function != SCN.Response() || r.XID != 3 || r.Attrs[0].Str() != "iqn.t" {
		t.Errorf("%+v", r)
	}
	if _, ok := ParseSCN(&Message{Function: SCN, Attrs: []Attr{Uint32(TagDDID, 1)}}); ok {
		t.Error("SCN without destination accepted")
	}
}

func TestMultiPDU(t *testing.T) {
	m := &Message{Function: DevAttrQry.Response(), XID: 5}
	long := strings.Repeat("x", 200)
	for i := 0; i < 700; i++ { // ~147 KB: three PDUs
		m.Attrs = append(m.Attrs, String(TagISCSIName, long))
	}
	pdus, err := m.Encode()
	if err != nil || len(pdus) < 3 {
		t.Fatalf("%d PDUs, %v", len(pdus), err)
	}
	var buf bytes.Buffer
	for _, p := range pdus {
		buf.Write(p)
	}
	all := buf.Bytes()
	got, err := ReadMessage(bytes.NewReader(all), 0)
	if err != nil || len(got.Attrs) != 700 {
		t.Fatalf("%v attrs, %v", len(got.Attrs), err)
	}
	if _, err := ReadMessage(bytes.NewReader(all), 100000); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("bound: %v", err)
	}
	// Second PDU with another XID.
	bad := bytes.Clone(all)
	off := len(pdus[0])
	bad[off+9] = 6
	if _, err := ReadMessage(bytes.NewReader(bad), 0); err == nil || !strings.Contains(err.Error(), "transaction") {
		t.Errorf("xid: %v", err)
	}
	if _, err := ReadMessage(bytes.NewReader(all[:len(all)-3]), 0); err == nil {
		t.Error("truncated accepted")
	}
}

// FuzzReadMessage: the decoder never panics, never allocates more than
// its bound and what it decodes encodes back to the same message.
func FuzzReadMessage(f *testing.F) {
	for _, m := range []*Message{
		RegisterRequest(&Entity{EID: "e", Period: time.Minute, Portals: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:3260")},
			Nodes: []Node{{Name: "iqn.a", Alias: "x", PGT: 1}}}, "iqn.a", 0),
		InitiatorsQuery("iqn.t"),
		{Function: DevAttrQry.Response(), Status: 0, Attrs: []Attr{Delimiter(), String(TagISCSIName, "iqn.i")}},
		{Function: SCN, Attrs: []Attr{String(TagISCSIName, "iqn.t"), Uint32(TagISCSISCNBitmap, 8)}},
	} {
		pdus, _ := m.Encode()
		f.Add(bytes.Join(pdus, nil))
	}
	f.Add([]byte{0, 1, 0, 2, 0xff, 0xfc, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadMessage(bytes.NewReader(data), 1<<16)
		if err != nil {
			return
		}
		Initiators(m)
		RegistrationPeriod(m)
		ParseSCN(m)
		var buf bytes.Buffer
		if err := WriteMessage(&buf, m); err != nil {
			// Only an attribute that spanned PDUs on input and is
			// larger than one PDU cannot be written back.
			if !strings.Contains(err.Error(), "do not fit in a PDU") {
				t.Fatalf("re-encode: %v", err)
			}
			return
		}
		back, err := ReadMessage(&buf, 1<<16)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if back.Function != m.Function || back.Status != m.Status || len(back.Attrs) != len(m.Attrs) {
			t.Fatalf("round trip %+v != %+v", back, m)
		}
		for i := range m.Attrs {
			if back.Attrs[i].Tag != m.Attrs[i].Tag || !bytes.Equal(back.Attrs[i].Value, m.Attrs[i].Value) {
				t.Fatalf("attr %d: %v != %v", i, back.Attrs[i], m.Attrs[i])
			}
		}
	})
}
