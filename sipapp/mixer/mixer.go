// Package mixer runs the conference clock. A few scheduler goroutines (about
// one per CPU) tick on absolute 20 ms deadlines and each serves many groups:
// a group is a room's mix, or a lone caller who is still typing a room
// number. A goroutine and ticker per participant would cost a wake-up per
// participant per tick; here a tick costs one wake-up per worker.
//
// Each tick a group takes one frame from every member, sums the ones that
// are heard in int32, and gives each member the sum minus its own frame
// (mix-minus), clamped once. Members who did not talk this tick all hear
// the same full mix, so it is encoded once per codec and shared. The package
// knows nothing about SIP or sockets: members read and write through the
// Input and Output interfaces.
package mixer

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"webconf/dsp"
	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
	"webconf/dsp/mix"
)

// Input is where a member's audio comes from (an RTP leg's jitter buffer).
type Input interface {
	// ReadFrame fills f with the next 20 ms; false when there is none.
	ReadFrame(f *dsp.Frame) bool
}

// Poller is an Output that receives only when asked (an RTP leg without
// a read goroutine): the group polls it each tick before reading, and
// drains it when it joins.
type Poller interface {
	Poll()
	Drain()
}

// WorkerIO is a worker's media I/O around each tick (sockets the worker
// reads at the start of its tick, packets it sends in one go at the end).
// The mixer knows nothing of it beyond these calls.
type WorkerIO = interface {
	BeginTick()
	EndTick()
}

// IOBinder is an Output that wants the WorkerIO of the worker mixing it:
// a group gives it on Add (before Drain), so that what the member sends
// during that worker's ticks can join the worker's batch.
type IOBinder interface {
	BindIO(WorkerIO)
}

// Output is where a member's audio goes (an RTP leg).
type Output interface {
	PT() uint8
	// WriteEncoded sends one frame of G.711 (one byte per sample).
	WriteEncoded(payload []byte)
}

// SilenceOutput is an Output that can stand in for a frame of silence by
// itself (an RTP leg: comfort noise, RFC 3389, towards a peer that
// negotiated it, else a ready-made G.711 silence frame). When a member
// would hear nothing (no one else is heard and no prompt plays for it) the
// group calls WriteSilence instead of mixing and encoding for it.
type SilenceOutput interface {
	WriteSilence()
}

// silenceThreshold is the mean power under which a frame counts as silent
// (RMS about 16, -66 dBFS): silent members share the full mix instead of
// getting a personal one, and are not summed, so line noise from many idle
// phones does not add up.
const silenceThreshold = 16 * 16

// talkThreshold is the mean power above which a member counts as talking
// (RMS about 300, -40 dBFS), and talkHang how many quiet ticks end a
// talkspurt (400 ms), so that the pauses between words do not flap.
const (
	talkThreshold = 300 * 300
	talkHang      = 20
)

// Stats are the scheduler's counters.
type Stats struct {
	Ticks    uint64 // group-independent ticks run by all workers
	Overruns uint64 // ticks that started more than one frame late
	Resets   uint64 // times a worker fell so far behind that it skipped ahead
	MaxLate  time.Duration
}

// Scheduler owns the workers.
type Scheduler struct {
	workers    []*worker
	log        *slog.Logger
	maxTalkers int

	ticks, overruns, resets atomic.Uint64
	maxLate                 atomic.Int64

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// New makes a scheduler with n workers (n < 1 means 1). Start runs them.
func New(n int, log *slog.Logger) *Scheduler {
	if n < 1 {
		n = 1
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Scheduler{log: log, stop: make(chan struct{})}
	for i := 0; i < n; i++ {
		w := &worker{s: s}
		empty := []*Group{}
		w.groups.Store(&empty)
		s.workers = append(s.workers, w)
	}
	return s
}

// Workers is the number of workers.
func (s *Scheduler) Workers() int { return len(s.workers) }

// SetIO gives worker i its media I/O (before Start).
func (s *Scheduler) SetIO(i int, io WorkerIO) { s.workers[i].io = io }

// Start launches the workers.
func (s *Scheduler) Start() {
	for _, w := range s.workers {
		s.wg.Add(1)
		go w.run()
	}
}

// Stop ends the workers and waits for them.
func (s *Scheduler) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// Stats returns the counters.
func (s *Scheduler) Stats() Stats {
	return Stats{
		Ticks: s.ticks.Load(), Overruns: s.overruns.Load(), Resets: s.resets.Load(),
		MaxLate: time.Duration(s.maxLate.Load()),
	}
}

// NewGroup creates an empty group on the least loaded worker. The group is
// mixed from the next tick until Close.
func (s *Scheduler) NewGroup() *Group {
	best := s.workers[0]
	for _, w := range s.workers[1:] {
		if w.load() < best.load() {
			best = w
		}
	}
	g := &Group{w: best, maxTalkers: s.maxTalkers}
	best.add(g)
	return g
}

// SetMaxTalkers makes groups created from now on mix only the k loudest
// talkers (0 = all).
func (s *Scheduler) SetMaxTalkers(k int) { s.maxTalkers = max(0, k) }

type worker struct {
	s      *Scheduler
	io     WorkerIO                 // nil: none
	mu     sync.Mutex               // serialises changes to groups
	groups atomic.Pointer[[]*Group] // copy-on-write: the tick reads without locking
}

func (w *worker) load() int { return len(*w.groups.Load()) }

func (w *worker) add(g *Group) {
	w.mu.Lock()
	old := *w.groups.Load()
	nw := make([]*Group, len(old), len(old)+1)
	copy(nw, old)
	nw = append(nw, g)
	w.groups.Store(&nw)
	w.mu.Unlock()
}

func (w *worker) remove(g *Group) {
	w.mu.Lock()
	old := *w.groups.Load()
	nw := make([]*Group, 0, len(old))
	for _, x := range old {
		if x != g {
			nw = append(nw, x)
		}
	}
	w.groups.Store(&nw)
	w.mu.Unlock()
}

// maxBehind is how far a worker may fall behind before it stops catching up
// (running ticks back to back) and starts afresh from now.
const maxBehind = 5 * dsp.FrameDur

func (w *worker) run() {
	defer w.s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	next := time.Now()
	for {
		next = next.Add(dsp.FrameDur)
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
			select {
			case <-timer.C:
			case <-w.s.stop:
				return
			}
		} else {
			select {
			case <-w.s.stop:
				return
			default:
			}
		}
		late := time.Since(next)
		if int64(late) > w.s.maxLate.Load() {
			w.s.maxLate.Store(int64(late))
		}
		if late > dsp.FrameDur {
			w.s.overruns.Add(1)
			if late > maxBehind {
				w.s.resets.Add(1)
				next = time.Now()
			}
		}
		w.s.ticks.Add(1)
		if w.io != nil {
			w.io.BeginTick()
		}
		for _, g := range *w.groups.Load() {
			g.Tick()
		}
		if w.io != nil {
			w.io.EndTick()
		}
	}
}

func codecIndex(pt uint8) int {
	if pt == g711.PCMA {
		return 1
	}
	return 0
}

// Group is a set of members mixed together.
type Group struct {
	w *worker

	// maxTalkers, when > 0, mixes only this many of the loudest members
	// each tick (spec/performance.md 3.3).
	maxTalkers int

	mu      sync.Mutex // guards everything below; held for one tick at a time
	members []*Member
	closed  bool

	bus      mix.Bus
	full     dsp.Frame
	shared   [2][dsp.FrameSamples]byte
	haveFull bool
	haveEnc  [2]bool
}

// Member is one participant's place in a group.
type Member struct {
	in     Input
	out    Output
	poller Poller        // out, when it receives only when polled
	silent SilenceOutput // out, when it writes silence by itself
	binder IOBinder      // out, when it wants its worker's I/O

	g atomic.Pointer[Group] // the group the member is in, nil when none

	// muted is read by the tick and by listings (Server.Participants),
	// which must not wait for a tick: atomic, not under the group's lock.
	muted atomic.Bool

	// Guarded by the group's mutex.
	queue   []*Prompt
	detect  *dtmf.Detector
	onDigit func(byte)

	energy  int64
	onTalk  func(bool) // talking started/stopped; runs on the mixer goroutine
	talking bool
	quiet   int

	// Tick scratch, used by the worker only.
	frame   dsp.Frame
	outF    dsp.Frame
	enc     [dsp.FrameSamples]byte
	contrib bool
}

// NewMember wraps a leg.
func NewMember(in Input, out Output) *Member {
	m := &Member{in: in, out: out}
	m.poller, _ = out.(Poller) // once, not per tick
	m.silent, _ = out.(SilenceOutput)
	m.binder, _ = out.(IOBinder)
	return m
}

// Prompt is audio queued for one member. Done is closed when it has been
// played to the end or stopped.
type Prompt struct {
	samples []int16
	loop    bool
	pos     int
	Done    chan struct{}
}

// NewPrompt prepares samples (8 kHz) for playing; loop repeats until stopped.
func NewPrompt(samples []int16, loop bool) *Prompt {
	return &Prompt{samples: samples, loop: loop, Done: make(chan struct{})}
}

// Add puts m into the group.
func (g *Group) Add(m *Member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if m.binder != nil && g.w.io != nil {
		m.binder.BindIO(g.w.io)
	}
	if m.poller != nil {
		// Nobody polled it while it was in no group.
		m.poller.Drain()
	}
	m.g.Store(g)
	g.members = append(g.members, m)
}

// Remove takes m out of the group. Prompts still queued for m are stopped.
func (g *Group) Remove(m *Member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.members {
		if x == m {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	m.stopLocked()
	m.g.Store(nil)
}

// Len is the number of members.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// Close stops mixing the group.
func (g *Group) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	for _, m := range g.members {
		m.stopLocked()
		m.g.Store(nil)
	}
	g.members = nil
	g.mu.Unlock()
	g.w.remove(g)
}

// Each runs f for every member but skip, under the group's lock (f must
// not block).
func (g *Group) Each(skip *Member, f func(*Member)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if m != skip {
			f(m)
		}
	}
}

func (m *Member) lock() func() {
	// A member's controls live under its group's lock; a member that is in
	// no group has nothing running concurrently.
	g := m.g.Load()
	if g == nil {
		return func() {}
	}
	g.mu.Lock()
	if m.g.Load() != g { // moved while we waited
		g.mu.Unlock()
		return m.lock()
	}
	return g.mu.Unlock
}

// SetInput changes where the member's audio comes from (a dialled
// callee's ringback, then its RTP leg).
func (m *Member) SetInput(in Input) {
	defer m.lock()()
	m.in = in
}

// SetMuted sets whether the member is heard by the others (from the next
// tick). It does not wait for a tick in progress.
func (m *Member) SetMuted(v bool) { m.muted.Store(v) }

// Muted reports the mute flag without waiting for a tick in progress.
func (m *Member) Muted() bool { return m.muted.Load() }

// Play queues p behind what is already queued.
func (m *Member) Play(p *Prompt) {
	defer m.lock()()
	m.queue = append(m.queue, p)
}

// PlayLocked queues p; for use inside Group.Each.
func (m *Member) PlayLocked(p *Prompt) { m.queue = append(m.queue, p) }

// PlayCoalescedLocked queues p unless the same audio is already queued and
// not yet started: in a big room, people join and leave faster than a beep
// plays, and one pending beep per member says it all (queued beeps would
// otherwise keep everyone hearing beeps, and unheard, for good). For use
// inside Group.Each.
func (m *Member) PlayCoalescedLocked(p *Prompt) {
	for _, q := range m.queue {
		if q.pos == 0 && len(q.samples) > 0 && len(p.samples) > 0 && &q.samples[0] == &p.samples[0] {
			close(p.Done)
			return
		}
	}
	m.queue = append(m.queue, p)
}

// StopLooping ends looping prompts (used when a second member joins and
// the first one's looping first_participant prompt must stop). For use
// inside Group.Each.
func (m *Member) StopLoopingLocked() {
	kept := m.queue[:0]
	for _, p := range m.queue {
		if p.loop {
			close(p.Done)
			continue
		}
		kept = append(kept, p)
	}
	clear(m.queue[len(kept):])
	m.queue = kept
}

// StopPrompts drops everything queued (barge-in).
func (m *Member) StopPrompts() {
	defer m.lock()()
	m.stopLocked()
}

func (m *Member) stopLocked() {
	for _, p := range m.queue {
		close(p.Done)
	}
	clear(m.queue)
	m.queue = m.queue[:0]
}

// Playing reports whether a prompt is queued or playing.
func (m *Member) Playing() bool {
	defer m.lock()()
	return len(m.queue) > 0
}

// DetectDTMF turns in-band DTMF detection on (f != nil) or off. f runs on
// the mixer goroutine and must not block.
func (m *Member) DetectDTMF(f func(byte)) {
	defer m.lock()()
	if f == nil {
		m.detect, m.onDigit = nil, nil
		return
	}
	m.detect, m.onDigit = dtmf.NewDetector(), f
}

// dropFinished removes prompts whose last frame has been played, so that
// the member is heard again from the very next tick.
func (m *Member) dropFinished() {
	for len(m.queue) > 0 {
		p := m.queue[0]
		if p.pos < len(p.samples) || (p.loop && len(p.samples) > 0) {
			return
		}
		close(p.Done)
		m.queue[0] = nil
		m.queue = m.queue[1:]
	}
}

// OnTalking sets a callback for talkspurt start (true) and end (false). It
// runs on the mixer goroutine and must not block.
func (m *Member) OnTalking(f func(bool)) {
	defer m.lock()()
	m.onTalk = f
}

func (m *Member) talkState(loud bool) {
	switch {
	case loud:
		m.quiet = 0
		if !m.talking {
			m.talking = true
			m.onTalk(true)
		}
	case m.talking:
		m.quiet++
		if m.quiet >= talkHang {
			m.talking = false
			m.onTalk(false)
		}
	}
}

// nextPrompt fills f from the head of the queue; false when nothing plays.
func (m *Member) nextPrompt(f *dsp.Frame) bool {
	for len(m.queue) > 0 {
		p := m.queue[0]
		if p.pos >= len(p.samples) {
			if p.loop && len(p.samples) > 0 {
				p.pos = 0
			} else {
				close(p.Done)
				m.queue[0] = nil
				m.queue = m.queue[1:]
				continue
			}
		}
		n := copy(f[:], p.samples[p.pos:])
		clear(f[n:])
		p.pos += n
		return true
	}
	return false
}

// keepLoudest leaves contrib set on at most k members, the loudest: each
// round drops the quietest remaining contributor. O(n*(n-k)) only when more
// than k talk at once, which is rare; no allocation.
func (g *Group) keepLoudest(k int) {
	for {
		n := 0
		var quietest *Member
		for _, m := range g.members {
			if !m.contrib {
				continue
			}
			n++
			if quietest == nil || m.energy < quietest.energy {
				quietest = m
			}
		}
		if n <= k {
			return
		}
		quietest.contrib = false
	}
}

// Tick mixes one frame for every member. The workers call it; tests call it
// directly to step the mix without a clock.
func (g *Group) Tick() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.bus.Reset()
	g.haveFull = false
	g.haveEnc = [2]bool{}
	for _, m := range g.members {
		if m.poller != nil {
			m.poller.Poll()
		}
		m.dropFinished()
		got := m.in.ReadFrame(&m.frame)
		if m.detect != nil && got {
			if d, ok := m.detect.Process(m.frame[:]); ok {
				m.onDigit(d)
			}
		}
		// While a prompt plays for a member, that member is not heard (as
		// in SEMS); a muted member is not heard but still hears.
		heard := got && !m.muted.Load() && len(m.queue) == 0
		m.energy = 0
		if heard {
			m.energy = mix.Energy(&m.frame)
		}
		m.contrib = heard && m.energy > silenceThreshold
		if m.onTalk != nil {
			m.talkState(heard && m.energy > talkThreshold)
		}
	}
	if g.maxTalkers > 0 {
		g.keepLoudest(g.maxTalkers)
	}
	nHeard := 0
	for _, m := range g.members {
		if m.contrib {
			g.bus.Add(&m.frame)
			nHeard++
		}
	}
	for _, m := range g.members {
		pt := m.out.PT()
		switch {
		case m.nextPrompt(&m.outF):
			g711.Encode(pt, m.enc[:], m.outF[:])
			m.out.WriteEncoded(m.enc[:])
		case m.silent != nil && (nHeard == 0 || nHeard == 1 && m.contrib):
			// No one else is heard: the member's mix is silence, which
			// its output sends without a mix or an encode (DTX).
			m.silent.WriteSilence()
		case m.contrib:
			g.bus.Minus(&m.frame, &m.outF)
			g711.Encode(pt, m.enc[:], m.outF[:])
			m.out.WriteEncoded(m.enc[:])
		default:
			ci := codecIndex(pt)
			if !g.haveEnc[ci] {
				if !g.haveFull {
					g.bus.Full(&g.full)
					g.haveFull = true
				}
				g711.Encode(pt, g.shared[ci][:], g.full[:])
				g.haveEnc[ci] = true
			}
			m.out.WriteEncoded(g.shared[ci][:])
		}
	}
}
