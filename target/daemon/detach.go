package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childEnv marks the detached child; startDirEnv carries the directory
// the parent was started in (the child runs in /).
const (
	childEnv    = "IETD_DETACHED_CHILD"
	startDirEnv = "IETD_START_DIR"
)

// StartDir is the directory the program was started in: the working
// directory, or in a detached child (which runs in /) its parent's. A
// program whose original resolved relative paths before detaching (as
// NetBSD's iscsi-target, which reads its files before daemon(3)) resolves
// them against it. Call it before Detach.
func StartDir() (string, error) {
	if os.Getenv(childEnv) != "" {
		if d := os.Getenv(startDirEnv); d != "" {
			return d, nil
		}
	}
	return os.Getwd()
}

// IsDetachedChild reports whether this process is the child Detach
// started (until the child's Detach call).
func IsDetachedChild() bool { return os.Getenv(childEnv) != "" }

// readiness is the detached child's end of the pipe to its parent (fd 3),
// open until the child reports readiness or failure.
var readiness struct {
	mu     sync.Mutex
	opened bool
	f      *os.File
}

func readinessPipe() *os.File {
	if !readiness.opened {
		readiness.opened = true
		if IsDetachedChild() {
			readiness.f = os.NewFile(3, "readiness")
		}
	}
	return readiness.f
}

// StartupMessage hands one line (a warning or error of the start-up) to
// the parent of a detached child, which prints it on its stderr before it
// returns: the child's stderr is /dev/null and there may be no syslog.
// It does nothing outside a detached child or once readiness is reported.
func StartupMessage(line string) {
	readiness.mu.Lock()
	defer readiness.mu.Unlock()
	if f := readinessPipe(); f != nil {
		fmt.Fprintf(f, "msg %s\n", strings.ReplaceAll(line, "\n", "; "))
	}
}

// StartFailed hands err to the parent of a detached child that fails
// before it reports readiness through Detach's report function (a command
// line check, a file that cannot be read), so that the parent prints why
// and exits non-zero instead of "daemon exited during start-up": the
// child's stderr is /dev/null. It does nothing outside a detached child
// or once readiness is reported.
func StartFailed(err error) {
	readiness.mu.Lock()
	defer readiness.mu.Unlock()
	f := readinessPipe()
	if f == nil || err == nil {
		return
	}
	fmt.Fprintf(f, "error %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
	f.Close()
	readiness.f = nil
}

// Detach runs the program again in the background (new session, stdio on
// /dev/null) and waits until the child reports readiness or failure,
// copying the child's start-up messages (StartupMessage) to msgs. In
// the parent it returns done=true and the child's error (the caller exits
// with 0 or 1); in the child it returns done=false and a report function
// the child calls exactly once when it is listening (nil) or has failed.
func Detach(timeout time.Duration, msgs io.Writer) (done bool, report func(error), err error) {
	if IsDetachedChild() {
		readiness.mu.Lock()
		readinessPipe()
		readiness.mu.Unlock()
		os.Unsetenv(childEnv)
		os.Unsetenv(startDirEnv)
		return false, func(err error) {
			readiness.mu.Lock()
			defer readiness.mu.Unlock()
			f := readiness.f
			if f == nil {
				return
			}
			if err != nil {
				fmt.Fprintf(f, "error %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
			} else {
				fmt.Fprintln(f, "ok")
			}
			f.Close()
			readiness.f = nil
		}, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return true, nil, fmt.Errorf("detach: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return true, nil, fmt.Errorf("detach: %w", err)
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return true, nil, fmt.Errorf("detach: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if wd, err := os.Getwd(); err == nil {
		cmd.Env = append(cmd.Env, startDirEnv+"="+wd)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return true, nil, fmt.Errorf("detach: %w", err)
	}
	w.Close()
	null.Close()
	line := make(chan string, 1)
	go func() {
		br := bufio.NewReader(r)
		for {
			s, err := br.ReadString('\n')
			if m, ok := strings.CutPrefix(s, "msg "); ok && err == nil {
				if msgs != nil {
					fmt.Fprintln(msgs, strings.TrimRight(m, "\n"))
				}
				continue
			}
			line <- strings.TrimSpace(s)
			return
		}
	}()
	select {
	case s := <-line:
		cmd.Process.Release()
		switch {
		case s == "ok":
			return true, nil, nil
		case strings.HasPrefix(s, "error "):
			return true, nil, errors.New(strings.TrimPrefix(s, "error "))
		}
		return true, nil, errors.New("daemon exited during start-up (see the system log)")
	case <-time.After(timeout):
		cmd.Process.Release()
		return true, nil, fmt.Errorf("daemon not ready after %s (still starting in the background)", timeout)
	}
}
