// Package mix is the mix-minus ("N-1") kernel of a conference room: every
// contributing member's frame is summed once into 32-bit accumulators, and
// each member then hears the total minus its own contribution, saturated to
// 16 bits exactly once (spec/performance.md 3.1).
//
// Two rules make it correct:
//
//   - Never clamp before subtracting. If the sum were clamped first, a loud
//     member's own voice would leak back: with A=B=C=+32767, clamp(A+B+C)-A
//     is 0, where A must hear clamp(B+C) = 32767.
//   - Never divide by the number of members. Scaling by 1/N would drop
//     everybody's volume each time someone joins (even a silent listener) and
//     pump it back up when they leave; talkers rarely overlap, so plain
//     saturation clips only on genuine double-talk, as telephone bridges do.
//
// A Bus is a plain value with no locks and no clock: the room's tick goroutine
// owns it, calls Reset, Add for each unmuted member, then Full or Minus per
// listener. Nothing here allocates.
package mix

import "webconf/dsp"

// Bus accumulates one tick of a room. The zero value is an empty bus.
type Bus struct {
	// int32 holds the sum of up to 65536 full-scale frames without
	// overflow, far beyond any room size.
	sum [dsp.FrameSamples]int32
	n   int
}

// Reset empties the bus for the next tick.
func (b *Bus) Reset() {
	b.sum = [dsp.FrameSamples]int32{}
	b.n = 0
}

// Add contributes f to this tick. Muted or silent members are simply not
// added (and then listen with Full).
func (b *Bus) Add(f *dsp.Frame) {
	for i, s := range f {
		b.sum[i] += int32(s)
	}
	b.n++
}

// Len returns how many frames were added since the last Reset.
func (b *Bus) Len() int { return b.n }

// Full writes the whole mix, clamped once. It is what a member who did not
// contribute this tick (muted, silent, or a listener) hears.
func (b *Bus) Full(out *dsp.Frame) {
	for i, v := range b.sum {
		out[i] = dsp.Clamp16(v)
	}
}

// Minus writes the mix without own, the frame that member added this tick,
// clamping only after the subtraction so that clipping never leaks a
// member's own voice back to it.
func (b *Bus) Minus(own *dsp.Frame, out *dsp.Frame) {
	for i, v := range b.sum {
		out[i] = dsp.Clamp16(v - int32(own[i]))
	}
}

// Energy returns the mean power of f: the sum of squared samples divided by
// FrameSamples. A sine of amplitude A has mean power A*A/2, so for example
// a -40 dBFS sine (A≈328) gives about 53,700; full-scale square waves give
// the maximum, 32768² ≈ 1.07e9.
func Energy(f *dsp.Frame) int64 {
	var e int64
	for _, s := range f {
		e += int64(s) * int64(s)
	}
	return e / dsp.FrameSamples
}

// IsSilent reports whether f's mean power is at or below threshold (in the
// units of Energy), so a threshold of 0 means only digital silence.
func IsSilent(f *dsp.Frame, threshold int64) bool {
	return Energy(f) <= threshold
}
