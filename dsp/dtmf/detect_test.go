package dtmf

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"webconf/dsp"
)

const keys = "123A456B789C*0#D"

// signal is a test stream under construction.
type signal struct{ s []int16 }

func (g *signal) silence(ms int) { g.s = append(g.s, make([]int16, ms*8)...) }

func (g *signal) tone(digit byte, ms int, amp int16) {
	buf := make([]int16, ms*8)
	Generate(buf, digit, len(g.s), amp)
	g.s = append(g.s, buf...)
}

// noise adds Gaussian white noise of standard deviation sigma.
func (g *signal) noise(r *rand.Rand, sigma float64) {
	for i, v := range g.s {
		g.s[i] = dsp.Clamp16(int32(v) + int32(math.Round(r.NormFloat64()*sigma)))
	}
}

// detect runs a fresh detector over the stream in 20 ms frames.
func detect(samples []int16) string {
	d := NewDetector()
	var got []byte
	for len(samples) > 0 {
		n := min(dsp.FrameSamples, len(samples))
		if k, ok := d.Process(samples[:n]); ok {
			got = append(got, k)
		}
		samples = samples[n:]
	}
	// Flush the last partial hop.
	for range 3 {
		if k, ok := d.Process(make([]int16, dsp.FrameSamples)); ok {
			got = append(got, k)
		}
	}
	return string(got)
}

// snrSigma is the noise deviation giving snrDB against two tones of amp.
func snrSigma(amp float64, snrDB float64) float64 {
	signalPower := amp * amp // two tones of power amp²/2 each
	return math.Sqrt(signalPower / math.Pow(10, snrDB/10))
}

func TestDetectorAllKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(4733, 1))
	for _, amp := range []int16{1000, 8000} {
		for _, noisy := range []bool{false, true} {
			name := fmt.Sprintf("all 16 keys at amplitude %d are each reported once", amp)
			if noisy {
				name = fmt.Sprintf("all 16 keys at amplitude %d in white noise at 15 dB SNR are each reported once", amp)
			}
			t.Run(name, func(t *testing.T) {
				for _, k := range []byte(keys) {
					var g signal
					g.silence(13 + r.IntN(20)) // misalign the tone with the frames
					g.tone(k, 100, amp)
					g.silence(100)
					if noisy {
						g.noise(r, snrSigma(float64(amp), 15))
					}
					if got := detect(g.s); got != string(k) {
						t.Fatalf("key %q: detected %q", k, got)
					}
				}
			})
		}
	}
}

func TestDetectorTiming(t *testing.T) {
	t.Run("a 40 ms tone is detected whatever its alignment with the frames", func(t *testing.T) {
		for off := 0; off < dsp.FrameSamples; off += 7 {
			var g signal
			g.s = make([]int16, off)
			g.tone('5', 40, 2000)
			g.silence(60)
			if got := detect(g.s); got != "5" {
				t.Fatalf("offset %d: detected %q", off, got)
			}
		}
	})
	t.Run("a 15 ms blip is not a key press", func(t *testing.T) {
		for off := 0; off < dsp.FrameSamples; off += 7 {
			var g signal
			g.s = make([]int16, off)
			g.tone('5', 15, 8000)
			g.silence(60)
			if got := detect(g.s); got != "" {
				t.Fatalf("offset %d: detected %q", off, got)
			}
		}
	})
	t.Run("one long noisy press is reported once", func(t *testing.T) {
		var g signal
		g.silence(30)
		g.tone('#', 3000, 1000)
		g.silence(100)
		g.noise(rand.New(rand.NewPCG(1, 1)), snrSigma(1000, 15))
		if got := detect(g.s); got != "#" {
			t.Fatalf("detected %q", got)
		}
	})
	t.Run("a 10 ms dropout inside a press does not split it", func(t *testing.T) {
		for off := 0; off < dsp.FrameSamples; off += 10 {
			var g signal
			g.s = make([]int16, off)
			g.tone('2', 100, 3000)
			g.silence(10)
			g.tone('2', 100, 3000)
			g.silence(60)
			if got := detect(g.s); got != "2" {
				t.Fatalf("offset %d: detected %q", off, got)
			}
		}
	})
	t.Run("the same key pressed twice with a 40 ms pause is reported twice", func(t *testing.T) {
		for off := 0; off < dsp.FrameSamples; off += 10 {
			var g signal
			g.s = make([]int16, off)
			g.tone('7', 80, 3000)
			g.silence(40)
			g.tone('7', 80, 3000)
			g.silence(50)
			if got := detect(g.s); got != "77" {
				t.Fatalf("offset %d: detected %q", off, got)
			}
		}
	})
	t.Run("a PIN dialled at typical speed comes out in order", func(t *testing.T) {
		var g signal
		for _, k := range []byte("1234#") {
			g.tone(k, 70, 1500)
			g.silence(70)
		}
		g.noise(rand.New(rand.NewPCG(2, 2)), snrSigma(1500, 20))
		if got := detect(g.s); got != "1234#" {
			t.Fatalf("detected %q", got)
		}
	})
	t.Run("a key followed by another without a pause reports both", func(t *testing.T) {
		var g signal
		g.tone('1', 100, 3000)
		g.tone('9', 100, 3000)
		g.silence(50)
		if got := detect(g.s); got != "19" {
			t.Fatalf("detected %q", got)
		}
	})
	t.Run("one call with a whole second of audio still returns every key", func(t *testing.T) {
		var g signal
		for _, k := range []byte("*0#") {
			g.tone(k, 60, 3000)
			g.silence(60)
		}
		d := NewDetector()
		var got []byte
		if k, ok := d.Process(g.s); ok {
			got = append(got, k)
		}
		for range 5 {
			if k, ok := d.Process(nil); ok {
				got = append(got, k)
			}
		}
		if string(got) != "*0#" {
			t.Fatalf("detected %q", got)
		}
	})
}

func TestDetectorRejects(t *testing.T) {
	t.Run("ten seconds of white noise at several levels give no key", func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 7))
		for _, sigma := range []float64{100, 1000, 8000} {
			var g signal
			g.silence(10000)
			g.noise(r, sigma)
			if got := detect(g.s); got != "" {
				t.Fatalf("sigma %v: detected %q", sigma, got)
			}
		}
	})
	t.Run("ten seconds of synthetic speech give no key", func(t *testing.T) {
		for _, seed := range []uint64{1, 2, 3} {
			s := speechLike(rand.New(rand.NewPCG(seed, 9)), 10*dsp.SampleRate)
			if got := detect(s); got != "" {
				t.Fatalf("seed %d: detected %q", seed, got)
			}
		}
	})
	t.Run("a single tone is not a key", func(t *testing.T) {
		var g signal
		g.s = make([]int16, 8000)
		for i := range g.s {
			g.s[i] = int16(8000 * math.Sin(2*math.Pi*697*float64(i)/dsp.SampleRate))
		}
		if got := detect(g.s); got != "" {
			t.Fatalf("detected %q", got)
		}
	})
	t.Run("three simultaneous tones are not a key", func(t *testing.T) {
		buf := make([]int16, 1600)
		for i := range buf {
			x := float64(i) / dsp.SampleRate
			buf[i] = int16(3000 * (math.Sin(2*math.Pi*697*x) + math.Sin(2*math.Pi*852*x) + math.Sin(2*math.Pi*1209*x)))
		}
		if got := detect(buf); got != "" {
			t.Fatalf("detected %q", got)
		}
	})
	t.Run("tones below the minimum level are ignored", func(t *testing.T) {
		var g signal
		g.tone('3', 200, 100)
		if got := detect(g.s); got != "" {
			t.Fatalf("detected %q", got)
		}
	})
	t.Run("excessive twist is rejected", func(t *testing.T) {
		var g signal
		buf := make([]int16, 1600)
		for i := range buf {
			x := float64(i) / dsp.SampleRate
			buf[i] = int16(6000*math.Sin(2*math.Pi*770*x) + 1000*math.Sin(2*math.Pi*1336*x)) // 15.6 dB
		}
		g.s = buf
		if got := detect(g.s); got != "" {
			t.Fatalf("detected %q", got)
		}
	})
}

// speechLike returns a voiced-speech stand-in: harmonics of a wandering
// 120-200 Hz fundamental, rolling off at 6 dB/octave with two moving formant
// bumps, under a 3-6 Hz syllabic envelope, with breath noise.
func speechLike(r *rand.Rand, n int) []int16 {
	out := make([]int16, n)
	var phase [30]float64
	f0 := 150.0
	env, envPhase, envRate := 0.0, 0.0, 4.0
	f1, f2 := 500.0, 1500.0
	for i := range out {
		if i%dsp.FrameSamples == 0 {
			f0 = min(200, max(120, f0+r.NormFloat64()*4))
			f1 = min(900, max(300, f1+r.NormFloat64()*30))
			f2 = min(2500, max(900, f2+r.NormFloat64()*60))
			envRate = min(6, max(3, envRate+r.NormFloat64()*0.2))
		}
		envPhase += envRate / dsp.SampleRate
		env = math.Max(0, math.Sin(2*math.Pi*envPhase))
		var v float64
		for k := range phase {
			h := float64(k+1) * f0
			if h > 3400 {
				break
			}
			phase[k] += h / dsp.SampleRate
			gain := 1/float64(k+1) + 2*formant(h, f1, 120) + formant(h, f2, 200)
			v += gain * math.Sin(2*math.Pi*phase[k])
		}
		out[i] = dsp.Clamp16(int32(6000*env*v + r.NormFloat64()*200))
	}
	return out
}

func formant(f, centre, bw float64) float64 {
	d := (f - centre) / bw
	return 1 / (1 + d*d)
}

func TestGenerateIsPhaseContinuous(t *testing.T) {
	whole := make([]int16, 800)
	Generate(whole, '8', 0, 5000)
	parts := make([]int16, 800)
	for off := 0; off < 800; off += 160 {
		Generate(parts[off:off+160], '8', off, 5000)
	}
	for i := range whole {
		if whole[i] != parts[i] {
			t.Fatalf("sample %d: %d in one call, %d in frames", i, whole[i], parts[i])
		}
	}
	var peak int16
	for _, v := range whole {
		peak = max(peak, v)
	}
	if peak < 9000 || peak > 10000 {
		t.Fatalf("peak %d, want close to twice the amplitude", peak)
	}
	silent := []int16{1, 2, 3}
	Generate(silent, 'X', 0, 5000)
	if silent[0] != 0 || silent[2] != 0 {
		t.Fatalf("unknown digit wrote %v", silent)
	}
}

func TestProcessDoesNotAllocate(t *testing.T) {
	var g signal
	g.tone('6', 200, 3000)
	d := NewDetector()
	i := 0
	allocs := testing.AllocsPerRun(100, func() {
		off := (i * dsp.FrameSamples) % (len(g.s) - dsp.FrameSamples)
		d.Process(g.s[off : off+dsp.FrameSamples])
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Process", allocs)
	}
}

func BenchmarkDetectorFrame(b *testing.B) {
	var g signal
	g.tone('6', 20, 3000)
	d := NewDetector()
	b.ReportAllocs()
	for b.Loop() {
		d.Process(g.s)
	}
}
