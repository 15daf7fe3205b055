// Package tone generates sine tones for prompts and test phones and measures
// how loud a given tone is in a block of audio, which is how end-to-end
// tests tell whose tone a participant hears.
package tone

import (
	"math"

	"webconf/dsp"
)

// Osc is a phase-continuous sine oscillator at dsp.SampleRate.
// It is not safe for concurrent use.
type Osc struct {
	step  float64 // phase increment per sample, in cycles
	phase float64 // current phase, in cycles, in [0, 1)
	amp   float64
}

// NewOsc returns an oscillator of frequency freqHz and peak amplitude
// amplitude (in int16 units, so 32767 is full scale), starting at phase 0.
func NewOsc(freqHz float64, amplitude float64) *Osc {
	return &Osc{step: freqHz / dsp.SampleRate, amp: amplitude}
}

// next returns the next sample value and advances the phase. Keeping the
// phase in cycles and wrapping it each sample keeps math.Sin's argument
// small, so the tone stays clean after hours of samples.
func (o *Osc) next() float64 {
	v := o.amp * math.Sin(2*math.Pi*o.phase)
	o.phase += o.step
	o.phase -= math.Floor(o.phase)
	return v
}

// Fill overwrites dst with the next len(dst) samples of the tone.
func (o *Osc) Fill(dst []int16) {
	for i := range dst {
		dst[i] = dsp.Clamp16(int32(math.Round(o.next())))
	}
}

// Add mixes the next len(dst) samples of the tone into dst, saturating, so
// that several oscillators can build a multi-tone signal.
func (o *Osc) Add(dst []int16) {
	for i := range dst {
		dst[i] = dsp.Clamp16(int32(dst[i]) + int32(math.Round(o.next())))
	}
}

// Level estimates the amplitude, in int16 units, of the sinusoid at freqHz in
// samples: a sine of amplitude A at that frequency reads about A (to within a
// percent or so once the window holds a few cycles), and silence reads 0.
//
// It evaluates one DFT bin at exactly freqHz with the Goertzel recurrence
// over a Hann window. The window length N = len(samples) sets the
// resolution: the Hann main lobe spans ±2·SampleRate/N Hz, so a tone closer
// than that to freqHz leaks into the reading, while tones farther away leak
// less than 1%. With N = 160 (20 ms) that is ±100 Hz, enough for tones
// 150 Hz apart; use 100 ms or more (±20 Hz) for closer tones or a lower
// noise floor. Very low frequencies (under 2·SampleRate/N) also read high,
// because the bin then overlaps its own negative-frequency image.
func Level(samples []int16, freqHz float64) float64 {
	n := len(samples)
	if n == 0 {
		return 0
	}
	coef := 2 * math.Cos(2*math.Pi*freqHz/dsp.SampleRate)
	var s1, s2, wsum float64
	for i, v := range samples {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*(float64(i)+0.5)/float64(n))
		wsum += w
		s := w*float64(v) + coef*s1 - s2
		s2, s1 = s1, s
	}
	power := s1*s1 + s2*s2 - coef*s1*s2
	// A windowed sine of amplitude A gives |X| = A·Σw/2.
	return 2 * math.Sqrt(max(power, 0)) / wsum
}
