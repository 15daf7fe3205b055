package jitter

import (
	"testing"

	"webconf/dsp"
)

// tagged is the sample the fuzz stream sends at RTP timestamp ts: never
// zero (zero means a gap) and carrying ts's low 14 bits, so a frame's
// samples tell where they came from.
func tagged(ts uint32) int16 { return int16(ts&0x3fff | 0x4000) }

// FuzzOps drives a Buffer with an arbitrary stream of Put, Get and Reset
// operations, as a phone with any clock, loss, reordering, duplication,
// timestamp jumps and packet sizes would. The first two bytes choose
// maxDelay and prefill; then each operation is 4 bytes: an opcode, a
// timestamp step and a packet length.
//
// Invariants: no panic; 0 <= Buffered() <= maxDelay; counters never
// decrease; Empty frames are silence; Audio frames hold samples that were
// sent, in timestamp order (consecutive non-gap samples carry consecutive
// timestamps); Concealed frames are the last Audio frame at -6 dB then
// -12 dB, at most maxConceal in a row.
func FuzzOps(f *testing.F) {
	// A steady 20 ms stream, one frame of prefill.
	f.Add([]byte{80, 1, 0, 160, 0, 160, 1, 0, 0, 0, 0, 160, 0, 160, 1, 0, 0, 0, 0, 160, 0, 160, 1, 0, 0, 0})
	// Reordering, a lost packet and concealment until Empty.
	f.Add([]byte{80, 1,
		0, 160, 0, 160, 4, 64, 1, 64, 4, 96, 0, 160, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0})
	// 60 ms packets, a jump far ahead (resync), one far behind, a Reset.
	f.Add([]byte{200, 3, 0, 255, 1, 224, 1, 0, 0, 0, 3, 0x80, 1, 224, 1, 0, 0, 0, 5, 0x80, 1, 224, 2, 0, 0, 0, 0, 10, 0, 160, 1, 0, 0, 0})
	// A packet larger than maxDelay and duplicates.
	f.Add([]byte{0, 0, 0, 100, 0x07, 0xff, 4, 0, 0, 160, 4, 0, 0, 160, 1, 0, 0, 0})
	f.Fuzz(runOps)
}

func runOps(t *testing.T, ops []byte) {
	{
		if len(ops) < 2 {
			return
		}
		maxDelay, prefill := int(ops[0])*16, int(ops[1])*16
		ops = ops[2:]
		b := New(maxDelay, prefill)
		limit := b.maxDelay
		var (
			ts        uint32
			frame     dsp.Frame
			last      dsp.Frame
			haveLast  bool
			concealed int
			prev      Stats
			pkt       = make([]int16, 0, 1<<11)
		)
		// Bounded work per input keeps minimisation fast: at most 128
		// operations of at most 2 Ki samples.
		ops = ops[:min(len(ops), 4*128)]
		for len(ops) >= 4 {
			op, step, n := ops[0], uint32(ops[1]), (int(ops[2])<<8|int(ops[3]))&0x7ff
			ops = ops[4:]
			switch op % 8 {
			case 0, 1, 2: // next packet: ts moves forward by step*8 samples
				ts += step * 8
				put(b, &pkt, ts, n)
			case 3: // a jump: forward by step*256 samples
				ts += step << 8
				put(b, &pkt, ts, n)
			case 4: // reordered or duplicate: a packet from the past
				put(b, &pkt, ts-step*8, n)
			case 5: // a jump backwards (or a new source)
				ts -= step << 10
				put(b, &pkt, ts, n)
			case 6:
				b.Reset()
				haveLast, concealed = false, 0
			case 7:
				// Gets are rarer than Puts here; make them count.
				for range 1 + int(step%4) {
					st := b.Get(&frame)
					check(t, st, &frame, &last, &haveLast, &concealed)
				}
			}
			if got := b.Buffered(); got < 0 || got > limit {
				t.Fatalf("Buffered() = %d outside [0, %d]", got, limit)
			}
			s := b.Stats()
			if s.Late < prev.Late || s.Overflow < prev.Overflow || s.Underruns < prev.Underruns ||
				s.Concealed < prev.Concealed || s.Resyncs < prev.Resyncs {
				t.Fatalf("counters went back: %+v after %+v", s, prev)
			}
			prev = s
		}
		// Drain: everything buffered plays out within maxDelay samples.
		for range limit/dsp.FrameSamples + 1 + maxConceal {
			st := b.Get(&frame)
			check(t, st, &frame, &last, &haveLast, &concealed)
		}
		if b.Buffered() != 0 {
			t.Fatalf("%d samples still buffered after draining", b.Buffered())
		}
	}
}

// put sends n (capped at 2 Ki) tagged samples starting at ts.
func put(b *Buffer, pkt *[]int16, ts uint32, n int) {
	p := (*pkt)[:0]
	for i := range min(n, cap(p)) {
		p = append(p, tagged(ts+uint32(i)))
	}
	*pkt = p
	b.Put(ts, p)
}

func check(t *testing.T, st State, fr, last *dsp.Frame, haveLast *bool, concealed *int) {
	t.Helper()
	switch st {
	case Empty:
		if *fr != (dsp.Frame{}) {
			t.Fatal("Empty frame is not silence")
		}
		*haveLast, *concealed = false, 0
	case Audio:
		prev := -1
		for i, s := range fr {
			if s == 0 {
				continue
			}
			if s&0x4000 == 0 {
				t.Fatalf("sample %d = %#x was never sent", i, s)
			}
			if prev >= 0 {
				want := tagged(uint32(fr[prev]&0x3fff) + uint32(i-prev))
				if s != want {
					t.Fatalf("sample %d = %#x after sample %d = %#x: out of order", i, s, prev, fr[prev])
				}
			}
			prev = i
		}
		if prev < 0 {
			t.Fatal("Audio frame without audio")
		}
		*last, *haveLast, *concealed = *fr, true, 0
	case Concealed:
		*concealed++
		if !*haveLast || *concealed > maxConceal {
			t.Fatalf("concealed frame %d in a row (have last frame: %v)", *concealed, *haveLast)
		}
		div := int16(1) << *concealed
		for i, s := range fr {
			if s != last[i]/div {
				t.Fatalf("concealed sample %d = %d, want %d/%d", i, s, last[i], div)
			}
		}
	default:
		t.Fatalf("unknown state %v", st)
	}
}
