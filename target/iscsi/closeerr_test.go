package iscsi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// failingClose is a device whose Close fails as the SCSI layer's does
// when the final sync of a write-back store fails.
type failingClose struct {
	*fakeDisk
	closed int
}

func (f *failingClose) Close() error {
	f.closed++
	return errors.New("LUN 0: sync before close: backing: sync /dev/loop9: input/output error")
}

// TestCloseErrorLogged: the last sync of a target's stores runs when it
// is closed, at shutdown or when a reload removes the target. Its failure
// (writes acknowledged but maybe never on the medium) is logged with the
// target's name; it was dropped without a word.
func TestCloseErrorLogged(t *testing.T) {
	for _, how := range []string{"shutdown", "reload"} {
		t.Run(how, func(t *testing.T) {
			cfg, tg := basicConfig()
			dev := &failingClose{fakeDisk: newFakeDisk(1 << 20)}
			lg, hook := test.NewNullLogger()
			srv, err := NewServer(Options{Config: cfg, Log: logrus.NewEntry(lg),
				NewDevice: func(*config.Target, scsi.Options) (Device, error) { return dev, nil }})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if how == "reload" {
				if err := srv.Reload(&config.Config{Dialect: cfg.Dialect}); err != nil {
					t.Fatal(err)
				}
				if dev.closed != 1 {
					t.Fatalf("the removed target was closed %d times", dev.closed)
				}
			}
			srv.Shutdown(ctx)
			if dev.closed != 1 {
				t.Fatalf("the target was closed %d times", dev.closed)
			}
			var found *logrus.Entry
			for _, e := range hook.AllEntries() {
				if strings.Contains(e.Message, "closing the target's backing stores failed") {
					found = e
				}
			}
			if found == nil {
				t.Fatalf("no log line for the failed close; logged: %v", hook.AllEntries())
			}
			if found.Level != logrus.ErrorLevel || found.Data["target"] != tg.Name ||
				!strings.Contains(found.Data[logrus.ErrorKey].(error).Error(), "input/output error") {
				t.Errorf("log line %s %q %v", found.Level, found.Message, found.Data)
			}
		})
	}
}
