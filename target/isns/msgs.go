package isns

import (
	"net/netip"
	"strings"
	"time"
)

// Entity is what a target daemon registers: one Network Entity with its
// portals and iSCSI target nodes.
type Entity struct {
	EID string
	// Period is the registration period asked for (0: none asked, the
	// server's default applies).
	Period  time.Duration
	Portals []netip.AddrPort
	Nodes   []Node
}

// Node is one iSCSI target node.
type Node struct {
	Name  string
	Alias string
	// PGT is the portal group tag joining the node to every portal of
	// the entity (IET's is always 1).
	PGT uint32
}

// RegisterRequest is a DevAttrReg of the whole entity: the key is the
// EID, the operating attributes the entity, its portals, its nodes and
// one portal group per node and portal. source is the iSCSI name the
// request comes from (one of the nodes, RFC 4171 section 5.6.5.1).
func RegisterRequest(e *Entity, source string, flags uint16) *Message {
	m := &Message{Function: DevAttrReg, Flags: FlagClient | flags}
	m.Attrs = append(m.Attrs, String(TagISCSIName, source), String(TagEID, e.EID), Delimiter(),
		String(TagEID, e.EID), Uint32(TagEntityProtocol, EntityProtocolISCSI))
	if e.Period > 0 {
		m.Attrs = append(m.Attrs, Uint32(TagRegistrationPeriod, uint32(e.Period/time.Second)))
	}
	for _, p := range e.Portals {
		m.Attrs = append(m.Attrs, IP(TagPortalIPAddress, p.Addr()), Port(TagPortalPort, p.Port(), false))
	}
	for _, n := range e.Nodes {
		m.Attrs = append(m.Attrs, String(TagISCSIName, n.Name), Uint32(TagISCSINodeType, NodeTarget))
		if n.Alias != "" {
			m.Attrs = append(m.Attrs, String(TagISCSIAlias, n.Alias))
		}
	}
	for _, n := range e.Nodes {
		for _, p := range e.Portals {
			m.Attrs = append(m.Attrs, String(TagPGISCSIName, n.Name), IP(TagPGPortalIPAddr, p.Addr()),
				Port(TagPGPortalPort, p.Port(), false), Uint32(TagPGTag, n.PGT))
		}
	}
	return m
}

// DeregisterNodesRequest is a DevDereg of the named nodes.
func DeregisterNodesRequest(source string, names []string) *Message {
	m := &Message{Function: DevDereg, Flags: FlagClient}
	m.Attrs = append(m.Attrs, String(TagISCSIName, source), Delimiter())
	for _, n := range names {
		m.Attrs = append(m.Attrs, String(TagISCSIName, n))
	}
	return m
}

// DeregisterEntityRequest is a DevDereg of the entity eid and everything
// in it.
func DeregisterEntityRequest(source, eid string) *Message {
	return &Message{Function: DevDereg, Flags: FlagClient,
		Attrs: []Attr{String(TagISCSIName, source), Delimiter(), String(TagEID, eid)}}
}

// InitiatorsQuery is a DevAttrQry from the target source for the iSCSI
// nodes of type initiator it may see (the server scopes the answer by
// the source's discovery domains), asking for their names and types.
func InitiatorsQuery(source string) *Message {
	return &Message{Function: DevAttrQry, Flags: FlagClient,
		Attrs: []Attr{String(TagISCSIName, source), Uint32(TagISCSINodeType, NodeInitiator), Delimiter(),
			Empty(TagISCSIName), Empty(TagISCSINodeType)}}
}

// Initiators are the names of the initiator nodes in a DevAttrQry
// response's operating attributes (a name followed by a node type
// without the initiator bit is left out).
func Initiators(rsp *Message) []string {
	var out []string
	ops := rsp.Operating()
	for i, a := range ops {
		if a.Tag != TagISCSIName || len(a.Value) == 0 {
			continue
		}
		if i+1 < len(ops) && ops[i+1].Tag == TagISCSINodeType {
			if t, ok := ops[i+1].Uint32(); ok && t&NodeInitiator == 0 {
				continue
			}
		}
		out = append(out, a.Str())
	}
	return out
}

// RegistrationPeriod is the period a DevAttrReg or DevAttrQry response
// gives (ok false when it gives none).
func RegistrationPeriod(rsp *Message) (time.Duration, bool) {
	a, ok := Find(rsp.Attrs, TagRegistrationPeriod)
	if !ok {
		return 0, false
	}
	v, ok := a.Uint32()
	return time.Duration(v) * time.Second, ok
}

// SCNEventInfo is what an SCN message tells (RFC 4171 section 5.6.5.8):
// the node it is for, and for each changed object its SCN bitmap and
// the attributes that name it.
type SCNEventInfo struct {
	Destination string
	Changes     []SCNChange
}

// SCNChange is one object an SCN reports.
type SCNChange struct {
	Bitmap uint32
	Attrs  []Attr
}

// ParseSCN decodes an SCN message: the destination iSCSI name, a
// timestamp, then for each change an SCN bitmap followed by the source
// attributes.
func ParseSCN(m *Message) (SCNEventInfo, bool) {
	var info SCNEventInfo
	if m.Function != SCN || len(m.Attrs) == 0 || m.Attrs[0].Tag != TagISCSIName {
		return info, false
	}
	info.Destination = m.Attrs[0].Str()
	for _, a := range m.Attrs[1:] {
		switch a.Tag {
		case TagTimestamp, TagDelimiter:
		case TagISCSISCNBitmap:
			v, _ := a.Uint32()
			info.Changes = append(info.Changes, SCNChange{Bitmap: v})
		default:
			if len(info.Changes) == 0 {
				return info, false
			}
			c := &info.Changes[len(info.Changes)-1]
			c.Attrs = append(c.Attrs, a)
		}
	}
	return info, true
}

// SCNResponse is the client's answer to an SCN: success and the
// destination name.
func SCNResponse(m *Message, dest string) *Message {
	return &Message{Function: SCN.Response(), Flags: FlagClient, XID: m.XID, Status: StatusSuccess,
		Attrs: []Attr{String(TagISCSIName, dest)}}
}

// ErrorResponse answers a request the client does not handle (ESI is
// answered by the Registrar's Client with this too when it arrives on
// its connection).
func ErrorResponse(m *Message, s Status) *Message {
	return &Message{Function: m.Function.Response(), Flags: FlagClient, XID: m.XID, Status: s}
}

// sameName compares iSCSI names (case-insensitive, RFC 3722).
func sameName(a, b string) bool { return strings.EqualFold(a, b) }
