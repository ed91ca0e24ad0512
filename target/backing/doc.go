// Package backing implements LUN backing stores: fileio (regular files and
// block devices through the page cache), blockio (O_DIRECT), nullio, NetBSD
// extents (windows into a file), RAID0 concatenation and RAID1 mirrors.
package backing
