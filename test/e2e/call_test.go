package e2e

import (
	"bytes"
	"net"
	"regexp"
	"testing"
	"time"

	"github.com/pion/rtp"

	"webconf/conf"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

func waitDone(t *testing.T, p *phone.Phone, d time.Duration, what string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		t.Fatalf("no BYE from the server: %s", what)
	}
}

func TestJoinAndDropBeepsAndFirstParticipant(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "beeps", phone.Config{})
	hear(t, a, fFirst, "first_participant")
	quiet(t, a, fFirst)
	b := srv.direct(t, "beeps", phone.Config{})
	hear(t, a, fJoin, "join beep")
	if lvl := b.Level(fJoin, 2*time.Second); lvl > 300 {
		t.Fatalf("the joiner heard the join beep (level %.0f); only the others should", lvl)
	}
	if lvl := b.Level(fFirst, 2*time.Second); lvl > 300 {
		t.Fatalf("the second caller heard first_participant (level %.0f)", lvl)
	}
	if err := b.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	hear(t, a, fDrop, "drop beep")
}

func TestLoopedFirstParticipantPromptStopsWhenSomeoneJoins(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) { c.Webconference.LoopFirstParticipantPrompt = true })
	a := srv.direct(t, "loop", phone.Config{})
	hear(t, a, fFirst, "first_participant")
	// The prompt is 600 ms; looping keeps it going well past that.
	time.Sleep(1500 * time.Millisecond) // the loop must still be running after its length
	hear(t, a, fFirst, "first_participant, looped")
	srv.direct(t, "loop", phone.Config{})
	hear(t, a, fJoin, "join beep")
	quiet(t, a, fFirst)
}

func TestLonelyUserIsHungUp(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) { c.Webconference.LonelyUserTimer = time.Second })
	a := srv.direct(t, "lonely", phone.Config{})
	srv.inRoom(t, a, "lonely", room.ReasonDirect)
	waitDone(t, a, 5*time.Second, "lonely_user_timer")
	srv.waitStatus(t, "lonely", a.RemoteTag(), room.StatusFinished, "")
}

func TestLonelyTimerIsCancelledWhenSomeoneJoins(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) { c.Webconference.LonelyUserTimer = 2 * time.Second })
	a := srv.direct(t, "company", phone.Config{})
	srv.inRoom(t, a, "company", room.ReasonDirect)
	b := srv.direct(t, "company", phone.Config{})
	srv.inRoom(t, b, "company", room.ReasonDirect)
	select {
	case <-a.Done():
		t.Fatal("a was hung up although not alone")
	case <-b.Done():
		t.Fatal("b was hung up although not alone")
	case <-time.After(3 * time.Second): // longer than the timer: nothing may happen
	}
}

func TestHangupLeavesAFinishedRecord(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	free := srv.ActiveCalls()
	a := srv.direct(t, "bye", phone.Config{FromUser: "alice", DisplayName: "Alice"})
	srv.inRoom(t, a, "bye", room.ReasonDirect)
	parts := srv.participants("bye")
	if len(parts) != 1 || !regexp.MustCompile(`^Alice <sip:alice@127\.0\.0\.1(:\d+)?>$`).MatchString(parts[0].Number) {
		t.Fatalf("participant records %+v: want one with SEMS's number form `Alice <sip:alice@127.0.0.1>`", parts)
	}
	if err := a.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	srv.waitStatus(t, "bye", a.RemoteTag(), room.StatusFinished, "")
	testutil.WaitFor(t, 5*time.Second, "the call to be gone", func() bool { return srv.ActiveCalls() == free })
}

func TestCancelBeforeAnswer(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) { c.Server.AnswerDelay = 3 * time.Second })
	ctx := testutil.Ctx(t, 10*time.Second)
	pend, err := phone.DialNoWait(ctx, phone.Config{Server: srv.addr, User: "conference"})
	if err != nil {
		t.Fatal(err)
	}
	if err := pend.WaitCode(ctx, 180); err != nil {
		t.Fatalf("no 180 Ringing: %v", err)
	}
	code, err := pend.Cancel(ctx)
	if err != nil || code != 487 {
		t.Fatalf("CANCEL: final %d, %v; want 487", code, err)
	}
	testutil.WaitFor(t, 5*time.Second, "no calls left", func() bool { return srv.ActiveCalls() == 0 })
}

func TestHoldAndResumeKeepTheCall(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a, b := srv.talkingPair(t, "hold", 500, 700)
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)

	ans, err := a.Reinvite(testutil.Ctx(t, 5*time.Second), "sendonly")
	if err != nil {
		t.Fatalf("hold: %v", err)
	}
	if !bytes.Contains(ans, []byte("a=recvonly")) {
		t.Fatalf("hold answer must be recvonly:\n%s", ans)
	}
	// On hold the server stops sending to a, and b still hears a.
	testutil.WaitFor(t, 3*time.Second, "the server to stop sending to a", func() bool {
		n1, _ := a.Received()
		time.Sleep(200 * time.Millisecond)
		n2, _ := a.Received()
		return n1 == n2
	})
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)

	ans, err = a.Reinvite(testutil.Ctx(t, 5*time.Second), "sendrecv")
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if !bytes.Contains(ans, []byte("a=sendrecv")) {
		t.Fatalf("resume answer must be sendrecv:\n%s", ans)
	}
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
	if srv.ActiveCalls() != 2 {
		t.Fatalf("%d calls after hold and resume, want 2", srv.ActiveCalls())
	}
}

func TestRTPTimeoutHangsUp(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) { c.Server.DeadRTPTime = time.Second })
	a := srv.direct(t, "silent", phone.Config{})
	srv.inRoom(t, a, "silent", room.ReasonDirect)
	a.SetSending(false)
	waitDone(t, a, 5*time.Second, "dead_rtp_time")
	srv.waitStatus(t, "silent", a.RemoteTag(), room.StatusFinished, "")
}

func TestRTPFromAForeignAddressIsDropped(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "latch", phone.Config{})
	b := srv.direct(t, "latch", phone.Config{})
	a.SetTone(500)
	hearsAllButSelf(t, b, 0, []float64{500}, 1500, 1e9)

	// An intruder sends a loud 1100 Hz tone to a's server port with a's
	// codec, from another socket.
	intruder := loopbackUDP(t)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		osc := tone.NewOsc(1100, 8000)
		pcm := make([]int16, 160)
		payload := make([]byte, 160)
		hdr := rtp.Header{Version: 2, PayloadType: a.Codec(), SSRC: 0xbadbad}
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			osc.Fill(pcm)
			g711.Encode(a.Codec(), payload, pcm)
			pkt, _ := (&rtp.Packet{Header: hdr, Payload: payload}).Marshal()
			_, _ = intruder.WriteToUDP(pkt, a.ServerRTP())
			hdr.SequenceNumber++
			hdr.Timestamp += 160
		}
	}()
	testutil.WaitFor(t, 5*time.Second, "the server to drop 25 intruder packets", func() bool {
		st, ok := srv.LegStats(a.RemoteTag())
		return ok && st.RxForeign >= 25
	})
	if lvl := b.Level(1100, 800*time.Millisecond); lvl > 200 {
		t.Fatalf("b hears the intruder's tone at %.0f: packets from a foreign address must be dropped", lvl)
	}
	hearsAllButSelf(t, b, 0, []float64{500}, 1500, 1e9)
}

// TestMediaFloodsLeaveCallsIntact sends 10,000 RTP packets from a foreign
// address to one call's port and 10,000 garbage datagrams (at about 10,000
// per second) to the other's: both calls go on and still hear each other.
func TestMediaFloodsLeaveCallsIntact(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a, b := srv.talkingPair(t, "flood", 500, 700)
	intruder := loopbackUDP(t)
	pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: a.Codec(), SSRC: 7}, Payload: make([]byte, 160)}).Marshal()
	garbage := []byte("\x00\xffnot RTP at all, just noise on a media port")
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 1000; i++ { // 10 datagrams of each kind per millisecond
		<-tick.C
		for j := 0; j < 10; j++ {
			_, _ = intruder.WriteToUDP(pkt, a.ServerRTP())
			_, _ = intruder.WriteToUDP(garbage, b.ServerRTP())
		}
	}
	// What the socket buffer held is read and counted; a flood beyond
	// that is dropped by the kernel (Udp RcvbufErrors), costing us nothing.
	testutil.WaitFor(t, 5*time.Second, "foreign packets counted", func() bool {
		st, ok := srv.LegStats(a.RemoteTag())
		return ok && st.RxForeign > 100
	})
	st, _ := srv.LegStats(b.RemoteTag())
	if st.RxBad == 0 {
		t.Fatal("garbage was not counted as dropped")
	}
	select {
	case <-a.Done():
		t.Fatal("the flood ended a call")
	case <-b.Done():
		t.Fatal("the flood ended a call")
	default:
	}
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
}

// loopbackUDP is a socket on 127.0.0.1 that lives as long as the test.
func loopbackUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
