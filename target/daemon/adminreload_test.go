package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/admin"
	"github.com/ietgo/ietd/target/config"
)

// ietadm changes racing SIGHUP reloads: neither undoes the other. Each
// reload's file has one target more; meanwhile targets are created at run
// time. At the end every file target and every run-time one is in force
// (an operation's clone-edit-apply used to interleave with a reload and
// put back the config the reload replaced).
func TestAdminChangesAndReloadsDoNotUndoEachOther(t *testing.T) {
	const rounds = 100
	dir := t.TempDir()
	sock := filepath.Join(dir, "ietd.sock")
	var gen atomic.Int64
	load := func() (*config.Config, config.Diagnostics, error) {
		c := &config.Config{Dialect: config.DialectIET}
		for i := 0; i <= int(gen.Load()); i++ {
			c.Targets = append(c.Targets, config.NewTarget(i+1, fmt.Sprintf("iqn.2026-01.file:t%d", i)))
		}
		return c, nil, nil
	}
	sigs, _ := startRun(t, Options{Load: load, AdminSocket: sock})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range rounds {
			tid := 0
			if r, err := admin.Do(context.Background(), sock, &admin.Request{Op: admin.OpNew, TID: &tid, Params: fmt.Sprintf("Name=iqn.2026-01.rt:%d", i)}); err != nil || r.Errno != 0 {
				t.Errorf("--op new %d: %v %+v", i, err, r)
			}
		}
	}()
	for range rounds {
		gen.Add(1)
		sigs <- syscall.SIGHUP
	}
	wg.Wait()
	var fileN, rtN int
	for i := 0; i < 100; i++ { // the last reload may still be running
		resp, err := admin.Do(context.Background(), sock, &admin.Request{Op: admin.OpShow, Listing: "volume"})
		if err != nil {
			t.Fatal(err)
		}
		fileN, rtN = strings.Count(resp.Output, "iqn.2026-01.file:"), strings.Count(resp.Output, "iqn.2026-01.rt:")
		if fileN == rounds+1 && rtN == rounds {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("in force: %d file targets (the file has %d), %d run-time targets (%d created)", fileN, rounds+1, rtN, rounds)
}
