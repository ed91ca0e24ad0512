package scsi

import (
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

// sector4K is a disk with 4096-byte logical blocks.
type sector4K struct{ backing.Store }

func (sector4K) LogicalBlockSize() int { return 4096 }

// TestCheckLUN: what CheckLUN refuses, NewTarget leaves out (and the
// daemon checks changes with it first). A BlockSize below the disk's
// logical block size is refused, as IET did (EINVAL): the disk cannot
// address such a block.
func TestCheckLUN(t *testing.T) {
	disk := sector4K{backing.NewMemory(1 << 20)}
	for _, c := range []struct {
		bs   int
		st   backing.Store
		want string
	}{
		{0, disk, ""},
		{4096, disk, ""},
		{512, disk, "LUN 0: BlockSize 512 is smaller than the device's logical block size 4096"},
		{0, backing.NewMemory(0), "LUN 0: backing store of 0 bytes is smaller than one 512-byte block"},
		{4096, backing.NewMemory(2048), "LUN 0: backing store of 2048 bytes is smaller than one 4096-byte block"},
		{3000, backing.NewMemory(1 << 20), "block size 3000"},
	} {
		lc := &config.LUN{Number: 0, Type: "blockio", BlockSize: c.bs, Store: &config.Store{Path: "d"}}
		err := CheckLUN(lc, c.st)
		if (err == nil) != (c.want == "") || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("BlockSize %d on %d bytes: %v, want %q", c.bs, c.st.Size(), err, c.want)
		}
		tc := config.NewTarget(1, "iqn.2026-01.org.ietgo:check")
		tc.LUNs = []*config.LUN{lc}
		tg, err := NewTarget(tc, Options{OpenStore: func(*config.LUN) (backing.Store, error) { return c.st, nil }})
		if err != nil {
			t.Fatal(err)
		}
		if _, served := tg.ServedLUNs()[0]; served != (c.want == "") {
			t.Errorf("BlockSize %d on %d bytes: served %v, CheckLUN says %q", c.bs, c.st.Size(), served, c.want)
		}
	}
}
