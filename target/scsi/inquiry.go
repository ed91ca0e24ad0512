package scsi

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/ietgo/ietd/target/config"
)

const (
	opInquiry      = 0x12
	opReportLUNs   = 0xa0
	opRequestSense = 0x03
	opSanitize     = 0x48
)

// Version descriptors (SPC-4 table 29).
const (
	vdSAM2  = 0x0040
	vdSAM3  = 0x0060
	vdSAM5  = 0x00a0
	vdSAM6  = 0x00c0
	vdISCSI = 0x0960
	vdSPC2  = 0x0260
	vdSPC3  = 0x0300
	vdSPC4  = 0x0460
	vdSPC5  = 0x05c0
	vdSBC2  = 0x0320
	vdSBC3  = 0x04c0
	vdSBC4  = 0x0600
)

// versionDescriptors are the standards claimed in standard INQUIRY data;
// they follow the VERSION byte (ScsiVersion): 4 SPC-2 (with SAM-2 and
// SBC-2), 5 SPC-3 (SAM-3; the block commands we implement are SBC-3's),
// 6 SPC-4 (SAM-5, SBC-3), 7 SPC-5 (SAM-6, SBC-4). Other values claim no
// SPC version, only iSCSI and SBC-3.
func versionDescriptors(version byte) []uint16 {
	switch version {
	case 0x04:
		return []uint16{vdSAM2, vdISCSI, vdSPC2, vdSBC2}
	case 0x05:
		return []uint16{vdSAM3, vdISCSI, vdSPC3, vdSBC3}
	case 0x06:
		return []uint16{vdSAM5, vdISCSI, vdSPC4, vdSBC3}
	case 0x07:
		return []uint16{vdSAM6, vdISCSI, vdSPC5, vdSBC4}
	}
	return []uint16{vdISCSI, vdSBC3}
}

// identity is what INQUIRY reports about a LUN.
type identity struct {
	vendor, product, revision string
	version                   byte
	serial                    string
	scsiID                    string // VPD 0x83 vendor-specific identifier (<= 16 bytes, NUL-padded on output)
	removable                 bool
	// naa is the NAA designator (NetBSD LUNs); nil for IET LUNs, whose
	// VPD page 0x83 is IET's single T10 vendor ID designator.
	naa []byte
}

// newIdentity computes the INQUIRY identity of a LUN. IET LUNs follow IET
// 1.4.20 byte for byte: ScsiId = MD5(target name || le32(LUN)), ScsiSN =
// lower-case hex of ScsiId, and VPD page 0x83 holds only IET's T10
// vendor ID designator, so the WWIDs initiators derive from it (Linux
// multipath, udev, ESXi t10.* names) stay the same after a migration.
// NetBSD LUNs get NetBSD's strings, an identifier derived the same stable
// way (the original changed it on every start) and, in addition, an NAA
// designator (naaLocal).
func newIdentity(t *Target, lc *config.LUN) *identity {
	id := &identity{removable: lc.Removable, vendor: "IET", product: "VIRTUAL-DISK", revision: "0", version: 0x05}
	netbsd := t.opts.Dialect == config.DialectNetBSD
	if lc.Identity != "" {
		netbsd = lc.Identity == config.DialectNetBSD
	}
	if netbsd {
		id.vendor, id.product, id.revision = "NetBSD", "NetBSD iSCSI", "0"
	}
	if lc.Vendor != "" {
		id.vendor = lc.Vendor
	}
	if lc.Product != "" {
		id.product = lc.Product
	}
	if lc.Revision != "" {
		id.revision = lc.Revision
	}
	if lc.ScsiVersion != 0 {
		id.version = byte(lc.ScsiVersion)
	}
	var raw [16]byte
	if lc.ScsiID != "" {
		copy(raw[:], lc.ScsiID)
		id.scsiID = lc.ScsiID
	} else {
		h := md5.New()
		h.Write([]byte(t.name))
		var le [4]byte
		binary.LittleEndian.PutUint32(le[:], uint32(lc.Number))
		h.Write(le[:])
		copy(raw[:], h.Sum(nil))
		id.scsiID = string(raw[:])
	}
	id.serial = lc.ScsiSN
	if id.serial == "" {
		id.serial = hex.EncodeToString(raw[:])
	}
	if netbsd && lc.NAA == nil || lc.NAA != nil && *lc.NAA {
		id.naa = naaLocal(id.t10())
	}
	return id
}

func (id *identity) equal(o *identity) bool {
	return id.vendor == o.vendor && id.product == o.product && id.revision == o.revision &&
		id.version == o.version && id.serial == o.serial && id.scsiID == o.scsiID &&
		id.removable == o.removable && bytes.Equal(id.naa, o.naa)
}

// t10 is the T10 vendor ID designator: the vendor NUL-padded to 8 bytes
// (as IET did, not space-padded) and the identifier NUL-padded to 16.
func (id *identity) t10() []byte {
	d := make([]byte, 24)
	copy(d[:8], id.vendor)
	copy(d[8:], id.scsiID)
	return d
}

// naaLocal derives an NAA Locally Assigned (NAA 3h) designator from the
// whole T10 designator: the 60 bits after the NAA nibble are the first
// bits of its SHA-256. Different identifiers (ScsiId=Disk01 and
// ScsiId=disk01, or any two generated ones) give different NAA values
// except with negligible probability; equal T10 designators (the same
// LU exported through two targets for multipath) give the same NAA.
func naaLocal(t10 []byte) []byte {
	sum := sha256.Sum256(append([]byte("ietd NAA 3\x00"), t10...))
	d := make([]byte, 8)
	copy(d, sum[:8])
	d[0] = 0x30 | d[0]&0x0f
	return d
}

func (c *cmdCtx) inquiry() Result {
	cdb := c.cdb
	alloc := int(be16(cdb[3:]))
	if cdb[1]&0x02 != 0 { // CMDDT (obsolete)
		return c.fail(invalidCDB(1, 1))
	}
	if cdb[1]&0x01 == 0 {
		if cdb[2] != 0 {
			return c.fail(invalidCDB(2, -1))
		}
		return dataIn(c.l.standardInquiry(), alloc)
	}
	d, ok := c.l.vpd(cdb[2])
	if !ok {
		return c.fail(invalidCDB(2, -1))
	}
	return dataIn(d, alloc)
}

func (l *lun) standardInquiry() []byte {
	d := make([]byte, 96)
	d[0] = 0x00 // connected, direct access block device
	id := l.ident()
	if id.removable {
		d[1] = 0x80
	}
	d[2] = id.version
	d[3] = 0x12 // HiSup, response data format 2
	d[4] = byte(len(d) - 5)
	d[5] = 0x08 // 3PC: EXTENDED COPY between LUNs of the target
	d[7] = 0x02 // CmdQue
	copy(d[8:16], padASCII(id.vendor, 8))
	copy(d[16:32], padASCII(id.product, 16))
	copy(d[32:36], padASCII(id.revision, 4))
	for i, v := range versionDescriptors(id.version) {
		putBE16(d[58+2*i:], v)
	}
	return d
}

// supportedVPD lists the VPD pages in ascending order.
var supportedVPD = []byte{0x00, 0x80, 0x83, 0x86, 0x8f, 0xb0, 0xb1, 0xb2}

func vpdPage(code byte, body []byte) []byte {
	d := make([]byte, 4+len(body))
	d[1] = code
	putBE16(d[2:], uint16(len(body)))
	copy(d[4:], body)
	return d
}

func designator(proto, codeSet, assoc, typ byte, val []byte) []byte {
	d := make([]byte, 4, 4+len(val))
	piv := byte(0)
	if proto != 0 {
		piv = 0x80
	}
	d[0] = proto<<4 | codeSet
	d[1] = piv | assoc<<4 | typ
	d[3] = byte(len(val))
	return append(d, val...)
}

// scsiNameString pads an iSCSI name to a multiple of 4 with NULs (at least
// one NUL terminator).
func scsiNameString(s string) []byte {
	b := append([]byte(s), 0)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (l *lun) vpd(page byte) ([]byte, bool) {
	id := l.ident()
	switch page {
	case 0x00:
		return vpdPage(0x00, supportedVPD), true
	case 0x80:
		sn := id.serial
		n := 16
		if len(sn) > 16 {
			n = 32
		}
		if len(sn) > n {
			sn = sn[:n]
		}
		// Right-justified as IET did (identity compatibility).
		return vpdPage(0x80, []byte(strings.Repeat(" ", n-len(sn))+sn)), true
	case 0x83:
		// T10 vendor ID, exactly IET's: vendor NUL-padded to 8 + 16 id bytes.
		body := designator(0, 1, 0, 1, id.t10())
		if id.naa == nil {
			return vpdPage(0x83, body), true
		}
		body = append(body, designator(0, 1, 0, 3, id.naa)...)
		// Relative target port and target port group.
		rel := []byte{0, 0, 0, 1}
		body = append(body, designator(5, 1, 1, 4, rel)...)
		body = append(body, designator(5, 1, 1, 5, []byte{0, 0, 0, 1})...)
		// SCSI name strings: target port and target device.
		tn := l.t.name
		body = append(body, designator(5, 3, 1, 8, scsiNameString(tn+",t,0x0001"))...)
		body = append(body, designator(5, 3, 2, 8, scsiNameString(tn))...)
		return vpdPage(0x83, body), true
	case 0x86:
		body := make([]byte, 60)
		body[1] = 0x07 // HEADSUP ORDSUP SIMPSUP
		return vpdPage(0x86, body), true
	case 0x8f:
		return vpdPage(0x8f, l.thirdPartyCopyVPD()), true
	case 0xb0:
		return vpdPage(0xb0, l.blockLimits()), true
	case 0xb1:
		body := make([]byte, 60)
		putBE16(body[0:], 1) // non-rotating medium
		body[3] = 0x40       // WABEREQ=01b: reads after block erase succeed
		return vpdPage(0xb1, body), true
	case 0xb2:
		body := make([]byte, 4)
		if l.thin {
			body[1] = 0x80 | 0x40 | 0x20 | 0x04 // LBPU LBPWS LBPWS10 LBPRZ
			body[2] = 0x02                      // thin provisioned
		}
		return vpdPage(0xb2, body), true
	}
	return nil, false
}

// Block limits we advertise.
const (
	maxXferBlocksBytes = 32 << 20 // MAXIMUM TRANSFER LENGTH in bytes
	maxCAWBlocks       = 255
	maxUnmapDescs      = 256
	maxUnmapBlocks     = 0xffffffff
	maxWriteSameBlocks = 1 << 26
	maxAtomicBytes     = 1 << 20
)

// blockLimits is the Block Limits VPD page (SBC-3 6.5.3). The OPTIMAL
// TRANSFER LENGTH GRANULARITY and the OPTIMAL UNMAP GRANULARITY are one
// physical block (READ CAPACITY(16)'s exponent): Linux takes the first
// as the minimum I/O size and ignores it, with a warning at every
// login, when it is not a multiple of the physical block size; qemu
// and Windows align discards to the second, and a smaller unmap
// cannot free space in the file.
func (l *lun) blockLimits() []byte {
	phys := uint32(1) << l.physExp() // logical blocks per physical block
	b := make([]byte, 60)
	b[1] = maxCAWBlocks
	putBE16(b[2:], uint16(phys))                        // optimal transfer length granularity
	putBE32(b[4:], uint32(maxXferBlocksBytes>>l.shift)) // maximum transfer length
	putBE32(b[8:], uint32((1<<20)>>l.shift))            // optimal transfer length
	putBE32(b[12:], uint32(maxXferBlocksBytes>>l.shift))
	if l.thin {
		putBE32(b[16:], maxUnmapBlocks)
		putBE32(b[20:], maxUnmapDescs)
		putBE32(b[24:], phys) // optimal unmap granularity
	}
	putBE64(b[32:], maxWriteSameBlocks)
	putBE32(b[40:], uint32(maxAtomicBytes>>l.shift)) // maximum atomic transfer length
	putBE32(b[44:], 1)                               // atomic alignment
	putBE32(b[48:], 1)                               // atomic transfer length granularity
	return b
}
