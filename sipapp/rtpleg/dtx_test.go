package rtpleg

import (
	"net"
	"net/netip"
	"testing"

	"webconf/dsp"
	"webconf/dsp/g711"
	"webconf/sipapp/mixer"
)

// talker is a mixer member without sockets whose frame the test sets.
type talker struct{ f dsp.Frame }

func (t *talker) ReadFrame(f *dsp.Frame) bool { *f = t.f; return true }
func (t *talker) PT() uint8                   { return g711.PCMU }
func (t *talker) WriteEncoded([]byte)         {}

// TestComfortNoiseOnTheWire steps a room by hand (Group.Tick, no clock)
// with a leg that negotiated CN, one that did not, and a talker, and reads
// what each peer receives: the CN peer gets one SID when the silence
// starts, a refresh every sidRefresh frames and nothing else, then the
// talker's audio with the marker bit at the timestamp the silence reached;
// the other peer gets a G.711 frame every tick throughout.
func TestComfortNoiseOnTheWire(t *testing.T) {
	pool := testPool(t)
	open := func(ph *peer, cn uint8) *Leg {
		l, err := Open(pool, Config{PT: g711.PCMU, DTMF: -1, CN: cn, Remote: ph.addr(), Send: true}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(l.Close)
		return l
	}
	cnPeer, plainPeer := newPeer(t), newPeer(t)
	cnLeg, plainLeg := open(cnPeer, 13), open(plainPeer, 0)
	talk := &talker{}
	sched := mixer.New(1, nil) // never started: the test ticks
	g := sched.NewGroup()
	g.Add(mixer.NewMember(cnLeg, cnLeg))
	g.Add(mixer.NewMember(plainLeg, plainLeg))
	g.Add(mixer.NewMember(talk, talk))

	const quiet = sidRefresh + 50
	var prev uint32
	for i := range quiet {
		g.Tick()
		// Read as it comes: a socket buffer does not hold 300 datagrams.
		p := plainPeer.recv(t)
		if p.PayloadType != g711.PCMU || len(p.Payload) != dsp.FrameSamples || p.Payload[0] != 0xff || p.Payload[dsp.FrameSamples-1] != 0xff {
			t.Fatalf("plain packet %d: PT %d, %d bytes, want PCMU silence", i, p.PayloadType, len(p.Payload))
		}
		if i > 0 && p.Timestamp != prev+dsp.FrameSamples {
			t.Fatalf("plain packet %d: ts %d after %d", i, p.Timestamp, prev)
		}
		prev = p.Timestamp
	}
	// Sent synchronously on loopback: the counters say what is queued.
	if n := cnLeg.Stats().TxPackets; n != 2 {
		t.Fatalf("CN leg sent %d packets in %d quiet ticks, want 2 (a SID and its refresh)", n, quiet)
	}
	if n := plainLeg.Stats().TxPackets; n != quiet {
		t.Fatalf("plain leg sent %d packets in %d ticks, want one per tick", n, quiet)
	}
	sid := cnPeer.recv(t)
	if sid.PayloadType != 13 || len(sid.Payload) != 1 || sid.Payload[0] != 127 || sid.Marker {
		t.Fatalf("first packet: PT %d payload %v marker %v, want a SID (PT 13, level 127, no marker)", sid.PayloadType, sid.Payload, sid.Marker)
	}
	ts0, seq0 := sid.Timestamp, sid.SequenceNumber
	ref := cnPeer.recv(t)
	if ref.PayloadType != 13 || ref.SequenceNumber != seq0+1 || ref.Timestamp != ts0+sidRefresh*dsp.FrameSamples {
		t.Fatalf("refresh: PT %d seq %d ts %d, want 13, %d, %d", ref.PayloadType, ref.SequenceNumber, ref.Timestamp, seq0+1, ts0+sidRefresh*dsp.FrameSamples)
	}

	// Someone talks: the CN peer hears it at once, marked, on the timeline.
	for i := range talk.f {
		talk.f[i] = 3000
	}
	g.Tick()
	g.Tick()
	sp := cnPeer.recv(t)
	if sp.PayloadType != g711.PCMU || !sp.Marker || sp.SequenceNumber != seq0+2 || sp.Timestamp != ts0+quiet*dsp.FrameSamples {
		t.Fatalf("first speech packet: PT %d marker %v seq %d ts %d; want PCMU, marker, seq %d, ts %d",
			sp.PayloadType, sp.Marker, sp.SequenceNumber, sp.Timestamp, seq0+2, ts0+quiet*dsp.FrameSamples)
	}
	var pcm [dsp.FrameSamples]int16
	g711.Decode(g711.PCMU, pcm[:], sp.Payload)
	if pcm[0] < 2800 || pcm[0] > 3200 {
		t.Fatalf("speech packet holds %d, want the talker's 3000", pcm[0])
	}
	if sp2 := cnPeer.recv(t); sp2.Marker || sp2.Timestamp != sp.Timestamp+dsp.FrameSamples {
		t.Fatalf("second speech packet: marker %v ts %d", sp2.Marker, sp2.Timestamp)
	}
	for range 2 {
		if p := plainPeer.recv(t); p.Marker || p.Timestamp != prev+dsp.FrameSamples {
			t.Fatalf("the plain peer's stream never paused, yet its packet has marker %v, ts %d after %d", p.Marker, p.Timestamp, prev)
		} else {
			prev = p.Timestamp
		}
	}

	// Quiet again: one SID at the timeline's position, no marker.
	talk.f = dsp.Frame{}
	g.Tick()
	if sid2 := cnPeer.recv(t); sid2.PayloadType != 13 || sid2.Marker || sid2.Timestamp != ts0+(quiet+2)*dsp.FrameSamples {
		t.Fatalf("SID after speech: PT %d marker %v ts %d, want 13, no marker, ts %d", sid2.PayloadType, sid2.Marker, sid2.Timestamp, ts0+(quiet+2)*dsp.FrameSamples)
	}
	for range 10 {
		g.Tick()
	}
	if n := cnLeg.Stats().TxPackets; n != 5 {
		t.Fatalf("CN leg sent %d packets in all, want 5", n)
	}
}

// BenchmarkSilencePath is a silent tick towards a listener: with CN (a
// SID every sidRefresh ticks, nothing otherwise) and without (a G.711
// silence frame, sent: what every tick of a quiet room costs a plain peer).
func BenchmarkSilencePath(b *testing.B) {
	for _, tc := range []struct {
		name string
		cn   uint8
		low  int
	}{{"CN", 13, 45000}, {"G.711", 0, 46000}} {
		b.Run(tc.name, func(b *testing.B) {
			pool, _ := NewPool(netip.MustParseAddr("127.0.0.1"), tc.low, tc.low+998)
			c, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			defer c.Close()
			l, err := Open(pool, Config{PT: g711.PCMU, DTMF: -1, CN: tc.cn, Send: true, Remote: c.LocalAddr().(*net.UDPAddr).AddrPort()}, nil, nil)
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
			b.ReportAllocs()
			for b.Loop() {
				l.WriteSilence()
			}
		})
	}
}
