package dtmf

import (
	"encoding/binary"
	"strings"
	"testing"
)

// FuzzReceiver drives the RFC 4733 digit collector with an arbitrary
// packet stream. The fuzz bytes are a list of 6-byte operations: a control
// byte (how the RTP timestamp moves, or a Reset), a timestamp step, and a
// 4-byte telephone-event payload exactly as it would arrive on the wire.
//
// Invariants (RFC 4733 2.5.1): a key is reported only at the first packet
// of a new (timestamp, event) pair and only for codes 0-15; repeats,
// updates and the three end packets of one event report nothing; and the
// wire form survives Decode/Append.
func FuzzReceiver(f *testing.F) {
	// One press of '5' as a phone sends it: start, two updates, three ends.
	f.Add([]byte{
		1, 160, 5, 10, 0, 160,
		0, 0, 5, 10, 1, 64,
		0, 0, 5, 10, 1, 224,
		0, 0, 5, 0x8a, 2, 128,
		0, 0, 5, 0x8a, 2, 128,
		0, 0, 5, 0x8a, 2, 128,
	})
	// "1#" with the start of '#' lost, then a Reset and a non-DTMF event.
	f.Add([]byte{
		1, 200, 1, 10, 0, 160,
		0, 0, 1, 0x8a, 3, 32,
		1, 240, 11, 0x8a, 3, 32,
		0, 0, 11, 0x8a, 3, 32,
		3, 0, 11, 0x8a, 3, 32,
		2, 7, 16, 10, 0, 160,
	})
	// A short payload and a timestamp jump near the 2^32 wrap.
	f.Add([]byte{2, 255, 9, 10, 0xff, 0xff, 1, 1, 9, 10})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var (
			r       Receiver
			ts      uint32
			prevTS  uint32
			prevEv  uint8
			prevSet bool
		)
		for len(ops) >= 2 {
			ctl, step := ops[0], ops[1]
			payload := ops[2:min(len(ops), 6)]
			ops = ops[min(len(ops), 6):]
			switch ctl & 3 {
			case 1:
				ts += uint32(step)
			case 2:
				ts = uint32(step) << 24
			case 3:
				r.Reset()
				prevSet = false
			}
			ev, err := Decode(payload)
			if err != nil {
				if len(payload) >= PayloadLen {
					t.Fatalf("Decode(% x): %v", payload, err)
				}
				continue
			}
			// The wire form round-trips (the R bit is dropped on purpose).
			back := ev.Append(nil)
			want := []byte{payload[0], payload[1] &^ 0x40, payload[2], payload[3]}
			if string(back) != string(want) {
				t.Fatalf("Append(Decode(% x)) = % x", payload[:4], back)
			}
			if again, _ := Decode(back); again != ev {
				t.Fatalf("round trip %+v -> %+v", ev, again)
			}
			digit, ok := r.Push(ts, ev)
			isNew := !prevSet || ts != prevTS || ev.Code != prevEv
			prevTS, prevEv, prevSet = ts, ev.Code, true
			switch {
			case ok && !isNew:
				t.Fatalf("event %d at ts %d reported twice", ev.Code, ts)
			case ok && ev.Code > 15:
				t.Fatalf("non-DTMF event %d reported as %q", ev.Code, digit)
			case ok && digits[ev.Code] != digit:
				t.Fatalf("event %d reported as %q", ev.Code, digit)
			case !ok && isNew && ev.Code <= 15:
				t.Fatalf("new event %d at ts %d not reported", ev.Code, ts)
			case !ok && digit != 0:
				t.Fatalf("no report but digit %q", digit)
			}
		}
	})
}

// FuzzDetector feeds the in-band detector arbitrary audio: a synthesised
// part (script: 3-byte segments of key, length in 5 ms units and
// amplitude, so the fuzzer can build real tone sequences and glue them
// together) plus raw samples added on top, processed in chunks of an
// arbitrary size.
//
// Invariants: no panic; only keypad keys; at most one key per Process call;
// and no more keys than the audio can carry. A key needs hitsToReport
// consecutive 10 ms windows naming it, and a new key needs as many again,
// so after S samples at most (S/hop)/hitsToReport keys can have been
// recognised, and with chunks of at most one hop (no queueing) two reports
// are at least hitsToReport hops (30 ms) of audio apart.
func FuzzDetector(f *testing.F) {
	const keypadKeys = "0123456789*#ABCD"
	// "1", "5#", "0D*" with Q.24 timing; back-to-back keys with no pause.
	f.Add([]byte{1, 10, 100, 16, 10, 0}, []byte{}, uint16(159))
	f.Add([]byte{5, 12, 120, 16, 12, 0, 11, 12, 120, 16, 12, 0}, []byte{}, uint16(79))
	f.Add([]byte{0, 8, 80, 16, 8, 0, 15, 8, 200, 16, 8, 0, 10, 8, 60}, []byte{0, 1, 0, 0xff}, uint16(1))
	f.Add([]byte{1, 12, 100, 2, 12, 100, 3, 12, 100}, []byte{}, uint16(79))
	// A tone under loud noise, and a tone too short to count.
	f.Add([]byte{7, 20, 40}, []byte("\x00\x40\x00\xc0\x00\x40\x00\xc0\x12\x34\x56\x78"), uint16(300))
	f.Add([]byte{9, 4, 127, 16, 20, 0}, []byte{}, uint16(159))
	f.Fuzz(func(t *testing.T, script, raw []byte, chunk uint16) {
		var samples []int16
		for len(script) >= 3 && len(samples) < 2*8000 {
			key, units, amp := script[0], int(script[1]), int16(script[2])<<6
			script = script[3:]
			seg := make([]int16, units*40) // 5 ms units, up to 1.3 s
			if int(key) < len(keypadKeys) {
				Generate(seg, keypadKeys[key], len(samples), amp)
			}
			samples = append(samples, seg...)
		}
		for i := 0; i+1 < len(raw); i += 2 {
			v := int16(binary.LittleEndian.Uint16(raw[i:]))
			if j := i / 2; j < len(samples) {
				samples[j] = int16(max(-32768, min(32767, int32(samples[j])+int32(v))))
			} else {
				samples = append(samples, v)
			}
		}
		samples = samples[:min(len(samples), 2*8000)] // 2 s keeps an input cheap
		n := 1 + int(chunk)%480
		d := NewDetector()
		consumed, reports, lastAt := 0, 0, -1
		for len(samples) > 0 {
			k := min(n, len(samples))
			digit, ok := d.Process(samples[:k])
			samples = samples[k:]
			consumed += k
			if !ok {
				if digit != 0 {
					t.Fatalf("no report but digit %q", digit)
				}
				continue
			}
			if !strings.ContainsRune(keypadKeys, rune(digit)) {
				t.Fatalf("reported %q, not a keypad key", digit)
			}
			reports++
			if limit := (consumed / hop) / hitsToReport; reports > limit {
				t.Fatalf("%d keys after %d samples; at most %d fit", reports, consumed, limit)
			}
			// Windows end at multiples of hop; with chunks of at most a hop
			// this call ended exactly one, and that is where the key was
			// recognised (the rest of the chunk came after it).
			at := consumed / hop * hop
			if n <= hop && lastAt >= 0 && at-lastAt < hitsToReport*hop {
				t.Fatalf("two keys %d samples apart; a key needs %d", at-lastAt, hitsToReport*hop)
			}
			lastAt = at
		}
	})
}
