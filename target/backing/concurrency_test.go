package backing

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// Large buffered writes to a regular file wait for each other on wmu;
// small ones, O_DIRECT stores and (TestLoopDeviceFileio) block devices
// do not.
func TestLargeFileWritesSerialise(t *testing.T) {
	const size = 4 * serialiseMin
	if s := mustOpenFile(t, fileOptions{Path: newTempFile(t, size), Direct: true}); s.serialisesWrites() {
		t.Error("an O_DIRECT store serialises its writes")
	}
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, size)})
	if !s.serialisesWrites() {
		t.Fatal("a buffered regular file does not serialise large writes")
	}
	s.wmu.Lock() // a large write in progress
	small := make(chan error, 1)
	go func() {
		_, err := s.WriteAt(pattern(1, serialiseMin-512), 0)
		small <- err
	}()
	select {
	case err := <-small:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		s.wmu.Unlock()
		t.Fatal("a small write waited for the large one")
	}
	big := make(chan error, 1)
	want := pattern(2, serialiseMin)
	go func() {
		_, err := s.WriteAt(want, 2*serialiseMin)
		big <- err
	}()
	var err error
	select {
	case err = <-big:
		t.Error("a large write did not wait for the one in progress")
		s.wmu.Unlock()
	case <-time.After(50 * time.Millisecond):
		s.wmu.Unlock()
		err = <-big
	}
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := s.ReadAt(got, 2*serialiseMin); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the large write's data did not land")
	}
}

// TestConcurrentIO has many goroutines do I/O on disjoint regions of the
// same store (as commands from many sessions do) and checks every region.
// Regions are large enough that many writes reach serialiseMin (fileio
// stores serialise those).
func TestConcurrentIO(t *testing.T) {
	const (
		workers = 16
		region  = 4 * serialiseMin
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
