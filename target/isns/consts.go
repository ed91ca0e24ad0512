package isns

// Version is the iSNSP version of RFC 4171.
const Version = 1

// HeaderLen is the length of the iSNSP PDU header.
const HeaderLen = 12

// DefaultPort is the IANA port of iSNS.
const DefaultPort = 3205

// Function IDs (RFC 4171 section 6.1). A response is its request's ID
// with the high bit set.
type Function uint16

const (
	DevAttrReg  Function = 0x0001
	DevAttrQry  Function = 0x0002
	DevGetNext  Function = 0x0003
	DevDereg    Function = 0x0004
	SCNReg      Function = 0x0005
	SCNDereg    Function = 0x0006
	SCNEvent    Function = 0x0007
	SCN         Function = 0x0008
	ESI         Function = 0x000D
	ResponseBit Function = 0x8000
)

// Response is the function ID of f's response.
func (f Function) Response() Function { return f | ResponseBit }

// IsResponse tells whether f is a response.
func (f Function) IsResponse() bool { return f&ResponseBit != 0 }

func (f Function) String() string {
	names := map[Function]string{DevAttrReg: "DevAttrReg", DevAttrQry: "DevAttrQry", DevGetNext: "DevGetNext",
		DevDereg: "DevDereg", SCNReg: "SCNReg", SCNDereg: "SCNDereg", SCNEvent: "SCNEvent", SCN: "SCN", ESI: "ESI"}
	n, ok := names[f&^ResponseBit]
	if !ok {
		n = "function 0x" + hex16(uint16(f&^ResponseBit))
	}
	if f.IsResponse() {
		n += "Rsp"
	}
	return n
}

func hex16(v uint16) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[v>>12], digits[v>>8&15], digits[v>>4&15], digits[v&15]})
}

// Header flags (RFC 4171 section 5.1.4).
const (
	FlagClient  uint16 = 0x8000 // sender is an iSNS client
	FlagServer  uint16 = 0x4000 // sender is the iSNS server
	FlagAuth    uint16 = 0x2000 // authentication block present
	FlagReplace uint16 = 0x1000 // DevAttrReg: replace the keyed object
	FlagLast    uint16 = 0x0800 // last PDU of the message
	FlagFirst   uint16 = 0x0400 // first PDU of the message
)

// Attribute tags (RFC 4171 section 6.1) used here.
const (
	TagDelimiter          uint32 = 0
	TagEID                uint32 = 1
	TagEntityProtocol     uint32 = 2
	TagMgmtIPAddress      uint32 = 3
	TagTimestamp          uint32 = 4
	TagRegistrationPeriod uint32 = 6
	TagEntityIndex        uint32 = 7
	TagPortalIPAddress    uint32 = 16
	TagPortalPort         uint32 = 17
	TagPortalSymName      uint32 = 18
	TagESIInterval        uint32 = 19
	TagESIPort            uint32 = 20
	TagSCNPort            uint32 = 23
	TagISCSIName          uint32 = 32
	TagISCSINodeType      uint32 = 33
	TagISCSIAlias         uint32 = 34
	TagISCSISCNBitmap     uint32 = 35
	TagPGISCSIName        uint32 = 48
	TagPGPortalIPAddr     uint32 = 49
	TagPGPortalPort       uint32 = 50
	TagPGTag              uint32 = 51
	TagDDID               uint32 = 2065
)

// Entity protocols (tag 2).
const EntityProtocolISCSI uint32 = 2

// iSCSI node types (tag 33), bits counted from the least significant.
const (
	NodeTarget    uint32 = 1 << 0
	NodeInitiator uint32 = 1 << 1
	NodeControl   uint32 = 1 << 2
)

// iSCSI SCN bitmap bits (tag 35).
const (
	SCNMemberAdded   uint32 = 1 << 0
	SCNMemberRemoved uint32 = 1 << 1
	SCNObjectUpdated uint32 = 1 << 2
	SCNObjectAdded   uint32 = 1 << 3
	SCNObjectRemoved uint32 = 1 << 4
	SCNManagement    uint32 = 1 << 5
	SCNTargetSelf    uint32 = 1 << 6
	SCNInitiatorSelf uint32 = 1 << 7
)

// Status is a response's status code (RFC 4171 section 6.4).
type Status uint32

const (
	StatusSuccess             Status = 0
	StatusUnknownError        Status = 1
	StatusFormatError         Status = 2
	StatusInvalidRegistration Status = 3
	StatusInvalidQuery        Status = 5
	StatusSourceUnknown       Status = 6
	StatusSourceAbsent        Status = 7
	StatusSourceUnauthorized  Status = 8
	StatusNoSuchEntry         Status = 9
	StatusVersionNotSupported Status = 10
	StatusInternalError       Status = 11
	StatusBusy                Status = 12
	StatusOptionNotUnderstood Status = 13
	StatusInvalidUpdate       Status = 14
	StatusNotSupported        Status = 15
	StatusAttrNotImplemented  Status = 18
	StatusESINotAvailable     Status = 21
	StatusInvalidDereg        Status = 22
)

var statusText = map[Status]string{
	StatusSuccess: "successful", StatusUnknownError: "unknown error", StatusFormatError: "message format error",
	StatusInvalidRegistration: "invalid registration", StatusInvalidQuery: "invalid query",
	StatusSourceUnknown: "source unknown", StatusSourceAbsent: "source absent",
	StatusSourceUnauthorized: "source unauthorized", StatusNoSuchEntry: "no such entry",
	StatusVersionNotSupported: "version not supported", StatusInternalError: "internal error",
	StatusBusy: "busy", StatusOptionNotUnderstood: "option not understood", StatusInvalidUpdate: "invalid update",
	StatusNotSupported: "message not supported", StatusAttrNotImplemented: "attribute not implemented",
	StatusESINotAvailable: "ESI not available", StatusInvalidDereg: "invalid deregistration",
}

func (s Status) String() string {
	if t, ok := statusText[s]; ok {
		return t
	}
	return "status " + itoa(uint32(s))
}

// Error is a response with a status other than success.
func (s Status) Error() string { return "iSNS server: " + s.String() }

func itoa(v uint32) string {
	if v == 0 {
		return "0"
	}
	var b [10]byte
	i := len(b)
	for v > 0 {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b[i:])
}
