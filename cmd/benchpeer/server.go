package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a side under test: the fresh webconfd this program started,
// or the peer given by its address and pid.
type server struct {
	name    string // "webconf" or "peer"
	pid     int
	sip     string // UDP host:port
	xmlrpc  string // http://host:port/ ("" = none)
	metrics string // Prometheus URL ("" = none)

	cmd  *exec.Cmd // nil for the peer
	done chan struct{}
	mu   sync.Mutex
	tail []string
}

// webconfConfig is the config of every webconfd this program starts: the
// one `make bench` writes, with the XML-RPC port on (port 0), master
// password set (roomCreate on the peer and here alike), no INVITE rate
// or call limit, and an RTP range for 2,000 callers away from the peer's
// (SEMS's sems-peer uses 30000-39999).
const webconfConfig = `[server]
sip_listen=127.0.0.1:0
rtp_low_port=40000
rtp_high_port=49998
data_dir=%s
log_level=info
[webconference]
direct_room_re=000777.*
direct_room_strip=6
master_password=masterpw
[xmlrpc]
run_server=yes
server_ip=127.0.0.1
xmlrpc_port=0
max_conns_per_source=0
[http]
listen=127.0.0.1:0
[limits]
invite_rate=0
max_calls=0
max_pending_invites=0
`

var (
	sipLog    = regexp.MustCompile(`msg="sip listening".*\budp=(\S+)`)
	xmlrpcLog = regexp.MustCompile(`msg="xmlrpc listening".*\baddr=(\S+)`)
	httpLog   = regexp.MustCompile(`msg="http listening".*\baddr=(\S+)`)
	runLog    = regexp.MustCompile(`msg="webconfd running"`)
)

// startWebconfd writes the config into a fresh directory under dir,
// starts bin and waits until it logs that it runs.
func startWebconfd(ctx context.Context, bin, dir string) (*server, error) {
	wd, err := os.MkdirTemp(dir, "webconfd-")
	if err != nil {
		return nil, fmt.Errorf("webconfd dir: %w", err)
	}
	data := filepath.Join(wd, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("webconfd data dir: %w", err)
	}
	cfg := filepath.Join(wd, "webconfd.conf")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, webconfConfig, data), 0o600); err != nil {
		return nil, fmt.Errorf("webconfd config: %w", err)
	}
	cmd := exec.Command(bin, "-config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("webconfd stderr: %w", err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{name: "webconf", pid: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		running := false
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.tail = append(s.tail, line)
			if len(s.tail) > 20 {
				s.tail = s.tail[1:]
			}
			if m := sipLog.FindStringSubmatch(line); m != nil {
				s.sip = strings.Trim(m[1], `"`)
			}
			if m := xmlrpcLog.FindStringSubmatch(line); m != nil {
				s.xmlrpc = "http://" + strings.Trim(m[1], `"`) + "/"
			}
			if m := httpLog.FindStringSubmatch(line); m != nil {
				s.metrics = "http://" + strings.Trim(m[1], `"`) + "/metrics"
			}
			s.mu.Unlock()
			if !running && runLog.MatchString(line) {
				running = true
				close(ready)
			}
		}
		cmd.Wait() //nolint:errcheck // the exit is seen through done
		close(s.done)
	}()
	select {
	case <-ready:
		s.mu.Lock()
		ok := s.sip != "" && s.xmlrpc != "" && s.metrics != ""
		s.mu.Unlock()
		if !ok {
			s.stop()
			return nil, fmt.Errorf("webconfd did not log its SIP, XML-RPC and HTTP addresses: %s", s.lastLines())
		}
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("webconfd exited at start: %s", s.lastLines())
	case <-time.After(15 * time.Second):
		s.stop()
		return nil, fmt.Errorf("webconfd did not start within 15 s: %s", s.lastLines())
	case <-ctx.Done():
		s.stop()
		return nil, fmt.Errorf("waiting for webconfd: %w", ctx.Err())
	}
}

func (s *server) lastLines() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

// stop ends a webconfd this program started (SIGTERM, SIGKILL after 10 s);
// the peer is left alone.
func (s *server) stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill() //nolint:errcheck // last resort
		<-s.done
	}
}

// alive reports whether the side's process still runs.
func (s *server) alive() bool {
	if s.cmd != nil {
		select {
		case <-s.done:
			return false
		default:
			return true
		}
	}
	return syscall.Kill(s.pid, 0) == nil
}
