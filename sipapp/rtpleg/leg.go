package rtpleg

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"webconf/dsp"
	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
	"webconf/dsp/jitter"
)

// Config is what the SDP negotiation decided for a leg.
type Config struct {
	PT     uint8          // negotiated G.711 payload type (0 PCMU, 8 PCMA)
	DTMF   int            // telephone-event payload type, -1 when not negotiated
	CN     uint8          // comfort noise (RFC 3389) payload type; 0: none, silence goes as G.711
	Ptime  int            // ms of audio per packet we send; 0 means 20
	Remote netip.AddrPort // where the SDP says to send, until a source is latched
	Send   bool           // false while the remote holds the call (sendonly/inactive offer)
	// ExpectRx: the remote said it will send (sendrecv or sendonly). Until
	// its first packet is latched we then send only prelatchPackets to the
	// SDP address: an SDP that names a third party (spec/reliability.md
	// 1.5) gets a handful of packets, not a stream.
	ExpectRx bool
	// SRTP, when set, protects the leg's RTP both ways (RFC 3711 with
	// SDES keys, RFC 4568); nil is plain RTP.
	SRTP *Keys
}

// Suite is an SRTP protection profile.
type Suite = srtp.ProtectionProfile

// Suites of SRTP (RFC 4568 section 6.2) a leg can use.
const (
	SuiteAES80 = srtp.ProtectionProfileAes128CmHmacSha1_80
	SuiteAES32 = srtp.ProtectionProfileAes128CmHmacSha1_32
)

// KeyLen is the length of an SRTP master key and salt together.
const KeyLen = 16 + 14

// Keys are a leg's SRTP keys: the suite both directions use, the master
// key||salt we encrypt with (ours, sent in our SDP) and the one the peer
// encrypts with (from its SDP). Secrets: never logged.
type Keys struct {
	Suite   Suite
	Send    [KeyLen]byte
	Receive [KeyLen]byte
}

// equal compares two key sets in constant time (as every secret is).
func (k *Keys) equal(o *Keys) bool {
	if k == nil || o == nil {
		return k == o
	}
	return k.Suite == o.Suite && subtle.ConstantTimeCompare(k.Send[:], o.Send[:])&
		subtle.ConstantTimeCompare(k.Receive[:], o.Receive[:]) == 1
}

// replayWindow is the SRTP replay window (RFC 3711 section 3.3.2: at
// least 64); a packet older than that or seen before is dropped.
const replayWindow = 128

// contexts makes the two one-way SRTP contexts for k.
func (k *Keys) contexts() (tx, rx *srtp.Context, err error) {
	if k.Suite != SuiteAES80 && k.Suite != SuiteAES32 {
		return nil, nil, fmt.Errorf("rtpleg: SRTP suite %v not supported", k.Suite)
	}
	tx, err = srtp.CreateContext(k.Send[:16], k.Send[16:], k.Suite)
	if err != nil {
		return nil, nil, fmt.Errorf("rtpleg: SRTP send context: %w", err)
	}
	rx, err = srtp.CreateContext(k.Receive[:16], k.Receive[16:], k.Suite, srtp.SRTPReplayProtection(replayWindow))
	if err != nil {
		return nil, nil, fmt.Errorf("rtpleg: SRTP receive context: %w", err)
	}
	return tx, rx, nil
}

// prelatchPackets is how many packets go to the SDP address before the
// remote's first packet: enough for NATs and early audio (200 ms).
const prelatchPackets = 10

// Strict RTP with learning (spec/reliability.md 1.4, Asterisk's strictrtp,
// rtpengine's strict source): the leg latches at once to the address the
// SDP names when a packet comes from it. Another source (a phone behind a
// NAT) is learned only from learnPackets packets in sequence (one SSRC,
// consecutive sequence numbers) from that one source, spanning at least
// learnSpan, with no packet from any other source in between; the packets
// before the one that completes the learning are dropped. Nothing received
// before the answer counts (see Answered), and once latched, everything
// from elsewhere is dropped and counted (RxForeign) until a re-negotiation
// names a new address.
const (
	// learnPackets is Asterisk's probation (4) plus one.
	learnPackets = 5
	// learnSpan stops a burst: a phone sends one packet per ptime (at
	// least 10 ms), so learnPackets of them take 40 ms or more, and a
	// burst of forged packets in the gap between two of the phone's
	// packets is interrupted by the phone's next one.
	learnSpan = 40 * time.Millisecond
	// maxDiscard bounds what arming drops from the socket at once; the
	// kernel's receive buffer holds far fewer small datagrams.
	maxDiscard = 4096
)

// Stats are the leg's counters, readable at any time.
type Stats struct {
	RxPackets, RxForeign, RxBad, RxRTCP, RxDTMF uint64
	// RxUnauth counts SRTP packets dropped unauthenticated: a wrong
	// authentication tag, a replay, or too short to hold a tag.
	RxUnauth  uint64
	TxPackets uint64
	Jitter    jitter.Stats
}

const (
	maxPacket = 1500
	// maxSamples bounds one packet's audio: 150 ms is far above any sane
	// ptime and keeps the decode buffer fixed-size.
	maxSamples = 1200
	// jitterMax is the most audio the jitter buffer holds: 500 ms, ten
	// times what adaptive playout keeps on a bad network, and a ring of
	// 4,096 samples (8 KiB) where a second took 16: it is most of a
	// participant's memory.
	jitterMax = dsp.SampleRate / 2
	// jitterPrefill is the playout delay behind the first packet: one
	// frame absorbs the usual loopback and LAN jitter until the adaptive
	// playout has watched the stream for a second (dsp/jitter).
	jitterPrefill = dsp.FrameSamples
)

// epoch is the origin of the monotonic times the jitter buffer is given
// (time.Since reads the monotonic clock): packet arrivals and ticks.
var epoch = time.Now()

// sinceEpoch is t on that clock, never 0 (0 tells the buffer "unknown").
func sinceEpoch(t time.Time) int64 { return int64(t.Sub(epoch)) + 1 }

// Leg is one call's RTP endpoint.
type Leg struct {
	pool *Pool
	own  ownSock      // a per-call leg's socket (Linux; see ownSock)
	conn *net.UDPConn // the read goroutine's (Start), elsewhere the socket
	port uint16
	log  *slog.Logger

	onDigit func(byte) // from the read goroutine; must not block
	onPanic atomic.Pointer[func(any)]

	pt      atomic.Uint32
	dtmfPT  atomic.Int32
	cnPT    atomic.Uint32 // 0: no comfort noise
	ptime   atomic.Int32
	send    atomic.Bool
	expect  atomic.Bool
	remote  atomic.Pointer[netip.AddrPort] // from SDP
	latched atomic.Pointer[netip.AddrPort] // the source we hear (and answer): SDP address or learned
	lastRx  atomic.Int64                   // unix nanos of the last accepted packet

	// ctl orders Update, Answered and latching (never taken per packet).
	ctl sync.Mutex
	// gen counts answer state changes: even while no answer went out for
	// the current remote address (everything is dropped), odd once
	// Answered was called. The receive side resets its learning and drops
	// what the socket queued whenever it sees gen change.
	gen atomic.Uint32
	// answeredAt is when gen last became odd (unix nanos): on a shared
	// socket, what was read before it predates the answer.
	answeredAt atomic.Int64

	mu sync.Mutex // guards jb between the read goroutine and the mixer
	jb *jitter.Buffer

	rxPackets, rxForeign, rxBad, rxRTCP, rxDTMF, rxUnauth, txPackets atomic.Uint64

	// SRTP: keys is the current set (under ctl); the contexts are
	// replaced whole when the keys change, so that each stays with the
	// one goroutine that uses it (pion's contexts are not safe for
	// concurrent use): txCtx the mixer's, rxCtx the receiver's. nil: plain.
	keys  *Keys
	txCtx atomic.Pointer[srtp.Context]
	rxCtx atomic.Pointer[srtp.Context]
	txHdr rtp.Header // EncryptRTP's scratch header (mixer goroutine)

	// Send state: only the mixer goroutine that owns the leg's group
	// touches these, so they need no lock.
	hdr      rtp.Header
	prelatch int // packets sent before latching
	out      [maxPacket]byte
	acc      [maxSamples]byte
	accLen   int
	started  bool
	// Comfort noise (DTX): dtx while a silence is being sent as CN,
	// sidAge frames since the last SID packet, talkspurt until the first
	// audio packet after a silence has gone out with the marker bit.
	dtx       bool
	sidAge    int
	talkspurt bool

	rx rxState

	// Polled legs have no read goroutine: the mixer drains the socket
	// once per tick (Poll).
	polled bool

	// Shared-socket legs (sock != nil) have no socket of their own: the
	// socket's reader delivers their packets (Socket), and their packets
	// go out in the batch of the worker that mixes them (tx) or, before a
	// worker has them, with sendto on the shared socket.
	sock   *Socket
	signal netip.Addr // the IP the call's SIP came from: a claim for learning
	tx     atomic.Pointer[Worker]
	shared sharedState // under sock.mu

	// Per-call polled legs in a worker's epoll set (Linux).
	epMu   sync.Mutex // orders BindIO and Close
	ep     atomic.Pointer[Worker]
	epSlot int32
	ready  atomic.Bool // the worker's epoll saw data since the last Poll
	closed bool        // under epMu

	closeOnce sync.Once
	done      chan struct{}
}

// Open binds a port from the pool. Call Start to begin receiving.
func Open(pool *Pool, cfg Config, onDigit func(byte), log *slog.Logger) (*Leg, error) {
	l := newLeg(log, onDigit)
	l.pool = pool
	if err := l.openOwn(pool); err != nil {
		return nil, err
	}
	if err := l.init(cfg); err != nil {
		l.closeOwn()
		return nil, err
	}
	return l, nil
}

func newLeg(log *slog.Logger, onDigit func(byte)) *Leg {
	if log == nil {
		log = slog.Default()
	}
	l := &Leg{
		log:     log,
		onDigit: onDigit,
		jb:      jitter.New(jitterMax, jitterPrefill),
		done:    make(chan struct{}),
		epSlot:  -1,
	}
	l.own.init()
	return l
}

// init seeds the send state and applies cfg.
func (l *Leg) init(cfg Config) error {
	var seed [10]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return fmt.Errorf("rtpleg: random SSRC: %w", err)
	}
	// RFC 3550 section 5.1: SSRC, sequence number and timestamp start random.
	l.hdr = rtp.Header{
		Version:        2,
		SSRC:           binary.BigEndian.Uint32(seed[0:4]),
		SequenceNumber: binary.BigEndian.Uint16(seed[4:6]),
		Timestamp:      binary.BigEndian.Uint32(seed[6:10]),
	}
	if err := l.Update(cfg); err != nil {
		return err
	}
	l.lastRx.Store(time.Now().UnixNano())
	return nil
}

// Port is the local RTP port (for the SDP answer).
func (l *Leg) Port() int { return int(l.port) }

// Update applies a (re-)negotiation: codec, DTMF payload type, ptime,
// remote address, whether we may send, and the SRTP keys (new keys get new
// contexts; the same keys keep theirs, with their rollover counters and
// replay windows). Unusable keys change nothing and are an error.
func (l *Leg) Update(cfg Config) error {
	if err := l.rekey(cfg.SRTP); err != nil {
		return err
	}
	l.pt.Store(uint32(cfg.PT))
	l.dtmfPT.Store(int32(cfg.DTMF))
	l.cnPT.Store(uint32(cfg.CN))
	p := cfg.Ptime
	if p < 10 || p > 60 || p%10 != 0 {
		p = 20
	}
	l.ptime.Store(int32(p))
	l.ctl.Lock()
	old := l.remote.Load()
	// An unspecified address (c=0.0.0.0, an RFC 2543 hold) or port 0 names
	// no new place: the latch stays, so a hold does not reopen learning.
	moved := old == nil || (*old != cfg.Remote && usable(cfg.Remote))
	if moved {
		r := cfg.Remote
		l.remote.Store(&r)
		// A new address in the SDP means the phone moved: latch again,
		// counting only what arrives after this new answer went out.
		l.latched.Store(nil)
		if g := l.gen.Load(); g&1 == 1 {
			l.gen.Store(g + 1)
		}
	}
	l.ctl.Unlock()
	if moved && l.sock != nil {
		// After ctl: the socket's reader takes ctl under sock.mu.
		l.sock.remoteChanged(l)
	}
	l.send.Store(cfg.Send)
	l.expect.Store(cfg.ExpectRx)
	return nil
}

// rekey installs SRTP contexts for k (nil: plain RTP). Each direction
// keeps its context while its key and the suite stay the same: a new
// context would restart the rollover counter, and a key must never
// encrypt two packets with the same index (RFC 3711 section 9.1).
func (l *Leg) rekey(k *Keys) error {
	l.ctl.Lock()
	defer l.ctl.Unlock()
	if l.keys.equal(k) {
		return nil
	}
	if k == nil {
		l.keys = nil
		l.txCtx.Store(nil)
		l.rxCtx.Store(nil)
		return nil
	}
	tx, rx, err := k.contexts()
	if err != nil {
		return err
	}
	old := l.keys
	sameSuite := old != nil && old.Suite == k.Suite
	if !sameSuite || subtle.ConstantTimeCompare(old.Send[:], k.Send[:]) != 1 {
		l.txCtx.Store(tx)
	}
	if !sameSuite || subtle.ConstantTimeCompare(old.Receive[:], k.Receive[:]) != 1 {
		l.rxCtx.Store(rx)
	}
	kc := *k
	l.keys = &kc
	return nil
}

// Secure reports whether the leg uses SRTP.
func (l *Leg) Secure() bool { return l.rxCtx.Load() != nil }

// Answered tells the leg that the answer for its current remote address
// went out: for a dial-in, our 200 OK (to the INVITE, or to a re-INVITE
// that named a new address) was sent; for a dial-out, the callee's SDP
// answer was applied. Until then nothing received counts: packets are
// dropped, and what the socket queued before is dropped when the leg next
// reads (with the first packet after, which it cannot tell apart). A call
// with no new address does nothing.
func (l *Leg) Answered() {
	l.ctl.Lock()
	defer l.ctl.Unlock()
	if g := l.gen.Load(); g&1 == 0 {
		l.answeredAt.Store(time.Now().UnixNano())
		l.gen.Store(g + 1)
	}
}

// usable reports whether a is an address packets can go to or come from.
func usable(a netip.AddrPort) bool {
	return a.IsValid() && a.Port() != 0 && !a.Addr().IsUnspecified()
}

// PT is the payload type the mixer must encode for this leg.
func (l *Leg) PT() uint8 { return uint8(l.pt.Load()) }

// LastReceive is when the last accepted RTP packet arrived.
func (l *Leg) LastReceive() time.Time { return time.Unix(0, l.lastRx.Load()) }

// Stats returns the counters. Each is read atomically, one after the
// other, while the receive side may be counting: a datagram handled
// meanwhile may show in a counter read late and not in one read early
// (RxRTCP may already count a sentinel while RxPackets, read before it,
// misses the packet ahead of it). A Stats call that begins after a count
// was seen sees every count made before it.
func (l *Leg) Stats() Stats {
	l.mu.Lock()
	js := l.jb.Stats()
	l.mu.Unlock()
	return Stats{
		RxPackets: l.rxPackets.Load(), RxForeign: l.rxForeign.Load(), RxBad: l.rxBad.Load(),
		RxRTCP: l.rxRTCP.Load(), RxDTMF: l.rxDTMF.Load(), RxUnauth: l.rxUnauth.Load(),
		TxPackets: l.txPackets.Load(), Jitter: js,
	}
}

// OnPanic sets what happens when the receive loop panics (it then stops;
// the call should end). Without it the panic is only logged.
func (l *Leg) OnPanic(f func(any)) { l.onPanic.Store(&f) }

// Start runs the receive loop until Close. A leg on a shared socket has
// none: the socket's reader serves it.
func (l *Leg) Start() {
	if l.sock != nil {
		return
	}
	if err := l.startConn(); err != nil {
		l.log.Error("RTP receive loop not started", "err", err)
		return
	}
	go func() {
		defer func() {
			if r := recover(); r != nil {
				l.log.Error("RTP receive loop panicked", "panic", r)
				if f := l.onPanic.Load(); f != nil {
					(*f)(r)
				}
			}
		}()
		l.readLoop()
	}()
}

// Close stops the leg and returns its port to the pool. Safe to call twice.
func (l *Leg) Close() {
	l.closeOnce.Do(func() {
		close(l.done)
		if l.sock != nil {
			l.sock.remove(l)
			return
		}
		l.unbind()
		l.closeOwn()
	})
}

// ReadFrame takes the next 20 ms of received audio for the mixer; false
// means nothing (not even concealment) was available.
func (l *Leg) ReadFrame(f *dsp.Frame) bool {
	now := sinceEpoch(time.Now())
	l.mu.Lock()
	st := l.jb.GetAt(f, now)
	l.mu.Unlock()
	return st != jitter.Empty
}

// WriteEncoded queues one frame of encoded audio (one byte per sample for
// G.711) and sends as many packets of the negotiated ptime as it fills.
// Only the mixer goroutine calls it.
func (l *Leg) WriteEncoded(payload []byte) {
	if l.dtx {
		// A talkspurt after comfort noise: RFC 3551 section 4.1 marks
		// its first packet.
		l.dtx, l.talkspurt = false, true
	}
	per := int(l.ptime.Load()) * (dsp.SampleRate / 1000)
	if l.accLen+len(payload) > len(l.acc) {
		l.accLen = 0 // cannot happen with sane ptimes; never overflow
	}
	l.accLen += copy(l.acc[l.accLen:], payload)
	for l.accLen >= per {
		l.sendPacket(l.PT(), l.acc[:per], per)
		l.accLen = copy(l.acc[:], l.acc[per:l.accLen])
	}
}

// sidRefresh is how many silent frames pass between two comfort noise
// packets (5 s). RFC 3389 leaves the rate to the sender; one packet every
// few seconds keeps NAT bindings (UDP mappings expire after 30 s on the
// meanest NATs, two minutes per RFC 4787) and the peer's RTP inactivity
// timers (commonly 10 s or more) alive, at 1/250 of the G.711 packet rate.
const sidRefresh = 250

// sidPayload is our SID (RFC 3389 section 3): the noise level alone, no
// spectral information, as -dBov: 127, digital silence, which is what the
// mix holds when no one is heard (members under the silence threshold are
// not summed).
var sidPayload = [1]byte{127}

// silence is one frame of G.711 silence per codec (index: PCMA or not),
// encoded once.
var silence = func() (s [2][dsp.FrameSamples]byte) {
	var zero dsp.Frame
	g711.Encode(g711.PCMU, s[0][:], zero[:])
	g711.Encode(g711.PCMA, s[1][:], zero[:])
	return s
}()

// WriteSilence sends one frame of silence, for the mixer when no one is
// heard (mixer.SilenceOutput): towards a peer that negotiated comfort
// noise, a SID packet when the silence starts and every sidRefresh frames
// after, nothing in between (RFC 3389 DTX), the timestamp advancing all
// the while; towards any other peer, a frame of G.711 silence. Neither
// needs an encode. Only the mixer goroutine calls it.
func (l *Leg) WriteSilence() {
	cn := uint8(l.cnPT.Load())
	if cn == 0 || l.accLen > 0 {
		// No CN, or a packet of a longer ptime is part filled: complete
		// it with silence first.
		i := 0
		if l.PT() == g711.PCMA {
			i = 1
		}
		l.WriteEncoded(silence[i][:])
		return
	}
	if !l.dtx || l.sidAge >= sidRefresh {
		// The SID carries the timestamp of the silence it starts (or
		// of the frame it refreshes) and no marker: the marker is for
		// the talkspurt after it.
		l.dtx, l.sidAge = true, 0
		l.sendPacket(cn, sidPayload[:], 0)
	}
	l.sidAge++
	l.hdr.Timestamp += dsp.FrameSamples
}

// sendPacket sends payload as one packet of type pt that covers samples
// of the timeline (0 for comfort noise, which describes what follows).
func (l *Leg) sendPacket(pt uint8, payload []byte, samples int) {
	dst := l.destination()
	if dst == nil {
		// On hold or nowhere to send: keep the timeline moving so the
		// stream resumes seamlessly.
		l.hdr.SequenceNumber++
		l.hdr.Timestamp += uint32(samples)
		return
	}
	// Straight into the worker's batch slot when the leg has one (shared
	// socket), else into the leg's own buffer.
	buf := l.out[:]
	var b *sendBatch
	if l.sock != nil {
		if w := l.tx.Load(); w != nil {
			b = w.batchFor(l.sock)
			buf = b.slot()
		}
	}
	l.hdr.PayloadType = pt
	// RFC 3551 4.1: marker on the first packet of a talkspurt: the
	// stream's first, or the first audio after comfort noise.
	l.hdr.Marker = samples > 0 && (!l.started || l.talkspurt)
	n, err := l.hdr.MarshalTo(buf)
	l.hdr.SequenceNumber++
	l.hdr.Timestamp += uint32(samples)
	if err != nil {
		return
	}
	n += copy(buf[n:], payload)
	pkt := buf[:n]
	if c := l.txCtx.Load(); c != nil {
		// In place: buf has room for the tag, so nothing is allocated.
		enc, err := c.EncryptRTP(buf[:n], pkt, &l.txHdr)
		if err != nil || len(enc) == 0 || &enc[0] != &buf[0] {
			return
		}
		pkt = enc
	}
	l.started = true
	if samples > 0 {
		l.talkspurt = false
	}
	switch {
	case b != nil:
		if b.commit(len(pkt), *dst) {
			l.txPackets.Add(1)
		}
	case l.sock != nil:
		if l.sock.sendTo(pkt, *dst) {
			l.txPackets.Add(1)
		}
	default:
		if l.sendOwn(pkt, *dst) {
			l.txPackets.Add(1)
		}
	}
}

// destination is where the next packet goes, nil when it goes nowhere
// (on hold, no usable address, or the prelatch allowance spent).
func (l *Leg) destination() *netip.AddrPort {
	if !l.send.Load() {
		return nil
	}
	dst := l.latched.Load()
	if dst == nil {
		if l.expect.Load() && l.prelatch >= prelatchPackets {
			return nil
		}
		l.prelatch++
		dst = l.remote.Load()
	}
	if dst == nil || !usable(*dst) {
		return nil
	}
	return dst
}

func (l *Leg) readLoop() {
	for {
		n, from, err := l.conn.ReadFromUDPAddrPort(l.rx.buf[:])
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-l.done:
				return
			default:
				continue
			}
		}
		l.handle(l.rx.buf[:n], from)
	}
}

// rxState is the receive side's scratch: used by the read goroutine, or
// by Poll on the mixer goroutine, never both.
type rxState struct {
	buf     [maxPacket]byte
	samples [maxSamples]int16
	hdr     rtp.Header
	dr      dtmf.Receiver

	gen   uint32 // the Leg.gen this state belongs to
	learn learning
}

// learning is the candidate source of strict RTP learning.
type learning struct {
	from  netip.AddrPort
	ssrc  uint32
	seq   uint16
	n     int   // packets in sequence so far
	first int64 // unix nanos of the first of them
}

// admit decides whether a packet from a source that is not latched is
// accepted, and latches when it is: at once from the SDP address, after
// learning from anywhere else. false: the packet is dropped (foreign).
func (l *Leg) admit(from netip.AddrPort, hdr *rtp.Header, now int64) bool {
	if r := l.remote.Load(); r != nil && *r == from {
		return l.latch(from)
	}
	c := &l.rx.learn
	if c.from != from || c.n == 0 || hdr.SSRC != c.ssrc || hdr.SequenceNumber != c.seq+1 {
		// Another source, another stream, or a gap: start counting again.
		*c = learning{from: from, ssrc: hdr.SSRC, seq: hdr.SequenceNumber, n: 1, first: now}
		return false
	}
	c.seq = hdr.SequenceNumber
	c.n++
	if c.n < learnPackets || now-c.first < int64(learnSpan) {
		return false
	}
	return l.latch(from)
}

// latch makes from the call's source, unless the answer state changed
// meanwhile (an Update for a new address): the packet then does not count.
func (l *Leg) latch(from netip.AddrPort) bool {
	l.ctl.Lock()
	defer l.ctl.Unlock()
	if l.gen.Load() != l.rx.gen {
		return false
	}
	f := from
	l.latched.Store(&f)
	l.rx.learn = learning{}
	return true
}

// handle takes one datagram from the socket.
func (l *Leg) handle(pkt []byte, from netip.AddrPort) {
	if g := l.gen.Load(); g != l.rx.gen {
		l.rx.gen = g
		l.rx.learn = learning{}
		l.shared.settled = false
		if g&1 == 1 {
			// Just answered: this packet and what the socket holds may
			// have arrived before the answer went out. Counted after the
			// discard, so that the count says the discard is over. (A
			// shared socket is read every tick and holds other calls'
			// packets too: settled drops what may predate the answer.)
			if l.sock == nil {
				l.discardQueued()
			}
			l.rxForeign.Add(1)
			return
		}
	}
	if l.rx.gen&1 == 0 || (l.sock != nil && !l.sock.settled(l)) {
		l.rxForeign.Add(1) // before the answer
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	hdr := &l.rx.hdr
	n := len(pkt)
	if n < 12 || pkt[0]>>6 != 2 {
		l.rxBad.Add(1)
		return
	}
	// RTCP multiplexed on the RTP port (RFC 5761 section 4): packet
	// types 200-204 show up as payload types 72-76 with the marker set.
	if pt := pkt[1] & 0x7f; pt >= 72 && pt <= 76 {
		l.rxRTCP.Add(1)
		return
	}
	hn, err := hdr.Unmarshal(pkt)
	if err != nil {
		l.rxBad.Add(1)
		return
	}
	if c := l.rxCtx.Load(); c != nil {
		// SRTP: authenticate (and check for a replay) before anything
		// reads the packet, so that nothing unauthenticated latches
		// the leg, counts as received or reaches the mix. Decrypted in
		// place; the tag is cut off.
		plain, err := c.DecryptRTP(pkt, pkt, hdr)
		if err != nil || len(plain) < hn {
			l.rxUnauth.Add(1)
			return
		}
		pkt = plain
	}
	payload := pkt[hn:]
	if hdr.Padding && len(payload) > 0 {
		pad := int(payload[len(payload)-1])
		if pad > len(payload) {
			l.rxBad.Add(1)
			return
		}
		payload = payload[:len(payload)-pad]
	}
	codec := uint8(l.pt.Load())
	dpt := l.dtmfPT.Load()
	cn := uint8(l.cnPT.Load())
	known := hdr.PayloadType == codec || int32(hdr.PayloadType) == dpt || hdr.PayloadType == 13 || hdr.PayloadType == cn
	if !known {
		l.rxBad.Add(1)
		return
	}
	// Symmetric RTP (RFC 4961) with strict learning: latch to the SDP
	// address or a learned source, then drop anything from elsewhere.
	t := time.Now()
	now := t.UnixNano()
	if lat := l.latched.Load(); lat == nil {
		if !l.admit(from, hdr, now) {
			l.rxForeign.Add(1)
			return
		}
	} else if *lat != from {
		// The SDP address wins over a source learned meanwhile: a
		// silent phone whose port an intruder streamed to first gets
		// its call back with its first packet.
		if r := l.remote.Load(); r == nil || *r != from || !l.latch(from) {
			l.rxForeign.Add(1)
			return
		}
	}
	l.rxPackets.Add(1)
	l.lastRx.Store(now)
	switch {
	case hdr.PayloadType == codec:
		if len(payload) == 0 {
			return
		}
		if len(payload) > maxSamples {
			l.rxBad.Add(1)
			return
		}
		samples := l.rx.samples[:len(payload)]
		g711.Decode(codec, samples, payload)
		// The arrival time, for adaptive playout; a polled leg and a
		// shared socket's leg are read at the tick and know only that
		// the packet came since the last (0 says so).
		at := int64(0)
		if l.sock == nil && !l.polled {
			at = sinceEpoch(t)
		}
		l.mu.Lock()
		l.jb.PutAt(hdr.Timestamp, samples, at)
		l.mu.Unlock()
	case int32(hdr.PayloadType) == dpt:
		ev, err := dtmf.Decode(payload)
		if err != nil {
			l.rxBad.Add(1)
			return
		}
		l.rxDTMF.Add(1)
		if d, ok := l.rx.dr.Push(hdr.Timestamp, ev); ok && l.onDigit != nil {
			l.onDigit(d)
		}
	default:
		// Comfort noise (RFC 3389): silence until the next talkspurt
		// (DTX), neither concealed nor an underrun.
		l.mu.Lock()
		l.jb.Silence()
		l.mu.Unlock()
	}
}
