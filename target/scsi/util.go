package scsi

import "encoding/binary"

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be24(b []byte) uint32 { return uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2]) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func putBE16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }
func putBE32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func putBE64(b []byte, v uint64) { binary.BigEndian.PutUint64(b, v) }

// dataIn returns d truncated to the allocation length: the transport
// reports the rest of the expected length as a residual.
func dataIn(d []byte, alloc int) Result {
	if alloc < len(d) {
		d = d[:alloc]
	}
	return Result{Status: StatusGood, Data: d, XferLen: len(d)}
}

func good() Result { return Result{Status: StatusGood, XferLen: -1} }
