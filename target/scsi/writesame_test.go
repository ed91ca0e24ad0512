package scsi

import (
	"bytes"
	"testing"

	"github.com/ietgo/ietd/target/backing"
)

// WRITE SAME with the UNMAP bit deallocates only when the blocks then
// read back as the data pattern (zeros, LBPRZ=1); any other pattern is
// written (SBC-3).
func TestWriteSameUnmapKeepsPattern(t *testing.T) {
	mem := backing.NewMemory(1 << 20)
	tg, a, _ := storeTarget(t, mem)
	if !tg.lun(0).thin {
		t.Fatal("memory LUN must be thin for this test")
	}
	pat := bytes.Repeat([]byte{0xab}, 512)
	for _, op := range []byte{0x41, 0x93} {
		var c []byte
		if op == 0x93 {
			c = rw16(0x93, 0, 256, 0x08)
		} else {
			c = cdb(0x41, 10)
			c[1] = 0x08
			c[8] = 0 // 256 blocks: bytes 7-8
			c[7] = 1
		}
		if r := run(tg, a, c, pat); r.Status != StatusGood {
			t.Fatalf("WRITE SAME %#x UNMAP: %+v", op, r)
		}
		r := run(tg, a, rw16(0x88, 0, 256, 0), nil)
		if !bytes.Equal(r.Data, bytes.Repeat(pat, 256)) {
			t.Fatalf("WRITE SAME %#x UNMAP with pattern 0xab reads back % x...", op, r.Data[:8])
		}
	}
	ms := mem.(*backing.MemoryStore)
	before := ms.AllocatedBytes()
	if r := run(tg, a, rw16(0x93, 0, 256, 0x08), make([]byte, 512)); r.Status != StatusGood {
		t.Fatalf("WRITE SAME UNMAP zeros: %+v", r)
	}
	if after := ms.AllocatedBytes(); after >= before {
		t.Fatalf("zero pattern with UNMAP did not deallocate: %d -> %d bytes", before, after)
	}
	if r := run(tg, a, rw16(0x88, 0, 256, 0), nil); !bytes.Equal(r.Data, make([]byte, 256*512)) {
		t.Fatal("deallocated blocks do not read as zeros")
	}
}

// VERIFY with BYTCHK reports the Data-Out length the CDB asks for (one
// block per block for BYTCHK=01, one block for 11b), so the transport
// computes residuals against it, not against what the initiator sent.
func TestVerifyBytchkTransferLength(t *testing.T) {
	tg, a, _ := newTestTarget(t, nil)
	data := bytes.Repeat([]byte{7}, 8*512)
	run(tg, a, rw16(0x8a, 0, 8, 0), data)
	r := run(tg, a, rw16(0x8f, 0, 1, 0x02), data[:1024]) // 1 block asked, 2 sent
	if r.Status != StatusGood || r.XferLen != 512 {
		t.Fatalf("VERIFY BYTCHK=01 of 1 block with 2 blocks sent: %+v", r)
	}
	r = run(tg, a, rw16(0x8f, 0, 8, 0x06), data[:512]) // BYTCHK=11: one block for 8
	if r.Status != StatusGood || r.XferLen != 512 {
		t.Fatalf("VERIFY BYTCHK=11: %+v", r)
	}
}

// WRITE SAME with zero blocks writes from the LBA to the end; the LBA
// must exist: the capacity itself is LBA OUT OF RANGE, the last LBA is
// one block.
func TestWriteSameToTheEnd(t *testing.T) {
	tg, a, _ := storeTarget(t, backing.NewMemory(1<<20)) // 2048 blocks
	pat := bytes.Repeat([]byte{0xcd}, 512)
	if r := run(tg, a, rw16(0x93, 2048, 0, 0), pat); senseASC(r) != 0x2100 {
		t.Fatalf("WRITE SAME(16) at the capacity, 0 blocks: %+v", r)
	}
	if r := run(tg, a, rw16(0x93, 2047, 0, 0), pat); r.Status != StatusGood {
		t.Fatalf("WRITE SAME(16) at the last LBA, 0 blocks: %+v", r)
	}
	if r := run(tg, a, rw16(0x88, 2047, 1, 0), nil); !bytes.Equal(r.Data, pat) {
		t.Fatal("the last block was not written")
	}
}
