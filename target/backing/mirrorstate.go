package backing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ietgo/ietd/target/statefile"
	"github.com/sirupsen/logrus"
)

// A mirror member that failed is out of date from its first missed
// write on. Its failure is recorded in the daemon's state directory, so
// that a restart or a reload, which opens every member again, keeps it
// out of service instead of reading stale data from it. The record is
// written before the write that failed it is acknowledged. The member
// comes back once the administrator has copied a healthy member onto it
// and removed the file (targets(5)).

type mirrorState struct {
	path   string
	device string // the name the record is of
	// since keeps each recorded member's failure time and reason;
	// written says which of them are in the file (under MirrorStore.mu).
	since   map[string]mirrorFailure
	written map[string]bool
}

type mirrorFailure struct {
	Member string    `json:"member"`
	Since  time.Time `json:"since"`
	Error  string    `json:"error"`
}

type mirrorStateFile struct {
	Device string          `json:"device"`
	Failed []mirrorFailure `json:"failed"`
}

// mirrorStatePath is the record of device name under dir (statefile.Name:
// devices d/1 and d_1 do not share it).
func mirrorStatePath(dir, device string) string {
	return filepath.Join(dir, "raid1."+statefile.Name(device)+".json")
}

// mirrorLegacyStatePath is where daemons before mirrorStatePath kept the
// record: a name devices d/1 and d_1 shared.
func mirrorLegacyStatePath(dir, device string) string {
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == 0 || r == '\\' {
			return '_'
		}
		return r
	}, device)
	return filepath.Join(dir, "raid1."+safe+".json")
}

// ErrStaleMember is the error of a member kept out of service because
// its failure was recorded before the mirror was opened.
var ErrStaleMember = errors.New("mirror member failed before this open and may be out of date")

// decodeMirrorState checks and decodes the failure record of mirror
// device: a record of another device (a renamed file), with fields or
// data that are not a record, or naming a member twice is an error.
func decodeMirrorState(b []byte, device string) (*mirrorStateFile, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f mirrorStateFile
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the record")
	}
	if f.Device != device {
		return nil, fmt.Errorf("the record of device %q, not of %q", f.Device, device)
	}
	seen := map[string]bool{}
	for _, r := range f.Failed {
		if r.Member == "" {
			return nil, errors.New("a failed member without a name")
		}
		if seen[r.Member] {
			return nil, fmt.Errorf("member %q recorded twice", r.Member)
		}
		seen[r.Member] = true
	}
	return &f, nil
}

// useState loads the failure record at path (missing: none) and takes
// the members it names out of service, never the last one. A record
// naming a member the mirror no longer has is kept in the file (the
// member may come back under that name) and logged.
func (m *MirrorStore) useState(dir, device string) error {
	path := mirrorStatePath(dir, device)
	st := &mirrorState{path: path, device: device, since: map[string]mirrorFailure{}, written: map[string]bool{}}
	from := path
	b, err := statefile.Read(from)
	if errors.Is(err, fs.ErrNotExist) {
		from = mirrorLegacyStatePath(dir, device)
		b, err = statefile.Read(from)
		var other mirrorStateFile
		if err == nil && json.Unmarshal(b, &other) == nil && other.Device != "" && other.Device != device {
			// The record of the other device of a shared legacy name.
			err = fs.ErrNotExist
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("mirror %s: failure record: %w (fix or remove it)", device, err)
	default:
		f, err := decodeMirrorState(b, device)
		if err != nil {
			return fmt.Errorf("mirror %s: failure record %s: %w (fix or remove it)", device, from, err)
		}
		if from != path {
			// Written under its own name (synced) before the old one
			// goes: a crash in between leaves both, and this one is read.
			if err := statefile.Write(path, b); err != nil {
				return fmt.Errorf("mirror %s: failure record %s: moving it to %s: %w", device, from, path, err)
			}
			lg := m.log.WithFields(logrus.Fields{"from": from, "record": path})
			if err := statefile.Remove(from); err != nil {
				lg.WithError(err).Warn("mirror failure record copied to its new name; the old one could not be removed (remove it)")
			} else {
				lg.Info("mirror failure record moved to its new name")
			}
		}
		for _, r := range f.Failed {
			st.since[r.Member] = r
			st.written[r.Member] = true
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = st
	for name := range st.since {
		if !slices.ContainsFunc(m.members, func(mb MirrorMember) bool { return mb.Name == name }) {
			m.log.WithFields(logrus.Fields{"member": name, "record": path}).
				Warn("failure record names a member this mirror does not have: kept in the record")
		}
	}
	healthy := len(m.members)
	for i, mb := range m.members {
		r, ok := st.since[mb.Name]
		if !ok {
			continue
		}
		if healthy == 1 {
			m.log.WithFields(logrus.Fields{"member": mb.Name, "record": path}).
				Error("every mirror member is recorded failed; serving from the last one")
			break
		}
		healthy--
		m.failed[i] = &Error{Op: "open", Path: mb.Name, Kind: ErrIO,
			Err: fmt.Errorf("%w (since %s: %s; recorded in %s: copy a healthy member onto it, then remove that file)",
				ErrStaleMember, r.Since.Format(time.RFC3339), r.Error, path)}
		m.log.WithFields(logrus.Fields{"member": mb.Name, "index": i, "since": r.Since.Format(time.RFC3339), "record": path}).
			Warn("mirror member failed earlier and may be out of date; kept out of service")
	}
	return nil
}

// recordFailed writes the failed members to the record. A record that
// cannot be written is logged: the leg then comes back stale after a
// restart.
func (m *MirrorStore) recordFailed() {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	m.mu.Lock()
	if m.state == nil {
		m.mu.Unlock()
		m.log.Warn("no state directory: a restart will bring the failed mirror member back, out of date")
		return
	}
	f := mirrorStateFile{Device: m.state.device}
	for i, mb := range m.members {
		if m.failed[i] == nil {
			continue
		}
		r, ok := m.state.since[mb.Name]
		if !ok {
			r = mirrorFailure{Member: mb.Name, Since: time.Now().UTC(), Error: m.failed[i].Error()}
			m.state.since[mb.Name] = r
		}
		f.Failed = append(f.Failed, r)
	}
	// Records of members the mirror does not have (useState) stay.
	var others []string
	for name := range m.state.since {
		if !slices.ContainsFunc(m.members, func(mb MirrorMember) bool { return mb.Name == name }) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		f.Failed = append(f.Failed, m.state.since[name])
	}
	path := m.state.path
	m.mu.Unlock()
	b, _ := json.MarshalIndent(f, "", "  ")
	err := statefile.Write(path, append(b, '\n'))
	m.mu.Lock()
	for _, r := range f.Failed {
		// Also when the write failed (logged below): requests do not
		// wait for a record that cannot be written.
		m.state.written[r.Member] = true
	}
	m.mu.Unlock()
	if err != nil {
		m.log.WithError(err).WithField("record", path).
			Error("cannot record the failed mirror member: a restart would bring it back out of date")
	}
}
