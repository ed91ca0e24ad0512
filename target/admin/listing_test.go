package admin

import (
	"strings"
	"testing"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/scsi"
)

// The volume listing shows what is served: a LUN left out at open is
// not listed, and a LUN whose device gave its own block size (a 4Kn
// disk under blockio, no BlockSize in the config) shows that size with
// the served block count.
func TestVolumeListingUsesServedLUNs(t *testing.T) {
	cfg := &config.Config{}
	tg := config.NewTarget(1, "iqn.2026-01.test:t")
	tg.LUNs = []*config.LUN{
		{Number: 0, Type: "blockio", Store: &config.Store{Kind: config.StoreFile, Path: "/dev/sdx"}},
		{Number: 1, Type: "fileio", Store: &config.Store{Kind: config.StoreFile, Path: "/missing"}},
	}
	cfg.Targets = []*config.Target{tg}
	served := func(tid int) (map[uint64]scsi.ServedLUN, bool) {
		return map[uint64]scsi.ServedLUN{0: {Blocks: 262144, BlockSize: 4096}}, true
	}
	out := VolumeListing(cfg, served)
	want := "\tlun:0 state:0 iotype:blockio iomode:wt blocks:262144 blocksize:4096 path:/dev/sdx\n"
	if !strings.Contains(out, want) || strings.Contains(out, "lun:1") {
		t.Fatalf("listing:\n%s\nwant the line %q and no lun:1", out, want)
	}
	// Without the engine's view the config is listed as it is.
	if out := VolumeListing(cfg, nil); !strings.Contains(out, "lun:1 ") {
		t.Fatalf("listing without served LUNs:\n%s", out)
	}
}
