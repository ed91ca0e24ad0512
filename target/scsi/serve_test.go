package scsi_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/iscsi"
	"github.com/sirupsen/logrus"
)

const serveIQN = "iqn.2026-01.org.ietgo.scsi:test"

// startServer serves a target with two sparse file LUNs (0: write-back,
// removable; 1: write-through) on 127.0.0.1 and returns its address.
func startServer(t testing.TB, dir string, size int64) string {
	t.Helper()
	tg := config.NewTarget(1, serveIQN)
	tg.Params.MaxRecvDataSegmentLength = 262144
	tg.Params.MaxBurstLength = 1 << 20
	tg.QueuedCommands = 128
	for i, mode := range []string{"wb", "wt"} {
		p := filepath.Join(dir, "lun"+strconv.Itoa(i)+".img")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(size)
		f.Close()
		tg.LUNs = append(tg.LUNs, &config.LUN{Number: uint64(i), Type: "fileio", IOMode: mode,
			Removable: i == 0, Store: &config.Store{Kind: config.StoreFile, Path: p}})
	}
	cfg := &config.Config{Dialect: config.DialectIET, Targets: []*config.Target{tg}}
	lg := logrus.New()
	lg.SetLevel(logrus.WarnLevel)
	if os.Getenv("SCSI_DEBUG") != "" {
		lg.SetLevel(logrus.DebugLevel)
	}
	srv, err := iscsi.NewServer(iscsi.Options{Config: cfg, Log: logrus.NewEntry(lg), StateDir: filepath.Join(dir, "state")})
	if err != nil {
		t.Fatal(err)
	}
	addr := os.Getenv("SCSI_SERVE")
	if addr == "" || addr == "1" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return l.Addr().String()
}

// TestServeForConformance serves until killed when SCSI_SERVE is set
// (e.g. SCSI_SERVE=127.0.0.1:3270), for ../shared/tools/conformance.
func TestServeForConformance(t *testing.T) {
	if os.Getenv("SCSI_SERVE") == "" {
		t.Skip("set SCSI_SERVE=127.0.0.1:PORT to serve a conformance target")
	}
	addr := startServer(t, t.TempDir(), 256<<20)
	t.Logf("serving iscsi://%s/%s/0", addr, serveIQN)
	secs, _ := strconv.Atoi(os.Getenv("SCSI_SERVE_SECONDS"))
	if secs <= 0 {
		secs = 1800
	}
	time.Sleep(time.Duration(secs) * time.Second)
}

// TestLibiscsiSuites runs a selection of libiscsi's conformance suites
// against the device over the real transport.
func TestLibiscsiSuites(t *testing.T) {
	tool, err := exec.LookPath("iscsi-test-cu")
	if err != nil {
		t.Skip("iscsi-test-cu not installed (apt-get install libiscsi-bin)")
	}
	addr := startServer(t, t.TempDir(), 64<<20)
	url := "iscsi://" + addr + "/" + serveIQN + "/0"
	// Whole suites that pass on their own; PreventAllow.2ITNexuses and
	// Reserve6.LUNReset are left out: they expect no unit attention on a
	// second path after a LUN reset, which SAM-5 (and libiscsi's own
	// MultipathIO.Reset) require.
	suites := []string{"Inquiry", "ReadCapacity16", "Read10", "Write16", "Verify16", "WriteSame16",
		"Unmap", "CompareAndWrite", "ProutReserve", "ReportSupportedOpcodes",
		"PreventAllow.Simple", "PreventAllow.Eject", "Reserve6.Simple", "Reserve6.2Initiators", "MultipathIO",
		// Last: it leaves 'A' blocks that MultipathIO.CompareAndWrite
		// (which checks one block past what it initialises) trips on.
		"ExtendedCopy"}
	re := regexp.MustCompile(`(?m)^\s*Test: (\S+) \.\.\.(.*)$`)
	for _, s := range suites {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, _ := exec.CommandContext(ctx, tool, "-d", "-S", "-t", "ALL."+s, url, url).CombinedOutput()
		cancel()
		text := string(out)
		if !strings.Contains(text, "Test:") {
			t.Errorf("suite %s did not run:\n%s", s, text)
			continue
		}
		if strings.Contains(text, "FAILED") {
			t.Errorf("suite %s failures:\n%s", s, text)
		}
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			if strings.Contains(m[2], "SKIPPED") {
				t.Logf("%s skipped", m[1])
			}
		}
	}
}
