package dtmf

import (
	"math"

	"webconf/dsp"
)

// DTMF frequencies (ITU-T Q.23): a key sends one row and one column tone.
var (
	rowHz = [4]float64{697, 770, 852, 941}
	colHz = [4]float64{1209, 1336, 1477, 1633}
)

// keypad[row][col] is the key sent by that pair of tones.
var keypad = [4][4]byte{
	{'1', '2', '3', 'A'},
	{'4', '5', '6', 'B'},
	{'7', '8', '9', 'C'},
	{'*', '0', '#', 'D'},
}

// Detector tuning. The values follow the ITU-T Q.24 envelope loosely: accept
// tones from about 25 ms and -30 dBm0 per tone, tolerate 8 dB of twist.
const (
	// winLen is the Goertzel window: 20 ms. Its frequency resolution
	// (8000/160 = 50 Hz bins) separates the closest tones, 697 and 770 Hz,
	// by 13 dB; a shorter window would blur adjacent rows.
	winLen = dsp.FrameSamples
	// hop is the step between windows: 10 ms. Half-overlapping windows let
	// a 40 ms tone, however it is aligned with the frames, fill at least
	// three consecutive windows by 60% or more.
	hop = winLen / 2
	// hitsToReport is how many consecutive windows must agree on a key
	// before it is reported: 3 windows span 40 ms, and a tone must last
	// about 25 ms to satisfy them, which rejects clicks and speech blips.
	hitsToReport = 3
	// missesToRelease is how many consecutive windows without the held key
	// end a press: a 10 ms dropout inside a long press spoils at most two
	// windows and is not a new press, while a 40 ms pause spoils four.
	missesToRelease = 3
	// minAmp is the lowest accepted amplitude of each tone, about -32 dBm0
	// (G.711 full scale is +3.17 dBm0).
	minAmp = 250
	// maxTwistDB bounds the row/column level difference either way.
	maxTwistDB = 8
	// maxNeighbourRatio is how much power another tone of the same group
	// may have relative to the strongest one (-10 dB). A real key leaks at
	// most -13 dB into the adjacent row; speech spreads over many bins.
	maxNeighbourRatio = 0.1
	// minToneShare is the fraction of the window's energy that the two
	// tones must carry. Keys carry almost all of it; white noise puts about
	// 4/winLen into any two bins, speech a few percent.
	minToneShare = 0.6
	// queueLen bounds the digits waiting to be returned when one call to
	// Process is given more audio than one report per call can carry.
	queueLen = 4
)

var (
	rowCoef, colCoef [4]float64
	minPower         = sq(minAmp * winLen / 2.0)
	twist            = math.Pow(10, -maxTwistDB/10.0)
)

func init() {
	for i := range 4 {
		rowCoef[i] = 2 * math.Cos(2*math.Pi*rowHz[i]/dsp.SampleRate)
		colCoef[i] = 2 * math.Cos(2*math.Pi*colHz[i]/dsp.SampleRate)
	}
}

func sq(v float64) float64 { return v * v }

// Detector finds DTMF key presses in 8 kHz audio with the Goertzel algorithm:
// eight single-bin DFTs over 20 ms windows taken every 10 ms. A window names
// a key only if the strongest row and column tones are loud enough, within
// the twist limit, clearly above the other tones of their group, and carry
// most of the window's energy; a key is reported once it has been named by
// three consecutive windows, and not again until three windows without it.
//
// A Detector keeps 10 ms of history and is not safe for concurrent use.
type Detector struct {
	win   [winLen]int16 // win[:hop] is the previous hop, win[hop:hop+n] the current
	n     int
	cand  byte // key named by the latest windows, 0 for none
	run   int  // consecutive windows naming cand
	held  byte // key already reported and not yet released
	miss  int  // consecutive windows not naming held
	queue [queueLen]byte
	nq    int
}

// NewDetector returns a detector with no history.
func NewDetector() *Detector { return &Detector{} }

// Reset forgets history and any press in progress.
func (d *Detector) Reset() { *d = Detector{} }

// Process consumes the next samples of the stream (normally one 20 ms
// frame; any length works) and returns a key if a new press was recognised.
// At most one key is returned per call; a second one recognised in the same
// call is returned by the next call.
func (d *Detector) Process(samples []int16) (digit byte, ok bool) {
	for len(samples) > 0 {
		k := copy(d.win[hop+d.n:], samples)
		d.n += k
		samples = samples[k:]
		if d.n == hop {
			d.step(classify(&d.win))
			copy(d.win[:hop], d.win[hop:])
			d.n = 0
		}
	}
	if d.nq == 0 {
		return 0, false
	}
	digit = d.queue[0]
	copy(d.queue[:], d.queue[1:d.nq])
	d.nq--
	return digit, true
}

// step advances the press state machine by one window's verdict.
func (d *Detector) step(key byte) {
	if key == d.cand {
		d.run++
	} else {
		d.cand, d.run = key, 1
	}
	if d.held != 0 {
		if key == d.held {
			d.miss = 0
		} else if d.miss++; d.miss >= missesToRelease {
			d.held = 0
		}
	}
	if key != 0 && d.held == 0 && d.run >= hitsToReport {
		d.held, d.miss = key, 0
		if d.nq == queueLen {
			copy(d.queue[:], d.queue[1:])
			d.nq--
		}
		d.queue[d.nq] = key
		d.nq++
	}
}

// classify returns the key whose tones dominate the window, or 0.
func classify(w *[winLen]int16) byte {
	var rs1, rs2, cs1, cs2 [4]float64
	var energy float64
	for _, s := range w {
		x := float64(s)
		energy += x * x
		for i := range 4 {
			r := x + rowCoef[i]*rs1[i] - rs2[i]
			rs2[i], rs1[i] = rs1[i], r
			c := x + colCoef[i]*cs1[i] - cs2[i]
			cs2[i], cs1[i] = cs1[i], c
		}
	}
	var rp, cp [4]float64
	row, col := 0, 0
	for i := range 4 {
		rp[i] = rs1[i]*rs1[i] + rs2[i]*rs2[i] - rowCoef[i]*rs1[i]*rs2[i]
		cp[i] = cs1[i]*cs1[i] + cs2[i]*cs2[i] - colCoef[i]*cs1[i]*cs2[i]
		if rp[i] > rp[row] {
			row = i
		}
		if cp[i] > cp[col] {
			col = i
		}
	}
	pr, pc := rp[row], cp[col]
	if pr < minPower || pc < minPower {
		return 0
	}
	if pc < pr*twist || pr < pc*twist {
		return 0
	}
	for i := range 4 {
		if (i != row && rp[i] > pr*maxNeighbourRatio) || (i != col && cp[i] > pc*maxNeighbourRatio) {
			return 0
		}
	}
	// For a sinusoid of amplitude A, power = (A·N/2)², so 2·power/N is the
	// tone's energy in the window (N·A²/2).
	if 2*(pr+pc)/winLen < minToneShare*energy {
		return 0
	}
	return keypad[row][col]
}

// freqs returns the row and column frequencies of a key.
func freqs(digit byte) (row, col int64, ok bool) {
	if digit >= 'a' && digit <= 'd' {
		digit -= 'a' - 'A'
	}
	for r := range 4 {
		for c := range 4 {
			if keypad[r][c] == digit {
				return int64(rowHz[r]), int64(colHz[c]), true
			}
		}
	}
	return 0, 0, false
}

// Generate writes the dual tone of digit, each component of the given
// amplitude, for stream samples offset..offset+len(dst)-1. The phase is a
// function of the absolute sample index, so consecutive calls with advancing
// offsets produce one continuous tone. The sum saturates at full scale; an
// unknown digit writes silence.
func Generate(dst []int16, digit byte, offset int, amplitude int16) {
	fr, fc, ok := freqs(digit)
	if !ok {
		clear(dst)
		return
	}
	a := float64(amplitude)
	for i := range dst {
		n := int64(offset + i)
		// The frequencies are whole hertz, so phase in cycles is exactly
		// (f·n mod 8000)/8000: no drift however large the offset.
		pr := float64(mod(fr*n, dsp.SampleRate)) / dsp.SampleRate
		pc := float64(mod(fc*n, dsp.SampleRate)) / dsp.SampleRate
		v := a*math.Sin(2*math.Pi*pr) + a*math.Sin(2*math.Pi*pc)
		dst[i] = dsp.Clamp16(int32(math.Round(v)))
	}
}

func mod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}
