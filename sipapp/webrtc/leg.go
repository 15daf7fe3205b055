package webrtc

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"webconf/dsp"
	"webconf/dsp/g711"
	"webconf/dsp/jitter"
	"webconf/sipapp/mixer"
)

// The mixer's side of a leg.
var (
	_ mixer.Input         = (*Leg)(nil)
	_ mixer.Output        = (*Leg)(nil)
	_ mixer.SilenceOutput = (*Leg)(nil)
)

const (
	maxPacket = 1500
	// maxSamples bounds one packet's audio (150 ms), as an RTP leg does.
	maxSamples = 1200
	// The jitter buffer is an RTP leg's: 500 ms at most, one frame of
	// prefill, adaptive playout on arrival times.
	jitterMax     = dsp.SampleRate / 2
	jitterPrefill = dsp.FrameSamples
)

// epoch is the origin of the monotonic times given to the jitter buffer.
var epoch = time.Now()

// sinceEpoch is t on that clock, never 0 (0 tells the buffer "unknown").
func sinceEpoch(t time.Time) int64 { return int64(t.Sub(epoch)) + 1 }

// Leg is a browser's media: one peer connection, one audio track each way.
type Leg struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	pt    uint8
	log   *slog.Logger

	mu sync.Mutex // guards jb between the track reader and the mixer
	jb *jitter.Buffer

	lastRx                      atomic.Int64 // unix nanos of the last packet received, 0: none yet
	rxPackets, rxBad, txPackets atomic.Uint64
	connectedOnce, closeOnce    sync.Once
	connected, done             chan struct{}
	rx                          rxState
	tx                          rtp.Packet // the mixer goroutine's: header and payload of the packet being sent
	started                     bool       // the mixer goroutine's: a packet went out (marker)
	silence                     *[dsp.FrameSamples]byte
}

// rxState is the track reader's scratch (one goroutine).
type rxState struct {
	buf     [maxPacket]byte
	hdr     rtp.Header
	samples [maxSamples]int16
}

// Stats are a leg's counters.
type Stats struct {
	RxPackets, RxBad, TxPackets uint64
	Jitter                      jitter.Stats
}

// silenceFrames is one frame of G.711 silence per codec, encoded once.
var silenceFrames = func() (s [2][dsp.FrameSamples]byte) {
	var zero dsp.Frame
	g711.Encode(g711.PCMU, s[0][:], zero[:])
	g711.Encode(g711.PCMA, s[1][:], zero[:])
	return s
}()

// pickCodec is the first of PCMU and PCMA in the offer's first audio
// section, in the browser's order of preference.
func pickCodec(offer string) (webrtc.RTPCodecParameters, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("webrtc: the offer is not SDP: %w", err)
	}
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "audio" || m.MediaName.Port.Value == 0 {
			continue
		}
		for _, f := range m.MediaName.Formats {
			switch f {
			case "0":
				return codecPCMU, nil
			case "8":
				return codecPCMA, nil
			}
		}
		break
	}
	return webrtc.RTPCodecParameters{}, ErrNoCodec
}

// Answer makes a leg for a browser's offer and returns it with the answer
// (non-trickle: every candidate of ours is in it; the browser may still
// trickle its own, see AddCandidate). The codec is the first of PCMU and
// PCMA in the offer, and the answer carries only that one.
func (f *Factory) Answer(ctx context.Context, offer string) (*Leg, string, error) {
	codec, err := pickCodec(offer)
	if err != nil {
		return nil, "", err
	}
	pc, err := f.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("webrtc: peer connection: %w", err)
	}
	l, err := f.setup(ctx, pc, codec, offer)
	if err != nil {
		_ = pc.Close()
		return nil, "", err
	}
	return l, pc.LocalDescription().SDP, nil
}

func (f *Factory) setup(ctx context.Context, pc *webrtc.PeerConnection, codec webrtc.RTPCodecParameters, offer string) (*Leg, error) {
	track, err := webrtc.NewTrackLocalStaticRTP(codec.RTPCodecCapability, "audio", "webconf")
	if err != nil {
		return nil, fmt.Errorf("webrtc: track: %w", err)
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv})
	if err != nil {
		return nil, fmt.Errorf("webrtc: transceiver: %w", err)
	}
	if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{codec}); err != nil {
		return nil, fmt.Errorf("webrtc: codec: %w", err)
	}
	l := newLeg(uint8(codec.PayloadType), f.log)
	l.pc, l.track = pc, track
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() == webrtc.RTPCodecTypeAudio {
			go l.readLoop(t)
		}
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			l.connectedOnce.Do(func() { close(l.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			// Not Close here: pion's callback must not wait for the
			// connection it reports on.
			go l.Close()
		}
	})
	// RTCP from the browser is read (and dropped: no interceptors) so
	// that pion's buffers do not fill.
	go func() {
		var b [maxPacket]byte
		for {
			if _, _, err := tr.Sender().Read(b[:]); err != nil {
				return
			}
		}
	}()
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, fmt.Errorf("webrtc: offer: %w", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("webrtc: answer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return nil, fmt.Errorf("webrtc: answer: %w", err)
	}
	t := time.NewTimer(f.gather)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		// Answer with the candidates we have.
		f.log.Warn("webrtc: ICE gathering timed out; answering with the candidates gathered so far", "after", f.gather)
	case <-ctx.Done():
		return nil, fmt.Errorf("webrtc: gathering: %w", ctx.Err())
	}
	go func() {
		t := time.NewTimer(f.connect)
		defer t.Stop()
		select {
		case <-l.connected:
		case <-l.done:
		case <-t.C:
			l.log.Info("webrtc: ICE did not connect in time; leg closed", "after", f.connect)
			l.Close()
		}
	}()
	return l, nil
}

func newLeg(pt uint8, log *slog.Logger) *Leg {
	l := &Leg{
		pt:        pt,
		log:       log,
		jb:        jitter.New(jitterMax, jitterPrefill),
		connected: make(chan struct{}),
		done:      make(chan struct{}),
		silence:   &silenceFrames[0],
	}
	if pt == g711.PCMA {
		l.silence = &silenceFrames[1]
	}
	l.tx.Header = rtp.Header{Version: 2, PayloadType: pt}
	// Sequence number and timestamp start random (RFC 3550 5.1); the
	// SSRC is the sender's, which pion draws and writes.
	var seed [6]byte
	_, _ = rand.Read(seed[:]) // never fails (Go 1.24+)
	l.tx.Header.SequenceNumber = uint16(seed[0])<<8 | uint16(seed[1])
	l.tx.Header.Timestamp = uint32(seed[2])<<24 | uint32(seed[3])<<16 | uint32(seed[4])<<8 | uint32(seed[5])
	return l
}

// AddCandidate adds a candidate the browser trickled.
func (l *Leg) AddCandidate(c Candidate) error {
	if err := l.pc.AddICECandidate(webrtc.ICECandidateInit{
		Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment,
	}); err != nil {
		return fmt.Errorf("webrtc: candidate: %w", err)
	}
	return nil
}

// Candidate is a trickled ICE candidate (RTCIceCandidateInit). An empty
// Candidate says the browser has no more.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// readLoop feeds the jitter buffer from the browser's track.
func (l *Leg) readLoop(t *webrtc.TrackRemote) {
	for {
		n, _, err := t.Read(l.rx.buf[:])
		if err != nil {
			return
		}
		l.receive(l.rx.buf[:n], time.Now())
	}
}

// receive takes one RTP packet (decrypted by pion) that arrived at at.
func (l *Leg) receive(pkt []byte, at time.Time) {
	hdr := &l.rx.hdr
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
	pt := hdr.PayloadType
	if (pt != g711.PCMU && pt != g711.PCMA) || len(payload) > maxSamples {
		l.rxBad.Add(1)
		return
	}
	l.rxPackets.Add(1)
	l.lastRx.Store(at.UnixNano())
	if len(payload) == 0 {
		return
	}
	samples := l.rx.samples[:len(payload)]
	g711.Decode(pt, samples, payload)
	l.mu.Lock()
	l.jb.PutAt(hdr.Timestamp, samples, sinceEpoch(at))
	l.mu.Unlock()
}

// ReadFrame takes the next 20 ms of the browser's audio for the mixer;
// false when there is none (not even concealment).
func (l *Leg) ReadFrame(f *dsp.Frame) bool {
	now := sinceEpoch(time.Now())
	l.mu.Lock()
	st := l.jb.GetAt(f, now)
	l.mu.Unlock()
	return st != jitter.Empty
}

// PT is the negotiated codec's payload type (g711.PCMU or g711.PCMA).
func (l *Leg) PT() uint8 { return l.pt }

// WriteEncoded sends one frame of G.711 as one RTP packet (the frame's
// duration: 20 ms from the mixer). Only the mixer goroutine calls it.
func (l *Leg) WriteEncoded(payload []byte) {
	if len(payload) == 0 || len(payload) > maxSamples {
		return
	}
	l.tx.Header.Marker = !l.started
	l.started = true
	l.tx.Payload = payload
	// Before the DTLS handshake the track has no binding and writes
	// nothing; the timeline moves on regardless.
	if err := l.track.WriteRTP(&l.tx); err == nil {
		l.txPackets.Add(1)
	}
	l.tx.Payload = nil
	l.tx.Header.SequenceNumber++
	l.tx.Header.Timestamp += uint32(len(payload))
}

// WriteSilence sends a ready-made frame of G.711 silence
// (mixer.SilenceOutput): nothing to mix or encode when no one is heard.
func (l *Leg) WriteSilence() { l.WriteEncoded(l.silence[:]) }

// Done is closed when the media has ended: ICE failed, the connection
// closed, ICE never connected, or Close.
func (l *Leg) Done() <-chan struct{} { return l.done }

// Connected is closed once ICE and DTLS are up.
func (l *Leg) Connected() <-chan struct{} { return l.connected }

// LastReceived is when the browser's last packet came (zero: none yet).
func (l *Leg) LastReceived() time.Time {
	if n := l.lastRx.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Stats returns the leg's counters.
func (l *Leg) Stats() Stats {
	l.mu.Lock()
	js := l.jb.Stats()
	l.mu.Unlock()
	return Stats{RxPackets: l.rxPackets.Load(), RxBad: l.rxBad.Load(), TxPackets: l.txPackets.Load(), Jitter: js}
}

// Close ends the media; safe to call more than once and concurrently.
func (l *Leg) Close() {
	l.closeOnce.Do(func() {
		close(l.done)
		if l.pc != nil {
			if err := l.pc.Close(); err != nil {
				l.log.Debug("webrtc: closing the peer connection", "err", err)
			}
		}
	})
}
