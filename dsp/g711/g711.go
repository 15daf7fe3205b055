// Package g711 converts between 16-bit linear PCM and G.711 μ-law (PCMU) and
// A-law (PCMA), the two codecs every SIP phone offers (RFC 3551 section 4.5.14).
//
// The conversions are table lookups built once at init from
// github.com/zaf/g711's per-sample functions, so our output is bit-identical
// to that reference (the tests check all 65536 inputs), while the per-frame
// cost is one load per sample instead of a bit loop: the encoders run on
// every outgoing frame of every participant (spec/performance.md 3.6).
//
// All functions write into caller-supplied buffers and never allocate. They
// panic, like copy into a too-short array would, if dst is shorter than src.
package g711

import ref "github.com/zaf/g711"

// RTP static payload types (RFC 3551 section 6, table 4).
const (
	PCMU uint8 = 0
	PCMA uint8 = 8
)

// Encoding keeps only the top 14 bits of a sample: μ-law quantises 14-bit
// magnitudes and A-law 13-bit ones (ITU-T G.711), so the two low bits never
// change the code and a 16 K-entry table covers every input.
const encShift = 2

var (
	ulawDec [256]int16
	alawDec [256]int16
	ulawEnc [1 << (16 - encShift)]byte
	alawEnc [1 << (16 - encShift)]byte
)

func init() {
	for c := range 256 {
		ulawDec[c] = ref.DecodeUlawFrame(uint8(c))
		alawDec[c] = ref.DecodeAlawFrame(uint8(c))
	}
	for i := range len(ulawEnc) {
		s := int16(uint16(i) << encShift)
		ulawEnc[i] = ref.EncodeUlawFrame(s)
		alawEnc[i] = ref.EncodeAlawFrame(s)
	}
}

// encIndex maps a sample to its encoder table slot.
func encIndex(s int16) uint16 { return uint16(s) >> encShift }

// DecodeUlaw writes the linear value of each μ-law byte of src into dst.
// len(dst) must be >= len(src).
func DecodeUlaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, c := range src {
		dst[i] = ulawDec[c]
	}
}

// EncodeUlaw writes the μ-law code of each sample of src into dst.
// len(dst) must be >= len(src).
func EncodeUlaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = ulawEnc[encIndex(s)]
	}
}

// DecodeAlaw writes the linear value of each A-law byte of src into dst.
// len(dst) must be >= len(src).
func DecodeAlaw(dst []int16, src []byte) {
	dst = dst[:len(src)]
	for i, c := range src {
		dst[i] = alawDec[c]
	}
}

// EncodeAlaw writes the A-law code of each sample of src into dst.
// len(dst) must be >= len(src).
func EncodeAlaw(dst []byte, src []int16) {
	dst = dst[:len(src)]
	for i, s := range src {
		dst[i] = alawEnc[encIndex(s)]
	}
}

// Decode decodes src with the codec of RTP payload type pt: PCMA for 8 and
// PCMU for anything else (callers have already rejected other payload types
// during SDP negotiation, and μ-law is the RFC 3551 default).
func Decode(pt uint8, dst []int16, src []byte) {
	if pt == PCMA {
		DecodeAlaw(dst, src)
		return
	}
	DecodeUlaw(dst, src)
}

// Encode encodes src with the codec of RTP payload type pt: PCMA for 8 and
// PCMU for anything else.
func Encode(pt uint8, dst []byte, src []int16) {
	if pt == PCMA {
		EncodeAlaw(dst, src)
		return
	}
	EncodeUlaw(dst, src)
}
