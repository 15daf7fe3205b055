package wav

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// fmtChunk builds a WAVEFORMATEX body.
func fmtChunk(tag, channels uint16, rate uint32, bits uint16) []byte {
	b := make([]byte, 16)
	align := channels * bits / 8
	binary.LittleEndian.PutUint16(b[0:], tag)
	binary.LittleEndian.PutUint16(b[2:], channels)
	binary.LittleEndian.PutUint32(b[4:], rate)
	binary.LittleEndian.PutUint32(b[8:], rate*uint32(align))
	binary.LittleEndian.PutUint16(b[12:], align)
	binary.LittleEndian.PutUint16(b[14:], bits)
	return b
}

// extensibleChunk builds a WAVEFORMATEXTENSIBLE body wrapping subTag.
func extensibleChunk(subTag uint16, rate uint32) []byte {
	b := fmtChunk(formatExtensible, 1, rate, 16)
	ext := make([]byte, 24)
	binary.LittleEndian.PutUint16(ext[0:], 22) // cbSize
	binary.LittleEndian.PutUint16(ext[2:], 16) // valid bits
	binary.LittleEndian.PutUint32(ext[4:], 4)  // SPEAKER_FRONT_CENTER
	binary.LittleEndian.PutUint16(ext[8:], subTag)
	copy(ext[10:], pcmSubformatTail[:])
	return append(b, ext...)
}

func chunk(id string, body []byte) []byte {
	b := make([]byte, 8, 8+len(body)+1)
	copy(b, id)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(body)))
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0) // RIFF pad byte
	}
	return b
}

func riff(chunks ...[]byte) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVE")
	for _, c := range chunks {
		b = append(b, c...)
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func pcmBytes(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

func tone(freq, rate float64, n int, amp float64) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/rate)))
	}
	return s
}

// toneLevel measures the amplitude of freq in s (8 kHz) by correlating with a
// quadrature pair, ignoring the first and last 200 samples (filter edges).
func toneLevel(s []int16, freq float64) float64 {
	s = s[200 : len(s)-200]
	var re, im float64
	for i, v := range s {
		ph := 2 * math.Pi * freq * float64(i) / 8000
		re += float64(v) * math.Cos(ph)
		im += float64(v) * math.Sin(ph)
	}
	return 2 * math.Hypot(re, im) / float64(len(s))
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Run("8 kHz samples come back unchanged", func(t *testing.T) {
		in := []int16{0, 1, -1, 32767, -32768, 1234, -4321}
		out, err := Decode(Encode(in, 8000))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(in, out) {
			t.Fatalf("got %v, want %v", out, in)
		}
	})
	t.Run("an empty data chunk decodes to no samples", func(t *testing.T) {
		out, err := Decode(Encode(nil, 8000))
		if err != nil || len(out) != 0 {
			t.Fatalf("got %v, %v", out, err)
		}
	})
	t.Run("the header is the canonical 44-byte PCM header", func(t *testing.T) {
		b := Encode([]int16{1, 2}, 16000)
		if len(b) != 48 || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
			t.Fatalf("bad header % x", b[:44])
		}
		if r := binary.LittleEndian.Uint32(b[24:]); r != 16000 {
			t.Fatalf("rate %d", r)
		}
		if br := binary.LittleEndian.Uint32(b[28:]); br != 32000 {
			t.Fatalf("byte rate %d", br)
		}
		if sz := binary.LittleEndian.Uint32(b[4:]); sz != 40 {
			t.Fatalf("RIFF size %d", sz)
		}
	})
}

func TestDecimation(t *testing.T) {
	const n = 16000 // one second at 16 kHz
	decode16k := func(t *testing.T, s []int16) []int16 {
		t.Helper()
		out, err := Decode(Encode(s, 16000))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != (len(s)+1)/2 {
			t.Fatalf("got %d samples from %d, want %d", len(out), len(s), (len(s)+1)/2)
		}
		return out
	}
	t.Run("a 1 kHz tone keeps its level", func(t *testing.T) {
		out := decode16k(t, tone(1000, 16000, n, 10000))
		if l := toneLevel(out, 1000); math.Abs(20*math.Log10(l/10000)) > 0.1 {
			t.Fatalf("1 kHz level %.1f, want 10000 ±0.1 dB", l)
		}
	})
	t.Run("a 3 kHz tone in the telephony band keeps its level", func(t *testing.T) {
		out := decode16k(t, tone(3000, 16000, n, 10000))
		if l := toneLevel(out, 3000); math.Abs(20*math.Log10(l/10000)) > 0.1 {
			t.Fatalf("3 kHz level %.1f, want 10000 ±0.1 dB", l)
		}
	})
	for _, tc := range []struct {
		name        string
		freq, alias float64
	}{
		{"a 5 kHz tone is removed rather than folded to 3 kHz", 5000, 3000},
		{"a 7 kHz tone is removed rather than folded to 1 kHz", 7000, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := decode16k(t, tone(tc.freq, 16000, n, 30000))
			var sq float64
			for _, v := range out[200 : len(out)-200] {
				sq += float64(v) * float64(v)
			}
			rms := math.Sqrt(sq / float64(len(out)-400))
			// Input RMS is 30000/√2 ≈ 21213; 60 dB down is ≈ 21.
			if rms > 30 {
				t.Fatalf("residual RMS %.1f, want < 30 (≥ 57 dB attenuation)", rms)
			}
			if l := toneLevel(out, tc.alias); l > 40 {
				t.Fatalf("alias at %.0f Hz has level %.1f", tc.alias, l)
			}
		})
	}
	t.Run("the output is time-aligned with the input", func(t *testing.T) {
		in := make([]int16, 1000)
		in[400] = 20000
		out := decode16k(t, in)
		peak := 0
		for i := range out {
			if abs(out[i]) > abs(out[peak]) {
				peak = i
			}
		}
		if peak != 200 {
			t.Fatalf("impulse at 16k sample 400 peaks at 8k sample %d, want 200", peak)
		}
	})
	t.Run("a full-scale square wave saturates instead of wrapping", func(t *testing.T) {
		in := make([]int16, 2000)
		for i := range in {
			in[i] = 32767
			if (i/200)%2 == 1 {
				in[i] = -32768
			}
		}
		out := decode16k(t, in)
		// Mid-plateau samples must stay at the rail's sign.
		for p := 0; p < 10; p++ {
			v := out[p*100+50]
			if (p%2 == 0) != (v > 30000) || (p%2 == 1) != (v < -30000) {
				t.Fatalf("plateau %d sample %d", p, v)
			}
		}
	})
	t.Run("a single 16 kHz sample decodes to one sample", func(t *testing.T) {
		decode16k(t, []int16{100})
	})
}

func abs(v int16) int32 {
	if v < 0 {
		return -int32(v)
	}
	return int32(v)
}

func TestDecodeChunkWalk(t *testing.T) {
	pcm := []int16{10, -20, 30, -40}
	cases := []struct {
		name string
		file []byte
	}{
		{"a LIST chunk before fmt is skipped", riff(chunk("LIST", []byte("INFOISFT\x04\x00\x00\x00sox\x00")), chunk("fmt ", fmtChunk(1, 1, 8000, 16)), chunk("data", pcmBytes(pcm)))},
		{"an odd-sized chunk and its pad byte are skipped", riff(chunk("fmt ", fmtChunk(1, 1, 8000, 16)), chunk("junk", []byte{1, 2, 3}), chunk("data", pcmBytes(pcm)))},
		{"a fact chunk and trailing chunks are ignored", riff(chunk("fmt ", fmtChunk(1, 1, 8000, 16)), chunk("fact", []byte{4, 0, 0, 0}), chunk("data", pcmBytes(pcm)), chunk("LIST", []byte("INFO")))},
		{"an 18-byte fmt chunk with cbSize 0 is accepted", riff(chunk("fmt ", append(fmtChunk(1, 1, 8000, 16), 0, 0)), chunk("data", pcmBytes(pcm)))},
		{"WAVE_FORMAT_EXTENSIBLE with PCM subformat is accepted", riff(chunk("fmt ", extensibleChunk(formatPCM, 8000)), chunk("data", pcmBytes(pcm)))},
		{"a RIFF size of 0xFFFFFFFF from a streaming writer is tolerated", func() []byte {
			b := riff(chunk("fmt ", fmtChunk(1, 1, 8000, 16)), chunk("data", pcmBytes(pcm)))
			binary.LittleEndian.PutUint32(b[4:], 0xFFFFFFFF)
			return b
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Decode(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(out, pcm) {
				t.Fatalf("got %v, want %v", out, pcm)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	data := chunk("data", pcmBytes([]int16{1, 2, 3, 4}))
	good := chunk("fmt ", fmtChunk(1, 1, 8000, 16))
	badGUID := extensibleChunk(formatPCM, 8000)
	badGUID[30] ^= 0xFF
	badValid := extensibleChunk(formatPCM, 8000)
	binary.LittleEndian.PutUint16(badValid[18:], 12)
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"an empty input is not a RIFF file", "not a RIFF file", nil},
		{"an MP3 is not a RIFF file", "not a RIFF file", []byte("ID3\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"a big-endian RIFX file is refused", "RIFX", append([]byte("RIFX\x00\x00\x00\x24WAVE"), make([]byte, 32)...)},
		{"a RIFF file that is not WAVE is refused", `"AVI "`, []byte("RIFF\x04\x00\x00\x00AVI ")},
		{"stereo is refused", "stereo", riff(chunk("fmt ", fmtChunk(1, 2, 8000, 16)), data)},
		{"six channels are refused", "6 channels", riff(chunk("fmt ", fmtChunk(1, 6, 8000, 16)), data)},
		{"8-bit is refused", "8-bit", riff(chunk("fmt ", fmtChunk(1, 1, 8000, 8)), data)},
		{"24-bit is refused", "24-bit", riff(chunk("fmt ", fmtChunk(1, 1, 8000, 24)), data)},
		{"22050 Hz is refused", "22050 Hz", riff(chunk("fmt ", fmtChunk(1, 1, 22050, 16)), data)},
		{"44100 Hz is refused", "44100 Hz", riff(chunk("fmt ", fmtChunk(1, 1, 44100, 16)), data)},
		{"IEEE float is refused", "IEEE float", riff(chunk("fmt ", fmtChunk(3, 1, 8000, 32)), data)},
		{"A-law is refused", "A-law", riff(chunk("fmt ", fmtChunk(6, 1, 8000, 8)), data)},
		{"µ-law is refused", "µ-law", riff(chunk("fmt ", fmtChunk(7, 1, 8000, 8)), data)},
		{"GSM 6.10 is refused", "format 0x0031", riff(chunk("fmt ", fmtChunk(0x31, 1, 8000, 0)), data)},
		{"extensible float is refused", "IEEE float", riff(chunk("fmt ", extensibleChunk(formatFloat, 8000)), data)},
		{"extensible with an unknown GUID is refused", "GUID", riff(chunk("fmt ", badGUID), data)},
		{"extensible with 12 valid bits is refused", "12 valid bits", riff(chunk("fmt ", badValid), data)},
		{"a short extensible fmt is refused", "EXTENSIBLE fmt chunk of 16 bytes", riff(chunk("fmt ", fmtChunk(formatExtensible, 1, 8000, 16)), data)},
		{"a wrong block align is refused", "block align", func() []byte {
			f := fmtChunk(1, 1, 8000, 16)
			binary.LittleEndian.PutUint16(f[12:], 4)
			return riff(chunk("fmt ", f), data)
		}()},
		{"a short fmt chunk is refused", "too short", riff(chunk("fmt ", make([]byte, 14)), data)},
		{"a truncated fmt chunk is refused", "truncated fmt chunk", riff(chunk("fmt ", fmtChunk(1, 1, 8000, 16))[:20])},
		{"a duplicate fmt chunk is refused", "duplicate fmt", riff(good, good, data)},
		{"data before fmt is refused", "data chunk before fmt", riff(data, good)},
		{"a missing fmt chunk is reported", "no fmt chunk", riff(chunk("LIST", []byte("INFO")))},
		{"a missing data chunk is reported", "no data chunk", riff(good)},
		{"a data chunk longer than the file is truncated", "truncated data chunk", riff(good, data)[:len(riff(good, data))-2]},
		{"an odd data size is not whole samples", "not whole 16-bit samples", riff(good, chunk("data", []byte{1, 2, 3}))},
		{"a truncated LIST chunk is reported", `truncated "LIST" chunk`, riff(good, chunk("LIST", make([]byte, 40)))[:12+24+20]},
		{"a huge chunk size does not allocate or overflow", "truncated", riff(good, []byte("data\xff\xff\xff\xff\x00\x00"))},
		{"a huge skipped chunk size does not overflow", "truncated", riff(good, []byte("junk\xff\xff\xff\xff\x00\x00"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Decode(tc.file)
			if err == nil {
				t.Fatalf("decoded %d samples, want an error", len(out))
			}
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode([]int16{1, -1, 300}, 8000))
	f.Add(Encode(tone(1000, 16000, 300, 8000), 16000))
	f.Add(riff(chunk("LIST", []byte("INFOx")), chunk("fmt ", extensibleChunk(formatPCM, 16000)), chunk("data", []byte{1, 2, 3, 4})))
	f.Add(riff(chunk("fmt ", fmtChunk(1, 2, 44100, 8))))
	f.Add([]byte("RIFF"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			if out != nil {
				t.Fatalf("error with %d samples", len(out))
			}
			return
		}
		// Bounded: never more samples than the file has PCM bytes for.
		if 2*len(out) > len(b)-44 {
			t.Fatalf("%d samples from %d bytes", len(out), len(b))
		}
	})
}

func BenchmarkDecode16k(b *testing.B) {
	file := Encode(tone(440, 16000, 16000, 10000), 16000)
	b.ReportAllocs()
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		if _, err := Decode(file); err != nil {
			b.Fatal(err)
		}
	}
}
