package rtpleg

import (
	"net"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"webconf/dsp"
)

// FuzzSRTPUnprotect sends hostile datagrams to a leg that does SRTP, as
// an attacker who does not have the key (or a broken phone) would, mixed
// with packets the phone seals with the right key so that the paths
// behind authentication run too.
//
// Input: one byte of set-up (bit 0: the 32-bit tag suite, bit 1: PCMA),
// then datagrams, each a control byte (bit 0: sent from a second source;
// bit 1: sealed, i.e. the bytes are a plain RTP packet the phone encrypts
// with the right key before sending; a sealed datagram that is not RTP is
// sent as it is) and a 2-byte length.
//
// Invariants: no panic; every datagram is counted exactly once (bad,
// RTCP, foreign, unauthenticated or accepted; accepted may also count bad
// for its payload); a datagram that was not sealed is never accepted and
// never latches or moves the latch (it cannot authenticate); nothing is
// accepted from source 1 before it sent learnPackets sealed packets.
func FuzzSRTPUnprotect(f *testing.F) {
	pcmu := rtpPacket(0, 1, 1000, make([]byte, 160))
	// Sealed audio from the phone, then the same bytes unsealed (plain RTP
	// where SRTP is expected) and from the other source.
	f.Add(append([]byte{0}, concat(dgram(2, pcmu), dgram(2, rtpPacket(0, 2, 1160, make([]byte, 160))),
		dgram(0, rtpPacket(0, 3, 1320, make([]byte, 160))), dgram(1, rtpPacket(0, 4, 1480, make([]byte, 170))))...))
	// The 32-bit suite, PCMA: sealed DTMF and comfort noise, then junk:
	// too short for a tag, version 1, RTCP, a header with CSRCs and an
	// extension and no room for a tag.
	ext := []byte{0x91, 8, 0, 10, 0, 0, 0x13, 0x88, 0, 0, 0, 42, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 1, 2, 3, 4}
	f.Add(append([]byte{3}, concat(dgram(2, rtpPacket(8, 9, 5000, make([]byte, 160))),
		dgram(2, rtpPacket(101, 10, 5160, []byte{1, 10, 0, 160})), dgram(2, rtpPacket(13, 11, 5320, []byte{40})),
		dgram(0, pcmu[:13]), dgram(0, append([]byte{0x40}, pcmu[1:]...)), dgram(1, rtcpSentinel), dgram(0, ext))...))
	// A learning run from source 1: sealed packets in sequence, with a
	// forged one in the middle.
	var run []byte
	for i := 0; i < 7; i++ {
		ctl := byte(3)
		if i == 3 {
			ctl = 1
		}
		run = append(run, dgram(ctl, rtpPacket(0, uint16(100+i), uint32(160*i), make([]byte, 160)))...)
	}
	f.Add(append([]byte{0}, run...))
	f.Fuzz(srtpPackets)
}

func srtpPackets(t *testing.T, in []byte) {
	if len(in) < 1 {
		return
	}
	suite := SuiteAES80
	if in[0]&1 != 0 {
		suite = SuiteAES32
	}
	cfg := Config{PT: 0, DTMF: 101, SRTP: testKeys(suite)}
	if in[0]&2 != 0 {
		cfg.PT = 8
	}
	in = in[1:]
	srcs := fuzzSources(t)
	cfg.Remote = srcs[0].LocalAddr().(*net.UDPAddr).AddrPort()
	// The phone's sealing context: per source, as two phones would be
	// two streams (a context tracks each SSRC's rollover counter).
	var seal [2]*srtp.Context
	for i := range seal {
		c, err := srtp.CreateContext(cfg.SRTP.Receive[:16], cfg.SRTP.Receive[16:], suite)
		if err != nil {
			t.Fatal(err)
		}
		seal[i] = c
	}
	l, err := Open(fuzzPool(t), cfg, func(byte) {}, nil)
	if err != nil {
		t.Fatal(err)
	}
	to, stop := startAnswered(t, l, srcs[0])
	defer stop()

	wantRTCP := uint64(0)
	sealedRun := 0 // sealed datagrams from source 1 (learning needs learnPackets)
	prev := l.Stats()
	var hdr rtp.Header
	for n := 0; len(in) >= 3 && n < 16; n++ {
		ctl := in[0]
		src := int(ctl & 1)
		size := min(int(in[1])<<8|int(in[2]), len(in)-3, 1400)
		pkt := in[3 : 3+size]
		in = in[3+size:]
		sealed := false
		if ctl&2 != 0 && len(pkt) >= 12 && pkt[0]>>6 == 2 && !isRTCP(pkt) {
			if _, err := hdr.Unmarshal(pkt); err == nil {
				if out, err := seal[src].EncryptRTP(nil, pkt, nil); err == nil {
					pkt, sealed = out, true
				}
			}
		}
		if src == 1 && sealed {
			sealedRun++
		}
		latchedBefore := l.latched.Load()
		send(t, srcs[src], pkt, to)
		if isRTCP(pkt) {
			wantRTCP++
		}
		seen := prev.RxBad + prev.RxForeign + prev.RxPackets + prev.RxRTCP + prev.RxUnauth
		legWait(t, l, n, pkt, func(st Stats) bool {
			return st.RxBad+st.RxForeign+st.RxPackets+st.RxRTCP+st.RxUnauth > seen
		})
		send(t, srcs[src], rtcpSentinel, to)
		wantRTCP++
		st := legWait(t, l, n, pkt, func(st Stats) bool { return st.RxRTCP >= wantRTCP })
		if st.RxRTCP != wantRTCP {
			t.Fatalf("datagram % x: %d RTCP packets counted, want %d", pkt, st.RxRTCP, wantRTCP)
		}
		dBad, dForeign, dPkts, dUnauth := st.RxBad-prev.RxBad, st.RxForeign-prev.RxForeign, st.RxPackets-prev.RxPackets, st.RxUnauth-prev.RxUnauth
		dRTCP := st.RxRTCP - prev.RxRTCP - 1
		switch total := dBad + dForeign + dPkts + dRTCP + dUnauth; {
		case total == 1:
		case total == 2 && dPkts == 1 && dBad == 1:
		default:
			t.Fatalf("datagram % x counted %d times: %+v -> %+v", pkt, total, prev, st)
		}
		latchedAfter := l.latched.Load()
		moved := (latchedBefore == nil) != (latchedAfter == nil) ||
			(latchedBefore != nil && latchedAfter != nil && *latchedBefore != *latchedAfter)
		if !sealed {
			if dPkts != 0 {
				t.Fatalf("unauthenticated datagram % x accepted: %+v -> %+v", pkt, prev, st)
			}
			if moved {
				t.Fatalf("unauthenticated datagram % x moved the latch %v -> %v", pkt, latchedBefore, latchedAfter)
			}
		}
		if dPkts == 1 && src == 1 && latchedBefore == nil && sealedRun < learnPackets {
			t.Fatalf("source 1 latched after %d sealed packets", sealedRun)
		}
		prev = st
	}
	var fr dsp.Frame
	for range 4 {
		l.ReadFrame(&fr)
	}
}
