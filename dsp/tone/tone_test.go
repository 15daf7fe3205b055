package tone

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"webconf/dsp"
)

func within(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestOscillator(t *testing.T) {
	t.Run("Fill in frames equals one long Fill", func(t *testing.T) {
		a, b := NewOsc(440, 10000), NewOsc(440, 10000)
		whole := make([]int16, 1000)
		a.Fill(whole)
		parts := make([]int16, 1000)
		for off := 0; off < 1000; off += 160 {
			b.Fill(parts[off:min(off+160, 1000)])
		}
		for i := range whole {
			if whole[i] != parts[i] {
				t.Fatalf("sample %d: %d vs %d", i, whole[i], parts[i])
			}
		}
	})
	t.Run("Fill produces a sine of the requested amplitude and frequency", func(t *testing.T) {
		buf := make([]int16, 8000)
		NewOsc(1000, 12000).Fill(buf)
		var peak int16
		for i, v := range buf {
			peak = max(peak, v)
			want := 12000 * math.Sin(2*math.Pi*1000*float64(i)/dsp.SampleRate)
			if !within(float64(v), want, 1) {
				t.Fatalf("sample %d = %d, want %.1f", i, v, want)
			}
		}
		if peak != 12000 {
			t.Fatalf("peak %d", peak)
		}
	})
	t.Run("Add saturates instead of wrapping", func(t *testing.T) {
		buf := make([]int16, 160)
		NewOsc(250, 30000).Fill(buf)
		NewOsc(250, 30000).Add(buf)
		for i, v := range buf {
			// 2·30000·sin never wraps: the sum keeps the sine's sign.
			want := math.Sin(2 * math.Pi * 250 * float64(i) / dsp.SampleRate)
			if (want > 0.01 && v <= 0) || (want < -0.01 && v >= 0) {
				t.Fatalf("sample %d = %d wrapped", i, v)
			}
		}
		if buf[8] != 32767 { // a quarter period of 250 Hz: both at +30000
			t.Fatalf("sample at the crest = %d", buf[8])
		}
	})
}

func TestLevel(t *testing.T) {
	t.Run("single tones read their amplitude", func(t *testing.T) {
		for _, f := range []float64{300, 440, 1000, 2750, 3400} {
			for _, amp := range []float64{500, 8000, 30000} {
				for _, n := range []int{160, 800} {
					buf := make([]int16, n)
					NewOsc(f, amp).Fill(buf)
					if got := Level(buf, f); !within(got, amp, amp*0.02+2) {
						t.Fatalf("%v Hz amplitude %v over %d samples: level %.1f", f, amp, n, got)
					}
				}
			}
		}
	})
	t.Run("silence reads zero and an empty block reads zero", func(t *testing.T) {
		if l := Level(make([]int16, 160), 1000); l != 0 {
			t.Fatalf("silence %v", l)
		}
		if l := Level(nil, 1000); l != 0 {
			t.Fatalf("empty %v", l)
		}
	})
	for _, spacing := range []float64{150, 200} {
		for _, count := range []int{3, 5, 10} {
			name := fmt.Sprintf("in a mix of %d tones %v Hz apart each present tone reads its amplitude and the absent one under 5%%", count, spacing)
			t.Run(name, func(t *testing.T) {
				// Grid 400, 400+spacing, ...; the tone at index count/2 is left out.
				const amp = 4000
				freqs := make([]float64, count+1)
				for i := range freqs {
					freqs[i] = 400 + float64(i)*spacing
				}
				absent := freqs[count/2]
				for _, n := range []int{160, 240, 320, 400, 800} {
					buf := make([]int16, n)
					r := rand.New(rand.NewPCG(uint64(count), uint64(n)))
					for _, f := range freqs {
						if f != absent {
							o := NewOsc(f, amp)
							o.phase = r.Float64() // arbitrary start phases
							o.Add(buf)
						}
					}
					for _, f := range freqs {
						got := Level(buf, f)
						if f == absent {
							if got >= 0.05*amp {
								t.Fatalf("N=%d: absent %v Hz reads %.1f", n, f, got)
							}
						} else if !within(got, amp, 0.05*amp) {
							t.Fatalf("N=%d: present %v Hz reads %.1f, want %d", n, f, got, amp)
						}
					}
				}
			})
		}
	}
	t.Run("a tone within the main lobe is not resolved by a short window", func(t *testing.T) {
		// Documents the resolution limit: 50 Hz away with N=160 leaks heavily,
		// while N=800 separates them.
		short := make([]int16, 160)
		NewOsc(1000, 8000).Fill(short)
		if l := Level(short, 1050); l < 0.2*8000 {
			t.Fatalf("N=160 reads %.1f at 50 Hz off; expected heavy leakage", l)
		}
		long := make([]int16, 800)
		NewOsc(1000, 8000).Fill(long)
		if l := Level(long, 1050); l > 0.05*8000 {
			t.Fatalf("N=800 reads %.1f at 50 Hz off", l)
		}
	})
}

func BenchmarkOscFillFrame(b *testing.B) {
	o := NewOsc(440, 8000)
	var f dsp.Frame
	b.ReportAllocs()
	for b.Loop() {
		o.Fill(f[:])
	}
}

func BenchmarkLevelFrame(b *testing.B) {
	var f dsp.Frame
	NewOsc(440, 8000).Fill(f[:])
	b.ReportAllocs()
	for b.Loop() {
		Level(f[:], 440)
	}
}
