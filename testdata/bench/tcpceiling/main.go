// Command tcpceiling measures what one TCP stream over loopback moves on this
// machine without iSCSI, as the ceiling for the 1M single-session workloads of
// testdata/bench/bench.py (which runs it; it is not part of the product).
//
// Both ends run in this process, one goroutine each (plus one for file I/O),
// and share the machine's cores the way a target and its initiator do:
//
//	stream  the sender writes one hot 1 MiB buffer over and over; the
//	        receiver reads into a 1 MiB buffer (what iperf3 measures)
//	read    the sender first preads each MiB from a file into one of 8
//	        pooled buffers (page cache to buffer, buffer to socket: the two
//	        copies of a target serving reads), the receiver reads
//	write   the receiver pwrites each MiB it read into a file (socket to
//	        buffer, buffer to page cache: a target taking writes)
//
// It prints one JSON object: mode, bytes, seconds, mbps and the process's CPU
// seconds per GB (both ends together).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

const chunk = 1 << 20

type result struct {
	Mode       string  `json:"mode"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MBps       float64 `json:"mbps"`
	CPUSPerGB  float64 `json:"cpu_s_per_gb"`
	FileChunks int     `json:"file_chunks,omitempty"`
}

func main() {
	mode := flag.String("mode", "stream", "stream, read or write")
	file := flag.String("file", "", "file for -mode read/write (created and filled to -size when shorter)")
	size := flag.Int64("size", 100<<20, "file size in bytes (a multiple of 1 MiB)")
	dur := flag.Duration("duration", 5*time.Second, "how long to move data")
	flag.Parse()
	r, err := run(*mode, *file, *size, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcpceiling:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func run(mode, path string, size int64, dur time.Duration) (*result, error) {
	chunks := int(size / chunk)
	var f *os.File
	switch mode {
	case "stream":
	case "read", "write":
		if path == "" || chunks < 1 {
			return nil, errors.New("-mode read and write need -file and -size of at least 1 MiB")
		}
		var err error
		if f, err = openFilled(path, int64(chunks)*chunk); err != nil {
			return nil, err
		}
		defer f.Close()
	default:
		return nil, fmt.Errorf("unknown -mode %q", mode)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	sendErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sendErr <- err
			return
		}
		defer c.Close()
		sendErr <- send(c, mode, f, chunks)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}

	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	start := time.Now()
	n, err := receive(c, mode, f, chunks, start.Add(dur))
	secs := time.Since(start).Seconds()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	c.Close()
	if serr := <-sendErr; serr != nil && !isClosed(serr) {
		return nil, fmt.Errorf("sender: %w", serr)
	}
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	cpu := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e9
	r := &result{Mode: mode, Bytes: n, Seconds: secs, MBps: float64(n) / secs / 1e6,
		CPUSPerGB: cpu / (float64(n) / 1e9)}
	if f != nil {
		r.FileChunks = chunks
	}
	return r, nil
}

// openFilled opens path and makes it size bytes of non-zero data, so that
// reads come from the page cache and not from a hole.
func openFilled(path string, size int64) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i*7 + 1)
	}
	for off := int64(0); off < size; off += chunk {
		if _, err := f.WriteAt(buf, off); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// send writes 1 MiB chunks until the receiver closes the connection.
func send(c net.Conn, mode string, f *os.File, chunks int) error {
	if mode != "read" {
		buf := make([]byte, chunk)
		for {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
	}
	// The file reader runs ahead of the socket writer by up to 8 buffers,
	// as a target's workers run ahead of its connection writer.
	full, empty := make(chan []byte, 8), make(chan []byte, 8)
	for range 8 {
		empty <- make([]byte, chunk)
	}
	done := make(chan struct{})
	defer close(done)
	readErr := make(chan error, 1)
	go func() {
		defer close(full)
		for i := 0; ; i++ {
			var buf []byte
			select {
			case buf = <-empty:
			case <-done:
				return
			}
			if _, err := f.ReadAt(buf, int64(i%chunks)*chunk); err != nil {
				readErr <- err
				return
			}
			full <- buf
		}
	}()
	for buf := range full {
		if _, err := c.Write(buf); err != nil {
			return err
		}
		empty <- buf
	}
	return <-readErr
}

// receive reads 1 MiB chunks until the deadline and returns the bytes it
// read. In -mode write a second goroutine pwrites each chunk while the next
// is read (up to 8 buffers), as a target's workers write what its
// connection reader took in.
func receive(c net.Conn, mode string, f *os.File, chunks int, until time.Time) (int64, error) {
	if mode != "write" {
		buf := make([]byte, chunk)
		var n int64
		for time.Now().Before(until) {
			k, err := io.ReadFull(c, buf)
			n += int64(k)
			if err != nil {
				return n, err
			}
		}
		return n, nil
	}
	full, empty := make(chan []byte, 8), make(chan []byte, 8)
	for range 8 {
		empty <- make([]byte, chunk)
	}
	writeErr := make(chan error, 1)
	go func() {
		var err error
		for i := 0; ; i++ {
			buf, ok := <-full
			if !ok {
				writeErr <- err
				return
			}
			if err == nil {
				_, err = f.WriteAt(buf, int64(i%chunks)*chunk)
			}
			empty <- buf
		}
	}()
	var n int64
	var err error
	for time.Now().Before(until) {
		buf := <-empty
		var k int
		k, err = io.ReadFull(c, buf)
		n += int64(k)
		if err != nil {
			break
		}
		full <- buf
	}
	close(full)
	if werr := <-writeErr; werr != nil && err == nil {
		err = werr
	}
	return n, err
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
