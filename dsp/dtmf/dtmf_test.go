package dtmf

import (
	"encoding/hex"
	"errors"
	"testing"
)

func TestWireFormat(t *testing.T) {
	cases := []struct {
		name string
		hex  string
		ev   Event
	}{
		{"star, end bit set, volume 10, 800 units", "0a8a0320", Event{Code: 10, End: true, Volume: 10, Duration: 800}},
		{"digit 1 start with zero duration", "010a0000", Event{Code: 1, Volume: 10}},
		{"digit 0 update at 20 ms", "000700a0", Event{Code: 0, Volume: 7, Duration: 160}},
		{"pound end at the maximum duration", "0b80ffff", Event{Code: 11, End: true, Duration: 0xffff}},
		{"D at the lowest volume", "0f3f0140", Event{Code: 15, Volume: 63, Duration: 320}},
		{"a non-DTMF event code (flash, 16)", "10850640", Event{Code: 16, End: true, Volume: 5, Duration: 1600}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wire, err := hex.DecodeString(c.hex)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(wire)
			if err != nil {
				t.Fatalf("Decode(%s): %v", c.hex, err)
			}
			if got != c.ev {
				t.Fatalf("Decode(%s) = %+v, want %+v", c.hex, got, c.ev)
			}
			if enc := hex.EncodeToString(c.ev.Append(nil)); enc != c.hex {
				t.Fatalf("Append(%+v) = %s, want %s", c.ev, enc, c.hex)
			}
		})
	}
	t.Run("the reserved bit is ignored on receive and cleared on send", func(t *testing.T) {
		got, err := Decode([]byte{0x05, 0xca, 0x01, 0x00})
		if err != nil {
			t.Fatal(err)
		}
		want := Event{Code: 5, End: true, Volume: 10, Duration: 256}
		if got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		if b := got.Append(nil); b[1] != 0x8a {
			t.Fatalf("second byte %#x, want 0x8a", b[1])
		}
	})
	t.Run("an out-of-range volume keeps only its 6 bits", func(t *testing.T) {
		if b := (Event{Volume: 0xff}).Append(nil); b[1] != 0x3f {
			t.Fatalf("second byte %#x, want 0x3f", b[1])
		}
	})
	t.Run("Append appends to existing bytes", func(t *testing.T) {
		b := Event{Code: 3}.Append([]byte{0xaa})
		if hex.EncodeToString(b) != "aa03000000" {
			t.Fatalf("got %x", b)
		}
	})
	t.Run("short payloads are rejected with ErrShortPayload", func(t *testing.T) {
		for n := range PayloadLen {
			_, err := Decode(make([]byte, n))
			if !errors.Is(err, ErrShortPayload) {
				t.Fatalf("Decode of %d bytes: err = %v", n, err)
			}
		}
	})
}

func TestDigitCodeMapping(t *testing.T) {
	want := "0123456789*#ABCD"
	for code := range 256 {
		d, ok := Digit(uint8(code))
		if code < 16 {
			if !ok || d != want[code] {
				t.Fatalf("Digit(%d) = %q, %v; want %q", code, d, ok, want[code])
			}
			back, ok := Code(d)
			if !ok || back != uint8(code) {
				t.Fatalf("Code(%q) = %d, %v; want %d", d, back, ok, code)
			}
		} else if ok {
			t.Fatalf("Digit(%d) = %q, want not ok", code, d)
		}
	}
	if c, ok := Code('b'); !ok || c != 13 {
		t.Fatalf("Code('b') = %d, %v", c, ok)
	}
	for _, bad := range []byte{'E', 'e', ' ', 0, '+'} {
		if _, ok := Code(bad); ok {
			t.Fatalf("Code(%q) should not be ok", bad)
		}
	}
}

// packets builds the RFC 4733 packet train for one press: a start, updates
// every 160 units, and the three end packets, all sharing the timestamp.
func packets(ts uint32, code uint8, dur uint16) []struct {
	ts uint32
	ev Event
} {
	var out []struct {
		ts uint32
		ev Event
	}
	add := func(ev Event) {
		out = append(out, struct {
			ts uint32
			ev Event
		}{ts, ev})
	}
	for d := uint16(0); d < dur; d += 160 {
		add(Event{Code: code, Volume: 10, Duration: d})
	}
	for range 3 {
		add(Event{Code: code, End: true, Volume: 10, Duration: dur})
	}
	return out
}

func TestReceiver(t *testing.T) {
	collect := func(r *Receiver, train []struct {
		ts uint32
		ev Event
	}) string {
		var s []byte
		for _, p := range train {
			if d, ok := r.Push(p.ts, p.ev); ok {
				s = append(s, d)
			}
		}
		return string(s)
	}
	t.Run("a press with updates and three end packets is reported once", func(t *testing.T) {
		var r Receiver
		if got := collect(&r, packets(1000, 5, 800)); got != "5" {
			t.Fatalf("got %q, want \"5\"", got)
		}
	})
	t.Run("two presses of the same key are reported twice", func(t *testing.T) {
		var r Receiver
		train := append(packets(1000, 1, 640), packets(2600, 1, 640)...)
		if got := collect(&r, train); got != "11" {
			t.Fatalf("got %q, want \"11\"", got)
		}
	})
	t.Run("a press whose start and updates were lost is reported at its first end packet", func(t *testing.T) {
		var r Receiver
		train := packets(5000, 11, 480)
		train = train[len(train)-3:]
		if got := collect(&r, train); got != "#" {
			t.Fatalf("got %q, want \"#\"", got)
		}
	})
	t.Run("a PIN sequence arrives in order", func(t *testing.T) {
		var r Receiver
		var train []struct {
			ts uint32
			ev Event
		}
		for i, c := range []uint8{1, 2, 3, 4, 11} {
			train = append(train, packets(uint32(i)*1600, c, 400)...)
		}
		if got := collect(&r, train); got != "1234#" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("timestamps wrapping around 2^32 are still distinct events", func(t *testing.T) {
		var r Receiver
		train := append(packets(0xffffff00, 7, 320), packets(0x00000400, 8, 320)...)
		if got := collect(&r, train); got != "78" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("a non-DTMF event is not ok and its repeats are ignored", func(t *testing.T) {
		var r Receiver
		for i, p := range packets(100, 16, 480) {
			if d, ok := r.Push(p.ts, p.ev); ok {
				t.Fatalf("packet %d reported %q", i, d)
			}
		}
		if got := collect(&r, packets(900, 9, 320)); got != "9" {
			t.Fatalf("the next key: got %q", got)
		}
	})
	t.Run("a different key with the same timestamp is a new event", func(t *testing.T) {
		var r Receiver
		train := append(packets(100, 2, 320), packets(100, 3, 320)...)
		if got := collect(&r, train); got != "23" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("Reset forgets the previous event", func(t *testing.T) {
		var r Receiver
		p := packets(100, 4, 160)
		collect(&r, p)
		r.Reset()
		if got := collect(&r, p); got != "4" {
			t.Fatalf("got %q", got)
		}
	})
}

func BenchmarkDecodeAppend(b *testing.B) {
	wire := []byte{0x0a, 0x8a, 0x03, 0x20}
	buf := make([]byte, 0, 4)
	b.ReportAllocs()
	for b.Loop() {
		ev, err := Decode(wire)
		if err != nil {
			b.Fatal(err)
		}
		buf = ev.Append(buf[:0])
	}
}
