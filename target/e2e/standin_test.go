//go:build linux

package e2e

// A stand-in for cmd/ietd, used only when IETD_E2E_STANDIN=1: the test
// binary re-executes itself as a daemon that runs the real transport
// (target/iscsi, target/login, target/pdu) over a minimal file-backed SBC
// device and a parser for the subset of ietd.conf these tests write. It
// lets the suite exercise the transport before (or without) the real
// daemon, SCSI layer and config parser; the real ietd is always preferred.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
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

const standinEnv = "IETD_E2E_STANDIN_DAEMON"

func init() {
	if os.Getenv(standinEnv) == "1" {
		os.Exit(standinMain(os.Args[1:]))
	}
}

func standinMain(args []string) int {
	var conf, addr, pidFile string
	port := 3260
	debug := 0
	for i := 0; i < len(args); i++ {
		next := func() string {
			i++
			if i < len(args) {
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
		case "-d":
			debug, _ = strconv.Atoi(next())
		case "--pid-file":
			pidFile = next()
		case "--admin-socket":
			next()
		}
	}
	lg := logrus.New()
	lg.SetOutput(os.Stderr)
	lg.SetLevel(logrus.InfoLevel)
	if debug > 0 {
		lg.SetLevel(logrus.DebugLevel)
	}
	cfg, err := standinParse(conf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		return 1
	}
	srv, err := iscsi.NewServer(iscsi.Options{Config: cfg, Log: logrus.NewEntry(lg), Port: port,
		NewDevice: func(t *config.Target, _ scsi.Options) (iscsi.Device, error) { return newFileDevice(t) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		return 1
	}
	l, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "standin:", err)
		return 1
	}
	if pidFile != "" {
		os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			if s == syscall.SIGHUP {
				nc, err := standinParse(conf)
				if err == nil {
					err = srv.Reload(nc)
				}
				if err != nil {
					lg.WithError(err).Warn("reload refused; keeping the old config")
				}
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			srv.Shutdown(ctx)
			cancel()
			os.Exit(0)
		}
	}()
	err = srv.Serve(l)
	if errors.Is(err, iscsi.ErrServerClosed) {
		select {} // the signal goroutine exits
	}
	fmt.Fprintln(os.Stderr, "standin:", err)
	return 1
}

// standinParse reads the ietd.conf subset written by renderConf.
func standinParse(path string) (*config.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg := &config.Config{Dialect: config.DialectIET, Source: path}
	var cur *config.Target
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		key := strings.ToLower(fields[0])
		arg := func(i int) string {
			if i < len(fields) {
				return fields[i]
			}
			return ""
		}
		switch {
		case key == "target":
			cur = config.NewTarget(len(cfg.Targets)+1, arg(1))
			cfg.Targets = append(cfg.Targets, cur)
		case key == "incominguser" || key == "outgoinguser":
			auth := &cfg.Discovery
			if cur != nil {
				auth = &cur.Auth
			}
			a := config.Account{User: arg(1), Secret: arg(2)}
			if key == "incominguser" {
				auth.Incoming = append(auth.Incoming, a)
			} else {
				auth.Outgoing = &a
			}
		case cur == nil:
		case key == "lun":
			n, err := strconv.Atoi(arg(1))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: bad LUN %q", path, ln, arg(1))
			}
			lun := &config.LUN{Number: uint64(n), Type: "fileio", IOMode: "wt", Store: &config.Store{}}
			for _, kv := range strings.Split(arg(2), ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch strings.ToLower(k) {
				case "path":
					lun.Store.Path = v
				case "iomode":
					lun.IOMode = v
				case "type":
					if v != "fileio" && v != "blockio" {
						return nil, fmt.Errorf("%s:%d: bad Type %q", path, ln, v)
					}
				}
			}
			cur.LUNs = append(cur.LUNs, lun)
		case key == "headerdigest":
			cur.Params.HeaderDigest = strings.Split(arg(1), ",")
		case key == "datadigest":
			cur.Params.DataDigest = strings.Split(arg(1), ",")
		case key == "nopinterval":
			cur.NOPInterval, _ = strconv.Atoi(arg(1))
		case key == "noptimeout":
			cur.NOPTimeout, _ = strconv.Atoi(arg(1))
		case key == "queuedcommands":
			cur.QueuedCommands, _ = strconv.Atoi(arg(1))
		case key == "maxsessions":
			cur.MaxSessions, _ = strconv.Atoi(arg(1))
		}
	}
	return cfg, sc.Err()
}

// fileDevice is a minimal SBC device over files.
type fileDevice struct {
	mu   sync.RWMutex
	luns map[uint64]*fileLUN
}

type fileLUN struct {
	f      *os.File
	blocks uint64
	ro     bool
	sync   bool
}

func newFileDevice(t *config.Target) (*fileDevice, error) {
	d := &fileDevice{}
	return d, d.open(t)
}

func (d *fileDevice) open(t *config.Target) error {
	luns := map[uint64]*fileLUN{}
	for _, l := range t.LUNs {
		flag := os.O_RDWR
		if l.ReadOnly() {
			flag = os.O_RDONLY
		}
		f, err := os.OpenFile(l.Store.Path, flag, 0)
		if err != nil {
			return err
		}
		st, _ := f.Stat()
		luns[l.Number] = &fileLUN{f: f, blocks: uint64(st.Size()) / 512, ro: l.ReadOnly(), sync: l.IOMode != "wb"}
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

func sense(key, asc, ascq byte) scsi.Result {
	return scsi.Result{Status: scsi.StatusCheckCondition, XferLen: -1,
		Sense: []byte{0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0}}
}

func (d *fileDevice) Execute(ctx context.Context, cmd *scsi.Command) scsi.Result {
	cdb := cmd.CDB
	d.mu.RLock()
	l := d.luns[cmd.LUN]
	d.mu.RUnlock()
	if cdb[0] == 0xa0 || cdb[0] == 0x12 {
		b := make([]byte, 36)
		b[2], b[3], b[4] = 5, 2, 31
		if l == nil {
			b[0] = 0x7f
		}
		copy(b[8:], "IETGO   E2E-STANDIN     0001")
		n := min(int(binary.BigEndian.Uint16(cdb[3:])), 36)
		if cdb[0] == 0xa0 {
			return sense(0x05, 0x20, 0)
		}
		return scsi.Result{Data: b[:n], XferLen: n}
	}
	if l == nil {
		return sense(0x05, 0x25, 0)
	}
	switch cdb[0] {
	case 0x00:
		return scsi.Result{XferLen: -1}
	case 0x35, 0x91:
		l.f.Sync()
		return scsi.Result{XferLen: -1}
	case 0x9e:
		b := make([]byte, 32)
		binary.BigEndian.PutUint64(b, l.blocks-1)
		binary.BigEndian.PutUint32(b[8:], 512)
		n := min(int(binary.BigEndian.Uint32(cdb[10:])), 32)
		return scsi.Result{Data: b[:n], XferLen: n}
	case 0x88, 0x8a, 0x28, 0x2a:
		var lba, n uint64
		if cdb[0] == 0x28 || cdb[0] == 0x2a {
			lba, n = uint64(binary.BigEndian.Uint32(cdb[2:])), uint64(binary.BigEndian.Uint16(cdb[7:]))
		} else {
			lba, n = binary.BigEndian.Uint64(cdb[2:]), uint64(binary.BigEndian.Uint32(cdb[10:]))
		}
		if lba+n > l.blocks || lba+n < lba {
			return sense(0x05, 0x21, 0)
		}
		if cdb[0] == 0x28 || cdb[0] == 0x88 {
			b := make([]byte, n*512)
			if _, err := l.f.ReadAt(b, int64(lba*512)); err != nil {
				return sense(0x03, 0x11, 0)
			}
			return scsi.Result{Data: b, XferLen: len(b)}
		}
		if l.ro {
			return sense(0x07, 0x27, 0)
		}
		if uint64(len(cmd.DataOut)) < n*512 {
			return sense(0x05, 0x24, 0)
		}
		if _, err := l.f.WriteAt(cmd.DataOut[:n*512], int64(lba*512)); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return sense(0x07, 0x27, 0x07)
			}
			return sense(0x03, 0x0c, 0)
		}
		if l.sync || cdb[1]&0x08 != 0 {
			l.f.Sync()
		}
		return scsi.Result{XferLen: int(n * 512)}
	}
	return sense(0x05, 0x20, 0)
}

func (d *fileDevice) TaskManagement(scsi.TMF, uint64, *scsi.Nexus, []*scsi.Nexus) byte {
	return 0
}
func (d *fileDevice) NexusAttach(*scsi.Nexus)            {}
func (d *fileDevice) NexusDetach(*scsi.Nexus)            {}
func (d *fileDevice) Reconfigure(t *config.Target) error { return d.open(t) }
func (d *fileDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.luns {
		l.f.Close()
	}
	return nil
}
