package admin

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/ietgo/ietd/target/config"
)

// intKey is a numeric key with IET's range; out-of-range values are clamped
// (IET never rejected them).
type intKey struct {
	min, max int
	field    func(t *config.Target) *int
}

var intKeys = map[string]intKey{
	"wthreads":                 {1, 128, func(t *config.Target) *int { return &t.Wthreads }},
	"queuedcommands":           {1, 256, func(t *config.Target) *int { return &t.QueuedCommands }},
	"nopinterval":              {0, 90, func(t *config.Target) *int { return &t.NOPInterval }},
	"noptimeout":               {0, 90, func(t *config.Target) *int { return &t.NOPTimeout }},
	"maxconnections":           {1, 65535, func(t *config.Target) *int { return &t.Params.MaxConnections }},
	"maxrecvdatasegmentlength": {512, 16777215, func(t *config.Target) *int { return &t.Params.MaxRecvDataSegmentLength }},
	"maxxmitdatasegmentlength": {512, 16777215, func(t *config.Target) *int { return &t.Params.MaxXmitDataSegmentLength }},
	"maxburstlength":           {512, 16777215, func(t *config.Target) *int { return &t.Params.MaxBurstLength }},
	"firstburstlength":         {512, 16777215, func(t *config.Target) *int { return &t.Params.FirstBurstLength }},
	"defaulttime2wait":         {0, 3600, func(t *config.Target) *int { return &t.Params.DefaultTime2Wait }},
	"defaulttime2retain":       {0, 3600, func(t *config.Target) *int { return &t.Params.DefaultTime2Retain }},
	"maxoutstandingr2t":        {1, 65535, func(t *config.Target) *int { return &t.Params.MaxOutstandingR2T }},
	"errorrecoverylevel":       {0, 0, func(t *config.Target) *int { return &t.Params.ErrorRecoveryLevel }},
	"ofmarkint":                {1, 65535, func(t *config.Target) *int { return &t.Params.OFMarkInt }},
	"ifmarkint":                {1, 65535, func(t *config.Target) *int { return &t.Params.IFMarkInt }},
}

var boolKeys = map[string]func(t *config.Target) *bool{
	"initialr2t":          func(t *config.Target) *bool { return &t.Params.InitialR2T },
	"immediatedata":       func(t *config.Target) *bool { return &t.Params.ImmediateData },
	"datapduinorder":      func(t *config.Target) *bool { return &t.Params.DataPDUInOrder },
	"datasequenceinorder": func(t *config.Target) *bool { return &t.Params.DataSequenceInOrder },
	"ofmarker":            func(t *config.Target) *bool { return &t.Params.OFMarker },
	"ifmarker":            func(t *config.Target) *bool { return &t.Params.IFMarker },
}

// SetTargetKey applies one `ietadm --op update --tid=N --params k=v` item:
// target keys and session keys become the target's defaults for future
// sessions. Keys are case-insensitive; integers are parsed like C strtol
// with base 0 and clamped to the key's range. The target holds what is
// used (the config loader's rule): a clamped number or a forced value
// (ErrorRecoveryLevel 0, DataPDUInOrder and DataSequenceInOrder Yes,
// markers No) is stored as such and a warning says so, as does one for a
// Yes/No or digest value not in IET's exact case (accepted, as the loader
// accepts it; IET refused it).
func SetTargetKey(t *config.Target, key, value string) (warnings []string, err error) {
	k := strings.ToLower(key)
	switch k {
	case "type":
		// IET's only target type is 0 (disk): its kernel set any other
		// value back to 0. A value that is not a number is refused, as
		// for every numeric key.
		n, err := strconv.ParseInt(strings.TrimSpace(value), 0, 64)
		if err != nil {
			return nil, errf(syscall.EINVAL, "invalid %s value %q", key, value)
		}
		if n != 0 {
			return []string{fmt.Sprintf("Type %d: the only target type is 0 (disk); 0 is used (IET used 0 too)", n)}, nil
		}
		return nil, nil
	case "maxsessions", "lun", "alias":
		return nil, errf(syscall.EINVAL, "%s cannot be changed at run time", key)
	case "headerdigest", "datadigest":
		list, inexact, _, ok := config.ParseDigests(strings.ReplaceAll(value, " ", ""))
		if !ok {
			return nil, errf(syscall.EINVAL, "invalid %s value %q (None, CRC32C or both)", key, value)
		}
		for _, item := range inexact {
			warnings = append(warnings, config.DigestCaseNote(keyName(k), item))
		}
		if k == "headerdigest" {
			t.Params.HeaderDigest = list
		} else {
			t.Params.DataDigest = list
		}
		return warnings, nil
	}
	if f, ok := boolKeys[k]; ok {
		b, exact, ok := config.ParseYesNo(value)
		if !ok {
			return nil, errf(syscall.EINVAL, "invalid %s value %q (Yes or No)", key, value)
		}
		if !exact {
			warnings = append(warnings, config.YesNoCaseNote(keyName(k), value))
		}
		if value, why, ok := config.ForcedBool(k); ok && b != value {
			warnings = append(warnings, fmt.Sprintf("%s %s: %s; %s is offered (IET forced it too)", keyName(k), yesNo(b), why, yesNo(value)))
			b = value
		}
		*f(t) = b
		return warnings, nil
	}
	if ik, ok := intKeys[k]; ok {
		text := strings.TrimSpace(value)
		n, err := strconv.ParseInt(text, 0, 64)
		if errors.Is(err, strconv.ErrRange) {
			// A number, only beyond 64 bits: as out of range as any
			// other (ParseInt gives the bound it passed).
			err = nil
		}
		if err != nil {
			return nil, errf(syscall.EINVAL, "invalid %s value %q", key, value)
		}
		v := int(max(min(n, int64(ik.max)), int64(ik.min)))
		switch {
		case k == "errorrecoverylevel" && n > 0:
			warnings = append(warnings, fmt.Sprintf("%s %s: only level 0 is implemented; 0 is offered (IET forced 0 too)", keyName(k), text))
		case int64(v) != n:
			warnings = append(warnings, fmt.Sprintf("%s %s out of range (%d..%d): using %d", keyName(k), text, ik.min, ik.max, v))
		}
		*ik.field(t) = v
		return warnings, nil
	}
	return nil, errf(syscall.EINVAL, "unknown parameter %q", key)
}

// keyName is a lower-cased key as IET writes it.
func keyName(k string) string {
	for _, n := range append([]string{"Wthreads", "QueuedCommands", "NOPInterval", "NOPTimeout"}, sessionKeys...) {
		if strings.EqualFold(n, k) {
			return n
		}
	}
	return k
}
