package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// runner holds the state of one run.
type runner struct {
	cfg    *config
	log    *slog.Logger
	out    io.Writer
	start  time.Time
	clk    *clock
	ua     *sipUA
	groups []*group
	rooms  []*room
	calls  []*call
	smp    *sampler
	// samples during the window, plus the baseline taken before any call
	base    sample
	samples []sample
	win     struct{ from, to sample }
	up      int // calls up when the window opened

	// mu guards the rooms' member lists, which -churn rewrites while
	// churn-in calls read them to time their join.
	mu      sync.Mutex
	churnWG sync.WaitGroup // churn operations in flight
	churn   churnStats
	soak    *soakResult // -soak figures, nil without -soak
}

// run performs the whole benchmark. On a setup error it returns a nil
// report; once calls exist it always returns a report (and hangs them up).
func run(ctx context.Context, cfg *config, progress io.Writer, log *slog.Logger) (*report, error) {
	r := &runner{cfg: cfg, log: log, out: progress, start: time.Now(), clk: newClock()}
	pid := cfg.pid
	target := cfg.addr
	metrics := func() string { return cfg.metrics }
	if cfg.serverBin != "" {
		srv, err := startServer(ctx, cfg.serverBin, cfg.serverCfg)
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		pid = srv.Pid()
		srv.mu.Lock()
		target = srv.addr
		srv.mu.Unlock()
		if cfg.metrics == "" {
			metrics = srv.metricsURL // what it logged, if anything
		}
	}
	ap, err := loopbackAddr(target)
	if err != nil {
		return nil, fmt.Errorf("server SIP address: %w", err)
	}
	r.smp = newSampler(pid, metrics, r.start)
	if r.base, err = r.smp.take(ctx); err != nil {
		return nil, err
	}
	if cfg.soak {
		if err := r.smp.waitMetricsURL(ctx, 15*time.Second); err != nil {
			return nil, err
		}
	}

	ngroups := (cfg.calls + cfg.perSocket - 1) / cfg.perSocket
	for i := range ngroups {
		g, err := newGroup(i, ap.Addr(), r.clk, time.Duration(i)*frameDur/time.Duration(ngroups))
		if err != nil {
			r.closeGroups()
			return nil, err
		}
		r.groups = append(r.groups, g)
	}
	defer r.closeGroups()
	if r.ua, err = newSIPUA(ctx, ap, log); err != nil {
		return nil, err
	}
	defer r.ua.close()
	if cfg.soak {
		if err := r.soakBaseline(ctx); err != nil {
			return nil, err
		}
	}
	r.plan()

	r.ramp(ctx)
	r.waitJoined(ctx)
	r.measure(ctx)
	r.churnWG.Wait()
	if cfg.soak {
		r.soakLoad(ctx)
	}
	r.hangup()
	if cfg.soak {
		r.soakEnd(ctx)
	}
	// Stop the readers before the report reads what they recorded.
	r.closeGroups()
	rep := r.report()
	rep.Interrupted = ctx.Err() != nil
	return rep, nil
}

func (r *runner) closeGroups() {
	for _, g := range r.groups {
		g.close()
	}
}

// plan creates rooms and calls: call i is member i/M of room i mod M;
// member 0 sends the marker, members below -talkers talk.
func (r *runner) plan() {
	cfg := r.cfg
	for i := range cfg.rooms {
		r.rooms = append(r.rooms, &room{idx: i, number: cfg.roomBase + i, phase: i * 7 % markerPeriod})
	}
	for i := range cfg.calls {
		rm := r.rooms[i%cfg.rooms]
		c := &call{idx: i, member: i / cfg.rooms, room: rm, done: make(chan struct{})}
		c.talker = c.member < cfg.talkers
		c.isMarker = c.member == 0
		if c.talker && cfg.speechPCM == nil {
			c.freq = talkerFreqs[c.member]
		}
		c.st = &stream{c: c, g: r.groups[i/cfg.perSocket]}
		rm.members = append(rm.members, c)
		r.calls = append(r.calls, c)
	}
	for _, rm := range r.rooms {
		for _, c := range rm.members {
			initRx(c)
		}
	}
}

// initRx sets up what c listens for: its room's marker (as a listener)
// and, to confirm its join, the other members' sounds. It reads the roles
// (tone, marker) of its room's members, which a churn-in call inherits
// from the call it replaces, so the room's sounds stay the same.
func initRx(c *call) {
	rm := c.room
	rx := &c.st.rx
	if len(rm.members) > 1 && !c.isMarker {
		rx.hasOnset = true
		rx.onset = newOnsetDetector(markerFreq, 0.3*markerAmp, 0.1*markerAmp)
	}
	for _, o := range rm.members {
		switch {
		case o == c || o.member == c.member:
		case o.freq > 0:
			rx.runs = append(rx.runs, toneRun{g: newGoertzel(o.freq), threshold: toneAmp / 2, need: 5})
		case o.isMarker:
			rx.runs = append(rx.runs, toneRun{g: newGoertzel(markerFreq), threshold: 0.3 * markerAmp, need: 1})
		}
	}
	rx.runFrom = make([]int64, len(rx.runs))
}

// ramp places the calls at -rate and waits for their setup.
func (r *runner) ramp(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / r.cfg.rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	prog := time.NewTicker(time.Second)
	defer prog.Stop()
	var wg sync.WaitGroup
	placed := 0
	next := time.Now()
	for placed < len(r.calls) {
		if !time.Now().Before(next) {
			c := r.calls[placed]
			placed++
			next = next.Add(interval)
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.setupCall(ctx, c)
			}()
			continue
		}
		select {
		case <-ctx.Done():
			for _, c := range r.calls[placed:] {
				c.fail(fmt.Errorf("not placed: %w", ctx.Err()))
				close(c.done)
			}
			wg.Wait()
			return
		case <-prog.C:
			r.progress("ramp", placed)
		case <-tick.C:
		}
	}
	doneCh := make(chan struct{})
	go func() { wg.Wait(); close(doneCh) }()
	for {
		select {
		case <-doneCh:
			r.progress("ramp", placed)
			return
		case <-prog.C:
			r.progress("ramp", placed)
		}
	}
}

func (r *runner) progress(phase string, placed int) {
	up, failed, joined := 0, 0, 0
	for _, c := range r.calls {
		if c.failure() != nil {
			failed++
			continue
		}
		if c.up.Load() {
			up++
		}
		if r.joined(c) {
			joined++
		}
	}
	fmt.Fprintf(r.out, "%-5s t=%5.1fs placed %d/%d up %d joined %d failed %d\n",
		phase, time.Since(r.start).Seconds(), placed, len(r.calls), up, joined, failed)
}

// joined reports whether c is in its room as far as we can tell.
func (r *runner) joined(c *call) bool {
	return c.up.Load() && heard(c)
}

// heard reports whether c has been set up and heard its room (whether or
// not it is still up).
func heard(c *call) bool {
	if !isClosed(c.done) || c.readyAt.IsZero() {
		return false
	}
	if len(c.st.rx.runs) == 0 {
		return true // nobody else in its room makes a sound
	}
	return c.st.rx.heardAt.Load() != 0
}

// setupCall places one call and, for keypad entry, types the room number.
func (r *runner) setupCall(ctx context.Context, c *call) {
	defer close(c.done)
	cfg := r.cfg
	st := c.st
	user := cfg.keypadUser
	var hdrs []sip.Header
	switch {
	case cfg.ruriPattern != "":
		user = fmt.Sprintf(cfg.ruriPattern, c.room.number)
	case cfg.appParam:
		hdrs = append(hdrs, sip.NewHeader("P-App-Param", fmt.Sprintf("room=%d", c.room.number)))
	}
	local := r.ua.laddr.Addr()
	ictx, cancel := context.WithTimeout(ctx, cfg.setupTimeout)
	ans, err := r.ua.invite(ictx, c, user, hdrs, sdpOffer(local, st.g.port, cfg.codec), cfg.codec)
	cancel()
	if err != nil {
		c.fail(err)
		r.log.Warn("call setup failed", "call", c.idx, "error", err)
		return
	}
	st.dst = net.UDPAddrFromAddrPort(ans.rtp)
	st.key = ans.rtp
	st.pt = ans.codec
	if ans.dtmfPT >= 0 {
		st.dpt = uint8(ans.dtmfPT)
	}
	switch {
	case cfg.speechPCM != nil && c.talker:
		st.src = encodeSpeech(cfg.speechPCM, st.pt)
		// Start each talker somewhere else in the file, on a frame.
		st.srcPos = (c.idx * 7919 * frameSamples) % len(st.src)
	case c.freq > 0:
		st.src = toneFrame(c.freq, toneAmp, st.pt)
	}
	if c.isMarker {
		st.marker = toneFrame(markerFreq, markerAmp, st.pt)
	}
	st.ssrc, st.seq, st.ts, st.first = rand.Uint32(), uint16(rand.Uint32()), rand.Uint32(), true
	if err := st.g.add(st); err != nil {
		c.fail(err)
		return
	}
	st.active.Store(true)
	if !cfg.keypad {
		c.readyAt = c.answerAt
		st.rx.watch.Store(true)
		return
	}
	if ans.dtmfPT < 0 {
		c.fail(fmt.Errorf("%w: no telephone-event for keypad entry", ErrBadAnswer))
		return
	}
	select {
	case <-time.After(cfg.keypadDelay):
	case <-ctx.Done():
		c.fail(ctx.Err())
		return
	}
	job := &dtmfJob{digits: fmt.Sprintf("%d#", c.room.number), done: make(chan struct{})}
	st.jobs.Store(job)
	select {
	case <-job.done:
	case <-ctx.Done():
		c.fail(ctx.Err())
		return
	}
	c.readyAt = time.Now()
	st.rx.watch.Store(true)
}

// waitJoined waits until every call heard its room, or the join timeout;
// stragglers fail. Only then does the window open, so it measures a steady
// state (a server may, for instance, keep a newcomer's audio out of the mix
// while it plays a prompt).
func (r *runner) waitJoined(ctx context.Context) {
	deadline := time.Now().Add(r.cfg.joinTimeout)
	prog := time.NewTicker(time.Second)
	defer prog.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		waiting := 0
		for _, c := range r.calls {
			if c.failure() == nil && c.up.Load() && !r.joined(c) {
				waiting++
			}
		}
		if waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-prog.C:
			r.progress("join", len(r.calls))
		case <-poll.C:
		}
	}
	for _, c := range r.calls {
		if c.failure() == nil && c.up.Load() && !r.joined(c) {
			c.fail(fmt.Errorf("%w within %s of the ramp's end", ErrNotJoined, r.cfg.joinTimeout))
		}
	}
}

// measure opens the window, samples once a second and closes it.
func (r *runner) measure(ctx context.Context) {
	for _, c := range r.calls {
		if c.failure() == nil && c.up.Load() {
			c.upAtWindow = true
			r.up++
		}
		// Every setup has ended and no room has changed yet.
		c.joinDur, c.joinOK = r.joinTime(c)
	}
	var err error
	if r.win.from, err = r.smp.take(ctx); err != nil {
		r.log.Error("sample", "error", err)
	}
	r.clk.winFrom.Store(r.win.from.At.UnixNano())
	end := r.win.from.At.Add(r.cfg.duration)
	// Started after the window opened, so its k-th tick finds k
	// operations due.
	var churnC <-chan time.Time
	if r.cfg.churn > 0 {
		ct := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.churn))
		defer ct.Stop()
		churnC = ct.C
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
	last := r.win.from
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
			break loop
		case now := <-churnC:
			// Catch up on the operations due by now, so that a slow
			// sample (which holds this loop) does not lower the rate.
			due := int(now.Sub(r.win.from.At).Seconds() * r.cfg.churn)
			for r.churn.placed+r.churn.skipped < due {
				r.churnOne(ctx)
			}
		case <-tick.C:
			s, err := r.smp.take(ctx)
			if err != nil {
				r.log.Error("sample", "error", err)
				break loop
			}
			up := 0
			for _, c := range r.calls {
				if c.up.Load() {
					up++
				}
			}
			s.Calls = up
			r.samples = append(r.samples, s)
			churn := ""
			if r.cfg.churn > 0 {
				churn = fmt.Sprintf(" churn %d failed %d", r.churn.placed, r.failedChurn())
			}
			fmt.Fprintf(r.out, "run   t=%5.1fs up %d server cpu %5.1f%% rss %d MiB machine %5.1f%%%s\n",
				s.T, up, 100*(s.CPU-last.CPU)/s.At.Sub(last.At).Seconds(), s.RSS>>20, s.MachineBusyPct, churn)
			last = s
		}
	}
	r.win.to, err = r.smp.take(context.Background())
	if err != nil {
		r.log.Error("sample", "error", err)
		r.win.to.At = time.Now()
	}
	r.clk.winTo.Store(r.win.to.At.UnixNano())
}

// hangup sends BYE to every call that is up, a bounded number at a time.
func (r *runner) hangup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, c := range r.calls {
		<-c.done
		if c.st != nil {
			c.st.active.Store(false)
		}
		if !c.up.Load() {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
			defer bcancel()
			if err := r.ua.bye(bctx, c); err != nil {
				c.fail(err)
				r.log.Warn("hangup failed", "call", c.idx, "error", err)
			}
		}()
	}
	wg.Wait()
}
