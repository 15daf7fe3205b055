package rtpleg

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"webconf/dsp"
	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
)

func testPool(t *testing.T) *Pool {
	t.Helper()
	p, err := NewPool(netip.MustParseAddr("127.0.0.1"), 41000, 41998)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// peer is a phone's RTP socket.
type peer struct {
	conn *net.UDPConn
	hdr  rtp.Header
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &peer{conn: c, hdr: rtp.Header{Version: 2, SSRC: 42, Timestamp: 1000}}
}

func (p *peer) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *peer) send(t *testing.T, l *Leg, pt uint8, payload []byte) {
	t.Helper()
	p.hdr.PayloadType = pt
	pkt, err := (&rtp.Packet{Header: p.hdr, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port()))
	if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
		t.Fatal(err)
	}
	p.hdr.SequenceNumber++
}

func (p *peer) recv(t *testing.T) *rtp.Packet {
	t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, err := p.conn.Read(buf)
	if err != nil {
		t.Fatalf("no packet from the leg: %v", err)
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return &pkt
}

func waitStat(t *testing.T, l *Leg, what string, f func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !f(l.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; stats %+v", what, l.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func openLeg(t *testing.T, md *media, ph *peer, ptime int, onDigit func(byte)) *Leg {
	t.Helper()
	l, err := md.Open(Config{PT: g711.PCMU, DTMF: 101, Ptime: ptime, Remote: ph.addr(), Send: true}, onDigit, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	l.Start()
	answer(t, l, ph)
	return l
}

// answer tells the leg that the answer went out and waits until its
// receive side has taken that in: the first datagram after the answer is
// dropped with whatever the socket queued (it may predate the answer), so
// a primer from ph goes first.
func answer(t *testing.T, l *Leg, ph *peer) {
	t.Helper()
	l.Answered()
	before := l.Stats().RxForeign
	ph.sendRaw(t, l, rtcpSentinel)
	waitStat(t, l, "the primer after the answer", func(s Stats) bool { return s.RxForeign == before+1 })
}

// sendRaw sends one datagram to the leg's port.
func (p *peer) sendRaw(t *testing.T, l *Leg, b []byte) {
	t.Helper()
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port()))
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// digit waits (bounded) for the next digit the leg reports.
func digit(t *testing.T, digits <-chan byte) byte {
	t.Helper()
	select {
	case d := <-digits:
		return d
	case <-time.After(2 * time.Second):
		t.Fatal("no digit within 2 s (an event packet was lost or not decoded)")
		return 0
	}
}

func TestLeg(t *testing.T) { forModes(t, testLeg) }

func testLeg(t *testing.T, md *media) {
	pool := md.pool
	t.Run("ports are even and come back to the pool", func(t *testing.T) {
		free := pool.Free()
		ph := newPeer(t)
		l := openLeg(t, md, ph, 20, nil)
		if l.Port()%2 != 0 {
			t.Fatalf("odd RTP port %d", l.Port())
		}
		if md.hub != nil {
			// A shared socket's port was taken once, by the hub.
			free++
		}
		if pool.Free() != free-1 {
			t.Fatalf("free %d, want %d", pool.Free(), free-1)
		}
		l.Close()
		l.Close()
		if md.hub != nil {
			free--
		}
		if pool.Free() != free {
			t.Fatalf("port not returned: free %d, want %d", pool.Free(), free)
		}
	})
	t.Run("audio from the phone reaches the jitter buffer and RTCP does not", func(t *testing.T) {
		ph := newPeer(t)
		l := openLeg(t, md, ph, 20, nil)
		// RTCP receiver report multiplexed on the RTP port (RFC 5761).
		rr := []byte{0x81, 201, 0, 7, 0, 0, 0, 42, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port())))
		if _, err := ph.conn.WriteToUDP(rr, to); err != nil {
			t.Fatal(err)
		}
		var pcm [160]int16
		for i := range pcm {
			pcm[i] = 5000
		}
		payload := make([]byte, 160)
		g711.EncodeUlaw(payload, pcm[:])
		for i := 0; i < 3; i++ {
			ph.send(t, l, g711.PCMU, payload)
			ph.hdr.Timestamp += 160
		}
		waitStat(t, l, "3 packets and 1 RTCP", func(s Stats) bool { return s.RxPackets == 3 && s.RxRTCP == 1 })
		// The first frame is the jitter buffer's prefill (one frame behind
		// the first packet).
		var f dsp.Frame
		if l.ReadFrame(&f) {
			t.Fatal("audio before the prefill delay")
		}
		if !l.ReadFrame(&f) {
			t.Fatal("no audio")
		}
		if f[80] < 4800 || f[80] > 5200 {
			t.Fatalf("decoded %d, want about 5000", f[80])
		}
	})
	t.Run("packets from a second address are dropped after latching", func(t *testing.T) {
		ph, intruder := newPeer(t), newPeer(t)
		l := openLeg(t, md, ph, 20, nil)
		payload := make([]byte, 160)
		ph.send(t, l, g711.PCMU, payload)
		waitStat(t, l, "the first packet", func(s Stats) bool { return s.RxPackets == 1 })
		foreign := l.Stats().RxForeign
		intruder.send(t, l, g711.PCMU, payload)
		waitStat(t, l, "the foreign packet", func(s Stats) bool { return s.RxForeign == foreign+1 })
		if l.Stats().RxPackets != 1 {
			t.Fatal("foreign packet accepted")
		}
	})
	t.Run("RFC 4733 events give one digit each", func(t *testing.T) {
		ph := newPeer(t)
		digits := make(chan byte, 8)
		l := openLeg(t, md, ph, 20, func(d byte) { digits <- d })
		// '1' last: the digit after '#' must be it, not a second '#' from
		// the repeated end packets.
		for _, key := range []uint8{5, 11, 1} {
			ph.hdr.Timestamp += 1600
			for i := 0; i < 5; i++ {
				ev := dtmf.Event{Code: key, Volume: 10, Duration: uint16(160 * (i + 1)), End: i >= 2}
				ph.send(t, l, 101, ev.Append(nil))
			}
		}
		got := string([]byte{digit(t, digits), digit(t, digits), digit(t, digits)})
		if got != "5#1" {
			t.Fatalf("digits %q, want \"5#1\" (one per key, none from repeated end packets)", got)
		}
	})
	t.Run("sent packets follow the negotiated ptime", func(t *testing.T) {
		for _, ptime := range []int{10, 20, 30, 60} {
			ph := newPeer(t)
			l := openLeg(t, md, ph, ptime, nil)
			frame := make([]byte, 160)
			var got []*rtp.Packet
			for i := 0; i < 6; i++ {
				l.WriteEncoded(frame)
			}
			want := 6 * 20 / ptime
			for len(got) < want {
				got = append(got, ph.recv(t))
			}
			for i, p := range got {
				if len(p.Payload) != ptime*8 {
					t.Fatalf("ptime %d: packet %d has %d bytes", ptime, i, len(p.Payload))
				}
				if i > 0 && (p.SequenceNumber != got[i-1].SequenceNumber+1 || p.Timestamp != got[i-1].Timestamp+uint32(ptime*8)) {
					t.Fatalf("ptime %d: seq/ts not continuous at %d", ptime, i)
				}
			}
			if !got[0].Marker || got[1].Marker {
				t.Fatalf("ptime %d: marker must be on the first packet only", ptime)
			}
		}
	})
	t.Run("nothing is sent while the remote holds", func(t *testing.T) {
		ph := newPeer(t)
		l := openLeg(t, md, ph, 20, nil)
		l.Update(Config{PT: g711.PCMU, DTMF: 101, Remote: ph.addr(), Send: false})
		l.WriteEncoded(make([]byte, 160))
		l.Update(Config{PT: g711.PCMA, DTMF: 101, Remote: ph.addr(), Send: true})
		l.WriteEncoded(make([]byte, 160))
		p := ph.recv(t)
		if p.PayloadType != g711.PCMA {
			t.Fatalf("got the packet written on hold (PT %d)", p.PayloadType)
		}
	})
}

func BenchmarkReceivePath(b *testing.B) { benchReceive(b, 42000, nil) }

// benchReceive measures a peer's sendto plus the leg's receive path
// (depacketise, decode, jitter buffer) and ReadFrame; poll, when set, is
// called until the packet is in (polled legs), else the read goroutine runs.
func benchReceive(b *testing.B, low int, start func(*Leg) (poll func(), err error)) {
	benchReceiveWith(b, low, nil, start)
}

// benchReceiveWith is benchReceive with SRTP keys (nil: plain RTP); the
// peer then encrypts each packet in place before sending it, which is in
// the figure too (BenchmarkSRTPUnprotect measures pion's share alone).
func benchReceiveWith(b *testing.B, low int, keys *Keys, start func(*Leg) (poll func(), err error)) {
	pool, _ := NewPool(netip.MustParseAddr("127.0.0.1"), low, low+998)
	c, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer c.Close()
	// The peer is the SDP address: its packets latch at once.
	l, err := Open(pool, Config{PT: g711.PCMU, DTMF: 101, Send: true, Remote: c.LocalAddr().(*net.UDPAddr).AddrPort(), SRTP: keys}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	poll := func() {}
	if start != nil {
		if poll, err = start(l); err != nil {
			b.Fatal(err)
		}
	} else {
		l.Start()
	}
	hdr := rtp.Header{Version: 2, PayloadType: 0, SSRC: 1}
	pkt := make([]byte, 172)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port())))
	// The answer, and the primer it drops.
	l.Answered()
	_, _ = c.WriteToUDP(rtcpSentinel, to)
	for l.Stats().RxForeign == 0 {
		poll()
	}
	var f dsp.Frame
	var seal func([]byte) []byte
	if keys != nil {
		enc, err := srtp.CreateContext(keys.Receive[:16], keys.Receive[16:], keys.Suite)
		if err != nil {
			b.Fatal(err)
		}
		pkt = make([]byte, 172, 1500)
		var scratch rtp.Header
		seal = func(p []byte) []byte {
			out, err := enc.EncryptRTP(p, p, &scratch)
			if err != nil {
				b.Fatal(err)
			}
			return out
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hdr.SequenceNumber++
		hdr.Timestamp += 160
		_, _ = hdr.MarshalTo(pkt)
		wire := pkt
		if seal != nil {
			wire = seal(pkt)
		}
		_, _ = c.WriteToUDP(wire, to)
		for l.Stats().RxPackets < uint64(i+1) {
			poll()
		}
		l.ReadFrame(&f)
	}
}

func BenchmarkSendPath(b *testing.B) { benchSend(b, 43000, nil) }

// benchSend measures WriteEncoded (packetise, SRTP when keys are set,
// sendto) with a peer draining the socket.
func benchSend(b *testing.B, low int, keys *Keys) {
	pool, _ := NewPool(netip.MustParseAddr("127.0.0.1"), low, low+998)
	c, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer c.Close()
	l, err := Open(pool, Config{PT: g711.PCMU, DTMF: 101, Send: true, Remote: c.LocalAddr().(*net.UDPAddr).AddrPort(), SRTP: keys}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	frame := make([]byte, 160)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.WriteEncoded(frame)
	}
}

func TestNoStreamToAThirdPartyBeforeLatching(t *testing.T) {
	forModes(t, testNoStreamToAThirdPartyBeforeLatching)
}

func testNoStreamToAThirdPartyBeforeLatching(t *testing.T, md *media) {
	// The SDP names a peer that never sends: it gets a handful of packets.
	silent := newPeer(t)
	l, err := md.Open(Config{PT: g711.PCMU, DTMF: -1, Remote: silent.addr(), Send: true, ExpectRx: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Start()
	answer(t, l, silent)
	for i := 0; i < 100; i++ {
		l.WriteEncoded(make([]byte, 160))
	}
	if n := l.Stats().TxPackets; n != prelatchPackets {
		t.Fatalf("sent %d packets to a peer that never spoke, want %d", n, prelatchPackets)
	}
	// Once the peer's first packet latches, the stream flows.
	silent.send(t, l, g711.PCMU, make([]byte, 160))
	waitStat(t, l, "the latch", func(s Stats) bool { return s.RxPackets == 1 })
	l.WriteEncoded(make([]byte, 160))
	if n := l.Stats().TxPackets; n != prelatchPackets+1 {
		t.Fatalf("after latching: %d packets sent, want %d", n, prelatchPackets+1)
	}
}
