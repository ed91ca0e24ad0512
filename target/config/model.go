package config

import (
	"cmp"
	"slices"
)

// Dialect names the file format a Config was read from.
type Dialect string

const (
	DialectIET    Dialect = "iet"
	DialectNetBSD Dialect = "netbsd"
)

// Config is the whole configuration of one daemon.
type Config struct {
	// Dialect and Source say where the model came from (for messages).
	Dialect Dialect
	Source  string

	// Discovery holds the global IncomingUser/OutgoingUser accounts: when
	// Discovery.Incoming is non-empty, discovery sessions must use CHAP.
	Discovery Auth

	// Targets in file order. TIDs are unique and > 0.
	Targets []*Target

	// ISNS is the iSNS registration setting (nil when not configured).
	ISNS *ISNS

	// Access control (IET initiators.allow / initiators.deny / targets.allow).
	// A nil file means "absent" (which has its own semantics, see package acl).
	InitiatorsAllow *ACLFile
	InitiatorsDeny  *ACLFile
	TargetsAllow    *ACLFile
}

// Auth is a set of CHAP accounts.
type Auth struct {
	// Incoming accounts authenticate the initiator (one-way CHAP). If at
	// least one exists, CHAP is mandatory.
	Incoming []Account
	// Outgoing is the target's own account for mutual CHAP (at most one).
	Outgoing *Account
	// Optional lets initiators log in without CHAP even when Incoming
	// accounts exist (NetBSD auths semantics: CHAP when the initiator
	// asks for it).
	Optional bool
	// FoldUsers matches CHAP_N to the Incoming user names without case
	// (NetBSD's auths lookup); IET compares them exactly.
	FoldUsers bool
	// MutualWithIncoming answers mutual CHAP, when there is no Outgoing
	// account, with the account the initiator authenticated as (its
	// name and secret): NetBSD's auths has no target secret.
	MutualWithIncoming bool
}

// SecretBothWays returns the incoming account whose secret is also the
// outgoing one's: RFC 7143 12.1.3 forbids a CHAP secret used for both
// directions (an initiator that knows it can pose as the target to the
// other initiators of that account). NetBSD's MutualWithIncoming, which
// has no outgoing account, is not reported: it is that dialect's rule.
func (a Auth) SecretBothWays() (Account, bool) {
	if a.Outgoing == nil || a.Outgoing.Secret == "" {
		return Account{}, false
	}
	for _, in := range a.Incoming {
		if in.Secret == a.Outgoing.Secret {
			return in, true
		}
	}
	return Account{}, false
}

// Account is a CHAP user name and secret.
type Account struct {
	User   string
	Secret string
	Pos    Position
}

// ISNS is the iSNS server setting.
type ISNS struct {
	Server        string // host or address, port 3205 unless Port set
	Port          int
	AccessControl bool
	Pos           Position
}

// Target is one iSCSI target (an IET Target stanza or a NetBSD target line).
type Target struct {
	TID   int    // IET target id, 1-based, stable for the life of the daemon
	Name  string // full IQN / EUI / NAA name
	Alias string // IET Alias (accepted; we send it as TargetAlias)
	Pos   Position

	LUNs []*LUN
	Auth Auth

	// Params are the target's offered/limit values for normal sessions.
	Params Params

	MaxSessions    int // 0 = unlimited
	Wthreads       int
	QueuedCommands int // command window (MaxCmdSN - ExpCmdSN + 1)
	NOPInterval    int // seconds, 0 = off
	NOPTimeout     int // seconds

	// AllowedNets restricts logins and discovery to initiator addresses in
	// these networks (NetBSD per-target netmask). Empty = no restriction.
	AllowedNets []Netmask

	// NetBSDIndex is the target's index in a NetBSD targets file (used for
	// NetBSD-compatible identifiers); -1 for IET targets.
	NetBSDIndex int
}

// IdentityDialect is whose INQUIRY defaults the target's LUNs report
// unless a LUN's Identity says otherwise: NetBSD's for targets read from
// a NetBSD targets file, IET's for all others, including targets added
// at run time with ietadm under a NetBSD config.
func (t *Target) IdentityDialect() Dialect {
	if t.NetBSDIndex >= 0 {
		return DialectNetBSD
	}
	return DialectIET
}

// LUN is one logical unit of a target.
type LUN struct {
	Number uint64
	Pos    Position

	// Type is the IET iotype: "fileio", "blockio" or "nullio".
	Type string
	// Store is the backing storage (nil for nullio).
	Store *Store
	// Blocks is the capacity in blocks for nullio (0 = default 64 GiB).
	Blocks uint64

	ScsiID string // VPD 0x83 vendor-specific identifier source (<=16 chars)
	ScsiSN string // unit serial number (<=32 printable chars)

	// IOMode is "wt" (write-through, default), "wb" (write-back) or "ro".
	IOMode string
	// BlockSize is the logical block size (512..8192, power of two); 0 = default.
	BlockSize int

	// INQUIRY identity overrides (our extension). Empty/0 = dialect default.
	Vendor      string
	Product     string
	Revision    string
	ScsiVersion int // SPC version byte; 0 = default (0x05, SPC-3)
	// Identity picks whose INQUIRY defaults the LUN reports: "" those of
	// the target's origin (Target.IdentityDialect); DialectNetBSD NetBSD's vendor and product
	// strings and its NAA designator, as ietd-migrate writes
	// (Identity=netbsd) so that a migrated LUN stays the same disk to
	// initiators (our extension).
	Identity Dialect
	// Removable makes the LUN report removable medium (RMB): START STOP
	// UNIT can eject and load it, PREVENT ALLOW MEDIUM REMOVAL applies
	// (our extension, Lun key Removable=Yes).
	Removable bool
	// NAA, when set, says whether VPD page 0x83 also holds an NAA
	// (locally assigned) designator derived from the T10 one: nil is the
	// identity's default (IET: no, NetBSD: yes). Windows failover cluster
	// validation and ESXi's EXTENDED COPY want one; Linux takes it for
	// the disk's WWID instead of the T10 one (our extension, Lun key
	// NAA=Yes|No).
	NAA *bool
}

// ReadOnly reports whether the LUN refuses writes.
func (l *LUN) ReadOnly() bool { return l.IOMode == "ro" }

// StoreKind says how a Store is composed.
type StoreKind int

const (
	// StoreFile is a regular file or a device node, optionally a window
	// [Offset, Offset+Size) of it.
	StoreFile StoreKind = iota
	// StoreConcat is a RAID0 (concatenation of Members in order).
	StoreConcat
	// StoreMirror is a RAID1 (every write to every member, reads from one).
	StoreMirror
)

// Store is a backing store, possibly composed of other stores.
type Store struct {
	Kind StoreKind
	// Name is the NetBSD extent/device name ("" for IET LUNs).
	Name string
	Pos  Position

	// StoreFile fields.
	Path   string
	Offset int64 // byte offset into Path
	Size   int64 // byte length; 0 = up to the end of the file/device
	// Create asks the engine to create a missing file (sparse, ftruncate to
	// Offset+Size) as the NetBSD target does.
	Create bool

	// StoreConcat / StoreMirror members.
	Members []*Store
}

// Params are iSCSI session parameters (RFC 7143 section 13) as a target
// offers/limits them.
type Params struct {
	InitialR2T               bool
	ImmediateData            bool
	MaxConnections           int
	MaxRecvDataSegmentLength int // target's receive limit (declared)
	MaxXmitDataSegmentLength int // IET-only: cap on what the target sends
	MaxBurstLength           int
	FirstBurstLength         int
	DefaultTime2Wait         int
	DefaultTime2Retain       int
	MaxOutstandingR2T        int
	DataPDUInOrder           bool
	DataSequenceInOrder      bool
	ErrorRecoveryLevel       int
	HeaderDigest             []string // acceptable values in preference order: "CRC32C", "None"
	DataDigest               []string
	OFMarker                 bool
	IFMarker                 bool
	OFMarkInt                int
	IFMarkInt                int
}

// DefaultParams returns IET's defaults (reference/iet.md section 7.1),
// except MaxRecvDataSegmentLength and MaxXmitDataSegmentLength: IET's 8192
// made every 1 MiB read 128 PDUs. We declare and send up to 256 KiB (a
// documented deviation; set both to 8192 in ietd.conf for IET's values).
func DefaultParams() Params {
	return Params{
		InitialR2T:               true,
		ImmediateData:            true,
		MaxConnections:           1,
		MaxRecvDataSegmentLength: DefaultMaxDataSegmentLength,
		MaxXmitDataSegmentLength: DefaultMaxDataSegmentLength,
		MaxBurstLength:           262144,
		FirstBurstLength:         65536,
		DefaultTime2Wait:         2,
		DefaultTime2Retain:       20,
		MaxOutstandingR2T:        1,
		DataPDUInOrder:           true,
		DataSequenceInOrder:      true,
		ErrorRecoveryLevel:       0,
		HeaderDigest:             []string{"None"},
		DataDigest:               []string{"None"},
		OFMarkInt:                2048,
		IFMarkInt:                2048,
	}
}

// Target-key defaults (reference/iet.md 1.5.2).
const (
	// DefaultMaxDataSegmentLength is our default for both data segment
	// lengths (IET: 8192).
	DefaultMaxDataSegmentLength = 262144

	DefaultWthreads       = 8
	DefaultQueuedCommands = 32
	DefaultNullioBlocks   = (1 << 36) / 512
)

// NewTarget returns a Target with every default applied.
func NewTarget(tid int, name string) *Target {
	return &Target{
		TID:            tid,
		Name:           name,
		Params:         DefaultParams(),
		Wthreads:       DefaultWthreads,
		QueuedCommands: DefaultQueuedCommands,
		NetBSDIndex:    -1,
	}
}

// Netmask is an IPv4/IPv6 network in the NetBSD "address/prefix" sense.
type Netmask struct {
	Text string // as written, e.g. "10.4/16", "any"
	// CIDR is the normalized form ("10.4.0.0/16", "0.0.0.0/0"); an empty
	// CIDR never matches.
	CIDR string
	Pos  Position
}

// ACLFile is one of IET's initiators.allow, initiators.deny, targets.allow.
type ACLFile struct {
	Path  string
	Rules []ACLRule
}

// ACLRule is one line: a target name (or "ALL") and the items that match.
type ACLRule struct {
	Target string // target name, or "ALL"
	Items  []ACLItem
	Pos    Position
}

// ACLItemKind is the form of an access-control item.
type ACLItemKind int

const (
	ACLAll     ACLItemKind = iota // ALL
	ACLAddress                    // numeric address, optionally with prefix (CIDR)
	ACLHost                       // host name (our extension; resolved at check time)
	ACLRegex                      // initiator-name regular expression (anchored)
)

// ACLItem is one comma-separated item of an ACL line.
type ACLItem struct {
	Kind ACLItemKind
	Text string // as written
	// CIDR is the normalized network for ACLAddress ("10.0.0.0/8",
	// "192.168.1.5/32", "fe80::/64").
	CIDR string
	Pos  Position
}

// TargetByName returns the target with this exact name, or nil.
func (c *Config) TargetByName(name string) *Target {
	for _, t := range c.Targets {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// TargetsNewestFirst returns the targets by descending TID, the order in
// which IET lists them (SendTargets, /proc/net/iet). The model is not
// changed.
func (c *Config) TargetsNewestFirst() []*Target {
	ts := slices.Clone(c.Targets)
	slices.SortStableFunc(ts, func(a, b *Target) int { return cmp.Compare(b.TID, a.TID) })
	return ts
}

// TargetByTID returns the target with this TID, or nil.
func (c *Config) TargetByTID(tid int) *Target {
	for _, t := range c.Targets {
		if t.TID == tid {
			return t
		}
	}
	return nil
}

// LUN returns the LUN with this number, or nil.
func (t *Target) LUN(n uint64) *LUN {
	for _, l := range t.LUNs {
		if l.Number == n {
			return l
		}
	}
	return nil
}
