package main

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"webconf/dsp/g711"
	"webconf/dsp/tone"
)

func TestJitterFollowsRFC3550(t *testing.T) {
	t.Run("a worked example matches the estimator by hand", func(t *testing.T) {
		// Four packets 160 units apart, arriving at 1000, 1165, 1318 and
		// 1480 units: transits 1000, 1005, 998, 1000, so D = 5, -7, 2 and
		//   J1 = 0 + (5 - 0)/16             = 0.3125
		//   J2 = J1 + (7 - J1)/16           = 0.73046875
		//   J3 = J2 + (2 - J2)/16           = 0.809814453125
		ts := []uint32{0, 160, 320, 480}
		arr := []uint32{1000, 1165, 1318, 1480}
		want := []float64{0.3125, 0.73046875, 0.809814453125}
		var j float64
		prev := transit(arr[0], ts[0])
		for i := 1; i < len(ts); i++ {
			tr := transit(arr[i], ts[i])
			j = jitterStep(j, int32(tr-prev))
			prev = tr
			if j != want[i-1] {
				t.Fatalf("after packet %d: J = %v, want %v", i, j, want[i-1])
			}
		}
	})
	t.Run("transit survives RTP timestamp wrap-around", func(t *testing.T) {
		a := transit(100, math.MaxUint32-59) // ts just before the wrap
		b := transit(260, 100)               // 160 units later, after it
		if d := int32(b - a); d != 0 {
			t.Fatalf("D across the wrap = %d, want 0", d)
		}
	})
	t.Run("a perfectly paced stream has zero jitter", func(t *testing.T) {
		var j float64
		for range 100 {
			j = jitterStep(j, 0)
		}
		if j != 0 {
			t.Fatalf("J = %v", j)
		}
	})
	t.Run("tsUnits converts time to the 8 kHz clock", func(t *testing.T) {
		if got := tsUnits(20 * time.Millisecond); got != 160 {
			t.Fatalf("20 ms = %d units, want 160", got)
		}
	})
}

func durs(ms ...int) []time.Duration {
	out := make([]time.Duration, len(ms))
	for i, m := range ms {
		out[i] = time.Duration(m) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	cases := []struct {
		name   string
		values []time.Duration
		p      float64
		want   time.Duration
	}{
		{"an empty set gives zero", nil, 0.5, 0},
		{"a single value is every percentile", durs(7), 0.99, 7 * time.Millisecond},
		{"p0 is the minimum", durs(3, 5, 9), 0, 3 * time.Millisecond},
		{"p100 is the maximum", durs(3, 5, 9), 1, 9 * time.Millisecond},
		{"the median of an even count is the lower middle (nearest rank)", durs(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 0.99, 99 * time.Millisecond},
		{"p99 of two values is the larger", durs(1, 50), 0.99, 50 * time.Millisecond},
		{"p above 1 is clamped to the maximum", durs(1, 2), 1.5, 2 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.values, tc.p); got != tc.want {
				t.Fatalf("percentile(%v, %v) = %v, want %v", tc.values, tc.p, got, tc.want)
			}
		})
	}
	t.Run("sortedDurations leaves its input alone", func(t *testing.T) {
		in := durs(3, 1, 2)
		out := sortedDurations(in)
		if in[0] != 3*time.Millisecond || out[0] != time.Millisecond || out[2] != 3*time.Millisecond {
			t.Fatalf("in %v out %v", in, out)
		}
	})
}

func TestHistogram(t *testing.T) {
	t.Run("an empty histogram reports zero", func(t *testing.T) {
		var h hist
		if h.quantile(0.99) != 0 || h.devQuantile(frameDur, 0.99) != 0 {
			t.Fatal("non-zero quantile of nothing")
		}
	})
	t.Run("quantiles land on the bucket holding the rank", func(t *testing.T) {
		var h hist
		for range 98 {
			h.add(20 * time.Millisecond)
		}
		h.add(25 * time.Millisecond)
		h.add(31 * time.Millisecond)
		if got := h.quantile(0.5); got != 20100*time.Microsecond {
			t.Errorf("p50 = %v, want the 20.0-20.1 ms bucket's edge", got)
		}
		if got := h.quantile(0.99); got != 25100*time.Microsecond {
			t.Errorf("p99 = %v, want 25.1 ms", got)
		}
		if got := h.quantile(1); got != 31*time.Millisecond {
			t.Errorf("p100 = %v, want the exact maximum 31 ms", got)
		}
	})
	t.Run("deviation folds early and late arrivals together", func(t *testing.T) {
		var h hist
		for range 50 {
			h.add(17 * time.Millisecond) // 3 ms early
		}
		for range 50 {
			h.add(22 * time.Millisecond) // 2 ms late
		}
		got := h.devQuantile(frameDur, 0.99)
		if got < 3*time.Millisecond || got > 3100*time.Microsecond {
			t.Fatalf("p99 |dev| = %v, want about 3 ms", got)
		}
		if got := h.devQuantile(frameDur, 0.5); got < 2*time.Millisecond || got > 2100*time.Microsecond {
			t.Fatalf("p50 |dev| = %v, want about 2 ms", got)
		}
	})
	t.Run("values past the range count in the overflow and the maximum", func(t *testing.T) {
		var h, m hist
		h.add(5 * time.Second)
		h.add(20 * time.Millisecond)
		m.merge(&h)
		if m.n != 2 || m.over != 1 || m.max != 5*time.Second {
			t.Fatalf("merged n=%d over=%d max=%v", m.n, m.over, m.max)
		}
		if got := m.quantile(1); got != 5*time.Second {
			t.Fatalf("p100 = %v, want 5s", got)
		}
		if got := m.devQuantile(frameDur, 1); got != 5*time.Second-frameDur {
			t.Fatalf("p100 |dev| = %v", got)
		}
	})
}

// synth builds n samples of noise plus a steady talker tone, with a 2 kHz
// marker burst of burstLen samples at each offset in bursts.
func synth(n int, noise float64, bursts []int, burstLen int, seed uint64) []int16 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]int16, n)
	talker := tone.NewOsc(700, 4000)
	talker.Fill(out)
	for i := range out {
		out[i] += int16(rng.NormFloat64() * noise)
	}
	for _, at := range bursts {
		b := make([]int16, burstLen)
		tone.NewOsc(markerFreq, markerAmp).Fill(b)
		for i, v := range b {
			if at+i < n {
				out[at+i] += v
			}
		}
	}
	return out
}

func feedFrames(d *onsetDetector, pcm []int16) []int {
	var frames []int
	for f := 0; (f+1)*frameSamples <= len(pcm); f++ {
		if d.feed(pcm[f*frameSamples : (f+1)*frameSamples]) {
			frames = append(frames, f)
		}
	}
	return frames
}

func TestOnsetDetection(t *testing.T) {
	det := func() *onsetDetector {
		d := newOnsetDetector(markerFreq, 0.3*markerAmp, 0.1*markerAmp)
		return &d
	}
	t.Run("each frame-aligned burst in noise fires once, in its first frame", func(t *testing.T) {
		pcm := synth(8000*3, 800, []int{25 * 160, 75 * 160}, 320, 1)
		got := feedFrames(det(), pcm)
		if len(got) != 2 || got[0] != 25 || got[1] != 75 {
			t.Fatalf("onsets in frames %v, want [25 75]", got)
		}
	})
	t.Run("a burst starting mid-frame fires in the frame it starts in", func(t *testing.T) {
		pcm := synth(8000, 800, []int{30*160 + 60}, 320, 2)
		if got := feedFrames(det(), pcm); len(got) != 1 || got[0] != 30 {
			t.Fatalf("onsets in frames %v, want [30]", got)
		}
	})
	t.Run("a burst that only clips the end of a frame fires in the next", func(t *testing.T) {
		pcm := synth(8000, 800, []int{30*160 + 150}, 320, 3)
		if got := feedFrames(det(), pcm); len(got) != 1 || got[0] != 31 {
			t.Fatalf("onsets in frames %v, want [31]", got)
		}
	})
	t.Run("talker tones and loud noise alone never fire", func(t *testing.T) {
		pcm := synth(8000*5, 3000, nil, 0, 4)
		if got := feedFrames(det(), pcm); len(got) != 0 {
			t.Fatalf("false onsets in frames %v", got)
		}
	})
	t.Run("the burst survives G.711 coding", func(t *testing.T) {
		pcm := synth(8000, 300, []int{10 * 160}, 320, 5)
		enc := make([]byte, len(pcm))
		g711.EncodeUlaw(enc, pcm)
		g711.DecodeUlaw(pcm, enc)
		if got := feedFrames(det(), pcm); len(got) != 1 || got[0] != 10 {
			t.Fatalf("onsets in frames %v, want [10]", got)
		}
	})
}

func TestToneRun(t *testing.T) {
	frame := make([]int16, frameSamples)
	tone.NewOsc(450, toneAmp).Fill(frame)
	quiet := make([]int16, frameSamples)
	t.Run("fires on the frame that completes the run, once", func(t *testing.T) {
		r := toneRun{g: newGoertzel(450), threshold: toneAmp / 2, need: 3}
		seq := [][]int16{frame, frame, quiet, frame, frame, frame, frame}
		var fired []int
		for i, f := range seq {
			if r.feed(f) {
				fired = append(fired, i)
			}
		}
		if len(fired) != 1 || fired[0] != 5 {
			t.Fatalf("fired at %v, want [5]", fired)
		}
	})
	t.Run("a neighbouring talker's tone does not count", func(t *testing.T) {
		r := toneRun{g: newGoertzel(500), threshold: toneAmp / 2, need: 1}
		if r.feed(frame) {
			t.Fatal("450 Hz read as 500 Hz")
		}
	})
}

func TestJoinBase(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	t.Run("waits for the first other source to be ready", func(t *testing.T) {
		got, ok := joinBase(at(100), []time.Time{at(900), {}, at(400)})
		if !ok || !got.Equal(at(400)) {
			t.Fatalf("got %v %v, want +400ms", got, ok)
		}
	})
	t.Run("or for the call itself when it is the later one", func(t *testing.T) {
		got, ok := joinBase(at(500), []time.Time{at(400)})
		if !ok || !got.Equal(at(500)) {
			t.Fatalf("got %v %v, want +500ms", got, ok)
		}
	})
	t.Run("no ready source means no join time", func(t *testing.T) {
		if _, ok := joinBase(at(500), []time.Time{{}}); ok {
			t.Fatal("ok without a source")
		}
	})
}

func TestMOS(t *testing.T) {
	if m := mosEModel(20*time.Millisecond, 0); m < 4.3 || m > 4.5 {
		t.Errorf("clean G.711 MOS = %.2f, want about 4.4", m)
	}
	if a, b := mosEModel(20*time.Millisecond, 5), mosEModel(20*time.Millisecond, 0); a >= b {
		t.Errorf("5%% loss MOS %.2f not below clean %.2f", a, b)
	}
}

func TestKernelTimestamp(t *testing.T) {
	oob := make([]byte, 32)
	binary.NativeEndian.PutUint64(oob, 32)
	binary.NativeEndian.PutUint32(oob[8:], 1)   // SOL_SOCKET
	binary.NativeEndian.PutUint32(oob[12:], 35) // SCM_TIMESTAMPNS
	binary.NativeEndian.PutUint64(oob[16:], 12)
	binary.NativeEndian.PutUint64(oob[24:], 345)
	got, ok := kernelTimestamp(oob)
	if !isLinux64 {
		if ok {
			t.Fatal("timestamp parsed where it is not implemented")
		}
		return
	}
	if !ok || got != 12*1e9+345 {
		t.Fatalf("got %d %v, want 12000000345", got, ok)
	}
	if _, ok := kernelTimestamp(oob[:20]); ok {
		t.Fatal("a truncated control message parsed")
	}
}

func TestProcParsers(t *testing.T) {
	t.Run("UDP errors come from the Udp value line", func(t *testing.T) {
		snmp := "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 2 7 9 5 0\nUdpLite: InDatagrams\nUdpLite: 0\n"
		rb, ie, err := udpErrors([]byte(snmp))
		if err != nil || rb != 5 || ie != 7 {
			t.Fatalf("rcvbuf %d in %d err %v", rb, ie, err)
		}
	})
	t.Run("metrics keep sample lines and ignore the rest", func(t *testing.T) {
		text := "# HELP x y\n# TYPE webconf_rooms gauge\nwebconf_rooms 4\nwebconf_rtp_in_total{dir=\"in\"} 1.5e3 1700000000\nbroken line here\nnan_metric NaNx\n"
		m := parseMetrics(strings.NewReader(text))
		if len(m) != 2 || m["webconf_rooms"] != 4 || m[`webconf_rtp_in_total{dir="in"}`] != 1500 {
			t.Fatalf("got %v", m)
		}
	})
}

func TestFlags(t *testing.T) {
	var sink strings.Builder
	t.Run("an address off loopback is refused", func(t *testing.T) {
		for _, a := range []string{"192.0.2.1:5060", "10.0.0.1:5060", "[2001:db8::1]:5060"} {
			_, err := parseFlags([]string{"-addr", a, "-ruri-pattern", "000777%d"}, &sink)
			if !errors.Is(err, ErrNotLoopback) {
				t.Errorf("%s: err = %v, want ErrNotLoopback", a, err)
			}
		}
	})
	t.Run("loopback addresses are accepted", func(t *testing.T) {
		for _, a := range []string{"127.0.0.1:5060", "127.1.2.3:5070", "localhost:5060"} {
			if _, err := parseFlags([]string{"-addr", a, "-keypad"}, &sink); err != nil {
				t.Errorf("%s: %v", a, err)
			}
		}
	})
	t.Run("exactly one way into the room is required", func(t *testing.T) {
		_, err := parseFlags([]string{"-addr", "127.0.0.1:5060"}, &sink)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("none: %v", err)
		}
		_, err = parseFlags([]string{"-addr", "127.0.0.1:5060", "-keypad", "-app-param"}, &sink)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("two: %v", err)
		}
	})
	t.Run("the run is bounded", func(t *testing.T) {
		for _, args := range [][]string{{"-duration", "11m"}, {"-calls", "10001"}, {"-rate", "0"}} {
			_, err := parseFlags(append([]string{"-addr", "127.0.0.1:5060", "-keypad"}, args...), &sink)
			if !errors.Is(err, ErrUsage) {
				t.Errorf("%v: %v", args, err)
			}
		}
	})
	t.Run("only thresholds given on the command line are checked", func(t *testing.T) {
		c, err := parseFlags([]string{"-addr", "127.0.0.1:5060", "-keypad", "-max-loss=0", "-max-failed-calls", "0"}, &sink)
		if err != nil {
			t.Fatal(err)
		}
		r := &runner{cfg: c}
		checks := r.checks(&report{LossPct: 0.5, PacketsReceived: 10})
		if len(checks) != 2 {
			t.Fatalf("checks %+v, want max-loss and max-failed-calls", checks)
		}
		for _, ch := range checks {
			if want := ch.Name == "max-failed-calls"; ch.Pass != want {
				t.Errorf("%s pass=%v, want %v", ch.Name, ch.Pass, want)
			}
		}
	})
}

// testStream is a stream ready to send, outside any group.
func testStream(t *testing.T) *stream {
	t.Helper()
	rm := &room{phase: 0}
	c := &call{room: rm, done: make(chan struct{})}
	s := &stream{c: c, pt: g711.PCMU, dpt: 101, ssrc: 0x11223344, seq: 65534, ts: 1000, first: true}
	c.st = s
	return s
}

func TestSendStream(t *testing.T) {
	t.Run("keypad digits follow RFC 4733", func(t *testing.T) {
		s := testStream(t)
		job := &dtmfJob{digits: "7#", done: make(chan struct{})}
		s.jobs.Store(job)
		type pkt struct {
			pt     uint8
			marker bool
			ts     uint32
			code   uint8
			end    bool
			dur    uint16
		}
		var got []pkt
		for k := int64(1); k <= 30; k++ {
			n := s.nextPacket(k, 0)
			b := s.pkt[:n]
			p := pkt{pt: b[1] & 0x7f, marker: b[1]&0x80 != 0, ts: binary.BigEndian.Uint32(b[4:])}
			if p.pt == 101 {
				p.code, p.end, p.dur = b[12], b[13]&0x80 != 0, binary.BigEndian.Uint16(b[14:])
			}
			got = append(got, p)
		}
		// Digit 7: 5 updates + 3 ends at ts 1000, then 3 audio packets.
		for i := range 8 {
			p := got[i]
			if p.pt != 101 || p.ts != 1000 || p.code != 7 || p.marker != (i == 0) || p.end != (i >= 5) {
				t.Fatalf("packet %d = %+v", i, p)
			}
		}
		if got[4].dur != 800 || got[7].dur != 800 || got[0].dur != 160 {
			t.Fatalf("durations %d %d %d, want 160 ... 800, 800", got[0].dur, got[4].dur, got[7].dur)
		}
		for i := 8; i < 11; i++ {
			if got[i].pt != g711.PCMU {
				t.Fatalf("gap packet %d has pt %d", i, got[i].pt)
			}
		}
		if p := got[11]; p.pt != 101 || p.code != 11 || p.ts != 1000+11*160 || !p.marker {
			t.Fatalf("'#' starts with %+v", p)
		}
		select {
		case <-job.done:
		default:
			t.Fatal("job not done after both digits")
		}
		if seq := binary.BigEndian.Uint16(s.pkt[2:]); seq != 27 {
			t.Fatalf("last seq %d, want 65534+29 wrapped to 27", seq)
		}
	})
	t.Run("the marker member bursts once per period and records the time", func(t *testing.T) {
		s := testStream(t)
		s.src = toneFrame(450, toneAmp, g711.PCMU)
		s.marker = toneFrame(markerFreq, markerAmp, g711.PCMU)
		var pcm [frameSamples]int16
		var bursts []int64
		for k := int64(1); k <= 2*markerPeriod; k++ {
			s.nextPacket(k, k*1000)
			g711.DecodeUlaw(pcm[:], s.pkt[rtpHeader:])
			if newGoertzel(markerFreq).level(pcm[:]) > markerAmp/2 {
				bursts = append(bursts, k)
			}
		}
		want := []int64{50, 51, 100}
		if len(bursts) != 3 || bursts[0] != want[0] || bursts[1] != want[1] || bursts[2] != want[2] {
			t.Fatalf("burst frames %v, want %v", bursts, want)
		}
		if got := s.c.room.lastMarker.Load(); got != 100*1000 {
			t.Fatalf("lastMarker = %d, want the tick-100 time", got)
		}
	})
}

func TestReceiveCountsLossAndGaps(t *testing.T) {
	s := testStream(t)
	clk := newClock()
	clk.winFrom.Store(1)
	pkt := make([]byte, rtpHeader+frameSamples)
	pkt[0], pkt[1] = 0x80, 0
	var scratch [1500]int16
	base := clk.epoch.UnixNano()
	seqs := []uint16{65530, 65531, 65533, 65534, 65535, 0, 1, 1, 3}
	for i, q := range seqs {
		binary.BigEndian.PutUint16(pkt[2:], q)
		binary.BigEndian.PutUint32(pkt[4:], uint32(i)*160)
		s.receive(pkt, base+int64(i)*int64(frameDur), clk, scratch[:])
	}
	r := &s.rx
	if r.received != 9 || r.expected() != 10 || r.gaps != 2 {
		t.Fatalf("received %d expected %d gaps %d, want 9, 10, 2", r.received, r.expected(), r.gaps)
	}
	if r.ia.max != frameDur || r.jitter != 0 {
		t.Fatalf("inter-arrival max %v jitter %v, want 20 ms and 0", r.ia.max, r.jitter)
	}
}

func BenchmarkReceive(b *testing.B) {
	s := &stream{c: &call{room: &room{}}}
	s.rx.hasOnset = true
	s.rx.onset = newOnsetDetector(markerFreq, 0.3*markerAmp, 0.1*markerAmp)
	clk := newClock()
	clk.winFrom.Store(1)
	pkt := make([]byte, rtpHeader+frameSamples)
	pkt[0] = 0x80
	var scratch [1500]int16
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.BigEndian.PutUint16(pkt[2:], uint16(i))
		binary.BigEndian.PutUint32(pkt[4:], uint32(i)*160)
		s.receive(pkt, clk.epoch.UnixNano()+int64(i)*int64(frameDur), clk, scratch[:])
	}
}

func BenchmarkSendPacket(b *testing.B) {
	s := &stream{c: &call{room: &room{}}, pt: g711.PCMU}
	s.src = toneFrame(450, toneAmp, g711.PCMU)
	s.marker = toneFrame(markerFreq, markerAmp, g711.PCMU)
	b.ReportAllocs()
	for i := int64(0); b.Loop(); i++ {
		s.nextPacket(i, i)
	}
}
