//go:build linux

package backing

import (
	"errors"
	"os"
	"testing"
)

// The thin-provisioning probe punches a hole past the end of the file,
// never in the data: size and contents stay; a file system that can
// punch holes says so, a read-only store cannot unmap.
func TestCanUnmapProbesWithoutTouchingData(t *testing.T) {
	p := newTempFile(t, 0)
	data := pattern(3, 10000) // not a multiple of 4 KiB
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpenFile(t, fileOptions{Path: p})
	got, err := os.ReadFile(p)
	if err != nil || len(got) != len(data) {
		t.Fatalf("the probe changed the file: %d bytes (%v)", len(got), err)
	}
	equalBytes(t, "contents after the probe", got, data)
	// What the probe says must be what Unmap does.
	err = s.Unmap(4096, 4096)
	if s.CanUnmap() != (err == nil) {
		t.Fatalf("CanUnmap %v but Unmap: %v", s.CanUnmap(), err)
	}
	if !s.CanUnmap() && !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Unmap failed for another reason: %v", err)
	}
	if ro := mustOpenFile(t, fileOptions{Path: p, ReadOnly: true}); ro.CanUnmap() {
		t.Fatal("a read-only store claims it can unmap")
	}
	// A window of the file (NetBSD extent): same rule, nothing outside
	// the window or the file touched.
	w := mustOpenFile(t, fileOptions{Path: p, Offset: 4096, Size: 4096})
	if fi, _ := os.Stat(p); fi.Size() != int64(len(data)) {
		t.Fatalf("size after opening a window: %d", fi.Size())
	}
	if w.CanUnmap() != s.CanUnmap() {
		t.Fatal("a window of the same file probes differently")
	}
	got, _ = os.ReadFile(p)
	equalBytes(t, "contents after the window's probe", got[:4096], data[:4096])
}

func TestCanUnmapComposition(t *testing.T) {
	mem := NewMemory(1 << 20)
	type plain struct{ Store } // hides UnmapProber
	for name, c := range map[string]struct {
		s    Store
		want bool
	}{
		"memory":            {mem, true},
		"null":              {NewNull(1<<20, false), true},
		"null ro":           {NewNull(1<<20, true), false},
		"limit":             {NewLimit(mem, 4096, false), true},
		"limit ro":          {NewLimit(mem, 4096, true), false},
		"faulty":            {NewFaulty(mem), true},
		"concat":            {NewConcat(NewMemory(4096), NewMemory(4096)), true},
		"concat mixed":      {NewConcat(NewMemory(4096), plain{NewMemory(4096)}), false},
		"unknown store":     {plain{mem}, false},
		"mirror first ok":   {NewMirror(nil, MirrorMember{"a", NewMemory(4096)}, MirrorMember{"b", plain{NewMemory(4096)}}), true},
		"mirror first cant": {NewMirror(nil, MirrorMember{"a", plain{NewMemory(4096)}}, MirrorMember{"b", NewMemory(4096)}), false},
	} {
		if got := CanUnmap(c.s); got != c.want {
			t.Errorf("%s: CanUnmap = %v, want %v", name, got, c.want)
		}
	}
}

// On a block device the probe reads the queue's write-zeroes limit; it
// must agree with what a real punch does (on a scratch loop device).
func TestCanUnmapBlockDevice(t *testing.T) {
	dev := attachLoop(t, newTempFile(t, 8<<20), 0)
	s := mustOpenFile(t, fileOptions{Path: dev})
	if !s.blockDev {
		t.Fatal("not a block device")
	}
	err := s.Unmap(0, 1<<20)
	if s.CanUnmap() != (err == nil) {
		t.Fatalf("CanUnmap %v but Unmap on the device: %v", s.CanUnmap(), err)
	}
}
