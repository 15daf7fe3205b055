package jitter

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"webconf/dsp"
)

// timedSim plays a sender and a room against one Buffer with times: the
// sender's packet i (ptime samples) leaves at i*ptime*rate and arrives
// after delay(i); the room ticks every 20 ms from phase, taking in every
// packet that arrived by then first. Samples carry their stream position
// (ramp), so the test can tell which packet each played frame came from.
type timedSim struct {
	b     *Buffer
	ptime int     // samples per packet
	rate  float64 // sender's clock: 1 exact, 1.005 0.5 % slow, 0.995 fast
	phase time.Duration
	delay func(i int) time.Duration
	// polled: the receiver reads its socket at the tick and gives no
	// arrival time (PutAt with 0).
	polled bool

	// Per tick after warm-up: latency (tick time minus the arrival of the
	// packet holding the frame's last sample) of frames played as Audio.
	lat []time.Duration
	// played counts the samples played as Audio; misses the frames
	// played Concealed or Empty after warm-up (while the stream lasts).
	played int
	misses int
}

func (s *timedSim) sendTime(i int) time.Duration {
	return time.Duration(float64(i*s.ptime) * 125e3 * s.rate)
}

// run simulates d of stream and returns the positions sent.
func (s *timedSim) run(d, warmup time.Duration) int {
	type arrival struct {
		i  int
		at time.Duration
	}
	var arr []arrival
	packets := int(d / (time.Duration(s.ptime) * 125e3))
	for i := range packets {
		arr = append(arr, arrival{i, s.sendTime(i) + s.delay(i)})
	}
	slices.SortStableFunc(arr, func(a, b arrival) int { return int(a.at - b.at) })
	arrivedAt := make([]time.Duration, packets)
	for _, a := range arr {
		arrivedAt[a.i] = a.at
	}
	const ts0 = 0xfffff000 // wraps during the run
	var f dsp.Frame
	next := 0
	for tick := s.phase; next < len(arr) || s.b.Buffered() > 0; tick += 20 * time.Millisecond {
		for next < len(arr) && arr[next].at <= tick {
			i := arr[next].i
			at := int64(arr[next].at) + 1
			if s.polled {
				at = 0
			}
			s.b.PutAt(ts0+uint32(i*s.ptime), ramp(i*s.ptime, s.ptime), at)
			next++
		}
		st := s.b.GetAt(&f, int64(tick)+1)
		for _, v := range f {
			if st == Audio && v != 0 {
				s.played++
			}
		}
		if tick < warmup {
			continue
		}
		if st != Audio {
			if next < len(arr) {
				s.misses++
			}
			continue
		}
		pos := int(f[dsp.FrameSamples-1]) - 1 // sampleAt inverted: the position mod 30000
		// Find the packet of the frame's last sample among those that
		// arrived by now (positions repeat every 30000 samples).
		for i := next - 1; i >= 0; i-- {
			p := arr[i].i * s.ptime
			if p%30000 <= pos && pos < p%30000+s.ptime {
				s.lat = append(s.lat, tick-arrivedAt[arr[i].i])
				break
			}
		}
	}
	return packets * s.ptime
}

func pct(l []time.Duration, p float64) time.Duration {
	c := slices.Clone(l)
	slices.Sort(c)
	return c[int(float64(len(c)-1)*p)]
}

func TestAdaptivePlayout(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		name   string
		ptime  int
		rate   float64
		phase  time.Duration
		delay  func(i int) time.Duration
		maxP50 time.Duration // latency after warm-up
		maxP99 time.Duration
		minLat time.Duration // the delay must have grown to at least this
		// inserted is how many frames may be inserted after warm-up
		// (a slow sender's clock leaves no choice).
		inserted int
		polled   bool
		late     int // late packets allowed (each costs at most a packet)
	}{
		{
			name: "read at the tick", ptime: 160, rate: 1, phase: 10 * ms, polled: true,
			delay:  func(int) time.Duration { return 0 },
			maxP50: 11 * ms, maxP99: 11 * ms,
		},
		{
			// Arrivals within 0.5 ms either side of the tick, known
			// only to the tick: some frames come only a tick before
			// they play, so the frame of prefill stays.
			name: "read at the tick, arrivals around it", ptime: 160, rate: 1, phase: 500 * time.Microsecond, polled: true,
			delay: func(i int) time.Duration {
				return time.Duration(rand.New(rand.NewPCG(uint64(i), 9)).IntN(int(time.Millisecond)))
			},
			maxP50: 21 * ms, maxP99: 21 * ms,
		},
		{
			// Packets arrive 12 ms before a tick: each frame is
			// played at the first tick after it arrives.
			name: "steady", ptime: 160, rate: 1, phase: 12 * ms,
			delay:  func(int) time.Duration { return 0 },
			maxP50: 13 * ms, maxP99: 13 * ms,
		},
		{
			name: "steady 10 ms packets", ptime: 80, rate: 1, phase: 5 * ms,
			delay:  func(int) time.Duration { return 0 },
			maxP50: 16 * ms, maxP99: 16 * ms,
		},
		{
			// Arrivals just before the tick: too close for the
			// guard, so the buffer keeps one frame more.
			name: "steady on the tick's edge", ptime: 160, rate: 1, phase: 1 * ms,
			delay:  func(int) time.Duration { return 0 },
			maxP50: 22 * ms, maxP99: 22 * ms, minLat: 20 * ms,
		},
		{
			name: "jittery", ptime: 160, rate: 1, phase: 10 * ms,
			delay: func(i int) time.Duration {
				return time.Duration(rand.New(rand.NewPCG(uint64(i), 7)).IntN(int(15 * ms)))
			},
			maxP50: 45 * ms, maxP99: 60 * ms, minLat: 1 * ms,
		},
		{
			// Three packets at once every 60 ms (a sender that
			// batches, or a bursty link).
			name: "bursty", ptime: 160, rate: 1, phase: 10 * ms,
			delay:  func(i int) time.Duration { return time.Duration(2-i%3) * 20 * ms },
			maxP50: 50 * ms, maxP99: 70 * ms, minLat: 10 * ms,
		},
		{
			name: "sender clock 0.5% fast", ptime: 160, rate: 0.995, phase: 10 * ms,
			delay:  func(int) time.Duration { return 0 },
			maxP50: 32 * ms, maxP99: 32 * ms,
		},
		{
			// 0.5 % of 57 s is 14 frames the receiver has to add.
			name: "sender clock 0.5% slow", ptime: 160, rate: 1.005, phase: 10 * ms,
			delay:  func(int) time.Duration { return 0 },
			maxP50: 32 * ms, maxP99: 32 * ms, inserted: 15,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &timedSim{b: New(8000, 160), ptime: tc.ptime, rate: tc.rate, phase: tc.phase, delay: tc.delay, polled: tc.polled}
			const warmup = 3 * time.Second
			sent := s.run(60*time.Second, warmup)
			st := s.b.Stats()
			p50, p99, p0 := pct(s.lat, 0.5), pct(s.lat, 0.99), pct(s.lat, 0)
			t.Logf("latency p0 %v p50 %v p99 %v; stats %+v; misses %d", p0, p50, p99, st, s.misses)
			if p50 > tc.maxP50 || p99 > tc.maxP99 || p0 < tc.minLat {
				t.Errorf("latency p0 %v p50 %v p99 %v, want p0 >= %v, p50 <= %v, p99 <= %v", p0, p50, p99, tc.minLat, tc.maxP50, tc.maxP99)
			}
			// Nothing is late and nothing is lost: every sample sent
			// is played but for the frames dropped to cut the delay
			// (the initial frame of prefill, a fast sender's surplus).
			want := sent - int(st.Trimmed)*dsp.FrameSamples
			if s.played > want || s.played < want-int(st.Late)*tc.ptime || int(st.Late)+int(st.Resyncs) > tc.late || st.Underruns != 0 {
				t.Errorf("played %d samples of %d sent (%d frames trimmed), %d late, %d resyncs, %d underruns",
					s.played, sent, st.Trimmed, st.Late, st.Resyncs, st.Underruns)
			}
			if s.misses > tc.inserted {
				t.Errorf("%d frames concealed or empty after warm-up, want at most %d", s.misses, tc.inserted)
			}
		})
	}
}

// TestAdaptivePlayoutFollowsASpike: 10 s of 50 ms extra network delay:
// at its onset the stream stalls (nothing to be done), at its end 50 ms
// of packets arrive at once and would stay as extra delay; the delay comes
// back down, a frame a window, to where each frame plays at the first tick
// after it arrives.
func TestAdaptivePlayoutFollowsASpike(t *testing.T) {
	const ms = time.Millisecond
	s := &timedSim{b: New(8000, 160), ptime: 160, rate: 1, phase: 12 * ms, delay: func(i int) time.Duration {
		if i >= 500 && i < 1000 { // 10 s to 20 s
			return 50 * ms
		}
		return 0
	}}
	s.run(40*time.Second, 0)
	st := s.b.Stats()
	t.Logf("stats %+v", st)
	burst := s.lat[990:1010]        // around 20 s
	after := s.lat[len(s.lat)-500:] // the last 10 s
	if top := pct(burst, 1); top < 50*ms {
		t.Errorf("after the spike's end frames played at most %v after arriving, want the burst's 50 ms", top)
	}
	if p99 := pct(after, 0.99); p99 > 13*ms {
		t.Errorf("10 s after the spike latency p99 is %v, want back to 12 ms", p99)
	}
	if st.Trimmed < 3 {
		t.Errorf("trimmed %d frames: the delay did not come down after the spike", st.Trimmed)
	}
}

// TestDTXGap: a sender that declares silence (comfort noise, Silence) and
// then sends nothing for 3 s: its silence is not concealed with speech nor
// counted as an underrun, and the talkspurt after it plays with the delay
// it had before, not stretched by the gap.
func TestDTXGap(t *testing.T) {
	const ms = int64(time.Millisecond)
	b := New(8000, 160)
	var f dsp.Frame
	tick := int64(12 * ms)
	lat := func(pos int, from, to int64) []int64 {
		// Sends a 20 ms packet at each 20 ms from..to (arriving 8 ms
		// before the tick), ticks, and notes for each of them how many
		// ticks later its first sample played.
		var got []int64
		sent := map[int16]int64{}
		for at := from; at < to; at += 20 * ms {
			b.PutAt(uint32(pos), ramp(pos, 160), at)
			sent[sampleAt(pos)] = at
			pos += 160
			for ; tick <= at+20*ms; tick += 20 * ms {
				if b.GetAt(&f, tick) == Audio {
					if a, ok := sent[f[0]]; ok {
						got = append(got, tick-a)
					}
				}
			}
		}
		return got
	}
	before := lat(0, 4*ms, 4*ms+int64(5*time.Second))
	b.Silence()
	st0 := b.Stats()
	var states []State
	for range 150 { // 3 s of ticks with nothing
		states = append(states, b.GetAt(&f, tick))
		tick += 20 * ms
	}
	for i, st := range states {
		if st != Empty {
			t.Fatalf("tick %d of the silence played %v, want empty", i, st)
		}
	}
	gapStart := 4*ms + int64(5*time.Second)
	resumeAt := gapStart + int64(3*time.Second)
	after := lat(int((resumeAt-4*ms)/ms)*8, resumeAt, resumeAt+int64(2*time.Second))
	st := b.Stats()
	if st.Underruns != st0.Underruns || st.Late != 0 || st.Concealed != st0.Concealed {
		t.Fatalf("the DTX gap counted: before %+v, after %+v", st0, st)
	}
	lb, la := before[len(before)-1], after[len(after)-1]
	if la > lb || len(after) < 90 {
		t.Fatalf("after the gap frames play %v after arriving (%d of them), before it %v", time.Duration(la), len(after), time.Duration(lb))
	}
}

func BenchmarkPutAtGetAt20ms(b *testing.B) {
	buf := New(8000, 160)
	pkt := ramp(0, 160)
	var f dsp.Frame
	ts, now := uint32(0), int64(1)
	b.ReportAllocs()
	for b.Loop() {
		buf.PutAt(ts, pkt, now)
		now += int64(12 * time.Millisecond)
		buf.GetAt(&f, now)
		now += int64(8 * time.Millisecond)
		ts += 160
	}
}

// TestStallBacklogIsDropped: a tick stall (a worker that fell behind and
// skipped ahead) leaves a backlog behind the playout point; it goes within
// a couple of windows even while a late packet holds shrinking off (all
// but the frame the late packet asked for).
func TestStallBacklogIsDropped(t *testing.T) {
	const ms = int64(time.Millisecond)
	b := New(8000, 160)
	var f dsp.Frame
	tick := 12 * ms
	i := 0
	for at := int64(1); at < int64(10*time.Second); at += 20 * ms {
		switch i {
		case 250: // 5 s: this packet comes after the next
		case 251:
			b.PutAt(uint32(i*160), ramp(i*160, 160), at)
			b.PutAt(uint32(250*160), ramp(250*160, 160), at+5*ms)
		default:
			b.PutAt(uint32(i*160), ramp(i*160, 160), at)
		}
		i++
		if i == 300 { // 6 s: the ticks stall for 200 ms
			tick += 200 * ms
			// As after a history of late packets: 32 s of hold-off.
			b.holdoff = maxHoldoff
		}
		for ; tick <= at+20*ms; tick += 20 * ms {
			b.GetAt(&f, tick)
		}
		if at > int64(9*time.Second) && b.Buffered() > 2*dsp.FrameSamples {
			t.Fatalf("at %v still %d samples buffered; stats %+v", time.Duration(at), b.Buffered(), b.Stats())
		}
	}
	if st := b.Stats(); st.Late == 0 || st.Trimmed < 10 {
		t.Fatalf("stats %+v: want a late packet and the stall's 10 frames trimmed", st)
	}
}
