package e2e

import (
	"bytes"
	"testing"
	"time"

	"webconf/dsp"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// TestComfortNoiseToPhonesThatOfferIt: in a quiet room, a phone that
// offered CN gets it in the answer, receives a SID and then almost nothing
// while a phone without CN keeps receiving a G.711 packet every tick (its
// stream is the test's clock); when someone talks, the CN phone hears it,
// the first packet marked and timestamped after the silence.
func TestComfortNoiseToPhonesThatOfferIt(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	cn := srv.direct(t, "dtx", phone.Config{FromUser: "cn", CN: true})
	plain := srv.direct(t, "dtx", phone.Config{FromUser: "plain"})
	testutil.WaitFor(t, 5*time.Second, "both connected", func() bool { return srv.connected("dtx") == 2 })
	if a := cn.AnswerSDP(); !bytes.Contains(a, []byte(" 13\r\n")) || !bytes.Contains(a, []byte("a=rtpmap:13 CN/8000\r\n")) {
		t.Fatalf("answer to a CN offer lacks CN:\n%s", a)
	}
	if a := plain.AnswerSDP(); bytes.Contains(a, []byte("CN/8000")) {
		t.Fatalf("answer to an offer without CN has it:\n%s", a)
	}

	// The join beeps end, the room falls silent: a SID.
	testutil.WaitFor(t, 5*time.Second, "a SID to the CN phone", func() bool { return cn.ComfortNoise().Packets > 0 })
	c0, _ := cn.Received()
	cn0 := cn.ComfortNoise()
	p0, _ := plain.Received()
	const ticks = 100 // 2 s of the plain phone's 20 ms packets
	testutil.WaitFor(t, 5*time.Second, "100 packets to the plain phone", func() bool {
		p, _ := plain.Received()
		return p >= p0+ticks
	})
	c1, _ := cn.Received()
	// At most one refresh SID can fall into 2 s.
	if c1-c0 > 1 {
		t.Fatalf("the CN phone got %d packets while the plain phone got %d; want at most a refresh", c1-c0, ticks)
	}
	if plain.ComfortNoise().Packets != 0 {
		t.Fatal("the phone without CN was sent comfort noise")
	}
	if pt := plain.ReceivedPtimes(); pt[20] < ticks {
		t.Fatalf("plain phone's audio packets by ptime: %v, want >= %d of 20 ms", pt, ticks)
	}

	plain.SetTone(500)
	if err := cn.WaitLevel(testutil.Ctx(t, 5*time.Second), 500, 1500, 200*time.Millisecond); err != nil {
		t.Fatalf("the CN phone does not hear the talker: %v", err)
	}
	got := cn.ComfortNoise()
	if got.Resumed == 0 || got.Marked != got.Resumed {
		t.Fatalf("talkspurts after CN: %d, marked %d; want all marked", got.Resumed, got.Marked)
	}
	// The timestamps kept running through the silence: the talkspurt
	// starts at least the silence we watched after the SID.
	if gap := got.ResumeTS - cn0.TS; gap < ticks*dsp.FrameSamples || gap > 1<<30 {
		t.Fatalf("talkspurt timestamp %d is %d after the SID's, want >= %d", got.ResumeTS, gap, ticks*dsp.FrameSamples)
	}
}
