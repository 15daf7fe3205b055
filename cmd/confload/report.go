package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"webconf/cmd/internal/procstat"
)

// report is the result of a run; it is also the JSON document.
type report struct {
	Mode        string  `json:"mode"`
	Interrupted bool    `json:"interrupted"` // stopped by a signal before the window's end
	Calls       int     `json:"calls"`
	Rooms       int     `json:"rooms"`
	Talkers     int     `json:"talkers_per_room"`
	Sockets     int     `json:"sockets"`
	WindowS     float64 `json:"window_s"`
	Ticks       int64   `json:"ticks"`
	Joined      int     `json:"joined"`
	FailedCalls int     `json:"failed_calls"`
	// Churn: calls that entered during the window (each replacing one
	// that left), how many heard their room, how many failed, and ticks
	// skipped because no call could leave.
	Churn        float64 `json:"churn_per_s,omitempty"`
	ChurnCalls   int     `json:"churn_calls"`
	ChurnJoined  int     `json:"churn_joined"`
	ChurnFailed  int     `json:"churn_failed"`
	ChurnSkipped int     `json:"churn_skipped"`
	// Soak holds the server's resource figures before, under and after
	// the load (-soak).
	Soak *soakResult `json:"soak,omitempty"`
	// FailReasons counts failed calls by their first error.
	FailReasons map[string]int `json:"fail_reasons,omitempty"`

	ServerPID           int     `json:"server_pid,omitempty"`
	ServerCPUPct        float64 `json:"server_cpu_pct_of_core"`
	CPUusPerPartTick    float64 `json:"server_cpu_us_per_participant_tick"`
	ServerRSSBytes      int64   `json:"server_rss_bytes"`
	RSSPerParticipantKB float64 `json:"server_rss_per_participant_kb"`
	ServerThreads       int     `json:"server_threads"`
	MachineCPUPct       float64 `json:"machine_cpu_pct"`
	MachineUserPct      float64 `json:"machine_user_pct"`
	MachineSystemPct    float64 `json:"machine_system_pct"`
	MachineSoftirqPct   float64 `json:"machine_softirq_pct"`
	RcvbufErrors        uint64  `json:"udp_rcvbuf_errors"`

	PacketsExpected  uint64  `json:"packets_expected"`     // participants x ticks
	PacketsSeqExpect uint64  `json:"packets_seq_expected"` // from sequence numbers
	PacketsReceived  uint64  `json:"packets_received"`
	PacketsLost      uint64  `json:"packets_lost"`
	LossPct          float64 `json:"loss_pct"`
	SeqGaps          uint64  `json:"seq_gaps"`
	JitterMeanMs     float64 `json:"jitter_mean_ms"`
	JitterMaxMs      float64 `json:"jitter_max_ms"`
	IAP50Ms          float64 `json:"interarrival_p50_ms"`
	IAP99Ms          float64 `json:"interarrival_p99_ms"`
	IAMaxMs          float64 `json:"interarrival_max_ms"`
	IADevP99Ms       float64 `json:"interarrival_p99_dev_ms"`
	LatencyP50Ms     float64 `json:"latency_p50_ms"`
	LatencyP99Ms     float64 `json:"latency_p99_ms"`
	LatencySamples   int     `json:"latency_samples"`
	MarkerUnmatched  int     `json:"marker_unmatched"`
	JoinP50Ms        float64 `json:"join_p50_ms"`
	JoinP99Ms        float64 `json:"join_p99_ms"`
	AnswerP50Ms      float64 `json:"answer_p50_ms"`
	AnswerP99Ms      float64 `json:"answer_p99_ms"`
	MOS              float64 `json:"mos_estimate"`
	SendErrors       uint64  `json:"send_errors"`
	StrayPackets     uint64  `json:"stray_packets"`

	// MetricsDelta is the change of each -metrics sample over the window.
	MetricsDelta map[string]float64 `json:"metrics_delta,omitempty"`
	Samples      []sample           `json:"samples"`
	Checks       []check            `json:"checks"`
	Passed       int                `json:"passed"`
	Failed       int                `json:"failed"`
}

type check struct {
	Name  string `json:"name"`
	Limit string `json:"limit"`
	Value string `json:"value"`
	Pass  bool   `json:"pass"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report computes the results. It also fails calls whose media the window
// shows to be broken.
func (r *runner) report() *report {
	cfg := r.cfg
	rep := &report{Calls: cfg.calls, Rooms: cfg.rooms, Talkers: cfg.talkers, Sockets: len(r.groups),
		ServerPID: r.smp.pid, Samples: r.samples}
	switch {
	case cfg.keypad:
		rep.Mode = "keypad"
	case cfg.appParam:
		rep.Mode = "app-param"
	default:
		rep.Mode = "ruri " + cfg.ruriPattern
	}
	from, to := r.win.from, r.win.to
	window := to.At.Sub(from.At)
	rep.WindowS = window.Seconds()
	rep.Ticks = int64(window / frameDur)
	for _, g := range r.groups {
		rep.SendErrors += g.sendErrs.Load()
		rep.StrayPackets += g.stray.Load()
	}

	var ia hist
	var lats, joins, answers []time.Duration
	var jsum float64
	var nstreams int
	markers := map[*room][]*call{}
	for _, c := range r.calls {
		if c.isMarker {
			markers[c.room] = append(markers[c.room], c)
		}
	}
	minMarkerWin := 3 * time.Second
	if cfg.churn > 0 {
		minMarkerWin = churnMarkerWin
	}
	for _, c := range r.calls {
		if ticks, grace, heard, until, ok := r.callWindow(c, rep.Ticks); ok {
			r.checkMedia(c, ticks, grace, r.markerOverlap(markers[c.room], heard, until), minMarkerWin)
			rx := &c.st.rx
			nstreams++
			rep.PacketsExpected += uint64(ticks)
			rep.PacketsReceived += rx.received
			exp := rx.expected()
			rep.PacketsSeqExpect += exp
			if exp > rx.received {
				rep.PacketsLost += exp - rx.received
			}
			rep.SeqGaps += rx.gaps
			j := rx.jitter / 8 // timestamp units to ms at 8 kHz
			jsum += j
			rep.JitterMaxMs = max(rep.JitterMaxMs, j)
			ia.merge(&rx.ia)
			lats = append(lats, rx.latencies...)
			rep.MarkerUnmatched += rx.unmatched
		}
		if !c.answerAt.IsZero() {
			answers = append(answers, c.answerAt.Sub(c.inviteAt))
		}
		if c.joinOK {
			joins = append(joins, c.joinDur)
		}
	}
	participants := r.up
	if rep.PacketsSeqExpect > 0 {
		rep.LossPct = 100 * float64(rep.PacketsLost) / float64(rep.PacketsSeqExpect)
	}
	if nstreams > 0 {
		rep.JitterMeanMs = jsum / float64(nstreams)
	}
	rep.IAP50Ms = ms(ia.quantile(0.5))
	rep.IAP99Ms = ms(ia.quantile(0.99))
	rep.IAMaxMs = ms(ia.max)
	rep.IADevP99Ms = ms(ia.devQuantile(frameDur, 0.99))
	lats = sortedDurations(lats)
	rep.LatencySamples = len(lats)
	rep.LatencyP50Ms = ms(percentile(lats, 0.5))
	rep.LatencyP99Ms = ms(percentile(lats, 0.99))
	joins = sortedDurations(joins)
	rep.JoinP50Ms, rep.JoinP99Ms = ms(percentile(joins, 0.5)), ms(percentile(joins, 0.99))
	answers = sortedDurations(answers)
	rep.AnswerP50Ms, rep.AnswerP99Ms = ms(percentile(answers, 0.5)), ms(percentile(answers, 0.99))
	rep.MOS = mosEModel(percentile(lats, 0.5), rep.LossPct)

	if r.smp.pid > 0 && window > 0 {
		cpu := to.CPU - from.CPU
		rep.ServerCPUPct = 100 * cpu / window.Seconds()
		if participants > 0 && rep.Ticks > 0 {
			rep.CPUusPerPartTick = cpu * 1e6 / (float64(participants) * float64(rep.Ticks))
			rep.RSSPerParticipantKB = float64(to.RSS-r.base.RSS) / 1024 / float64(participants)
		}
		rep.ServerRSSBytes, rep.ServerThreads = to.RSS, to.Threads
	}
	if dt := float64(to.Total - from.Total); dt > 0 {
		rep.MachineCPUPct = procstat.BusyPct(from.Machine, to.Machine)
		rep.MachineUserPct = 100 * float64(to.User-from.User) / dt
		rep.MachineSystemPct = 100 * float64(to.System-from.System) / dt
		rep.MachineSoftirqPct = 100 * float64(to.Softirq-from.Softirq) / dt
	}
	rep.RcvbufErrors = to.RcvbufErrors - from.RcvbufErrors
	if from.Metrics != nil && to.Metrics != nil {
		rep.MetricsDelta = map[string]float64{}
		for k, v := range to.Metrics {
			rep.MetricsDelta[k] = v - from.Metrics[k]
		}
	}

	rep.FailReasons = map[string]int{}
	for _, c := range r.calls {
		err := c.failure()
		if err != nil {
			rep.FailedCalls++
			msg := err.Error()
			if len(msg) > 100 {
				msg = msg[:100]
			}
			rep.FailReasons[msg]++
		}
		switch {
		case c.churnIn:
			rep.ChurnCalls++
			if err != nil {
				rep.ChurnFailed++
			} else if c.churnJoined {
				rep.ChurnJoined++
			}
		case err == nil && c.upAtWindow:
			rep.Joined++
		}
	}
	rep.Churn = r.cfg.churn
	rep.ChurnSkipped = r.churn.skipped
	rep.Soak = r.soak
	rep.Checks = r.checks(rep)
	rep.Checks = append(rep.Checks, soakChecks(r.soak, int64(r.cfg.soakHeapSlack))...)
	for _, ch := range rep.Checks {
		if ch.Pass {
			rep.Passed++
		} else {
			rep.Failed++
		}
	}
	return rep
}

// churnGraceTicks are the packets a call that entered during the window
// may miss at its start: the server's first mixed frame follows the
// answer by a tick or two.
const churnGraceTicks = 5

// churnMarkerWin is how long a listener must have shared its room with
// the room's marker member before hearing no marker fails it, with
// -churn: every join and leave plays a 100 ms beep to the whole room,
// during which (as in SEMS) nobody is heard, so in a small room with
// much churn some bursts are lost; five in a row are not.
const churnMarkerWin = 5 * time.Second

// callWindow is the part of the window a call was in its room: all of it
// for a call up when it opened; for a churn-in call, from the moment it
// was ready (answered, or done typing); for a churned-out call, until it
// was picked to leave. It returns the packets that part should bring,
// the shortfall allowed at a late start, and the part [heard, until)
// after the call first heard its room (for the marker check). ok is false
// for a call that was not in its room during the window.
func (r *runner) callWindow(c *call, fullTicks int64) (ticks, grace int64, heard, until time.Time, ok bool) {
	if !c.upAtWindow && !c.churnJoined {
		return 0, 0, time.Time{}, time.Time{}, false
	}
	from, to := r.win.from.At, r.win.to.At
	if !c.upAtWindow {
		if c.readyAt.After(from) {
			from = c.readyAt
		}
		grace = churnGraceTicks
	}
	if c.churned && c.leftAt.Before(to) {
		to = c.leftAt
	}
	if !to.After(from) {
		return 0, 0, time.Time{}, time.Time{}, false
	}
	ticks = int64(to.Sub(from) / frameDur)
	if c.upAtWindow && !c.churned {
		ticks = fullTicks // exactly the report's ticks
	}
	heard = from
	if h := c.st.rx.heardAt.Load(); h != 0 && time.Unix(0, h).After(heard) {
		heard = time.Unix(0, h)
	}
	return ticks, grace, heard, to, true
}

// markerOverlap is how long within [from, to) one of markers, the marker
// members a room has had, was in the room: from the moment it heard the
// room (it is in the mix then) or was ready, until it left or the window
// closed. Without churn that is the room's one marker member, there all
// the window.
func (r *runner) markerOverlap(markers []*call, from, to time.Time) time.Duration {
	var d time.Duration
	for _, m := range markers {
		if !m.upAtWindow && !m.churnJoined {
			continue
		}
		in := m.readyAt
		if h := m.st.rx.heardAt.Load(); h != 0 && time.Unix(0, h).After(in) {
			in = time.Unix(0, h)
		}
		out := r.win.to.At
		if m.churned && m.leftAt.Before(out) {
			out = m.leftAt
		}
		if in.Before(from) {
			in = from
		}
		if out.After(to) {
			out = to
		}
		if out.After(in) {
			d += out.Sub(in)
		}
	}
	return d
}

// checkMedia fails a call whose window shows it was not really in its
// room: too few packets, or a listener that never heard its room's marker
// although it shared minMarkerWin or more with it.
func (r *runner) checkMedia(c *call, ticks, grace int64, markerWin, minMarkerWin time.Duration) {
	rx := &c.st.rx
	if float64(rx.received) < 0.9*float64(ticks)-float64(grace) {
		c.fail(fmt.Errorf("received %d of about %d packets", rx.received, ticks))
	}
	if rx.hasOnset && markerWin >= minMarkerWin && len(rx.latencies) == 0 {
		c.fail(fmt.Errorf("%w: no marker burst detected", ErrNotJoined))
	}
}

// joinTime is the time from the earliest moment the call could hear its
// room to the first frame of room audio it heard (see the package comment).
func (r *runner) joinTime(c *call) (time.Duration, bool) {
	heard := c.st.rx.heardAt.Load()
	if heard == 0 || c.readyAt.IsZero() {
		return 0, false
	}
	var others []time.Time
	r.mu.Lock()
	for _, o := range c.room.members {
		if o != c && (o.freq > 0 || o.isMarker) && isClosed(o.done) {
			// readyAt is written before done is closed.
			others = append(others, o.readyAt)
		}
	}
	r.mu.Unlock()
	base, ok := joinBase(c.readyAt, others)
	if !ok {
		return 0, false
	}
	return max(0, time.Unix(0, heard).Sub(base)), true
}

func (r *runner) checks(rep *report) []check {
	t := r.cfg.th
	var out []check
	add := func(name string, limit, value string, pass bool) {
		if t.set[name] {
			out = append(out, check{Name: name, Limit: limit, Value: value, Pass: pass})
		}
	}
	f := func(v float64, unit string) string { return fmt.Sprintf("%.3g%s", v, unit) }
	d := func(v float64) string { return fmt.Sprintf("%.2fms", v) }
	hasLat := rep.LatencySamples > 0
	add("max-loss", f(t.maxLoss, "%"), f(rep.LossPct, "%"), rep.LossPct <= t.maxLoss && rep.PacketsReceived > 0)
	add("max-jitter", t.maxJitter.String(), d(rep.JitterMeanMs), rep.JitterMeanMs <= ms(t.maxJitter) && rep.PacketsReceived > 0)
	add("max-p99-interarrival-dev", t.maxDev.String(), d(rep.IADevP99Ms), rep.IADevP99Ms <= ms(t.maxDev) && rep.PacketsReceived > 0)
	add("max-latency-p50", t.maxLatP50.String(), d(rep.LatencyP50Ms), hasLat && rep.LatencyP50Ms <= ms(t.maxLatP50))
	add("max-latency-p99", t.maxLatP99.String(), d(rep.LatencyP99Ms), hasLat && rep.LatencyP99Ms <= ms(t.maxLatP99))
	add("max-join-p99", t.maxJoinP99.String(), d(rep.JoinP99Ms), rep.JoinP99Ms <= ms(t.maxJoinP99))
	add("max-cpu-us", f(t.maxCPUus, "µs"), f(rep.CPUusPerPartTick, "µs"), rep.CPUusPerPartTick <= t.maxCPUus && rep.CPUusPerPartTick > 0)
	add("max-rss-per-participant", f(t.maxRSSKB, "KB"), f(rep.RSSPerParticipantKB, "KB"), rep.RSSPerParticipantKB <= t.maxRSSKB)
	add("max-rcvbuf-errors", fmt.Sprint(t.maxRcvbuf), fmt.Sprint(rep.RcvbufErrors), rep.RcvbufErrors <= uint64(max(t.maxRcvbuf, 0)))
	add("max-failed-calls", fmt.Sprint(t.maxFailed), fmt.Sprint(rep.FailedCalls), rep.FailedCalls <= t.maxFailed)
	return out
}

// printReport writes the human-readable table.
func printReport(w io.Writer, rep *report) {
	p := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-14s %s\n", label, fmt.Sprintf(format, a...))
	}
	fmt.Fprintln(w, strings.Repeat("-", 78))
	p("run", "%d calls in %d rooms, %d talkers per room, %s, %d sockets, window %.1f s",
		rep.Calls, rep.Rooms, rep.Talkers, rep.Mode, rep.Sockets, rep.WindowS)
	if rep.Interrupted {
		p("interrupted", "stopped by a signal; the numbers cover a partial run")
	}
	p("calls", "%d joined, %d failed", rep.Joined, rep.FailedCalls)
	if rep.Churn > 0 {
		p("churn", "%g/s: %d calls left and were replaced, %d of them joined, %d failed, %d ticks skipped",
			rep.Churn, rep.ChurnCalls, rep.ChurnJoined, rep.ChurnFailed, rep.ChurnSkipped)
	}
	reasons := slices.Collect(maps.Keys(rep.FailReasons))
	sort.Slice(reasons, func(i, j int) bool { return rep.FailReasons[reasons[i]] > rep.FailReasons[reasons[j]] })
	for i, k := range reasons {
		if i == 5 {
			break
		}
		p("", "%d x %s", rep.FailReasons[k], k)
	}
	if rep.ServerPID > 0 {
		p("server cpu", "%.1f%% of a core, %.2f µs per participant-tick", rep.ServerCPUPct, rep.CPUusPerPartTick)
		p("server memory", "rss %.1f MiB, %.1f KB per participant, %d threads",
			float64(rep.ServerRSSBytes)/(1<<20), rep.RSSPerParticipantKB, rep.ServerThreads)
	}
	p("machine cpu", "%.1f%% (user %.1f, system %.1f, softirq %.1f), udp rcvbuf errors %d",
		rep.MachineCPUPct, rep.MachineUserPct, rep.MachineSystemPct, rep.MachineSoftirqPct, rep.RcvbufErrors)
	p("packets", "expected %d, received %d, lost %d (%.3f%%), sequence gaps %d",
		rep.PacketsExpected, rep.PacketsReceived, rep.PacketsLost, rep.LossPct, rep.SeqGaps)
	p("jitter", "mean %.2f ms, max %.2f ms (RFC 3550)", rep.JitterMeanMs, rep.JitterMaxMs)
	p("inter-arrival", "p50 %.1f ms, p99 %.1f ms, max %.1f ms, p99 deviation from 20 ms %.1f ms",
		rep.IAP50Ms, rep.IAP99Ms, rep.IAMaxMs, rep.IADevP99Ms)
	p("latency", "p50 %.1f ms, p99 %.1f ms (%d marker onsets), MOS estimate %.2f",
		rep.LatencyP50Ms, rep.LatencyP99Ms, rep.LatencySamples, rep.MOS)
	p("join", "p50 %.1f ms, p99 %.1f ms; answer p50 %.1f ms, p99 %.1f ms",
		rep.JoinP50Ms, rep.JoinP99Ms, rep.AnswerP50Ms, rep.AnswerP99Ms)
	if rep.SendErrors > 0 || rep.StrayPackets > 0 {
		p("generator", "%d send errors, %d packets from unknown addresses", rep.SendErrors, rep.StrayPackets)
	}
	if len(rep.MetricsDelta) > 0 {
		keys := slices.Sorted(maps.Keys(rep.MetricsDelta))
		for _, k := range keys {
			// The Go runtime's and process collectors' series are in
			// the JSON; the table shows the server's own counters.
			if strings.HasPrefix(k, "go_") || strings.HasPrefix(k, "process_") {
				continue
			}
			if v := rep.MetricsDelta[k]; v != 0 {
				p("metric", "%s +%g", k, v)
			}
		}
	}
	printSoak(p, rep.Soak)
	for _, c := range rep.Checks {
		verdict := "PASS"
		if !c.Pass {
			verdict = "FAIL"
		}
		p("check", "%s %s: %s (limit %s)", verdict, c.Name, c.Value, c.Limit)
	}
}

func writeJSON(path string, rep *report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
