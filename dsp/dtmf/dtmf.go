// Package dtmf handles telephone keypad digits both ways they reach a
// conference: as RFC 4733 telephone-event RTP payloads (Event, Decode,
// Receiver) and as in-band dual tones in G.711 audio (Detector, Generate).
//
// It is pure: no goroutines, no clock, no I/O, and nothing on the per-packet
// or per-frame path allocates.
package dtmf

import (
	"errors"
	"fmt"
)

// ErrShortPayload is returned by Decode for payloads under 4 bytes.
var ErrShortPayload = errors.New("telephone-event payload shorter than 4 bytes")

// PayloadLen is the size of one RFC 4733 event payload.
const PayloadLen = 4

// Event is one RFC 4733 telephone-event payload (section 2.3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Event struct {
	// Code is the event number; 0-15 are the DTMF keys (section 3.2).
	Code uint8
	// End marks the last packet(s) of the event (sent three times).
	End bool
	// Volume is the power level in -dBm0, 0..63 (only 6 bits are sent).
	Volume uint8
	// Duration is the event's length so far, in RTP timestamp units,
	// counted from the packet's RTP timestamp (the event's start).
	Duration uint16
}

// Decode parses the first 4 bytes of an RFC 4733 payload. Extra bytes are
// ignored; the reserved R bit is ignored as section 2.3.3 requires.
func Decode(payload []byte) (Event, error) {
	if len(payload) < PayloadLen {
		return Event{}, fmt.Errorf("dtmf: decode %d-byte payload: %w", len(payload), ErrShortPayload)
	}
	return Event{
		Code:     payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3f,
		Duration: uint16(payload[2])<<8 | uint16(payload[3]),
	}, nil
}

// Append appends the 4-byte wire form of e to dst. The R bit is sent as 0
// and Volume is truncated to its 6 bits.
func (e Event) Append(dst []byte) []byte {
	b1 := e.Volume & 0x3f
	if e.End {
		b1 |= 0x80
	}
	return append(dst, e.Code, b1, byte(e.Duration>>8), byte(e.Duration))
}

// digits maps event codes 0-15 to keys (RFC 4733 section 3.2, table 1).
const digits = "0123456789*#ABCD"

// Digit returns the key for a DTMF event code: 0-9 are '0'..'9', 10 is '*',
// 11 is '#', and 12-15 are 'A'..'D'. Other codes are not DTMF keys.
func Digit(code uint8) (byte, bool) {
	if int(code) >= len(digits) {
		return 0, false
	}
	return digits[code], true
}

// Code is the inverse of Digit. Lower-case 'a'..'d' are accepted too.
func Code(digit byte) (uint8, bool) {
	switch {
	case digit >= '0' && digit <= '9':
		return digit - '0', true
	case digit == '*':
		return 10, true
	case digit == '#':
		return 11, true
	case digit >= 'A' && digit <= 'D':
		return digit - 'A' + 12, true
	case digit >= 'a' && digit <= 'd':
		return digit - 'a' + 12, true
	}
	return 0, false
}

// Receiver turns a stream of telephone-event packets into one report per
// key press. The zero value is ready. It is not safe for concurrent use.
//
// Every packet of one event carries the event's start as its RTP timestamp
// (RFC 4733 section 2.5.1.1), updates repeat it with a growing duration and
// the end is sent three times (2.5.1.4), so an event is identified by its
// (timestamp, code) pair: the first packet of a new pair is reported and the
// rest are ignored. That also reports an event whose start packets were all
// lost, at its first end packet.
//
// Limitation: an event longer than 0xFFFF timestamp units (8.2 s at 8 kHz)
// is sent as segments with new timestamps (2.5.1.3) and is reported once
// per segment; no keypad press lasts that long.
type Receiver struct {
	ts    uint32
	code  uint8
	valid bool
}

// Push feeds one decoded event and its packet's RTP timestamp. It returns
// the key and true at the first packet of a new DTMF event; for a new event
// whose code is not a DTMF key (above 15) it returns false, and it returns
// false for every further packet of an event already seen.
func (r *Receiver) Push(rtpTimestamp uint32, ev Event) (digit byte, ok bool) {
	if r.valid && rtpTimestamp == r.ts && ev.Code == r.code {
		return 0, false
	}
	r.ts, r.code, r.valid = rtpTimestamp, ev.Code, true
	return Digit(ev.Code)
}

// Reset forgets the last event, e.g. when the RTP source changes.
func (r *Receiver) Reset() { *r = Receiver{} }
