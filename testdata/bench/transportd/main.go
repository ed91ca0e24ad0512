// Command transportd is a benchmark-only stand-in for bin/ietd: the real
// transport (target/iscsi, target/login, target/pdu) over the thinnest
// possible file-backed SBC device (pread into the transport's DataIn buffer,
// pwrite from DataOut, no allocation per command). It measures what the
// transport costs by itself, before or apart from target/scsi and
// target/backing, and it always serves net/http/pprof when IETD_PPROF is set
// (e.g. IETD_PPROF=127.0.0.1:6060).
//
// It takes ietd's command line (-f -c CONF -a ADDR -p PORT --pid-file F
// --admin-socket S) and the ietd.conf subset bench.py writes (Target, Lun
// Path=..., and session keys). Use it through bench.py with
// BENCH_IETD=transport.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ietgo/ietd/target/config"
	"github.com/ietgo/ietd/target/iscsi"
	"github.com/ietgo/ietd/target/scsi"
	"github.com/sirupsen/logrus"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var conf, addr, pidFile string
	port := 3260
	for i := 0; i < len(args); i++ {
		next := func() string {
			if i+1 < len(args) {
				i++
				return args[i]
			}
			return ""
		}
		switch args[i] {
		case "-c":
			conf = next()
		case "-a":
			addr = next()
		case "-p":
			port, _ = strconv.Atoi(next())
		case "--pid-file":
			pidFile = next()
		case "--admin-socket", "-d":
			next()
		}
	}
	lg := logrus.New()
	lg.SetLevel(logrus.WarnLevel)
	cfg, err := parseConf(conf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "transportd:", err)
		return 1
	}
	if a := os.Getenv("IETD_PPROF"); a != "" {
		go func() { fmt.Fprintln(os.Stderr, "transportd: pprof:", http.ListenAndServe(a, nil)) }()
	}
	srv, err := iscsi.NewServer(iscsi.Options{Config: cfg, Log: logrus.NewEntry(lg), Port: port,
		NewDevice: func(t *config.Target, _ scsi.Options) (iscsi.Device, error) { return openDevice(t) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "transportd:", err)
		return 1
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "transportd:", err)
		return 1
	}
	if pidFile != "" {
		_ = os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		os.Exit(0)
	}()
	err = srv.Serve(l)
	if errors.Is(err, iscsi.ErrServerClosed) {
		select {}
	}
	fmt.Fprintln(os.Stderr, "transportd:", err)
	return 1
}

func parseConf(path string) (*config.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg := &config.Config{Dialect: config.DialectIET, Source: path}
	var cur *config.Target
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 2 || strings.HasPrefix(fl[0], "#") {
			continue
		}
		key, val := strings.ToLower(fl[0]), fl[1]
		if key == "target" {
			cur = config.NewTarget(len(cfg.Targets)+1, val)
			cfg.Targets = append(cfg.Targets, cur)
			continue
		}
		if cur == nil {
			continue
		}
		n, _ := strconv.Atoi(val)
		p := &cur.Params
		switch key {
		case "lun":
			lun := &config.LUN{Number: uint64(n), Type: "fileio", IOMode: "wb", Store: &config.Store{}}
			if len(fl) > 2 {
				for _, kv := range strings.Split(fl[2], ",") {
					k, v, _ := strings.Cut(kv, "=")
					switch strings.ToLower(k) {
					case "path":
						lun.Store.Path = v
					case "iomode":
						lun.IOMode = v
					}
				}
			}
			cur.LUNs = append(cur.LUNs, lun)
		case "queuedcommands":
			cur.QueuedCommands = n
		case "maxrecvdatasegmentlength":
			p.MaxRecvDataSegmentLength = n
		case "maxxmitdatasegmentlength":
			p.MaxXmitDataSegmentLength = n
		case "maxburstlength":
			p.MaxBurstLength = n
		case "firstburstlength":
			p.FirstBurstLength = n
		case "headerdigest":
			p.HeaderDigest = strings.Split(val, ",")
		case "datadigest":
			p.DataDigest = strings.Split(val, ",")
		case "immediatedata":
			p.ImmediateData = strings.EqualFold(val, "yes")
		case "initialr2t":
			p.InitialR2T = strings.EqualFold(val, "yes")
		}
	}
	return cfg, sc.Err()
}

type lunFile struct {
	f      *os.File
	blocks uint64
	sync   bool
}

type device struct {
	mu   sync.RWMutex
	luns map[uint64]*lunFile
}

func openDevice(t *config.Target) (*device, error) {
	d := &device{}
	return d, d.Reconfigure(t)
}

func (d *device) Reconfigure(t *config.Target) error {
	luns := map[uint64]*lunFile{}
	for _, l := range t.LUNs {
		f, err := os.OpenFile(l.Store.Path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		luns[l.Number] = &lunFile{f: f, blocks: uint64(st.Size()) / 512, sync: l.IOMode == "wt"}
	}
	d.mu.Lock()
	old := d.luns
	d.luns = luns
	d.mu.Unlock()
	for _, l := range old {
		l.f.Close()
	}
	return nil
}

func (d *device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.luns {
		l.f.Close()
	}
	return nil
}

func (d *device) TaskManagement(scsi.TMF, uint64, *scsi.Nexus, []*scsi.Nexus) byte { return 0 }
func (d *device) NexusAttach(*scsi.Nexus)                                          {}
func (d *device) NexusDetach(*scsi.Nexus)                                          {}

// Preallocated sense data (never mutated).
var (
	senseInvalidOpcode = fixedSense(0x05, 0x20, 0)
	senseInvalidField  = fixedSense(0x05, 0x24, 0)
	senseLBARange      = fixedSense(0x05, 0x21, 0)
	senseNoLUN         = fixedSense(0x05, 0x25, 0)
	senseReadError     = fixedSense(0x03, 0x11, 0)
	senseWriteError    = fixedSense(0x03, 0x0c, 0)
)

func fixedSense(key, asc, ascq byte) []byte {
	return []byte{0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0}
}

func check(s []byte) scsi.Result {
	return scsi.Result{Status: scsi.StatusCheckCondition, Sense: s, XferLen: -1}
}

// reply copies a small response into the transport's buffer when it fits.
func reply(cmd *scsi.Command, b []byte, alloc int) scsi.Result {
	n := min(len(b), alloc)
	out := cmd.DataIn
	if cap(out) < n {
		out = make([]byte, n)
	}
	out = out[:n]
	copy(out, b)
	return scsi.Result{Data: out, XferLen: n}
}

func (d *device) Execute(_ context.Context, cmd *scsi.Command) scsi.Result {
	cdb := cmd.CDB
	if len(cdb) < 6 {
		return check(senseInvalidOpcode)
	}
	d.mu.RLock()
	l := d.luns[cmd.LUN]
	d.mu.RUnlock()
	switch cdb[0] {
	case 0x12: // INQUIRY
		alloc := int(binary.BigEndian.Uint16(cdb[3:]))
		if cdb[1]&1 != 0 {
			if cdb[2] != 0 {
				return check(senseInvalidField)
			}
			return reply(cmd, []byte{0, 0, 0, 1, 0}, alloc)
		}
		b := make([]byte, 36)
		b[2], b[3], b[4] = 5, 2, 31
		if l == nil {
			b[0] = 0x7f
		}
		copy(b[8:], "IETGO   BENCH-TRANSPORT 0001")
		return reply(cmd, b, alloc)
	case 0xa0: // REPORT LUNS
		d.mu.RLock()
		b := make([]byte, 8, 8+8*len(d.luns))
		for n := range d.luns {
			var e [8]byte
			e[1] = byte(n)
			b = append(b, e[:]...)
		}
		d.mu.RUnlock()
		binary.BigEndian.PutUint32(b, uint32(len(b)-8))
		return reply(cmd, b, int(binary.BigEndian.Uint32(cdb[6:])))
	}
	if l == nil {
		return check(senseNoLUN)
	}
	switch cdb[0] {
	case 0x00: // TEST UNIT READY
		return scsi.Result{XferLen: -1}
	case 0x1a: // MODE SENSE(6): header only, WP=0, no block descriptors
		return reply(cmd, []byte{3, 0, 0, 0}, int(cdb[4]))
	case 0x5a: // MODE SENSE(10)
		return reply(cmd, []byte{0, 6, 0, 0, 0, 0, 0, 0}, int(binary.BigEndian.Uint16(cdb[7:])))
	case 0x35, 0x91: // SYNCHRONIZE CACHE
		if err := l.f.Sync(); err != nil {
			return check(senseWriteError)
		}
		return scsi.Result{XferLen: -1}
	case 0x25: // READ CAPACITY(10)
		b := make([]byte, 8)
		last := min(l.blocks-1, 0xffffffff)
		binary.BigEndian.PutUint32(b, uint32(last))
		binary.BigEndian.PutUint32(b[4:], 512)
		return reply(cmd, b, 8)
	case 0x9e: // READ CAPACITY(16)
		if cdb[1]&0x1f != 0x10 {
			return check(senseInvalidOpcode)
		}
		b := make([]byte, 32)
		binary.BigEndian.PutUint64(b, l.blocks-1)
		binary.BigEndian.PutUint32(b[8:], 512)
		return reply(cmd, b, int(binary.BigEndian.Uint32(cdb[10:])))
	case 0x28, 0x2a, 0x88, 0x8a:
		var lba, n uint64
		if cdb[0] == 0x28 || cdb[0] == 0x2a {
			lba, n = uint64(binary.BigEndian.Uint32(cdb[2:])), uint64(binary.BigEndian.Uint16(cdb[7:]))
		} else {
			if len(cdb) < 16 {
				return check(senseInvalidOpcode)
			}
			lba, n = binary.BigEndian.Uint64(cdb[2:]), uint64(binary.BigEndian.Uint32(cdb[10:]))
		}
		if lba+n > l.blocks || lba+n < lba || n > 1<<16 {
			return check(senseLBARange)
		}
		size := int(n * 512)
		if cdb[0] == 0x28 || cdb[0] == 0x88 {
			b := cmd.DataIn
			if cap(b) < size {
				b = make([]byte, size)
			}
			b = b[:size]
			if _, err := l.f.ReadAt(b, int64(lba*512)); err != nil {
				return check(senseReadError)
			}
			return scsi.Result{Data: b, XferLen: size}
		}
		if len(cmd.DataOut) < size {
			return check(senseInvalidField)
		}
		if _, err := l.f.WriteAt(cmd.DataOut[:size], int64(lba*512)); err != nil {
			return check(senseWriteError)
		}
		if l.sync || cdb[1]&0x08 != 0 {
			if err := l.f.Sync(); err != nil {
				return check(senseWriteError)
			}
		}
		return scsi.Result{XferLen: size}
	}
	return check(senseInvalidOpcode)
}
