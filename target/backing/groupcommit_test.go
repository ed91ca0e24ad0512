package backing

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sync"
	"syscall"
	"testing"
)

// durableImage stands in for the medium of a write-through file: each
// fdatasync copies what the file holds then (what that sync made
// durable); a failed one copies nothing.
type durableImage struct {
	mu    sync.Mutex
	img   []byte
	syncs int
	fail  int // the fail-th sync (1-based) returns EIO; 0 never
}

func (d *durableImage) hook(t *testing.T, s *FileStore) func() error {
	return func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.syncs++
		if d.syncs == d.fail {
			return syscall.EIO
		}
		if _, err := s.f.ReadAt(d.img, 0); err != nil {
			t.Errorf("reading the file in the sync: %v", err)
		}
		return nil
	}
}

func (d *durableImage) has(p []byte, off int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Equal(d.img[off:off+int64(len(p))], p)
}

// slotData is writer w's i-th write: the slot's bytes say who and when.
func slotData(w, i int) []byte {
	p := make([]byte, 4096)
	for k := 0; k < len(p); k += 8 {
		binary.LittleEndian.PutUint32(p[k:], uint32(w))
		binary.LittleEndian.PutUint32(p[k+4:], uint32(i))
	}
	return p
}

// Write-through on a regular file: many writers at once share fdatasyncs
// (group commit), and none of their writes completes before a sync that
// started after its data was in the file. Each writer owns a slot and
// checks, the moment its write returns, that the durable image holds it.
func TestWriteThroughGroupCommitAcksOnlyDurableWrites(t *testing.T) {
	const writers, rounds, slot = 16, 40, 4096
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, writers*slot), WriteThrough: true})
	d := &durableImage{img: make([]byte, writers*slot)}
	s.datasync = d.hook(t, s)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				p := slotData(w, i)
				if _, err := s.WriteAt(p, int64(w*slot)); err != nil {
					t.Errorf("writer %d round %d: %v", w, i, err)
					return
				}
				if !d.has(p, int64(w*slot)) {
					t.Errorf("writer %d round %d: acknowledged before a sync covered it", w, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	if d.syncs == 0 || d.syncs > writers*rounds {
		t.Fatalf("%d syncs for %d writes", d.syncs, writers*rounds)
	}
	t.Logf("%d writes, %d fdatasyncs", writers*rounds, d.syncs)
}

// A failed fdatasync in the middle of concurrent write-through writes:
// every write it covered fails, no write whose data is not in the durable
// image is acknowledged, and every write after it fails too (the kernel
// reports the writeback error once; the next fdatasync would "succeed").
func TestWriteThroughFailedGroupSyncFailsItsBatchAndLaterWrites(t *testing.T) {
	const writers, rounds, slot = 8, 30, 4096
	s := mustOpenFile(t, fileOptions{Path: newTempFile(t, writers*slot), WriteThrough: true})
	d := &durableImage{img: make([]byte, writers*slot), fail: 5}
	s.datasync = d.hook(t, s)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sawErr := false
			for i := 0; i < rounds; i++ {
				p := slotData(w, i)
				_, err := s.WriteAt(p, int64(w*slot))
				if err != nil {
					if !errors.Is(err, ErrIO) || !errors.Is(err, syscall.EIO) {
						t.Errorf("writer %d: %v, want the sync's EIO", w, err)
					}
					sawErr = true
					mu.Lock()
					failed++
					mu.Unlock()
					continue
				}
				if sawErr {
					t.Errorf("writer %d round %d: a write succeeded after the sync failure", w, i)
				}
				if !d.has(p, int64(w*slot)) {
					t.Errorf("writer %d round %d: acknowledged without a successful sync covering it", w, i)
				}
			}
		}()
	}
	wg.Wait()
	if failed == 0 {
		t.Fatal("no write failed: the injected sync failure was not seen")
	}
	if d.syncs != d.fail {
		t.Fatalf("fdatasync ran %d times; after the failure (the %d-th) it must not run again", d.syncs, d.fail)
	}
	expectErr(t, "SyncRange after the failure", s.SyncRange(0, slot), ErrIO)
	expectErr(t, "Sync after the failure", s.Sync(), ErrIO)
}
