package iscsi

import (
	"context"
	"errors"
	"net"

	"github.com/ietgo/ietd/target/config"
	"github.com/sirupsen/logrus"
)

// Options configure a Server.
type Options struct {
	Config *config.Config
	Log    *logrus.Entry
	// StateDir is passed to the SCSI layer (persistent reservations).
	StateDir string
	// Port is the TCP port advertised in SendTargets when a listener's own
	// port cannot be used (default 3260).
	Port int
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("iscsi: server closed")

// Server is the iSCSI target engine: it accepts connections on listeners,
// runs logins, discovery and sessions, and drives one scsi.Target per
// configured target.
//
// STUB: the transport owner replaces this file.
type Server struct{}

// NewServer builds the engine (opens backing stores) from opts.Config.
func NewServer(opts Options) (*Server, error) { return nil, errors.New("iscsi: not implemented") }

// Serve accepts connections on l until Shutdown; it may be called for
// several listeners concurrently.
func (s *Server) Serve(l net.Listener) error { return ErrServerClosed }

// Shutdown stops accepting, asks initiators to log out (async message),
// waits for sessions to end until ctx is done, then closes everything.
func (s *Server) Shutdown(ctx context.Context) error { return nil }

// Reload reconciles the running engine with cfg: new targets/LUNs/accounts/
// ACLs take effect, removed ones are taken away (their sessions closed),
// sessions on unchanged targets stay up and get unit attentions for LUN
// changes. On error the old config stays in force.
func (s *Server) Reload(cfg *config.Config) error { return errors.New("iscsi: not implemented") }

// Config returns the config currently in force (do not modify it; copy,
// change and Reload).
func (s *Server) Config() *config.Config { return nil }

// SessionInfo describes one session for listings (ietadm, /proc/net/iet/session).
type SessionInfo struct {
	TID           int
	TargetName    string
	SID           uint64 // IET-style: ISID<<16 | TSIH
	InitiatorName string
	Conns         []ConnInfo
	// Params are the negotiated session parameters (key=value).
	Params map[string]string
}

// ConnInfo describes one connection of a session.
type ConnInfo struct {
	CID          uint16
	IP           string // initiator address
	State        string // "active", "closing"
	HeaderDigest string // "CRC32C" or "NONE"
	DataDigest   string
}

// Sessions lists the live normal sessions.
func (s *Server) Sessions() []SessionInfo { return nil }

// CloseSession ends a session (ietadm --op delete --tid --sid).
func (s *Server) CloseSession(tid int, sid uint64) error { return errors.New("iscsi: not implemented") }

// CloseConnection ends one connection (ietadm --op delete --tid --sid --cid).
func (s *Server) CloseConnection(tid int, sid uint64, cid uint16) error {
	return errors.New("iscsi: not implemented")
}
