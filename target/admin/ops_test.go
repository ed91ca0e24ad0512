package admin

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/iscsi"
)

type fakeEngine struct {
	cfg      *config.Config
	sessions []iscsi.SessionInfo
	applied  int
}

func (f *fakeEngine) Config() *config.Config { return f.cfg }
func (f *fakeEngine) Apply(c *config.Config) error {
	f.cfg = c
	f.applied++
	return nil
}
func (f *fakeEngine) Sessions() []iscsi.SessionInfo { return f.sessions }
func (f *fakeEngine) CloseSession(tid int, sid uint64) error {
	for i, s := range f.sessions {
		if s.TID == tid && s.SID == sid {
			f.sessions = append(f.sessions[:i], f.sessions[i+1:]...)
			return nil
		}
	}
	return iscsi.ErrNoSuchSession
}
func (f *fakeEngine) CloseConnection(tid int, sid uint64, cid uint16) error {
	for _, s := range f.sessions {
		if s.TID == tid && s.SID == sid {
			for _, c := range s.Conns {
				if c.CID == cid {
					return nil
				}
			}
			return iscsi.ErrNoSuchConnection
		}
	}
	return iscsi.ErrNoSuchSession
}

func ip(v int) *int                  { return &v }
func u64(v uint64) *uint64           { return &v }
func u32(v uint32) *uint32           { return &v }
func do(o *Ops, r Request) *Response { return o.Handle(context.Background(), &r) }

func newOps() (*Ops, *fakeEngine) {
	fe := &fakeEngine{cfg: &config.Config{Dialect: config.DialectIET}}
	o := &Ops{Engine: fe, ParseLUN: func(n uint64, p string) (*config.LUN, error) {
		path, _, _ := strings.Cut(strings.TrimPrefix(p, "Path="), ",")
		return &config.LUN{Number: n, Type: "fileio", Store: &config.Store{Path: path, Size: 1 << 20}}, nil
	}}
	return o, fe
}

func TestTargetLifecycleAndErrnos(t *testing.T) {
	o, fe := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(0), Params: "Name=iqn.2001-04.com.example:a"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	if fe.cfg.TargetByTID(1) == nil {
		t.Fatal("tid 0 should auto-assign tid 1")
	}
	if r := do(o, Request{Op: OpNew, TID: ip(1), Params: "Name=iqn.x:b"}); r.Errno != int(syscall.EEXIST) {
		t.Fatalf("tid in use: got errno %d", r.Errno)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(0), Params: "Name=IQN.2001-04.COM.EXAMPLE:A"}); r.Errno != int(syscall.EINVAL) {
		t.Fatalf("duplicate name: got errno %d", r.Errno)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(1), LUN: u64(0), Params: "Path=/srv/a.img,Type=fileio"}); r.Errno != 0 {
		t.Fatalf("new lun: %+v", r)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(1), LUN: u64(0), Params: "Path=/srv/a.img"}); ExitStatus(syscall.Errno(r.Errno)) != 239 {
		t.Fatalf("existing LUN must exit 239, got errno %d", r.Errno)
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "QueuedCommands=0x40,ImmediateData=No,Wthreads=100000"}); r.Errno != 0 {
		t.Fatalf("update: %+v", r)
	}
	r := do(o, Request{Op: OpShow, TID: ip(1)})
	want := "Wthreads=128\nType=0\nQueuedCommands=64\nNOPInterval=0\nNOPTimeout=0\n"
	if r.Output != want {
		t.Fatalf("show target:\n%s\nwant\n%s", r.Output, want)
	}
	r = do(o, Request{Op: OpShow, TID: ip(1), SID: u64(0)})
	if !strings.Contains(r.Output, "ImmediateData=No\n") || !strings.HasPrefix(r.Output, "InitialR2T=Yes\n") ||
		!strings.HasSuffix(r.Output, "OFMarkInt=Reject\nIFMarkInt=Reject\n") || strings.Count(r.Output, "\n") != 19 {
		t.Fatalf("show sid 0:\n%s", r.Output)
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "Bogus=1"}); r.Errno != int(syscall.EINVAL) {
		t.Fatalf("unknown key: errno %d", r.Errno)
	}
	fe.sessions = []iscsi.SessionInfo{{TID: 1, SID: 282574492336640, InitiatorName: "iqn.i", Conns: []iscsi.ConnInfo{{CID: 0, IP: "fe80::211:22ff:fe33:4455", State: "active", HeaderDigest: "NONE", DataDigest: "CRC32C"}}}}
	if r := do(o, Request{Op: OpDelete, TID: ip(1)}); ExitStatus(syscall.Errno(r.Errno)) != 240 {
		t.Fatalf("busy target must exit 240, got errno %d", r.Errno)
	}
	sl := do(o, Request{Op: OpShow, Listing: "session"}).Output
	wantS := "tid:1 name:iqn.2001-04.com.example:a\n\tsid:282574492336640 initiator:iqn.i\n\t\tcid:0 ip:[fe80:0000:0000:0000:0211:22ff:fe33:4455] state:active hd:none dd:crc32c\n"
	if sl != wantS {
		t.Fatalf("session listing:\n%q\nwant\n%q", sl, wantS)
	}
	vl := do(o, Request{Op: OpShow, Listing: "volume"}).Output
	if vl != "tid:1 name:iqn.2001-04.com.example:a\n\tlun:0 state:0 iotype:fileio iomode:wt blocks:2048 blocksize:512 path:/srv/a.img\n" {
		t.Fatalf("volume listing:\n%q", vl)
	}
	if r := do(o, Request{Op: OpDelete, TID: ip(1), SID: u64(282574492336640), CID: u32(7)}); ExitStatus(syscall.Errno(r.Errno)) != 239 {
		t.Fatalf("unknown cid must give EEXIST, got %d", r.Errno)
	}
	if r := do(o, Request{Op: OpDelete, TID: ip(1), SID: u64(282574492336640), CID: u32(65536)}); ExitStatus(syscall.Errno(r.Errno)) != 239 {
		t.Fatalf("cid 65536 (not 0 cut to 16 bits) must give EEXIST, got %d", r.Errno)
	}
	if r := do(o, Request{Op: OpDelete, TID: ip(1), SID: u64(282574492336640), CID: u32(0)}); r.Errno != 0 {
		t.Fatalf("close conn: %+v", r)
	}
	if r := do(o, Request{Op: OpDelete, TID: ip(1), SID: u64(282574492336640)}); r.Errno != 0 {
		t.Fatalf("close session: %+v", r)
	}
	if r := do(o, Request{Op: OpDelete, TID: ip(1), LUN: u64(0)}); r.Errno != 0 || len(fe.cfg.Targets[0].LUNs) != 0 {
		t.Fatalf("delete lun: %+v", r)
	}
	if r := do(o, Request{Op: OpDelete, TID: ip(1)}); r.Errno != 0 || len(fe.cfg.Targets) != 0 {
		t.Fatalf("delete target: %+v", r)
	}
	if r := do(o, Request{Op: OpShow, TID: ip(1)}); ExitStatus(syscall.Errno(r.Errno)) != 254 {
		t.Fatalf("missing target must exit 254, got %d", r.Errno)
	}
}

func TestAccounts(t *testing.T) {
	o, fe := newOps()
	do(o, Request{Op: OpNew, TID: ip(3), Params: "Name=iqn.x:t"})
	for _, r := range []Request{
		{Op: OpNew, User: true, Params: "IncomingUser=disc,Password=discsecret12"},
		{Op: OpNew, User: true, TID: ip(3), Params: "IncomingUser=joe,Password= secretsecret"},
		{Op: OpNew, User: true, TID: ip(3), Params: "IncomingUser=ann,Password=annsecret123"},
		{Op: OpNew, User: true, TID: ip(3), Params: "OutgoingUser=tgt,Password=tgtsecret123"},
	} {
		if resp := do(o, r); resp.Errno != 0 {
			t.Fatalf("%+v: %+v", r, resp)
		}
	}
	if len(fe.cfg.Discovery.Incoming) != 1 {
		t.Fatal("tid-less account must go to discovery")
	}
	if got := do(o, Request{Op: OpShow, User: true, TID: ip(3)}).Output; got != "IncomingUser joe\nIncomingUser ann\nOutgoingUser tgt\n" {
		t.Fatalf("list: %q", got)
	}
	if got := do(o, Request{Op: OpShow, User: true, TID: ip(3), Params: "IncomingUser=joe"}).Output; got != "IncomingUser joe secretsecret\n" {
		t.Fatalf("one: %q", got)
	}
	if r := do(o, Request{Op: OpDelete, User: true, TID: ip(3), Params: "IncomingUser=nobody"}); r.Errno != int(syscall.ENOENT) {
		t.Fatalf("delete missing: %+v", r)
	}
	if r := do(o, Request{Op: OpDelete, User: true, TID: ip(3), Params: "IncomingUser=joe"}); r.Errno != 0 || len(fe.cfg.Targets[0].Auth.Incoming) != 1 {
		t.Fatalf("delete: %+v", r)
	}
	if r := do(o, Request{Op: "frob"}); ExitStatus(syscall.Errno(r.Errno)) != 234 {
		t.Fatalf("bad op: %+v", r)
	}
}

func TestErrnoText(t *testing.T) {
	if got := ErrnoText(syscall.EINVAL); got != "Invalid argument." {
		t.Fatalf("got %q", got)
	}
	if ExitStatus(syscall.ENOENT) != 254 || ExitStatus(syscall.EBUSY) != 240 || ExitStatus(syscall.EPERM) != 255 || ExitStatus(syscall.ECONNREFUSED) != 145 {
		t.Fatal("exit statuses differ from IET")
	}
}

// refusingEngine fails every Apply the way the daemon does when a new
// LUN's backing file cannot be opened.
type refusingEngine struct{ fakeEngine }

func (f *refusingEngine) Apply(c *config.Config) error {
	return fmt.Errorf("target x LUN 1: backing: %w", &os.PathError{Op: "open", Path: "/nonexistent", Err: syscall.ENOENT})
}

func TestApplyFailureKeepsErrnoAndChangesNothing(t *testing.T) {
	tg := config.NewTarget(1, "iqn.2001-04.com.example:a")
	fe := &refusingEngine{fakeEngine{cfg: &config.Config{Dialect: config.DialectIET, Targets: []*config.Target{tg}}}}
	o := &Ops{Engine: fe, ParseLUN: func(n uint64, p string) (*config.LUN, error) {
		return &config.LUN{Number: n, Type: "fileio", Store: &config.Store{Path: "/nonexistent"}}, nil
	}}
	r := do(o, Request{Op: OpNew, TID: ip(1), LUN: u64(1), Params: "Path=/nonexistent,Type=fileio"})
	if ExitStatus(syscall.Errno(r.Errno)) != 254 || !strings.Contains(r.Message, "/nonexistent") {
		t.Fatalf("got %+v, want ENOENT (exit 254) naming the path", r)
	}
	if len(fe.cfg.Targets[0].LUNs) != 0 {
		t.Fatal("the refused LUN is in the model")
	}
}

type counter struct{ next int }

func (c *counter) Next() int { return max(c.next, 1) }
func (c *counter) Taken(tid int) {
	c.next = max(c.next, tid+1)
}

func TestNewTargetTIDFromAllocator(t *testing.T) {
	o, fe := newOps()
	o.TIDs = &counter{}
	do(o, Request{Op: OpNew, TID: ip(4), Params: "Name=iqn.x:four"})
	if r := do(o, Request{Op: OpDelete, TID: ip(4)}); r.Errno != 0 {
		t.Fatalf("delete: %+v", r)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(0), Params: "Name=iqn.x:next"}); r.Errno != 0 {
		t.Fatalf("new: %+v", r)
	}
	if fe.cfg.TargetByTID(5) == nil {
		t.Fatalf("tid 0 after deleting tid 4: got %+v, want tid 5 (no reuse)", fe.cfg.Targets[0])
	}
}

// Target ids stay within 32 bits: an explicit one beyond is refused, and
// after the largest one the allocator takes the lowest free id instead of
// one ietadm cannot name. Names with blanks or control characters (they
// would forge lines of the listings) or over 255 bytes are refused.
func TestTIDRangeAndTargetNames(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("a tid beyond 32 bits cannot be asked for with 32-bit ints")
	}
	o, fe := newOps()
	o.TIDs = &counter{}
	maxTID := MaxTID // a variable: the conversions below compile on 32-bit too
	if r := do(o, Request{Op: OpNew, TID: ip(int(maxTID + 1)), Params: "Name=iqn.x:over"}); r.Errno != int(syscall.EINVAL) {
		t.Fatalf("tid beyond 32 bits: %+v", r)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(int(maxTID)), Params: "Name=iqn.x:big"}); r.Errno != 0 {
		t.Fatalf("tid %d: %+v", MaxTID, r)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(0), Params: "Name=iqn.x:after"}); r.Errno != 0 || fe.cfg.TargetByTID(1) == nil {
		t.Fatalf("tid 0 after the largest: %+v %+v", r, fe.cfg.Targets)
	}
	for _, name := range []string{"iqn.x:nl\ntid:77 name:fake", "iqn.x:a b", "iqn.x:tab\t", "iqn.x:" + strings.Repeat("a", 250)} {
		if r := do(o, Request{Op: OpNew, TID: ip(0), Params: "Name=" + name}); r.Errno != int(syscall.EINVAL) {
			t.Errorf("name %q: %+v", name, r)
		}
	}
	if len(fe.cfg.Targets) != 2 {
		t.Fatalf("targets %+v", fe.cfg.Targets)
	}
}

// TestUpdateStoresWhatIsUsed: --op update stores forced and clamped
// values as they are used (as the config loader does) and warns, so
// --sid=0 shows what logins offer.
func TestUpdateStoresWhatIsUsed(t *testing.T) {
	o, _ := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(3), Params: "Name=iqn.x:u"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	r := do(o, Request{Op: OpUpdate, TID: ip(3), Params: "DataPDUInOrder=No,OFMarker=Yes,ErrorRecoveryLevel=2,Wthreads=999,DefaultTime2Wait=99999,InitialR2T=No"})
	if r.Errno != 0 {
		t.Fatalf("update: %+v", r)
	}
	want := []string{
		"DataPDUInOrder No: out-of-order Data PDUs are not implemented; Yes is offered (IET forced it too)",
		"OFMarker Yes: markers are not implemented; No is offered (IET forced it too)",
		"ErrorRecoveryLevel 2: only level 0 is implemented; 0 is offered (IET forced 0 too)",
		"Wthreads 999 out of range (1..128): using 128",
		"DefaultTime2Wait 99999 out of range (0..3600): using 3600",
	}
	if strings.Join(r.Warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(r.Warnings, "\n"), strings.Join(want, "\n"))
	}
	show := do(o, Request{Op: OpShow, TID: ip(3), SID: u64(0)}).Output
	for _, l := range []string{"InitialR2T=No\n", "DataPDUInOrder=Yes\n", "OFMarker=No\n", "ErrorRecoveryLevel=0\n", "DefaultTime2Wait=3600\n"} {
		if !strings.Contains(show, l) {
			t.Errorf("--sid=0 lacks %q:\n%s", l, show)
		}
	}
	if out := do(o, Request{Op: OpShow, TID: ip(3)}).Output; !strings.HasPrefix(out, "Wthreads=128\n") {
		t.Errorf("show tid:\n%s", out)
	}
	// Values as they are used: no warning.
	if r := do(o, Request{Op: OpUpdate, TID: ip(3), Params: "DataPDUInOrder=Yes,Wthreads=128"}); r.Errno != 0 || len(r.Warnings) != 0 {
		t.Fatalf("update with used values: %+v", r)
	}
}

// TestAccountWordsAreChecked: a user name or password with a blank or a
// control character is refused (a newline in a name forged a line of the
// account listing), as target names are.
func TestAccountWordsAreChecked(t *testing.T) {
	o, fe := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(2), Params: "Name=iqn.x:a"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	for _, p := range []string{
		"IncomingUser=evil\nOutgoingUser root,Password=pw",
		"IncomingUser=has space,Password=secretsecret12",
		"IncomingUser=tab\tbed,Password=secretsecret12",
		"OutgoingUser=bell\a,Password=secretsecret12",
		"IncomingUser=joe,Password=two words",
		"IncomingUser=joe,Password=line\nbreak",
		"IncomingUser=" + strings.Repeat("n", 256) + ",Password=secretsecret12",
	} {
		r := do(o, Request{Op: OpNew, TID: ip(2), User: true, Params: p})
		if r.Errno != int(syscall.EINVAL) || !strings.Contains(r.Message, "blank, a control character") && !strings.Contains(r.Message, "255 bytes") {
			t.Errorf("%q: %+v, want EINVAL", p, r)
		}
	}
	if a := fe.cfg.TargetByTID(2).Auth; len(a.Incoming) != 0 || a.Outgoing != nil {
		t.Fatalf("a refused account was kept: %+v", a)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(2), User: true, Params: "IncomingUser=joe,Password=secretsecret12"}); r.Errno != 0 {
		t.Fatalf("valid account: %+v", r)
	}
}

// TestUserTakesTIDOnly: IET's user_handle refuses --user with --lun,
// --sid or --cid (EINVAL) instead of ignoring them.
func TestUserTakesTIDOnly(t *testing.T) {
	o, fe := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(2), Params: "Name=iqn.x:a"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	for _, r := range []Request{
		{Op: OpNew, TID: ip(2), LUN: u64(3), User: true, Params: "IncomingUser=q,Password=secretsecret12"},
		{Op: OpNew, TID: ip(2), SID: u64(0), User: true, Params: "IncomingUser=q,Password=secretsecret12"},
		{Op: OpShow, TID: ip(2), SID: u64(1), CID: u32(0), User: true},
		{Op: OpDelete, LUN: u64(0), User: true, Params: "IncomingUser=q"},
	} {
		if resp := do(o, r); resp.Errno != int(syscall.EINVAL) {
			t.Errorf("%+v: %+v, want EINVAL", r, resp)
		}
	}
	if a := fe.cfg.TargetByTID(2).Auth; len(a.Incoming) != 0 {
		t.Fatalf("account added: %+v", a)
	}
}

// A Yes/No or digest value not in IET's exact case is accepted with the
// config loader's warning (IET refused it); --sid=0 prints the digests
// as set, as IET did.
func TestUpdateWarnsAboutValueCase(t *testing.T) {
	o, _ := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(3), Params: "Name=iqn.x:u"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	r := do(o, Request{Op: OpUpdate, TID: ip(3), Params: "InitialR2T=yes,ImmediateData=NO,HeaderDigest=crc32c,DataDigest=CRC32C"})
	if r.Errno != 0 {
		t.Fatalf("update: %+v", r)
	}
	want := []string{
		`InitialR2T value "yes": IET only accepts Yes or No (exact case); accepted`,
		`ImmediateData value "NO": IET only accepts Yes or No (exact case); accepted`,
		`HeaderDigest value "crc32c": IET only accepts None or CRC32C (exact case); accepted`,
	}
	if strings.Join(r.Warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(r.Warnings, "\n"), strings.Join(want, "\n"))
	}
	show := do(o, Request{Op: OpShow, TID: ip(3), SID: u64(0)}).Output
	for _, l := range []string{"InitialR2T=Yes\n", "ImmediateData=No\n", "HeaderDigest=CRC32C\n", "DataDigest=CRC32C\n"} {
		if !strings.Contains(show, l) {
			t.Errorf("--sid=0 lacks %q:\n%s", l, show)
		}
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(3), Params: "InitialR2T=Yes,HeaderDigest=None"}); r.Errno != 0 || len(r.Warnings) != 0 {
		t.Fatalf("update in IET's case: %+v", r)
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(3), Params: "DataDigest=md5"}); r.Errno == 0 {
		t.Fatalf("DataDigest=md5 accepted: %+v", r)
	}
}

// TestParamsItemsWithoutEquals: an item without '=' is skipped, as IET
// did, but with a warning; a digest name after HeaderDigest= or
// DataDigest= continues the list (ietd.conf's syntax), where IET's split
// kept only the first name.
func TestParamsItemsWithoutEquals(t *testing.T) {
	o, fe := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(1), Params: "Name=iqn.x:p"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "HeaderDigest=None,CRC32C,DataDigest=CRC32C, None,QueuedCommands,Wthreads=4,,"})
	if r.Errno != 0 {
		t.Fatalf("update: %+v", r)
	}
	want := []string{`--params item "QueuedCommands" is not key=value: ignored (IET ignored it too)`}
	if strings.Join(r.Warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings:\n%s\nwant:\n%s", strings.Join(r.Warnings, "\n"), strings.Join(want, "\n"))
	}
	show := do(o, Request{Op: OpShow, TID: ip(1), SID: u64(0)}).Output
	for _, l := range []string{"HeaderDigest=None,CRC32C\n", "DataDigest=None,CRC32C\n"} {
		if !strings.Contains(show, l) {
			t.Errorf("--sid=0 lacks %q:\n%s", l, show)
		}
	}
	if got := fe.cfg.TargetByTID(1); got.Wthreads != 4 || got.QueuedCommands != config.NewTarget(1, "x").QueuedCommands {
		t.Errorf("Wthreads %d QueuedCommands %d", got.Wthreads, got.QueuedCommands)
	}
	// A digest name after another key is not a continuation.
	r = do(o, Request{Op: OpUpdate, TID: ip(1), Params: "Wthreads=8,CRC32C"})
	if r.Errno != 0 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `"CRC32C" is not key=value`) {
		t.Fatalf("update: %+v", r)
	}
	// An item that is not a digest name does not continue a list.
	r = do(o, Request{Op: OpUpdate, TID: ip(1), Params: "DataDigest=CRC32C,md5"})
	if r.Errno != 0 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], `"md5" is not key=value`) {
		t.Fatalf("update: %+v", r)
	}
	if show := do(o, Request{Op: OpShow, TID: ip(1), SID: u64(0)}).Output; !strings.Contains(show, "DataDigest=CRC32C\n") {
		t.Errorf("DataDigest:\n%s", show)
	}
}

// TestUpdateType: Type is numeric like the other keys (IET: strtol); any
// type but 0 is warned and 0 kept (IET's kernel set it back to 0).
func TestUpdateType(t *testing.T) {
	o, _ := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(1), Params: "Name=iqn.x:t"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "Type=0"}); r.Errno != 0 || len(r.Warnings) != 0 {
		t.Fatalf("Type=0: %+v", r)
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "Type=5"}); r.Errno != 0 || len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], "Type 5: ") {
		t.Fatalf("Type=5: %+v", r)
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "Wthreads=3,Type=disk"}); r.Errno != int(syscall.EINVAL) || !strings.Contains(r.Message, `Type value "disk"`) {
		t.Fatalf("Type=disk: %+v", r)
	}
	if out := do(o, Request{Op: OpShow, TID: ip(1)}).Output; !strings.HasPrefix(out, "Wthreads=8\nType=0\n") {
		t.Fatalf("a refused update changed the target:\n%s", out)
	}
}

// TestNewTargetParams: a new target takes Name (in that case) only;
// other keys are warned and ignored, a second Name too.
func TestNewTargetParams(t *testing.T) {
	o, fe := newOps()
	r := do(o, Request{Op: OpNew, TID: ip(0), Params: "Name=iqn.x:a,Foo=1,Name=iqn.x:b"})
	want := []string{"--params Foo: a new target takes only Name: ignored", `Name given more than once: the first, "iqn.x:a", is used`}
	if r.Errno != 0 || strings.Join(r.Warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("new: %+v\nwant warnings:\n%s", r, strings.Join(want, "\n"))
	}
	if len(fe.cfg.Targets) != 1 || fe.cfg.Targets[0].Name != "iqn.x:a" {
		t.Fatalf("targets %+v", fe.cfg.Targets)
	}
	r = do(o, Request{Op: OpNew, TID: ip(0), Params: "name=iqn.x:c"})
	if r.Errno != int(syscall.EINVAL) || !strings.Contains(r.Message, "the key is Name") {
		t.Fatalf("name=: %+v", r)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(0), Params: strings.Repeat("x", MaxParams+1)}); r.Errno != int(syscall.EINVAL) || !strings.Contains(r.Message, "--params: ") {
		t.Fatalf("huge params: %+v", r)
	}
	if len(fe.cfg.Targets) != 1 {
		t.Fatalf("a refused request added a target: %+v", fe.cfg.Targets)
	}
}

// TestAccountParamWarnings: IET warned of a second user ("Already
// specified user", the last one wins) and of a password given to delete.
func TestAccountParamWarnings(t *testing.T) {
	o, fe := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(1), Params: "Name=iqn.x:a"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	r := do(o, Request{Op: OpNew, TID: ip(1), User: true, Params: "IncomingUser=a,OutgoingUser=b,Password=secretsecret12"})
	if r.Errno != 0 || len(r.Warnings) != 1 || r.Warnings[0] != "OutgoingUser=b given after IncomingUser=a: the last one is used" {
		t.Fatalf("two users: %+v", r)
	}
	if a := fe.cfg.TargetByTID(1).Auth; len(a.Incoming) != 0 || a.Outgoing == nil || a.Outgoing.User != "b" {
		t.Fatalf("auth %+v", a)
	}
	r = do(o, Request{Op: OpDelete, TID: ip(1), User: true, Params: "OutgoingUser=b,Password=x"})
	if r.Errno != 0 || len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], "Password is not needed") {
		t.Fatalf("delete with password: %+v", r)
	}
	if r := do(o, Request{Op: OpNew, TID: ip(1), User: true, Params: "IncomingUser=a,Secret=x"}); r.Errno != int(syscall.EINVAL) || !strings.Contains(r.Message, `"Secret"`) {
		t.Fatalf("unknown key: %+v", r)
	}
}

// TestUpdateHugeNumber: a number beyond 64 bits is out of range like any
// other (clamped, warned, as typed), not "invalid"; text still is.
func TestUpdateHugeNumber(t *testing.T) {
	o, fe := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(1), Params: "Name=iqn.x:h"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "QueuedCommands=99999999999999999999999,NOPInterval=-99999999999999999999999"})
	want := []string{"QueuedCommands 99999999999999999999999 out of range (1..256): using 256", "NOPInterval -99999999999999999999999 out of range (0..90): using 0"}
	if r.Errno != 0 || strings.Join(r.Warnings, "\n") != strings.Join(want, "\n") {
		t.Fatalf("update: %+v\nwant warnings:\n%s", r, strings.Join(want, "\n"))
	}
	if tg := fe.cfg.TargetByTID(1); tg.QueuedCommands != 256 || tg.NOPInterval != 0 {
		t.Fatalf("QueuedCommands %d NOPInterval %d", tg.QueuedCommands, tg.NOPInterval)
	}
	if r := do(o, Request{Op: OpUpdate, TID: ip(1), Params: "QueuedCommands=9x"}); r.Errno != int(syscall.EINVAL) || !strings.Contains(r.Message, `QueuedCommands value "9x"`) {
		t.Fatalf("9x: %+v", r)
	}
}

// TestAccountSecretWarnings: ietadm warns, as the config loader does, of
// a secret under 12 characters and of one secret for both directions
// (RFC 7143 12.1.3); the account is still added and no warning holds
// the secret.
func TestAccountSecretWarnings(t *testing.T) {
	o, fe := newOps()
	if r := do(o, Request{Op: OpNew, TID: ip(1), Params: "Name=iqn.x:a"}); r.Errno != 0 {
		t.Fatalf("new target: %+v", r)
	}
	const shared = "sharedsecret-Z9"
	for _, c := range []struct {
		params string
		want   string // "" = no warning
	}{
		{"IncomingUser=joe,Password=" + shared, ""},
		{"IncomingUser=ann,Password=short-1", "the CHAP secret of ann is shorter than 12 characters"},
		{"OutgoingUser=tgt,Password=" + shared, "OutgoingUser tgt has the secret of IncomingUser joe: RFC 7143 12.1.3"},
		{"OutgoingUser=tgt,Password=othersecret-Q4", ""},
		{"IncomingUser=bob,Password=othersecret-Q4", "OutgoingUser tgt has the secret of IncomingUser bob"},
	} {
		r := do(o, Request{Op: OpNew, TID: ip(1), User: true, Params: c.params})
		if r.Errno != 0 {
			t.Fatalf("%s: %+v", c.params, r)
		}
		joined := strings.Join(r.Warnings, "\n")
		if c.want == "" && len(r.Warnings) != 0 || c.want != "" && (len(r.Warnings) != 1 || !strings.Contains(joined, c.want)) {
			t.Errorf("%s: warnings %q; want %q", c.params, r.Warnings, c.want)
		}
		for _, s := range []string{shared, "short-1", "othersecret-Q4"} {
			if strings.Contains(joined, s) {
				t.Errorf("%s: a warning holds the secret: %q", c.params, r.Warnings)
			}
		}
	}
	if a := fe.cfg.TargetByTID(1).Auth; len(a.Incoming) != 3 || a.Outgoing == nil {
		t.Fatalf("accounts not all added: %+v", a)
	}
}

// --op delete without a selector deregisters from iSNS (IET 1.4.20) and
// succeeds.
func TestDeleteWithoutSelectorDeregistersISNS(t *testing.T) {
	o, _ := newOps()
	if r := do(o, Request{Op: OpDelete}); r.Errno != 0 {
		t.Fatalf("without iSNS: errno %d", r.Errno)
	}
	n := 0
	o.DeregisterISNS = func() { n++ }
	if r := do(o, Request{Op: OpDelete}); r.Errno != 0 || n != 1 {
		t.Fatalf("errno %d, %d deregistrations", r.Errno, n)
	}
}
