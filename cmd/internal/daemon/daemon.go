// Package daemon runs a server (webconfd) for the load and benchmark
// commands: it starts it, passes its log to the caller until the caller
// sees it ready, keeps the log's last lines for error messages and stops
// it.
package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StartTimeout bounds the wait for a server to be ready.
const StartTimeout = 15 * time.Second

// tailLines is how many of the last log lines are kept.
const tailLines = 20

// ErrNotReady means the server exited or timed out before it was ready.
var ErrNotReady = errors.New("server not ready")

// Daemon is a running server.
type Daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	tail []string
}

// Start runs bin -config cfg and hands every line of its log (stderr) to
// onLine, from another goroutine, for as long as the server runs. It
// returns once onLine has returned true (the server is ready); on an
// error the server is stopped.
func Start(ctx context.Context, bin, cfg string, onLine func(line string) (ready bool)) (*Daemon, error) {
	cmd := exec.Command(bin, "-config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("%s stderr: %w", bin, err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	d := &Daemon{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		isReady := false
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.tail = append(d.tail, line)
			if len(d.tail) > tailLines {
				d.tail = d.tail[1:]
			}
			d.mu.Unlock()
			if onLine(line) && !isReady {
				isReady = true
				close(ready)
			}
		}
		cmd.Wait() //nolint:errcheck // the exit is seen through done
		close(d.done)
	}()
	select {
	case <-ready:
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("%s exited at start: %w: %s", bin, ErrNotReady, d.LastLines())
	case <-time.After(StartTimeout):
		d.Stop()
		return nil, fmt.Errorf("%s: %w within %s: %s", bin, ErrNotReady, StartTimeout, d.LastLines())
	case <-ctx.Done():
		d.Stop()
		return nil, fmt.Errorf("waiting for %s: %w", bin, ctx.Err())
	}
}

// Pid is the server's process id.
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Alive reports whether the server still runs.
func (d *Daemon) Alive() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// LastLines is the end of its log.
func (d *Daemon) LastLines() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.tail, "\n")
}

// Stop sends SIGTERM and waits for the exit; SIGKILL after 10 s.
func (d *Daemon) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill() //nolint:errcheck // last resort
		<-d.done
	}
}
