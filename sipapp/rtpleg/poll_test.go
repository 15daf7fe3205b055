//go:build linux

package rtpleg

import (
	"net"
	"net/netip"
	"testing"

	"github.com/pion/rtp"

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
	pool, _ := NewPool(netip.MustParseAddr("127.0.0.1"), 42500, 42998)
	l, err := Open(pool, Config{PT: g711.PCMU, DTMF: 101, Send: true}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.StartPolled(); err != nil {
		b.Fatal(err)
	}
	c, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer c.Close()
	hdr := rtp.Header{Version: 2, PayloadType: 0, SSRC: 1}
	pkt := make([]byte, 172)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port())))
	var f dsp.Frame
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hdr.SequenceNumber++
		hdr.Timestamp += 160
		_, _ = hdr.MarshalTo(pkt)
		_, _ = c.WriteToUDP(pkt, to)
		for l.Stats().RxPackets < uint64(i+1) {
			l.Poll()
		}
		l.ReadFrame(&f)
	}
}
