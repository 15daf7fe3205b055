package sdp

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	pionsdp "github.com/pion/sdp/v3"
)

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseOfferSamples(t *testing.T) {
	cases := []struct {
		name, file string
		want       Offer // Media is not compared here
	}{
		{"SIPp's default uac offer gives PCMU without DTMF", "sipp-uac.sdp", Offer{
			Addr: netip.MustParseAddr("127.0.0.1"), Port: 6000, Codecs: []uint8{0}, Names: []string{"PCMU"},
			DTMF: -1, CN: -1, Direction: SendRecv, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"a linphone offer keeps its order, skips opus and picks telephone-event/8000", "linphone.sdp", Offer{
			Addr: netip.MustParseAddr("192.168.1.20"), Port: 7078, Codecs: []uint8{0, 8}, Names: []string{"PCMU", "PCMA"},
			DTMF: 100, CN: -1, Direction: SendRecv, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"dynamic G.711 payload types are used with the offerer's numbers", "dynamic-g711.sdp", Offer{
			Addr: netip.MustParseAddr("10.1.2.3"), Port: 5004, Codecs: []uint8{96, 97}, Names: []string{"PCMA", "PCMU"},
			DTMF: -1, CN: -1, Direction: SendRecv, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"video before audio selects the second m-line", "video-audio.sdp", Offer{
			Addr: netip.MustParseAddr("203.0.113.5"), Port: 7078, Codecs: []uint8{8, 0}, Names: []string{"PCMA", "PCMU"},
			DTMF: 101, CN: -1, Ptime: 20, Direction: SendRecv, MediaCount: 3, AudioIndex: 1, Proto: ProtoRTP}},
		{"an IPv6 offer gives an IPv6 address and its ptime", "ipv6.sdp", Offer{
			Addr: netip.MustParseAddr("2001:db8::10"), Port: 16384, Codecs: []uint8{0}, Names: []string{"PCMU"},
			DTMF: 101, CN: -1, Ptime: 30, Direction: SendRecv, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"c=0.0.0.0 is an RFC 2543 hold", "hold-zero.sdp", Offer{
			Addr: netip.MustParseAddr("0.0.0.0"), Port: 6000, Codecs: []uint8{0, 8}, Names: []string{"PCMU", "PCMA"},
			DTMF: -1, CN: -1, Direction: SendRecv, Hold: true, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"a=sendonly is an RFC 3264 hold", "hold-sendonly.sdp", Offer{
			Addr: netip.MustParseAddr("192.0.2.8"), Port: 6000, Codecs: []uint8{8, 0}, Names: []string{"PCMA", "PCMU"},
			DTMF: 101, CN: -1, Direction: SendOnly, Hold: true, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"a session-level a=inactive applies to the audio", "session-inactive.sdp", Offer{
			Addr: netip.MustParseAddr("192.0.2.8"), Port: 6000, Codecs: []uint8{0}, Names: []string{"PCMU"},
			DTMF: -1, CN: -1, Direction: Inactive, Hold: true, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"a PCMA-only gateway offer", "pcma-only.sdp", Offer{
			Addr: netip.MustParseAddr("198.51.100.1"), Port: 20000, Codecs: []uint8{8}, Names: []string{"PCMA"},
			DTMF: 101, CN: -1, Ptime: 20, Direction: SendRecv, MediaCount: 1, AudioIndex: 0, Proto: ProtoRTP}},
		{"an SRTP m-line is chosen, the plain RTP one after it kept as its fallback", "sdes-fallback.sdp", Offer{
			Addr: netip.MustParseAddr("198.51.100.5"), Port: 20000, Codecs: []uint8{0, 8}, Names: []string{"PCMU", "PCMA"},
			DTMF: -1, CN: -1, Direction: SendRecv, MediaCount: 2, AudioIndex: 0, Proto: ProtoSRTP,
			Crypto: []Crypto{{Tag: 1, Suite: SuiteAES80, Key: sampleKey}}, CryptoLines: 1,
			Fallback: &Offer{
				Addr: netip.MustParseAddr("198.51.100.5"), Port: 20002, Codecs: []uint8{0, 8}, Names: []string{"PCMU", "PCMA"},
				DTMF: -1, CN: -1, Direction: SendRecv, MediaCount: 2, AudioIndex: 1, Proto: ProtoRTP}}},
		{"SRTP-only audio is an RTP/SAVP offer without fallback", "srtp-only.sdp", Offer{
			Addr: netip.MustParseAddr("198.51.100.4"), Port: 20000, Codecs: []uint8{0, 8}, Names: []string{"PCMU", "PCMA"},
			DTMF: -1, CN: -1, Direction: SendRecv, MediaCount: 1, AudioIndex: 0, Proto: ProtoSRTP,
			Crypto: []Crypto{{Tag: 1, Suite: SuiteAES80, Key: sampleKey}}, CryptoLines: 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer(readSample(t, tc.file))
			if err != nil {
				t.Fatalf("ParseOffer: %v", err)
			}
			if len(o.Media) != o.MediaCount {
				t.Errorf("len(Media) = %d, MediaCount = %d", len(o.Media), o.MediaCount)
			}
			got := *o
			got.Media = nil
			if got.Fallback != nil {
				fb := *got.Fallback
				fb.Media = nil
				got.Fallback = &fb
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseOfferErrors(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"an empty body is malformed", readSample(t, "empty.sdp"), ErrMalformed},
		{"whitespace only is malformed", []byte(" \r\n\r\n"), ErrMalformed},
		{"garbage is malformed", readSample(t, "garbage.sdp"), ErrMalformed},
		{"a body cut inside the m-line is malformed", readSample(t, "truncated.sdp"), ErrMalformed},
		{"a body cut before t= is malformed", []byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\n"), ErrMalformed},
		{"a lone v=0 is malformed", []byte("v=0\r\n"), ErrMalformed},
		{"audio without any c= is malformed", []byte("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"), ErrMalformed},
		{"an invalid IPv4 address is malformed", sdpWith("c=IN IP4 300.1.2.3", "m=audio 6000 RTP/AVP 0"), ErrMalformed},
		{"an IPv6 address marked IP4 is malformed", sdpWith("c=IN IP4 2001:db8::1", "m=audio 6000 RTP/AVP 0"), ErrMalformed},
		{"an IPv4 address marked IP6 is malformed", sdpWith("c=IN IP6 192.0.2.1", "m=audio 6000 RTP/AVP 0"), ErrMalformed},
		{"a scoped IPv6 address is malformed", sdpWith("c=IN IP6 fe80::1%eth0", "m=audio 6000 RTP/AVP 0"), ErrMalformed},
		{"a TTL on a unicast address is malformed", sdpWith("c=IN IP4 192.0.2.1/127", "m=audio 6000 RTP/AVP 0"), ErrMalformed},
		{"a port above 65535 is malformed", sdpWith("c=IN IP4 192.0.2.1", "m=audio 70000 RTP/AVP 0"), ErrMalformed},
		{"m=audio 0 leaves no audio", readSample(t, "audio-port-zero.sdp"), ErrNoAudio},
		{"SRTP over another profile leaves no audio", sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/SAVPF 0"), ErrNoAudio},
		{"no m-line at all leaves no audio", sdpWith("c=IN IP4 192.0.2.1"), ErrNoAudio},
		{"video only leaves no audio", sdpWith("c=IN IP4 192.0.2.1", "m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000"), ErrNoAudio},
		{"a multicast address leaves no audio", sdpWith("c=IN IP4 224.2.1.1/127", "m=audio 6000 RTP/AVP 0"), ErrNoAudio},
		{"a host name in c= leaves no audio", sdpWith("c=IN IP4 media.example.com", "m=audio 6000 RTP/AVP 0"), ErrNoAudio},
		{"an offer without G.711 has no codec", readSample(t, "no-g711.sdp"), ErrNoCodec},
		{"a stereo PCMU is not our PCMU", sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP 96", "a=rtpmap:96 PCMU/8000/2"), ErrNoCodec},
		{"static 0 remapped to another codec is not PCMU", sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP 0", "a=rtpmap:0 opus/48000/2"), ErrNoCodec},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer(tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %+v, %v; want %v", o, err, tc.want)
			}
			for _, other := range []error{ErrMalformed, ErrNoAudio, ErrNoCodec} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
			if o != nil {
				t.Errorf("offer returned with an error: %+v", o)
			}
		})
	}
}

// sdpWith builds a session description whose session part is v/o/s and
// whose remaining lines (c=, t= is added before the first m=) are given.
func sdpWith(lines ...string) []byte {
	var b strings.Builder
	b.WriteString("v=0\r\no=- 1 1 IN IP4 192.0.2.99\r\ns=-\r\n")
	timed := false
	for _, l := range lines {
		if !timed && !strings.HasPrefix(l, "c=") {
			b.WriteString("t=0 0\r\n")
			timed = true
		}
		b.WriteString(l + "\r\n")
	}
	if !timed {
		b.WriteString("t=0 0\r\n")
	}
	return []byte(b.String())
}

func TestParseOfferDetails(t *testing.T) {
	t.Run("media-level c= overrides session-level c=", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP 0", "c=IN IP4 192.0.2.2"))
		if err != nil || o.Addr != netip.MustParseAddr("192.0.2.2") {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("an IPv4-mapped IPv6 address is the IPv4 peer", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP6 ::ffff:192.0.2.7", "m=audio 6000 RTP/AVP 0"))
		if err != nil || o.Addr != netip.MustParseAddr("192.0.2.7") {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("LF-only line ends are accepted", func(t *testing.T) {
		body := strings.ReplaceAll(string(readSample(t, "sipp-uac.sdp")), "\r\n", "\n")
		if o, err := ParseOffer([]byte(body)); err != nil || o.Port != 6000 {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("a fractional ptime is rounded and a silly one ignored", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP 0", "a=ptime:20.0"))
		if err != nil || o.Ptime != 20 {
			t.Fatalf("got %+v, %v", o, err)
		}
		o, err = ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP 0", "a=ptime:-5"))
		if err != nil || o.Ptime != 0 {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("session-level ptime is used when the media has none", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "a=ptime:40", "m=audio 6000 RTP/AVP 0"))
		if err != nil || o.Ptime != 40 {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("junk payload types and rtpmaps are skipped", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP x 300 8",
			"a=rtpmap:8", "a=rtpmap:x PCMU/8000", "a=rtpmap:300 PCMU/8000"))
		if err != nil || !reflect.DeepEqual(o.Codecs, []uint8{8}) {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("an rtpmap for a type not on the m-line is ignored", func(t *testing.T) {
		o, err := ParseOffer(readSample(t, "dynamic-g711.sdp"))
		if err != nil || o.DTMF != -1 {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("the first audio line with G.711 wins over an earlier one without", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP 9", "m=audio 6002 RTP/AVP 8"))
		if err != nil || o.AudioIndex != 1 || o.Port != 6002 {
			t.Fatalf("got %+v, %v", o, err)
		}
	})
	t.Run("the offered m-lines are kept for the answer", func(t *testing.T) {
		o, err := ParseOffer(readSample(t, "video-audio.sdp"))
		if err != nil {
			t.Fatal(err)
		}
		want := []Media{
			{"video", 9078, "RTP/AVP", []string{"96", "97"}},
			{"audio", 7078, "RTP/AVP", []string{"8", "0", "101"}},
			{"application", 5060, "UDP/BFCP", []string{"*"}},
		}
		if !reflect.DeepEqual(o.Media, want) {
			t.Errorf("Media = %+v", o.Media)
		}
	})
}

func TestNewAnswer(t *testing.T) {
	ours := netip.MustParseAddr("192.0.2.100")
	t.Run("the offerer's first G.711 codec, DTMF and ptime are echoed", func(t *testing.T) {
		o, err := ParseOffer(readSample(t, "video-audio.sdp"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAnswer(o, ours, 30000, 7, 1)
		if err != nil {
			t.Fatal(err)
		}
		if a.PT != 8 || a.Name != "PCMA" || a.DTMF != 101 || a.Ptime != 20 || a.Direction != SendRecv ||
			a.MediaCount != 3 || a.AudioIndex != 1 || a.Port != 30000 || a.Addr != ours {
			t.Errorf("answer = %+v", a)
		}
	})
	t.Run("directions are mirrored", func(t *testing.T) {
		for offered, want := range map[string]string{
			SendOnly: RecvOnly, RecvOnly: SendOnly, Inactive: Inactive, SendRecv: SendRecv, "": SendRecv,
		} {
			o := &Offer{Codecs: []uint8{0}, Names: []string{"PCMU"}, DTMF: -1, CN: -1, Direction: offered, MediaCount: 1}
			a, err := NewAnswer(o, ours, 30000, 1, 1)
			if err != nil || a.Direction != want {
				t.Errorf("offer %q: answer %q, %v; want %q", offered, a.Direction, err, want)
			}
		}
	})
	t.Run("an offer without G.711 cannot be answered", func(t *testing.T) {
		_, err := NewAnswer(&Offer{DTMF: 101, MediaCount: 1}, ours, 30000, 1, 1)
		if !errors.Is(err, ErrNoCodec) {
			t.Errorf("got %v, want ErrNoCodec", err)
		}
	})
	t.Run("a nil offer, a bad address or a bad port is refused", func(t *testing.T) {
		o := &Offer{Codecs: []uint8{0}, Names: []string{"PCMU"}, DTMF: -1, MediaCount: 1}
		if _, err := NewAnswer(nil, ours, 30000, 1, 1); err == nil {
			t.Error("nil offer accepted")
		}
		if _, err := NewAnswer(o, netip.Addr{}, 30000, 1, 1); err == nil {
			t.Error("zero address accepted")
		}
		if _, err := NewAnswer(o, netip.MustParseAddr("0.0.0.0"), 30000, 1, 1); err == nil {
			t.Error("unspecified address accepted")
		}
		for _, port := range []int{0, -1, 65536} {
			if _, err := NewAnswer(o, ours, port, 1, 1); err == nil {
				t.Errorf("port %d accepted", port)
			}
		}
	})
}

func TestAnswerMarshal(t *testing.T) {
	ours := netip.MustParseAddr("192.0.2.100")
	t.Run("the answer to the video offer has the exact expected text", func(t *testing.T) {
		o, err := ParseOffer(readSample(t, "video-audio.sdp"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAnswer(o, ours, 30000, 1234, 5)
		if err != nil {
			t.Fatal(err)
		}
		want := "v=0\r\n" +
			"o=webconf 1234 5 IN IP4 192.0.2.100\r\n" +
			"s=webconf\r\n" +
			"c=IN IP4 192.0.2.100\r\n" +
			"t=0 0\r\n" +
			"m=video 0 RTP/AVP 96\r\n" +
			"m=audio 30000 RTP/AVP 8 101\r\n" +
			"a=rtpmap:8 PCMA/8000\r\n" +
			"a=rtpmap:101 telephone-event/8000\r\n" +
			"a=fmtp:101 0-15\r\n" +
			"a=ptime:20\r\n" +
			"a=sendrecv\r\n" +
			"m=application 0 UDP/BFCP *\r\n"
		if got := string(a.Marshal()); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("a SIPp offer is answered with PCMU only, no DTMF and no ptime", func(t *testing.T) {
		o, err := ParseOffer(readSample(t, "sipp-uac.sdp"))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := NewAnswer(o, ours, 30002, 1, 1)
		got := string(a.Marshal())
		if !strings.Contains(got, "m=audio 30002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n") ||
			strings.Contains(got, "telephone-event") || strings.Contains(got, "ptime") {
			t.Errorf("got\n%s", got)
		}
	})
	t.Run("an IPv6 answer uses IP6 in o= and c=", func(t *testing.T) {
		o, err := ParseOffer(readSample(t, "ipv6.sdp"))
		if err != nil {
			t.Fatal(err)
		}
		a, _ := NewAnswer(o, netip.MustParseAddr("2001:db8::1"), 30004, 1, 1)
		got := string(a.Marshal())
		if !strings.Contains(got, "o=webconf 1 1 IN IP6 2001:db8::1\r\n") || !strings.Contains(got, "c=IN IP6 2001:db8::1\r\n") {
			t.Errorf("got\n%s", got)
		}
	})
	t.Run("a hand-built offer without m-line details gets one audio line", func(t *testing.T) {
		a, err := NewAnswer(&Offer{Codecs: []uint8{0}, Names: []string{"PCMU"}, DTMF: -1}, ours, 30000, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(a.Marshal()); strings.Count(got, "m=") != 1 || !strings.Contains(got, "m=audio 30000 ") {
			t.Errorf("got\n%s", got)
		}
	})
}

// TestRoundTrip checks that what we write is valid SDP that we (and pion)
// read back as the same thing.
func TestRoundTrip(t *testing.T) {
	ours := netip.MustParseAddr("192.0.2.100")
	for _, file := range []string{"sipp-uac.sdp", "linphone.sdp", "dynamic-g711.sdp", "video-audio.sdp",
		"ipv6.sdp", "hold-zero.sdp", "hold-sendonly.sdp", "session-inactive.sdp", "pcma-only.sdp", "sdes-fallback.sdp"} {
		t.Run("the answer to "+file+" parses back as what it says", func(t *testing.T) {
			o, err := ParseOffer(readSample(t, file))
			if err != nil {
				t.Fatal(err)
			}
			o, mine := secure(t, o)
			a, err := NewAnswer(o, ours, 40000, 99, 2)
			if err != nil {
				t.Fatal(err)
			}
			a.Crypto = mine
			body := a.Marshal()
			var sd pionsdp.SessionDescription
			if err := sd.Unmarshal(body); err != nil {
				t.Fatalf("pion rejects our answer: %v\n%s", err, body)
			}
			if len(sd.MediaDescriptions) != o.MediaCount {
				t.Errorf("answer has %d m-lines, offer %d", len(sd.MediaDescriptions), o.MediaCount)
			}
			for i, md := range sd.MediaDescriptions {
				if md.MediaName.Media != o.Media[i].Type || strings.Join(md.MediaName.Protos, "/") != o.Media[i].Proto {
					t.Errorf("m-line %d is %v, offered %+v", i, md.MediaName, o.Media[i])
				}
				if (i == o.AudioIndex) != (md.MediaName.Port.Value != 0) {
					t.Errorf("m-line %d has port %d", i, md.MediaName.Port.Value)
				}
			}
			if sd.Origin.SessionID != 99 || sd.Origin.SessionVersion != 2 || sd.Origin.Username != "webconf" {
				t.Errorf("o= is %+v", sd.Origin)
			}
			back, err := ParseOffer(body)
			if err != nil {
				t.Fatalf("our answer does not parse as an offer: %v\n%s", err, body)
			}
			if back.Addr != ours || back.Port != 40000 || !reflect.DeepEqual(back.Codecs, []uint8{a.PT}) ||
				back.Names[0] != a.Name || back.DTMF != a.DTMF || back.Ptime != a.Ptime || back.Direction != a.Direction {
				t.Errorf("read back %+v from\n%s", back, body)
			}
		})
	}
	t.Run("our dial-out offer parses with PCMU, PCMA, DTMF 101 and CN 13", func(t *testing.T) {
		body := NewOffer(netip.MustParseAddr("192.0.2.100"), 41000, 5, 6)
		var sd pionsdp.SessionDescription
		if err := sd.Unmarshal(body); err != nil {
			t.Fatalf("pion rejects our offer: %v\n%s", err, body)
		}
		o, err := ParseOffer(body)
		if err != nil {
			t.Fatal(err)
		}
		want := Offer{Addr: netip.MustParseAddr("192.0.2.100"), Port: 41000, Codecs: []uint8{0, 8},
			Names: []string{"PCMU", "PCMA"}, DTMF: 101, CN: 13, Ptime: 20, Direction: SendRecv, MediaCount: 1, AudioIndex: 0,
			Media: []Media{{"audio", 41000, "RTP/AVP", []string{"0", "8", "101", "13"}}}, Proto: ProtoRTP}
		if !reflect.DeepEqual(*o, want) {
			t.Errorf("got  %+v\nwant %+v", *o, want)
		}
		if !strings.Contains(string(body), "a=fmtp:101 0-15\r\n") || !strings.HasPrefix(string(body), "v=0\r\no=webconf 5 6 IN IP4 192.0.2.100\r\n") {
			t.Errorf("offer text:\n%s", body)
		}
	})
}

func FuzzParseOffer(f *testing.F) {
	entries, err := os.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sdp") {
			f.Add(readSample(f, e.Name()))
		}
	}
	ours := netip.MustParseAddr("192.0.2.100")
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := ParseOffer(body)
		if err != nil {
			if o != nil {
				t.Fatalf("offer and error: %+v, %v", o, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNoAudio) && !errors.Is(err, ErrNoCodec) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		// Whatever we accept, we can answer, and the answer is valid SDP.
		if len(o.Codecs) == 0 || len(o.Codecs) != len(o.Names) || o.Port <= 0 || o.Port > 65535 || !o.Addr.IsValid() {
			t.Fatalf("accepted an unusable offer: %+v", o)
		}
		o, mine := secure(t, o)
		if o == nil {
			return // RTP/SAVP without a key we can use, and no plain stream
		}
		a, err := NewAnswer(o, ours, 40000, 1, 1)
		if err != nil {
			t.Fatalf("cannot answer an accepted offer: %v", err)
		}
		a.Crypto = mine
		if _, err := ParseOffer(a.Marshal()); err != nil {
			t.Fatalf("our answer does not parse: %v\n%s", err, a.Marshal())
		}
	})
}

// secure is what a caller that may use SRTP answers: an offered key gets
// ours with its tag and suite; an RTP/SAVP stream without a usable key
// is answered by its plain fallback (nil if none).
func secure(t testing.TB, o *Offer) (*Offer, *Crypto) {
	t.Helper()
	if len(o.Crypto) > 0 {
		c, err := NewCrypto(o.Crypto[0].Tag, o.Crypto[0].Suite)
		if err != nil {
			t.Fatal(err)
		}
		return o, &c
	}
	if o.Proto == ProtoSRTP {
		return o.Fallback, nil
	}
	return o, nil
}

// TestComfortNoise: CN/8000 (RFC 3389) in an offer, static 13 with or
// without rtpmap or a dynamic type, is answered with the same type; an
// offer without it (or with CN at another rate) gets an answer without.
func TestComfortNoise(t *testing.T) {
	ours := netip.MustParseAddr("192.0.2.1")
	head := "v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
	for _, tc := range []struct {
		name, media string
		cn          int
	}{
		{"static 13 without rtpmap", "m=audio 4000 RTP/AVP 0 101 13\r\na=rtpmap:101 telephone-event/8000\r\n", 13},
		{"static 13 with rtpmap", "m=audio 4000 RTP/AVP 8 13\r\na=rtpmap:13 CN/8000\r\n", 13},
		{"a dynamic CN/8000", "m=audio 4000 RTP/AVP 0 98 97\r\na=rtpmap:98 CN/16000\r\na=rtpmap:97 CN/8000\r\n", 97},
		{"CN at 16 kHz only", "m=audio 4000 RTP/AVP 0 98\r\na=rtpmap:98 CN/16000\r\n", -1},
		{"no CN", "m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseOffer([]byte(head + tc.media))
			if err != nil {
				t.Fatal(err)
			}
			if o.CN != tc.cn {
				t.Fatalf("offer CN = %d, want %d", o.CN, tc.cn)
			}
			a, err := NewAnswer(o, ours, 30000, 1, 1)
			if err != nil {
				t.Fatal(err)
			}
			body := string(a.Marshal())
			back, err := ParseOffer([]byte(body))
			if err != nil {
				t.Fatalf("answer does not parse: %v\n%s", err, body)
			}
			if back.CN != tc.cn {
				t.Fatalf("answer CN = %d, want %d:\n%s", back.CN, tc.cn, body)
			}
			if hasMap := strings.Contains(body, " CN/8000\r\n"); hasMap != (tc.cn >= 0) {
				t.Fatalf("answer's CN rtpmap present=%v, want %v:\n%s", hasMap, tc.cn >= 0, body)
			}
		})
	}
}
