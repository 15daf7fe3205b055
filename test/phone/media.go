package phone

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"webconf/dsp"
	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
)

// DTMFMode selects how SendDTMF signals digits.
type DTMFMode int

const (
	// RFC4733 sends telephone-event RTP packets.
	RFC4733 DTMFMode = iota
	// INFO sends SIP INFO requests with application/dtmf-relay bodies.
	INFO
	// Inband mixes the DTMF dual tones into the audio.
	Inband
)

func (m DTMFMode) String() string {
	switch m {
	case RFC4733:
		return "RFC4733"
	case INFO:
		return "INFO"
	case Inband:
		return "Inband"
	}
	return fmt.Sprintf("DTMFMode(%d)", int(m))
}

// Errors from SendDTMF.
var (
	// ErrBadDigit is a character that is not a DTMF key (0-9 * # A-D).
	ErrBadDigit = errors.New("phone: not a DTMF digit")
	// ErrNoTelephoneEvent means RFC 4733 DTMF was asked for but the
	// server's answer did not accept telephone-event.
	ErrNoTelephoneEvent = errors.New("phone: telephone-event not negotiated")
)

// Timing of one key press, chosen like a quick human: ~100 ms of tone or
// events, then a 60 ms pause (a detector needs both, ITU-T Q.24).
const (
	dtmfOn       = 100 * time.Millisecond
	dtmfGap      = 60 * time.Millisecond
	dtmfEnds     = 3 // RFC 4733 2.5.1.4: the final packet is sent three times
	dtmfVolume   = 10
	dtmfInbandAm = 4000 // per tone, like SetTone
	toneAmp      = 4000
	infoDuration = 160 // ms, in the INFO body
)

// maxSamples is one packet at the longest ptime the phone supports.
const maxSamples = 60 * dsp.SampleRate / 1000

// ---------------------------------------------------------------------------
// Sending.

// dtmfJob is a SendDTMF call handed to the send loop.
type dtmfJob struct {
	ctx    context.Context
	digits string
	mode   DTMFMode
	done   chan error // buffered 1
}

// txState belongs to the send loop except for the atomics and channels.
type txState struct {
	on    atomic.Bool                 // SetSending
	tones atomic.Pointer[[]*tone.Osc] // SetTone; read by the send loop only
	jobs  chan *dtmfJob
	jobMu sync.Mutex // one SendDTMF at a time

	// Owned by the send loop.
	seq    uint16
	ts     uint32
	ssrc   uint32
	first  bool
	pcm    [maxSamples]int16
	dt     [maxSamples]int16
	pkt    [12 + maxSamples]byte
	evBuf  [4]byte
	job    *dtmfJob
	digit  int // index into job.digits
	phase  int // 0 tone/events, 1 end packets, 2 gap
	tick   int // ticks within the phase
	evTS   uint32
	evCode uint8
	shdr   rtp.Header // SRTP's scratch header
}

func (t *txState) init() {
	t.on.Store(true)
	t.jobs = make(chan *dtmfJob, 1)
	t.ssrc = uint32(randUint64())
	t.seq = uint16(randUint64())
	t.ts = uint32(randUint64())
	t.first = true
}

// SetTone sets what the phone sends from now on: the sum of sinusoids at
// freqs, each at Config.ToneAmplitude (default 4000). No frequencies sends
// silence.
func (p *Phone) SetTone(freqs ...float64) {
	amp := p.cfg.ToneAmplitude
	if amp <= 0 {
		amp = toneAmp
	}
	oscs := make([]*tone.Osc, len(freqs))
	for i, f := range freqs {
		oscs[i] = tone.NewOsc(f, amp)
	}
	p.tx.tones.Store(&oscs)
}

// SetSending stops or resumes sending RTP altogether (for RTP timeout
// tests). While off, the RTP clock keeps running, so on resume the
// timestamps jump as they would after a real outage.
func (p *Phone) SetSending(on bool) { p.tx.on.Store(on) }

// maxCatchUp bounds the burst after a stalled wake-up. A phone's audio
// exists from the moment it is "captured", so after a short stall (GC, a
// loaded test machine) the missed packets are still sent and the stream
// stays gapless; only a stall of over a second becomes a timestamp jump.
const maxCatchUp = 50

// sendLoop sends one packet per ptime on absolute deadlines: each deadline
// is start + k*ptime, so scheduling delays do not accumulate into drift,
// and a late wake-up sends the missed packets at once (up to a bound).
func (p *Phone) sendLoop() {
	defer p.wg.Done()
	frame := time.Duration(p.cfg.Ptime) * time.Millisecond
	n := p.cfg.Ptime * dsp.SampleRate / 1000
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			p.tx.abortJob(ErrCallEnded)
			return
		case <-timer.C:
		}
		now := time.Now()
		for late := 0; !next.After(now); late++ {
			if late == maxCatchUp {
				// Asleep far too long: skip the rest instead of
				// bursting, but keep the RTP clock true (RFC 3550 5.1).
				skipped := now.Sub(next)/frame + 1
				p.tx.ts += uint32(skipped) * uint32(n)
				next = next.Add(skipped * frame)
				break
			}
			p.sendTick(n)
			next = next.Add(frame)
		}
		timer.Reset(time.Until(next))
	}
}

// sendTick produces and sends one packet of n samples. It must not
// allocate: it runs every ptime for every phone in a test.
func (p *Phone) sendTick(n int) {
	t := &p.tx
	if t.job == nil {
		select {
		case j := <-t.jobs:
			t.startJob(j)
		default:
		}
	}
	send := t.on.Load() && !p.ended.Load()
	if t.job != nil && t.job.mode == RFC4733 && t.phase < 2 {
		p.sendEvent(n, send)
	} else {
		p.sendAudio(n, send)
	}
	t.ts += uint32(n)
	if t.job != nil {
		t.advanceJob(n, p.cfg.Ptime)
	}
}

func (p *Phone) sendAudio(n int, send bool) {
	t := &p.tx
	pcm := t.pcm[:n]
	var oscs []*tone.Osc
	if o := t.tones.Load(); o != nil {
		oscs = *o
	}
	if len(oscs) == 0 {
		clear(pcm)
	} else {
		oscs[0].Fill(pcm)
		for _, o := range oscs[1:] {
			o.Add(pcm)
		}
	}
	if j := t.job; j != nil && j.mode == Inband && t.phase == 0 {
		dt := t.dt[:n]
		clear(dt)
		dtmf.Generate(dt, j.digits[t.digit], t.tick*n, dtmfInbandAm)
		for i, s := range dt {
			pcm[i] = dsp.Clamp16(int32(pcm[i]) + int32(s))
		}
	}
	if !send {
		return
	}
	g711.Encode(p.codec, t.pkt[12:12+n], pcm)
	// RFC 3551 section 4.1: marker on the first packet of a talkspurt;
	// we never suppress silence, so only the very first packet has it.
	p.writeRTP(p.codec, t.first, t.ts, 12+n)
	t.first = false
}

// sendEvent sends one RFC 4733 telephone-event packet: all packets of an
// event share the timestamp of its start, the first has the marker, the
// duration grows each packet, and the end packet is repeated (2.5.1).
func (p *Phone) sendEvent(n int, send bool) {
	t := &p.tx
	ev := dtmf.Event{Code: t.evCode, Volume: dtmfVolume}
	on := p.onTicks()
	if t.phase == 0 {
		ev.Duration = uint16((t.tick + 1) * n)
	} else {
		ev.End = true
		ev.Duration = uint16(on * n)
	}
	if !send {
		return
	}
	payload := ev.Append(t.evBuf[:0])
	copy(t.pkt[12:], payload)
	p.writeRTP(uint8(p.dtmfPT), t.phase == 0 && t.tick == 0, t.evTS, 12+len(payload))
}

func (p *Phone) writeRTP(pt uint8, marker bool, ts uint32, size int) {
	t := &p.tx
	dst := p.serverRTP.Load()
	if dst == nil {
		return
	}
	h := rtp.Header{
		Version:        2,
		Marker:         marker,
		PayloadType:    pt,
		SequenceNumber: t.seq,
		Timestamp:      ts,
		SSRC:           t.ssrc,
	}
	if _, err := h.MarshalTo(t.pkt[:12]); err != nil {
		p.log.Error("marshal RTP header", "error", err)
		return
	}
	t.seq++
	wire, ok := p.protect(t.pkt[:], size)
	if !ok {
		return
	}
	if _, err := p.rtpConn.WriteToUDPAddrPort(wire, *dst); err != nil && !errors.Is(err, net.ErrClosed) {
		p.log.Debug("send RTP", "error", err)
	}
}

func (p *Phone) onTicks() int { return ticksFor(dtmfOn, p.cfg.Ptime) }

// ticksFor rounds d to whole packets, at least one.
func ticksFor(d time.Duration, ptime int) int {
	ms := int(d / time.Millisecond)
	return max(1, (ms+ptime/2)/ptime)
}

func (t *txState) startJob(j *dtmfJob) {
	t.job = j
	t.digit = 0
	t.beginDigit()
}

// beginDigit starts the current digit, or finishes the job.
func (t *txState) beginDigit() {
	j := t.job
	if err := j.ctx.Err(); err != nil {
		t.finishJob(err)
		return
	}
	if t.digit >= len(j.digits) {
		t.finishJob(nil)
		return
	}
	t.phase, t.tick = 0, 0
	t.evTS = t.ts
	t.evCode, _ = dtmf.Code(j.digits[t.digit])
}

func (t *txState) finishJob(err error) {
	t.job.done <- err
	t.job = nil
}

func (t *txState) abortJob(err error) {
	if t.job != nil {
		t.finishJob(err)
	}
	select {
	case j := <-t.jobs:
		j.done <- err
	default:
	}
}

// advanceJob moves the DTMF state machine on by one packet.
func (t *txState) advanceJob(n, ptime int) {
	t.tick++
	on, gap := ticksFor(dtmfOn, ptime), ticksFor(dtmfGap, ptime)
	switch t.phase {
	case 0:
		if t.tick >= on {
			t.tick = 0
			if t.job.mode == RFC4733 {
				t.phase = 1
			} else {
				t.phase = 2
			}
		}
	case 1:
		if t.tick >= dtmfEnds {
			t.phase, t.tick = 2, 0
		}
	case 2:
		if t.tick >= gap {
			t.digit++
			t.beginDigit()
		}
	}
}

// SendDTMF signals digits (0-9 * # A-D) and returns when the last one has
// been sent. See DTMFMode for the three ways.
func (p *Phone) SendDTMF(ctx context.Context, digits string, mode DTMFMode) error {
	for i := range len(digits) {
		if _, ok := dtmf.Code(digits[i]); !ok {
			return fmt.Errorf("%w: %q", ErrBadDigit, digits[i])
		}
	}
	if err := p.live(); err != nil {
		return err
	}
	p.tx.jobMu.Lock()
	defer p.tx.jobMu.Unlock()
	switch mode {
	case INFO:
		return p.sendInfo(ctx, digits)
	case RFC4733:
		if p.dtmfPT < 0 {
			return ErrNoTelephoneEvent
		}
	case Inband:
	default:
		return fmt.Errorf("phone: unknown DTMF mode %v", mode)
	}
	j := &dtmfJob{ctx: ctx, digits: digits, mode: mode, done: make(chan error, 1)}
	select {
	case p.tx.jobs <- j:
	case <-p.stop:
		return ErrCallEnded
	case <-ctx.Done():
		return fmt.Errorf("phone: DTMF: %w", ctx.Err())
	}
	select {
	case err := <-j.done:
		if err != nil {
			return fmt.Errorf("phone: DTMF: %w", err)
		}
		return nil
	case <-p.stop:
		return ErrCallEnded
	}
}

// sendInfo sends one INFO per digit (the de-facto application/dtmf-relay
// format, as SEMS parses it), paced like a key press.
func (p *Phone) sendInfo(ctx context.Context, digits string) error {
	for i := range len(digits) {
		start := time.Now()
		req := p.inDialog(sip.INFO)
		req.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		req.SetBody(fmt.Appendf(nil, "Signal=%c\r\nDuration=%d\r\n", digits[i], infoDuration))
		res, err := p.sess.Do(ctx, req)
		if err != nil {
			return fmt.Errorf("phone: INFO DTMF %q: %w", digits[i], err)
		}
		if !res.IsSuccess() {
			return &StatusError{Code: res.StatusCode, Reason: res.Reason}
		}
		wait := time.Until(start.Add(infoDuration*time.Millisecond + dtmfGap))
		if i == len(digits)-1 || wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("phone: INFO DTMF: %w", ctx.Err())
		}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Receiving.

const (
	ringSamples = 3 * dsp.SampleRate // ~3 s of heard audio
	// jitterSlack is how far behind the wall clock received audio may be
	// before the gap is taken as silence. It must exceed the longest
	// packet (60 ms) plus scheduling jitter, or steady audio would get
	// silence spliced into it between packets.
	jitterSlack = 100 * time.Millisecond
)

// rxState is the receive side: counters and the ring of heard audio. The
// ring is indexed by arrival, in samples since the phone started, so gaps
// in reception become silence and a Level over a window measures what
// was actually heard in that window.
type rxState struct {
	mu      sync.Mutex
	start   time.Time
	ring    []int16
	written int64 // samples ever written; the next goes to written%len
	packets uint64
	lastSeq uint16
	ptimes  map[int]int
	cn      ComfortNoise
	afterCN bool        // the last packet was comfort noise
	pcm     [1500]int16 // decode scratch, owned by the receive loop
}

// ComfortNoise is what a phone received of comfort noise (RFC 3389,
// payload type 13) and of the audio after it.
type ComfortNoise struct {
	Packets uint64 // CN packets
	Level   byte   // the last one's noise level (-dBov)
	TS      uint32 // the last one's RTP timestamp
	// Resumed counts audio packets that followed a CN packet (the first
	// of a talkspurt), Marked those of them with the marker bit, and
	// ResumeTS is the latest one's timestamp.
	Resumed, Marked uint64
	ResumeTS        uint32
}

// ComfortNoise returns the comfort noise counters.
func (p *Phone) ComfortNoise() ComfortNoise {
	p.rx.mu.Lock()
	defer p.rx.mu.Unlock()
	return p.rx.cn
}

func (r *rxState) init(now time.Time) {
	r.start = now
	r.ring = make([]int16, ringSamples)
	r.ptimes = make(map[int]int)
}

// clockIndex is the sample index the wall clock has reached.
func (r *rxState) clockIndex(now time.Time) int64 {
	return int64(now.Sub(r.start)) * dsp.SampleRate / int64(time.Second)
}

// catchUp writes silence for time in which nothing arrived. r.mu held.
func (r *rxState) catchUp(now time.Time) {
	target := r.clockIndex(now) - int64(jitterSlack)*dsp.SampleRate/int64(time.Second)
	gap := target - r.written
	if gap <= 0 {
		return
	}
	if gap >= int64(len(r.ring)) {
		clear(r.ring)
		r.written = target
		return
	}
	r.put(nil, int(gap))
}

// put appends samples (or n zeros if samples is nil) to the ring. r.mu held.
func (r *rxState) put(samples []int16, n int) {
	if samples != nil {
		n = len(samples)
	}
	for n > 0 {
		i := int(r.written % int64(len(r.ring)))
		chunk := min(n, len(r.ring)-i)
		if samples != nil {
			copy(r.ring[i:i+chunk], samples[:chunk])
			samples = samples[chunk:]
		} else {
			clear(r.ring[i : i+chunk])
		}
		r.written += int64(chunk)
		n -= chunk
	}
}

// isRTCP tells RTCP from RTP on a shared port (RFC 5761 section 4): RTCP
// packet types 200-204 read as RTP payload types 72-76.
func isRTCP(b []byte) bool {
	pt := b[1] & 0x7f
	return pt >= 72 && pt <= 76
}

func (p *Phone) receiveLoop() {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var hdr rtp.Header
	for {
		n, _, err := p.rtpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.log.Debug("read RTP", "error", err)
			continue
		}
		if n < 12 || buf[0]>>6 != 2 || isRTCP(buf[:n]) {
			continue
		}
		plain, ok := p.unprotect(buf[:n], &hdr)
		if !ok {
			continue
		}
		if err := pkt.Unmarshal(plain); err != nil {
			continue
		}
		p.onRTP(&pkt, time.Now())
	}
}

// onRTP records one packet. It must not allocate.
func (p *Phone) onRTP(pkt *rtp.Packet, now time.Time) {
	r := &p.rx
	r.mu.Lock()
	defer r.mu.Unlock()
	r.packets++
	r.lastSeq = pkt.SequenceNumber
	pt := pkt.PayloadType
	if pt == 13 && len(pkt.Payload) > 0 {
		r.cn.Packets++
		r.cn.Level = pkt.Payload[0] & 0x7f
		r.cn.TS = pkt.Timestamp
		r.afterCN = true
		return
	}
	if pt != g711.PCMU && pt != g711.PCMA {
		return // telephone-event, anything else: not audio
	}
	if r.afterCN {
		r.afterCN = false
		r.cn.Resumed++
		r.cn.ResumeTS = pkt.Timestamp
		if pkt.Marker {
			r.cn.Marked++
		}
	}
	pl := pkt.Payload
	if len(pl) > len(r.pcm) {
		pl = pl[:len(r.pcm)]
	}
	// G.711 is one byte per sample at 8 kHz: 8 bytes per millisecond.
	r.ptimes[len(pl)/8]++
	pcm := r.pcm[:len(pl)]
	g711.Decode(pt, pcm, pl)
	r.catchUp(now)
	r.put(pcm, 0)
}

// Received returns the number of RTP packets received (RTCP excluded)
// and the sequence number of the latest.
func (p *Phone) Received() (packets uint64, lastSeq uint16) {
	p.rx.mu.Lock()
	defer p.rx.mu.Unlock()
	return p.rx.packets, p.rx.lastSeq
}

// ReceivedPtimes counts received audio packets by their duration in ms.
func (p *Phone) ReceivedPtimes() map[int]int {
	p.rx.mu.Lock()
	defer p.rx.mu.Unlock()
	m := make(map[int]int, len(p.rx.ptimes))
	for k, v := range p.rx.ptimes {
		m[k] = v
	}
	return m
}

// Audio returns a copy of the last d of heard audio (at most ~3 s),
// including the silence of any time in which nothing arrived.
func (p *Phone) Audio(d time.Duration) []int16 {
	n := int(int64(d) * dsp.SampleRate / int64(time.Second))
	n = min(max(n, 0), ringSamples)
	out := make([]int16, n)
	r := &p.rx
	r.mu.Lock()
	defer r.mu.Unlock()
	r.catchUp(time.Now())
	end := r.written
	startIdx := end - int64(n)
	for i := range out {
		idx := startIdx + int64(i)
		if idx >= 0 {
			out[i] = r.ring[idx%int64(len(r.ring))]
		}
	}
	return out
}

// Level is the amplitude of freq in the last window of heard audio.
func (p *Phone) Level(freq float64, window time.Duration) float64 {
	return tone.Level(p.Audio(window), freq)
}

// pollInterval is one packet: audio cannot change faster than that.
// HearsAllButSelf waits until one 200 ms window of heard audio has every
// tone of others at minLevel or more and own at maxOwn or less; its error
// gives the levels of the last window heard.
func (p *Phone) HearsAllButSelf(ctx context.Context, own float64, others []float64, minLevel, maxOwn float64) error {
	const window = 200 * time.Millisecond
	err := p.WaitAudio(ctx, func(a []int16) bool {
		if tone.Level(a, own) > maxOwn {
			return false
		}
		for _, f := range others {
			if tone.Level(a, f) < minLevel {
				return false
			}
		}
		return true
	}, window)
	if err != nil {
		a := p.Audio(window)
		levels := fmt.Sprintf("own %.0f Hz: %.0f;", own, tone.Level(a, own))
		for _, f := range others {
			levels += fmt.Sprintf(" %.0f Hz: %.0f", f, tone.Level(a, f))
		}
		return fmt.Errorf("%w (levels %s)", err, levels)
	}
	return nil
}

const pollInterval = 20 * time.Millisecond

// WaitAudio polls every 20 ms until pred accepts the last window of heard
// audio.
func (p *Phone) WaitAudio(ctx context.Context, pred func(recent []int16) bool, window time.Duration) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if pred(p.Audio(window)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("phone: waiting for audio: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// WaitLevel waits until freq is heard at amplitude >= min over window.
func (p *Phone) WaitLevel(ctx context.Context, freq float64, minLevel float64, window time.Duration) error {
	var last float64
	err := p.WaitAudio(ctx, func(s []int16) bool {
		last = tone.Level(s, freq)
		return last >= minLevel
	}, window)
	if err != nil {
		return fmt.Errorf("phone: %.0f Hz level %.0f, want >= %.0f: %w", freq, last, minLevel, err)
	}
	return nil
}

// WaitQuiet waits until freq's amplitude over window is <= max.
func (p *Phone) WaitQuiet(ctx context.Context, freq float64, maxLevel float64, window time.Duration) error {
	var last float64
	err := p.WaitAudio(ctx, func(s []int16) bool {
		last = tone.Level(s, freq)
		return last <= maxLevel
	}, window)
	if err != nil {
		return fmt.Errorf("phone: %.0f Hz level %.0f, want <= %.0f: %w", freq, last, maxLevel, err)
	}
	return nil
}
