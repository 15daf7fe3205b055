//go:build linux

package rtpleg

import (
	"testing"
	"time"

	"webconf/dsp"
	"webconf/dsp/g711"
)

func TestPolledLeg(t *testing.T) {
	pool := testPool(t)
	ph := newPeer(t)
	l, err := Open(pool, Config{PT: g711.PCMU, DTMF: 101, Remote: ph.addr(), Send: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.StartPolled(); err != nil {
		t.Fatal(err)
	}
	l.Poll() // nothing there: returns at once
	l.Answered()
	ph.sendRaw(t, l, rtcpSentinel) // dropped with anything queued before the answer
	pollUntil(t, l, "the primer", func(s Stats) bool { return s.RxForeign == 1 })
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = 0x80 // a loud μ-law value
	}
	for i := 0; i < 3; i++ {
		ph.send(t, l, g711.PCMU, payload)
		ph.hdr.Timestamp += 160
	}
	pollUntil(t, l, "3 packets", func(s Stats) bool { return s.RxPackets == 3 })
	var f dsp.Frame
	l.ReadFrame(&f) // prefill
	if !l.ReadFrame(&f) || f[0] == 0 {
		t.Fatalf("no audio after polling: %d", f[0])
	}
	// The source is latched as with the goroutine.
	intruder := newPeer(t)
	intruder.send(t, l, g711.PCMU, payload)
	pollUntil(t, l, "the foreign packet dropped", func(s Stats) bool { return s.RxForeign == 2 })
	if l.Stats().RxPackets != 3 {
		t.Fatal("foreign packet accepted in polled mode")
	}
}

// pollUntil polls a polled leg until cond holds, failing after 2 s.
func pollUntil(t *testing.T, l *Leg, what string, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond(l.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, l.Stats())
		}
		l.Poll()
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkPolledReceivePath(b *testing.B) {
	benchReceive(b, 45500, func(l *Leg) (func(), error) { return l.Poll, l.StartPolled() })
}
