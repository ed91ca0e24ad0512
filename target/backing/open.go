package backing

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// OpenOptions tune Open.
type OpenOptions struct {
	Log *logrus.Entry
	// StateDir, when set, keeps the failed members of RAID1 devices
	// recorded across restarts (mirrorstate.go).
	StateDir string
	// Probe opens for a check (--check): every file read-only; nothing
	// is created, extended or written, and no RAID1 state is read; a
	// missing file the start would create stands in as a store of the
	// length the start gives it. The sizes and errors are a start's:
	// a LUN that is not read-only is refused when access(2) says its
	// file cannot be opened for writing, or created in its directory.
	Probe bool
}

// BlockSizer is implemented by stores that know their device's logical
// block size (blockio on a block device).
type BlockSizer interface {
	LogicalBlockSize() int
}

// WriteCacher is implemented by stores that know whether completed writes
// can still be lost on power failure (IOMode wb) or are durable on
// completion (IOMode wt, ro, nullio). The SCSI layer reports it as WCE.
type WriteCacher interface {
	WriteCacheEnabled() bool
}

// DefaultBlockSize is the logical block size when a LUN sets none.
const DefaultBlockSize = 512

// nullioDefaultSize is IET's nullio capacity when Blocks is absent (64 GiB).
const nullioDefaultSize = config.DefaultNullioBlocks * 512

// Open opens the backing store of a LUN according to its Type (fileio,
// blockio, nullio), Store composition (file window, RAID0, RAID1), and
// IOMode (ro opens read-only, wt makes every write durable on completion,
// wb leaves durability to Sync/SyncRange). NetBSD stores with Create set
// are created sparse when missing. Blocks, when set on a file-backed LUN,
// limits the capacity to Blocks*BlockSize bytes.
func Open(l *config.LUN, opts OpenOptions) (Store, error) {
	if l == nil {
		return nil, errors.New("backing: nil LUN")
	}
	log := opts.Log
	if log == nil {
		log = discardLog()
	}
	log = log.WithField("lun", l.Number)
	bs := int64(l.BlockSize)
	if bs <= 0 {
		bs = DefaultBlockSize
	}
	ro := l.ReadOnly()
	typ := l.Type
	if typ == "" {
		typ = "fileio"
	}
	switch typ {
	case "nullio":
		size := int64(nullioDefaultSize)
		if l.Blocks > 0 {
			if l.Blocks > uint64((1<<62)/bs) {
				return nil, fmt.Errorf("backing: lun %d: nullio Blocks=%d too large", l.Number, l.Blocks)
			}
			size = int64(l.Blocks) * bs
		}
		return NewNull(size, ro), nil
	case "fileio", "blockio":
	default:
		return nil, fmt.Errorf("backing: lun %d: unknown Type %q", l.Number, l.Type)
	}
	if l.Store == nil {
		return nil, fmt.Errorf("backing: lun %d: %s needs a Path", l.Number, typ)
	}
	o := opener{
		log:       log,
		stateDir:  opts.StateDir,
		probe:     opts.Probe,
		direct:    typ == "blockio",
		readOnly:  ro,
		writeThru: l.IOMode == "" || l.IOMode == "wt",
		blockSize: l.BlockSize,
	}
	s, err := o.open(l.Store)
	if err != nil {
		var be *Error
		if errors.As(err, &be) {
			return nil, fmt.Errorf("lun %d: %w", l.Number, err) // err says "backing: "
		}
		return nil, fmt.Errorf("backing: lun %d: %w", l.Number, err)
	}
	if l.Blocks > 0 {
		if l.Blocks <= uint64(s.Size()/bs) {
			s = NewLimit(s, int64(l.Blocks)*bs, ro)
		} else {
			log.WithFields(logrus.Fields{"blocks": l.Blocks, "available": s.Size() / bs}).
				Warn("Blocks exceeds the backing store; using the store's size")
		}
	}
	return s, nil
}

// opener opens a config.Store tree.
type opener struct {
	log       *logrus.Entry
	stateDir  string
	probe     bool
	direct    bool
	readOnly  bool
	writeThru bool
	blockSize int // the LUN's BlockSize (0: the default)
}

func (o opener) open(st *config.Store) (Store, error) {
	if st == nil {
		return nil, errors.New("missing store")
	}
	switch st.Kind {
	case config.StoreFile:
		return o.openFile(st)
	case config.StoreConcat, config.StoreMirror:
		if len(st.Members) == 0 {
			return nil, fmt.Errorf("device %q has no members", st.Name)
		}
		if st.Kind == config.StoreMirror && len(st.Members) < 2 {
			return nil, fmt.Errorf("RAID1 device %q needs at least 2 members, has %d", st.Name, len(st.Members))
		}
		members := make([]Store, 0, len(st.Members))
		for _, mst := range st.Members {
			m, err := o.open(mst)
			if err != nil {
				closeAll(members)
				return nil, fmt.Errorf("device %q: %w", st.Name, err)
			}
			members = append(members, m)
		}
		if st.Kind == config.StoreConcat {
			return NewConcat(members...), nil
		}
		mm := make([]MirrorMember, len(members))
		for i, m := range members {
			mm[i] = MirrorMember{Name: storeName(st.Members[i]), Store: m}
		}
		m := NewMirror(o.log.WithField("device", st.Name), mm...)
		m.name = st.Name
		if o.stateDir != "" && !o.probe {
			if err := m.useState(o.stateDir, storeName(st)); err != nil {
				m.Close()
				return nil, err
			}
		}
		return m, nil
	}
	return nil, fmt.Errorf("store %q: unknown kind %d", st.Name, st.Kind)
}

func (o opener) openFile(st *config.Store) (Store, error) {
	fo := fileOptions{
		Path:         st.Path,
		Offset:       st.Offset,
		Size:         st.Size,
		Create:       st.Create && !o.readOnly,
		ReadOnly:     o.readOnly,
		WriteThrough: o.writeThru,
		Direct:       o.direct,
		// Kept when O_DIRECT is refused: still blockio's geometry.
		DeviceBlockSize: o.direct,
		Probe:           o.probe,
	}
	if o.probe && fo.Create && fo.Size > 0 {
		if _, err := os.Stat(st.Path); errors.Is(err, fs.ErrNotExist) {
			// A start creates it: Size bytes past Offset, if it may
			// create files in the directory.
			if err := writeRefused(st.Path, filepath.Dir(st.Path), unix.W_OK|unix.X_OK); err != nil {
				return nil, err
			}
			return NewNull(fo.Size, true), nil
		}
	}
	s, err := openFile(fo)
	if err != nil && o.direct && errors.Is(err, errDirectRefused) {
		o.log.WithField("path", st.Path).WithError(err).
			Warn("blockio: O_DIRECT refused, falling back to fileio (page cache)")
		fo.Direct = false
		s, err = openFile(fo)
	}
	if err != nil {
		return nil, err
	}
	if o.direct && !s.blockDev {
		// Served all the same: a config that runs must keep running.
		o.log.WithField("path", st.Path).Warn(BlockioOnFileNote(st.Path))
	}
	if !o.direct && s.blockDev && s.lbs > 512 && o.blockSize == 0 {
		o.log.WithField("path", st.Path).Warn(FileioSectorNote(st.Path, s.lbs))
	}
	if s.WriteProtected() {
		o.log.WithField("path", st.Path).Warn(WriteProtectedNote(st.Path))
	}
	if o.readOnly && s.fileEnd >= 0 && fo.Size > 0 && fo.Offset+fo.Size > s.fileEnd {
		o.log.WithField("path", st.Path).Warn(PastEndNote(st.Path, fo.Offset, fo.Size, s.fileEnd))
	}
	return s, nil
}

// BlockioOnFileNote is the warning for Type=blockio on a regular file,
// which IET refused and we serve.
func BlockioOnFileNote(path string) string {
	return fmt.Sprintf("%s is a regular file: IET refused Type=blockio on it (block device only); served here with O_DIRECT on the file (through the page cache where the file system refuses O_DIRECT)", path)
}

// FileioSectorNote is the warning for a fileio LUN without BlockSize on
// a disk of sector-byte logical blocks (more than 512): served with
// 512-byte blocks, as IET's fileio, where earlier ietd releases served the disk's.
func FileioSectorNote(path string, sector int) string {
	return fmt.Sprintf("%s has %d-byte sectors: this fileio LUN has 512-byte blocks, as IET's fileio did (ietd before this release gave it the disk's %d: a LUN partitioned then needs BlockSize=%d)", path, sector, sector, sector)
}

// WriteProtectedNote is the warning for a LUN configured for writes on a
// block device the system holds read-only.
func WriteProtectedNote(path string) string {
	return fmt.Sprintf("%s is a read-only block device (blockdev --getro says 1): served write-protected (the WP bit; writes fail with DATA PROTECT) instead of accepting writes that would all fail; after blockdev --setrw, a restart serves it writable", path)
}

// PastEndNote is the warning for a read-only window [off,+size) that runs
// past the end of its regular file (end bytes long).
func PastEndNote(path string, off, size, end int64) string {
	return fmt.Sprintf("read-only extent [%d,+%d) runs past the end of %s (%d bytes): reads past byte %d return zeros (NetBSD failed them, a short read)", off, size, path, end, end)
}

func storeName(st *config.Store) string {
	if st.Name != "" {
		return st.Name
	}
	return st.Path
}

func closeAll(stores []Store) {
	for _, s := range stores {
		s.Close()
	}
}

// discardLog is the logger used when the caller gives none.
func discardLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}
