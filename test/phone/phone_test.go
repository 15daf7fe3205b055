package phone

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
)

// TestMain silences sipgo's package-level logger, which some transport
// code uses directly (for example "TCP ref went negative" after a close).
func TestMain(m *testing.M) {
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, ctx context.Context, cfg Config) *Phone {
	t.Helper()
	p, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestDial(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run("establishes a call over "+tr+" and the server's BYE closes Done", func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			u := newUAS(t, uasConfig{transport: tr})
			p := dial(t, ctx, Config{Server: u.addr, Transport: tr})
			if p.Codec() != g711.PCMU {
				t.Errorf("Codec() = %d, want PCMU", p.Codec())
			}
			if p.RemoteTag() == "" || p.LocalTag() == "" || p.CallID() == "" {
				t.Errorf("tags/call-id missing: local %q remote %q call-id %q", p.LocalTag(), p.RemoteTag(), p.CallID())
			}
			u.mu.Lock()
			inv := u.invites[0]
			u.mu.Unlock()
			if got := inv.CallID().Value(); got != p.CallID() {
				t.Errorf("server saw Call-ID %q, phone reports %q", got, p.CallID())
			}
			c := inv.Contact().Address
			if c.Port != p.Contact().Port || c.Port == 0 {
				t.Errorf("Contact port %d, phone listens on %d", c.Port, p.Contact().Port)
			}
			if tp, _ := c.UriParams.Get("transport"); tr == "tcp" && tp != "tcp" {
				t.Errorf("Contact %s lacks transport=tcp", c.String())
			}
			if tr == "udp" {
				// Symmetric SIP: the INVITE left from the Contact socket.
				if src := inv.Source(); !strings.HasSuffix(src, ":"+strconv.Itoa(c.Port)) {
					t.Errorf("INVITE came from %s, Contact port is %d", src, c.Port)
				}
			}
			select {
			case <-p.Done():
				t.Fatal("Done closed before any BYE")
			default:
			}
			if err := u.bye(ctx); err != nil {
				t.Fatalf("server BYE: %v", err)
			}
			select {
			case <-p.Done():
			case <-ctx.Done():
				t.Fatal("Done not closed after the server's BYE")
			}
			if err := p.Hangup(ctx); !errors.Is(err, ErrCallEnded) {
				t.Errorf("Hangup after server BYE = %v, want ErrCallEnded", err)
			}
		})
	}

	t.Run("the server's codec preference decides the codec", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{prefer: []uint8{g711.PCMA, g711.PCMU}})
		p := dial(t, ctx, Config{Server: u.addr})
		if p.Codec() != g711.PCMA {
			t.Fatalf("Codec() = %d, want PCMA", p.Codec())
		}
		// And the phone really sends PCMA.
		u.waitFor(ctx, "audio", func() bool { return len(u.audio) > 0 })
		u.mu.Lock()
		pt := u.audio[0].pt
		u.mu.Unlock()
		if pt != g711.PCMA {
			t.Errorf("phone sent payload type %d, want PCMA", pt)
		}
	})

	t.Run("offers only the configured codecs, in order, with ptime and telephone-event", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{prefer: []uint8{g711.PCMU, g711.PCMA}})
		p := dial(t, ctx, Config{Server: u.addr, Codecs: []uint8{g711.PCMA}, DTMF: 100, Ptime: 30})
		if p.Codec() != g711.PCMA {
			t.Fatalf("Codec() = %d, want PCMA", p.Codec())
		}
		u.mu.Lock()
		body := string(u.invites[0].Body())
		u.mu.Unlock()
		for _, want := range []string{" RTP/AVP 8 100\r\n", "a=rtpmap:100 telephone-event/8000", "a=ptime:30", "a=sendrecv"} {
			if !strings.Contains(body, want) {
				t.Errorf("offer lacks %q:\n%s", want, body)
			}
		}
	})

	t.Run("request URI, From, and extra headers reach the server", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		dial(t, ctx, Config{
			Server: u.addr, User: "000777123", FromUser: "alice", DisplayName: "Alice",
			Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=42;pin=1"), sip.NewHeader("X-ParticipantID", "p1")},
		})
		u.mu.Lock()
		inv := u.invites[0]
		u.mu.Unlock()
		if inv.Recipient.User != "000777123" {
			t.Errorf("Request-URI user %q", inv.Recipient.User)
		}
		if f := inv.From(); f.DisplayName != "Alice" || f.Address.User != "alice" {
			t.Errorf("From = %s", f.Value())
		}
		if h := inv.GetHeader("P-App-Param"); h == nil || h.Value() != "room=42;pin=1" {
			t.Errorf("P-App-Param = %v", h)
		}
		if h := inv.GetHeader("X-ParticipantID"); h == nil || h.Value() != "p1" {
			t.Errorf("X-ParticipantID = %v", h)
		}
	})

	t.Run("a rejected INVITE returns a StatusError", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{reject: 486})
		_, err := Dial(ctx, Config{Server: u.addr})
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 486 {
			t.Fatalf("Dial = %v, want StatusError 486", err)
		}
	})

	t.Run("a verbatim bad SDP offer is passed through and rejected", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		bad := []byte("this is not SDP\r\n")
		_, err := Dial(ctx, Config{Server: u.addr, SDP: bad})
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 488 {
			t.Fatalf("Dial = %v, want StatusError 488", err)
		}
		u.mu.Lock()
		got := u.invites[0].Body()
		u.mu.Unlock()
		if !bytes.Equal(got, bad) {
			t.Errorf("server got body %q, want %q", got, bad)
		}
	})

	t.Run("a bad config is refused before anything is sent", func(t *testing.T) {
		for _, cfg := range []Config{{}, {Server: "nohostport"}, {Server: "127.0.0.1:5060", Transport: "sctp"}, {Server: "127.0.0.1:5060", Ptime: 5}} {
			if _, err := Dial(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
				t.Errorf("Dial(%+v) = %v, want ErrBadConfig", cfg, err)
			}
		}
	})
}

func TestCancel(t *testing.T) {
	t.Run("cancelling a ringing call gives 487", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{delay: 30 * time.Second})
		pd, err := DialNoWait(ctx, Config{Server: u.addr})
		if err != nil {
			t.Fatal(err)
		}
		if err := pd.WaitCode(ctx, 180); err != nil {
			t.Fatal(err)
		}
		final, err := pd.Cancel(ctx)
		if err != nil || final != 487 {
			t.Fatalf("Cancel = %d, %v; want 487", final, err)
		}
		if got := pd.Responses(); got[len(got)-1] != 487 || !containsInt(got, 180) {
			t.Errorf("Responses() = %v, want 180 ... 487", got)
		}
		_, err = pd.Wait(ctx)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 487 {
			t.Errorf("Wait after Cancel = %v, want StatusError 487", err)
		}
		if err := pd.WaitCode(ctx, 200); !errors.Is(err, ErrNotSeen) {
			t.Errorf("WaitCode(200) = %v, want ErrNotSeen", err)
		}
	})

	t.Run("Dial whose context ends while ringing cancels the INVITE", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{delay: 30 * time.Second})
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := Dial(short, Config{Server: u.addr}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial = %v, want DeadlineExceeded", err)
		}
		u.waitFor(ctx, "the CANCEL", func() bool { return u.cancels == 1 })
	})

	t.Run("waiting for a delayed answer records the 180", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{delay: 200 * time.Millisecond})
		pd, err := DialNoWait(ctx, Config{Server: u.addr})
		if err != nil {
			t.Fatal(err)
		}
		p, err := pd.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if got := pd.Responses(); !containsInt(got, 180) || got[len(got)-1] != 200 {
			t.Errorf("Responses() = %v, want 180 ... 200", got)
		}
	})
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestAudio(t *testing.T) {
	t.Run("hears the server's tone and not another frequency", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{toneHz: 1000})
		p := dial(t, ctx, Config{Server: u.addr})
		// The UAS plays at 8000: reaching 90% of it over 200 ms shows
		// the packets are stitched without gaps (G.711 costs ~1%).
		if err := p.WaitLevel(ctx, 1000, 7200, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if l := p.Level(1000, 200*time.Millisecond); l > 8800 {
			t.Errorf("1000 Hz level %.0f, want ~8000", l)
		}
		if l := p.Level(1400, 200*time.Millisecond); l > 300 {
			t.Errorf("1400 Hz level %.0f, want ~0", l)
		}
		if pt := p.ReceivedPtimes(); pt[20] == 0 || len(pt) != 1 {
			t.Errorf("ReceivedPtimes() = %v, want only 20 ms", pt)
		}
		n1, seq1 := p.Received()
		u.setTone(0)
		if err := p.WaitQuiet(ctx, 1000, 300, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if n2, seq2 := p.Received(); n2 <= n1 || seq2 == seq1 {
			t.Errorf("Received() did not advance: %d/%d -> %d/%d", n1, seq1, n2, seq2)
		}
	})

	t.Run("silence is heard when packets stop arriving", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{toneHz: 700})
		p := dial(t, ctx, Config{Server: u.addr})
		if err := p.WaitLevel(ctx, 700, 5000, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		u.stopPlaying()
		if err := p.WaitQuiet(ctx, 700, 100, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("sends its tone on a 20 ms grid that the echo brings back", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{}) // echo
		p := dial(t, ctx, Config{Server: u.addr})
		p.SetTone(600)
		if err := p.WaitLevel(ctx, 600, 3000, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if l := p.Level(900, 200*time.Millisecond); l > 300 {
			t.Errorf("900 Hz level %.0f in the echo of 600 Hz", l)
		}
		u.waitFor(ctx, "60 packets", func() bool { return len(u.audio) >= 60 })
		u.mu.Lock()
		pk := append([]uasAudio(nil), u.audio[:60]...)
		u.mu.Unlock()
		for i := 1; i < len(pk); i++ {
			if pk[i].seq != pk[i-1].seq+1 || pk[i].ts != pk[i-1].ts+160 {
				t.Fatalf("packet %d: seq %d ts %d after seq %d ts %d", i, pk[i].seq, pk[i].ts, pk[i-1].seq, pk[i-1].ts)
			}
			if len(pk[i].pcm) != 160 {
				t.Fatalf("packet %d has %d samples", i, len(pk[i].pcm))
			}
		}
		// Absolute deadlines: 59 intervals take 59*20 ms give or take
		// scheduling noise, with no accumulated drift.
		span := pk[59].at.Sub(pk[0].at)
		// Wide bounds: arrival times include the test UAS's own
		// scheduling on a loaded machine; a wrong grid (10 or 30 ms)
		// lands far outside them.
		if span < 1000*time.Millisecond || span > 1400*time.Millisecond {
			t.Errorf("59 packet intervals took %v, want ~1.18 s", span)
		}
	})

	t.Run("sends ptime-sized packets when configured", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr, Ptime: 40})
		p.SetTone(500)
		u.waitFor(ctx, "5 packets", func() bool { return len(u.audio) >= 5 })
		u.mu.Lock()
		a, b := u.audio[3], u.audio[4]
		u.mu.Unlock()
		if len(b.pcm) != 320 || b.ts-a.ts != 320 {
			t.Errorf("packet has %d samples, ts step %d; want 320", len(b.pcm), b.ts-a.ts)
		}
		if err := p.WaitAudio(ctx, func(s []int16) bool { return p.ReceivedPtimes()[40] > 3 }, 0); err != nil {
			t.Errorf("echoed 40 ms packets not counted: %v (%v)", err, p.ReceivedPtimes())
		}
	})

	t.Run("SetSending(false) stops RTP and true resumes it", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr})
		u.waitFor(ctx, "audio", func() bool { return len(u.audio) >= 3 })
		p.SetSending(false)
		// Whatever was in flight lands within a packet time or two.
		settle := time.NewTimer(100 * time.Millisecond)
		<-settle.C
		u.mu.Lock()
		n := len(u.audio)
		u.mu.Unlock()
		quiet := time.NewTimer(200 * time.Millisecond)
		<-quiet.C
		u.mu.Lock()
		m := len(u.audio)
		u.mu.Unlock()
		if m != n {
			t.Errorf("%d packets arrived while sending was off", m-n)
		}
		p.SetSending(true)
		u.waitFor(ctx, "audio to resume", func() bool { return len(u.audio) > m+2 })
	})

	t.Run("RTCP and telephone-event packets are not audio", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{toneHz: 1000})
		p := dial(t, ctx, Config{Server: u.addr})
		if err := p.WaitLevel(ctx, 1000, 5000, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		n0, _ := p.Received()
		c, err := net.DialUDP("udp", nil, p.RTPConn().LocalAddr().(*net.UDPAddr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 1} // RTCP receiver report, no blocks
		c.Write(rr)
		ev := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: 9, Timestamp: 1}, Payload: []byte{5, 10, 0, 160}}
		b, _ := ev.Marshal()
		c.Write(b)
		if err := p.WaitAudio(ctx, func([]int16) bool { n, _ := p.Received(); return n >= n0+3 }, 0); err != nil {
			t.Fatal(err)
		}
		if pt := p.ReceivedPtimes(); len(pt) != 1 {
			t.Errorf("ReceivedPtimes() = %v: a non-audio packet was counted as audio", pt)
		}
	})
}

// eventGroups splits telephone-event packets into events by timestamp.
func eventGroups(evs []uasEvent) [][]uasEvent {
	var groups [][]uasEvent
	for i, e := range evs {
		if i == 0 || e.ts != evs[i-1].ts {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], e)
	}
	return groups
}

func TestDTMF(t *testing.T) {
	t.Run("RFC 4733 sends one event per digit with growing duration and three end packets", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr})
		p.SetTone(440)
		if err := p.SendDTMF(ctx, "19#*", RFC4733); err != nil {
			t.Fatal(err)
		}
		// All packets were sent before SendDTMF returned; let them land.
		u.waitFor(ctx, "4 events of 8 packets", func() bool { return len(u.events) >= 4*8 })
		u.mu.Lock()
		evs := append([]uasEvent(nil), u.events...)
		audio := append([]uasAudio(nil), u.audio...)
		u.mu.Unlock()
		groups := eventGroups(evs)
		wantCodes := []uint8{1, 9, 11, 10}
		if len(groups) != len(wantCodes) {
			t.Fatalf("%d events, want %d: %+v", len(groups), len(wantCodes), evs)
		}
		for i, g := range groups {
			if len(g) != 5+3 {
				t.Errorf("digit %d: %d packets, want 5 updates + 3 ends", i, len(g))
			}
			if !g[0].marker {
				t.Errorf("digit %d: first packet lacks the marker", i)
			}
			for k, e := range g {
				if e.ev.Code != wantCodes[i] {
					t.Errorf("digit %d packet %d: code %d, want %d", i, k, e.ev.Code, wantCodes[i])
				}
				if k > 0 && (e.marker || e.seq != g[k-1].seq+1 || e.ev.Duration < g[k-1].ev.Duration) {
					t.Errorf("digit %d packet %d: marker %v seq %d dur %d after seq %d dur %d",
						i, k, e.marker, e.seq, e.ev.Duration, g[k-1].seq, g[k-1].ev.Duration)
				}
				wantEnd := k >= len(g)-3
				if e.ev.End != wantEnd {
					t.Errorf("digit %d packet %d: End=%v, want %v", i, k, e.ev.End, wantEnd)
				}
			}
			if last := g[len(g)-1].ev.Duration; last != 800 {
				t.Errorf("digit %d: final duration %d, want 800 (100 ms)", i, last)
			}
		}
		// Audio carries on around the events (RFC 4733 section 2.5): some
		// audio packet falls between each pair of events, and its
		// timestamp is past the event start.
		for i := 1; i < len(groups); i++ {
			prevLast, next := groups[i-1][len(groups[i-1])-1], groups[i][0]
			between := false
			for _, a := range audio {
				if seqAfter(a.seq, prevLast.seq) && seqAfter(next.seq, a.seq) {
					between = true
					if int32(a.ts-groups[i-1][0].ts) < 800 {
						t.Errorf("audio ts %d too close to event ts %d", a.ts, groups[i-1][0].ts)
					}
				}
			}
			if !between {
				t.Errorf("no audio between digit %d and %d", i-1, i)
			}
		}
	})

	t.Run("SIP INFO sends one dtmf-relay body per digit", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr})
		if err := p.SendDTMF(ctx, "5#", INFO); err != nil {
			t.Fatal(err)
		}
		u.mu.Lock()
		infos := append([]*sip.Request(nil), u.infos...)
		u.mu.Unlock()
		want := []string{"Signal=5\r\nDuration=160\r\n", "Signal=#\r\nDuration=160\r\n"}
		if len(infos) != len(want) {
			t.Fatalf("%d INFOs, want %d", len(infos), len(want))
		}
		for i, r := range infos {
			if string(r.Body()) != want[i] {
				t.Errorf("INFO %d body %q, want %q", i, r.Body(), want[i])
			}
			if ct := r.ContentType(); ct == nil || ct.Value() != "application/dtmf-relay" {
				t.Errorf("INFO %d Content-Type %v", i, ct)
			}
			if r.CallID().Value() != p.CallID() {
				t.Errorf("INFO %d outside the dialog", i)
			}
		}
	})

	t.Run("in-band DTMF mixes both tones of the digit into the audio", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr})
		u.waitFor(ctx, "audio", func() bool { return len(u.audio) > 0 })
		u.mu.Lock()
		from := len(u.audio)
		u.mu.Unlock()
		if err := p.SendDTMF(ctx, "9", Inband); err != nil {
			t.Fatal(err)
		}
		// 100 ms tone + 60 ms gap were sent; let 10 packets land.
		u.waitFor(ctx, "the tone's packets", func() bool { return len(u.audio) >= from+10 })
		u.mu.Lock()
		var pcm []int16
		for _, a := range u.audio[from:] {
			pcm = append(pcm, a.pcm...)
		}
		nEvents := len(u.events)
		u.mu.Unlock()
		// '9' is 852 Hz + 1477 Hz (ITU-T Q.23). Find the loudest 100 ms.
		best := 0.0
		for off := 0; off+800 <= len(pcm); off += 160 {
			best = math.Max(best, goertzel(pcm[off:off+800], 852))
			if l := goertzel(pcm[off:off+800], 1477); goertzel(pcm[off:off+800], 852) > 2000 && l < 2000 {
				t.Errorf("852 Hz without 1477 Hz at %d", off)
			}
		}
		if best < 3000 {
			t.Errorf("852 Hz peak level %.0f, want ~4000", best)
		}
		if nEvents != 0 {
			t.Errorf("in-band DTMF sent %d telephone-events", nEvents)
		}
	})

	t.Run("digits that are not DTMF keys are refused", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr})
		if err := p.SendDTMF(ctx, "12x", RFC4733); !errors.Is(err, ErrBadDigit) {
			t.Errorf("SendDTMF(12x) = %v, want ErrBadDigit", err)
		}
	})

	t.Run("RFC 4733 needs telephone-event in the answer", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr, DTMF: -1})
		if err := p.SendDTMF(ctx, "1", RFC4733); !errors.Is(err, ErrNoTelephoneEvent) {
			t.Errorf("SendDTMF = %v, want ErrNoTelephoneEvent", err)
		}
	})
}

// seqAfter reports whether a comes after b in RTP sequence space.
func seqAfter(a, b uint16) bool { return a != b && a-b < 0x8000 }

// goertzel is an independent amplitude estimate, so the test does not
// trust the package it is checking against.
func goertzel(s []int16, f float64) float64 {
	w := 2 * math.Pi * f / 8000
	var re, im float64
	for i, v := range s {
		re += float64(v) * math.Cos(w*float64(i))
		im -= float64(v) * math.Sin(w*float64(i))
	}
	return 2 * math.Hypot(re, im) / float64(len(s))
}

func TestInDialog(t *testing.T) {
	t.Run("Hangup sends BYE and the server answers 200", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr})
		if err := p.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		u.waitFor(ctx, "the BYE", func() bool { return u.byes == 1 })
		select {
		case <-p.Done():
			t.Error("Done closed by our own hangup")
		default:
		}
		if err := p.Hangup(ctx); !errors.Is(err, ErrCallEnded) {
			t.Errorf("second Hangup = %v, want ErrCallEnded", err)
		}
	})

	for _, tr := range []string{"udp", "tcp"} {
		t.Run("re-INVITE holds and resumes over "+tr, func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			u := newUAS(t, uasConfig{transport: tr})
			p := dial(t, ctx, Config{Server: u.addr, Transport: tr})
			ans, err := p.Reinvite(ctx, "sendonly")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(ans, []byte("a=recvonly")) {
				t.Errorf("hold answer:\n%s", ans)
			}
			if _, err := p.Reinvite(ctx, "sendrecv"); err != nil {
				t.Fatal(err)
			}
			u.waitFor(ctx, "both ACKs", func() bool { return u.acks >= 3 }) // initial + 2 re-INVITEs
			u.mu.Lock()
			r1, r2 := string(u.reinvites[0].Body()), string(u.reinvites[1].Body())
			u.mu.Unlock()
			if !strings.Contains(r1, "a=sendonly") || !strings.Contains(r1, "IN IP4 127.0.0.1\r\n") {
				t.Errorf("hold offer:\n%s", r1)
			}
			if !strings.Contains(r2, "a=sendrecv") {
				t.Errorf("resume offer:\n%s", r2)
			}
			if v1, v2 := originVersion(r1), originVersion(r2); v1 != "2" || v2 != "3" {
				t.Errorf("o= versions %s, %s; want 2, 3", v1, v2)
			}
			// The dialog still works: the server can hang up.
			if err := u.bye(ctx); err != nil {
				t.Fatal(err)
			}
			<-p.Done()
		})
	}

	t.Run("requests from the server inside the dialog get 200", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		dial(t, ctx, Config{Server: u.addr})
		for _, m := range []sip.RequestMethod{sip.OPTIONS, sip.INFO, sip.INVITE} {
			res, err := u.request(ctx, m)
			if err != nil || res.StatusCode != 200 {
				t.Errorf("%s -> %v, %v", m, res, err)
			}
		}
	})

	t.Run("SendRaw fills in the dialog headers", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		u := newUAS(t, uasConfig{})
		p := dial(t, ctx, Config{Server: u.addr})
		req := sip.NewRequest(sip.INFO, sip.Uri{})
		req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
		req.SetBody([]byte("hello"))
		res, err := p.SendRaw(ctx, req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("SendRaw = %v, %v", res, err)
		}
		u.mu.Lock()
		got := u.infos[0]
		u.mu.Unlock()
		if got.CallID().Value() != p.CallID() || string(got.Body()) != "hello" {
			t.Errorf("server got %s", got.String())
		}
		if tag, _ := got.To().Params.Get("tag"); tag != p.RemoteTag() {
			t.Errorf("To tag %q, want %q", tag, p.RemoteTag())
		}
	})
}

func originVersion(sdp string) string {
	for _, l := range strings.Split(sdp, "\r\n") {
		if f := strings.Fields(l); strings.HasPrefix(l, "o=") && len(f) >= 3 {
			return f[2]
		}
	}
	return ""
}

func TestCloseLeaksNothing(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run("closing a "+tr+" phone stops all its goroutines", func(t *testing.T) {
			ctx := testCtx(t, 15*time.Second)
			u := newUAS(t, uasConfig{transport: tr})
			before := runtime.NumGoroutine()
			p, err := Dial(ctx, Config{Server: u.addr, Transport: tr})
			if err != nil {
				t.Fatal(err)
			}
			p.SetTone(440)
			if err := p.SendDTMF(ctx, "1", RFC4733); err != nil {
				t.Fatal(err)
			}
			if err := p.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			p.Close()
			deadline := time.Now().Add(5 * time.Second)
			for runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(10 * time.Millisecond) // polling a count; there is no event to wait on
			}
		})
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	p := benchPhone(t)
	p.SetTone(440, 880)
	if a := testing.AllocsPerRun(200, func() { p.sendTick(160) }); a != 0 {
		t.Errorf("sendTick allocates %.1f times", a)
	}
	pkt := benchPacket()
	now := time.Now()
	if a := testing.AllocsPerRun(200, func() { now = now.Add(20 * time.Millisecond); p.onRTP(pkt, now) }); a != 0 {
		t.Errorf("onRTP allocates %.1f times", a)
	}
}

// benchPhone is a phone with media state and sockets but no SIP.
func benchPhone(tb testing.TB) *Phone {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close(); sink.Close() })
	cfg := Config{Server: "127.0.0.1:1"}
	if err := cfg.setDefaults(); err != nil {
		tb.Fatal(err)
	}
	p := &Phone{cfg: cfg, log: cfg.Logger, rtpConn: c, dtmfPT: 101, stop: make(chan struct{}), done: make(chan struct{})}
	p.tx.init()
	p.rx.init(time.Now())
	dst := sink.LocalAddr().(*net.UDPAddr).AddrPort()
	p.serverRTP.Store(&dst)
	return p
}

func benchPacket() *rtp.Packet {
	pcm := make([]int16, 160)
	payload := make([]byte, 160)
	g711.Encode(g711.PCMU, payload, pcm)
	return &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0}, Payload: payload}
}

func BenchmarkSendTick(b *testing.B) {
	p := benchPhone(b)
	p.SetTone(440, 880)
	b.ReportAllocs()
	for b.Loop() {
		p.sendTick(160)
	}
}

func BenchmarkOnRTP(b *testing.B) {
	p := benchPhone(b)
	pkt := benchPacket()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(20 * time.Millisecond)
		p.onRTP(pkt, now)
	}
}

// ---------------------------------------------------------------------------
// The test UAS.

// uasConfig is how the test UAS answers.
type uasConfig struct {
	transport string
	prefer    []uint8       // codec preference; default {PCMU, PCMA}
	delay     time.Duration // ring (180) this long before answering
	reject    int           // answer the INVITE with this final code instead
	toneHz    float64       // play this tone to the phone; 0 echoes its audio
}

// uasEvent is one telephone-event packet the UAS received.
type uasEvent struct {
	seq    uint16
	ts     uint32
	marker bool
	ev     dtmf.Event
}

// uasAudio is one audio packet the UAS received.
type uasAudio struct {
	at  time.Time
	seq uint16
	ts  uint32
	pt  uint8
	pcm []int16
}

// uas is a minimal SIP user agent server standing in for the conference
// server: it answers with SDP, echoes or plays audio, records what the
// phone sends and can hang up.
type uas struct {
	t    testing.TB
	cfg  uasConfig
	ua   *sipgo.UserAgent
	addr string // SIP listener host:port
	rtp  *net.UDPConn
	dc   *sipgo.DialogServerCache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	invites    []*sip.Request
	reinvites  []*sip.Request
	acks       int
	cancels    int
	infos      []*sip.Request
	byes       int
	dlg        *sipgo.DialogServerSession
	phoneRTP   netip.AddrPort
	events     []uasEvent
	audio      []uasAudio
	toneHz     float64
	changed    chan struct{} // closed and replaced on every recorded event
	playCancel context.CancelFunc
}

func newUAS(t testing.TB, cfg uasConfig) *uas {
	t.Helper()
	if cfg.transport == "" {
		cfg.transport = "udp"
	}
	if len(cfg.prefer) == 0 {
		cfg.prefer = []uint8{g711.PCMU, g711.PCMA}
	}
	u := &uas{t: t, cfg: cfg, changed: make(chan struct{}), toneHz: cfg.toneHz}
	u.ctx, u.cancel = context.WithCancel(context.Background())

	var err error
	u.rtp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("uas: listen RTP: %v", err)
	}
	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("test-uas"))
	if err != nil {
		t.Fatalf("uas: %v", err)
	}
	srv, err := sipgo.NewServer(u.ua)
	if err != nil {
		t.Fatalf("uas: %v", err)
	}
	cli, err := sipgo.NewClient(u.ua)
	if err != nil {
		t.Fatalf("uas: %v", err)
	}

	var closer interface{ Close() error }
	var serve func()
	serveDone := make(chan struct{})
	switch cfg.transport {
	case "udp":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatalf("uas: %v", err)
		}
		closer, u.addr = c, c.LocalAddr().String()
		serve = func() { srv.ServeUDP(c) }
	case "tcp":
		l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatalf("uas: %v", err)
		}
		closer, u.addr = l, l.Addr().String()
		serve = func() { srv.ServeTCP(l) }
	}
	host, portStr, _ := net.SplitHostPort(u.addr)
	port, _ := strconv.Atoi(portStr)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "uas", Host: host, Port: port}}
	if cfg.transport == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	u.dc = sipgo.NewDialogServerCache(cli, contact)

	srv.OnInvite(u.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		u.record(func() { u.acks++ })
		u.dc.ReadAck(req, tx) //nolint:errcheck // re-INVITE ACKs need no dialog state change
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := u.dc.ReadBye(req, tx); err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
			return
		}
		u.record(func() { u.byes++ })
		u.stopPlaying()
	})
	srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		u.record(func() { u.infos = append(u.infos, req.Clone()) })
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})

	// Handlers are registered before serving: sipgo's handler map is not
	// safe to change while requests arrive.
	go func() { defer close(serveDone); serve() }()
	u.wg.Add(1)
	go u.readRTP()

	t.Cleanup(func() {
		u.cancel()
		u.stopPlaying()
		u.rtp.Close()
		u.wg.Wait()
		u.ua.Close()
		closer.Close()
		<-serveDone
	})
	return u
}

func (u *uas) record(f func()) {
	u.mu.Lock()
	f()
	close(u.changed)
	u.changed = make(chan struct{})
	u.mu.Unlock()
}

// waitFor waits until cond (called with u.mu held) is true.
func (u *uas) waitFor(ctx context.Context, what string, cond func() bool) {
	u.t.Helper()
	for {
		u.mu.Lock()
		ok := cond()
		ch := u.changed
		u.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			u.t.Fatalf("uas: waiting for %s: %v", what, ctx.Err())
		}
	}
}

func (u *uas) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		u.onReinvite(req, tx)
		return
	}
	u.record(func() { u.invites = append(u.invites, req.Clone()) })
	if u.cfg.reject != 0 {
		tx.Respond(sip.NewResponseFromRequest(req, u.cfg.reject, "Rejected By Test", nil))
		return
	}
	offer, err := parseOffer(req.Body())
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	dlg, err := u.dc.ReadInvite(req, tx)
	if err != nil {
		u.t.Errorf("uas: read invite: %v", err)
		return
	}
	if u.cfg.delay > 0 {
		dlg.Respond(180, "Ringing", nil)
		select {
		case <-time.After(u.cfg.delay):
		case <-dlg.Context().Done():
			// CANCEL: the transaction layer has answered 487.
			u.record(func() { u.cancels++ })
			return
		case <-u.ctx.Done():
			return
		}
	}
	codec := -1
	for _, c := range u.cfg.prefer {
		if slices.Contains(offer.codecs, c) {
			codec = int(c)
			break
		}
	}
	if codec < 0 {
		dlg.Respond(488, "Not Acceptable Here", nil)
		return
	}
	u.mu.Lock()
	u.phoneRTP = offer.rtp
	u.mu.Unlock()
	u.startPlaying(uint8(codec))
	// RespondSDP returns once the ACK is in (or on timeout); only then is
	// the dialog safe to use from other goroutines.
	if err := dlg.RespondSDP(u.answer(uint8(codec), offer)); err != nil {
		return
	}
	u.record(func() { u.dlg = dlg })
}

func (u *uas) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	dlg, err := u.dc.MatchDialogRequest(req)
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
		return
	}
	if err := dlg.ReadRequest(req, tx); err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 500, "Bad CSeq", nil))
		return
	}
	u.record(func() { u.reinvites = append(u.reinvites, req.Clone()) })
	offer, err := parseOffer(req.Body())
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	res := sip.NewSDPResponseFromRequest(req, u.answer(offer.codecs[0], offer))
	res.AppendHeader(sip.HeaderClone(dlg.InviteResponse.Contact()))
	tx.Respond(res)
}

type sdpOffer struct {
	rtp       netip.AddrPort
	codecs    []uint8
	dtmfPT    int
	direction string
}

func parseOffer(body []byte) (sdpOffer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return sdpOffer{}, err
	}
	if len(sd.MediaDescriptions) == 0 || sd.ConnectionInformation == nil {
		return sdpOffer{}, fmt.Errorf("no media")
	}
	md := sd.MediaDescriptions[0]
	ip, err := netip.ParseAddr(sd.ConnectionInformation.Address.Address)
	if err != nil {
		return sdpOffer{}, err
	}
	o := sdpOffer{rtp: netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)), dtmfPT: -1, direction: "sendrecv"}
	for _, a := range md.Attributes {
		if a.Key == "rtpmap" && strings.Contains(a.Value, "telephone-event") {
			o.dtmfPT, _ = strconv.Atoi(strings.Fields(a.Value)[0])
		}
		if a.Key == "sendonly" || a.Key == "recvonly" || a.Key == "inactive" {
			o.direction = a.Key
		}
	}
	for _, f := range md.MediaName.Formats {
		if pt, err := strconv.Atoi(f); err == nil && pt != o.dtmfPT {
			o.codecs = append(o.codecs, uint8(pt))
		}
	}
	return o, nil
}

func (u *uas) answer(codec uint8, o sdpOffer) []byte {
	_, port, _ := net.SplitHostPort(u.rtp.LocalAddr().String())
	var b strings.Builder
	fmt.Fprintf(&b, "v=0\r\no=uas 1 1 IN IP4 127.0.0.1\r\ns=uas\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n")
	fmt.Fprintf(&b, "m=audio %s RTP/AVP %d", port, codec)
	if o.dtmfPT >= 0 {
		fmt.Fprintf(&b, " %d", o.dtmfPT)
	}
	fmt.Fprintf(&b, "\r\na=rtpmap:%d %s/8000\r\n", codec, codecName(codec))
	if o.dtmfPT >= 0 {
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\n", o.dtmfPT)
	}
	dir := map[string]string{"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}[o.direction]
	fmt.Fprintf(&b, "a=%s\r\n", dir)
	return []byte(b.String())
}

// startPlaying sends a tone to the phone every 20 ms, if configured.
func (u *uas) startPlaying(codec uint8) {
	if u.cfg.toneHz == 0 {
		return
	}
	ctx, cancel := context.WithCancel(u.ctx)
	u.mu.Lock()
	u.playCancel = cancel
	dst := u.phoneRTP
	u.mu.Unlock()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		osc := tone.NewOsc(u.cfg.toneHz, 8000)
		pcm := make([]int16, 160)
		buf := make([]byte, 12+160)
		h := rtp.Header{Version: 2, PayloadType: codec, SSRC: 1234}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			u.mu.Lock()
			hz := u.toneHz
			u.mu.Unlock()
			if hz == 0 {
				clear(pcm)
			} else {
				osc.Fill(pcm)
			}
			g711.Encode(codec, buf[12:], pcm)
			h.MarshalTo(buf)
			u.rtp.WriteToUDPAddrPort(buf, dst)
			h.SequenceNumber++
			h.Timestamp += 160
		}
	}()
}

// setTone changes the played tone; 0 plays silence.
func (u *uas) setTone(hz float64) {
	u.mu.Lock()
	u.toneHz = hz
	u.mu.Unlock()
}

func (u *uas) stopPlaying() {
	u.mu.Lock()
	c := u.playCancel
	u.mu.Unlock()
	if c != nil {
		c()
	}
}

// readRTP records the phone's packets, and echoes audio when not playing.
func (u *uas) readRTP() {
	defer u.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := u.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		var pkt rtp.Packet
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		now := time.Now()
		switch pkt.PayloadType {
		case g711.PCMU, g711.PCMA:
			pcm := make([]int16, len(pkt.Payload))
			g711.Decode(pkt.PayloadType, pcm, pkt.Payload)
			u.record(func() {
				u.audio = append(u.audio, uasAudio{at: now, seq: pkt.SequenceNumber, ts: pkt.Timestamp, pt: pkt.PayloadType, pcm: pcm})
			})
			if u.cfg.toneHz == 0 {
				u.rtp.WriteToUDPAddrPort(buf[:n], from)
			}
		default:
			ev, err := dtmf.Decode(pkt.Payload)
			if err != nil {
				u.t.Errorf("uas: bad telephone-event payload %x: %v", pkt.Payload, err)
				continue
			}
			u.record(func() {
				u.events = append(u.events, uasEvent{seq: pkt.SequenceNumber, ts: pkt.Timestamp, marker: pkt.Marker, ev: ev})
			})
		}
	}
}

// dialog waits for the confirmed dialog.
func (u *uas) dialog(ctx context.Context) *sipgo.DialogServerSession {
	u.waitFor(ctx, "the ACK", func() bool { return u.dlg != nil })
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dlg
}

// bye hangs up the call from the server side.
func (u *uas) bye(ctx context.Context) error {
	dlg := u.dialog(ctx)
	u.stopPlaying()
	return dlg.Bye(ctx)
}

// request sends an in-dialog request to the phone.
func (u *uas) request(ctx context.Context, method sip.RequestMethod) (*sip.Response, error) {
	dlg := u.dialog(ctx)
	req := sip.NewRequest(method, dlg.InviteRequest.Contact().Address)
	req.SetTransport(dlg.InviteRequest.Transport())
	return dlg.Do(ctx, req)
}
