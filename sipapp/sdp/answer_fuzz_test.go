package sdp

import (
	"bytes"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzAnswerRoundTrip checks the offer/answer exchange end to end (RFC 3264
// section 6): any offer we accept is answered, and the answer, read back
// by our own parser as the phone would read it, says exactly what we
// decided — codec, DTMF type, ptime, the mirrored direction, our address
// and port — with one m-line per offered m-line, ours at the offered
// audio index (section 6: "the same number of m-lines"). The answer
// address, port and o= numbers are fuzzed too (IPv4 or IPv6).
//
// FuzzParseOffer covers arbitrary bytes; this target covers what we write.
func FuzzAnswerRoundTrip(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for i, e := range entries {
		if strings.HasSuffix(e.Name(), ".sdp") {
			f.Add(readSample(f, e.Name()), i%2 == 0, uint16(40000+2*i), uint64(i), uint64(i*7))
		}
	}
	f.Add(sdpWith("m=audio 5004 RTP/AVP 8 101 0", "a=rtpmap:101 telephone-event/8000", "a=ptime:30", "a=recvonly"),
		true, uint16(65535), ^uint64(0), ^uint64(0))
	f.Fuzz(func(t *testing.T, offer []byte, v6 bool, port uint16, sessID, version uint64) {
		o, err := ParseOffer(offer)
		if err != nil {
			return
		}
		ours := netip.MustParseAddr("192.0.2.100")
		if v6 {
			ours = netip.MustParseAddr("2001:db8::100")
		}
		o, mine := secure(t, o)
		if o == nil {
			return
		}
		a, err := NewAnswer(o, ours, int(port), sessID, version)
		a.Crypto = mine
		if port == 0 {
			if err == nil {
				t.Fatal("answered with port 0")
			}
			return
		}
		if err != nil {
			t.Fatalf("cannot answer an accepted offer %+v: %v", o, err)
		}
		body := a.Marshal()
		if !bytes.HasSuffix(body, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(body, []byte("\r\n"), nil), []byte("\n")) ||
			bytes.ContainsRune(bytes.ReplaceAll(body, []byte("\r\n"), nil), '\r') {
			t.Fatalf("answer lines are not CRLF-terminated:\n%q", body)
		}
		back, err := ParseOffer(body)
		if err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, body)
		}
		want := []any{ours, int(port), []uint8{a.PT}, []string{a.Name}, a.DTMF, a.Ptime, a.Direction, o.MediaCount, o.AudioIndex}
		got := []any{back.Addr, back.Port, back.Codecs, back.Names, back.DTMF, back.Ptime, back.Direction, back.MediaCount, back.AudioIndex}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("answer read back as\n %v\nwant\n %v\noffer %+v\n%s", got, want, o, body)
		}
		if back.Proto != o.Proto || (mine == nil) != (len(back.Crypto) == 0) || (mine != nil && (len(back.Crypto) != 1 || back.Crypto[0] != *mine)) {
			t.Fatalf("answer is %s with %v, want %s with %v\n%s", back.Proto, back.Crypto, o.Proto, mine, body)
		}
		if a.PT != o.Codecs[0] || a.Name != o.Names[0] {
			t.Fatalf("answered %d %s, offer preferred %d %s", a.PT, a.Name, o.Codecs[0], o.Names[0])
		}
		mirror := map[string]string{SendRecv: SendRecv, SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive}
		if a.Direction != mirror[o.Direction] {
			t.Fatalf("offer %s answered %s", o.Direction, a.Direction)
		}
		for i, m := range back.Media {
			if i != o.AudioIndex && m.Port != 0 {
				t.Fatalf("m-line %d not rejected in the answer: %+v\n%s", i, m, body)
			}
			if m.Type != o.Media[i].Type || m.Proto != o.Media[i].Proto {
				t.Fatalf("m-line %d is %s %s in the answer, %s %s in the offer", i, m.Type, m.Proto, o.Media[i].Type, o.Media[i].Proto)
			}
		}
	})
}
