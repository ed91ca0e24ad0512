//go:build linux

package e2e

// A minimal FUSE file system served by the test process, used as a
// backing store the tests control from the inside: files held in memory
// (the "platter"), byte ranges that answer EIO (a failing disk, for the
// MEDIUM ERROR and RAID1 tests), and a "power cut" after which writes are
// acknowledged but dropped (for the kill -9 durability tests: what the
// platter holds at the cut is what a power loss would leave, whatever the
// page cache still had).
//
// Device-mapper (the `error` and `flakey` targets) would do the same from
// the kernel, but is not available everywhere (not in this project's CI
// VM); /dev/fuse is. The protocol subset is the one in linux/fuse.h:
// INIT, LOOKUP, GETATTR, SETATTR, OPEN, READ, WRITE, FLUSH, FSYNC,
// RELEASE, STATFS; everything else answers ENOSYS.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	fuseLookup      = 1
	fuseForget      = 2
	fuseGetattr     = 3
	fuseSetattr     = 4
	fuseOpen        = 14
	fuseRead        = 15
	fuseWrite       = 16
	fuseStatfs      = 17
	fuseRelease     = 18
	fuseFsync       = 20
	fuseFlush       = 25
	fuseInit        = 26
	fuseInterrupt   = 36
	fuseDestroy     = 38
	fuseBatchForget = 42

	fuseInHeaderLen  = 40
	fuseOutHeaderLen = 16
	fuseMaxWrite     = 128 << 10

	fuseBigWrites      = 1 << 5
	fuseWritebackCache = 1 << 16
	fuseMaxPages       = 1 << 22
	fopenDirectIO      = 1 << 0
)

// fuseFile is one file of the file system.
type fuseFile struct {
	name string
	ino  uint64

	mu       sync.Mutex
	data     []byte // the platter
	failFrom int64  // [failFrom, failTo) answers EIO to READ and WRITE
	failTo   int64
	writes   int // WRITE requests that reached the platter
	fsyncs   int
	eios     int // requests answered EIO
}

// setFail makes [from, to) fail (to <= from: nothing fails).
func (f *fuseFile) setFail(from, to int64) {
	f.mu.Lock()
	f.failFrom, f.failTo = from, to
	f.mu.Unlock()
}

func (f *fuseFile) stats() (writes, fsyncs, eios int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes, f.fsyncs, f.eios
}

// snapshot copies the platter.
func (f *fuseFile) snapshot() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]byte(nil), f.data...)
}

// fuseFS is a mounted file system.
type fuseFS struct {
	dir string
	fd  int
	// directIO: every open file bypasses the page cache (each read and
	// write is a request). writeback: the kernel caches writes and sends
	// them on write-back or fsync only (negotiated at INIT), like a disk
	// behind a page cache.
	directIO, writeback bool
	gotWriteback        bool // the kernel agreed to the write-back cache

	files  map[uint64]*fuseFile
	byName map[string]*fuseFile
	cut    atomic.Bool // power cut: writes are acknowledged and dropped
	done   chan struct{}
	inited chan struct{}
}

// mountFUSE mounts an empty file system at a new directory under t's
// temporary directory, with files name -> size. It skips when /dev/fuse
// cannot be used (not root, no FUSE).
func mountFUSE(t *testing.T, directIO, writeback bool, files map[string]int64) *fuseFS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a FUSE file system as the failing store")
	}
	fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no FUSE here (/dev/fuse: %v); dm and FUSE are both unavailable", err)
	}
	fs := &fuseFS{dir: filepath.Join(t.TempDir(), "fuse"), fd: fd, directIO: directIO, writeback: writeback,
		files: map[uint64]*fuseFile{}, byName: map[string]*fuseFile{}, done: make(chan struct{}), inited: make(chan struct{})}
	ino := uint64(2)
	for name, size := range files {
		f := &fuseFile{name: name, ino: ino, data: make([]byte, size)}
		fs.files[ino], fs.byName[name] = f, f
		ino++
	}
	if err := os.Mkdir(fs.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,allow_other,max_read=%d", fd, fuseMaxWrite)
	if err := syscall.Mount("e2e-store", fs.dir, "fuse", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		syscall.Close(fd)
		t.Skipf("cannot mount FUSE here: %v", err)
	}
	// Served only once mounted: before, reads of the device fail (EPERM).
	go fs.serve()
	t.Cleanup(func() {
		// Lazy unmount, then close the device: requests still pending
		// (a process stuck in the file system) are aborted.
		syscall.Unmount(fs.dir, syscall.MNT_DETACH)
		syscall.Close(fs.fd)
		select {
		case <-fs.done:
		case <-time.After(10 * time.Second):
			t.Errorf("FUSE server did not stop")
		}
	})
	select {
	case <-fs.inited:
	case <-time.After(10 * time.Second):
		t.Fatal("FUSE INIT never came")
	}
	if writeback && !fs.gotWriteback {
		t.Skip("the kernel does not offer the FUSE write-back cache")
	}
	return fs
}

func (fs *fuseFS) path(name string) string { return filepath.Join(fs.dir, name) }

func (fs *fuseFS) file(name string) *fuseFile { return fs.byName[name] }

// powerCut makes every later WRITE vanish (acknowledged, not stored).
func (fs *fuseFS) powerCut() { fs.cut.Store(true) }

func (fs *fuseFS) serve() {
	defer close(fs.done)
	buf := make([]byte, fuseMaxWrite+64<<10)
	for {
		n, err := syscall.Read(fs.fd, buf)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.ENOENT) {
				continue
			}
			return // ENODEV: unmounted; EBADF: closed
		}
		if n < fuseInHeaderLen {
			continue
		}
		fs.handle(buf[:n])
	}
}

func (fs *fuseFS) reply(unique uint64, errno syscall.Errno, payload []byte) {
	out := make([]byte, fuseOutHeaderLen+len(payload))
	binary.LittleEndian.PutUint32(out[0:], uint32(len(out)))
	binary.LittleEndian.PutUint32(out[4:], uint32(-int32(errno)))
	binary.LittleEndian.PutUint64(out[8:], unique)
	copy(out[fuseOutHeaderLen:], payload)
	syscall.Write(fs.fd, out)
}

// attr renders struct fuse_attr (88 bytes).
func (fs *fuseFS) attr(ino uint64) []byte {
	b := make([]byte, 88)
	le := binary.LittleEndian
	le.PutUint64(b[0:], ino)
	mode, nlink, size := uint32(syscall.S_IFDIR|0o755), uint32(2), uint64(0)
	if f := fs.files[ino]; f != nil {
		mode, nlink, size = syscall.S_IFREG|0o644, 1, uint64(len(f.data))
	}
	le.PutUint64(b[8:], size)
	le.PutUint64(b[16:], (size+511)/512)
	le.PutUint32(b[60:], mode)
	le.PutUint32(b[64:], nlink)
	le.PutUint32(b[80:], 4096) // blksize
	return b
}

func (fs *fuseFS) handle(req []byte) {
	le := binary.LittleEndian
	opcode := le.Uint32(req[4:])
	unique := le.Uint64(req[8:])
	node := le.Uint64(req[16:])
	body := req[fuseInHeaderLen:]
	switch opcode {
	case fuseInit:
		if len(body) < 16 {
			fs.reply(unique, syscall.EINVAL, nil)
			return
		}
		offered := le.Uint32(body[12:])
		want := uint32(fuseBigWrites | fuseMaxPages)
		if fs.writeback {
			want |= fuseWritebackCache
		}
		flags := offered & want
		fs.gotWriteback = flags&fuseWritebackCache != 0
		out := make([]byte, 64)
		le.PutUint32(out[0:], 7)
		le.PutUint32(out[4:], 31)
		le.PutUint32(out[8:], le.Uint32(body[8:])) // max_readahead
		le.PutUint32(out[12:], flags)
		le.PutUint16(out[16:], 16)                // max_background
		le.PutUint16(out[18:], 12)                // congestion_threshold
		le.PutUint32(out[20:], fuseMaxWrite)      // max_write
		le.PutUint32(out[24:], 1)                 // time_gran
		le.PutUint16(out[28:], fuseMaxWrite/4096) // max_pages
		fs.reply(unique, 0, out)
		close(fs.inited)
	case fuseLookup:
		name := strings.TrimRight(string(body), "\x00")
		f := fs.byName[name]
		if node != 1 || f == nil {
			fs.reply(unique, syscall.ENOENT, nil)
			return
		}
		out := make([]byte, 40, 128)
		le.PutUint64(out[0:], f.ino)
		le.PutUint64(out[16:], 3600) // entry_valid
		le.PutUint64(out[24:], 3600) // attr_valid
		fs.reply(unique, 0, append(out, fs.attr(f.ino)...))
	case fuseGetattr, fuseSetattr:
		// SETATTR: sizes are fixed; time updates are accepted as no-ops.
		if node != 1 && fs.files[node] == nil {
			fs.reply(unique, syscall.ENOENT, nil)
			return
		}
		out := make([]byte, 16, 104)
		le.PutUint64(out[0:], 3600)
		fs.reply(unique, 0, append(out, fs.attr(node)...))
	case fuseOpen:
		if fs.files[node] == nil {
			fs.reply(unique, syscall.EISDIR, nil)
			return
		}
		out := make([]byte, 16)
		le.PutUint64(out[0:], node)
		if fs.directIO {
			le.PutUint32(out[8:], fopenDirectIO)
		}
		fs.reply(unique, 0, out)
	case fuseRead, fuseWrite:
		f := fs.files[node]
		if f == nil || len(body) < 40 {
			fs.reply(unique, syscall.EBADF, nil)
			return
		}
		off, size := int64(le.Uint64(body[8:])), int64(le.Uint32(body[16:]))
		f.mu.Lock()
		failing := f.failTo > f.failFrom && off < f.failTo && off+size > f.failFrom
		if failing {
			f.eios++
			f.mu.Unlock()
			fs.reply(unique, syscall.EIO, nil)
			return
		}
		if opcode == fuseRead {
			end := min(off+size, int64(len(f.data)))
			var out []byte
			if off < end {
				out = append([]byte(nil), f.data[off:end]...)
			}
			f.mu.Unlock()
			fs.reply(unique, 0, out)
			return
		}
		data := body[40:]
		if int64(len(data)) > size {
			data = data[:size]
		}
		if off+int64(len(data)) > int64(len(f.data)) {
			f.mu.Unlock()
			fs.reply(unique, syscall.EFBIG, nil)
			return
		}
		if !fs.cut.Load() {
			copy(f.data[off:], data)
			f.writes++
		}
		f.mu.Unlock()
		out := make([]byte, 8)
		le.PutUint32(out[0:], uint32(len(data)))
		fs.reply(unique, 0, out)
	case fuseFsync:
		if f := fs.files[node]; f != nil {
			f.mu.Lock()
			f.fsyncs++
			f.mu.Unlock()
		}
		fs.reply(unique, 0, nil)
	case fuseFlush, fuseRelease:
		fs.reply(unique, 0, nil)
	case fuseStatfs:
		out := make([]byte, 80)
		le.PutUint64(out[0:], 1<<20) // blocks
		le.PutUint32(out[40:], 4096) // bsize
		le.PutUint32(out[44:], 255)  // namelen
		le.PutUint32(out[48:], 4096) // frsize
		fs.reply(unique, 0, out)
	case fuseForget, fuseBatchForget, fuseInterrupt:
		// no reply
	case fuseDestroy:
		fs.reply(unique, 0, nil)
	default:
		fs.reply(unique, syscall.ENOSYS, nil)
	}
}

// loopDevice attaches path to a free loop device (detached in t.Cleanup,
// which runs before the FUSE unmount registered earlier); "" when losetup
// is not usable.
func loopDevice(t *testing.T, path string) string {
	t.Helper()
	dev, err := losetupAttach(t, path)
	if err != nil {
		t.Logf("%v (the LUN uses the file directly)", err)
		return ""
	}
	return dev
}
