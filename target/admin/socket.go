package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
)

// maxRequest bounds one request (IET's request struct is ~2 KiB).
const maxRequest = 64 << 10

// Handler answers requests.
type Handler interface {
	Handle(ctx context.Context, req *Request) *Response
}

// ErrSocketInUse: a daemon answers on the admin socket's path.
var ErrSocketInUse = errors.New("another daemon is already running")

// Listen creates the admin socket at path, readable and writable by its
// owner only. It refuses when another daemon answers on path (a second
// ietd on the same host) and removes a stale socket file otherwise.
//
// Whoever can write to the socket's directory can replace the socket
// (and have root's ietadm talk to them) or swap it for a symbolic link
// between its creation and the chmod and chown that follow (making the
// daemon change the mode or owner of the file the link names). So the
// directory must belong to root or the daemon's user and be writable
// by no one else unless it is sticky (/tmp); a file, a symbolic link
// or a directory at path is refused, never followed or removed.
func Listen(path string) (*net.UnixListener, error) {
	if err := checkSocketDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(path); err == nil {
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			return nil, fmt.Errorf("admin socket %s: is a symbolic link (not followed: remove it, or give --admin-socket another path)", path)
		case fi.Mode()&os.ModeSocket == 0:
			return nil, fmt.Errorf("admin socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket %s: %w", path, ErrSocketInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin socket: remove stale %s: %w", path, err)
		}
	}
	old := syscall.Umask(0o177)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	// The umask made it 0600; the chmod is for systems whose bind ignores
	// it, on the socket just made (Lstat: not through a link put there).
	fi, err := os.Lstat(path)
	if err == nil && fi.Mode()&os.ModeSocket == 0 {
		err = errors.New("replaced by something that is not a socket")
	}
	if err == nil {
		err = os.Chmod(path, 0o600)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket %s: %w", path, err)
	}
	return l, nil
}

// checkSocketDir refuses a directory where a user other than root and
// the daemon's could replace the admin socket.
func checkSocketDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("admin socket directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("admin socket directory %s: not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if uid := int(st.Uid); uid != 0 && uid != os.Geteuid() {
			return fmt.Errorf("admin socket directory %s belongs to uid %d, who could replace the socket: use a directory of root's", dir, uid)
		}
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("admin socket directory %s is writable by other users (mode %v, not sticky), who could replace the socket: use a directory only root can write to", dir, fi.Mode().Perm())
	}
	return nil
}

// Server serves the admin protocol.
type Server struct {
	Handler Handler
	Log     *logrus.Entry
	// AllowUID is, besides root, the uid allowed to talk to the daemon
	// (the daemon's own uid after -u). Negative = root only.
	AllowUID int

	mu     sync.Mutex
	l      net.Listener
	closed bool
	wg     sync.WaitGroup
}

// Serve accepts connections until Close.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.l = l
	s.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(c)
		}()
	}
}

// Close stops accepting and waits for requests in progress.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	l := s.l
	s.mu.Unlock()
	var err error
	if l != nil {
		err = l.Close()
	}
	s.wg.Wait()
	return err
}

func (s *Server) serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	enc := json.NewEncoder(c)
	var req Request
	dec := json.NewDecoder(bufio.NewReader(ioLimit(c, maxRequest)))
	if uid, ok := s.peerAllowed(c); !ok {
		if s.Log != nil {
			s.Log.WithField("uid", uid).Warn("ietadm connection refused: only root and the daemon's user may manage it")
		}
		// Take the request off the socket first (unparsed content is
		// ignored): closing with it unread would reset the connection
		// and the client would see a broken pipe instead of EPERM.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		var ignored json.RawMessage
		dec.Decode(&ignored)
		enc.Encode(&Response{Errno: int(syscall.EPERM), Message: "permission denied"})
		return
	}
	if err := dec.Decode(&req); err != nil {
		enc.Encode(&Response{Errno: int(syscall.EINVAL), Message: "bad request: " + err.Error()})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	resp := s.Handler.Handle(ctx, &req)
	if resp.Errno != 0 && s.Log != nil {
		s.Log.WithFields(logrus.Fields{"op": req.Op, "errno": resp.Errno}).Info("ietadm request failed: " + resp.Message)
	}
	if s.Log != nil {
		for _, w := range resp.Warnings {
			s.Log.WithField("op", req.Op).Warn("ietadm: " + w)
		}
	}
	enc.Encode(resp)
}

// peerAllowed checks the peer's credentials (peerUID: SO_PEERCRED on
// Linux): root and
// AllowUID may talk to the daemon. uid is -1 when unknown.
func (s *Server) peerAllowed(c net.Conn) (uid int, ok bool) {
	uc, isUnix := c.(*net.UnixConn)
	if !isUnix {
		return -1, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return -1, false
	}
	var cerr error
	uid = -1
	raw.Control(func(fd uintptr) { uid, cerr = peerUID(fd) })
	if cerr != nil || uid < 0 {
		return -1, false
	}
	return uid, uid == 0 || s.AllowUID >= 0 && uid == s.AllowUID
}

type limitedReader struct {
	c net.Conn
	n int
}

func ioLimit(c net.Conn, n int) *limitedReader { return &limitedReader{c: c, n: n} }

func (r *limitedReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, fmt.Errorf("request larger than %d bytes", maxRequest)
	}
	if len(p) > r.n {
		p = p[:r.n]
	}
	n, err := r.c.Read(p)
	r.n -= n
	return n, err
}

// Do sends one request to the daemon at path and returns its answer.
func Do(ctx context.Context, path string, req *Request) (*Response, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return nil, err
	}
	var resp Response
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, fmt.Errorf("reading reply: %w", err)
	}
	return &resp, nil
}
