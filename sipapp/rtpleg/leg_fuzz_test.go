package rtpleg

import (
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"webconf/dsp"
)

// rtcpSentinel is a minimal RTCP sender report header (RFC 3550 6.4.1):
// version 2, packet type 200. The leg counts it as RTCP and nothing else,
// so it marks "everything sent before me has been handled".
var rtcpSentinel = []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0}

// isRTCP is the RFC 5761 4 demultiplexing rule the leg applies.
func isRTCP(p []byte) bool {
	if len(p) < 12 || p[0]>>6 != 2 { // truncated past maxPacket, the header is the same
		return false
	}
	pt := p[1] & 0x7f
	return pt >= 72 && pt <= 76
}

// FuzzPacket sends arbitrary datagrams to a real leg on loopback and plays
// out what it buffered: the RTP header parser, padding, the payload type
// filter, symmetric-RTP latching, G.711 decoding, RFC 4733 events and the
// jitter buffer, exactly as a hostile or broken phone would reach them.
//
// Input: two bytes of SDP outcome (codec 0/8, telephone-event type), then
// datagrams, each a control byte (bit 0: sent from a second source) and a
// 2-byte length. After each datagram an RTCP sentinel from the same source
// tells when the leg is done with it.
//
// Invariants: no panic; every datagram is counted as exactly one of bad,
// RTCP, foreign or accepted (accepted ones may also count as bad); once a
// source is latched, nothing from the other source is ever accepted (RTP
// injection, reliability.md 1.4), except that the SDP address (source 0)
// takes over from a learned source 1; only keypad digits are reported, at most
// one per datagram; the jitter counters never decrease.
func FuzzPacket(f *testing.F) {
	// PCMU 20 ms packets, a comfort-noise packet, then an RFC 4733 press
	// of '#' (start, end x3) and a packet from a foreign source.
	pcmu := rtpPacket(0, 1, 1000, make([]byte, 160))
	f.Add(append([]byte{0, 101},
		concat(dgram(0, pcmu), dgram(0, rtpPacket(0, 2, 1160, make([]byte, 160))),
			dgram(0, rtpPacket(13, 3, 1320, []byte{40})),
			dgram(0, rtpPacket(101, 4, 2000, []byte{11, 10, 0, 160})),
			dgram(0, rtpPacket(101, 5, 2000, []byte{11, 0x8a, 3, 32})),
			dgram(0, rtpPacket(101, 6, 2000, []byte{11, 0x8a, 3, 32})),
			dgram(1, rtpPacket(0, 7, 2160, make([]byte, 160))))...))
	// PCMA with padding (RFC 3550 5.1), a CSRC list and a header extension.
	pad := rtpPacket(8, 9, 5000, append(make([]byte, 160), 0, 0, 3))
	pad[0] |= 0x20
	ext := []byte{0x91, 8, 0, 10, 0, 0, 0x13, 0x88, 0, 0, 0, 42, 0, 0, 0, 7, 0xbe, 0xde, 0, 1, 1, 2, 3, 4}
	f.Add(append([]byte{8, 0xff}, concat(dgram(0, pad), dgram(0, append(ext, make([]byte, 80)...)))...))
	// Garbage: too short, version 1, bad padding, oversized payload, RTCP.
	badPad := rtpPacket(0, 1, 0, []byte{1, 2, 200})
	badPad[0] |= 0x20
	f.Add(append([]byte{0, 96}, concat(dgram(0, []byte{0x80, 0}), dgram(1, rtpPacket(0, 1, 0, nil)[:11]),
		dgram(0, append([]byte{0x40}, pcmu[1:]...)), dgram(0, badPad),
		dgram(0, rtpPacket(0, 2, 160, make([]byte, maxSamples+1))), dgram(0, rtcpSentinel))...))
	f.Fuzz(legPackets)
}

func legPackets(t *testing.T, in []byte) {
	{
		if len(in) < 2 {
			return
		}
		cfg := Config{PT: 0, DTMF: -1}
		if in[0]&1 != 0 {
			cfg.PT = 8
		}
		if in[1] >= 96 && in[1] <= 127 {
			cfg.DTMF = int(in[1])
		}
		in = in[2:]
		srcs := fuzzSources(t)
		// Source 0 is the address the SDP names; source 1 is elsewhere.
		cfg.Remote = srcs[0].LocalAddr().(*net.UDPAddr).AddrPort()
		var (
			mu     sync.Mutex
			digits []byte
		)
		l, err := Open(fuzzPool(t), cfg, func(d byte) {
			mu.Lock()
			digits = append(digits, d)
			mu.Unlock()
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The answer; its primer is dropped (it may predate the answer).
		to, stop := startAnswered(t, l, srcs[0])
		defer stop()
		wantRTCP := uint64(0)
		latched := -1
		run := 0 // datagrams in a row from source 1 dropped as foreign while nothing is latched
		prev := l.Stats()
		for n := 0; len(in) >= 3 && n < 16; n++ {
			src := int(in[0] & 1)
			size := min(int(in[1])<<8|int(in[2]), len(in)-3, 9000)
			pkt := in[3 : 3+size]
			in = in[3+size:]
			// Loopback may reorder two datagrams sent back to back (they can
			// be queued on different CPUs), so the sentinel goes only once
			// the leg has started on the datagram; the read loop handles
			// packets one at a time, so the sentinel's count then means
			// the datagram is done.
			send(t, srcs[src], pkt, to)
			if isRTCP(pkt) {
				wantRTCP++
			}
			seen := prev.RxBad + prev.RxForeign + prev.RxPackets + prev.RxRTCP
			legWait(t, l, n, pkt, func(st Stats) bool { return st.RxBad+st.RxForeign+st.RxPackets+st.RxRTCP > seen })
			send(t, srcs[src], rtcpSentinel, to)
			wantRTCP++
			st := legWait(t, l, n, pkt, func(st Stats) bool { return st.RxRTCP >= wantRTCP })
			if st.RxRTCP != wantRTCP {
				t.Fatalf("datagram % x: %d RTCP packets counted, want %d", pkt, st.RxRTCP, wantRTCP)
			}
			dBad, dForeign, dPkts := st.RxBad-prev.RxBad, st.RxForeign-prev.RxForeign, st.RxPackets-prev.RxPackets
			dRTCP := st.RxRTCP - prev.RxRTCP - 1 // minus the sentinel
			switch total := dBad + dForeign + dPkts + dRTCP; {
			case total == 1:
			case total == 2 && dPkts == 1 && dBad == 1: // accepted, then its payload refused
			default:
				t.Fatalf("datagram % x counted %d times: %+v -> %+v", pkt, total, prev, st)
			}
			if dPkts == 1 {
				// The SDP address (source 0) may take over from a
				// learned source; nothing else ever replaces a latch.
				if latched >= 0 && latched != src && src != 0 {
					t.Fatalf("source %d latched, but a packet from source %d was accepted", latched, src)
				}
				// Strict RTP: a source the SDP does not name is learned
				// only after learnPackets in a row from it.
				if latched < 0 && src == 1 && run < learnPackets-1 {
					t.Fatalf("source 1 (not in the SDP) latched after %d packets from it", run)
				}
				latched = src
			}
			switch {
			case dForeign == 1 && latched == src:
				t.Fatalf("packet from latched source %d counted foreign", src)
			case dForeign == 1 && latched < 0 && src == 0:
				t.Fatalf("packet % x from the SDP address counted foreign before latching: %+v -> %+v (leg latched %v, SDP %v)", pkt, prev, st, l.latched.Load(), cfg.Remote)
			case dForeign == 1 && latched < 0:
				run++
			case dForeign+dPkts > 0:
				run = 0
			}
			if st.RxDTMF-prev.RxDTMF > dPkts || (st.RxDTMF > prev.RxDTMF && (cfg.DTMF < 0 || len(pkt) < 2 || int(pkt[1]&0x7f) != cfg.DTMF)) {
				t.Fatalf("datagram % x counted as DTMF (type %d)", pkt, cfg.DTMF)
			}
			if j, p := st.Jitter, prev.Jitter; j.Late < p.Late || j.Overflow < p.Overflow || j.Resyncs < p.Resyncs {
				t.Fatalf("jitter counters went back: %+v -> %+v", p, j)
			}
			mu.Lock()
			nd := len(digits)
			mu.Unlock()
			if uint64(nd) > st.RxDTMF {
				t.Fatalf("%d digits from %d DTMF packets", nd, st.RxDTMF)
			}
			prev = st
		}
		var fr dsp.Frame
		for range 4 {
			l.ReadFrame(&fr)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, d := range digits {
			if !strings.ContainsRune("0123456789*#ABCD", rune(d)) {
				t.Fatalf("reported %q, not a keypad key", d)
			}
		}
	}
}

var (
	fuzzPoolOnce sync.Once
	fuzzPoolP    *Pool
	fuzzSrcOnce  sync.Once
	fuzzSrcs     [2]*net.UDPConn
)

// fuzzPool is one pool per process, away from the unit tests' range.
func fuzzPool(t *testing.T) *Pool {
	fuzzPoolOnce.Do(func() {
		p, err := NewPool(netip.MustParseAddr("127.0.0.1"), 45000, 45998)
		if err != nil {
			t.Fatal(err)
		}
		fuzzPoolP = p
	})
	return fuzzPoolP
}

// fuzzSources are the two phones' sockets, kept for the process: binding
// two sockets per input would dominate the run time.
func fuzzSources(t *testing.T) [2]*net.UDPConn {
	fuzzSrcOnce.Do(func() {
		for i := range fuzzSrcs {
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			fuzzSrcs[i] = c
		}
	})
	return fuzzSrcs
}

func send(t *testing.T, c *net.UDPConn, p []byte, to netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort(p, to); err != nil {
		t.Fatal(err)
	}
}

// startAnswered starts l, answers it and waits until an RTCP sentinel
// from src has been dropped as foreign; it returns the leg's address and
// stop, which closes l and fails unless its goroutines end. Should the
// wait fail, l is stopped before the test ends.
func startAnswered(t *testing.T, l *Leg, src *net.UDPConn) (to netip.AddrPort, stop func()) {
	t.Helper()
	before := runtime.NumGoroutine()
	l.Start()
	stop = func() {
		l.Close()
		waitGoroutines(t, before)
	}
	started := false
	defer func() {
		if !started {
			stop()
		}
	}()
	to = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port()))
	l.Answered()
	send(t, src, rtcpSentinel, to)
	legWait(t, l, -1, rtcpSentinel, func(st Stats) bool { return st.RxForeign == 1 })
	started = true
	return to, stop
}

// legWait polls the leg's counters until cond holds, and returns the
// counters read again after that. Stats loads one counter after the other
// while the reader may be counting: the snapshot in which cond saw a
// sentinel's RTCP count may hold a RxPackets loaded before the datagram
// ahead of the sentinel was counted. Everything counted before the
// sentinel happened before its count, so a read after cond held sees it.
func legWait(t *testing.T, l *Leg, n int, pkt []byte, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := l.Stats()
		if cond(st) {
			return l.Stats()
		}
		if time.Now().After(deadline) {
			t.Fatalf("datagram %d (% x) not handled: %+v", n, pkt, st)
		}
		runtime.Gosched()
	}
}

// TestLegWaitReadsAfterCond: what legWait returns was read after cond
// held. The reader counting between two of Stats' loads is played here by
// cond itself: it sees the sentinel's RTCP count in a snapshot whose
// RxPackets was read before the packet ahead of the sentinel was counted,
// and counts that packet (as the reader just did) before saying yes.
func TestLegWaitReadsAfterCond(t *testing.T) {
	l := newLeg(nil, nil)
	l.rxRTCP.Add(1) // the sentinel, counted
	st := legWait(t, l, 0, rtcpSentinel, func(s Stats) bool {
		if s.RxRTCP == 0 {
			return false
		}
		if s.RxPackets == 0 {
			l.rxPackets.Add(1) // the packet ahead of it, counted after RxPackets was loaded
		}
		return true
	})
	if st.RxPackets != 1 || st.RxRTCP != 1 {
		t.Fatalf("legWait returned %+v, the snapshot cond saw, not the counters after it", st)
	}
}

// waitGoroutines fails unless the goroutine count drops back to n: the
// leg's read loop must end when it is closed.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

// rtpPacket builds a plain RTP packet (RFC 3550 5.1), SSRC 42.
func rtpPacket(pt uint8, seq uint16, ts uint32, payload []byte) []byte {
	return append([]byte{0x80, pt, byte(seq >> 8), byte(seq), byte(ts >> 24), byte(ts >> 16), byte(ts >> 8), byte(ts), 0, 0, 0, 42}, payload...)
}

// dgram frames one datagram of the fuzz input.
func dgram(src byte, p []byte) []byte {
	return append([]byte{src, byte(len(p) >> 8), byte(len(p))}, p...)
}

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
