package rtpleg

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"webconf/dsp"
	"webconf/dsp/g711"
)

// testKeys are a leg's keys: ours and the peer's differ, as in SDES.
func testKeys(suite srtp.ProtectionProfile) *Keys {
	k := &Keys{Suite: suite}
	for i := range k.Send {
		k.Send[i] = byte(i + 1)
		k.Receive[i] = byte(200 - i)
	}
	return k
}

// srtpPeer is a phone doing SRTP with pion directly: it encrypts with the
// leg's Receive key and decrypts with the leg's Send key.
type srtpPeer struct {
	*peer
	enc, dec *srtp.Context
	buf      [1500]byte
}

func newSRTPPeer(t *testing.T, k *Keys) *srtpPeer {
	t.Helper()
	enc, err := srtp.CreateContext(k.Receive[:16], k.Receive[16:], k.Suite)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(k.Send[:16], k.Send[16:], k.Suite, srtp.SRTPReplayProtection(64))
	if err != nil {
		t.Fatal(err)
	}
	return &srtpPeer{peer: newPeer(t), enc: enc, dec: dec}
}

// seal makes the next SRTP packet of the peer's stream.
func (p *srtpPeer) seal(t *testing.T, pt uint8, payload []byte) []byte {
	t.Helper()
	p.hdr.PayloadType = pt
	plain, err := (&rtp.Packet{Header: p.hdr, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p.hdr.SequenceNumber++
	p.hdr.Timestamp += uint32(len(payload))
	out, err := p.enc.EncryptRTP(nil, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// open reads and decrypts the next packet from the leg; it returns the
// packet and its length on the wire.
func (p *srtpPeer) open(t *testing.T) (*rtp.Packet, int) {
	t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := p.conn.Read(p.buf[:])
	if err != nil {
		t.Fatalf("no packet from the leg: %v", err)
	}
	plain, err := p.dec.DecryptRTP(nil, p.buf[:n], nil)
	if err != nil {
		t.Fatalf("the leg's packet does not authenticate with its key: %v", err)
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	return &pkt, n
}

// handled sends pkt, waits until the leg has counted it, then sends a
// sentinel from the same peer and waits until the leg has counted that: pkt
// is then done (one reader, in order), and the counters returned are read
// after that (legWait). As in FuzzPacket, the sentinel goes only once pkt
// is counted, so that loopback cannot deliver it first.
func handled(t *testing.T, l *Leg, p *peer, pkt []byte) Stats {
	t.Helper()
	prev := l.Stats()
	seen := prev.RxPackets + prev.RxForeign + prev.RxBad + prev.RxRTCP + prev.RxUnauth
	p.sendRaw(t, l, pkt)
	legWait(t, l, 0, pkt, func(s Stats) bool { return s.RxPackets+s.RxForeign+s.RxBad+s.RxRTCP+s.RxUnauth > seen })
	p.sendRaw(t, l, rtcpSentinel)
	return legWait(t, l, 0, pkt, func(s Stats) bool { return s.RxRTCP > prev.RxRTCP })
}

// TestSRTPBothWays: a leg and a phone using pion/srtp exchange SRTP audio
// in both directions with each suite; what goes on the wire is not the
// audio, carries the suite's tag, and decrypts to exactly what was sent.
func TestSRTPBothWays(t *testing.T) { forModes(t, testSRTPBothWays) }

func testSRTPBothWays(t *testing.T, md *media) {
	for _, tc := range []struct {
		name  string
		suite srtp.ProtectionProfile
		tag   int
	}{{"AES_CM_128_HMAC_SHA1_80", SuiteAES80, 10}, {"AES_CM_128_HMAC_SHA1_32", SuiteAES32, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			k := testKeys(tc.suite)
			ph := newSRTPPeer(t, k)
			l, err := md.Open(Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr(), Send: true, ExpectRx: true, SRTP: k}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if !l.Secure() {
				t.Fatal("leg with keys is not secure")
			}
			l.Start()
			answer(t, l, ph.peer)

			// Phone -> leg: a ramp the leg must decode exactly.
			pcm := make([]int16, dsp.FrameSamples)
			for i := range pcm {
				pcm[i] = int16(i*50 - 4000)
			}
			payload := make([]byte, len(pcm))
			g711.Encode(g711.PCMU, payload, pcm)
			want := make([]int16, len(pcm))
			g711.Decode(g711.PCMU, want, payload)
			for i := 0; i < 3; i++ {
				wire := ph.seal(t, g711.PCMU, payload)
				if len(wire) != 12+len(payload)+tc.tag || bytes.Contains(wire, payload[:16]) {
					t.Fatalf("peer's packet is %d bytes or in the clear", len(wire))
				}
				st := handled(t, l, ph.peer, wire)
				if st.RxPackets != uint64(i+1) || st.RxUnauth != 0 || st.RxBad != 0 || st.RxForeign != 1 {
					t.Fatalf("after SRTP packet %d: %+v", i, st)
				}
			}
			// The first frame is the jitter buffer's prefill.
			var f dsp.Frame
			if l.ReadFrame(&f) || !l.ReadFrame(&f) {
				t.Fatal("no frame from the SRTP stream after the prefill")
			}
			if !slicesEqual(f[:], want) {
				t.Fatalf("decoded audio differs: got %v..., want %v...", f[:8], want[:8])
			}

			// Leg -> phone: what the mixer writes arrives encrypted.
			out := make([]byte, dsp.FrameSamples)
			for i := range out {
				out[i] = byte(i)
			}
			for i := 0; i < 3; i++ {
				l.WriteEncoded(out)
				pkt, n := ph.open(t)
				if n != 12+len(out)+tc.tag {
					t.Fatalf("leg's packet is %d bytes on the wire, want %d", n, 12+len(out)+tc.tag)
				}
				if !bytes.Equal(pkt.Payload, out) || pkt.PayloadType != g711.PCMU {
					t.Fatalf("leg's packet %d decrypts to PT %d % x...", i, pkt.PayloadType, pkt.Payload[:8])
				}
			}
		})
	}
}

// TestSRTPTwoLegs: two legs with each other's keys hear each other.
func TestSRTPTwoLegs(t *testing.T) {
	pool := testPool(t)
	ka := testKeys(SuiteAES32)
	kb := &Keys{Suite: ka.Suite, Send: ka.Receive, Receive: ka.Send}
	a, err := Open(pool, Config{PT: g711.PCMA, DTMF: -1, Send: true, SRTP: ka}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(pool, Config{PT: g711.PCMA, DTMF: -1, Send: true, SRTP: kb}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	_ = a.Update(Config{PT: g711.PCMA, DTMF: -1, Send: true, SRTP: ka, Remote: netip.AddrPortFrom(lo, uint16(b.Port()))})
	_ = b.Update(Config{PT: g711.PCMA, DTMF: -1, Send: true, SRTP: kb, Remote: netip.AddrPortFrom(lo, uint16(a.Port()))})
	a.Start()
	b.Start()
	a.Answered()
	b.Answered()
	frame := make([]byte, dsp.FrameSamples)
	g711.Encode(g711.PCMA, frame, make([]int16, dsp.FrameSamples))
	// The first packet each way may be dropped with the post-answer
	// discard; keep talking until both have accepted some.
	deadline := time.Now().Add(5 * time.Second)
	for a.Stats().RxPackets < 3 || b.Stats().RxPackets < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("legs did not hear each other: a %+v, b %+v", a.Stats(), b.Stats())
		}
		a.WriteEncoded(frame)
		b.WriteEncoded(frame)
		time.Sleep(5 * time.Millisecond) // pacing, as a 20 ms clock would
	}
	if sa, sb := a.Stats(), b.Stats(); sa.RxUnauth+sb.RxUnauth+sa.RxBad+sb.RxBad != 0 {
		t.Fatalf("packets refused: a %+v, b %+v", sa, sb)
	}
}

// TestSRTPUnauthenticatedIsDroppedAndNeverLatches: packets that fail
// authentication (a wrong key, a flipped tag, plain RTP, a replay) are
// dropped and counted, from the SDP address as from anywhere else, and
// never latch the leg — not at once from the SDP address, not by
// learning from elsewhere.
func TestSRTPUnauthenticatedIsDroppedAndNeverLatches(t *testing.T) {
	forModes(t, testSRTPUnauthenticatedIsDroppedAndNeverLatches)
}

func testSRTPUnauthenticatedIsDroppedAndNeverLatches(t *testing.T, md *media) {
	for _, suite := range []srtp.ProtectionProfile{SuiteAES80, SuiteAES32} {
		t.Run(suite.String(), func(t *testing.T) {
			k := testKeys(suite)
			ph := newSRTPPeer(t, k)                              // the phone, at the SDP address
			wrongKey := testKeys(suite)                          // an attacker who guessed wrong
			wrongKey.Receive[0] ^= 1                             // one bit off
			intruder := newSRTPPeer(t, wrongKey)                 // elsewhere
			spoof := &srtpPeer{peer: ph.peer, enc: intruder.enc} // forging the SDP address
			l, err := md.Open(Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr(), Send: true, ExpectRx: true, SRTP: k}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			l.Start()
			answer(t, l, ph.peer)
			payload := make([]byte, 160)

			want := uint64(0)
			check := func(st Stats, what string) {
				t.Helper()
				want++
				if st.RxUnauth != want || st.RxPackets != 0 || l.latched.Load() != nil {
					t.Fatalf("%s: %+v, latched %v", what, st, l.latched.Load())
				}
			}
			// Learning needs learnPackets in sequence over learnSpan:
			// the intruder sends twice that, paced like a phone.
			for i := 0; i < 2*learnPackets; i++ {
				check(handled(t, l, intruder.peer, intruder.seal(t, g711.PCMU, payload)), "wrong key from elsewhere")
				time.Sleep(learnSpan / learnPackets) // pacing, so learning could complete
			}
			spoof.hdr.SSRC = 77
			for i := 0; i < 3; i++ {
				check(handled(t, l, ph.peer, spoof.seal(t, g711.PCMU, payload)), "wrong key from the SDP address")
			}
			good := ph.seal(t, g711.PCMU, payload)
			flipped := bytes.Clone(good)
			flipped[len(flipped)-1] ^= 0x80
			check(handled(t, l, ph.peer, flipped), "a flipped tag from the SDP address")
			plain, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 9, SSRC: 5}, Payload: payload}).Marshal()
			check(handled(t, l, ph.peer, plain), "plain RTP from the SDP address")
			check(handled(t, l, ph.peer, plain[:14]), "a packet too short for a tag")

			// The phone's own packet latches; its replay does not count.
			st := handled(t, l, ph.peer, good)
			if st.RxPackets != 1 || st.RxUnauth != want || l.latched.Load() == nil || *l.latched.Load() != ph.addr() {
				t.Fatalf("the phone's packet: %+v, latched %v", st, l.latched.Load())
			}
			st = handled(t, l, ph.peer, good)
			if st.RxPackets != 1 || st.RxUnauth != want+1 {
				t.Fatalf("a replay was accepted: %+v", st)
			}
		})
	}
}

// TestSRTPRekey: a re-negotiation with the same keys keeps the contexts
// (and their rollover counters and replay windows), a new key replaces
// only its direction's context, and nil goes plain.
func TestSRTPRekey(t *testing.T) {
	k := testKeys(SuiteAES80)
	l, err := Open(testPool(t), Config{PT: g711.PCMU, DTMF: -1, SRTP: k}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tx, rx := l.txCtx.Load(), l.rxCtx.Load()
	same := *k
	if err := l.Update(Config{PT: g711.PCMU, DTMF: -1, SRTP: &same}); err != nil || l.txCtx.Load() != tx || l.rxCtx.Load() != rx {
		t.Fatalf("the same keys replaced the contexts (%v)", err)
	}
	other := *k
	other.Receive[29] ^= 1
	if err := l.Update(Config{PT: g711.PCMU, DTMF: -1, SRTP: &other}); err != nil || l.txCtx.Load() != tx || l.rxCtx.Load() == rx {
		t.Fatalf("a new peer key: the receive context must be new, the send context (same key, its rollover counter) kept (%v)", err)
	}
	rx = l.rxCtx.Load()
	other.Send[0] ^= 1
	if err := l.Update(Config{PT: g711.PCMU, DTMF: -1, SRTP: &other}); err != nil || l.txCtx.Load() == tx || l.rxCtx.Load() != rx {
		t.Fatalf("a new key of ours: the send context must be new, the receive context kept (%v)", err)
	}
	bad := other
	bad.Suite = srtp.ProtectionProfileAeadAes128Gcm
	if err := l.Update(Config{PT: g711.PCMU, DTMF: -1, SRTP: &bad}); err == nil || !l.Secure() {
		t.Fatalf("an unsupported suite: %v, secure %v", err, l.Secure())
	}
	if err := l.Update(Config{PT: g711.PCMU, DTMF: -1}); err != nil || l.Secure() {
		t.Fatalf("no keys: %v, secure %v", err, l.Secure())
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkSRTPReceivePath(b *testing.B) { benchReceiveWith(b, 46000, testKeys(SuiteAES80), nil) }

func BenchmarkSRTPPolledReceivePath(b *testing.B) {
	benchReceiveWith(b, 46500, testKeys(SuiteAES80), func(l *Leg) (func(), error) { return l.Poll, l.StartPolled() })
}

func BenchmarkSRTPSendPath(b *testing.B) { benchSend(b, 47000, testKeys(SuiteAES80)) }

// BenchmarkSRTPProtect and BenchmarkSRTPUnprotect are pion's per-packet
// cost alone (160-byte payload, 80-bit tag, in place), without sockets.
func BenchmarkSRTPProtect(b *testing.B) {
	k := testKeys(SuiteAES80)
	tx, _, err := k.contexts()
	if err != nil {
		b.Fatal(err)
	}
	benchSRTPPackets(b, func(pkt []byte, scratch *rtp.Header) error {
		_, err := tx.EncryptRTP(pkt, pkt, scratch)
		return err
	})
}

func BenchmarkSRTPUnprotect(b *testing.B) {
	k := testKeys(SuiteAES80)
	enc, err := srtp.CreateContext(k.Receive[:16], k.Receive[16:], k.Suite)
	if err != nil {
		b.Fatal(err)
	}
	_, rx, err := k.contexts()
	if err != nil {
		b.Fatal(err)
	}
	benchSRTPPackets(b, func(pkt []byte, scratch *rtp.Header) error {
		pkt, err := enc.EncryptRTP(pkt, pkt, scratch)
		if err != nil {
			return err
		}
		_, err = rx.DecryptRTP(pkt, pkt, scratch)
		return err
	})
}

// benchSRTPPackets reports allocations and runs per b.N times, in place
// on a plain RTP packet (SSRC 1, a 160-byte payload) whose sequence
// number goes up each time.
func benchSRTPPackets(b *testing.B, per func(pkt []byte, scratch *rtp.Header) error) {
	buf := make([]byte, 1500)
	hdr := rtp.Header{Version: 2, SSRC: 1}
	var scratch rtp.Header
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		hdr.SequenceNumber++
		n, _ := hdr.MarshalTo(buf)
		if err := per(buf[:n+160], &scratch); err != nil {
			b.Fatal(err)
		}
	}
}
