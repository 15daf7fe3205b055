package webrtc

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"webconf/dsp"
	"webconf/dsp/g711"
)

// BenchmarkLegTick is one participant-tick of a connected leg: ReadFrame
// (the jitter buffer, fed one packet per tick by receive, pion's decrypted
// packet) and WriteEncoded (packetize and hand to pion's SRTP sender).
func BenchmarkLegTick(b *testing.B) {
	f := newFactory(b, Config{})
	br := newBrowser(b, webrtc.MimeTypePCMU, codecPCMU)
	leg, _ := br.connect(b, f)
	br.discard.Store(true)
	var pkt [12 + dsp.FrameSamples]byte
	hdr := rtp.Header{Version: 2, PayloadType: g711.PCMU, SSRC: 9}
	var in dsp.Frame
	var enc [dsp.FrameSamples]byte
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		hdr.SequenceNumber = uint16(i)
		hdr.Timestamp = uint32(i) * dsp.FrameSamples
		n, _ := hdr.MarshalTo(pkt[:])
		leg.receive(pkt[:n+dsp.FrameSamples], time.Now())
		leg.ReadFrame(&in)
		leg.WriteEncoded(enc[:])
	}
}

// BenchmarkLegReceive is one packet received: RTP header, G.711 decode,
// into the jitter buffer (what runs per packet after pion's SRTP).
func BenchmarkLegReceive(b *testing.B) {
	leg := newLeg(g711.PCMU, nil)
	var pkt [12 + dsp.FrameSamples]byte
	hdr := rtp.Header{Version: 2, PayloadType: g711.PCMU, SSRC: 9}
	var in dsp.Frame
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		hdr.SequenceNumber = uint16(i)
		hdr.Timestamp = uint32(i) * dsp.FrameSamples
		n, _ := hdr.MarshalTo(pkt[:])
		leg.receive(pkt[:n+dsp.FrameSamples], time.Now())
		if i%4 == 3 {
			for range 4 {
				leg.ReadFrame(&in) // keep the buffer from overflowing
			}
		}
	}
}

// BenchmarkLegSend is one packet sent on a connected leg: header, pion's
// track, SRTP encryption and the UDP write.
func BenchmarkLegSend(b *testing.B) {
	f := newFactory(b, Config{})
	br := newBrowser(b, webrtc.MimeTypePCMU, codecPCMU)
	leg, _ := br.connect(b, f)
	br.discard.Store(true)
	var enc [dsp.FrameSamples]byte
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		leg.WriteEncoded(enc[:])
	}
}

// BenchmarkLegReceivePion is one packet from the browser's track to the
// leg's jitter buffer through pion on loopback: the far end's SRTP and
// UDP write, pion's read, SRTP decryption and the leg's receive; one
// packet in flight at a time.
func BenchmarkLegReceivePion(b *testing.B) {
	f := newFactory(b, Config{})
	br := newBrowser(b, webrtc.MimeTypePCMU, codecPCMU)
	leg, _ := br.connect(b, f)
	var enc [dsp.FrameSamples]byte
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: g711.PCMU, SSRC: 1}, Payload: enc[:]}
	var in dsp.Frame
	base := leg.rxPackets.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p.SequenceNumber = uint16(i)
		p.Timestamp = uint32(i) * dsp.FrameSamples
		if err := br.track.WriteRTP(&p); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(time.Second)
		for leg.rxPackets.Load() < base+uint64(i)+1 {
			if time.Now().After(deadline) {
				b.Fatalf("packet %d not received", i)
			}
		}
		if i%4 == 3 {
			for range 4 {
				leg.ReadFrame(&in)
			}
		}
	}
}
