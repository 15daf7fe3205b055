// Package jitter is a playout buffer for one incoming RTP audio stream. It
// works in samples, not packets, because phones send 10 to 60 ms per packet
// whatever the SDP ptime said, and the room consumes fixed 20 ms frames.
//
// Packets are placed by RTP timestamp into a ring of samples; Get reads one
// dsp.Frame at the playout point, which starts prefill samples behind the
// first packet and then advances by one frame per call. Timestamps are
// compared with RFC 3550 serial arithmetic (the difference as int32), so
// wrap-around at 2^32 is invisible. Missing audio is concealed the cheap way
// a server can afford (spec/performance.md 3.5): the last good frame is
// repeated at -6 dB, then at -12 dB, then the stream is reported Empty.
//
// # Adaptive playout
//
// Fed with times (PutAt with each packet's arrival, GetAt with each tick's),
// the buffer tracks the arrival phase: for every frame it plays it notes the
// slack, how long before the tick that read it its last packet arrived.
// When for a window (windowGets ticks, 1 s) every frame had a whole frame
// of slack over the guard, that frame of delay is dropped; as soon as a
// frame's slack falls under half the guard, or a packet comes after its
// frame was played, one frame is added. The guard starts at baseGuard,
// grows with every late packet (to its lateness) and near miss, and decays
// slowly back; after a late packet shrinking also waits, twice as long as
// after the previous one. On a clean network the
// playout settles where each frame is read at the first tick after it
// arrives; jitter, bursts and a slow sender's clock make it grow, a fast
// one's make it drop frames, each one frame at a time. Put and Get (no
// times) keep a fixed delay of prefill.
//
// A Buffer is not safe for concurrent use: the RTP leg that owns it calls Put
// from its read loop and Get from the room tick, so it guards it with its own
// mutex. Nothing here allocates after New, reads the clock or does I/O.
package jitter

import (
	"math/bits"

	"webconf/dsp"
)

// State says what Get returned.
type State uint8

const (
	// Empty means silence: nothing was buffered for this frame and
	// concealment is exhausted (or the stream has not started).
	Empty State = iota
	// Audio means at least one received sample is in the frame; gaps
	// within it are zero.
	Audio
	// Concealed means nothing was received for this frame and it is an
	// attenuated repeat of the last Audio frame.
	Concealed
)

func (s State) String() string {
	switch s {
	case Empty:
		return "empty"
	case Audio:
		return "audio"
	case Concealed:
		return "concealed"
	}
	return "unknown"
}

// maxConceal is how many frames in a row may be concealed: 40 ms of decaying
// repetition bridges a lost packet or two; beyond that repetition sounds
// worse than silence.
const maxConceal = 2

// minSpan is the least room kept ahead of the playout point beyond prefill:
// one 60 ms packet, the largest ptime phones commonly use.
const minSpan = 3 * dsp.FrameSamples

// Stats counts what the buffer had to do. All counters only grow.
type Stats struct {
	// Late counts packets that arrived (wholly or partly) after their
	// samples' playout time; their late samples were dropped.
	Late uint64
	// Overflow counts packets that would have ended more than maxDelay
	// ahead of the playout point; older audio was dropped to bring the
	// delay back to prefill.
	Overflow uint64
	// Underruns counts times the stream ran dry: Get went from Audio or
	// Concealed to Empty.
	Underruns uint64
	// Concealed counts frames returned as Concealed.
	Concealed uint64
	// Resyncs counts times the playout point was moved to follow the
	// sender: timestamp jumps beyond maxDelay either way (new talkspurt
	// after a long gap, new source), and restarts after running dry that
	// land somewhere else than the old playout point. Anchoring the first
	// packet (also after Reset) is not counted.
	Resyncs uint64
	// Trimmed counts frames dropped to cut the delay: because the buffer
	// had held well over prefill for a second (Put and Get: a burst, a
	// stalled sender catching up, would otherwise add its delay for good),
	// or, adaptive, because every frame of a window arrived a frame and a
	// guard ahead of its tick.
	Trimmed uint64
	// Grown counts frames added to the adaptive playout delay (a late
	// packet, or slack under half the guard).
	Grown uint64
}

// Adaptive playout (times in nanoseconds).
const (
	frameNS = int64(dsp.FrameSamples) * 1e9 / dsp.SampleRate
	// windowGets is how many ticks the slack is watched before the delay
	// may drop a frame: shrinking is slow, growing immediate.
	windowGets = 50
	// baseGuard is the least slack kept: the tick's and the receive
	// path's own scheduling noise on a loaded host.
	baseGuard = int64(2e6)
	// maxGuard bounds what late packets teach.
	maxGuard = int64(60e6)
	// maxAdaptive bounds the adaptive delay: 200 ms.
	maxAdaptive = 10 * dsp.FrameSamples
	// maxHoldoff bounds how many windows a late packet stops shrinking
	// for (the hold-off doubles with each late packet): when arrivals
	// are only known to the tick (a receiver that reads at the tick),
	// the hold-off is all that keeps a stream whose packets come around
	// the tick from shrinking into late packets again and again.
	maxHoldoff = 32
	// minHoldoff is the first late packet's hold-off (4 s): a stream
	// whose packets straddle the tick costs a concealed frame at most
	// every 4, then 8, 16 and 32 s, not every second.
	minHoldoff = 4
)

// trimExcess is how far over prefill the buffer may stay (two frames of
// jitter headroom), and trimAfter for how many frames in a row, before a
// frame is dropped to bring the delay back down.
const (
	trimExcess = 2 * dsp.FrameSamples
	trimAfter  = 50
)

// Buffer is a jitter buffer for one stream at dsp.SampleRate.
type Buffer struct {
	ring     []int16  // samples by timestamp & mask
	present  []uint64 // one bit per ring slot: holds an unplayed sample
	arrive   []int64  // per present word: when its first sample arrived (PutAt's time)
	mask     uint32
	maxDelay int
	prefill  int
	// delay is how far behind a packet the playout point is placed when
	// it anchors (prefill, or the adaptive delay).
	delay int

	anchored bool
	playout  uint32 // timestamp of the next sample Get returns
	buffered int    // set bits in present; all lie in [playout, playout+maxDelay)

	last       dsp.Frame // last Audio frame, for concealment
	haveLast   bool
	concealRun int
	lastState  State
	excessRun  int  // consecutive Gets that left more than prefill+trimExcess buffered
	dtx        bool // the sender declared silence (Silence); running dry is no underrun

	// Adaptive playout, only once GetAt is used.
	timed    bool
	lastGet  int64 // GetAt's time of the latest tick
	gets     int   // ticks in the current window
	minSlack int64 // least slack of a whole frame in the window
	seen     bool  // minSlack holds a frame's slack
	late     bool  // a packet came late in the window
	guard    int64
	hold     bool // the next GetAt plays concealment without advancing
	holdoff  int  // windows to wait before shrinking
	backoff  int  // the next late packet's holdoff
	clean    int  // windows without a late packet

	stats Stats
}

// New returns a buffer that plays out prefill samples (e.g. 160, one frame)
// behind the first packet and holds at most maxDelay samples (e.g. 8000,
// one second) ahead of the playout point. maxDelay is raised to at least
// prefill plus 60 ms and capped at 2^20 samples (131 s); prefill is capped
// at 2^19. Memory is about 2 bytes per sample of maxDelay, rounded up to a
// power of two: 16 KiB for one second.
func New(maxDelay, prefill int) *Buffer {
	prefill = min(max(prefill, 0), 1<<19)
	maxDelay = min(max(maxDelay, prefill+minSpan), 1<<20)
	size := 1 << bits.Len(uint(maxDelay-1))
	return &Buffer{
		ring:     make([]int16, size),
		present:  make([]uint64, (size+63)/64),
		arrive:   make([]int64, (size+63)/64),
		mask:     uint32(size - 1),
		maxDelay: maxDelay,
		prefill:  prefill,
		delay:    prefill,
		guard:    baseGuard,
		backoff:  minHoldoff,
	}
}

// Reset forgets all audio and the playout point, as for a new stream (for
// example a new SSRC). The counters are kept.
func (b *Buffer) Reset() {
	clear(b.present)
	b.anchored = false
	b.buffered = 0
	b.haveLast = false
	b.concealRun = 0
	b.lastState = Empty
	b.hold = false
}

// Silence tells the buffer that the sender declared silence (an RFC 3389
// comfort noise packet; discontinuous transmission follows): the last
// frame is not repeated into it, and running dry is not an underrun. The
// next talkspurt starts at the current delay.
func (b *Buffer) Silence() {
	b.haveLast = false
	b.dtx = true
}

// Stats returns a copy of the counters.
func (b *Buffer) Stats() Stats { return b.stats }

// Buffered returns how many received samples wait to be played.
func (b *Buffer) Buffered() int { return b.buffered }

// anchor places the playout point delay samples before ts, discarding
// everything buffered.
func (b *Buffer) anchor(ts uint32) {
	clear(b.present)
	b.buffered = 0
	playout := ts - uint32(b.delay)
	if b.anchored && playout != b.playout {
		b.stats.Resyncs++
	}
	b.playout = playout
	b.anchored = true
}

// Put stores a packet's samples; ts is the RTP timestamp of samples[0].
// The samples are copied.
func (b *Buffer) Put(ts uint32, samples []int16) { b.PutAt(ts, samples, 0) }

// PutAt is Put with the packet's arrival time (ns, on the clock GetAt's
// times come from), for adaptive playout. 0 means "some time since the
// last GetAt": a receiver that reads its socket only at the tick knows
// no better, and the buffer then takes the previous tick as the arrival.
func (b *Buffer) PutAt(ts uint32, samples []int16, at int64) {
	if len(samples) == 0 {
		return
	}
	if at == 0 {
		at = b.lastGet
	}
	b.dtx = false
	if n := len(samples); n > b.maxDelay {
		// Only the newest maxDelay samples can ever be played.
		ts += uint32(n - b.maxDelay)
		samples = samples[n-b.maxDelay:]
	}
	if !b.anchored {
		b.anchor(ts)
	}
	d := int32(ts - b.playout) // RFC 3550 serial arithmetic
	switch {
	case d > int32(b.maxDelay) || d < -int32(b.maxDelay):
		// A jump no jitter explains: a new talkspurt after a long
		// silence, or a new source. Follow it.
		b.anchor(ts)
	case b.buffered == 0 && (d < 0 || b.lastState == Empty):
		// Nothing left to play: either the sender fell behind our
		// playout (its clock is slow, or a delay spike), or a new
		// talkspurt starts after we ran dry. Either way, buffer
		// the delay again instead of dropping every packet as late or
		// playing with no cushion.
		if d < 0 {
			b.lateArrival(at)
		}
		b.anchor(ts)
	}
	d = int32(ts - b.playout)
	if d < 0 {
		b.lateArrival(at)
		// Played already: what is late is dropped, and the next
		// tick waits a frame for what follows.
		b.hold = b.timed
		b.stats.Late++
		if int(-d) >= len(samples) {
			return
		}
		samples = samples[-d:]
		ts = b.playout
		d = 0
	}
	if end := int(d) + len(samples); end > b.maxDelay {
		// Too much queued: drop the oldest audio so that this packet
		// again starts prefill behind the playout point, bounding the
		// latency rather than sitting at maxDelay for good.
		b.stats.Overflow++
		b.advance(max(end-b.maxDelay, int(d)-b.delay))
	}
	j := ts & b.mask
	k := copy(b.ring[j:], samples)
	copy(b.ring, samples[k:])
	b.buffered += b.setBits(j, len(samples), at)
}

// lateArrival adapts to a packet that came after its playout (at, when
// known, after the tick that played its place): the delay grows by a frame
// (once a window: a stall makes many packets late at once), the guard by
// at least the lateness, and shrinking waits: twice as long as the last
// time, up to maxHoldoff windows.
func (b *Buffer) lateArrival(at int64) {
	if !b.timed {
		return
	}
	if b.lastGet != 0 && at > b.lastGet {
		b.guard = max(b.guard, at-b.lastGet+baseGuard)
	}
	if b.late {
		return
	}
	b.late = true
	b.guard = min(maxGuard, b.guard+baseGuard)
	b.holdoff = b.backoff
	b.backoff = min(maxHoldoff, 2*b.backoff)
	if b.delay < maxAdaptive {
		b.delay += dsp.FrameSamples
		b.stats.Grown++
	}
}

// advance drops n samples at the playout point.
func (b *Buffer) advance(n int) {
	b.buffered -= b.clearBits(b.playout&b.mask, n)
	b.playout += uint32(n)
}

// The present bitmap is walked a 64-bit word at a time. The ring size is a
// power of two of at least 512 (minSpan rounded up), so a word never
// straddles the ring's end.

// runMask returns k ones starting at bit off (k+off <= 64).
func runMask(off uint32, k int) uint64 {
	if k == 64 {
		return ^uint64(0)
	}
	return (uint64(1)<<k - 1) << off
}

// setBits marks n slots from ring index j (wrapping), notes at as the
// arrival of words that held nothing, and returns how many slots were not
// already marked.
func (b *Buffer) setBits(j uint32, n int, at int64) int {
	added := 0
	for n > 0 {
		j &= b.mask
		off := j & 63
		k := min(n, 64-int(off))
		m := runMask(off, k)
		w := &b.present[j>>6]
		if *w == 0 {
			b.arrive[j>>6] = at
		}
		added += k - bits.OnesCount64(*w&m)
		*w |= m
		j += uint32(k)
		n -= k
	}
	return added
}

// clearBits unmarks n slots from ring index j and returns how many were marked.
func (b *Buffer) clearBits(j uint32, n int) int {
	removed := 0
	for n > 0 {
		j &= b.mask
		off := j & 63
		k := min(n, 64-int(off))
		m := runMask(off, k)
		w := &b.present[j>>6]
		removed += bits.OnesCount64(*w & m)
		*w &^= m
		j += uint32(k)
		n -= k
	}
	return removed
}

// countBits returns how many of n slots from ring index j are marked.
func (b *Buffer) countBits(j uint32, n int) int {
	c := 0
	for n > 0 {
		j &= b.mask
		off := j & 63
		k := min(n, 64-int(off))
		c += bits.OnesCount64(b.present[j>>6] & runMask(off, k))
		j += uint32(k)
		n -= k
	}
	return c
}

// Get writes the frame at the playout point into out, advances the playout
// point by one frame and says what the frame holds.
func (b *Buffer) Get(out *dsp.Frame) State {
	if !b.anchored {
		*out = dsp.Frame{}
		return Empty
	}
	got := 0
	start := b.playout & b.mask
	if b.buffered > 0 {
		got = b.countBits(start, dsp.FrameSamples)
	}
	return b.play(out, start, got)
}

// GetAt is Get at a tick's time (ns, the clock PutAt's times come from,
// never 0), for adaptive playout: see the package comment.
func (b *Buffer) GetAt(out *dsp.Frame, at int64) State {
	b.timed = true
	prev := b.lastGet
	b.lastGet = at
	if !b.anchored {
		*out = dsp.Frame{}
		return Empty
	}
	if b.hold {
		// One frame more delay: play nothing new this tick.
		b.hold = false
		return b.miss(out)
	}
	got := 0
	start := b.playout & b.mask
	if b.buffered > 0 {
		got = b.countBits(start, dsp.FrameSamples)
	}
	if got == dsp.FrameSamples && prev != 0 {
		// The frame's slack: from the arrival of its last packet to
		// this tick.
		newest := int64(0)
		for w, end := start>>6, (start+dsp.FrameSamples-1)&b.mask>>6; ; w = (w + 1) & (b.mask >> 6) {
			newest = max(newest, b.arrive[w])
			if w == end {
				break
			}
		}
		slack := at - newest
		if !b.seen || slack < b.minSlack {
			b.minSlack, b.seen = slack, true
		}
		if slack < b.guard/2 {
			// Nearly late (jitter, or a sender whose clock is
			// slower than ours): the next tick waits a frame.
			b.hold = true
			b.late = true
			b.guard = min(maxGuard, b.guard+baseGuard/2)
			b.stats.Grown++
		}
	}
	if b.gets++; b.gets >= windowGets {
		if drop := b.adapt(); drop > 0 {
			// Less delay: this tick plays a later frame.
			b.advance(drop)
			start = b.playout & b.mask
			got = 0
			if b.buffered > 0 {
				got = b.countBits(start, dsp.FrameSamples)
			}
		}
	}
	return b.play(out, start, got)
}

// adapt ends a window of ticks: true when a frame of delay is to go.
// adapt ends a window of ticks and returns how many samples of delay are
// to go: as many whole frames as every frame of the window had over the
// guard (after a stall, all of its backlog at once), but one while a late
// packet's hold-off lasts.
func (b *Buffer) adapt() (drop int) {
	if b.seen && b.minSlack >= frameNS+b.guard {
		frames := int((b.minSlack - b.guard) / frameNS)
		if b.late || b.holdoff > 0 {
			frames-- // keep the frame a late packet asked for
		}
		drop = min(frames*dsp.FrameSamples, b.buffered/dsp.FrameSamples*dsp.FrameSamples)
		b.delay = max(0, b.delay-drop)
		b.stats.Trimmed += uint64(drop / dsp.FrameSamples)
	}
	if b.holdoff > 0 && !b.late {
		b.holdoff--
	}
	if !b.late {
		b.guard = baseGuard + (b.guard-baseGuard)*15/16
		if b.clean++; b.clean >= 4*maxHoldoff {
			// A long time without a late packet: forgive one.
			b.clean = 0
			b.backoff = max(minHoldoff, b.backoff/2)
		}
	} else {
		b.clean = 0
	}
	b.gets, b.seen, b.late = 0, false, false
	return drop
}

// play returns the frame at start (got of its samples present) and
// advances the playout point.
func (b *Buffer) play(out *dsp.Frame, start uint32, got int) State {
	switch {
	case got == dsp.FrameSamples:
		// The common case: the whole frame arrived.
		k := copy(out[:], b.ring[start:])
		copy(out[k:], b.ring)
		b.clearBits(start, dsp.FrameSamples)
	case got > 0:
		for i := range out {
			j := (start + uint32(i)) & b.mask
			if b.present[j>>6]&(1<<(j&63)) != 0 {
				out[i] = b.ring[j]
			} else {
				out[i] = 0
			}
		}
		b.clearBits(start, dsp.FrameSamples)
	}
	b.buffered -= got
	b.playout += dsp.FrameSamples
	if got > 0 {
		b.last = *out
		b.haveLast = true
		b.concealRun = 0
		b.lastState = Audio
		if !b.timed {
			b.trim()
		}
		return Audio
	}
	st := b.miss(out)
	if !b.timed {
		b.trim()
	}
	return st
}

// miss fills out for a frame with nothing received: concealment while it
// lasts, then silence.
func (b *Buffer) miss(out *dsp.Frame) State {
	var st State
	switch {
	case b.haveLast && b.concealRun < maxConceal:
		// Repeat the last good frame at -6 dB, then -12 dB.
		st = Concealed
		b.concealRun++
		div := int16(1) << b.concealRun
		for i, s := range b.last {
			out[i] = s / div
		}
		b.stats.Concealed++
	default:
		st = Empty
		*out = dsp.Frame{}
		b.haveLast = false
		if b.lastState != Empty && !b.dtx {
			b.stats.Underruns++
		}
	}
	b.lastState = st
	return st
}

// trim (Put and Get only) drops the oldest frame when the buffer has held more than
// prefill+trimExcess samples after every Get for trimAfter frames: the
// sender is not jittering, it is ahead, and every frame of that lead is
// delay every listener hears.
func (b *Buffer) trim() {
	if b.buffered <= b.prefill+trimExcess {
		b.excessRun = 0
		return
	}
	if b.excessRun++; b.excessRun < trimAfter {
		return
	}
	b.excessRun = 0
	b.advance(dsp.FrameSamples)
	b.stats.Trimmed++
}
