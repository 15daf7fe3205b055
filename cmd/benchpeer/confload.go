package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// confloadLoad is one confload load, run against both sides.
type confloadLoad struct {
	name      string // the table's load column
	calls     int
	rooms     int
	perSocket int  // -streams-per-socket, 0 = confload's default
	wcOnly    bool // the peer cannot carry it
}

// confloadReport is the part of confload's -json report the table uses
// (cmd/confload/report.go).
type confloadReport struct {
	Calls         int                `json:"calls"`
	Joined        int                `json:"joined"`
	FailedCalls   int                `json:"failed_calls"`
	WindowS       float64            `json:"window_s"`
	CPUPct        float64            `json:"server_cpu_pct_of_core"`
	CPUusPerPTick float64            `json:"server_cpu_us_per_participant_tick"`
	RSSBytes      int64              `json:"server_rss_bytes"`
	RSSPerPartKB  float64            `json:"server_rss_per_participant_kb"`
	MachineCPUPct float64            `json:"machine_cpu_pct"`
	LossPct       float64            `json:"loss_pct"`
	IAP99Ms       float64            `json:"interarrival_p99_ms"`
	LatencyP50Ms  float64            `json:"latency_p50_ms"`
	LatencyP99Ms  float64            `json:"latency_p99_ms"`
	Interrupted   bool               `json:"interrupted"`
	MetricsDelta  map[string]float64 `json:"metrics_delta"`
	RcvbufErrors  uint64             `json:"udp_rcvbuf_errors"`
	PacketsRecvd  uint64             `json:"packets_received"`
}

func parseConfloadReport(b []byte) (*confloadReport, error) {
	var r confloadReport
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("confload report: %w", err)
	}
	if r.Calls == 0 {
		return nil, fmt.Errorf("confload report: no calls field: %w", ErrReport)
	}
	return &r, nil
}

// confloadArgs are the flags of one confload run against s.
func (o *options) confloadArgs(l confloadLoad, s *server, jsonPath string) []string {
	args := []string{
		"-addr", s.sip, "-pid", strconv.Itoa(s.pid),
		"-calls", strconv.Itoa(l.calls), "-rooms", strconv.Itoa(l.rooms), "-talkers", strconv.Itoa(o.talkers),
		"-rate", strconv.FormatFloat(o.rate, 'g', -1, 64), "-duration", o.duration.String(),
		"-ruri-pattern", "000777%d", "-json", jsonPath,
	}
	if l.perSocket > 0 {
		args = append(args, "-streams-per-socket", strconv.Itoa(l.perSocket))
	}
	if s.metrics != "" {
		args = append(args, "-metrics", s.metrics)
	}
	return args
}

// runConfload runs one confload load against s and reads its report.
func (o *options) runConfload(ctx context.Context, l confloadLoad, s *server) (*confloadReport, error) {
	jsonPath := filepath.Join(o.workDir, fmt.Sprintf("confload-%s-%d-%d.json", s.name, l.calls, time.Now().UnixNano()))
	args := o.confloadArgs(l, s, jsonPath)
	o.logf("%s: confload %s", s.name, quoteArgs(args))
	cmd := exec.CommandContext(ctx, o.confload, args...)
	out, runErr := cmd.CombinedOutput()
	o.verboseOut(out)
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return nil, fmt.Errorf("confload against %s: %w (exit: %v): %s", s.name, err, runErr, tail(out, 800))
	}
	rep, err := parseConfloadReport(b)
	if err != nil {
		return nil, err
	}
	// confload exits 1 when a check failed; none is given here, so a
	// non-zero exit means the run was broken (interrupted, or no calls).
	if runErr != nil {
		o.logf("%s: confload exited: %v; the figures below may be partial", s.name, runErr)
	}
	return rep, nil
}

// confloadRows turns both sides' reports of one load into table rows.
func confloadRows(load string, wc, peer *confloadReport) []row {
	mk := rowMaker(load, wc, peer)
	rows := []row{
		mk("server CPU per participant-tick", "µs", func(r *confloadReport) float64 { return r.CPUusPerPTick }),
		mk("server CPU", "% of a core", func(r *confloadReport) float64 { return r.CPUPct }),
		// A server that falls behind sends less and looks cheaper per
		// participant-tick; per packet delivered it does not.
		mk("server CPU per packet delivered", "µs", func(r *confloadReport) float64 {
			return r.CPUPct / 100 * r.WindowS * 1e6 / float64(r.PacketsRecvd)
		}),
		mk("RSS at the end of the window", "MiB", func(r *confloadReport) float64 { return float64(r.RSSBytes) / (1 << 20) }),
		mk("RSS growth per participant", "KB", func(r *confloadReport) float64 { return r.RSSPerPartKB }),
		mk("calls joined / placed", "", func(r *confloadReport) float64 { return float64(r.Joined) / float64(max(r.Calls, 1)) }),
		mk("packets received per participant-second", "50 when the server keeps up", func(r *confloadReport) float64 {
			return float64(r.PacketsRecvd) / (float64(max(r.Calls, 1)) * max(r.WindowS, 1e-9))
		}),
		mk("packet loss", "%", func(r *confloadReport) float64 { return r.LossPct }),
		mk("inter-arrival p99", "ms", func(r *confloadReport) float64 { return r.IAP99Ms }),
		mk("latency p50", "ms", func(r *confloadReport) float64 { return r.LatencyP50Ms }),
		mk("machine CPU during the window", "% of all CPUs", func(r *confloadReport) float64 { return r.MachineCPUPct }),
	}
	// webconfd's own counter; the peer has none.
	if v, ok := wc.metric("webconf_mixer_tick_overruns_total"); ok {
		rows = append(rows, row{Load: load, Figure: "mixer tick overruns", WC: v, Peer: math.NaN()})
	}
	return rows
}

func (r *confloadReport) metric(name string) (float64, bool) {
	if r == nil || r.MetricsDelta == nil {
		return 0, false
	}
	v, ok := r.MetricsDelta[name]
	return v, ok
}
