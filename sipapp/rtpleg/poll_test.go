//go:build linux

package rtpleg

import (
	"testing"

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
	payload := make([]byte, 160)
	for i := range payload {
		payload[i] = 0x80 // a loud μ-law value
	}
	for i := 0; i < 3; i++ {
		ph.send(t, l, g711.PCMU, payload)
		ph.hdr.Timestamp += 160
	}
	waitFor := func() {
		for i := 0; i < 200 && l.Stats().RxPackets < 3; i++ {
			l.Poll()
		}
	}
	waitFor()
	if l.Stats().RxPackets != 3 {
		t.Fatalf("polled %d packets, want 3", l.Stats().RxPackets)
	}
	var f dsp.Frame
	l.ReadFrame(&f) // prefill
	if !l.ReadFrame(&f) || f[0] == 0 {
		t.Fatalf("no audio after polling: %d", f[0])
	}
	// The source is latched as with the goroutine.
	intruder := newPeer(t)
	intruder.send(t, l, g711.PCMU, payload)
	for i := 0; i < 200 && l.Stats().RxForeign == 0; i++ {
		l.Poll()
	}
	if l.Stats().RxForeign != 1 {
		t.Fatal("foreign packet not dropped in polled mode")
	}
}

func BenchmarkPolledReceivePath(b *testing.B) {
	benchReceive(b, 45500, func(l *Leg) (func(), error) { return l.Poll, l.StartPolled() })
}
