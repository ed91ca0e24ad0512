package service

import (
	"strings"
	"testing"
)

// FuzzParseLUN feeds `ietadm --op new --lun=N --params P` values to the
// parser the daemon uses for them: it must never panic, and a LUN it
// accepts has the number asked for and a store or a type. Seeds:
// testdata/fuzz/FuzzParseLUN (the Lun lines of testdata/config and the
// --params of the command tests).
func FuzzParseLUN(f *testing.F) {
	f.Add(uint64(0), "Path=/srv/a.img,Type=fileio")
	f.Add(uint64(3), "Path=/dev/sdb,Type=blockio,IOMode=wb,ScsiId=x,ScsiSN=y,BlockSize=4096")
	f.Add(uint64(1), "Type=nullio,Blocks=2048")
	f.Add(uint64(7), "Store=raid1(/a@1+2;raid0(/b;/c)),Create=Yes")
	f.Add(uint64(1<<63), "Path=,Type=,=,,")
	f.Fuzz(func(t *testing.T, number uint64, params string) {
		l, err := ParseLUN(number, params)
		if err != nil {
			if strings.ContainsAny(params, "\n\r") && !strings.Contains(err.Error(), "one line") {
				t.Fatalf("multi-line params refused for another reason: %v", err)
			}
			return
		}
		if l == nil {
			t.Fatal("nil LUN without an error")
		}
		if l.Number != number {
			t.Fatalf("LUN %d asked, %d parsed", number, l.Number)
		}
		if l.Store == nil && l.Type == "" {
			t.Fatalf("LUN %q has neither a store nor a type", params)
		}
	})
}
