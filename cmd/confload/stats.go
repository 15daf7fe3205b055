package main

import (
	"math"
	"slices"
	"time"
)

// This file holds the measurement arithmetic as pure functions and small
// value types, so that it can be tested without sockets or clocks.

// jitterStep is one step of the RFC 3550 (section 6.4.1, appendix A.8)
// interarrival jitter estimator: J += (|D| - J) / 16, where D is the
// difference in relative transit time of two consecutive packets, in RTP
// timestamp units. The gain of 1/16 is fixed by the RFC so that reports from
// different implementations are comparable.
func jitterStep(j float64, d int32) float64 {
	ad := math.Abs(float64(d))
	return j + (ad-j)/16
}

// transit returns the relative transit time of a packet (arrival - RTP
// timestamp, both in timestamp units) with uint32 wrap-around, as RFC 3550
// A.8 computes it; only differences of transits are meaningful.
func transit(arrivalUnits uint32, rtpTS uint32) uint32 { return arrivalUnits - rtpTS }

// tsUnits converts a time offset to 8 kHz RTP timestamp units (G.711,
// RFC 3551 section 4.5.14), truncated to 32 bits like the RTP clock.
func tsUnits(d time.Duration) uint32 { return uint32(int64(d) * 8000 / int64(time.Second)) }

// percentile returns the nearest-rank p-quantile (0 <= p <= 1) of sorted
// values: the smallest value v such that at least p of the values are <= v.
// p = 0 gives the minimum; an empty slice gives 0.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// sortedDurations returns a sorted copy.
func sortedDurations(v []time.Duration) []time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s
}

// Histogram geometry for inter-arrival times: 0.1 ms buckets up to 100 ms
// (five packet times), which resolves the 1 ms timer granularity of a Go
// sender (performance.md 3.7) and still costs only 4 KB per stream.
const (
	histBucket = 100 * time.Microsecond
	histSize   = 1000
)

// hist is a fixed-bucket histogram of durations with an overflow count and
// an exact maximum. Recording never allocates.
type hist struct {
	counts [histSize]uint32
	over   uint32
	n      uint64
	max    time.Duration
}

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.n++
	h.max = max(h.max, d)
	i := int(d / histBucket)
	if i >= histSize {
		h.over++
		return
	}
	h.counts[i]++
}

// merge adds o's counts into h.
func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.over += o.over
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the nearest-rank p-quantile to bucket resolution: the
// upper edge of the bucket holding the rank (never more than the exact
// maximum), or the maximum when the rank falls in the overflow.
func (h *hist) quantile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += uint64(c)
		if seen >= rank {
			return min(time.Duration(i+1)*histBucket, h.max)
		}
	}
	return h.max
}

// devQuantile returns the nearest-rank p-quantile of |x - center| over the
// recorded values x, to bucket resolution: how far from the nominal packet
// spacing the given share of inter-arrival times stays. The distribution is
// folded around center's bucket; overflow counts as the largest deviation.
func (h *hist) devQuantile(center time.Duration, p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	c := int(center / histBucket)
	var seen uint64
	for d := 0; d < histSize; d++ {
		if i := c + d; i < histSize {
			seen += uint64(h.counts[i])
		}
		if i := c - d; d > 0 && i >= 0 {
			seen += uint64(h.counts[i])
		}
		if seen >= rank {
			return time.Duration(d+1) * histBucket
		}
	}
	return h.max - center
}

// markerFreq is the marker burst's frequency. 2 kHz sits well above the
// talker tones (350-1450 Hz) and the server's 1 kHz join beep, and is a
// multiple of 50 Hz, so a 160-sample frame holds whole cycles.
const markerFreq = 2000.0

// goertzel holds the coefficient of one Goertzel filter at a frequency.
type goertzel struct{ coef float64 }

func newGoertzel(freqHz float64) goertzel {
	return goertzel{coef: 2 * math.Cos(2*math.Pi*freqHz/8000)}
}

// level returns the amplitude (int16 units) of the sinusoid at the filter's
// frequency in samples, over a rectangular window: exact for a tone with a
// whole number of cycles in the window (all our tones are multiples of
// 50 Hz, so 160 samples hold whole cycles), and proportional to the share of
// the window a burst covers, which is what onset detection wants. It costs
// one multiply-add per sample and no allocation.
func (g goertzel) level(samples []int16) float64 {
	n := len(samples)
	if n == 0 {
		return 0
	}
	var s1, s2 float64
	for _, v := range samples {
		s := float64(v) + g.coef*s1 - s2
		s2, s1 = s1, s
	}
	power := s1*s1 + s2*s2 - g.coef*s1*s2
	return 2 * math.Sqrt(max(power, 0)) / float64(n)
}

// onsetDetector finds the start of each marker burst in a stream of frames:
// it fires on the first frame whose level at the marker frequency reaches
// hi, then stays quiet until the level has dropped below lo again
// (hysteresis), so one burst spanning several frames fires once.
type onsetDetector struct {
	g      goertzel
	hi, lo float64
	inside bool
}

func newOnsetDetector(freqHz, hi, lo float64) onsetDetector {
	return onsetDetector{g: newGoertzel(freqHz), hi: hi, lo: lo}
}

// feed processes one frame and reports whether a burst starts in it.
func (d *onsetDetector) feed(frame []int16) bool {
	l := d.g.level(frame)
	if d.inside {
		if l < d.lo {
			d.inside = false
		}
		return false
	}
	if l >= d.hi {
		d.inside = true
		return true
	}
	return false
}

// toneRun reports a steady tone: it counts consecutive frames whose level at
// one frequency reaches a threshold, and fires when the run reaches need
// frames. Requiring a run tells a talker's steady test tone from a spoken
// prompt, whose harmonics do not hold one 50 Hz bin for long.
type toneRun struct {
	g         goertzel
	threshold float64
	need      int
	run       int
}

// feed returns true on the frame that completes the run.
func (r *toneRun) feed(frame []int16) bool {
	if r.g.level(frame) >= r.threshold {
		r.run++
		return r.run == r.need
	}
	r.run = 0
	return false
}

// joinBase is the earliest moment a keypad caller could hear its room: once
// it has itself finished typing (own) and at least one other sound source
// of the room (a talker or the marker member) has too. others holds the
// sources' finish times, zero for those that never finished. ok is false
// when no other source finished.
func joinBase(own time.Time, others []time.Time) (time.Time, bool) {
	var first time.Time
	for _, t := range others {
		if !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if first.IsZero() {
		return time.Time{}, false
	}
	if own.After(first) {
		return own, true
	}
	return first, true
}

// mosEModel estimates the MOS of a G.711 call from the ITU-T G.107 E-model
// simplified for G.711 with random loss: R = 93.2 - Id(delay) - Ie,eff(loss),
// with Ie = 0 and Bpl = 25.1 for G.711 with PLC (G.113 appendix I), and the
// one-way delay term Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3). It is
// an estimate for comparing runs, not a listening test.
func mosEModel(delay time.Duration, lossPct float64) float64 {
	d := float64(delay) / float64(time.Millisecond)
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	const bpl = 25.1
	ie := 95 * lossPct / (lossPct + bpl)
	r := 93.2 - id - ie
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}
