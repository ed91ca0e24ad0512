package backing

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
)

// TestConcurrentIO has many goroutines do I/O on disjoint regions of the
// same store (as commands from many sessions do) and checks every region.
// On fileio stores the writes of different workers meet in the combiner
// (writeCombiner), some adjacent, some overlapping.
func TestConcurrentIO(t *testing.T) {
	const (
		workers = 16
		region  = 256 << 10
		ops     = 60
		size    = workers * region
	)
	for _, c := range storeCases() {
		t.Run(c.name, func(t *testing.T) {
			s := c.build(t, size)
			refs := make([][]byte, workers)
			errs := make(chan error, workers)
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewSource(int64(w)))
					ref := make([]byte, region)
					base := int64(w) * region
					for i := 0; i < ops; i++ {
						n := rng.Intn(region) + 1
						off := rng.Intn(region - n + 1)
						switch rng.Intn(6) {
						case 0, 1, 2:
							p := pattern(rng.Int63(), n)
							if _, err := s.WriteAt(p, base+int64(off)); err != nil {
								errs <- err
								return
							}
							copy(ref[off:], p)
						case 3:
							p := make([]byte, n)
							if _, err := s.ReadAt(p, base+int64(off)); err != nil {
								errs <- err
								return
							}
							if !bytes.Equal(p, ref[off:off+n]) {
								errs <- fmt.Errorf("worker %d: read mismatch at %d", w, off)
								return
							}
						case 4:
							if err := s.Unmap(base+int64(off), int64(n)); err != nil {
								errs <- err
								return
							}
							clear(ref[off : off+n])
						case 5:
							if err := s.SyncRange(base+int64(off), int64(n)); err != nil {
								errs <- err
								return
							}
							if i%10 == 0 {
								if err := s.Sync(); err != nil {
									errs <- err
									return
								}
							}
						}
					}
					refs[w] = ref
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for w, ref := range refs {
				equalBytes(t, fmt.Sprintf("region %d", w), mustRead(t, s, region, int64(w)*region), ref)
			}
		})
	}
}

// TestConcurrentPartialBlockWrites hammers O_DIRECT read-modify-write on
// neighbouring bytes of the same device blocks: no write may be lost.
func TestConcurrentPartialBlockWrites(t *testing.T) {
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, 64<<10), Direct: true})
	if !s.Direct() {
		t.Skip("no O_DIRECT here")
	}
	const workers, per = 8, 50
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				// Worker w owns bytes w, w+8, w+16, ... (all in shared blocks).
				off := int64(w + workers*i*37%(8<<10))
				if _, err := s.WriteAt([]byte{byte(w + 1)}, off); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := mustRead(t, s, 64<<10, 0)
	for w := 0; w < workers; w++ {
		for i := 0; i < per; i++ {
			off := w + workers*i*37%(8<<10)
			if got[off] != byte(w+1) {
				t.Fatalf("byte %d = %d, want %d (lost update)", off, got[off], w+1)
			}
		}
	}
}
