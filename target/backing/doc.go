// Package backing implements LUN backing stores behind one interface,
// Store (pread/pwrite at explicit offsets, safe for concurrent use):
//
//   - FileStore: fileio (a regular file or block device through the page
//     cache) and blockio (O_DIRECT, with unaligned requests bounced through
//     pooled aligned buffers and partial blocks read-modify-written). A
//     FileStore may be a window [Offset, Offset+Size) of its file, which is
//     how NetBSD extents are opened; missing NetBSD files are created and
//     extended sparse with ftruncate, never written at start-up. The
//     buffered writes of a regular file, and the write-through ones of a
//     block device, go through a write combiner (one batch at a time,
//     adjacent requests merged into one pwritev). IOMode
//     wt makes every write durable before it returns: on a file or a block
//     device the combiner ends each batch with one fdatasync (group commit);
//     a blockio store opens O_DSYNC. wb leaves durability to Sync
//     and SyncRange (fdatasync, coalesced across concurrent callers, a
//     failure sticky); ro opens O_RDONLY.
//     Unmap punches holes (fallocate PUNCH_HOLE|KEEP_SIZE); on block devices
//     the kernel accepts that only when it can guarantee zeros.
//   - NullStore: nullio; reads zeros, discards writes.
//   - ConcatStore (NetBSD RAID0) and MirrorStore (NetBSD RAID1): a member
//     is failed only by I/O errors, or by the system refusing it a write
//     another member took (a file system remounted read-only), never by
//     disk full, which is returned to the initiator, and never the last
//     healthy one; MirrorStore.Health
//     and MirrorHealth (a walk of a composed store, also reached through
//     scsi.Target.StoreHealth) report each member's state.
//   - LimitStore: the first N bytes of another store (LUN Blocks=).
//   - MemoryStore (NewMemory): sparse RAM store for tests and scratch LUNs.
//   - Faulty: error injection wrapper for tests of the layers above.
//
// The system calls that differ between Linux and the other systems the
// tree builds on are in sys_linux.go and sys_other.go (no hole punching,
// SEEK_DATA or pwritev there; fsync for fdatasync; O_SYNC for O_DSYNC).
//
// Errors are *Error values that wrap both a classification (ErrNoSpace,
// ErrIO, ErrReadOnly, ErrRange, ErrNotSupported) and the operating-system
// cause, so errors.Is works with either. Open builds the right store tree
// from a config.LUN.
package backing
