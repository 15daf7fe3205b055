package rtpleg

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtp"

	"webconf/dsp"
	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
	"webconf/dsp/jitter"
)

// Config is what the SDP negotiation decided for a leg.
type Config struct {
	PT     uint8          // negotiated G.711 payload type (0 PCMU, 8 PCMA)
	DTMF   int            // telephone-event payload type, -1 when not negotiated
	Ptime  int            // ms of audio per packet we send; 0 means 20
	Remote netip.AddrPort // where the SDP says to send, until a source is latched
	Send   bool           // false while the remote holds the call (sendonly/inactive offer)
	// ExpectRx: the remote said it will send (sendrecv or sendonly). Until
	// its first packet is latched we then send only prelatchPackets to the
	// SDP address: an SDP that names a third party (spec/reliability.md
	// 1.5) gets a handful of packets, not a stream.
	ExpectRx bool
}

// prelatchPackets is how many packets go to the SDP address before the
// remote's first packet: enough for NATs and early audio (200 ms).
const prelatchPackets = 10

// Stats are the leg's counters, readable at any time.
type Stats struct {
	RxPackets, RxForeign, RxBad, RxRTCP, RxDTMF uint64
	TxPackets                                   uint64
	Jitter                                      jitter.Stats
}

const (
	maxPacket = 1500
	// maxSamples bounds one packet's audio: 150 ms is far above any sane
	// ptime and keeps the decode buffer fixed-size.
	maxSamples = 1200
	// jitterMax is the most audio the jitter buffer holds (1 s).
	jitterMax = dsp.SampleRate
	// jitterPrefill is the playout delay behind the first packet: one
	// frame absorbs the usual loopback and LAN jitter.
	jitterPrefill = dsp.FrameSamples
)

// Leg is one call's RTP endpoint.
type Leg struct {
	pool *Pool
	conn *net.UDPConn
	port uint16
	log  *slog.Logger

	onDigit func(byte) // from the read goroutine; must not block
	onPanic atomic.Pointer[func(any)]

	pt      atomic.Uint32
	dtmfPT  atomic.Int32
	ptime   atomic.Int32
	send    atomic.Bool
	expect  atomic.Bool
	remote  atomic.Pointer[netip.AddrPort] // from SDP
	latched atomic.Pointer[netip.AddrPort] // first valid source (symmetric RTP)
	lastRx  atomic.Int64                   // unix nanos of the last accepted packet

	mu sync.Mutex // guards jb between the read goroutine and the mixer
	jb *jitter.Buffer

	rxPackets, rxForeign, rxBad, rxRTCP, rxDTMF, txPackets atomic.Uint64

	// Send state: only the mixer goroutine that owns the leg's group
	// touches these, so they need no lock.
	hdr      rtp.Header
	prelatch int // packets sent before latching
	out      [maxPacket]byte
	acc      [maxSamples]byte
	accLen   int
	started  bool

	rx rxState

	// Polled legs have no read goroutine: the mixer drains the socket
	// once per tick (Poll).
	polled bool
	raw    syscall.RawConn
	pollFn func(fd uintptr) bool
	pollN  int
	pollAt netip.AddrPort

	closeOnce sync.Once
	done      chan struct{}
}

// Open binds a port from the pool. Call Start to begin receiving.
func Open(pool *Pool, cfg Config, onDigit func(byte), log *slog.Logger) (*Leg, error) {
	conn, port, err := pool.listen()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Leg{
		pool:    pool,
		conn:    conn,
		port:    port,
		log:     log,
		onDigit: onDigit,
		jb:      jitter.New(jitterMax, jitterPrefill),
		done:    make(chan struct{}),
	}
	var seed [10]byte
	if _, err := rand.Read(seed[:]); err != nil {
		conn.Close()
		pool.release(port)
		return nil, fmt.Errorf("rtpleg: random SSRC: %w", err)
	}
	// RFC 3550 section 5.1: SSRC, sequence number and timestamp start random.
	l.hdr = rtp.Header{
		Version:        2,
		SSRC:           binary.BigEndian.Uint32(seed[0:4]),
		SequenceNumber: binary.BigEndian.Uint16(seed[4:6]),
		Timestamp:      binary.BigEndian.Uint32(seed[6:10]),
	}
	l.Update(cfg)
	l.lastRx.Store(time.Now().UnixNano())
	return l, nil
}

// Port is the local RTP port (for the SDP answer).
func (l *Leg) Port() int { return int(l.port) }

// Update applies a (re-)negotiation: codec, DTMF payload type, ptime,
// remote address and whether we may send.
func (l *Leg) Update(cfg Config) {
	l.pt.Store(uint32(cfg.PT))
	l.dtmfPT.Store(int32(cfg.DTMF))
	p := cfg.Ptime
	if p < 10 || p > 60 || p%10 != 0 {
		p = 20
	}
	l.ptime.Store(int32(p))
	if old := l.remote.Load(); old == nil || *old != cfg.Remote {
		r := cfg.Remote
		l.remote.Store(&r)
		// A new address in the SDP means the phone moved: latch again.
		l.latched.Store(nil)
	}
	l.send.Store(cfg.Send)
	l.expect.Store(cfg.ExpectRx)
}

// PT is the payload type the mixer must encode for this leg.
func (l *Leg) PT() uint8 { return uint8(l.pt.Load()) }

// LastReceive is when the last accepted RTP packet arrived.
func (l *Leg) LastReceive() time.Time { return time.Unix(0, l.lastRx.Load()) }

// Stats returns a snapshot of the counters.
func (l *Leg) Stats() Stats {
	l.mu.Lock()
	js := l.jb.Stats()
	l.mu.Unlock()
	return Stats{
		RxPackets: l.rxPackets.Load(), RxForeign: l.rxForeign.Load(), RxBad: l.rxBad.Load(),
		RxRTCP: l.rxRTCP.Load(), RxDTMF: l.rxDTMF.Load(), TxPackets: l.txPackets.Load(), Jitter: js,
	}
}

// OnPanic sets what happens when the receive loop panics (it then stops;
// the call should end). Without it the panic is only logged.
func (l *Leg) OnPanic(f func(any)) { l.onPanic.Store(&f) }

// Start runs the receive loop until Close.
func (l *Leg) Start() {
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
		l.conn.Close()
		l.pool.release(l.port)
	})
}

// ReadFrame takes the next 20 ms of received audio for the mixer; false
// means nothing (not even concealment) was available.
func (l *Leg) ReadFrame(f *dsp.Frame) bool {
	l.mu.Lock()
	st := l.jb.Get(f)
	l.mu.Unlock()
	return st != jitter.Empty
}

// WriteEncoded queues one frame of encoded audio (one byte per sample for
// G.711) and sends as many packets of the negotiated ptime as it fills.
// Only the mixer goroutine calls it.
func (l *Leg) WriteEncoded(payload []byte) {
	per := int(l.ptime.Load()) * (dsp.SampleRate / 1000)
	if l.accLen+len(payload) > len(l.acc) {
		l.accLen = 0 // cannot happen with sane ptimes; never overflow
	}
	l.accLen += copy(l.acc[l.accLen:], payload)
	for l.accLen >= per {
		l.sendPacket(l.acc[:per])
		l.accLen = copy(l.acc[:], l.acc[per:l.accLen])
	}
}

func (l *Leg) sendPacket(payload []byte) {
	l.hdr.PayloadType = l.PT()
	l.hdr.Marker = !l.started // RFC 3551 4.1: marker on the first packet of a talkspurt
	n, err := l.hdr.MarshalTo(l.out[:])
	l.hdr.SequenceNumber++
	l.hdr.Timestamp += uint32(len(payload))
	if err != nil {
		return
	}
	if !l.send.Load() {
		// On hold: keep the timeline moving so the stream resumes seamlessly.
		return
	}
	dst := l.latched.Load()
	if dst == nil {
		if l.expect.Load() && l.prelatch >= prelatchPackets {
			return
		}
		l.prelatch++
		dst = l.remote.Load()
	}
	if dst == nil || !dst.IsValid() || dst.Port() == 0 || dst.Addr().IsUnspecified() {
		return
	}
	n += copy(l.out[n:], payload)
	l.started = true
	if _, err := l.conn.WriteToUDPAddrPort(l.out[:n], *dst); err == nil {
		l.txPackets.Add(1)
	}
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
}

// handle takes one datagram from the socket.
func (l *Leg) handle(pkt []byte, from netip.AddrPort) {
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
	known := hdr.PayloadType == codec || int32(hdr.PayloadType) == dpt || hdr.PayloadType == 13
	if !known {
		l.rxBad.Add(1)
		return
	}
	// Symmetric RTP (RFC 4961): latch to the first valid source, then
	// drop anything from elsewhere.
	if lat := l.latched.Load(); lat == nil {
		f := from
		l.latched.Store(&f)
	} else if *lat != from {
		l.rxForeign.Add(1)
		return
	}
	l.rxPackets.Add(1)
	l.lastRx.Store(time.Now().UnixNano())
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
		l.mu.Lock()
		l.jb.Put(hdr.Timestamp, samples)
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
		// Comfort noise (RFC 3389): treated as silence.
	}
}
