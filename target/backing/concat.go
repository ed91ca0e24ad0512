package backing

import (
	"errors"
	"sort"
)

// ConcatStore is a RAID0 in the NetBSD sense: its members concatenated in
// order. Requests that straddle a member boundary are split.
type ConcatStore struct {
	members []Store
	starts  []int64 // starts[i] = offset of members[i]; starts[len] = size
}

// NewConcat concatenates members in order. The size is the sum of theirs.
func NewConcat(members ...Store) *ConcatStore {
	c := &ConcatStore{members: members, starts: make([]int64, len(members)+1)}
	for i, m := range members {
		c.starts[i+1] = c.starts[i] + m.Size()
	}
	return c
}

// Members returns the member stores in order.
func (c *ConcatStore) Members() []Store { return append([]Store(nil), c.members...) }

func (c *ConcatStore) Size() int64 { return c.starts[len(c.members)] }

// each calls fn for every piece of [off, off+n): member index, offset in
// the member, offset of the piece in the request, and length.
func (c *ConcatStore) each(off, n int64, fn func(i int, moff, roff, k int64) error) error {
	i := sort.Search(len(c.members), func(i int) bool { return c.starts[i+1] > off })
	for done := int64(0); done < n && i < len(c.members); i++ {
		moff := off + done - c.starts[i]
		k := min(n-done, c.starts[i+1]-c.starts[i]-moff)
		if k <= 0 {
			continue
		}
		if err := fn(i, moff, done, k); err != nil {
			return err
		}
		done += k
	}
	return nil
}

func (c *ConcatStore) ReadAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if !inBounds(off, n, c.Size()) {
		return 0, rangeError("read", "", off, n, c.Size())
	}
	total := 0
	err := c.each(off, n, func(i int, moff, roff, k int64) error {
		got, err := c.members[i].ReadAt(p[roff:roff+k], moff)
		total += got
		return err
	})
	return total, err
}

func (c *ConcatStore) WriteAt(p []byte, off int64) (int, error) {
	n := int64(len(p))
	if !inBounds(off, n, c.Size()) {
		return 0, rangeError("write", "", off, n, c.Size())
	}
	total := 0
	err := c.each(off, n, func(i int, moff, roff, k int64) error {
		got, err := c.members[i].WriteAt(p[roff:roff+k], moff)
		total += got
		return err
	})
	return total, err
}

// Sync syncs every member and returns the joined errors.
func (c *ConcatStore) Sync() error {
	var errs []error
	for _, m := range c.members {
		if err := m.Sync(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *ConcatStore) SyncRange(off, n int64) error {
	if !inBounds(off, n, c.Size()) {
		return rangeError("sync", "", off, n, c.Size())
	}
	return c.each(off, n, func(i int, moff, _, k int64) error {
		return c.members[i].SyncRange(moff, k)
	})
}

// Unmap unmaps the pieces on each member. If a member cannot, the pieces
// on members that can are still unmapped and ErrNotSupported is returned.
func (c *ConcatStore) Unmap(off, n int64) error {
	if !inBounds(off, n, c.Size()) {
		return rangeError("unmap", "", off, n, c.Size())
	}
	var unsupported error
	err := c.each(off, n, func(i int, moff, _, k int64) error {
		err := c.members[i].Unmap(moff, k)
		if errors.Is(err, ErrNotSupported) {
			if unsupported == nil {
				unsupported = err
			}
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	return unsupported
}

// Close closes every member.
func (c *ConcatStore) Close() error {
	var errs []error
	for _, m := range c.members {
		if err := m.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LogicalBlockSize is the largest logical block size of the members.
func (c *ConcatStore) LogicalBlockSize() int { return maxBlockSize(c.members) }

// WriteCacheEnabled is true when any member caches writes.
func (c *ConcatStore) WriteCacheEnabled() bool { return anyWriteCache(c.members) }

func maxBlockSize(members []Store) int {
	bs := 512
	for _, m := range members {
		if s, ok := m.(BlockSizer); ok {
			bs = max(bs, s.LogicalBlockSize())
		}
	}
	return bs
}

func anyWriteCache(members []Store) bool {
	for _, m := range members {
		if wc, ok := m.(WriteCacher); !ok || wc.WriteCacheEnabled() {
			return true
		}
	}
	return false
}

// WriteProtected reports whether any member is held read-only.
func (c *ConcatStore) WriteProtected() bool {
	for _, m := range c.members {
		if WriteProtected(m) {
			return true
		}
	}
	return false
}

// CanUnmap is true when every member can unmap (otherwise Unmap reports
// ErrNotSupported for the ranges on the others).
func (c *ConcatStore) CanUnmap() bool {
	for _, m := range c.members {
		if !CanUnmap(m) {
			return false
		}
	}
	return len(c.members) > 0
}
