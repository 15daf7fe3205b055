package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Soak (-soak): the server's resources before the load, at its end and
// after every call has hung up, read from outside the server process so
// that nothing of confload's own counts.
//
// Each reading first asks the server for a heap profile with gc=1
// (net/http/pprof runs a full garbage collection before answering; the
// profile, in text, is discarded), then reads its /metrics, uncompressed
// (a gzipped reply would leave the server's pooled gzip writer, about
// 1 MiB, in the heap it reports):
//
//	go_goroutines                 goroutines
//	go_memstats_heap_alloc_bytes  heap bytes in objects: after that full
//	                              GC, the live heap
//	process_open_fds              file descriptors
//	webconf_calls_active          calls (every SIP dialog the server holds
//	                              is a call, dial-in or dial-out)
//	webconf_rtp_ports_free        RTP ports not in use
//	webconf_invites_pending       INVITE transactions answered and not yet
//	                              acknowledged, the transaction state the
//	                              server itself tracks; sipgo's transaction
//	                              store has no count, so transactions left
//	                              in it show in the heap
//
// The baseline is taken after one warm-up call has joined and hung up
// (first-use allocations of the SIP stack, the mixer and the pools are
// not leaks) and the server's goroutines have stopped falling. After the
// window and the hang-up of every call the figures are read once a second
// until all are within their limits or -soak-settle (default 60 s: RFC
// 3261 Timer J keeps a UDP non-INVITE server transaction 32 s, Timer L an
// accepted INVITE's as long) has passed; the last reading is checked:
//
//	goroutines       <= baseline + 2% + 2
//	heap             <= baseline + 2% + -soak-heap-slack (default 1 MiB)
//	file descriptors <= baseline + 2
//	free RTP ports   == baseline
//	calls            == 0
//	pending INVITEs  == 0

// ErrNoMetric means the server's /metrics lacks a figure the soak needs.
var ErrNoMetric = errors.New("metric missing")

// soakFigures is one reading of the server's resources.
type soakFigures struct {
	T              float64  `json:"t"` // seconds since the run started
	Goroutines     float64  `json:"goroutines"`
	HeapAllocBytes float64  `json:"heap_alloc_bytes"`
	OpenFDs        float64  `json:"open_fds"`
	CallsActive    float64  `json:"calls_active"`
	RTPPortsFree   float64  `json:"rtp_ports_free"`
	InvitesPending float64  `json:"invites_pending"`
	Missing        []string `json:"missing,omitempty"` // metrics the server did not report
}

// soakMetrics maps the Prometheus series to the figures.
var soakMetrics = []struct {
	name string
	dst  func(*soakFigures) *float64
}{
	{"go_goroutines", func(f *soakFigures) *float64 { return &f.Goroutines }},
	{"go_memstats_heap_alloc_bytes", func(f *soakFigures) *float64 { return &f.HeapAllocBytes }},
	{"process_open_fds", func(f *soakFigures) *float64 { return &f.OpenFDs }},
	{"webconf_calls_active", func(f *soakFigures) *float64 { return &f.CallsActive }},
	{"webconf_rtp_ports_free", func(f *soakFigures) *float64 { return &f.RTPPortsFree }},
	{"webconf_invites_pending", func(f *soakFigures) *float64 { return &f.InvitesPending }},
}

func (f soakFigures) has(name string) bool {
	for _, m := range f.Missing {
		if m == name {
			return false
		}
	}
	return true
}

// soakResult is the soak part of the report.
type soakResult struct {
	Baseline soakFigures `json:"baseline"`
	// Load is read at the end of the window, every call still up.
	Load soakFigures `json:"load"`
	End  soakFigures `json:"end"`
	// SettleS is the time from the last hang-up to the End reading.
	SettleS        float64 `json:"settle_s"`
	HeapDiffBytes  int64   `json:"heap_diff_bytes"` // End - Baseline
	HeapSlackBytes int64   `json:"heap_slack_bytes"`
	// WarmupSettleS is how long the baseline waited for the warm-up
	// call's goroutines to end.
	WarmupSettleS float64 `json:"warmup_settle_s"`
}

// waitMetricsURL waits until the metrics URL is known: a server started
// with -server logs its HTTP listener only after its SIP one.
func (s *sampler) waitMetricsURL(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.metrics() == "" {
		select {
		case <-ctx.Done():
			return fmt.Errorf("-soak: no metrics URL within %s (give -metrics, or set [http] listen in the server's config)", timeout)
		case <-tick.C:
		}
	}
	return nil
}

// get fetches u with a deadline of its own and hands the body to read.
func (s *sampler) get(ctx context.Context, u string, timeout time.Duration, read func(io.Reader) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	res, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, res.Status)
	}
	if err := read(res.Body); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	// Drain the rest so the connection is reused: a new one would be a
	// file descriptor and a goroutine more in the server.
	_, _ = io.Copy(io.Discard, res.Body)
	return nil
}

// heapURL is the pprof heap profile beside the metrics URL, with gc=1:
// binary (gzipped protocol buffer) for a file, or else as text (debug=1).
// The text costs the server far less garbage: the binary profile's gzip
// state alone is about 1 MiB, which a reading taken right after it would
// count as heap.
func heapURL(metrics string, binary bool) (string, error) {
	u, err := url.Parse(metrics)
	if err != nil {
		return "", fmt.Errorf("metrics URL %q: %w", metrics, err)
	}
	u.Path, u.RawQuery, u.Fragment = "/debug/pprof/heap", "gc=1&debug=1", ""
	if binary {
		u.RawQuery = "gc=1"
	}
	return u.String(), nil
}

// readMetrics reads the soak's series from /metrics.
func (s *sampler) readMetrics(ctx context.Context) (soakFigures, error) {
	f := soakFigures{T: time.Since(s.start).Seconds()}
	var m map[string]float64
	err := s.get(ctx, s.metrics(), 10*time.Second, func(b io.Reader) error {
		m = parseMetrics(io.LimitReader(b, 8<<20))
		return nil
	})
	if err != nil {
		return f, err
	}
	for _, sm := range soakMetrics {
		if v, ok := m[sm.name]; ok {
			*sm.dst(&f) = v
		} else {
			f.Missing = append(f.Missing, sm.name)
		}
	}
	return f, nil
}

// soakFigures collects the server's garbage, then reads the figures. The
// heap profile is written to profile unless that is "" (before the
// collection that the reading follows, so its garbage does not count).
func (s *sampler) soakFigures(ctx context.Context, profile string) (soakFigures, error) {
	if profile != "" {
		bu, err := heapURL(s.metrics(), true)
		if err != nil {
			return soakFigures{}, err
		}
		err = s.get(ctx, bu, 30*time.Second, func(b io.Reader) error {
			out, err := os.Create(profile)
			if err != nil {
				return err
			}
			_, err = io.Copy(out, b)
			return errors.Join(err, out.Close())
		})
		if err != nil {
			return soakFigures{}, fmt.Errorf("heap profile: %w", err)
		}
	}
	hu, err := heapURL(s.metrics(), false)
	if err != nil {
		return soakFigures{}, err
	}
	err = s.get(ctx, hu, 30*time.Second, func(b io.Reader) error {
		_, err := io.Copy(io.Discard, b)
		return err
	})
	if err != nil {
		return soakFigures{}, fmt.Errorf("forced GC (the server must serve /debug/pprof on loopback): %w", err)
	}
	return s.readMetrics(ctx)
}

func (r *runner) profilePath(stage string) string {
	if r.cfg.soakProfile == "" {
		return ""
	}
	return r.cfg.soakProfile + "." + stage + ".pb.gz"
}

// soakBaseline places the warm-up call, waits for the server to settle
// and takes the baseline.
func (r *runner) soakBaseline(ctx context.Context) error {
	r.soak = &soakResult{HeapSlackBytes: int64(r.cfg.soakHeapSlack)}
	if err := r.warmUp(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	if err := r.waitGoroutinesSettled(ctx, 20*time.Second); err != nil {
		return err
	}
	r.soak.WarmupSettleS = time.Since(t0).Seconds()
	base, err := r.smp.soakFigures(ctx, r.profilePath("base"))
	if err != nil {
		return fmt.Errorf("soak baseline: %w", err)
	}
	if len(base.Missing) > 0 {
		return fmt.Errorf("soak baseline: %w: %s", ErrNoMetric, strings.Join(base.Missing, ", "))
	}
	r.soak.Baseline = base
	fmt.Fprintf(r.out, "soak  baseline: %s\n", base)
	return nil
}

// warmUp places one call into the first room, waits until it is in, and
// hangs it up.
func (r *runner) warmUp(ctx context.Context) error {
	rm := &room{idx: -1, number: r.cfg.roomBase}
	c := &call{idx: -1, room: rm, done: make(chan struct{})}
	c.st = &stream{c: c, g: r.groups[0]}
	rm.members = []*call{c}
	r.setupCall(ctx, c)
	err := c.failure()
	if err == nil {
		err = r.waitHeard(ctx, c, r.cfg.joinTimeout)
	}
	c.st.active.Store(false)
	bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if berr := r.ua.bye(bctx, c); err == nil {
		err = berr
	}
	c.st.g.remove(c.st)
	r.ua.calls.Delete(c.callID)
	if err != nil {
		return fmt.Errorf("soak warm-up call: %w", err)
	}
	return nil
}

// waitGoroutinesSettled polls the server until its call is gone and its
// goroutine count has stopped falling (no new low for a second and a
// half), or the timeout.
func (r *runner) waitGoroutinesSettled(ctx context.Context, timeout time.Duration) error {
	const poll, quiet = 250 * time.Millisecond, 6
	deadline := time.Now().Add(timeout)
	low, still := math.Inf(1), 0
	for time.Now().Before(deadline) {
		f, err := r.smp.readMetrics(ctx)
		if err != nil {
			return fmt.Errorf("soak baseline: %w", err)
		}
		switch {
		case f.CallsActive > 0 || f.InvitesPending > 0:
			still = 0
		case f.Goroutines < low:
			low, still = f.Goroutines, 0
		default:
			still++
		}
		if still >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
	return nil // bounded: the baseline is then taken as it is
}

// soakLoad reads the figures at the end of the window, every call up.
func (r *runner) soakLoad(ctx context.Context) {
	f, err := r.smp.soakFigures(ctx, r.profilePath("load"))
	if err != nil {
		r.log.Error("soak reading under load", "error", err)
		f.Missing = soakMetricNames()
	}
	r.soak.Load = f
	fmt.Fprintf(r.out, "soak  load:     %s\n", f)
}

// soakEnd reads the figures once a second until all are within their
// limits or -soak-settle has passed.
func (r *runner) soakEnd(ctx context.Context) {
	start := time.Now()
	deadline := start.Add(r.cfg.soakSettle)
	slack := int64(r.cfg.soakHeapSlack)
	for {
		f, err := r.smp.soakFigures(context.Background(), r.profilePath("end"))
		if err != nil {
			r.log.Error("soak reading after the load", "error", err)
			f.Missing = soakMetricNames()
		}
		r.soak.End = f
		if soakSettled(r.soak.Baseline, f, slack) || !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(r.out, "soak  t=%5.1fs settling: %s\n", f.T, f)
		time.Sleep(time.Second)
	}
	r.soak.SettleS = time.Since(start).Seconds()
	r.soak.HeapDiffBytes = int64(r.soak.End.HeapAllocBytes - r.soak.Baseline.HeapAllocBytes)
	fmt.Fprintf(r.out, "soak  end:      %s (after %.0f s)\n", r.soak.End, r.soak.SettleS)
}

func soakMetricNames() []string {
	out := make([]string, len(soakMetrics))
	for i, m := range soakMetrics {
		out[i] = m.name
	}
	return out
}

// soakLimits are the highest end figures that pass: 2 % over the
// baseline plus a small constant (a goroutine or two of a timer or
// connection that happens to be alive, allocator and pool granularity).
func soakLimits(base soakFigures, heapSlack int64) (goroutines, heap, fds float64) {
	return base.Goroutines*1.02 + 2, base.HeapAllocBytes*1.02 + float64(heapSlack), base.OpenFDs + 2
}

// soakSettled reports whether end passes every soak check.
func soakSettled(base, end soakFigures, heapSlack int64) bool {
	for _, c := range soakChecks(&soakResult{Baseline: base, End: end, HeapSlackBytes: heapSlack}, heapSlack) {
		if !c.Pass {
			return false
		}
	}
	return true
}

// soakChecks compares the end figures with the baseline.
func soakChecks(s *soakResult, heapSlack int64) []check {
	if s == nil {
		return nil
	}
	base, end := s.Baseline, s.End
	gl, hl, fl := soakLimits(base, heapSlack)
	var out []check
	add := func(name, metric, limit string, value func() string, pass func() bool) {
		c := check{Name: name, Limit: limit, Value: "missing"}
		if end.has(metric) && base.has(metric) {
			c.Value, c.Pass = value(), pass()
		}
		out = append(out, c)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	add("soak-goroutines", "go_goroutines",
		fmt.Sprintf("%.0f (baseline %s + 2%% + 2)", math.Floor(gl), num(base.Goroutines)),
		func() string { return num(end.Goroutines) },
		func() bool { return end.Goroutines <= gl })
	diff := end.HeapAllocBytes - base.HeapAllocBytes
	add("soak-heap", "go_memstats_heap_alloc_bytes",
		fmt.Sprintf("%s (2%% of %s + %s slack)", signedMiB(hl-base.HeapAllocBytes), mib(base.HeapAllocBytes), mib(float64(heapSlack))),
		func() string { return fmt.Sprintf("%s (%s)", signedMiB(diff), mib(end.HeapAllocBytes)) },
		func() bool { return end.HeapAllocBytes <= hl })
	add("soak-fds", "process_open_fds",
		fmt.Sprintf("%s (baseline %s + 2)", num(fl), num(base.OpenFDs)),
		func() string { return num(end.OpenFDs) },
		func() bool { return end.OpenFDs <= fl })
	add("soak-rtp-ports", "webconf_rtp_ports_free",
		fmt.Sprintf("%s free (baseline)", num(base.RTPPortsFree)),
		func() string { return num(end.RTPPortsFree) },
		func() bool { return end.RTPPortsFree == base.RTPPortsFree })
	add("soak-calls", "webconf_calls_active", "0",
		func() string { return num(end.CallsActive) },
		func() bool { return end.CallsActive == 0 })
	add("soak-pending-invites", "webconf_invites_pending", "0",
		func() string { return num(end.InvitesPending) },
		func() bool { return end.InvitesPending == 0 })
	return out
}

func mib(b float64) string { return fmt.Sprintf("%.2f MiB", b/(1<<20)) }

func signedMiB(b float64) string { return fmt.Sprintf("%+.3f MiB", b/(1<<20)) }

func (f soakFigures) String() string {
	s := fmt.Sprintf("goroutines %.0f, heap %s, fds %.0f, free RTP ports %.0f, calls %.0f, pending INVITEs %.0f",
		f.Goroutines, mib(f.HeapAllocBytes), f.OpenFDs, f.RTPPortsFree, f.CallsActive, f.InvitesPending)
	if len(f.Missing) > 0 {
		s += " (missing: " + strings.Join(f.Missing, ", ") + ")"
	}
	return s
}

// printSoak writes the soak figures into the table.
func printSoak(p func(label, format string, a ...any), s *soakResult) {
	if s == nil {
		return
	}
	p("soak baseline", "%s", s.Baseline)
	p("soak load", "%s", s.Load)
	p("soak end", "%s, %.0f s after the last hang-up", s.End, s.SettleS)
	p("soak heap", "end - baseline %s (slack %s)", signedMiB(float64(s.HeapDiffBytes)), mib(float64(s.HeapSlackBytes)))
}
