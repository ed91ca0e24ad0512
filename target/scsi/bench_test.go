package scsi

import (
	"context"
	"testing"
)

// SCSI dispatch cost per command (CDB decode, checks, the store call on a
// memory store), the I/O path: 0 allocs/op is the goal.
func benchExecute(b *testing.B, c []byte, out []byte, in int) {
	tg, n, _ := newTestTarget(b, nil)
	cmd := &Command{Nexus: n, CDB: c, DataOut: out, ExpectedLen: uint32(max(len(out), in))}
	if in > 0 {
		cmd.DataIn = make([]byte, in)
	}
	ctx := context.Background()
	b.SetBytes(int64(max(len(out), in)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := tg.Execute(ctx, cmd); r.Status != StatusGood {
			b.Fatalf("status %#x sense % x", r.Status, r.Sense)
		}
	}
}

func BenchmarkExecuteRead4K(b *testing.B) { benchExecute(b, rw16(0x88, 8, 8, 0), nil, 4096) }

func BenchmarkExecuteWrite4K(b *testing.B) {
	benchExecute(b, rw16(0x8a, 8, 8, 0), make([]byte, 4096), 0)
}

func BenchmarkExecuteTUR(b *testing.B) { benchExecute(b, cdb(0x00, 6), nil, 0) }
