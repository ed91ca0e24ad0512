package admin

import (
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/iscsi"
	"github.com/ietgo/ietd/target/scsi"
)

// ServedLUNs tells which LUNs of target tid are served and their
// capacity (ok false: unknown, the config is listed as is).
type ServedLUNs func(tid int) (luns map[uint64]scsi.ServedLUN, ok bool)

// VolumeListing renders the model like IET's /proc/net/iet/volume:
// targets newest (highest tid) first, LUNs in order, path last. With
// served, as IET listed only the LUNs it attached, a LUN whose store
// could not be opened is left out (monitors such as Pacemaker's match
// "lun:L ... path:P" to see that a LUN is up) and blocks are those
// served.
func VolumeListing(cfg *config.Config, served ServedLUNs) string {
	var b strings.Builder
	for _, t := range cfg.TargetsNewestFirst() {
		fmt.Fprintf(&b, "tid:%d name:%s\n", t.TID, t.Name)
		var up map[uint64]scsi.ServedLUN
		known := false
		if served != nil {
			up, known = served(t.TID)
		}
		for _, l := range t.LUNs {
			sl, isUp := up[l.Number]
			if known && !isUp {
				continue
			}
			bs := l.BlockSize
			if bs == 0 {
				bs = 512
			}
			iomode := "wt"
			switch {
			case l.ReadOnly():
				iomode = "ro"
			case l.IOMode == "wb" && l.Type != "blockio" && l.Type != "nullio":
				iomode = "wb"
			}
			typ := l.Type
			if typ == "" {
				typ = "fileio"
			}
			blocks := sl.Blocks
			if known && sl.BlockSize > 0 {
				bs = sl.BlockSize // the device's own when the config sets none
			} else {
				blocks = lunBlocks(l, bs)
			}
			fmt.Fprintf(&b, "\tlun:%d state:0 iotype:%s iomode:%s blocks:%d blocksize:%d",
				l.Number, typ, iomode, blocks, bs)
			if typ != "nullio" && l.Store != nil {
				fmt.Fprintf(&b, " path:%s", storePath(l.Store))
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func storePath(s *config.Store) string {
	if s.Kind == config.StoreFile {
		return s.Path
	}
	parts := make([]string, 0, len(s.Members))
	for _, m := range s.Members {
		parts = append(parts, storePath(m))
	}
	return strings.Join(parts, "+")
}

func lunBlocks(l *config.LUN, bs int) uint64 {
	if l.Type == "nullio" || l.Store == nil {
		if l.Blocks != 0 {
			return l.Blocks
		}
		return config.DefaultNullioBlocks * 512 / uint64(bs)
	}
	sz := storeSize(l.Store)
	if l.Blocks != 0 && l.Blocks*uint64(bs) < uint64(sz) {
		return l.Blocks
	}
	return uint64(sz) / uint64(bs)
}

func storeSize(s *config.Store) int64 {
	switch s.Kind {
	case config.StoreConcat:
		var n int64
		for _, m := range s.Members {
			n += storeSize(m)
		}
		return n
	case config.StoreMirror:
		var n int64 = -1
		for _, m := range s.Members {
			if z := storeSize(m); n < 0 || z < n {
				n = z
			}
		}
		return max(n, 0)
	}
	if s.Size > 0 {
		return s.Size
	}
	f, err := os.Open(s.Path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n, err := f.Seek(0, 2)
	if err != nil {
		return 0
	}
	return max(n-s.Offset, 0)
}

// SessionListing renders sessions like IET's /proc/net/iet/session: every
// target (newest first), its sessions, their connections.
func SessionListing(cfg *config.Config, sessions []iscsi.SessionInfo) string {
	var b strings.Builder
	for _, t := range cfg.TargetsNewestFirst() {
		fmt.Fprintf(&b, "tid:%d name:%s\n", t.TID, t.Name)
		for i := len(sessions) - 1; i >= 0; i-- {
			s := sessions[i]
			if s.TID != t.TID {
				continue
			}
			fmt.Fprintf(&b, "\tsid:%d initiator:%s\n", s.SID, s.InitiatorName)
			for _, c := range s.Conns {
				fmt.Fprintf(&b, "\t\tcid:%d ip:%s state:%s hd:%s dd:%s\n", c.CID, ietAddr(c.IP),
					c.State, strings.ToLower(c.HeaderDigest), strings.ToLower(c.DataDigest))
			}
		}
	}
	return b.String()
}

// ietAddr prints IPv6 addresses bracketed and uncompressed, as IET did.
func ietAddr(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4() || a.Is4In6() {
		if err == nil {
			return a.Unmap().String()
		}
		return s
	}
	x := a.As16()
	var parts [8]string
	for i := range parts {
		parts[i] = fmt.Sprintf("%02x%02x", x[2*i], x[2*i+1])
	}
	return "[" + strings.Join(parts[:], ":") + "]"
}
