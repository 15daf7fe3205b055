package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"webconf/cmd/internal/daemon"
	"webconf/cmd/internal/procstat"
)

// Sampling of the server process and the machine from /proc (proc(5)).

// ErrProcFormat means a /proc file did not look as proc(5) describes.
var ErrProcFormat = procstat.ErrFormat

// sample is one reading.
type sample struct {
	At      time.Time `json:"-"`
	T       float64   `json:"t"` // seconds since the run started
	CPU     float64   `json:"server_cpu_s"`
	RSS     int64     `json:"server_rss_bytes"`
	Threads int       `json:"server_threads"`
	// The machine's CPU time so far, from /proc/stat's cpu line.
	procstat.Machine `json:"-"`
	// MachineBusyPct is the machine's CPU use since the previous sample.
	MachineBusyPct float64            `json:"machine_busy_pct"`
	RcvbufErrors   uint64             `json:"udp_rcvbuf_errors"`
	InErrors       uint64             `json:"udp_in_errors"`
	Calls          int                `json:"calls_up"`
	Metrics        map[string]float64 `json:"metrics,omitempty"`
}

// udpErrors reads RcvbufErrors and InErrors from the Udp lines of
// /proc/net/snmp (a header line of names, then a line of values).
func udpErrors(b []byte) (rcvbuf, inErrs uint64, err error) {
	var names []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if i >= len(f) {
				break
			}
			v, _ := strconv.ParseUint(f[i], 10, 64)
			switch n {
			case "RcvbufErrors":
				rcvbuf = v
			case "InErrors":
				inErrs = v
			}
		}
		return rcvbuf, inErrs, nil
	}
	return 0, 0, fmt.Errorf("/proc/net/snmp: no Udp lines: %w", ErrProcFormat)
}

// promLine matches one sample of the Prometheus text exposition format:
// name, optional {labels}, value (timestamps and comments are ignored).
var promLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)`)

// parseMetrics keeps every sample line it understands and ignores the rest
// (comments, HELP/TYPE, unparsable values).
func parseMetrics(r io.Reader) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		m := promLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		out[m[1]] = v
	}
	return out
}

// sampler reads everything once per call.
type sampler struct {
	pid     int
	metrics func() string // the -metrics URL, "" for none
	start   time.Time
	http    *http.Client
	prev    *sample
}

func newSampler(pid int, metricsURL func() string, start time.Time) *sampler {
	// One connection, reused by every request (each has its own
	// deadline): a soak counts the server's goroutines and descriptors,
	// and a second idle connection would add to both. Uncompressed: the
	// server's gzip writer would count as its heap (see soak.go).
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second,
		DisableCompression: true}}
	return &sampler{pid: pid, metrics: metricsURL, start: start, http: hc}
}

// take reads one sample; a vanished server process is an error.
func (s *sampler) take(ctx context.Context) (sample, error) {
	sm := sample{At: time.Now()}
	sm.T = sm.At.Sub(s.start).Seconds()
	if s.pid > 0 {
		p, err := procstat.Read(s.pid)
		if err != nil {
			return sm, fmt.Errorf("server: %w", err)
		}
		sm.CPU, sm.Threads, sm.RSS = p.CPU, p.Threads, p.RSS()
	}
	sm.Machine, _ = procstat.ReadMachine()
	if b, err := os.ReadFile("/proc/net/snmp"); err == nil {
		sm.RcvbufErrors, sm.InErrors, _ = udpErrors(b)
	}
	if s.prev != nil && sm.Total > s.prev.Total {
		sm.MachineBusyPct = procstat.BusyPct(s.prev.Machine, sm.Machine)
	}
	if u := s.metrics(); u != "" {
		_ = s.get(ctx, u, 900*time.Millisecond, func(b io.Reader) error {
			sm.Metrics = parseMetrics(io.LimitReader(b, 8<<20))
			return nil
		})
	}
	s.prev = &sm
	return sm, nil
}

// server is a webconfd (or other) process started by confload.
type server struct {
	*daemon.Daemon
	addr string // SIP UDP address from its log
	mu   sync.Mutex
	http string // metrics listener from its log, if any
}

// metricsURL is the /metrics URL the server logged ("http listening"
// addr=...), or "" if it has not logged one (yet).
func (s *server) metricsURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http == "" {
		return ""
	}
	return "http://" + s.http + "/metrics"
}

// listenLog matches webconfd's start-up line, e.g.
// msg="sip listening" udp=127.0.0.1:5060
var listenLog = regexp.MustCompile(`msg="sip listening".*\budp=(\S+)`)

// httpLog matches webconfd's metrics listener line:
// msg="http listening" addr=127.0.0.1:8080
var httpLog = regexp.MustCompile(`msg="http listening".*\baddr=(\S+)`)

// startServer runs bin -config cfg and waits until it logs its SIP address.
func startServer(ctx context.Context, bin, cfg string) (*server, error) {
	s := &server{}
	d, err := daemon.Start(ctx, bin, cfg, func(line string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if m := httpLog.FindStringSubmatch(line); m != nil {
			if ap, err := loopbackAddr(strings.Trim(m[1], `"`)); err == nil {
				s.http = ap.String()
			}
		}
		if m := listenLog.FindStringSubmatch(line); m != nil && s.addr == "" {
			s.addr = strings.Trim(m[1], `"`)
		}
		return s.addr != ""
	})
	if err != nil {
		return nil, fmt.Errorf("server (waiting for %q): %w", "sip listening", err)
	}
	s.Daemon = d
	return s, nil
}
