package rtpleg

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"webconf/dsp/g711"
)

// silentLeg opens a started leg whose SDP names sdp (a phone that has not
// sent anything yet); the answer is not sent.
func silentLeg(t *testing.T, md *media, sdp *peer) *Leg {
	t.Helper()
	l, err := md.Open(Config{PT: g711.PCMU, DTMF: 101, Remote: sdp.addr(), Send: true, ExpectRx: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	l.Start()
	return l
}

// latchedLeg is a silentLeg to ph, answered, that has latched on ph's
// first packet (160 bytes of PCMU).
func latchedLeg(t *testing.T, md *media, ph *peer) *Leg {
	t.Helper()
	l := silentLeg(t, md, ph)
	answer(t, l, ph)
	ph.send(t, l, g711.PCMU, make([]byte, 160))
	waitStat(t, l, "the latch", func(s Stats) bool { return s.RxPackets == 1 })
	return l
}

// heardNothing fails if c receives any datagram within d: whatever the
// leg sends must not go there.
func heardNothing(t *testing.T, c *net.UDPConn, d time.Duration, who string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	n := 0
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("%s: read: %v", who, err)
			}
			break
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%s received %d packets of the call's audio", who, n)
	}
}

func TestStrictRTP(t *testing.T) { forModes(t, testStrictRTP) }

func testStrictRTP(t *testing.T, md *media) {
	payload := make([]byte, 160)

	t.Run("the SDP address latches at once", func(t *testing.T) {
		ph := newPeer(t)
		l := silentLeg(t, md, ph)
		answer(t, l, ph)
		ph.send(t, l, g711.PCMU, payload)
		waitStat(t, l, "the first packet accepted", func(s Stats) bool { return s.RxPackets == 1 })
		if lat := l.latched.Load(); lat == nil || *lat != ph.addr() {
			t.Fatalf("latched %v, want the SDP address %v", lat, ph.addr())
		}
	})

	// An intruder's stream in sequence, spaced like a phone's, before the
	// answer and on after it: learnPackets-1 after the answer must not be
	// enough, whether the early ones were read (a dial-out's leg reads
	// from the start) or waited in the socket (a dial-in's leg starts
	// after the ACK).
	for _, queued := range []bool{false, true} {
		name := "packets read before the answer never count"
		if queued {
			name = "packets queued before the answer never count"
		}
		t.Run(name, func(t *testing.T) {
			sdp, intruder := newPeer(t), newPeer(t)
			l, err := md.Open(Config{PT: g711.PCMU, DTMF: 101, Remote: sdp.addr(), Send: true, ExpectRx: true}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if !queued {
				l.Start()
			}
			for range 2 * learnPackets {
				intruder.send(t, l, g711.PCMU, payload)
				time.Sleep(10 * time.Millisecond)
			}
			if !queued {
				waitStat(t, l, "the early packets dropped", func(s Stats) bool { return s.RxForeign == 2*learnPackets })
			}
			l.Answered()
			if queued {
				l.Start()
			}
			for range learnPackets - 1 {
				intruder.send(t, l, g711.PCMU, payload)
				time.Sleep(20 * time.Millisecond)
			}
			waitStat(t, l, "every packet counted foreign", func(s Stats) bool { return s.RxForeign == 3*learnPackets-1 })
			if st := l.Stats(); st.RxPackets != 0 || l.latched.Load() != nil {
				t.Fatalf("latched to %v from packets sent before the answer: %+v", l.latched.Load(), st)
			}
			for range 3 * prelatchPackets {
				l.WriteEncoded(payload)
			}
			heardNothing(t, intruder.conn, 100*time.Millisecond, "the intruder")
		})
	}

	t.Run("a source not in the SDP is learned after learnPackets in sequence (NAT)", func(t *testing.T) {
		sdp, nat := newPeer(t), newPeer(t)
		l := silentLeg(t, md, sdp)
		answer(t, l, nat)
		sent := 0
		deadline := time.Now().Add(2 * time.Second)
		for l.Stats().RxPackets == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("not learned after %d packets: %+v", sent, l.Stats())
			}
			nat.send(t, l, g711.PCMU, payload)
			sent++
			time.Sleep(10 * time.Millisecond)
		}
		if sent < learnPackets {
			t.Fatalf("learned after %d packets, want at least %d", sent, learnPackets)
		}
		// The room's audio now goes to where the phone sends from.
		l.WriteEncoded(payload)
		nat.recv(t)

		// Should the SDP address speak after all, it wins: the learned
		// source may have been an intruder streaming to a silent phone.
		before := l.Stats()
		sdp.send(t, l, g711.PCMU, payload)
		waitStat(t, l, "the SDP address's packet accepted", func(s Stats) bool { return s.RxPackets == before.RxPackets+1 })
		if lat := l.latched.Load(); lat == nil || *lat != sdp.addr() {
			t.Fatalf("latched %v after the SDP address spoke, want %v", lat, sdp.addr())
		}
		nat.send(t, l, g711.PCMU, payload)
		waitStat(t, l, "the learned source dropped", func(s Stats) bool { return s.RxForeign == before.RxForeign+1 })
		l.WriteEncoded(payload)
		sdp.recv(t)
	})

	t.Run("a latched call is not taken over, nor reopened by a re-INVITE", func(t *testing.T) {
		ph, intruder := newPeer(t), newPeer(t)
		l := latchedLeg(t, md, ph)
		// A re-INVITE with the same address (session refresh, resume) and
		// one on hold with c=0.0.0.0 (RFC 2543) keep the latch.
		l.Update(Config{PT: g711.PCMU, DTMF: 101, Remote: ph.addr(), Send: true, ExpectRx: true})
		l.Answered()
		l.Update(Config{PT: g711.PCMU, DTMF: 101, Remote: netip.AddrPortFrom(netip.IPv4Unspecified(), ph.addr().Port()), Send: false})
		l.Answered()
		l.Update(Config{PT: g711.PCMU, DTMF: 101, Remote: ph.addr(), Send: true, ExpectRx: true})
		l.Answered()
		foreign := l.Stats().RxForeign
		for range 4 * learnPackets {
			intruder.send(t, l, g711.PCMU, payload)
			time.Sleep(10 * time.Millisecond)
		}
		waitStat(t, l, "the intruder's packets dropped", func(s Stats) bool { return s.RxForeign == foreign+4*learnPackets })
		l.WriteEncoded(payload)
		ph.recv(t)
		heardNothing(t, intruder.conn, 50*time.Millisecond, "the intruder")
		if st := l.Stats(); st.RxPackets != 1 {
			t.Fatalf("intruder packets accepted: %+v", st)
		}
	})

	t.Run("a new address in a re-INVITE latches again, from after its answer", func(t *testing.T) {
		old, moved := newPeer(t), newPeer(t)
		l := latchedLeg(t, md, old)
		l.Update(Config{PT: g711.PCMU, DTMF: 101, Remote: moved.addr(), Send: true, ExpectRx: true})
		// Between the new offer and its answer nothing counts, not even
		// the new address.
		foreign := l.Stats().RxForeign
		moved.send(t, l, g711.PCMU, payload)
		waitStat(t, l, "the packet before the answer dropped", func(s Stats) bool { return s.RxForeign == foreign+1 })
		answer(t, l, moved)
		moved.send(t, l, g711.PCMU, payload)
		waitStat(t, l, "the new address latched", func(s Stats) bool { return s.RxPackets == 2 })
		l.WriteEncoded(payload)
		moved.recv(t)
	})
}

// TestLearning drives the learning rules with a synthetic clock.
func TestLearning(t *testing.T) {
	sdp := netip.MustParseAddrPort("192.0.2.1:4000")
	nat := netip.MustParseAddrPort("198.51.100.7:31000")
	other := netip.MustParseAddrPort("203.0.113.9:5000")
	newLeg := func() *Leg {
		l := &Leg{}
		r := sdp
		l.remote.Store(&r)
		l.gen.Store(1) // answered
		l.rx.gen = 1
		return l
	}
	ms := func(n int) int64 { return int64(n) * int64(time.Millisecond) }
	pkt := func(seq uint16) *rtp.Header { return &rtp.Header{SSRC: 7, SequenceNumber: seq} }

	t.Run("the SDP address at once", func(t *testing.T) {
		l := newLeg()
		if !l.admit(sdp, pkt(1), 0) || *l.latched.Load() != sdp {
			t.Fatal("the SDP address was not latched by its first packet")
		}
	})
	t.Run("a phone's pace is learned by the learnPackets-th packet", func(t *testing.T) {
		l := newLeg()
		for i := range learnPackets {
			got := l.admit(nat, pkt(uint16(100+i)), ms(20*i))
			if want := i == learnPackets-1; got != want {
				t.Fatalf("packet %d: admitted %v, want %v", i+1, got, want)
			}
		}
		if *l.latched.Load() != nat {
			t.Fatal("not latched to the learned source")
		}
	})
	t.Run("a burst is not learned before learnSpan", func(t *testing.T) {
		l := newLeg()
		for i := range 50 {
			if l.admit(other, pkt(uint16(i)), int64(i)*int64(learnSpan)/100) {
				t.Fatalf("burst learned after %d packets in %v", i+1, time.Duration(int64(i)*int64(learnSpan)/100))
			}
		}
	})
	t.Run("a packet from elsewhere, a gap or a new SSRC starts again", func(t *testing.T) {
		for name, breaker := range map[string]func(l *Leg, at int64){
			"another source": func(l *Leg, at int64) { l.admit(other, pkt(9), at) },
			"a gap":          func(l *Leg, at int64) { l.admit(nat, pkt(200), at) },
			"a new SSRC":     func(l *Leg, at int64) { l.admit(nat, &rtp.Header{SSRC: 8, SequenceNumber: 103}, at) },
		} {
			l := newLeg()
			for i := range learnPackets - 1 {
				l.admit(nat, pkt(uint16(100+i)), ms(20*i))
			}
			breaker(l, ms(20*learnPackets))
			if l.admit(nat, pkt(uint16(100+learnPackets-1)), ms(20*learnPackets+20)) {
				t.Fatalf("%s did not restart the learning", name)
			}
		}
	})
	t.Run("no latch when the answer state changed meanwhile", func(t *testing.T) {
		l := newLeg()
		l.gen.Store(2) // an Update for a new address came in
		if l.admit(sdp, pkt(1), 0) || l.latched.Load() != nil {
			t.Fatal("latched for a stale answer")
		}
	})
}

func TestPortsAreRandomAndAllReturn(t *testing.T) {
	// 50 even ports, above the ephemeral range and every other test's range.
	const low, high = 61000, 61098
	pool, err := NewPool(netip.MustParseAddr("127.0.0.1"), low, high)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		var legs []*Leg
		seen := map[int]bool{}
		for {
			l, err := Open(pool, Config{PT: g711.PCMU, DTMF: -1}, nil, nil)
			if errors.Is(err, ErrNoPorts) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			legs = append(legs, l)
			p := l.Port()
			if p%2 != 0 || p < low || p > high || seen[p] {
				t.Fatalf("round %d: port %d (odd, out of range or given twice)", round, p)
			}
			seen[p] = true
		}
		// Another process may hold a port of the range; all others must
		// have been given out.
		for p := low; p <= high; p += 2 {
			if !seen[p] && canBind(p) {
				t.Fatalf("round %d: free port %d never given out (%d given)", round, p, len(seen))
			}
		}
		// Not in order: the chance that 20 random picks from 50 ports each
		// land on the port after the previous one is below 1e-30.
		sequential := 0
		for i := 1; i < len(legs) && i < 21; i++ {
			if legs[i].Port() == legs[i-1].Port()+2 {
				sequential++
			}
		}
		if len(legs) < 21 || sequential == 20 {
			t.Fatalf("round %d: ports given in order: %v", round, ports(legs))
		}
		for _, l := range legs {
			l.Close()
		}
		if pool.Free() != (high-low)/2+1 {
			t.Fatalf("round %d: %d ports free after closing every leg, want %d", round, pool.Free(), (high-low)/2+1)
		}
	}
}

func canBind(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func ports(legs []*Leg) []int {
	var p []int
	for _, l := range legs {
		p = append(p, l.Port())
	}
	return p
}
