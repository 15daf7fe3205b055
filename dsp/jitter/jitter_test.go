package jitter

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"webconf/dsp"
)

// ramp returns n distinct non-zero samples starting at stream position pos,
// so any misplaced, duplicated or missing sample changes the output.
func ramp(pos, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = sampleAt(pos + i)
	}
	return s
}

func sampleAt(pos int) int16 { return int16(pos%30000 + 1) }

// sim drives a Buffer the way an RTP leg and a room do: the sender emits
// packets of ptime samples as soon as they are complete, and the room takes
// one frame every 160 samples of simulated time, after that tick's arrivals.
type sim struct {
	b      *Buffer
	ts0    uint32
	out    []int16
	states []State
}

func (s *sim) get() State {
	var f dsp.Frame
	st := s.b.Get(&f)
	s.out = append(s.out, f[:]...)
	s.states = append(s.states, st)
	return st
}

func (s *sim) put(pos, n int) { s.b.Put(s.ts0+uint32(pos), ramp(pos, n)) }

func TestInOrderStreamIsExact(t *testing.T) {
	for _, ptime := range []int{10, 20, 30, 60} {
		t.Run(fmt.Sprintf("%d ms packets play back sample for sample after one frame of prefill", ptime), func(t *testing.T) {
			n := ptime * 8
			s := &sim{b: New(8000, 160), ts0: 123456}
			const total = 4800 // 600 ms
			sent := 0
			for now := dsp.FrameSamples; len(s.out) < total+dsp.FrameSamples; now += dsp.FrameSamples {
				for sent+n <= now && sent+n <= total {
					s.put(sent, n)
					sent += n
				}
				if sent > 0 {
					s.get()
				}
			}
			// The first frame is the prefill; the stream follows exactly.
			if s.states[0] != Empty {
				t.Fatalf("first frame %v, want empty (prefill)", s.states[0])
			}
			got := s.out[dsp.FrameSamples:]
			for i := range total {
				if got[i] != sampleAt(i) {
					t.Fatalf("sample %d = %d, want %d (states %v)", i, got[i], sampleAt(i), s.states)
				}
			}
			st := s.b.Stats()
			if st.Late != 0 || st.Overflow != 0 || st.Concealed != 0 || st.Resyncs != 0 {
				t.Fatalf("stats %+v, want no events", st)
			}
		})
	}
}

func TestReorderWithinPrefill(t *testing.T) {
	s := &sim{b: New(8000, 320), ts0: 9}
	// Send 20 ms packets with each pair swapped: 1,0,3,2,...
	const frames = 20
	order := []int{}
	for i := 0; i < frames; i += 2 {
		order = append(order, i+1, i)
	}
	for k, f := range order {
		s.put(f*160, 160)
		if k >= 1 {
			s.get()
		}
	}
	for s.b.Buffered() > 0 {
		s.get()
	}
	// prefill 320 = two frames of silence, but the first arrival is packet 1,
	// so playout starts at packet 1 - 320 samples = one frame before packet 0.
	if s.states[0] != Empty {
		t.Fatalf("first frame %v", s.states[0])
	}
	got := s.out[dsp.FrameSamples:]
	for i := range frames * 160 {
		if got[i] != sampleAt(i) {
			t.Fatalf("sample %d = %d, want %d", i, got[i], sampleAt(i))
		}
	}
	if st := s.b.Stats(); st.Late != 0 || st.Concealed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// steady feeds frames [from, to) as 20 ms packets, one Get per packet, and
// skips the packets listed in lost.
func steady(s *sim, from, to int, lost map[int]bool) {
	for f := from; f < to; f++ {
		if !lost[f] {
			s.put(f*160, 160)
		}
		s.get()
	}
}

func TestLossConcealment(t *testing.T) {
	t.Run("one lost packet is concealed at -6 dB and the stream continues", func(t *testing.T) {
		s := &sim{b: New(8000, 160)}
		steady(s, 0, 10, map[int]bool{5: true})
		// Output frame k holds packet k-1 (one frame of prefill).
		want := []State{Empty, Audio, Audio, Audio, Audio, Audio, Concealed, Audio, Audio, Audio}
		for i, st := range s.states {
			if st != want[i] {
				t.Fatalf("states %v, want %v", s.states, want)
			}
		}
		frame := func(k int) []int16 { return s.out[k*160 : (k+1)*160] }
		for i, v := range frame(6) {
			if w := sampleAt(4*160+i) / 2; v != w {
				t.Fatalf("concealed sample %d = %d, want %d (half of packet 4)", i, v, w)
			}
		}
		for i, v := range frame(7) {
			if v != sampleAt(6*160+i) {
				t.Fatalf("after the loss sample %d = %d", i, v)
			}
		}
		if st := s.b.Stats(); st.Concealed != 1 || st.Underruns != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("a long loss conceals twice, decaying, then goes empty and counts one underrun", func(t *testing.T) {
		s := &sim{b: New(8000, 160)}
		steady(s, 0, 12, map[int]bool{4: true, 5: true, 6: true, 7: true, 8: true})
		want := []State{Empty, Audio, Audio, Audio, Audio, Concealed, Concealed, Empty, Empty, Empty, Audio, Audio}
		for i, st := range s.states {
			if st != want[i] {
				t.Fatalf("states %v, want %v", s.states, want)
			}
		}
		c1, c2 := s.out[5*160], s.out[6*160]
		if last := sampleAt(3 * 160); c1 != last/2 || c2 != last/4 {
			t.Fatalf("concealed %d then %d, want %d then %d", c1, c2, last/2, last/4)
		}
		for _, v := range s.out[7*160 : 10*160] {
			if v != 0 {
				t.Fatalf("empty frames must be silent, got %d", v)
			}
		}
		if s.out[10*160] != sampleAt(9*160) {
			t.Fatalf("after the loss the stream resumes at %d", s.out[10*160])
		}
		st := s.b.Stats()
		// The first packet after the loss lands exactly where it would
		// have, so restarting from it does not move the playout point.
		if st.Concealed != 2 || st.Underruns != 1 || st.Resyncs != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("a gap inside a frame is zeroed and the frame is audio", func(t *testing.T) {
		s := &sim{b: New(8000, 160)}
		for f := 0; f < 8; f++ {
			if f != 5 { // one lost 10 ms packet
				s.put(f*80, 80)
			}
			if f%2 == 1 {
				s.get()
			}
		}
		s.get()
		if s.states[3] != Audio {
			t.Fatalf("states %v", s.states)
		}
		fr := s.out[3*160 : 4*160]
		for i, v := range fr {
			want := sampleAt(2*160 + i)
			if i >= 80 {
				want = 0
			}
			if v != want {
				t.Fatalf("sample %d = %d, want %d", i, v, want)
			}
		}
	})
}

func TestLatePacketsAreDropped(t *testing.T) {
	s := &sim{b: New(8000, 320)}
	steady(s, 0, 6, nil)
	// Packet 1 was played long ago; a duplicate arrives.
	s.put(1*160, 160)
	steady(s, 6, 10, nil)
	for s.b.Buffered() > 0 {
		s.get()
	}
	got := s.out[2*160:]
	for i := range 10 * 160 {
		if got[i] != sampleAt(i) {
			t.Fatalf("sample %d = %d, want %d", i, got[i], sampleAt(i))
		}
	}
	if st := s.b.Stats(); st.Late != 1 || st.Resyncs != 0 {
		t.Fatalf("stats %+v, want exactly one late packet", st)
	}
}

func TestTimestampWrapAround(t *testing.T) {
	for _, start := range []uint32{0xffffffff - 1000, 0xffffffff, 0x7fffff00} {
		t.Run(fmt.Sprintf("a stream starting at %#x crosses the wrap seamlessly", start), func(t *testing.T) {
			s := &sim{b: New(8000, 160), ts0: start}
			steady(s, 0, 20, nil)
			got := s.out[160:]
			for i := range 19 * 160 {
				if got[i] != sampleAt(i) {
					t.Fatalf("sample %d = %d, want %d", i, got[i], sampleAt(i))
				}
			}
			if st := s.b.Stats(); st != (Stats{}) {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestResync(t *testing.T) {
	t.Run("a forward jump beyond maxDelay moves the playout point", func(t *testing.T) {
		s := &sim{b: New(1600, 160)}
		steady(s, 0, 5, nil)
		s.ts0 += 100000 // new source or a long pause without packets
		steady(s, 5, 12, nil)
		st := s.b.Stats()
		if st.Resyncs != 1 {
			t.Fatalf("stats %+v, want one resync", st)
		}
		// The remaining frames carry the new audio in order.
		last := s.out[11*160 : 12*160]
		for i, v := range last {
			if v != sampleAt(10*160+i) {
				t.Fatalf("sample %d after resync = %d, want %d (states %v)", i, v, sampleAt(10*160+i), s.states)
			}
		}
	})
	t.Run("a backward jump beyond maxDelay also resyncs instead of dropping everything as late", func(t *testing.T) {
		s := &sim{b: New(1600, 160)}
		steady(s, 0, 5, nil)
		s.ts0 -= 50000
		steady(s, 5, 12, nil)
		if st := s.b.Stats(); st.Resyncs != 1 || st.Late != 0 {
			t.Fatalf("stats %+v", st)
		}
		if s.states[11] != Audio {
			t.Fatalf("states %v", s.states)
		}
	})
	t.Run("a sender falling behind the playout point is re-anchored once the buffer runs dry", func(t *testing.T) {
		s := &sim{b: New(8000, 160)}
		steady(s, 0, 5, nil)
		// The sender's timestamps slip 200 samples behind (e.g. a slow clock).
		s.ts0 -= 200
		steady(s, 5, 12, nil)
		st := s.b.Stats()
		if st.Resyncs != 1 {
			t.Fatalf("stats %+v, want one resync", st)
		}
		if s.states[11] != Audio || s.out[11*160] != sampleAt(10*160) {
			t.Fatalf("states %v, frame 11 starts with %d", s.states, s.out[11*160])
		}
	})
	t.Run("a new talkspurt after running dry buffers prefill again", func(t *testing.T) {
		s := &sim{b: New(8000, 320)}
		steady(s, 0, 5, nil)
		for range 6 { // silence suppression: no packets
			s.get()
		}
		// The talkspurt resumes only 100 samples ahead of the playout point;
		// without re-buffering it would play with almost no cushion.
		pos := int(s.b.playout-s.ts0) + 100
		s.put(pos, 160)
		st := s.get()
		if st != Empty {
			t.Fatalf("first frame after the talkspurt restart is %v, want prefill silence", st)
		}
		if got := s.b.Buffered(); got != 160 {
			t.Fatalf("buffered %d", got)
		}
	})
}

func TestOverflow(t *testing.T) {
	s := &sim{b: New(1600, 160)}
	steady(s, 0, 3, nil)
	// A burst of 15 packets (300 ms) arrives at once: more than maxDelay.
	for f := 3; f < 18; f++ {
		s.put(f*160, 160)
	}
	st := s.b.Stats()
	if st.Overflow == 0 {
		t.Fatalf("stats %+v, want an overflow", st)
	}
	if got := s.b.Buffered(); got > 1600 {
		t.Fatalf("buffered %d samples, beyond maxDelay", got)
	}
	// The newest audio is kept and plays in order.
	for s.b.Buffered() > 0 {
		s.get()
	}
	end := s.out[len(s.out)-160:]
	for i, v := range end {
		if v != sampleAt(17*160+i) {
			t.Fatalf("last frame sample %d = %d, want %d", i, v, sampleAt(17*160+i))
		}
	}
}

func TestLifecycle(t *testing.T) {
	t.Run("Get before any packet is empty and counts nothing", func(t *testing.T) {
		b := New(8000, 160)
		f := dsp.Frame{1, 2, 3}
		for range 5 {
			if st := b.Get(&f); st != Empty || f[0] != 0 {
				t.Fatalf("state %v sample %d", st, f[0])
			}
		}
		if b.Stats() != (Stats{}) {
			t.Fatalf("stats %+v", b.Stats())
		}
	})
	t.Run("Reset forgets audio and the playout point but keeps counters", func(t *testing.T) {
		s := &sim{b: New(8000, 160)}
		steady(s, 0, 3, map[int]bool{1: true})
		s.put(10*160, 160)
		s.b.Reset()
		if s.b.Buffered() != 0 {
			t.Fatalf("buffered %d after Reset", s.b.Buffered())
		}
		var f dsp.Frame
		if st := s.b.Get(&f); st != Empty {
			t.Fatalf("state %v after Reset", st)
		}
		s.ts0 = 777 // a new source is anchored afresh, not a resync
		s.put(0, 160)
		s.get()
		if st := s.get(); st != Audio || s.out[len(s.out)-160] != sampleAt(0) {
			t.Fatalf("state %v", st)
		}
		if st := s.b.Stats(); st.Concealed != 1 || st.Resyncs != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("New raises maxDelay to hold prefill plus a 60 ms packet", func(t *testing.T) {
		b := New(0, 160)
		b.Put(0, make([]int16, 480))
		if b.Stats().Overflow != 0 || b.Buffered() != 480 {
			t.Fatalf("stats %+v buffered %d", b.Stats(), b.Buffered())
		}
	})
	t.Run("each state has a name", func(t *testing.T) {
		if Empty.String() != "empty" || Audio.String() != "audio" || Concealed.String() != "concealed" || State(9).String() != "unknown" {
			t.Fatal("bad State.String")
		}
	})
}

func TestPutGetDoNotAllocate(t *testing.T) {
	b := New(8000, 160)
	pkt := ramp(0, 160)
	var f dsp.Frame
	ts := uint32(0)
	allocs := testing.AllocsPerRun(200, func() {
		b.Put(ts, pkt)
		b.Get(&f)
		ts += 160
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Put+Get", allocs)
	}
}

func BenchmarkPutGet20ms(b *testing.B) {
	buf := New(8000, 160)
	pkt := ramp(0, 160)
	var f dsp.Frame
	ts := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		buf.Put(ts, pkt)
		buf.Get(&f)
		ts += 160
	}
}

func BenchmarkPutGet60ms(b *testing.B) {
	buf := New(8000, 160)
	pkt := ramp(0, 480)
	var f dsp.Frame
	ts := uint32(0)
	b.ReportAllocs()
	for b.Loop() {
		buf.Put(ts, pkt)
		buf.Get(&f)
		buf.Get(&f)
		buf.Get(&f)
		ts += 480
	}
}

// TestRandomisedStreams checks the invariants under random packet sizes,
// delivery jitter, loss and start timestamps: every sample returned as Audio
// is the one sent for that timestamp (or a zeroed gap), and with no loss and
// jitter within the prefill the stream comes out whole.
func TestRandomisedStreams(t *testing.T) {
	r := rand.New(rand.NewPCG(3550, 1))
	for run := range 200 {
		lossy := run%2 == 1
		const prefill = 480
		s := &sim{b: New(4000, prefill), ts0: r.Uint32()}
		type pkt struct{ pos, n, arrive int }
		var pkts []pkt
		total := 0
		for pos := 0; pos < 16000; {
			n := (1 + r.IntN(6)) * 80 // 10..60 ms
			if !lossy || r.IntN(10) != 0 {
				// Sent when complete, delayed by up to prefill-n samples,
				// so it is always in time when the jitter is within prefill.
				pkts = append(pkts, pkt{pos, n, pos + n + r.IntN(prefill-n+1)})
			}
			pos += n
			total = pos
		}
		sort.Slice(pkts, func(i, j int) bool { return pkts[i].arrive < pkts[j].arrive })
		first := -1
		var audio int
		for now, k := 0, 0; now < total+2000; now += dsp.FrameSamples {
			for ; k < len(pkts) && pkts[k].arrive <= now; k++ {
				s.put(pkts[k].pos, pkts[k].n)
			}
			start := int(int32(s.b.playout - s.ts0))
			st := s.get()
			f := s.out[len(s.out)-dsp.FrameSamples:]
			if st == Audio {
				if first < 0 {
					first = start
				}
				for i, v := range f {
					if v != 0 && v != sampleAt(start+i) {
						t.Fatalf("run %d: sample at %d = %d, want %d", run, start+i, v, sampleAt(start+i))
					}
					if v != 0 {
						audio++
					}
				}
			}
			if got := s.b.countBits(0, len(s.b.ring)); got != s.b.Buffered() {
				t.Fatalf("run %d: %d bits set, Buffered() = %d", run, got, s.b.Buffered())
			}
		}
		st := s.b.Stats()
		if !lossy {
			// The only concealment is the fade-out after the last packet.
			if audio != total || st.Late != 0 || st.Concealed != 2 || st.Underruns != 1 || st.Resyncs != 0 || st.Overflow != 0 {
				t.Fatalf("run %d: %d audio samples, stats %+v", run, audio, st)
			}
		}
	}
}

func TestTrimAfterABurst(t *testing.T) {
	b := New(8000, 160)
	frame := make([]int16, 160)
	for i := range frame {
		frame[i] = 1000
	}
	var out dsp.Frame
	ts := uint32(0)
	// A burst of 5 frames at once, then one frame per Get: the sender is
	// 5 frames ahead for good unless the buffer trims.
	for i := 0; i < 5; i++ {
		b.Put(ts, frame)
		ts += 160
	}
	for i := 0; i < 400; i++ {
		b.Put(ts, frame)
		ts += 160
		if st := b.Get(&out); i > 0 && st != Audio {
			t.Fatalf("get %d: %v", i, st)
		}
	}
	if b.Buffered() > 160+trimExcess {
		t.Fatalf("still %d samples buffered after the burst, want at most %d", b.Buffered(), 160+trimExcess)
	}
	if b.Stats().Trimmed == 0 {
		t.Fatal("nothing trimmed")
	}
	// A steady stream at the target delay is never trimmed.
	c := New(8000, 160)
	ts = 0
	for i := 0; i < 200; i++ {
		c.Put(ts, frame)
		ts += 160
		c.Get(&out)
	}
	if c.Stats().Trimmed != 0 {
		t.Fatalf("a steady stream was trimmed %d times", c.Stats().Trimmed)
	}
}
