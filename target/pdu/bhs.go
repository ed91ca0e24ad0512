package pdu

import "encoding/binary"

// BHSLen is the length of the Basic Header Segment.
const BHSLen = 48

// Opcode is an iSCSI PDU opcode (the low 6 bits of byte 0).
type Opcode uint8

// Initiator opcodes.
const (
	OpNOPOut     Opcode = 0x00
	OpSCSICmd    Opcode = 0x01
	OpTMFReq     Opcode = 0x02
	OpLoginReq   Opcode = 0x03
	OpTextReq    Opcode = 0x04
	OpDataOut    Opcode = 0x05
	OpLogoutReq  Opcode = 0x06
	OpSNACK      Opcode = 0x10
	OpNOPIn      Opcode = 0x20
	OpSCSIResp   Opcode = 0x21
	OpTMFResp    Opcode = 0x22
	OpLoginResp  Opcode = 0x23
	OpTextResp   Opcode = 0x24
	OpDataIn     Opcode = 0x25
	OpLogoutResp Opcode = 0x26
	OpR2T        Opcode = 0x31
	OpAsync      Opcode = 0x32
	OpReject     Opcode = 0x3f
)

var opNames = map[Opcode]string{
	OpNOPOut: "NOP-Out", OpSCSICmd: "SCSI-Command", OpTMFReq: "TMF-Request",
	OpLoginReq: "Login-Request", OpTextReq: "Text-Request", OpDataOut: "Data-Out",
	OpLogoutReq: "Logout-Request", OpSNACK: "SNACK", OpNOPIn: "NOP-In",
	OpSCSIResp: "SCSI-Response", OpTMFResp: "TMF-Response", OpLoginResp: "Login-Response",
	OpTextResp: "Text-Response", OpDataIn: "Data-In", OpLogoutResp: "Logout-Response",
	OpR2T: "R2T", OpAsync: "Async-Message", OpReject: "Reject",
}

func (o Opcode) String() string {
	if n, ok := opNames[o]; ok {
		return n
	}
	return "Opcode(0x" + hex2(byte(o)) + ")"
}

func hex2(b byte) string {
	const d = "0123456789abcdef"
	return string([]byte{d[b>>4], d[b&15]})
}

// Flag bits of byte 1.
const (
	FlagFinal    = 0x80 // F: final PDU of a sequence
	FlagRead     = 0x40 // R: SCSI Command expects Data-In
	FlagWrite    = 0x20 // W: SCSI Command carries Data-Out
	FlagContinue = 0x40 // C: Text/Login continues in the next PDU
	FlagTransit  = 0x80 // T: Login stage transition
	FlagAck      = 0x40 // A: Data-In acknowledge (ERL>0)
	FlagBiOver   = 0x10 // o: bidirectional read residual overflow
	FlagBiUnder  = 0x08 // u: bidirectional read residual underflow
	FlagOver     = 0x04 // O: residual overflow
	FlagUnder    = 0x02 // U: residual underflow
	FlagStatus   = 0x01 // S: Data-In carries status
)

// Reserved tag value.
const ReservedTag = 0xffffffff

// Field offsets shared by several opcodes (RFC 7143 section 11).
const (
	OffLUN       = 8
	OffITT       = 16
	OffTTT       = 20 // TTT, EDTL (SCSI Command), RTT (TMF), SNACK Tag
	OffCmdSN     = 24 // CmdSN (requests), StatSN (responses)
	OffExpStatSN = 28 // ExpStatSN (requests), ExpCmdSN (responses)
	OffMaxCmdSN  = 32 // MaxCmdSN (responses), RefCmdSN (TMF)
	OffDataSN    = 36 // DataSN, R2TSN, ExpDataSN, StatusClass (login)
	OffBufOffset = 40 // Buffer Offset, Bidi residual (SCSI Response)
	OffResidual  = 44 // Residual count, Desired Data Transfer Length (R2T)
	OffCDB       = 32 // SCSI Command CDB (16 bytes)
)

// BHS is a Basic Header Segment. Its methods read and write fields in
// place; it never allocates.
type BHS [BHSLen]byte

// Opcode returns the opcode.
func (h *BHS) Opcode() Opcode { return Opcode(h[0] & 0x3f) }

// Immediate reports the I bit.
func (h *BHS) Immediate() bool { return h[0]&0x40 != 0 }

// SetOpcode sets the opcode and clears the I bit.
func (h *BHS) SetOpcode(o Opcode) { h[0] = byte(o) & 0x3f }

// Flags returns byte 1.
func (h *BHS) Flags() byte { return h[1] }

// SetFlags sets byte 1.
func (h *BHS) SetFlags(f byte) { h[1] = f }

// Final reports the F bit.
func (h *BHS) Final() bool { return h[1]&FlagFinal != 0 }

// AHSLen is TotalAHSLength in bytes (the field counts 4-byte words).
func (h *BHS) AHSLen() int { return int(h[4]) * 4 }

// DataLen is DataSegmentLength (without padding).
func (h *BHS) DataLen() int { return int(h[5])<<16 | int(h[6])<<8 | int(h[7]) }

// SetDataLen sets DataSegmentLength (n must be < 1<<24) and clears TotalAHSLength.
func (h *BHS) SetDataLen(n int) {
	h[4] = 0
	h[5], h[6], h[7] = byte(n>>16), byte(n>>8), byte(n)
}

// U32 reads the big-endian 32-bit field at off.
func (h *BHS) U32(off int) uint32 { return binary.BigEndian.Uint32(h[off:]) }

// SetU32 writes the big-endian 32-bit field at off.
func (h *BHS) SetU32(off int, v uint32) { binary.BigEndian.PutUint32(h[off:], v) }

// U16 reads the big-endian 16-bit field at off.
func (h *BHS) U16(off int) uint16 { return binary.BigEndian.Uint16(h[off:]) }

// SetU16 writes the big-endian 16-bit field at off.
func (h *BHS) SetU16(off int, v uint16) { binary.BigEndian.PutUint16(h[off:], v) }

// LUNField returns the raw 8-byte LUN field.
func (h *BHS) LUNField() uint64 { return binary.BigEndian.Uint64(h[OffLUN:]) }

// SetLUNField sets the raw 8-byte LUN field.
func (h *BHS) SetLUNField(v uint64) { binary.BigEndian.PutUint64(h[OffLUN:], v) }

// ITT returns the Initiator Task Tag.
func (h *BHS) ITT() uint32 { return h.U32(OffITT) }

// TTT returns bytes 20..23 (Target Transfer Tag, EDTL, RTT).
func (h *BHS) TTT() uint32 { return h.U32(OffTTT) }

// CmdSN returns bytes 24..27 (CmdSN in requests, StatSN in responses).
func (h *BHS) CmdSN() uint32 { return h.U32(OffCmdSN) }

// ExpStatSN returns bytes 28..31.
func (h *BHS) ExpStatSN() uint32 { return h.U32(OffExpStatSN) }

// DataSN returns bytes 36..39.
func (h *BHS) DataSN() uint32 { return h.U32(OffDataSN) }

// BufferOffset returns bytes 40..43.
func (h *BHS) BufferOffset() uint32 { return h.U32(OffBufOffset) }

// CDB returns the 16-byte CDB area of a SCSI Command.
func (h *BHS) CDB() []byte { return h[OffCDB : OffCDB+16] }

// Reset zeroes the header.
func (h *BHS) Reset() { *h = BHS{} }

// DecodeLUN turns an 8-byte SAM LUN field into a LUN number (peripheral
// and flat space addressing; other methods return the first level as is).
func DecodeLUN(raw uint64) uint64 {
	b0, b1 := byte(raw>>56), byte(raw>>48)
	switch b0 >> 6 {
	case 0: // peripheral device addressing (bus 0 only)
		if b0&0x3f != 0 {
			return 0xffff // a bus other than 0: no such LUN
		}
		return uint64(b1)
	case 1: // flat space addressing
		return uint64(b0&0x3f)<<8 | uint64(b1)
	}
	return uint64(raw >> 48)
}

// EncodeLUN builds a LUN field for lun (peripheral below 256, flat above).
func EncodeLUN(lun uint64) uint64 {
	if lun < 256 {
		return lun << 48
	}
	return (0x4000 | lun&0x3fff) << 48
}

// PadLen returns the number of pad bytes after a data segment of n bytes.
func PadLen(n int) int { return (4 - n&3) & 3 }

// SN arithmetic (RFC 1982, 32-bit serial numbers).

// SNLess reports a < b in serial number arithmetic.
func SNLess(a, b uint32) bool { return a != b && int32(a-b) < 0 }

// SNLessEq reports a <= b in serial number arithmetic.
func SNLessEq(a, b uint32) bool { return a == b || int32(a-b) < 0 }
