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
	"sync"
	"time"
)

// Soak (-soak): the server's resources before the load, at its end and
// after every call has hung up, read from outside the server process so
// that nothing of confload's own counts.
//
// Each reading first asks the server twice for a heap profile with gc=1
// (net/http/pprof runs a full garbage collection before answering; the
// profile, in text, is discarded), then reads its /metrics, uncompressed
// (a gzipped reply would leave the server's pooled gzip writer, about
// 1 MiB, live until the next collection):
//
//	go_goroutines            goroutines
//	go_gc_heap_live_bytes    the heap that full GC marked live (the
//	                         garbage made since, such as the profile's,
//	                         does not count)
//	process_open_fds         file descriptors
//	webconf_calls_active     calls (every SIP dialog the server holds is a
//	                         call, dial-in or dial-out)
//	webconf_rtp_ports_free   RTP ports not in use
//	webconf_invites_pending  INVITE transactions answered and not yet
//	                         acknowledged, the transaction state the server
//	                         itself tracks; sipgo's transaction store has
//	                         no count, so transactions left in it show in
//	                         the heap
//	webconf_rooms            rooms in the registry
//
// The baseline is taken after a warm-up at the run's full size (see
// warmUp), once the server holds no call and no more rooms than before it
// and its goroutines have stopped falling, and no sooner than 33 s after
// the warm-up's hang-ups, when its SIP transactions are gone. After the
// window and the hang-up of every call the figures are read once a second
// until all are within their limits or -soak-settle (default 60 s, for
// the same transactions of the run) has passed; the last reading is
// checked:
//
//	goroutines       <= baseline + 2% + 2
//	live heap        <= baseline + 2% + -soak-heap-slack (default 64 KiB:
//	                    the Go runtime's goroutine records and sipgo's
//	                    transaction map are sized by the most goroutines
//	                    and transactions ever alive at once, and the
//	                    churn's transactions, which linger 32 s, push that
//	                    above the warm-up's: a heap-profile diff at 40
//	                    participants shows +19 KB and +10 KB);
//	                    with -soak-heap-per-call B instead
//	                    <= baseline + -soak-heap-slack + B per call placed
//	                    after the baseline (each join and leave)
//	file descriptors <= baseline + 2
//	free RTP ports   == baseline
//	calls            == 0
//	pending INVITEs  == 0
//	rooms            <= baseline

// transactionLinger is how long a UDP server transaction outlives its
// final response: 64*T1 = 32 s (RFC 3261 Timers J and L), and a second.
const transactionLinger = 33 * time.Second

// ErrNoMetric means the server's /metrics lacks a figure the soak needs.
var ErrNoMetric = errors.New("metric missing")

// soakFigures is one reading of the server's resources.
type soakFigures struct {
	T              float64  `json:"t"` // seconds since the run started
	Goroutines     float64  `json:"goroutines"`
	HeapLiveBytes  float64  `json:"heap_live_bytes"`
	OpenFDs        float64  `json:"open_fds"`
	CallsActive    float64  `json:"calls_active"`
	RTPPortsFree   float64  `json:"rtp_ports_free"`
	InvitesPending float64  `json:"invites_pending"`
	Rooms          float64  `json:"rooms"`
	Missing        []string `json:"missing,omitempty"` // metrics the server did not report
}

// soakMetrics maps the Prometheus series to the figures.
var soakMetrics = []struct {
	name string
	dst  func(*soakFigures) *float64
}{
	{"go_goroutines", func(f *soakFigures) *float64 { return &f.Goroutines }},
	{"go_gc_heap_live_bytes", func(f *soakFigures) *float64 { return &f.HeapLiveBytes }},
	{"process_open_fds", func(f *soakFigures) *float64 { return &f.OpenFDs }},
	{"webconf_calls_active", func(f *soakFigures) *float64 { return &f.CallsActive }},
	{"webconf_rtp_ports_free", func(f *soakFigures) *float64 { return &f.RTPPortsFree }},
	{"webconf_invites_pending", func(f *soakFigures) *float64 { return &f.InvitesPending }},
	{"webconf_rooms", func(f *soakFigures) *float64 { return &f.Rooms }},
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
	// HeapPerCallBytes is -soak-heap-per-call (0: the 2 % check) and
	// Calls the calls placed after the baseline, the run's and the
	// churn's: the per-call check allows HeapPerCallBytes for each.
	HeapPerCallBytes int64 `json:"heap_per_call_bytes,omitempty"`
	Calls            int   `json:"calls"`
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
	// Twice: a collection moves what sync.Pools hold into their victim
	// caches and frees only what was there since the one before, so after
	// one the heap still holds whatever the pools last happened to take;
	// after two, only what this same request left, the same every time.
	for range 2 {
		err = s.get(ctx, hu, 30*time.Second, func(b io.Reader) error {
			_, err := io.Copy(io.Discard, b)
			return err
		})
		if err != nil {
			return soakFigures{}, fmt.Errorf("forced GC (the server must serve /debug/pprof on loopback): %w", err)
		}
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
	r.soak = &soakResult{HeapSlackBytes: int64(r.cfg.soakHeapSlack), HeapPerCallBytes: int64(r.cfg.soakHeapPerCall)}
	pre, err := r.smp.readMetrics(ctx)
	if err != nil {
		return fmt.Errorf("soak baseline: %w", err)
	}
	if err := r.warmUp(ctx); err != nil {
		return err
	}
	t0 := time.Now()
	if err := r.waitSettled(ctx, pre.Rooms, max(20*time.Second, r.cfg.soakSettle)); err != nil {
		return err
	}
	// The warm-up's transactions stay in the server's SIP stack for 64*T1
	// after their last message (RFC 3261 17.2.1 Timer L for the INVITEs,
	// 17.2.2 Timer J for the BYEs): wait them out, or the baseline counts
	// them and a leak of the same size would pass unseen.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(t0.Add(transactionLinger))):
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

// warmUp fills the server once to the run's size: -calls calls into the
// run's rooms, placed at -rate, each until it is in, and then hangs them
// all up. What the server keeps for having been that big once (the Go
// runtime's record of every goroutine it ever ran, map buckets sized by
// the peak, first use of the SIP stack and the pools) is then in the
// baseline, so the soak measures what the churn leaves behind: a leak
// grows with the joins and leaves; this does not.
func (r *runner) warmUp(ctx context.Context) error {
	rooms := make([]*room, r.cfg.rooms)
	for i := range rooms {
		rooms[i] = &room{idx: -1 - i, number: r.cfg.roomBase + i}
	}
	calls := make([]*call, r.cfg.calls)
	for i := range calls {
		rm := rooms[i%len(rooms)]
		c := &call{idx: -1 - i, room: rm, done: make(chan struct{})}
		c.st = &stream{c: c, g: r.groups[i/r.cfg.perSocket]}
		rm.members = append(rm.members, c)
		calls[i] = c
	}
	errs := make([]error, len(calls))
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.rate))
	for i, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.setupCall(ctx, c)
			if errs[i] = c.failure(); errs[i] == nil {
				errs[i] = r.waitHeard(ctx, c, r.cfg.joinTimeout)
			}
		}()
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	tick.Stop()
	wg.Wait()
	sem := make(chan struct{}, 64)
	for i, c := range calls {
		c.st.active.Store(false)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := r.ua.bye(bctx, c); errs[i] == nil {
				errs[i] = err
			}
			c.st.g.remove(c.st)
			r.ua.calls.Delete(c.callID)
		}()
	}
	wg.Wait()
	failed, first := 0, error(nil)
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("soak warm-up: %d of %d calls failed, the first: %w", failed, len(calls), first)
	}
	return nil
}

// waitSettled polls the server until the warm-up's calls are gone, it
// holds no more rooms than before the warm-up (it frees them once
// participants_expire_delay and rooms_expire_delay have passed) and its
// goroutine count has stopped falling (no new low for a second and a
// half), or the timeout. A server that keeps rooms longer than that has
// them in the baseline and, the same rooms, at the end.
func (r *runner) waitSettled(ctx context.Context, rooms float64, timeout time.Duration) error {
	const poll, quiet = 250 * time.Millisecond, 6
	deadline := time.Now().Add(timeout)
	low, still := math.Inf(1), 0
	for time.Now().Before(deadline) {
		f, err := r.smp.readMetrics(ctx)
		if err != nil {
			return fmt.Errorf("soak baseline: %w", err)
		}
		switch {
		case f.CallsActive > 0 || f.InvitesPending > 0 || f.Rooms > rooms:
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
	r.soak.Calls = len(r.calls) // every call placed after the baseline: the run's and the churn's
	for {
		f, err := r.smp.soakFigures(context.Background(), r.profilePath("end"))
		if err != nil {
			r.log.Error("soak reading after the load", "error", err)
			f.Missing = soakMetricNames()
		}
		r.soak.End = f
		if soakSettled(r.soak, f, slack) || !time.Now().Before(deadline) || ctx.Err() != nil {
			break
		}
		fmt.Fprintf(r.out, "soak  t=%5.1fs settling: %s\n", f.T, f)
		time.Sleep(time.Second)
	}
	r.soak.SettleS = time.Since(start).Seconds()
	r.soak.HeapDiffBytes = int64(r.soak.End.HeapLiveBytes - r.soak.Baseline.HeapLiveBytes)
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
// With a per-call heap allowance the heap's is instead the baseline plus
// the slack plus perCall for each of calls.
func soakLimits(base soakFigures, heapSlack, perCall int64, calls int) (goroutines, heap, fds float64) {
	heap = base.HeapLiveBytes*1.02 + float64(heapSlack)
	if perCall > 0 {
		heap = base.HeapLiveBytes + float64(heapSlack) + float64(perCall)*float64(calls)
	}
	return base.Goroutines*1.02 + 2, heap, base.OpenFDs + 2
}

// soakSettled reports whether end passes every soak check of s.
func soakSettled(s *soakResult, end soakFigures, heapSlack int64) bool {
	t := *s
	t.End = end
	for _, c := range soakChecks(&t, heapSlack) {
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
	gl, hl, fl := soakLimits(base, heapSlack, s.HeapPerCallBytes, s.Calls)
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
	diff := end.HeapLiveBytes - base.HeapLiveBytes
	heapLimit := fmt.Sprintf("%s (2%% of %s + %s slack)", signedMiB(hl-base.HeapLiveBytes), mib(base.HeapLiveBytes), mib(float64(heapSlack)))
	if s.HeapPerCallBytes > 0 {
		heapLimit = fmt.Sprintf("%s (%s slack + %d B for each of %d calls)", signedMiB(hl-base.HeapLiveBytes),
			mib(float64(heapSlack)), s.HeapPerCallBytes, s.Calls)
	}
	add("soak-heap", "go_gc_heap_live_bytes", heapLimit,
		func() string {
			v := fmt.Sprintf("%s (%s)", signedMiB(diff), mib(end.HeapLiveBytes))
			if s.Calls > 0 {
				v += fmt.Sprintf(", %+.0f B per call", diff/float64(s.Calls))
			}
			return v
		},
		func() bool { return end.HeapLiveBytes <= hl })
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
	add("soak-rooms", "webconf_rooms",
		fmt.Sprintf("%s (baseline)", num(base.Rooms)),
		func() string { return num(end.Rooms) },
		func() bool { return end.Rooms <= base.Rooms })
	return out
}

func mib(b float64) string { return fmt.Sprintf("%.2f MiB", b/(1<<20)) }

func signedMiB(b float64) string { return fmt.Sprintf("%+.3f MiB", b/(1<<20)) }

func (f soakFigures) String() string {
	s := fmt.Sprintf("goroutines %.0f, heap %s, fds %.0f, free RTP ports %.0f, calls %.0f, pending INVITEs %.0f, rooms %.0f",
		f.Goroutines, mib(f.HeapLiveBytes), f.OpenFDs, f.RTPPortsFree, f.CallsActive, f.InvitesPending, f.Rooms)
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
	if s.HeapPerCallBytes > 0 {
		p("soak heap per call", "%d calls after the baseline, %d B allowed for each", s.Calls, s.HeapPerCallBytes)
	}
}
