package scsi

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/ietgo/ietd/target/config"
)

const (
	opInquiry      = 0x12
	opReportLUNs   = 0xa0
	opRequestSense = 0x03
)

// Version descriptors (SPC-4 table 29).
const (
	vdSAM5  = 0x00a0
	vdISCSI = 0x0960
	vdSPC4  = 0x0460
	vdSBC3  = 0x04c0
)

// newIdentity computes the INQUIRY identity of a LUN. IET LUNs follow IET
// 1.4.20 byte for byte: ScsiId = MD5(target name || le32(LUN)), ScsiSN =
// lower-case hex of ScsiId. NetBSD LUNs get NetBSD's strings and an
// identifier derived the same stable way (the original changed it on
// every start).
func newIdentity(t *Target, lc *config.LUN) *identity {
	id := &identity{removable: lc.Removable, vendor: "IET", product: "VIRTUAL-DISK", revision: "0", version: 0x05}
	if t.opts.Dialect == config.DialectNetBSD {
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
	copy(id.naa[:], raw[:])
	id.serial = lc.ScsiSN
	if id.serial == "" {
		id.serial = hex.EncodeToString(raw[:])
	}
	return id
}

// naaDesignator builds an NAA IEEE Registered Extended (type 6) designator
// from the 16 identifier bytes (locally derived; OUI 0 marks it as such).
func (id *identity) naaDesignator() []byte {
	var d [16]byte
	d[0] = 0x60 | (id.naa[0] & 0x0f) // NAA 6, no OUI (vendor-specific id follows)
	copy(d[1:], id.naa[1:])
	return d[:]
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
	for i, v := range []uint16{vdSAM5, vdISCSI, vdSPC4, vdSBC3} {
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
		var body []byte
		// T10 vendor ID, exactly IET's: "IET" NUL-padded to 8 + 16 id bytes.
		t10 := make([]byte, 24)
		copy(t10, id.vendor)
		for i := len(id.vendor); i < 8; i++ {
			t10[i] = 0
		}
		copy(t10[8:], id.scsiID)
		body = append(body, designator(0, 1, 0, 1, t10)...)
		// NAA, for multipath stacks that key on it.
		body = append(body, designator(0, 1, 0, 3, id.naaDesignator())...)
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

func (l *lun) blockLimits() []byte {
	b := make([]byte, 60)
	b[1] = maxCAWBlocks
	putBE16(b[2:], 1)                                   // optimal transfer length granularity
	putBE32(b[4:], uint32(maxXferBlocksBytes>>l.shift)) // maximum transfer length
	putBE32(b[8:], uint32((1<<20)>>l.shift))            // optimal transfer length
	putBE32(b[12:], uint32(maxXferBlocksBytes>>l.shift))
	if l.thin {
		putBE32(b[16:], maxUnmapBlocks)
		putBE32(b[20:], maxUnmapDescs)
		putBE32(b[24:], 1) // optimal unmap granularity
	}
	putBE64(b[32:], maxWriteSameBlocks)
	putBE32(b[40:], uint32(maxAtomicBytes>>l.shift)) // maximum atomic transfer length
	putBE32(b[44:], 1)                               // atomic alignment
	putBE32(b[48:], 1)                               // atomic transfer length granularity
	return b
}
