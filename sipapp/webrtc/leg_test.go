package webrtc

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"webconf/dsp"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
	"webconf/test/testutil"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func newFactory(t testing.TB, cfg Config) *Factory {
	t.Helper()
	if !cfg.ListenIP.IsValid() {
		cfg.ListenIP = loopback
	}
	f, err := NewFactory(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// browser is the far end: a pion peer connection with the codecs a
// browser offers, sending a tone and keeping what it hears.
type browser struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	pt    atomic.Int32 // the codec it receives, -1 until a track comes
	// discard reads packets into one buffer and keeps nothing (for
	// benchmarks: the far end's own allocations are not the leg's).
	discard atomic.Bool

	mu    sync.Mutex
	heard []int16
}

// newBrowser offers codecs in that order and sends with send (a mime type).
func newBrowser(t testing.TB, send string, codecs ...webrtc.RTPCodecParameters) *browser {
	t.Helper()
	me := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(net.IP(loopback.AsSlice())) })
	// No interceptors: the benchmarks count only the leg's allocations.
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	b := &browser{pc: pc}
	b.pt.Store(-1)
	b.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: send, ClockRate: 8000}, "mic", "browser")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(b.track); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		pt := uint8(tr.Codec().PayloadType)
		b.pt.Store(int32(pt))
		var samples [maxSamples]int16
		var buf [maxPacket]byte
		for {
			if b.discard.Load() {
				if _, _, err := tr.Read(buf[:]); err != nil {
					return
				}
				continue
			}
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			n := min(len(p.Payload), len(samples))
			g711.Decode(pt, samples[:n], p.Payload[:n])
			b.mu.Lock()
			b.heard = append(b.heard, samples[:n]...)
			b.mu.Unlock()
		}
	})
	return b
}

// connect offers to f and applies the answer; it returns the leg and the
// answer.
func (b *browser) connect(t testing.TB, f *Factory) (*Leg, string) {
	t.Helper()
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(b.pc)
	if err := b.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	leg, answer, err := f.Answer(testutil.Ctx(t, 10*time.Second), b.pc.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(leg.Close)
	if err := b.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-leg.Connected():
	case <-time.After(10 * time.Second):
		t.Fatal("the leg did not connect")
	}
	return leg, answer
}

// sendTone sends freq from the browser in its track's codec until stop.
func (b *browser) sendTone(pt uint8, freq float64, stop <-chan struct{}) {
	osc := tone.NewOsc(freq, 8000)
	var f dsp.Frame
	var enc [dsp.FrameSamples]byte
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: 1, SequenceNumber: 7, Timestamp: 1000}}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		osc.Fill(f[:])
		g711.Encode(pt, enc[:], f[:])
		p.Payload = enc[:]
		_ = b.track.WriteRTP(&p)
		p.SequenceNumber++
		p.Timestamp += dsp.FrameSamples
	}
}

// mix plays the mixer for leg: every 20 ms a frame read (its tone level
// at hearFreq goes to levels) and a frame of sendFreq written, until stop.
func mix(leg *Leg, hearFreq, sendFreq float64, levels chan<- float64, stop <-chan struct{}) {
	osc := tone.NewOsc(sendFreq, 8000)
	var in, out dsp.Frame
	var enc [dsp.FrameSamples]byte
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if leg.ReadFrame(&in) {
			select {
			case levels <- tone.Level(in[:], hearFreq):
			default:
			}
		}
		osc.Fill(out[:])
		g711.Encode(leg.PT(), enc[:], out[:])
		leg.WriteEncoded(enc[:])
	}
}

// TestLegToneBothWays: a browser offering each of PCMU and PCMA, and one
// offering Opus first (as browsers do), gets a G.711 answer with only the
// codec picked; its tone reaches the mixer and the mixer's reaches it.
func TestLegToneBothWays(t *testing.T) {
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	for _, tc := range []struct {
		name   string
		offer  []webrtc.RTPCodecParameters
		send   string
		wantPT uint8
	}{
		{"pcmu", []webrtc.RTPCodecParameters{codecPCMU}, webrtc.MimeTypePCMU, g711.PCMU},
		{"pcma", []webrtc.RTPCodecParameters{codecPCMA, codecPCMU}, webrtc.MimeTypePCMA, g711.PCMA},
		{"opus-first", []webrtc.RTPCodecParameters{opus, codecPCMU, codecPCMA}, webrtc.MimeTypePCMU, g711.PCMU},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFactory(t, Config{})
			b := newBrowser(t, tc.send, tc.offer...)
			leg, answer := b.connect(t, f)
			if leg.PT() != tc.wantPT {
				t.Fatalf("PT %d, want %d", leg.PT(), tc.wantPT)
			}
			if m := mline(answer); m != "m=audio 9 UDP/TLS/RTP/SAVPF "+strconv.Itoa(int(tc.wantPT)) {
				t.Fatalf("answer's audio line %q, want only payload type %d", m, tc.wantPT)
			}
			if !strings.Contains(answer, "127.0.0.1") {
				t.Fatalf("no loopback host candidate in the answer:\n%s", answer)
			}
			stop := make(chan struct{})
			defer close(stop)
			levels := make(chan float64, 1)
			go b.sendTone(tc.wantPT, 1000, stop)
			go mix(leg, 1000, 600, levels, stop)

			// The mixer hears the browser's 1000 Hz.
			deadline := time.After(10 * time.Second)
			for heard := 0; heard < 10; {
				select {
				case lv := <-levels:
					if lv > 4000 {
						heard++
					}
				case <-deadline:
					t.Fatalf("the mixer did not hear the browser's tone (stats %+v)", leg.Stats())
				}
			}
			// The browser hears the mixer's 600 Hz.
			testutil.WaitFor(t, 10*time.Second, "the browser hears the mixer's tone", func() bool {
				b.mu.Lock()
				defer b.mu.Unlock()
				n := len(b.heard)
				return n >= 800 && tone.Level(b.heard[n-800:], 600) > 4000
			})
			if got := b.pt.Load(); got != int32(tc.wantPT) {
				t.Fatalf("the browser receives payload type %d, want %d", got, tc.wantPT)
			}
			if leg.LastReceived().IsZero() {
				t.Fatal("LastReceived is zero after packets came")
			}
		})
	}
}

func mline(sdp string) string {
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, "m=audio") {
			return l
		}
	}
	return ""
}

// TestLegNoG711: an offer of Opus alone is refused before any peer
// connection is made.
func TestLegNoG711(t *testing.T) {
	f := newFactory(t, Config{})
	opus := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	b := newBrowser(t, webrtc.MimeTypeOpus, opus)
	offer, err := b.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Answer(context.Background(), offer.SDP); err != ErrNoCodec {
		t.Fatalf("err %v, want ErrNoCodec", err)
	}
	if _, _, err := f.Answer(context.Background(), "not sdp"); err == nil {
		t.Fatal("garbage answered")
	}
}

// TestLegDone: Done closes when the browser goes away (ICE fails), and
// when ICE never connects.
func TestLegDone(t *testing.T) {
	t.Run("browser-gone", func(t *testing.T) {
		f := newFactory(t, Config{})
		b := newBrowser(t, webrtc.MimeTypePCMU, codecPCMU)
		leg, _ := b.connect(t, f)
		_ = b.pc.Close()
		select {
		case <-leg.Done():
		case <-time.After(30 * time.Second):
			t.Fatal("Done not closed after the browser went")
		}
	})
	t.Run("never-connects", func(t *testing.T) {
		f := newFactory(t, Config{ConnectTimeout: 300 * time.Millisecond})
		b := newBrowser(t, webrtc.MimeTypePCMU, codecPCMU)
		offer, err := b.pc.CreateOffer(nil)
		if err != nil {
			t.Fatal(err)
		}
		// The offer has no candidates and none is trickled.
		leg, _, err := f.Answer(context.Background(), offer.SDP)
		if err != nil {
			t.Fatal(err)
		}
		defer leg.Close()
		select {
		case <-leg.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed for a leg that never connected")
		}
	})
}

// TestLegMux: with one UDP port for every peer, two browsers connect
// through it and the answers name that port.
func TestLegMux(t *testing.T) {
	f := newFactory(t, Config{Mux: true, PublicIP: netip.MustParseAddr("127.0.0.1")})
	port := f.MuxAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	for i := range 2 {
		b := newBrowser(t, webrtc.MimeTypePCMU, codecPCMU)
		_, answer := b.connect(t, f)
		if !strings.Contains(answer, " 127.0.0.1 "+strconv.Itoa(int(port))+" typ host") {
			t.Fatalf("browser %d: the answer's candidate is not on the mux port %d:\n%s", i, port, answer)
		}
	}
}
