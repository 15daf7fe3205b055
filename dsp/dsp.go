// Package dsp is the shared audio vocabulary of webconf: 8 kHz mono 16-bit
// frames of 20 ms. Nothing under dsp starts goroutines, reads the clock or
// touches a socket; the callers own time and I/O.
package dsp

import "time"

const (
	// SampleRate is the rate every room mixes at (G.711 narrowband).
	SampleRate = 8000
	// FrameDur is the mixing tick and the default packetisation time.
	FrameDur = 20 * time.Millisecond
	// FrameSamples is the number of samples in one FrameDur at SampleRate.
	FrameSamples = SampleRate / 50
)

// Frame is one tick of audio. A fixed-size array so that frames live inside
// their owners and the hot path never allocates one.
type Frame [FrameSamples]int16

// Clamp16 saturates a 32-bit sum to the int16 range.
func Clamp16(v int32) int16 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}
