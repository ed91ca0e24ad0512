package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
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

// Detach runs the program again in the background (new session, stdio on
// /dev/null) and waits until the child reports readiness or failure. In
// the parent it returns done=true and the child's error (the caller exits
// with 0 or 1); in the child it returns done=false and a report function
// the child calls exactly once when it is listening (nil) or has failed.
func Detach(timeout time.Duration) (done bool, report func(error), err error) {
	if os.Getenv(childEnv) != "" {
		f := os.NewFile(3, "readiness")
		os.Unsetenv(childEnv)
		os.Unsetenv(startDirEnv)
		return false, func(err error) {
			if f == nil {
				return
			}
			if err != nil {
				fmt.Fprintf(f, "error %s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
			} else {
				fmt.Fprintln(f, "ok")
			}
			f.Close()
			f = nil
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
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
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
