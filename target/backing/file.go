package backing

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// fileOptions say how openFile opens a regular file or block device.
type fileOptions struct {
	Path     string
	Offset   int64 // window start within the file
	Size     int64 // window length; 0 = to the end of the file/device
	Create   bool  // create a missing file, ftruncate it to Offset+Size
	ReadOnly bool
	// WriteThrough makes every write durable before it returns: the
	// write combiner's fdatasync per batch, or O_DSYNC with Direct.
	WriteThrough bool
	// Direct asks for O_DIRECT (blockio).
	Direct bool
	// DeviceBlockSize: the store reports a block device's logical block
	// size (LogicalBlockSize), which then is the LUN's default and
	// smallest block size: blockio, as IET's blockio. Through the page
	// cache (fileio) any block size works on any device, and IET's
	// fileio default was 512 on a 4096-byte-sector disk too.
	DeviceBlockSize bool
	// Probe opens for a check (OpenOptions.Probe): read-only, nothing
	// created or extended, but sized as the LUN's mode would size it.
	Probe bool
}

// FileStore is a fileio or blockio store: a regular file or block device,
// or a window [Offset, Offset+Size) of one, accessed with pread/pwrite at
// explicit offsets.
type FileStore struct {
	f *os.File
	// raw reaches the descriptor for the calls os.File has no method for
	// (fstat, ioctl, fdatasync, sync_file_range, fallocate, lseek). It is
	// used only through control: the descriptor stays open while the call
	// runs and nothing runs after Close, so a closed store can never
	// operate on a descriptor number the process has reused for another
	// file.
	raw      syscall.RawConn
	path     string
	base     int64        // window start in the file
	size     atomic.Int64 // window length (Refresh may change it)
	fixed    bool         // size given by the config: never refreshed
	readOnly bool
	// dsync: completed writes are already durable (write-through: opened
	// O_DSYNC, or the write combiner syncs each batch).
	dsync    bool
	blockDev bool
	// writeProtected: a block device the system holds read-only
	// (deviceReadOnly), served write-protected though the config asked
	// for writes.
	writeProtected bool
	rdev           uint64 // device number of a block device
	lbs            int    // logical block size (device) or 512
	// reportLBS: LogicalBlockSize says lbs (fileOptions.DeviceBlockSize).
	reportLBS bool
	// fileEnd is the length of a regular file at open (before any
	// extension), -1 for a device.
	fileEnd int64

	// O_DIRECT state: every request on the file must be aligned to align
	// bytes (offset, length and memory); unaligned ones bounce through pool.
	direct bool
	align  int64
	pool   *alignedPool
	// rmw serialises read-modify-write cycles (exclusive) against other
	// direct writes (shared) so a partial-block update never loses a
	// concurrent write to the same device block.
	rmw sync.RWMutex

	// comb runs the buffered writes of a regular file (see
	// serialisesWrites and writeCombiner) and the write-through ones of a
	// block device; nil otherwise.
	comb *writeCombiner

	flush flusher
	// datasync is fdatasync (a test replaces it to inject failures).
	datasync func() error
	// canUnmap is the result of the probe at open (probeUnmap).
	canUnmap bool
}

// openFile opens a fileio/blockio store. With o.Direct it returns
// errDirectRefused when the file system refuses O_DIRECT.
func openFile(o fileOptions) (*FileStore, error) {
	if o.Offset < 0 || o.Size < 0 {
		return nil, &Error{Op: "open", Path: o.Path, Kind: ErrRange,
			Err: fmt.Errorf("negative offset %d or size %d", o.Offset, o.Size)}
	}
	flags := os.O_RDWR
	if o.ReadOnly || o.Probe {
		flags = os.O_RDONLY
	} else {
		if o.Create {
			flags |= os.O_CREATE
		}
		if o.WriteThrough && o.Direct {
			// Buffered write-through syncs in the write combiner.
			flags |= oDSYNC
		}
	}
	if o.Direct {
		if oDIRECT == 0 {
			return nil, fmt.Errorf("%w: no O_DIRECT on this system", errDirectRefused)
		}
		flags |= oDIRECT
	}
	// O_NONBLOCK: open(2) of a FIFO for reading would wait for a writer
	// (a hung start, or a hung reload holding the daemon's locks) before
	// init can refuse it; init clears it once the file is a regular file
	// or a device.
	f, err := os.OpenFile(o.Path, flags|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o666)
	if errors.Is(err, unix.EWOULDBLOCK) {
		// A regular file under a lease (fcntl F_SETLEASE: Samba, NFS
		// servers) that this open breaks: with O_NONBLOCK open(2) says
		// EWOULDBLOCK at once. Without it, it waits until the holder
		// lets go (at most /proc/sys/fs/lease-break-time), as before.
		if fi, serr := os.Stat(o.Path); serr == nil && fi.Mode().IsRegular() {
			f, err = os.OpenFile(o.Path, flags|unix.O_CLOEXEC, 0o666)
		}
	}
	if err != nil {
		if o.Direct && errors.Is(err, unix.EINVAL) {
			return nil, fmt.Errorf("%w: %w", errDirectRefused, err)
		}
		return nil, opError("open", o.Path, 0, 0, err, o.ReadOnly)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, opError("open", o.Path, 0, 0, err, o.ReadOnly)
	}
	s := &FileStore{
		f:         f,
		raw:       raw,
		path:      o.Path,
		base:      o.Offset,
		readOnly:  o.ReadOnly || o.Probe,
		dsync:     o.WriteThrough && !o.ReadOnly && !o.Probe,
		lbs:       512,
		reportLBS: o.DeviceBlockSize,
		fileEnd:   -1,
		direct:    o.Direct,
	}
	s.datasync = s.fdatasync
	if err := s.init(o); err != nil {
		f.Close()
		return nil, err
	}
	if o.Probe && !o.ReadOnly {
		// A start opens it for writing: refuse what that open would.
		if err := writeRefused(o.Path, o.Path, unix.W_OK); err != nil {
			f.Close()
			return nil, err
		}
	}
	s.canUnmap = !s.readOnly && s.probeUnmap()
	if !s.readOnly && (s.serialisesWrites() || s.dsync && !s.direct) {
		s.comb = newWriteCombiner(f, raw)
		if s.dsync && !s.direct {
			// Write-through without O_DSYNC: the combiner ends every
			// batch with one fdatasync before any of its writes
			// completes, so a batch of writes costs one sync. On a
			// block device too, whose wb writes run in parallel.
			s.comb.sync = func() error { return s.flush.sync(s.datasync) }
		}
	}
	return s, nil
}

// writeRefused is the error a start's open(2) of path for writing (or for
// creating it) would fail with, as openFile reports it, found without
// writing by access(2) of at (path, or the directory path is created in)
// for mode: a file system mounted read-only, an immutable file or
// directory, one the daemon may not write. nil when access allows it.
func writeRefused(path, at string, mode uint32) error {
	if err := unix.Access(at, mode); err != nil {
		return opError("open", path, 0, 0, &fs.PathError{Op: "open", Path: path, Err: err}, false)
	}
	return nil
}

// DeviceWriteProtected reports whether path is a block device the system
// holds read-only, which a start serves write-protected (--check warns).
// It opens the device read-only and writes nothing.
func DeviceWriteProtected(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return false
	}
	return deviceReadOnly(fd)
}

// OpensMode reports whether a file of this mode can be a fileio or
// blockio store (the check openFile makes once the file is open): a
// regular file or a block device, or a character device on the systems
// whose disks are character devices (FreeBSD).
func OpensMode(m fs.FileMode) bool {
	switch {
	case m.IsRegular():
		return true
	case m&fs.ModeDevice == 0:
		return false
	case m&fs.ModeCharDevice != 0:
		return charDevIsDisk
	}
	return true
}

// control runs fn on the file's descriptor, which os.File keeps open
// until fn returns; after Close it returns os.ErrClosed without running
// fn.
func (s *FileStore) control(fn func(fd int) error) error {
	c := controlCalls.Get().(*controlCall)
	c.fn = fn
	err := s.raw.Control(c.call)
	ferr := c.err
	*c = controlCall{call: c.call}
	controlCalls.Put(c)
	if err != nil {
		return err
	}
	return ferr
}

// controlCall carries a control call's function and error. Pooled with
// its bound method value, so that a sync on the write path allocates
// nothing (a closure handed to RawConn.Control escapes).
type controlCall struct {
	fn   func(fd int) error
	err  error
	call func(fd uintptr)
}

var controlCalls = sync.Pool{New: func() any {
	c := &controlCall{}
	c.call = func(fd uintptr) { c.err = c.fn(int(fd)) }
	return c
}}

// errDirectRefused says O_DIRECT was refused at open (e.g. tmpfs).
var errDirectRefused = errors.New("O_DIRECT refused")

func (s *FileStore) init(o fileOptions) error {
	var st unix.Stat_t
	if err := s.control(func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return opError("open", s.path, 0, 0, os.NewSyscallError("fstat", err), s.readOnly)
	}
	var end int64 // bytes available in the file/device
	mode := st.Mode & unix.S_IFMT
	if mode == unix.S_IFCHR && charDevIsDisk {
		mode = unix.S_IFBLK // FreeBSD: disks are character devices
	}
	switch mode {
	case unix.S_IFBLK:
		s.blockDev = true
		s.rdev = uint64(st.Rdev)
		err := s.control(func(fd int) (err error) {
			end, err = deviceSize(fd)
			return err
		})
		if err != nil {
			return opError("open", s.path, 0, 0, err, s.readOnly)
		}
		var lbs int
		err = s.control(func(fd int) (err error) {
			lbs, err = deviceBlockSize(fd)
			return err
		})
		if err == nil && lbs >= 512 {
			s.lbs = lbs
		}
		if !o.ReadOnly {
			_ = s.control(func(fd int) error {
				s.writeProtected = deviceReadOnly(fd)
				return nil
			})
			if s.writeProtected {
				s.readOnly, s.dsync = true, false
			}
		}
	case unix.S_IFREG:
		end = st.Size
		s.fileEnd = end
		if o.Create && !o.ReadOnly && o.Size > 0 && end < o.Offset+o.Size {
			// Extend sparse; never write a byte, never shrink.
			if !o.Probe {
				if err := s.f.Truncate(o.Offset + o.Size); err != nil {
					return opError("open", s.path, 0, 0, err, s.readOnly)
				}
			}
			end = o.Offset + o.Size
		}
		if o.ReadOnly && o.Size > 0 && o.Offset >= end {
			// Nothing of the file is in the window: every read would be
			// zeros (NetBSD failed every read, a short read).
			return &Error{Op: "open", Path: s.path, Kind: ErrRange,
				Err: fmt.Errorf("offset %d is at or past the end of the file (%d bytes): a read-only extent with no data", o.Offset, end)}
		}
	default:
		return &Error{Op: "open", Path: s.path, Kind: ErrNotSupported,
			Err: fmt.Errorf("not a regular file or block device (mode %#o)", st.Mode&unix.S_IFMT)}
	}
	if err := s.control(func(fd int) error { return unix.SetNonblock(fd, false) }); err != nil {
		return opError("open", s.path, 0, 0, os.NewSyscallError("fcntl", err), s.readOnly)
	}
	switch {
	case o.Size > 0:
		s.size.Store(o.Size)
		s.fixed = true
		// A regular file may be shorter than its window (it reads as
		// zeros and grows on write); a device cannot grow.
		// A device whose size the system does not report (end 0,
		// some non-Linux systems) is taken at the config's word.
		if s.blockDev && end > 0 && o.Offset+o.Size > end {
			return &Error{Op: "open", Path: s.path, Kind: ErrRange,
				Err: fmt.Errorf("extent [%d,+%d) ends past the device (%d bytes)", o.Offset, o.Size, end)}
		}
	case s.blockDev && end == 0:
		return &Error{Op: "open", Path: s.path, Kind: ErrRange,
			Err: errors.New("the system does not report the device's size: give the LUN a Size")}
	case o.Offset > end:
		return &Error{Op: "open", Path: s.path, Kind: ErrRange,
			Err: fmt.Errorf("offset %d is past the end (%d bytes)", o.Offset, end)}
	default:
		s.size.Store(end - o.Offset)
	}
	if s.direct {
		s.align = memAlign
		if s.blockDev {
			s.align = int64(s.lbs)
		}
		s.pool = newAlignedPool()
		// Padding a request to whole blocks must never touch bytes
		// outside the window (another extent may live there).
		if s.base%s.align != 0 || s.size.Load()%s.align != 0 {
			return fmt.Errorf("%w: window [%d,+%d) of %s is not aligned to %d bytes",
				errDirectRefused, s.base, s.size.Load(), s.path, s.align)
		}
	}
	return nil
}

// Path returns the backing file's path.
func (s *FileStore) Path() string { return s.path }

// Size is the store's capacity in bytes.
func (s *FileStore) Size() int64 { return s.size.Load() }

// Refresh re-reads the size of a file or device that was not given a
// fixed size (a grown file, a resized volume) and returns it. With
// O_DIRECT the size is rounded down to the alignment.
func (s *FileStore) Refresh() (int64, error) {
	if s.fixed {
		return s.size.Load(), nil
	}
	var end int64
	if s.blockDev {
		err := s.control(func(fd int) (err error) {
			end, err = deviceSize(fd)
			return err
		})
		if err != nil {
			return s.size.Load(), opError("refresh", s.path, 0, 0, err, s.readOnly)
		}
	} else {
		var st unix.Stat_t
		if err := s.control(func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
			return s.size.Load(), opError("refresh", s.path, 0, 0, os.NewSyscallError("fstat", err), s.readOnly)
		}
		end = st.Size
	}
	n := end - s.base
	if s.direct {
		n -= n % s.align
	}
	if n > 0 {
		s.size.Store(n)
	}
	return s.size.Load(), nil
}

// LogicalBlockSize returns the device's logical block size (BLKSSZGET) for
// a block device opened for blockio, 512 for a regular file or a block
// device served through the page cache (fileio), where the kernel reads
// and writes any 512-byte block of a 4096-byte-sector disk.
func (s *FileStore) LogicalBlockSize() int {
	if !s.reportLBS {
		return 512
	}
	return s.lbs
}

// Direct reports whether the store does O_DIRECT I/O.
func (s *FileStore) Direct() bool { return s.direct }

// WriteProtected reports whether the store is a block device the system
// holds read-only though the LUN was not configured read-only: it is
// served write-protected.
func (s *FileStore) WriteProtected() bool { return s.writeProtected }

// WriteCacheEnabled reports whether completed writes may still sit in a
// volatile cache (false when opened write-through or read-only).
func (s *FileStore) WriteCacheEnabled() bool { return !s.dsync && !s.readOnly }

// ReadAt reads len(p) bytes at off. Parts of the window that lie past the
// end of a regular file read as zeros.
func (s *FileStore) ReadAt(p []byte, off int64) (int, error) {
	n64 := int64(len(p))
	if !inBounds(off, n64, s.size.Load()) {
		return 0, rangeError("read", s.path, off, n64, s.size.Load())
	}
	var (
		n   int
		err error
	)
	if s.direct {
		n, err = s.directRead(p, s.base+off)
	} else {
		n, err = s.f.ReadAt(p, s.base+off)
	}
	if err == io.EOF && !s.blockDev {
		clear(p[n:])
		return len(p), nil
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
			return n, &Error{Op: "read", Path: s.path, Off: off, Len: n64, Kind: ErrIO, Err: err}
		}
		return n, opError("read", s.path, off, n64, err, s.readOnly)
	}
	return n, nil
}

// WriteAt writes len(p) bytes at off; with IOMode wt the data is durable
// when it returns.
func (s *FileStore) WriteAt(p []byte, off int64) (int, error) {
	n64 := int64(len(p))
	if s.readOnly {
		return 0, readOnlyError("write", s.path, off, n64)
	}
	if !inBounds(off, n64, s.size.Load()) {
		return 0, rangeError("write", s.path, off, n64, s.size.Load())
	}
	var (
		n   int
		err error
	)
	switch {
	case s.direct:
		n, err = s.directWrite(p, s.base+off)
	case s.comb != nil:
		if err = s.comb.write(p, s.base+off); err == nil {
			n = len(p)
		}
	default:
		n, err = s.f.WriteAt(p, s.base+off)
	}
	if err != nil {
		return n, opError("write", s.path, off, n64, err, s.readOnly)
	}
	return n, nil
}

// Sync makes every completed write durable (fdatasync, which also flushes
// the device's volatile write cache). After a sync of the file failed,
// Sync returns that error until the store is reopened (see flusher).
func (s *FileStore) Sync() error {
	if s.readOnly {
		return nil
	}
	if err := s.flush.sync(s.datasync); err != nil {
		return opError("sync", s.path, 0, s.size.Load(), err, s.readOnly)
	}
	return nil
}

func (s *FileStore) fdatasync() error {
	return os.NewSyscallError("fdatasync", s.control(dataSync))
}

// SyncRange makes the writes in [off, off+n) durable. It is Sync: one
// fdatasync, shared with concurrent callers (flusher), commits the data,
// the metadata it needs (sparse allocations) and flushes the device cache.
// There is no sync_file_range of the range first: fdatasync writes back
// every dirty page of the file anyway, and a writeback error reported to
// one caller's sync_file_range would let a concurrent caller's fdatasync
// succeed for the same lost pages (Linux reports the error once per open
// file); in the flusher every caller sees it. A store opened write-through
// has nothing to do: its writes were durable on completion. A failed sync
// is reported by every later one (see flusher).
func (s *FileStore) SyncRange(off, n int64) error {
	if !inBounds(off, n, s.size.Load()) {
		return rangeError("sync", s.path, off, n, s.size.Load())
	}
	if s.readOnly || n == 0 {
		return nil
	}
	if s.dsync {
		// Write-through: completed writes are durable, unless a sync of
		// the file failed before (see flusher: sticky).
		if err := s.flush.err(); err != nil {
			return opError("sync", s.path, off, n, err, s.readOnly)
		}
		return nil
	}
	if err := s.flush.sync(s.datasync); err != nil {
		return opError("sync", s.path, off, n, err, s.readOnly)
	}
	return nil
}

// Unmap punches a hole in [off, off+n) (fallocate PUNCH_HOLE|KEEP_SIZE);
// the range then reads as zeros. On a block device the kernel only accepts
// this when it can guarantee zeros (otherwise ErrNotSupported).
func (s *FileStore) Unmap(off, n int64) error {
	if s.readOnly {
		return readOnlyError("unmap", s.path, off, n)
	}
	if !inBounds(off, n, s.size.Load()) {
		return rangeError("unmap", s.path, off, n, s.size.Load())
	}
	if n == 0 {
		return nil
	}
	if s.direct {
		// Keep partial-block updates out of the punched range's way.
		s.rmw.Lock()
		defer s.rmw.Unlock()
	}
	err := s.control(func(fd int) error { return punchHole(fd, s.base+off, n) })
	if err != nil {
		e := &Error{Op: "unmap", Path: s.path, Off: off, Len: n, Err: err}
		switch {
		case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EINVAL),
			errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENOTTY):
			e.Kind = ErrNotSupported
		default:
			e.Kind = classify(err, s.readOnly)
		}
		return e
	}
	if s.dsync {
		// Write-through: the deallocation must be as durable as a write.
		if err := s.flush.sync(s.datasync); err != nil {
			return opError("unmap", s.path, off, n, err, s.readOnly)
		}
	}
	return nil
}

// CanUnmap reports whether Unmap deallocates on this file or device (the
// probe at open, see probeUnmap).
func (s *FileStore) CanUnmap() bool { return s.canUnmap }

// probeUnmap finds out whether punching holes works without touching a
// byte of data. For a regular file a new unnamed file on the same file
// system (O_TMPFILE in its directory) is asked to punch a hole; the
// file system answers EOPNOTSUPP if it cannot. Where no such file can be
// made (no O_TMPFILE, a directory we may not write), the file itself is
// asked to punch a hole 1 TiB past its end (KEEP_SIZE): far past any
// byte a concurrent write could be putting there (a window longer than
// the file, another LUN on it), not just past the end it had a moment
// ago. For a block
// device the kernel implements the punch with a write-zeroes request
// that must not fall back to writing (BLKDEV_ZERO_NOFALLBACK), so the
// device must support write zeroes: its queue's write_zeroes_max_bytes
// in sysfs is non-zero.
func (s *FileStore) probeUnmap() bool {
	if s.blockDev {
		return blockDevWriteZeroes(s.rdev)
	}
	const probe = 4096
	if ok, tried := punchProbeTmpfile(filepath.Dir(s.path), probe); tried {
		return ok
	}
	var st unix.Stat_t
	if err := s.control(func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return false
	}
	off := roundUp(max(st.Size, 0), probe) + 1<<40
	return s.control(func(fd int) error { return punchHole(fd, off, probe) }) == nil
}

// blockDevWriteZeroes reads the device's write_zeroes_max_bytes (the
// queue of a partition is its disk's, one directory up).
func blockDevWriteZeroes(rdev uint64) bool {
	dir := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(rdev), unix.Minor(rdev))
	for _, q := range []string{dir + "/queue", dir + "/../queue"} {
		b, err := os.ReadFile(q + "/write_zeroes_max_bytes")
		if err != nil {
			continue
		}
		var n int64
		if _, err := fmt.Sscan(string(b), &n); err == nil {
			return n > 0
		}
	}
	return false
}

// Close closes the file.
func (s *FileStore) Close() error {
	if err := s.f.Close(); err != nil {
		return opError("close", s.path, 0, 0, err, s.readOnly)
	}
	return nil
}

// aligned reports whether a direct request needs no bounce buffer.
func (s *FileStore) aligned(p []byte, abs int64) bool {
	a := s.align
	return abs%a == 0 && int64(len(p))%a == 0 && isAligned(p, int(a))
}

// directRead reads at absolute file offset abs with O_DIRECT.
func (s *FileStore) directRead(p []byte, abs int64) (int, error) {
	if s.aligned(p, abs) {
		return s.f.ReadAt(p, abs)
	}
	bp := s.pool.get()
	defer s.pool.put(bp)
	buf := *bp
	a := s.align
	done := 0
	for done < len(p) {
		pos := abs + int64(done)
		start := pos - pos%a
		skip := int(pos - start)
		want := min(len(p)-done, len(buf)-skip)
		span := roundUp(int64(skip+want), a)
		n, err := s.f.ReadAt(buf[:span], start)
		got := max(0, min(n-skip, want))
		copy(p[done:done+got], buf[skip:skip+got])
		done += got
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// directWrite writes at absolute file offset abs with O_DIRECT, bouncing
// unaligned requests (read-modify-write for partial blocks).
func (s *FileStore) directWrite(p []byte, abs int64) (int, error) {
	a := s.align
	partial := abs%a != 0 || int64(len(p))%a != 0
	if partial {
		s.rmw.Lock()
		defer s.rmw.Unlock()
	} else {
		s.rmw.RLock()
		defer s.rmw.RUnlock()
		if isAligned(p, int(a)) {
			return s.f.WriteAt(p, abs)
		}
	}
	bp := s.pool.get()
	defer s.pool.put(bp)
	buf := *bp
	done := 0
	for done < len(p) {
		pos := abs + int64(done)
		start := pos - pos%a
		skip := int(pos - start)
		want := min(len(p)-done, len(buf)-skip)
		span := int(roundUp(int64(skip+want), a))
		if skip != 0 || want%int(a) != 0 {
			// Fill the head and tail blocks from the medium first.
			if err := s.fillBlock(buf[:a], start); err != nil {
				return done, err
			}
			if last := int64(span) - a; last > 0 {
				if err := s.fillBlock(buf[last:span], start+last); err != nil {
					return done, err
				}
			}
		}
		copy(buf[skip:skip+want], p[done:done+want])
		if _, err := s.f.WriteAt(buf[:span], start); err != nil {
			return done, err
		}
		done += want
	}
	return done, nil
}

// fillBlock reads one aligned block at abs into b, zero-filling past EOF.
func (s *FileStore) fillBlock(b []byte, abs int64) error {
	n, err := s.f.ReadAt(b, abs)
	if err == io.EOF {
		clear(b[n:])
		return nil
	}
	return err
}

func roundUp(n, a int64) int64 { return (n + a - 1) / a * a }

// serialisesWrites says whether writes go through the combiner: on a
// regular file opened without O_DIRECT, where the file system takes the
// inode lock exclusively for each buffered write anyway (ext4, XFS, btrfs,
// tmpfs), so writers queue in Go instead of spinning on the kernel's lock
// while holding a thread in the system call each, and adjacent ones merge
// (writeCombiner). Block devices and O_DIRECT writes run in parallel.
func (s *FileStore) serialisesWrites() bool { return !s.direct && !s.blockDev }
