package backing

import (
	"math/rand"
	"sync/atomic"
	"testing"
)

const benchSize = 64 << 20

// benchStore opens a fully written (allocated) file so reads hit data.
func benchStore(b *testing.B, o fileOptions) *FileStore {
	b.Helper()
	o.Path = newTempFile(b, 0)
	w := mustOpenFile(b, fileOptions{Path: o.Path, Size: benchSize, Create: true})
	chunk := pattern(1, 1<<20)
	for off := int64(0); off < benchSize; off += int64(len(chunk)) {
		mustWrite(b, w, chunk, off)
	}
	if err := w.Sync(); err != nil {
		b.Fatal(err)
	}
	return mustOpenFile(b, o)
}

func benchRandom(b *testing.B, o fileOptions, write bool, bs int) {
	s := benchStore(b, o)
	b.SetBytes(int64(bs))
	b.ReportAllocs()
	var seed atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewSource(seed.Add(1)))
		buf := alignedBuf(bs)
		blocks := benchSize / int64(bs)
		for pb.Next() {
			off := rng.Int63n(blocks) * int64(bs)
			var err error
			if write {
				_, err = s.WriteAt(buf, off)
			} else {
				_, err = s.ReadAt(buf, off)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchSequential(b *testing.B, o fileOptions, write bool, bs int) {
	s := benchStore(b, o)
	b.SetBytes(int64(bs))
	b.ReportAllocs()
	buf := alignedBuf(bs)
	b.ResetTimer()
	var off int64
	for i := 0; i < b.N; i++ {
		var err error
		if write {
			_, err = s.WriteAt(buf, off)
		} else {
			_, err = s.ReadAt(buf, off)
		}
		if err != nil {
			b.Fatal(err)
		}
		off = (off + int64(bs)) % benchSize
	}
}

func BenchmarkFileio4kRandRead(b *testing.B)  { benchRandom(b, fileOptions{}, false, 4096) }
func BenchmarkFileio4kRandWrite(b *testing.B) { benchRandom(b, fileOptions{}, true, 4096) }
func BenchmarkFileio4kRandWriteWT(b *testing.B) {
	benchRandom(b, fileOptions{WriteThrough: true}, true, 4096)
}
func BenchmarkFileio1MSeqRead(b *testing.B)  { benchSequential(b, fileOptions{}, false, 1<<20) }
func BenchmarkFileio1MSeqWrite(b *testing.B) { benchSequential(b, fileOptions{}, true, 1<<20) }
func BenchmarkBlockio4kRandRead(b *testing.B) {
	benchRandom(b, fileOptions{Direct: true}, false, 4096)
}
func BenchmarkBlockio1MSeqWrite(b *testing.B) {
	benchSequential(b, fileOptions{Direct: true}, true, 1<<20)
}

func BenchmarkMemory4kRandWrite(b *testing.B) {
	s := NewMemory(benchSize)
	b.SetBytes(4096)
	b.ReportAllocs()
	buf := make([]byte, 4096)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < b.N; i++ {
		if _, err := s.WriteAt(buf, rng.Int63n(benchSize/4096)*4096); err != nil {
			b.Fatal(err)
		}
	}
}
