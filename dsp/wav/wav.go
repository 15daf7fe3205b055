// Package wav reads and writes the RIFF/WAVE files SEMS uses for prompts:
// uncompressed 16-bit mono PCM. Decode accepts 8 kHz (the conference rate)
// and 16 kHz (common for recorded prompts) and always returns 8 kHz audio, so
// operators can point the config at the same files SEMS used without
// converting them; everything else is refused with a message that says what
// the file actually is, because a prompt that silently plays as noise is far
// harder to diagnose than a start-up error.
//
// The parser is written for untrusted input: it never allocates more than the
// file implies and never panics (see FuzzDecode).
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"webconf/dsp"
)

// ErrFormat is wrapped by every error Decode returns: the bytes are not a WAV
// file webconf can play.
var ErrFormat = errors.New("unsupported WAV format")

// Format tags from the Microsoft RIFF specification (mmreg.h).
const (
	formatPCM        = 0x0001
	formatFloat      = 0x0003
	formatALaw       = 0x0006
	formatMuLaw      = 0x0007
	formatExtensible = 0xFFFE
)

// pcmSubformatTail is bytes 2..15 of KSDATAFORMAT_SUBTYPE_PCM
// ({00000001-0000-0010-8000-00aa00389b71}); the first two bytes carry the
// format tag that WAVE_FORMAT_EXTENSIBLE wraps.
var pcmSubformatTail = [14]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("wav: %s: %w", fmt.Sprintf(format, args...), ErrFormat)
}

// pcmFormat is what Decode needs from the fmt chunk once validated.
type pcmFormat struct {
	rate int
}

// Decode parses a RIFF/WAVE file holding 16-bit mono PCM at 8000 or 16000 Hz
// and returns its samples at 8000 Hz (16 kHz input is low-pass filtered and
// decimated). Chunks other than fmt and data (LIST, fact, cue, ...) are
// skipped, honouring RIFF's pad byte after odd-sized chunks; fmt must come
// before data. Every failure wraps ErrFormat.
func Decode(data []byte) ([]int16, error) {
	if len(data) < 12 {
		return nil, formatErr("not a RIFF file (%d bytes)", len(data))
	}
	if string(data[0:4]) != "RIFF" {
		if string(data[0:4]) == "RIFX" {
			return nil, formatErr("big-endian RIFX file")
		}
		return nil, formatErr("not a RIFF file")
	}
	if string(data[8:12]) != "WAVE" {
		return nil, formatErr("RIFF file of type %q, not WAVE", data[8:12])
	}
	// The RIFF size field is deliberately not trusted: streaming writers
	// leave it 0 or 0xFFFFFFFF. The chunk walk is bounded by len(data).
	var (
		fmtSeen bool
		pf      pcmFormat
	)
	off := 12
	for {
		if len(data)-off < 8 {
			if !fmtSeen {
				return nil, formatErr("no fmt chunk")
			}
			return nil, formatErr("no data chunk")
		}
		id := string(data[off : off+4])
		size := uint64(binary.LittleEndian.Uint32(data[off+4 : off+8]))
		body := data[off+8:]
		switch id {
		case "fmt ":
			if fmtSeen {
				return nil, formatErr("duplicate fmt chunk")
			}
			if size > uint64(len(body)) {
				return nil, formatErr("truncated fmt chunk")
			}
			var err error
			pf, err = parseFmt(body[:size])
			if err != nil {
				return nil, err
			}
			fmtSeen = true
		case "data":
			if !fmtSeen {
				return nil, formatErr("data chunk before fmt chunk")
			}
			if size > uint64(len(body)) {
				return nil, formatErr("truncated data chunk (%d of %d bytes)", len(body), size)
			}
			if size%2 != 0 {
				return nil, formatErr("data chunk of %d bytes is not whole 16-bit samples", size)
			}
			samples := make([]int16, size/2)
			for i := range samples {
				samples[i] = int16(binary.LittleEndian.Uint16(body[2*i:]))
			}
			if pf.rate == 2*dsp.SampleRate {
				samples = decimate2(samples)
			}
			return samples, nil
		}
		// Skip this chunk and its pad byte (RIFF aligns chunks to 2 bytes).
		// uint64 arithmetic: size+pad cannot overflow and is compared with
		// what is left before it is used as an offset.
		skip := size + size&1
		if skip > uint64(len(body)) {
			if size <= uint64(len(body)) {
				// Only the final pad byte is missing: the file simply ends
				// here, which the check at the top of the loop reports.
				off = len(data)
				continue
			}
			return nil, formatErr("truncated %q chunk", id)
		}
		off += 8 + int(skip)
	}
}

// parseFmt validates a fmt chunk body (WAVEFORMATEX, possibly
// WAVEFORMATEXTENSIBLE) and reports the first property that webconf cannot
// play, in the order an operator would check them.
func parseFmt(b []byte) (pcmFormat, error) {
	if len(b) < 16 {
		return pcmFormat{}, formatErr("fmt chunk of %d bytes is too short", len(b))
	}
	tag := binary.LittleEndian.Uint16(b[0:2])
	channels := binary.LittleEndian.Uint16(b[2:4])
	rate := binary.LittleEndian.Uint32(b[4:8])
	blockAlign := binary.LittleEndian.Uint16(b[12:14])
	bits := binary.LittleEndian.Uint16(b[14:16])

	if tag == formatExtensible {
		// WAVEFORMATEXTENSIBLE: cbSize(2) validBits(2) channelMask(4) subFormat(16).
		if len(b) < 40 {
			return pcmFormat{}, formatErr("WAVE_FORMAT_EXTENSIBLE fmt chunk of %d bytes is too short", len(b))
		}
		sub := b[24:40]
		subTag := binary.LittleEndian.Uint16(sub[0:2])
		if [14]byte(sub[2:16]) != pcmSubformatTail {
			return pcmFormat{}, formatErr("WAVE_FORMAT_EXTENSIBLE with a non-standard subformat GUID")
		}
		if subTag != formatPCM {
			return pcmFormat{}, formatErr("WAVE_FORMAT_EXTENSIBLE with %s, not PCM", formatName(subTag))
		}
		if valid := binary.LittleEndian.Uint16(b[18:20]); valid != 0 && valid != bits {
			return pcmFormat{}, formatErr("%d valid bits in %d-bit containers", valid, bits)
		}
		tag = formatPCM
	}
	if tag != formatPCM {
		return pcmFormat{}, formatErr("%s, not PCM", formatName(tag))
	}
	switch channels {
	case 1:
	case 2:
		return pcmFormat{}, formatErr("stereo, need mono")
	default:
		return pcmFormat{}, formatErr("%d channels, need mono", channels)
	}
	if bits != 16 {
		return pcmFormat{}, formatErr("%d-bit, need 16-bit", bits)
	}
	if blockAlign != 2 {
		return pcmFormat{}, formatErr("block align %d, need 2 for 16-bit mono", blockAlign)
	}
	if rate != dsp.SampleRate && rate != 2*dsp.SampleRate {
		return pcmFormat{}, formatErr("%d Hz, need %d or %d Hz", rate, dsp.SampleRate, 2*dsp.SampleRate)
	}
	return pcmFormat{rate: int(rate)}, nil
}

func formatName(tag uint16) string {
	switch tag {
	case formatFloat:
		return "IEEE float (format 3)"
	case formatALaw:
		return "A-law (format 6)"
	case formatMuLaw:
		return "µ-law (format 7)"
	default:
		return fmt.Sprintf("format 0x%04x", tag)
	}
}

// Decimation filter for 16 kHz → 8 kHz.
//
// Halving the rate folds everything above the new Nyquist frequency (4 kHz)
// back into the band (f → 8000−f), so a low-pass must remove it first. Design:
// windowed-sinc FIR, Kaiser window (Kaiser & Schafer's formulas):
//   - stop band from 4000 Hz with ≥ 60 dB attenuation: β = 0.1102·(60−8.7) ≈ 5.65;
//   - pass band to 3400 Hz (the telephony band G.711 carries anyway), so the
//     transition is 600 Hz = 0.0375 of fs; taps N ≈ (A−8)/(2.285·Δω) + 1 ≈ 98,
//     rounded to 99 for a type-I (odd, symmetric, linear-phase) filter;
//   - cut-off in the middle of the transition, 3700 Hz.
//
// The filter is applied centred (non-causal, zeros outside the signal), so the
// output is time-aligned with the input and has ceil(n/2) samples; only every
// second output is computed.
const (
	decimTaps   = 99
	decimCutoff = 3700.0 / 16000.0 // cycles per input sample
	decimBeta   = 5.65
)

var decimKernel = designDecimator()

func designDecimator() [decimTaps]float64 {
	var h [decimTaps]float64
	mid := (decimTaps - 1) / 2
	i0b := besselI0(decimBeta)
	var sum float64
	for i := range h {
		n := float64(i - mid)
		sinc := 2 * decimCutoff
		if n != 0 {
			sinc = math.Sin(2*math.Pi*decimCutoff*n) / (math.Pi * n)
		}
		r := n / float64(mid)
		w := besselI0(decimBeta*math.Sqrt(1-r*r)) / i0b
		h[i] = sinc * w
		sum += h[i]
	}
	for i := range h { // unity gain at DC
		h[i] /= sum
	}
	return h
}

// besselI0 is the zeroth-order modified Bessel function of the first kind,
// by its power series (converges fast for the β used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 50; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

// decimate2 low-pass filters 16 kHz samples and keeps every second one.
func decimate2(in []int16) []int16 {
	mid := (decimTaps - 1) / 2
	out := make([]int16, (len(in)+1)/2)
	for m := range out {
		c := 2 * m // input index aligned with output m
		lo, hi := c-mid, c+mid
		k0 := 0
		if lo < 0 {
			k0 = -lo
			lo = 0
		}
		if hi > len(in)-1 {
			hi = len(in) - 1
		}
		var acc float64
		for i, k := lo, k0; i <= hi; i, k = i+1, k+1 {
			acc += decimKernel[k] * float64(in[i])
		}
		// Σ|h| ≈ 2.1, so |acc| < 70000 fits int32; overshoot of a
		// full-scale input is saturated rather than wrapped.
		out[m] = dsp.Clamp16(int32(math.Round(acc)))
	}
	return out
}

// Encode returns a canonical 44-byte-header WAV file of 16-bit mono PCM at
// rate Hz holding samples. It is the inverse of Decode for 8000 Hz.
func Encode(samples []int16, rate int) []byte {
	dataLen := 2 * len(samples)
	b := make([]byte, 44+dataLen)
	copy(b[0:4], "RIFF")
	binary.LittleEndian.PutUint32(b[4:8], uint32(36+dataLen))
	copy(b[8:12], "WAVE")
	copy(b[12:16], "fmt ")
	binary.LittleEndian.PutUint32(b[16:20], 16)
	binary.LittleEndian.PutUint16(b[20:22], formatPCM)
	binary.LittleEndian.PutUint16(b[22:24], 1)              // channels
	binary.LittleEndian.PutUint32(b[24:28], uint32(rate))   // sample rate
	binary.LittleEndian.PutUint32(b[28:32], uint32(2*rate)) // byte rate
	binary.LittleEndian.PutUint16(b[32:34], 2)              // block align
	binary.LittleEndian.PutUint16(b[34:36], 16)             // bits per sample
	copy(b[36:40], "data")
	binary.LittleEndian.PutUint32(b[40:44], uint32(dataLen))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}
