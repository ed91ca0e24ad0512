// Package pdu encodes and decodes iSCSI PDUs (RFC 7143 section 11): the
// 48-byte Basic Header Segment, Additional Header Segments, data segments
// with padding, and CRC32C header/data digests.
//
// Everything on the data path is allocation-free: a BHS is a fixed array
// with accessor methods, a Reader reads headers through a small bufio
// buffer and large data segments straight into the caller's buffer, and
// AppendPDU lays out a response as net.Buffers slices (header, data, pad,
// digests) ready for one writev. BufPool hands out size-classed data
// buffers and retains a bounded amount of memory.
package pdu
