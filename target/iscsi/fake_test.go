package iscsi

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/scsi"
)

// fakeDisk is a minimal in-memory SBC device for transport tests.
type fakeDisk struct {
	mu       sync.RWMutex
	data     []byte
	blk      int
	tmfs     atomic.Int32
	attached atomic.Int32
	// reinstated counts the nexuses attached with Reinstated set.
	reinstated atomic.Int32
	block      chan struct{} // when non-nil, READs wait on it or ctx
	// writeGate, when non-nil, holds WRITEs until closed, deaf to
	// their context (a pwrite in the kernel).
	writeGate chan struct{}
	execs     atomic.Int32 // commands executed
	byOp      [256]atomic.Int32
}

func newFakeDisk(size int) *fakeDisk { return &fakeDisk{data: make([]byte, size), blk: 512} }

var illegal = []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0}

func (d *fakeDisk) Execute(ctx context.Context, cmd *scsi.Command) scsi.Result {
	d.execs.Add(1)
	d.byOp[cmd.CDB[0]].Add(1)
	cdb := cmd.CDB
	if cmd.LUN != 0 && cdb[0] != 0x12 && cdb[0] != 0xa0 {
		return scsi.Result{Status: scsi.StatusCheckCondition, XferLen: -1,
			Sense: []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x25, 0, 0, 0, 0, 0}}
	}
	buf := func(n int) []byte {
		b := cmd.DataIn
		if cap(b) < n {
			b = make([]byte, n)
		}
		b = b[:n]
		clear(b)
		return b
	}
	switch cdb[0] {
	case 0x00, 0x35, 0x91: // TUR, SYNC CACHE
		return scsi.Result{XferLen: -1}
	case 0x93: // WRITE SAME(16): takes its Data-Out, reports no length (as scsi's)
		return scsi.Result{XferLen: -1}
	case 0x12: // INQUIRY
		alloc := int(binary.BigEndian.Uint16(cdb[3:]))
		b := buf(96)
		if cmd.LUN != 0 {
			b[0] = 0x7f
		}
		if cdb[1]&1 != 0 {
			switch cdb[2] {
			case 0x00:
				b = append(b[:0], 0, 0, 0, 3, 0x00, 0x80, 0x83)
			case 0x80:
				b = append(b[:0], 0, 0x80, 0, 4, 'S', 'N', '0', '1')
			case 0x83:
				b = append(b[:0], 0, 0x83, 0, 12, 2, 1, 0, 8, 'F', 'A', 'K', 'E', 'D', 'I', 'S', 'K')
			default:
				return scsi.Result{Status: scsi.StatusCheckCondition, Sense: illegal, XferLen: -1}
			}
		} else {
			b[2], b[3], b[4], b[7] = 5, 2, 91, 0x02
			copy(b[8:], "IETGO   FAKEDISK        0001")
		}
		if alloc < len(b) {
			b = b[:alloc]
		}
		return scsi.Result{Data: b, XferLen: len(b)}
	case 0x25: // READ CAPACITY(10)
		b := buf(8)
		binary.BigEndian.PutUint32(b, uint32(len(d.data)/d.blk-1))
		binary.BigEndian.PutUint32(b[4:], uint32(d.blk))
		return scsi.Result{Data: b, XferLen: 8}
	case 0x9e: // READ CAPACITY(16)
		alloc := int(binary.BigEndian.Uint32(cdb[10:]))
		b := buf(32)
		binary.BigEndian.PutUint64(b, uint64(len(d.data)/d.blk-1))
		binary.BigEndian.PutUint32(b[8:], uint32(d.blk))
		return scsi.Result{Data: b[:min(alloc, 32)], XferLen: min(alloc, 32)}
	case 0xa0: // REPORT LUNS
		b := buf(16)
		b[3] = 8
		return scsi.Result{Data: b, XferLen: 16}
	case 0x1a: // MODE SENSE(6)
		b := buf(4)
		b[0] = 3
		alloc := int(cdb[4])
		return scsi.Result{Data: b[:min(4, alloc)], XferLen: min(4, alloc)}
	case 0x28, 0x88, 0x2a, 0x8a: // READ/WRITE 10/16
		var lba uint64
		var n int
		if cdb[0] == 0x28 || cdb[0] == 0x2a {
			lba, n = uint64(binary.BigEndian.Uint32(cdb[2:])), int(binary.BigEndian.Uint16(cdb[7:]))
		} else {
			lba, n = binary.BigEndian.Uint64(cdb[2:]), int(binary.BigEndian.Uint32(cdb[10:]))
		}
		blocks := uint64(len(d.data) / d.blk)
		if lba > blocks || uint64(n) > blocks-lba {
			return scsi.Result{Status: scsi.StatusCheckCondition, Sense: illegal, XferLen: -1}
		}
		off, l := int(lba)*d.blk, n*d.blk
		if cdb[0] == 0x28 || cdb[0] == 0x88 {
			if d.block != nil {
				select {
				case <-d.block:
				case <-ctx.Done():
					return scsi.Result{Status: scsi.StatusTaskAborted, XferLen: -1}
				}
			}
			b := buf(l)
			d.mu.RLock()
			copy(b, d.data[off:off+l])
			d.mu.RUnlock()
			return scsi.Result{Data: b, XferLen: l}
		}
		if d.writeGate != nil {
			<-d.writeGate
		}
		d.mu.Lock()
		copy(d.data[off:off+l], cmd.DataOut)
		d.mu.Unlock()
		return scsi.Result{XferLen: l}
	}
	return scsi.Result{Status: scsi.StatusCheckCondition, XferLen: -1,
		Sense: []byte{0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0}}
}

func (d *fakeDisk) TaskManagement(fn scsi.TMF, lun uint64, n *scsi.Nexus, _ []*scsi.Nexus) byte {
	d.tmfs.Add(1)
	if lun != 0 && fn != scsi.TMFTargetWarmReset && fn != scsi.TMFTargetColdReset {
		return 2
	}
	return 0
}
func (d *fakeDisk) NexusAttach(n *scsi.Nexus) {
	d.attached.Add(1)
	if n.Reinstated {
		d.reinstated.Add(1)
	}
}
func (d *fakeDisk) NexusDetach(*scsi.Nexus)          { d.attached.Add(-1) }
func (d *fakeDisk) Reconfigure(*config.Target) error { return nil }
func (d *fakeDisk) Close() error                     { return nil }
