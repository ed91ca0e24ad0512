package scsi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/ietgo/ietd/target/config"
)

// readCap16 is the READ CAPACITY(16) parameter data of a LUN.
func readCap16(t *testing.T, tg *Target, n *Nexus, lun uint64) []byte {
	t.Helper()
	rc := cdb(0x9e, 16)
	rc[1] = 0x10
	binary.BigEndian.PutUint32(rc[10:], 32)
	r := tg.Execute(t.Context(), &Command{Nexus: n, LUN: lun, CDB: rc, ExpectedLen: 32})
	if r.Status != StatusGood || len(r.Data) != 32 {
		t.Fatalf("READ CAPACITY(16): %+v", r)
	}
	return r.Data
}

// The Block Limits VPD page agrees with READ CAPACITY(16) and with
// itself, for 512-byte blocks (8 per 4 KiB physical block) and larger
// ones: the OPTIMAL TRANSFER LENGTH GRANULARITY is one physical block
// (Linux warns "Preferred minimum I/O size 512 bytes not a multiple of
// physical block size" and drops it otherwise), the OPTIMAL TRANSFER
// LENGTH is a multiple of it and at most the MAXIMUM TRANSFER LENGTH, a
// COMPARE AND WRITE of the maximum length fits in one transfer, the
// unmap fields are set only with thin provisioning (granularity one
// physical block), and READ CAPACITY(16)'s LBPME/LBPRZ match the
// provisioning page.
func TestBlockLimitsConsistent(t *testing.T) {
	for _, bs := range []int{512, 1024, 4096, 8192} {
		for _, thin := range []bool{true, false} {
			t.Run(fmt.Sprintf("bs%d-thin%v", bs, thin), func(t *testing.T) {
				tg, n := identityTarget(t, config.DialectIET, "iqn.2026-01.org.ietgo:limits",
					memLUN(0, func(l *config.LUN) { l.BlockSize = bs }))
				tg.lun(0).thin = thin
				rc := readCap16(t, tg, n, 0)
				if got := int(binary.BigEndian.Uint32(rc[8:])); got != bs {
					t.Fatalf("block length %d", got)
				}
				phys := uint32(1) << (rc[13] & 0x0f)
				if physBytes := int(phys) * bs; physBytes != max(bs, 4096) {
					t.Errorf("physical block %d bytes for %d-byte blocks", physBytes, bs)
				}
				b0 := vpdOf(t, tg, n, 0, 0xb0)
				if len(b0) != 64 || binary.BigEndian.Uint16(b0[2:]) != 0x3c {
					t.Fatalf("Block Limits page length: % x", b0[:4])
				}
				otlg := uint32(binary.BigEndian.Uint16(b0[6:]))
				maxXfer := binary.BigEndian.Uint32(b0[8:])
				optXfer := binary.BigEndian.Uint32(b0[12:])
				maxCAW := uint32(b0[5])
				if otlg != phys {
					t.Errorf("OPTIMAL TRANSFER LENGTH GRANULARITY %d, physical block %d logical blocks", otlg, phys)
				}
				if optXfer == 0 || optXfer%otlg != 0 || optXfer > maxXfer {
					t.Errorf("OPTIMAL TRANSFER LENGTH %d (granularity %d, maximum %d)", optXfer, otlg, maxXfer)
				}
				if maxCAW == 0 || 2*maxCAW > maxXfer {
					t.Errorf("MAXIMUM COMPARE AND WRITE LENGTH %d with MAXIMUM TRANSFER LENGTH %d", maxCAW, maxXfer)
				}
				if b0[4]&0x01 != 0 {
					t.Errorf("WSNZ set, but WRITE SAME with 0 blocks is served")
				}
				maxLBA := binary.BigEndian.Uint32(b0[20:])
				maxDesc := binary.BigEndian.Uint32(b0[24:])
				gran := binary.BigEndian.Uint32(b0[28:])
				if thin && (maxLBA == 0 || maxDesc == 0 || gran != phys) {
					t.Errorf("thin: unmap limits %d/%d, granularity %d (physical %d)", maxLBA, maxDesc, gran, phys)
				}
				if !thin && (maxLBA != 0 || maxDesc != 0 || gran != 0) {
					t.Errorf("not thin: unmap limits %d/%d/%d", maxLBA, maxDesc, gran)
				}
				b2 := vpdOf(t, tg, n, 0, 0xb2)
				lbpu, lbpws, lbprz := b2[5]&0x80 != 0, b2[5]&0x40 != 0, b2[5]&0x04 != 0
				lbpme, rcLBPRZ := rc[14]&0x80 != 0, rc[14]&0x40 != 0
				if lbpme != thin || lbpu != thin || lbpws != thin || lbprz != rcLBPRZ || lbprz != thin {
					t.Errorf("LBPME %v LBPRZ %v, VPD B2 LBPU %v LBPWS %v LBPRZ %v, thin %v", lbpme, rcLBPRZ, lbpu, lbpws, lbprz, thin)
				}
			})
		}
	}
}

// LBPRZ is true: blocks deallocated by UNMAP, and by WRITE SAME with
// UNMAP (one granule of a 512-byte LUN, as Linux sends for a discard),
// read back as zeros, and GET LBA STATUS reports them deallocated.
func TestUnmappedBlocksReadZero(t *testing.T) {
	tg, err := NewTarget(fileTarget(t, tempImage(t, 1<<20), nil), Options{OpenStore: (&countingOpen{}).open})
	if err != nil {
		t.Fatal(err)
	}
	a := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: tg.name}
	tg.NexusAttach(a)
	run(tg, a, cdb(0, 6), nil) // the power-on unit attention
	if !tg.lun(0).thin {
		t.Skip("the file system of the temporary directory cannot punch holes")
	}
	gran := binary.BigEndian.Uint32(vpdOf(t, tg, a, 0, 0xb0)[28:])
	data := bytes.Repeat([]byte{0xa5}, 64*512)
	if r := run(tg, a, rw16(0x8a, 0, 64, 0), data); r.Status != StatusGood {
		t.Fatalf("WRITE(16): %+v", r)
	}
	um := make([]byte, 24)
	binary.BigEndian.PutUint16(um[0:], 22)
	binary.BigEndian.PutUint16(um[2:], 16)
	binary.BigEndian.PutUint64(um[8:], 0)
	binary.BigEndian.PutUint32(um[16:], 2*gran)
	uc := cdb(0x42, 10)
	binary.BigEndian.PutUint16(uc[7:], 24)
	if r := run(tg, a, uc, um); r.Status != StatusGood {
		t.Fatalf("UNMAP: %+v", r)
	}
	ws := rw16(0x93, uint64(4*gran), gran, 0x08) // UNMAP
	if r := run(tg, a, ws, make([]byte, 512)); r.Status != StatusGood {
		t.Fatalf("WRITE SAME(16) UNMAP: %+v", r)
	}
	r := run(tg, a, rw16(0x88, 0, 64, 0), nil)
	if r.Status != StatusGood {
		t.Fatalf("READ(16): %+v", r)
	}
	for _, z := range [][2]uint32{{0, 2 * gran}, {4 * gran, 5 * gran}} {
		if !allZero(r.Data[z[0]*512 : z[1]*512]) {
			t.Errorf("blocks %d-%d do not read zero after unmapping", z[0], z[1]-1)
		}
	}
	if !bytes.Equal(r.Data[2*gran*512:4*gran*512], data[:2*gran*512]) {
		t.Errorf("blocks between the unmapped ranges changed")
	}
	gls := cdb(0x9e, 16)
	gls[1] = 0x12
	binary.BigEndian.PutUint32(gls[10:], 24)
	if r := run(tg, a, gls, nil); r.Status != StatusGood || len(r.Data) < 24 ||
		r.Data[8+12]&0x0f != 1 || binary.BigEndian.Uint32(r.Data[8+8:]) < 2*gran {
		t.Fatalf("GET LBA STATUS after UNMAP: %+v", r)
	}
}

// The Supported VPD Pages page lists exactly the pages INQUIRY serves,
// in ascending order, and every served page carries its own page code.
func TestSupportedVPDPagesAreServed(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	list := vpdOf(t, tg, a, 0, 0x00)
	listed := list[4 : 4+int(binary.BigEndian.Uint16(list[2:]))]
	for i := 1; i < len(listed); i++ {
		if listed[i] <= listed[i-1] {
			t.Errorf("page list not ascending: % x", listed)
		}
	}
	for p := 0; p < 256; p++ {
		c := cdb(0x12, 6)
		c[1], c[2], c[4] = 1, byte(p), 255
		r := run(tg, a, c, nil)
		want := bytes.IndexByte(listed, byte(p)) >= 0
		switch {
		case want && (r.Status != StatusGood || r.Data[1] != byte(p)):
			t.Errorf("listed page %#x: %+v", p, r)
		case !want && (r.Status != StatusCheckCondition || senseASC(r) != ascInvalidFieldCDB):
			t.Errorf("unlisted page %#x served: %+v", p, r)
		}
	}
}

// REPORT SUPPORTED OPERATION CODES lists exactly what is implemented:
// every listed command is not refused as unsupported, and every
// operation code (and service action) it leaves out is.
func TestReportedOpcodesAreExactlyTheImplemented(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	c := cdb(0xa3, 12)
	c[1] = 0x0c
	binary.BigEndian.PutUint32(c[6:], 4096)
	r := run(tg, a, c, nil)
	if r.Status != StatusGood {
		t.Fatalf("RSOC: %+v", r)
	}
	type key struct {
		op byte
		sa uint16
	}
	listed := map[key]bool{}
	saOps := map[byte]bool{}
	body := r.Data[4 : 4+binary.BigEndian.Uint32(r.Data)]
	for i := 0; i+8 <= len(body); i += 8 {
		e := body[i:]
		k := key{e[0], 0}
		if e[5]&0x01 != 0 {
			k.sa = binary.BigEndian.Uint16(e[2:])
			saOps[e[0]] = true
		}
		listed[k] = true
		if cl := int(binary.BigEndian.Uint16(e[6:])); cl != cdbLenOf(e[0]) && e[0] != 0x7f {
			t.Errorf("%#x: CDB length %d", e[0], cl)
		}
	}
	unsupported := func(op byte, sa uint16) bool {
		cl := cdbLenOf(op)
		if op == 0xa0 || op == 0xa3 {
			cl = 12
		}
		x := cdb(op, cl)
		if saOps[op] {
			x[1] = byte(sa)
		}
		r := run(tg, a, x, nil)
		a := senseASC(r)
		return r.Status == StatusCheckCondition && (a == ascInvalidOpcode ||
			(saOps[op] && a == ascInvalidFieldCDB && len(r.Sense) >= 18 && r.Sense[15]&0x40 != 0 && binary.BigEndian.Uint16(r.Sense[16:]) == 1))
	}
	for op := 0; op < 256; op++ {
		if saOps[byte(op)] {
			for sa := uint16(0); sa < 32; sa++ {
				if got := !unsupported(byte(op), sa); got != listed[key{byte(op), sa}] {
					t.Errorf("%#x/%#x: listed %v, served %v", op, sa, listed[key{byte(op), sa}], got)
				}
			}
			continue
		}
		if got := !unsupported(byte(op), 0); got != listed[key{byte(op), 0}] {
			t.Errorf("%#x: listed %v, served %v", op, listed[key{byte(op), 0}], got)
		}
	}
}
