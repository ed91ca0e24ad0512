package scsi

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"

	"github.com/ietgo/ietd/target/backing"
	"github.com/ietgo/ietd/target/config"
)

func identityTarget(t *testing.T, dialect config.Dialect, name string, luns ...*config.LUN) (*Target, *Nexus) {
	t.Helper()
	tc := config.NewTarget(1, name)
	tc.LUNs = luns
	tg, err := NewTarget(tc, Options{Dialect: dialect, OpenStore: func(*config.LUN) (backing.Store, error) {
		return backing.NewMemory(1 << 20), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	n := &Nexus{ID: 1, InitiatorName: "iqn.a", ISID: [6]byte{1}, TargetName: name}
	tg.NexusAttach(n)
	for _, l := range luns {
		tg.Execute(t.Context(), &Command{Nexus: n, LUN: l.Number, CDB: cdb(0, 6)})
	}
	return tg, n
}

func vpdOf(t *testing.T, tg *Target, n *Nexus, lun uint64, page byte) []byte {
	t.Helper()
	c := cdb(0x12, 6)
	c[1], c[2], c[4] = 1, page, 255
	r := tg.Execute(t.Context(), &Command{Nexus: n, LUN: lun, CDB: c, ExpectedLen: 255})
	if r.Status != StatusGood {
		t.Fatalf("VPD %#x: %+v", page, r)
	}
	return r.Data
}

func memLUN(n uint64, mutate func(*config.LUN)) *config.LUN {
	l := &config.LUN{Number: n, Type: "fileio", IOMode: "wb", Store: &config.Store{Path: "m"}}
	if mutate != nil {
		mutate(l)
	}
	return l
}

// An IET LUN's device identification page is IET 1.4.20's, byte for byte
// (iet.md 6.2/6.3): one T10 vendor ID designator, "IET" NUL-padded to 8,
// then MD5(target name || le32(LUN)). Nothing else, so WWIDs derived from
// it do not change after a migration.
func TestIETDeviceIdentificationIsIETs(t *testing.T) {
	const name = "iqn.2001-04.com.example:storage.disk2.sys1.xyz"
	tg, n := identityTarget(t, config.DialectIET, name, memLUN(0, nil))
	id, _ := hex.DecodeString("ec9c13110abbc543ab448c602bef9852") // iet.md 6.3
	want := append([]byte{0x00, 0x83, 0x00, 0x1c, 0x01, 0x01, 0x00, 0x18, 'I', 'E', 'T', 0, 0, 0, 0, 0}, id...)
	if got := vpdOf(t, tg, n, 0, 0x83); !bytes.Equal(got, want) {
		t.Fatalf("VPD 0x83\n got % x\nwant % x", got, want)
	}
	if got := vpdOf(t, tg, n, 0, 0x80); string(got[4:]) != "ec9c13110abbc543ab448c602bef9852" {
		t.Fatalf("VPD 0x80 %q", got[4:])
	}
	// A configured ScsiId is copied verbatim, NUL-padded.
	tg, n = identityTarget(t, config.DialectIET, name, memLUN(0, func(l *config.LUN) { l.ScsiID = "Disk01" }))
	got := vpdOf(t, tg, n, 0, 0x83)
	if len(got) != 32 || !bytes.Equal(got[16:32], append([]byte("Disk01"), make([]byte, 10)...)) {
		t.Fatalf("VPD 0x83 with ScsiId=Disk01: % x", got)
	}
}

// NetBSD LUNs also carry an NAA designator derived from the whole
// identifier: ScsiIds that differ only in case (or in any other way) get
// different NAA values; the same identifier always the same.
func TestNetBSDNAADesignatorIsCollisionFree(t *testing.T) {
	tg, n := identityTarget(t, config.DialectNetBSD, "iqn.x:y",
		memLUN(0, func(l *config.LUN) { l.ScsiID = "Disk01" }),
		memLUN(1, func(l *config.LUN) { l.ScsiID = "disk01" }),
		memLUN(2, nil), memLUN(3, nil))
	naa := func(lun uint64) []byte {
		p := vpdOf(t, tg, n, lun, 0x83)
		for i := 4; i+4 <= len(p); i += 4 + int(p[i+3]) {
			if p[i+1]&0x3f == 0x03 { // association LU, type NAA
				d := p[i+4 : i+4+int(p[i+3])]
				if len(d) != 8 || d[0]>>4 != 3 {
					t.Fatalf("LUN %d: NAA designator % x is not NAA 3h (locally assigned)", lun, d)
				}
				return d
			}
		}
		t.Fatalf("LUN %d: no NAA designator", lun)
		return nil
	}
	seen := map[string]uint64{}
	for lun := uint64(0); lun < 4; lun++ {
		d := string(naa(lun))
		if o, dup := seen[d]; dup {
			t.Fatalf("LUNs %d and %d share NAA % x", o, lun, d)
		}
		seen[d] = lun
	}
	tg2, n2 := identityTarget(t, config.DialectNetBSD, "iqn.other:target", memLUN(0, func(l *config.LUN) { l.ScsiID = "Disk01" }))
	p := vpdOf(t, tg2, n2, 0, 0x83)
	if !bytes.Contains(p, []byte(naa(0))) {
		t.Fatal("the same ScsiId on another target (multipath) gives another NAA")
	}
	// EXTENDED COPY finds the unit by its NAA designator.
	des := tg.lun(1).luDesignators()[1]
	field := make([]byte, 20)
	copy(field, des.val)
	if !des.matches(3, 8, field) || tg.lun(0).luDesignators()[1].matches(3, 8, field) {
		t.Fatal("NAA designator matching")
	}
}

// The version descriptors follow the VERSION byte (ScsiVersion).
func TestVersionDescriptorsFollowVersion(t *testing.T) {
	for v, want := range map[int][]uint16{
		0: {vdSAM3, vdISCSI, vdSPC3, vdSBC3}, // default 5: SPC-3
		4: {vdSAM2, vdISCSI, vdSPC2, vdSBC2},
		6: {vdSAM5, vdISCSI, vdSPC4, vdSBC3},
	} {
		tg, n := identityTarget(t, config.DialectIET, "iqn.x:v", memLUN(0, func(l *config.LUN) { l.ScsiVersion = v }))
		c := cdb(0x12, 6)
		c[4] = 96
		r := tg.Execute(t.Context(), &Command{Nexus: n, CDB: c, ExpectedLen: 96})
		wantVer := byte(v)
		if v == 0 {
			wantVer = 5
		}
		if r.Data[2] != wantVer {
			t.Fatalf("ScsiVersion=%d: version byte %d", v, r.Data[2])
		}
		for i, d := range want {
			if got := binary.BigEndian.Uint16(r.Data[58+2*i:]); got != d {
				t.Errorf("ScsiVersion=%d: descriptor %d = %#04x, want %#04x", v, i, got, d)
			}
		}
	}
}

// Identity= overrides the dialect's identity defaults both ways: a LUN
// with Identity=netbsd in an IET config is byte for byte the LUN of the
// same name and number in a NetBSD config (what ietd-migrate relies on),
// and Identity=iet in a NetBSD config is the IET one.
func TestIdentityOverridesTheDialect(t *testing.T) {
	const name = "iqn.1994-04.org.netbsd.iscsi-target:target0"
	pages := func(dialect, identity config.Dialect) [][]byte {
		tg, n := identityTarget(t, dialect, name, memLUN(0, func(l *config.LUN) { l.Identity = identity }))
		std := tg.Execute(t.Context(), &Command{Nexus: n, LUN: 0, CDB: func() []byte { c := cdb(0x12, 6); c[4] = 96; return c }(), ExpectedLen: 96})
		if std.Status != StatusGood {
			t.Fatalf("INQUIRY: %+v", std)
		}
		return [][]byte{std.Data, vpdOf(t, tg, n, 0, 0x80), vpdOf(t, tg, n, 0, 0x83)}
	}
	for _, c := range []struct {
		dialect, identity, like config.Dialect
	}{
		{config.DialectIET, config.DialectNetBSD, config.DialectNetBSD},
		{config.DialectNetBSD, config.DialectIET, config.DialectIET},
		{config.DialectIET, "", config.DialectIET},
		{config.DialectNetBSD, "", config.DialectNetBSD},
	} {
		got, want := pages(c.dialect, c.identity), pages(c.like, "")
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%s config, Identity=%q: page %d\n got % x\nwant % x (%s)", c.dialect, c.identity, i, got[i], want[i], c.like)
			}
		}
	}
	if a, b := pages(config.DialectIET, ""), pages(config.DialectNetBSD, ""); bytes.Equal(a[2], b[2]) || bytes.Equal(a[0], b[0]) {
		t.Fatal("IET and NetBSD identities are the same: the test compares nothing")
	}
}

// NAA=Yes gives an IET LUN, after IET's T10 designator unchanged, the NAA
// designator (and target port designators) a NetBSD LUN has, and EXTENDED
// COPY finds it by that designator; NAA=No takes it from a NetBSD LUN.
// Changing it by reload raises INQUIRY DATA HAS CHANGED.
func TestNAAOption(t *testing.T) {
	yes, no := true, false
	const name = "iqn.2001-04.com.example:storage.disk2.sys1.xyz"
	tg, n := identityTarget(t, config.DialectIET, name, memLUN(0, nil), memLUN(1, func(l *config.LUN) { l.NAA = &yes }))
	plain, with := vpdOf(t, tg, n, 0, 0x83), vpdOf(t, tg, n, 1, 0x83)
	t10 := func(p []byte) []byte { return p[4 : 4+4+24] }
	naaOf := func(p []byte) []byte {
		for i := 4; i+4 <= len(p); i += 4 + int(p[i+3]) {
			if p[i+1]&0x3f == 0x03 {
				return p[i+4 : i+4+int(p[i+3])]
			}
		}
		return nil
	}
	if naaOf(plain) != nil || len(plain) != 32 {
		t.Fatalf("IET LUN without NAA= has more than IET's designator: % x", plain)
	}
	d := naaOf(with)
	if len(d) != 8 || d[0]>>4 != 3 {
		t.Fatalf("NAA=Yes: no NAA 3h designator: % x", with)
	}
	if with[8] != 'I' || !bytes.Equal(t10(with)[4:12], t10(plain)[4:12]) || !bytes.Equal(t10(with)[12:], tg.lun(1).ident().t10()[8:]) {
		t.Fatalf("NAA=Yes changed the T10 designator: % x", t10(with))
	}
	field := make([]byte, 20)
	copy(field, d)
	if ds := tg.lun(1).luDesignators(); len(ds) != 2 || !ds[1].matches(3, 8, field) {
		t.Fatalf("EXTENDED COPY designators of the NAA=Yes LUN: %+v", ds)
	}
	nb, nn := identityTarget(t, config.DialectNetBSD, name, memLUN(0, func(l *config.LUN) { l.NAA = &no }))
	if p := vpdOf(t, nb, nn, 0, 0x83); naaOf(p) != nil || len(p) != 32 {
		t.Fatalf("NetBSD LUN with NAA=No: % x", p)
	}
	// Turned on by a reload: the initiators are told.
	cfg := *tg.cfg
	cfg.LUNs = []*config.LUN{memLUN(0, func(l *config.LUN) { l.NAA = &yes }), memLUN(1, func(l *config.LUN) { l.NAA = &yes })}
	if err := tg.Reconfigure(&cfg); err != nil {
		t.Fatal(err)
	}
	if r := tg.Execute(t.Context(), &Command{Nexus: n, LUN: 0, CDB: cdb(0, 6)}); senseASC(r) != ascInquiryDataChanged {
		t.Fatalf("NAA turned on by reload, no INQUIRY DATA HAS CHANGED: %+v", r)
	}
	if naaOf(vpdOf(t, tg, n, 0, 0x83)) == nil {
		t.Fatal("NAA=Yes by reload not in force")
	}
}
