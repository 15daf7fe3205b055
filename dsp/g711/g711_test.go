package g711

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	ref "github.com/zaf/g711"

	"webconf/dsp"
)

func TestTablesMatchReference(t *testing.T) {
	t.Run("every int16 encodes to the reference code", func(t *testing.T) {
		src := make([]int16, 1<<16)
		for i := range src {
			src[i] = int16(uint16(i))
		}
		u := make([]byte, len(src))
		a := make([]byte, len(src))
		EncodeUlaw(u, src)
		EncodeAlaw(a, src)
		for i, s := range src {
			if want := ref.EncodeUlawFrame(s); u[i] != want {
				t.Fatalf("μ-law encode(%d) = %#x, reference %#x", s, u[i], want)
			}
			if want := ref.EncodeAlawFrame(s); a[i] != want {
				t.Fatalf("A-law encode(%d) = %#x, reference %#x", s, a[i], want)
			}
		}
	})
	t.Run("every code decodes to the reference sample", func(t *testing.T) {
		src := make([]byte, 256)
		for i := range src {
			src[i] = byte(i)
		}
		u := make([]int16, 256)
		a := make([]int16, 256)
		DecodeUlaw(u, src)
		DecodeAlaw(a, src)
		for c := range 256 {
			if want := ref.DecodeUlawFrame(uint8(c)); u[c] != want {
				t.Fatalf("μ-law decode(%#x) = %d, reference %d", c, u[c], want)
			}
			if want := ref.DecodeAlawFrame(uint8(c)); a[c] != want {
				t.Fatalf("A-law decode(%#x) = %d, reference %d", c, a[c], want)
			}
		}
	})
}

func TestPayloadTypeSelectsCodec(t *testing.T) {
	src := []int16{-32768, -1000, -1, 0, 1, 1000, 32767}
	cases := []struct {
		name string
		pt   uint8
		enc  func([]byte, []int16)
		dec  func([]int16, []byte)
	}{
		{"payload type 0 is μ-law", PCMU, EncodeUlaw, DecodeUlaw},
		{"payload type 8 is A-law", PCMA, EncodeAlaw, DecodeAlaw},
		{"an unknown payload type falls back to μ-law", 96, EncodeUlaw, DecodeUlaw},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, want := make([]byte, len(src)), make([]byte, len(src))
			Encode(c.pt, got, src)
			c.enc(want, src)
			if string(got) != string(want) {
				t.Fatalf("Encode(%d) = %x, want %x", c.pt, got, want)
			}
			gs, ws := make([]int16, len(src)), make([]int16, len(src))
			Decode(c.pt, gs, got)
			c.dec(ws, want)
			if len(gs) != len(ws) || gs[0] != ws[0] || gs[len(gs)-1] != ws[len(ws)-1] {
				t.Fatalf("Decode(%d) = %v, want %v", c.pt, gs, ws)
			}
		})
	}
	// μ-law and A-law must differ, or the cases above prove nothing.
	u, a := make([]byte, len(src)), make([]byte, len(src))
	EncodeUlaw(u, src)
	EncodeAlaw(a, src)
	if string(u) == string(a) {
		t.Fatal("μ-law and A-law produced the same bytes")
	}
}

func readS16(t *testing.T, name string) []int16 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return s
}

func readBytes(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	return b
}

// soxPrequant reproduces how SoX 14.4 feeds its G.711 encoders, so that the
// golden files can be compared byte for byte. SoX first rounds each sample to
// 14 bits (μ-law) or 13 bits (A-law), half up, and its μ-law encoder takes the
// magnitude of a negative value by negation where the ITU-T G.191 reference
// (and zaf/g711, and so we) use the one's complement. Both choices only move
// decision thresholds by a fraction of a step (ours are G.191's): on this
// sweep about 7% of the μ-law and 13% of the A-law codes differ by one level.
// The returned sample is one that our encoder maps to the code SoX chose.
func soxPrequant(s int16, ulaw bool) int16 {
	v := int32(s)
	if !ulaw {
		return int16(min((v+4)>>3, 4095) << 3)
	}
	r := min((v+2)>>2, 8191)
	if r < 0 {
		// (^(4r-1))>>2 == -r: the one's complement of 4r-1 is SoX's negation.
		return int16(max(4*r-1, -32768))
	}
	return int16(r << 2)
}

// TestGoldenSoX compares against files made by an independent implementation
// (SoX, see testdata/gen.sh), so a bug shared with zaf/g711 would show here.
func TestGoldenSoX(t *testing.T) {
	pcm := readS16(t, "sweep.s16")
	if len(pcm) != 8000 {
		t.Fatalf("sweep.s16 has %d samples, want 8000", len(pcm))
	}
	var lo, hi int16
	for _, s := range pcm {
		lo, hi = min(lo, s), max(hi, s)
	}
	if lo > -32000 || hi < 32000 {
		t.Fatalf("sweep spans only [%d, %d]; it must exercise the top segments", lo, hi)
	}
	for _, c := range []struct {
		name, codes, decoded string
		ulaw                 bool
		enc                  func([]byte, []int16)
		dec                  func([]int16, []byte)
	}{
		{"μ-law", "sweep.ulaw", "sweep.ulaw.s16", true, EncodeUlaw, DecodeUlaw},
		{"A-law", "sweep.alaw", "sweep.alaw.s16", false, EncodeAlaw, DecodeAlaw},
	} {
		want := readBytes(t, c.codes)
		if len(want) != len(pcm) {
			t.Fatalf("%s has %d codes, want %d", c.codes, len(want), len(pcm))
		}
		t.Run(c.name+" encoding matches SoX once its pre-rounding is modelled", func(t *testing.T) {
			pre := make([]int16, len(pcm))
			for i, s := range pcm {
				pre[i] = soxPrequant(s, c.ulaw)
			}
			got := make([]byte, len(pcm))
			c.enc(got, pre)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("sample %d (%d): got code %#x, SoX %#x", i, pcm[i], got[i], want[i])
				}
			}
		})
		t.Run(c.name+" encoding differs from SoX at most by one level, at decision thresholds", func(t *testing.T) {
			got := make([]byte, len(pcm))
			c.enc(got, pcm)
			ours, theirs := make([]int16, len(pcm)), make([]int16, len(pcm))
			c.dec(ours, got)
			c.dec(theirs, want)
			same := 0
			for i, s := range pcm {
				if got[i] == want[i] {
					same++
					continue
				}
				if between(c.dec, ours[i], theirs[i]) {
					t.Fatalf("sample %d (%d): our level %d and SoX's %d are not adjacent", i, s, ours[i], theirs[i])
				}
			}
			if same < len(pcm)*8/10 {
				t.Fatalf("only %d of %d codes equal SoX's", same, len(pcm))
			}
		})
		t.Run(c.name+" decoding matches SoX sample for sample", func(t *testing.T) {
			want16 := readS16(t, c.decoded)
			got := make([]int16, len(want))
			c.dec(got, want)
			for i := range want16 {
				if got[i] != want16[i] {
					t.Fatalf("code %d (%#x): got %d, SoX %d", i, want[i], got[i], want16[i])
				}
			}
		})
	}
}

// between reports whether the codec has a level strictly between a and b.
func between(dec func([]int16, []byte), a, b int16) bool {
	lo, hi := min(a, b), max(a, b)
	var one [1]int16
	for c := range 256 {
		dec(one[:], []byte{byte(c)})
		if one[0] > lo && one[0] < hi {
			return true
		}
	}
	return false
}

// FuzzRoundTrip checks that decoding is a fixed point of encode∘decode: a
// decoded sample is exactly representable, so re-encoding it must give back
// the same code (except μ-law's two zeros, 0x7f and 0xff, which both decode
// to 0 and re-encode as 0xff).
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0x00, 0x7f, 0x80, 0xff, 0x55, 0xd5})
	f.Fuzz(func(t *testing.T, codes []byte) {
		for _, pt := range []uint8{PCMU, PCMA} {
			pcm := make([]int16, len(codes))
			Decode(pt, pcm, codes)
			re := make([]byte, len(codes))
			Encode(pt, re, pcm)
			for i := range codes {
				if re[i] != codes[i] && !(pt == PCMU && codes[i] == 0x7f && re[i] == 0xff) {
					t.Fatalf("pt %d: code %#x decodes to %d, which re-encodes as %#x", pt, codes[i], pcm[i], re[i])
				}
			}
		}
	})
}

func benchFrame() *dsp.Frame {
	var f dsp.Frame
	for i := range f {
		f[i] = int16(i*409 - 32768)
	}
	return &f
}

func BenchmarkEncodeUlawFrame(b *testing.B) {
	f := benchFrame()
	var out [dsp.FrameSamples]byte
	b.ReportAllocs()
	for b.Loop() {
		EncodeUlaw(out[:], f[:])
	}
}

func BenchmarkEncodeAlawFrame(b *testing.B) {
	f := benchFrame()
	var out [dsp.FrameSamples]byte
	b.ReportAllocs()
	for b.Loop() {
		EncodeAlaw(out[:], f[:])
	}
}

func BenchmarkDecodeUlawFrame(b *testing.B) {
	var in [dsp.FrameSamples]byte
	for i := range in {
		in[i] = byte(i)
	}
	var out dsp.Frame
	b.ReportAllocs()
	for b.Loop() {
		DecodeUlaw(out[:], in[:])
	}
}

func BenchmarkDecodeAlawFrame(b *testing.B) {
	var in [dsp.FrameSamples]byte
	for i := range in {
		in[i] = byte(i)
	}
	var out dsp.Frame
	b.ReportAllocs()
	for b.Loop() {
		DecodeAlaw(out[:], in[:])
	}
}

// BenchmarkEncodeUlawReference is the per-sample bit-loop cost the tables avoid.
func BenchmarkEncodeUlawReference(b *testing.B) {
	f := benchFrame()
	var out [dsp.FrameSamples]byte
	b.ReportAllocs()
	for b.Loop() {
		for i, s := range f {
			out[i] = ref.EncodeUlawFrame(s)
		}
	}
}
