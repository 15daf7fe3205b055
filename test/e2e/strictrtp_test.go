package e2e

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"webconf/conf"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// fIntruder is what an intruder would inject: far from the callers' tones.
const fIntruder = 1100.0

// rtpSender sends a steady RTP stream of a loud tone from one socket, in
// sequence with one SSRC: what a phone sends, and what an intruder who
// wants to be learned as one sends.
type rtpSender struct {
	conn *net.UDPConn
	hdr  rtp.Header
	osc  *tone.Osc
}

func newRTPSender(t *testing.T) *rtpSender {
	return &rtpSender{conn: loopbackUDP(t), hdr: rtp.Header{Version: 2, PayloadType: g711.PCMU, SSRC: 0xbadbad}, osc: tone.NewOsc(fIntruder, 8000)}
}

// send sends n packets, one per 20 ms, each to every address in to.
func (s *rtpSender) send(t *testing.T, n int, to ...*net.UDPAddr) {
	t.Helper()
	pcm := make([]int16, 160)
	payload := make([]byte, 160)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; i++ {
		s.osc.Fill(pcm)
		g711.Encode(g711.PCMU, payload, pcm)
		pkt, err := (&rtp.Packet{Header: s.hdr, Payload: payload}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range to {
			if _, err := s.conn.WriteToUDP(pkt, a); err != nil {
				t.Fatal(err)
			}
		}
		s.hdr.SequenceNumber++
		s.hdr.Timestamp += 160
		<-tick.C
	}
}

// received counts what the socket got from the server over d (all that
// its buffer holds from before, and what arrives meanwhile).
func (s *rtpSender) received(t *testing.T, d time.Duration) int {
	t.Helper()
	_ = s.conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	n := 0
	for {
		if _, err := s.conn.Read(buf); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("intruder socket: %v", err)
			}
			return n
		}
		n++
	}
}

// TestRTPHijackBeforeThePhoneSpeaks is the attack of issue 11 point 4: a
// call whose phone has sent no RTP yet, and a socket that is not in its
// SDP sending to the call's RTP port before and after the answer. The old
// leg latched to the intruder's first packet and sent it the room's mix (81
// packets in 1.5 s). Now packets before the answer never count, fewer
// than the learning's 5 in sequence after it are not enough, and once the
// phone speaks from its SDP address nothing else is ever heard or answered.
func TestRTPHijackBeforeThePhoneSpeaks(t *testing.T) {
	t.Parallel()
	// Two even ports, above the ephemeral range and the other tests'
	// ranges, so the intruder can spray the whole range before it knows
	// the call's port; the answer is delayed so it can do so while the
	// call rings.
	const low = 61200
	srv := start(t, func(c *conf.Config) {
		c.Server.RTPLowPort, c.Server.RTPHighPort = low, low+2
		c.Server.AnswerDelay = time.Second
	})
	range2 := []*net.UDPAddr{{IP: net.IPv4(127, 0, 0, 1), Port: low}, {IP: net.IPv4(127, 0, 0, 1), Port: low + 2}}
	b := srv.direct(t, "hijack", phone.Config{FromUser: "b"})
	b.SetTone(700)

	pd, err := phone.DialNoWait(testutil.Ctx(t, 10*time.Second), phone.Config{
		Server: srv.addr, User: "conference", FromUser: "a", Silent: true,
		Headers: []sip.Header{appParam("room=hijack")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pd.Close)
	if err := pd.WaitCode(testutil.Ctx(t, 5*time.Second), 180); err != nil {
		t.Fatal(err)
	}
	intruder := newRTPSender(t)
	// While a rings: 10 packets in sequence (200 ms, well before the
	// answer), to both ports of the range.
	intruder.send(t, 10, range2...)
	a, err := pd.Wait(testutil.Ctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	srv.waitStatus(t, "hijack", a.RemoteTag(), room.StatusConnected, room.ReasonDirect)
	// After the answer, the same stream goes on with 4 more: with the 10
	// before, more than enough to be learned if those counted.
	intruder.send(t, 4, range2...)
	if n := intruder.received(t, 1500*time.Millisecond); n > 0 {
		t.Fatalf("the intruder received %d packets of the room's mix before the phone spoke", n)
	}
	st, _ := srv.LegStats(a.RemoteTag())
	if st.RxPackets != 0 || st.RxForeign == 0 {
		t.Fatalf("a's leg accepted the intruder's packets or did not count them: %+v", st)
	}

	// The call is undisturbed: a speaks from its SDP address, is latched
	// at once, hears b and is heard.
	a.SetTone(500)
	a.SetSending(true)
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)

	// Once the phone has spoken, a whole stream from elsewhere is dropped:
	// nobody hears it, and it gets nothing back.
	before, _ := srv.LegStats(a.RemoteTag())
	intruder.send(t, 50, a.ServerRTP())
	testutil.WaitFor(t, 5*time.Second, "the intruder's 50 packets counted foreign", func() bool {
		st, _ := srv.LegStats(a.RemoteTag())
		return st.RxForeign >= before.RxForeign+50
	})
	if lvl := b.Level(fIntruder, 800*time.Millisecond); lvl > 200 {
		t.Fatalf("b hears the intruder's tone at %.0f", lvl)
	}
	if n := intruder.received(t, 200*time.Millisecond); n > 0 {
		t.Fatalf("the intruder received %d packets after the phone spoke", n)
	}
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
	if srv.ActiveCalls() != 2 {
		t.Fatalf("%d calls, want 2: the intruder disturbed them", srv.ActiveCalls())
	}
	ctx := testutil.Ctx(t, 3*time.Second)
	_ = a.Hangup(ctx)
	a.Close()
}

// TestNATPhoneIsLearned: a phone whose SDP names one port but whose
// packets come from another (behind a NAT) is learned from its stream
// (strict RTP with learning) and then hears the room and is heard.
func TestNATPhoneIsLearned(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	// Where the phone's SDP points: nobody sends from or listens there.
	sdpPort := loopbackUDP(t)
	nat := srv.direct(t, "nat", phone.Config{FromUser: "nat", SDPPort: sdpPort.LocalAddr().(*net.UDPAddr).Port})
	a := srv.direct(t, "nat", phone.Config{FromUser: "a"})
	nat.SetTone(700)
	a.SetTone(500)
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
	hearsAllButSelf(t, nat, 700, []float64{500}, 1500, 200)
	st, _ := srv.LegStats(nat.RemoteTag())
	if st.RxPackets == 0 {
		t.Fatalf("nat's leg: %+v", st)
	}
	// Before learning, only a handful went to the SDP address.
	n := 0
	_ = sdpPort.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	for buf := make([]byte, 1500); ; n++ {
		if _, err := sdpPort.Read(buf); err != nil {
			break
		}
	}
	if n > 10 {
		t.Fatalf("%d packets went to the SDP address the phone does not send from, want at most the 10 before latching", n)
	}
}
