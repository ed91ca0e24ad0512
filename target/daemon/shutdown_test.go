package daemon

import (
	"encoding/binary"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ietgo/ietd/target/config"
)

// rawLogin logs in to target on c in one Login PDU (operational stage
// straight to full feature phase, no authentication) and returns once
// the target accepted; the session then ignores whatever comes.
func rawLogin(t *testing.T, c net.Conn, target string) {
	t.Helper()
	data := []byte("InitiatorName=iqn.2026-01.example:stubborn\x00TargetName=" + target + "\x00SessionType=Normal\x00")
	for len(data)%4 != 0 {
		data = append(data, 0)
	}
	bhs := make([]byte, 48)
	bhs[0] = 0x40 | 0x03 // immediate Login Request
	bhs[1] = 0x80 | 1<<2 | 3
	binary.BigEndian.PutUint32(bhs[4:], uint32(len(data))) // byte 4 (AHS) stays 0
	copy(bhs[8:], []byte{0x80, 0, 0, 0, 0, 1})             // ISID
	binary.BigEndian.PutUint32(bhs[16:], 1)                // ITT
	binary.BigEndian.PutUint32(bhs[24:], 1)                // CmdSN
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(append(bhs, data...)); err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 48)
	if _, err := io.ReadFull(c, resp); err != nil {
		t.Fatal(err)
	}
	if resp[0]&0x3f != 0x23 || resp[36] != 0 || resp[1]&0x80 == 0 {
		t.Fatalf("login response: opcode %#x status %#x/%#x flags %#x", resp[0], resp[36], resp[37], resp[1])
	}
	n := int(binary.BigEndian.Uint32(resp[4:]) & 0xffffff)
	if _, err := io.ReadFull(c, make([]byte, (n+3)&^3)); err != nil {
		t.Fatal(err)
	}
}

// A second SIGTERM while the shutdown waits for initiators to log out
// ends the wait: the connections are closed and Run returns nil (exit
// status 0). Before, the signal was never read: the daemon waited the
// whole ShutdownTimeout however often it was told to stop.
func TestSecondSignalEndsTheLogoutWait(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	load := func() (*config.Config, config.Diagnostics, error) {
		c := &config.Config{Dialect: config.DialectIET}
		c.Targets = append(c.Targets, config.NewTarget(1, "iqn.2026-01.example:stop"))
		return c, nil, nil
	}
	sigs, done := startRun(t, Options{Load: load, Listeners: []net.Listener{l}, ShutdownTimeout: time.Minute})
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rawLogin(t, c, "iqn.2026-01.example:stop")
	go io.Copy(io.Discard, c) // the logout request is read and ignored

	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a session was still logged in", err)
	case <-time.After(500 * time.Millisecond):
	}
	sigs <- syscall.SIGHUP // no reload while stopping, and no stop either
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) on SIGHUP during shutdown", err)
	case <-time.After(300 * time.Millisecond):
	}
	sigs <- syscall.SIGTERM
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second SIGTERM did not end the wait for logouts")
	}
}
