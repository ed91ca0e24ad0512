package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/iscsi"
	"github.com/ietgo/ietd/target/scsi"
)

// Engine is the running target engine as the admin operations see it;
// *iscsi.Server plus the daemon's reload bookkeeping implement it.
type Engine interface {
	// Config is the model in force (never modified in place).
	Config() *config.Config
	// Apply makes cfg the model in force (sessions on unchanged targets
	// stay up).
	Apply(cfg *config.Config) error
	Sessions() []iscsi.SessionInfo
	CloseSession(tid int, sid uint64) error
	CloseConnection(tid int, sid uint64, cid uint16) error
}

// Ops implements every ietadm operation on an Engine. It serialises
// changes: each one clones the model, edits the clone and applies it.
type Ops struct {
	Engine Engine
	// ParseLUN turns `ietadm --op new --lun=N --params P` into a LUN, with
	// the same rules as a Lun line of ietd.conf.
	ParseLUN func(number uint64, params string) (*config.LUN, error)
	// Created is called with the name of a target created at run time
	// (the daemon keeps such targets across config reloads).
	Created func(name string)
	// Deleted is called with the name of a target deleted at run time.
	Deleted func(name string)
	// TIDs, when set, allocates the id of `--op new --tid=0`: the daemon
	// never reuses an id while it runs (IET's kernel counter). nil takes
	// one above the highest id in use.
	TIDs TIDAllocator
	// Lock, when set, is held for each operation instead of the Ops'
	// own lock: the daemon shares it with its config reload, so an
	// operation's clone-edit-apply and a reload never interleave (a
	// reload between the clone and the apply was undone by it).
	Lock sync.Locker
	// DeregisterISNS, when set, is `ietadm --op delete` without a
	// selector: IET 1.4.20 only deregistered from iSNS then.
	DeregisterISNS func()

	mu sync.Mutex
	// warns are the warnings of the operation running (under the lock).
	warns []string
}

// TIDAllocator hands out target ids.
type TIDAllocator interface {
	// Next is the id a new target gets when none is asked for.
	Next() int
	// Taken records that tid is now in use.
	Taken(tid int)
}

// Handle implements Handler.
func (o *Ops) Handle(ctx context.Context, req *Request) *Response {
	var l sync.Locker = &o.mu
	if o.Lock != nil {
		l = o.Lock
	}
	l.Lock()
	defer l.Unlock()
	o.warns = nil
	out, err := o.dispatch(req)
	if err != nil {
		resp := &Response{Errno: int(ErrnoOf(err)), Message: err.Error()}
		var e *Error
		if errors.As(err, &e) {
			// ietadm prints the errno's text on its own line.
			resp.Message, resp.Unsupported = e.Msg, e.Unsupported
		}
		return resp
	}
	return &Response{Output: out, Warnings: o.warns}
}

func (o *Ops) dispatch(req *Request) (string, error) {
	switch req.Op {
	case OpNew, OpDelete, OpUpdate, OpShow:
	default:
		return "", errf(syscall.EINVAL, "you must specify the operation type")
	}
	if len(req.Params) > MaxParams {
		return "", errf(syscall.EINVAL, "--params: %d bytes, more than the %d it may hold", len(req.Params), MaxParams)
	}
	switch {
	case req.Listing != "":
		if req.Op != OpShow {
			return "", errf(syscall.EINVAL, "listings are shown with --op show")
		}
		switch req.Listing {
		case "volume":
			var served ServedLUNs
			if e, ok := o.Engine.(interface {
				ServedLUNs(tid int) (map[uint64]scsi.ServedLUN, bool)
			}); ok {
				served = e.ServedLUNs
			}
			return VolumeListing(o.Engine.Config(), served), nil
		case "session":
			return SessionListing(o.Engine.Config(), o.Engine.Sessions()), nil
		}
		return "", errf(syscall.EINVAL, "unknown listing %q", req.Listing)
	case req.User:
		return o.user(req)
	case req.LUN != nil:
		return o.lun(req)
	case req.CID != nil:
		return o.conn(req)
	case req.SID != nil:
		return o.session(req)
	case req.TID != nil:
		return o.target(req)
	}
	if req.Op == OpDelete {
		// IET 1.4.20: only de-registers from iSNS; init scripts call it
		// before stopping the daemon.
		if o.DeregisterISNS != nil {
			o.DeregisterISNS()
		}
		return "", nil
	}
	return "", errf(syscall.EINVAL, "no target, session, LUN or user selected")
}

// unsupported is IET's answer to an operation it does not implement for
// the selector: "Unsupported." and EINVAL.
func unsupported(req *Request) error {
	return &Error{Errno: syscall.EINVAL, Msg: fmt.Sprintf("--op %s is not supported here", req.Op), Unsupported: true}
}

// params splits "k=v,k=v" as IET does: empty items are skipped, and so
// is an item without '=', with a warning (IET skipped it silently, so a
// typo such as "QueuedCommands:8" changed nothing and exited 0). One
// exception: an item that is a digest name right after a HeaderDigest or
// DataDigest item continues its list, as in ietd.conf ("HeaderDigest=
// None,CRC32C"; IET's split cut it to None and dropped CRC32C).
func params(s string) (kvs [][2]string, warnings []string) {
	for _, item := range strings.Split(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			if n := len(kvs); n > 0 && isDigestKey(kvs[n-1][0]) && isDigestName(item) {
				kvs[n-1][1] += "," + strings.TrimSpace(item)
				continue
			}
			warnings = append(warnings, fmt.Sprintf("--params item %q is not key=value: ignored (IET ignored it too)", item))
			continue
		}
		v = strings.TrimPrefix(v, " ")
		kvs = append(kvs, [2]string{strings.TrimSpace(k), v})
	}
	return kvs, warnings
}

func isDigestKey(k string) bool {
	return strings.EqualFold(k, "HeaderDigest") || strings.EqualFold(k, "DataDigest")
}

func isDigestName(s string) bool {
	s = strings.TrimSpace(s)
	return strings.EqualFold(s, "None") || strings.EqualFold(s, "CRC32C")
}

// apply makes cfg the model in force. A failure keeps the errno of its
// cause (IET returned the kernel's errno: ENOENT for a LUN path that does
// not exist), EINVAL when it has none; nothing is changed.
func (o *Ops) apply(cfg *config.Config) error {
	if err := o.Engine.Apply(cfg); err != nil {
		no := syscall.EINVAL
		var cause syscall.Errno
		if errors.As(err, &cause) && cause != 0 {
			no = cause
		}
		return errf(no, "%v", err)
	}
	return nil
}

// MaxTID is the largest target id (IET's tid is 32 bits).
const MaxTID int64 = 1<<32 - 1

// badTargetName says why name cannot be a target name ("" if it can):
// ietd.conf cannot hold blanks or control characters in one, IET took
// at most 255 bytes, and the listings are line and word based.
func badTargetName(name string) string {
	if len(name) > 255 {
		return "longer than 255 bytes"
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || r == utf8.RuneError {
			return "holds a blank, a control character or invalid UTF-8"
		}
	}
	return ""
}

// badAccountWord says why s cannot be a CHAP user name or secret ("" if
// it can): ietd.conf's IncomingUser/OutgoingUser lines and the account
// listing are word and line based (a newline in a name forged a listing
// line), and IET took at most 255 bytes.
func badAccountWord(s string) string {
	return badTargetName(s)
}

func (o *Ops) targetOf(cfg *config.Config, req *Request) (*config.Target, error) {
	t := cfg.TargetByTID(*req.TID)
	if t == nil {
		return nil, errf(syscall.ENOENT, "no target with tid %d", *req.TID)
	}
	return t, nil
}

func (o *Ops) target(req *Request) (string, error) {
	cfg := o.Engine.Config().Clone()
	switch req.Op {
	case OpNew:
		var name string
		var haveName bool
		kvs, warns := params(req.Params)
		for _, kv := range kvs {
			switch {
			case kv[0] == "Name" && !haveName:
				name, haveName = kv[1], true
			case kv[0] == "Name":
				warns = append(warns, fmt.Sprintf("Name given more than once: the first, %q, is used", name))
			case strings.EqualFold(kv[0], "Name"):
				return "", errf(syscall.EINVAL, "--params %s=: the key is Name, in this case (as in IET)", kv[0])
			default:
				// IET took everything after "Name=" as the name.
				warns = append(warns, fmt.Sprintf("--params %s: a new target takes only Name: ignored", kv[0]))
			}
		}
		if name == "" {
			return "", errf(syscall.EINVAL, "a new target needs --params Name=<iqn>")
		}
		if why := badTargetName(name); why != "" {
			return "", errf(syscall.EINVAL, "target name %q: %s", name, why)
		}
		for _, t := range cfg.Targets {
			if strings.EqualFold(t.Name, name) {
				return "", errf(syscall.EINVAL, "target %s already exists (tid %d)", name, t.TID)
			}
		}
		tid := *req.TID
		if tid == 0 {
			tid = cfg.NextTID()
			if o.TIDs != nil {
				tid = max(tid, o.TIDs.Next())
			}
			if int64(tid) > MaxTID {
				// Counted up to the end (after a tid near it was asked
				// for): take the lowest free one rather than an id
				// ietadm cannot name.
				tid = 1
				for cfg.TargetByTID(tid) != nil {
					tid++
				}
			}
		} else if tid < 0 || int64(tid) > MaxTID {
			return "", errf(syscall.EINVAL, "tid %d out of range (1..%d)", tid, MaxTID)
		} else if cfg.TargetByTID(tid) != nil {
			return "", errf(syscall.EEXIST, "tid %d is in use", tid)
		}
		t := config.NewTarget(tid, name)
		cfg.Targets = append(cfg.Targets, t)
		if err := o.apply(cfg); err != nil {
			return "", err
		}
		if o.TIDs != nil {
			o.TIDs.Taken(tid)
		}
		if o.Created != nil {
			o.Created(name)
		}
		o.warns = append(o.warns, warns...)
		return "", nil
	case OpDelete:
		t, err := o.targetOf(cfg, req)
		if err != nil {
			return "", err
		}
		for _, s := range o.Engine.Sessions() {
			if s.TID == t.TID {
				return "", errf(syscall.EBUSY, "target %d has sessions", t.TID)
			}
		}
		for i, x := range cfg.Targets {
			if x == t {
				cfg.Targets = append(cfg.Targets[:i], cfg.Targets[i+1:]...)
				break
			}
		}
		if err := o.apply(cfg); err != nil {
			return "", err
		}
		if o.Deleted != nil {
			o.Deleted(t.Name)
		}
		return "", nil
	case OpShow:
		t, err := o.targetOf(cfg, req)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Wthreads=%d\nType=0\nQueuedCommands=%d\nNOPInterval=%d\nNOPTimeout=%d\n",
			t.Wthreads, t.QueuedCommands, t.NOPInterval, t.NOPTimeout), nil
	case OpUpdate:
		t, err := o.targetOf(cfg, req)
		if err != nil {
			return "", err
		}
		if req.Redirect != nil {
			return "", errf(syscall.EOPNOTSUPP, "--redirect is not supported")
		}
		kvs, warns := params(req.Params)
		for _, kv := range kvs {
			w, err := SetTargetKey(t, kv[0], kv[1])
			if err != nil {
				return "", err
			}
			warns = append(warns, w...)
		}
		if err := o.apply(cfg); err != nil {
			return "", err
		}
		o.warns = append(o.warns, warns...)
		return "", nil
	}
	return "", unsupported(req)
}

func (o *Ops) lun(req *Request) (string, error) {
	if req.TID == nil {
		return "", errf(syscall.EINVAL, "--lun needs --tid")
	}
	cfg := o.Engine.Config().Clone()
	t, err := o.targetOf(cfg, req)
	if err != nil {
		return "", err
	}
	n := *req.LUN
	switch req.Op {
	case OpNew:
		if t.LUN(n) != nil {
			return "", errf(syscall.EEXIST, "target %d already has LUN %d", t.TID, n)
		}
		if strings.TrimSpace(req.Params) == "" {
			return "", errf(syscall.EINVAL, "a new LUN needs --params Path=...,Type=...")
		}
		if o.ParseLUN == nil {
			return "", errf(syscall.EOPNOTSUPP, "LUN parameters cannot be parsed here")
		}
		l, err := o.ParseLUN(n, req.Params)
		if err != nil {
			return "", errf(syscall.EINVAL, "%v", err)
		}
		t.LUNs = append(t.LUNs, l)
		sort.Slice(t.LUNs, func(i, j int) bool { return t.LUNs[i].Number < t.LUNs[j].Number })
		if err := o.apply(cfg); err != nil {
			return "", err
		}
		if w := blockioOnFile(l); w != "" {
			o.warns = append(o.warns, w)
		}
		return "", nil
	case OpDelete:
		for i, l := range t.LUNs {
			if l.Number == n {
				t.LUNs = append(t.LUNs[:i], t.LUNs[i+1:]...)
				return "", o.apply(cfg)
			}
		}
		return "", errf(syscall.ENOENT, "target %d has no LUN %d", t.TID, n)
	case OpShow:
		return "", nil
	}
	return "", unsupported(req)
}

// blockioOnFile is the warning for a blockio LUN on a regular file ("" for
// any other): it is served (with O_DIRECT), where IET's blockio took block
// devices only.
func blockioOnFile(l *config.LUN) string {
	if l.Type != "blockio" || l.Store == nil || l.Store.Kind != config.StoreFile {
		return ""
	}
	if fi, err := os.Stat(l.Store.Path); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return fmt.Sprintf("LUN %d: Type=blockio on %s, a regular file: served, with direct I/O where its file system allows it (IET's blockio took block devices only); Type=fileio serves a file through the page cache", l.Number, l.Store.Path)
}

func (o *Ops) conn(req *Request) (string, error) {
	if req.TID == nil || req.SID == nil {
		return "", errf(syscall.EINVAL, "--cid needs --tid and --sid")
	}
	if req.Op != OpDelete {
		return "", unsupported(req)
	}
	if *req.CID > 0xffff {
		// CIDs are 16 bits: a larger one names no connection (cast, it
		// named another one: 65536 closed connection 0). As for any
		// cid, IET looks the session up first: ENOENT without one.
		for _, s := range o.Engine.Sessions() {
			if s.TID == *req.TID && s.SID == *req.SID {
				return "", errf(syscall.EEXIST, "session %d has no connection %d", *req.SID, *req.CID)
			}
		}
		return "", errf(syscall.ENOENT, "no session %d on target %d", *req.SID, *req.TID)
	}
	err := o.Engine.CloseConnection(*req.TID, *req.SID, uint16(*req.CID))
	switch err {
	case nil:
		return "", nil
	case iscsi.ErrNoSuchSession:
		return "", errf(syscall.ENOENT, "no session %d on target %d", *req.SID, *req.TID)
	case iscsi.ErrNoSuchConnection:
		// IET answers EEXIST for an unknown cid; scripts rely on the code.
		return "", errf(syscall.EEXIST, "session %d has no connection %d", *req.SID, *req.CID)
	}
	return "", errf(syscall.EINVAL, "%v", err)
}

func (o *Ops) session(req *Request) (string, error) {
	if req.TID == nil {
		return "", errf(syscall.EINVAL, "--sid needs --tid")
	}
	cfg := o.Engine.Config()
	t, err := o.targetOf(cfg, req)
	if err != nil {
		return "", err
	}
	switch req.Op {
	case OpShow:
		if *req.SID == 0 {
			return FormatSessionParams(ConfigParamMap(t.Params)), nil
		}
		for _, s := range o.Engine.Sessions() {
			if s.TID == t.TID && s.SID == *req.SID {
				return FormatSessionParams(s.Params), nil
			}
		}
		return "", errf(syscall.ENOENT, "no session %d on target %d", *req.SID, t.TID)
	case OpDelete:
		// IET documented "close all connections of the session" but never
		// did it; we do.
		if err := o.Engine.CloseSession(t.TID, *req.SID); err != nil {
			return "", errf(syscall.ENOENT, "no session %d on target %d", *req.SID, t.TID)
		}
		return "", nil
	}
	return "", unsupported(req)
}

func (o *Ops) user(req *Request) (string, error) {
	if req.LUN != nil || req.SID != nil || req.CID != nil {
		// IET's user_handle: set & ~(SET_TARGET | SET_USER) is EINVAL.
		return "", errf(syscall.EINVAL, "--user takes --tid only (not --lun, --sid or --cid)")
	}
	cfg := o.Engine.Config().Clone()
	auth := &cfg.Discovery
	if req.TID != nil && *req.TID != 0 {
		t, err := o.targetOf(cfg, req)
		if err != nil {
			return "", err
		}
		auth = &t.Auth
	}
	var dir, name, pass string
	var havePass bool
	kvs, warns := params(req.Params)
	for _, kv := range kvs {
		switch k := strings.ToLower(kv[0]); k {
		case "incominguser", "outgoinguser":
			if dir != "" {
				// IET: "Already specified user", the last one wins.
				warns = append(warns, fmt.Sprintf("%s=%s given after %s=%s: the last one is used", keyCase(k), kv[1], dir, name))
			}
			dir, name = keyCase(k), kv[1]
		case "password":
			if havePass {
				warns = append(warns, "Password given more than once: the last one is used")
			}
			pass, havePass = kv[1], true
		default:
			return "", errf(syscall.EINVAL, "unknown parameter %q (IncomingUser, OutgoingUser or Password)", kv[0])
		}
	}
	if req.Op == OpDelete && havePass {
		warns = append(warns, "Password is not needed to delete an account: ignored")
	}
	// Warnings of an operation that fails are not shown (its error is).
	defer func() { o.warns = append(o.warns, warns...) }()
	if why := badAccountWord(name); name != "" && why != "" {
		return "", errf(syscall.EINVAL, "%s name %q: %s", dir, name, why)
	}
	switch req.Op {
	case OpShow:
		if dir == "" {
			var b strings.Builder
			for _, a := range auth.Incoming {
				fmt.Fprintf(&b, "IncomingUser %s\n", a.User)
			}
			if auth.Outgoing != nil {
				fmt.Fprintf(&b, "OutgoingUser %s\n", auth.Outgoing.User)
			}
			return b.String(), nil
		}
		if dir == "IncomingUser" {
			for _, a := range auth.Incoming {
				if name == "" || a.User == name {
					return fmt.Sprintf("IncomingUser %s %s\n", a.User, a.Secret), nil
				}
			}
		} else if auth.Outgoing != nil && (name == "" || auth.Outgoing.User == name) {
			return fmt.Sprintf("OutgoingUser %s %s\n", auth.Outgoing.User, auth.Outgoing.Secret), nil
		}
		return "", errf(syscall.ENOENT, "no such account")
	case OpNew:
		if dir == "" || name == "" || !havePass || pass == "" {
			return "", errf(syscall.EINVAL, "need IncomingUser=<name>,Password=<secret> or OutgoingUser=<name>,Password=<secret>")
		}
		if why := badAccountWord(pass); why != "" {
			return "", errf(syscall.EINVAL, "%s %s: the password %s", dir, name, why)
		}
		acct := config.Account{User: name, Secret: pass}
		if dir == "OutgoingUser" {
			auth.Outgoing = &acct
		} else {
			replaced := false
			for i := range auth.Incoming {
				if auth.Incoming[i].User == name {
					auth.Incoming[i] = acct
					replaced = true
				}
			}
			if !replaced {
				auth.Incoming = append(auth.Incoming, acct)
			}
		}
		// As the config loader (the secret itself is never repeated).
		if len(pass) < 12 {
			warns = append(warns, fmt.Sprintf("the CHAP secret of %s is shorter than 12 characters (the Microsoft initiator refuses it)", name))
		}
		if in, ok := auth.SecretBothWays(); ok {
			warns = append(warns, fmt.Sprintf("OutgoingUser %s has the secret of IncomingUser %s: RFC 7143 12.1.3 forbids one CHAP secret for both directions (whoever has it can pose as the target)", auth.Outgoing.User, in.User))
		}
		return "", o.apply(cfg)
	case OpDelete:
		if dir == "" {
			return "", errf(syscall.EINVAL, "need IncomingUser=<name> or OutgoingUser=<name>")
		}
		if dir == "OutgoingUser" {
			if auth.Outgoing == nil || auth.Outgoing.User != name {
				return "", errf(syscall.ENOENT, "no outgoing account %s", name)
			}
			auth.Outgoing = nil
			return "", o.apply(cfg)
		}
		for i, a := range auth.Incoming {
			if a.User == name {
				auth.Incoming = append(auth.Incoming[:i], auth.Incoming[i+1:]...)
				return "", o.apply(cfg)
			}
		}
		return "", errf(syscall.ENOENT, "no incoming account %s", name)
	}
	return "", unsupported(req)
}

// keyCase is an account key as IET writes it.
func keyCase(lower string) string {
	if lower == "outgoinguser" {
		return "OutgoingUser"
	}
	return "IncomingUser"
}

// sessionKeys is the fixed order of `ietadm --op show --sid` output.
var sessionKeys = []string{
	"InitialR2T", "ImmediateData", "MaxConnections", "MaxRecvDataSegmentLength",
	"MaxXmitDataSegmentLength", "MaxBurstLength", "FirstBurstLength", "DefaultTime2Wait",
	"DefaultTime2Retain", "MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder",
	"ErrorRecoveryLevel", "HeaderDigest", "DataDigest", "OFMarker", "IFMarker",
	"OFMarkInt", "IFMarkInt",
}

// FormatSessionParams prints session keys as IET does (fixed order,
// Key=Value lines). Missing marker intervals print "Reject".
func FormatSessionParams(m map[string]string) string {
	var b strings.Builder
	for _, k := range sessionKeys {
		v, ok := m[k]
		if !ok {
			switch k {
			case "OFMarkInt", "IFMarkInt":
				v = "Reject"
			case "OFMarker", "IFMarker":
				v = "No"
			}
		}
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// digestText prints a digest list as IET's bitmask: None first.
func digestText(list []string) string {
	var none, crc bool
	for _, d := range list {
		switch strings.ToLower(d) {
		case "none":
			none = true
		case "crc32c":
			crc = true
		}
	}
	switch {
	case none && crc:
		return "None,CRC32C"
	case crc:
		return "CRC32C"
	}
	return "None"
}

func markInt(v int) string {
	if v == 0 {
		return "Irrelevant"
	}
	return "Reject"
}

// ConfigParamMap renders configured session parameters as IET prints them.
func ConfigParamMap(p config.Params) map[string]string {
	return map[string]string{
		"InitialR2T":               yesNo(p.InitialR2T),
		"ImmediateData":            yesNo(p.ImmediateData),
		"MaxConnections":           strconv.Itoa(p.MaxConnections),
		"MaxRecvDataSegmentLength": strconv.Itoa(p.MaxRecvDataSegmentLength),
		"MaxXmitDataSegmentLength": strconv.Itoa(p.MaxXmitDataSegmentLength),
		"MaxBurstLength":           strconv.Itoa(p.MaxBurstLength),
		"FirstBurstLength":         strconv.Itoa(p.FirstBurstLength),
		"DefaultTime2Wait":         strconv.Itoa(p.DefaultTime2Wait),
		"DefaultTime2Retain":       strconv.Itoa(p.DefaultTime2Retain),
		"MaxOutstandingR2T":        strconv.Itoa(p.MaxOutstandingR2T),
		"DataPDUInOrder":           yesNo(p.DataPDUInOrder),
		"DataSequenceInOrder":      yesNo(p.DataSequenceInOrder),
		"ErrorRecoveryLevel":       strconv.Itoa(p.ErrorRecoveryLevel),
		"HeaderDigest":             digestText(p.HeaderDigest),
		"DataDigest":               digestText(p.DataDigest),
		"OFMarker":                 yesNo(p.OFMarker),
		"IFMarker":                 yesNo(p.IFMarker),
		"OFMarkInt":                markInt(p.OFMarkInt),
		"IFMarkInt":                markInt(p.IFMarkInt),
	}
}
