package config

import "testing"

func TestLeftOut(t *testing.T) {
	var ds Diagnostics
	ds.Warnf(Position{File: "f", Line: 2, Col: 3}, "w")
	if ds.HasErrors() || ds.Err() != nil {
		t.Fatal("a warning is an error")
	}
	ds.LeftOutf(Position{File: "f", Line: 4, Col: 1}, "Lun %d is left out", 1)
	if !ds.HasErrors() || !ds[1].LeftOut || ds[0].LeftOut || ds[1].String() != "f:4:1: error: Lun 1 is left out" {
		t.Fatalf("%+v", ds)
	}
	if got := ds.Err().Error(); got != "f:2:3: warning: w\nf:4:1: error: Lun 1 is left out" {
		t.Fatalf("%q", got)
	}
}
