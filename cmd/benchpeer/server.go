package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"webconf/cmd/internal/daemon"
)

// server is a side under test: the fresh webconfd this program started,
// or the peer given by its address and pid.
type server struct {
	name    string // "webconf" or "peer"
	pid     int
	sip     string // UDP host:port
	xmlrpc  string // http://host:port/ ("" = none)
	metrics string // Prometheus URL ("" = none)

	d *daemon.Daemon // nil for the peer
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
	s := &server{name: "webconf"}
	running := false // onLine runs in one goroutine; after "running" it changes nothing
	d, err := daemon.Start(ctx, bin, cfg, func(line string) bool {
		if running {
			return true
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
		running = runLog.MatchString(line)
		return running
	})
	if err != nil {
		return nil, fmt.Errorf("webconfd: %w", err)
	}
	s.d, s.pid = d, d.Pid()
	if s.sip == "" || s.xmlrpc == "" || s.metrics == "" {
		d.Stop()
		return nil, fmt.Errorf("webconfd did not log its SIP, XML-RPC and HTTP addresses: %s", d.LastLines())
	}
	return s, nil
}

// lastLines is the end of the log of a webconfd this program started.
func (s *server) lastLines() string {
	if s.d == nil {
		return ""
	}
	return s.d.LastLines()
}

// stop ends a webconfd this program started; the peer is left alone.
func (s *server) stop() {
	if s.d != nil {
		s.d.Stop()
	}
}

// alive reports whether the side's process still runs.
func (s *server) alive() bool {
	if s.d != nil {
		return s.d.Alive()
	}
	return syscall.Kill(s.pid, 0) == nil
}
