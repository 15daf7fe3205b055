package sipapp

import (
	"fmt"
	"os"

	"webconf/dsp"
	"webconf/dsp/tone"
	"webconf/dsp/wav"
)

// ringbackSpec is what a room hears while a dialled callee rings: a tone
// cadence, or a recording played in a loop.
type ringbackSpec struct {
	freqs   []float64
	on, off int // samples
	loop    []int16
}

// ringbackAmp is each tone's amplitude: -14 dBFS, so that the two US tones
// together stay well clear of clipping (SEMS uses 15000 each).
const ringbackAmp = 6500

func parseRingback(v string) (*ringbackSpec, error) {
	switch v {
	case "", "us":
		// North American ringback: 440+480 Hz, 2 s on, 4 s off.
		return &ringbackSpec{freqs: []float64{440, 480}, on: 2 * dsp.SampleRate, off: 4 * dsp.SampleRate}, nil
	case "eu":
		// ETSI ringing tone: 425 Hz, 1 s on, 4 s off.
		return &ringbackSpec{freqs: []float64{425}, on: dsp.SampleRate, off: 4 * dsp.SampleRate}, nil
	case "off":
		return nil, nil
	}
	data, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("sipapp: ringback: %w", err)
	}
	samples, err := wav.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("sipapp: ringback %s: %w", v, err)
	}
	if len(samples) == 0 {
		return nil, fmt.Errorf("sipapp: ringback %s: no audio", v)
	}
	return &ringbackSpec{loop: samples}, nil
}

// ringback is a mixer input that plays the spec; one per ringing call.
type ringback struct {
	spec *ringbackSpec
	oscs []*tone.Osc
	pos  int
}

func (s *ringbackSpec) source() *ringback {
	r := &ringback{spec: s}
	for _, f := range s.freqs {
		r.oscs = append(r.oscs, tone.NewOsc(f, ringbackAmp))
	}
	return r
}

// ReadFrame implements mixer.Input.
func (r *ringback) ReadFrame(f *dsp.Frame) bool {
	s := r.spec
	if s.loop != nil {
		for i := range f {
			f[i] = s.loop[r.pos]
			r.pos = (r.pos + 1) % len(s.loop)
		}
		return true
	}
	period := s.on + s.off
	clear(f[:])
	if r.pos%period < s.on {
		for _, o := range r.oscs {
			o.Add(f[:])
		}
	}
	r.pos = (r.pos + dsp.FrameSamples) % period
	return true
}
