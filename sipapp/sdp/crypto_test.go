package sdp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/netip"
	"strings"
	"testing"

	pionsdp "github.com/pion/sdp/v3"
)

// sampleKey is the inline key of testdata/sdes-fallback.sdp and
// srtp-only.sdp (RFC 4568 section 9.1's example key).
var sampleKey = func() (k [KeyLen]byte) {
	b, err := base64.StdEncoding.DecodeString("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz")
	if err != nil || len(b) != KeyLen {
		panic("bad sample key")
	}
	copy(k[:], b)
	return k
}()

const sampleB64 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

func TestParseCrypto(t *testing.T) {
	ok := []struct {
		name, value string
		tag         uint32
		suite       string
	}{
		{"the 80-bit suite", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64, 1, SuiteAES80},
		{"the 32-bit suite", "2 AES_CM_128_HMAC_SHA1_32 inline:" + sampleB64, 2, SuiteAES32},
		{"a nine-digit tag", "999999999 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64, 999999999, SuiteAES80},
		{"a lifetime of 2^31", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^31", 1, SuiteAES80},
		{"a lifetime of 2^48", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^48", 1, SuiteAES80},
		{"a decimal lifetime above 2^31", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|4294967296", 1, SuiteAES80},
		{"the key method in capitals", "1 AES_CM_128_HMAC_SHA1_80 INLINE:" + sampleB64, 1, SuiteAES80},
		{"a window size hint", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + " WSH=64", 1, SuiteAES80},
	}
	for _, tc := range ok {
		t.Run("accepts "+tc.name, func(t *testing.T) {
			c, err := ParseCrypto(tc.value)
			if err != nil {
				t.Fatalf("ParseCrypto: %v", err)
			}
			if c.Tag != tc.tag || c.Suite != tc.suite || c.Key != sampleKey {
				t.Fatalf("got %v (key %x)", c, c.Key)
			}
		})
	}
	bad := []struct{ name, value string }{
		{"an empty value", ""},
		{"no key", "1 AES_CM_128_HMAC_SHA1_80"},
		{"a tag of ten digits", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64},
		{"a negative tag", "-1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64},
		{"another suite", "1 AES_256_CM_HMAC_SHA1_80 inline:" + sampleB64},
		{"F8 mode", "1 F8_128_HMAC_SHA1_80 inline:" + sampleB64},
		{"a GCM suite", "1 AEAD_AES_128_GCM inline:" + sampleB64},
		{"a suite in lower case", "1 aes_cm_128_hmac_sha1_80 inline:" + sampleB64},
		{"a key method other than inline", "1 AES_CM_128_HMAC_SHA1_80 uri:" + sampleB64},
		{"a short key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64[:36]},
		{"a long key", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "AAAA"},
		{"a key that is not base64", "1 AES_CM_128_HMAC_SHA1_80 inline:" + strings.Repeat("*", 40)},
		{"an MKI", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|1:4"},
		{"a lifetime and an MKI", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^31|1:4"},
		{"two keys", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^20|1:4;inline:" + sampleB64 + "|2^20|2:4"},
		{"a lifetime of 2^20", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^20"},
		{"a decimal lifetime of 1000", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|1000"},
		{"a lifetime above 2^48", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^49"},
		{"a lifetime that is not a number", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^x"},
		{"two lifetimes", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^31|2^31"},
		{"UNENCRYPTED_SRTP", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + " UNENCRYPTED_SRTP"},
		{"UNAUTHENTICATED_SRTP", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + " UNAUTHENTICATED_SRTP"},
		{"a key derivation rate", "1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + " KDR=10"},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			c, err := ParseCrypto(tc.value)
			if !errors.Is(err, ErrCrypto) {
				t.Fatalf("got %v, %v; want ErrCrypto", c, err)
			}
			if strings.Contains(err.Error(), sampleB64[:20]) {
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}

func TestCryptoNeverShowsItsKey(t *testing.T) {
	c, err := NewCrypto(7, SuiteAES32)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(c.Key[:])
	if s := c.String(); strings.Contains(s, b64) || !strings.Contains(s, "7 AES_CM_128_HMAC_SHA1_32") {
		t.Fatalf("String() = %q", s)
	}
	if a := c.Attribute(); a != "7 AES_CM_128_HMAC_SHA1_32 inline:"+b64 {
		t.Fatalf("Attribute() = %q", a)
	}
	back, err := ParseCrypto(c.Attribute())
	if err != nil || back != c {
		t.Fatalf("read back %v, %v", back, err)
	}
	d, err := NewCrypto(7, SuiteAES32)
	if err != nil {
		t.Fatal(err)
	}
	if d.Key == c.Key || d.Key == ([KeyLen]byte{}) {
		t.Fatal("two fresh keys are the same, or zero")
	}
	if _, err := NewCrypto(1, "AES_256_CM_HMAC_SHA1_80"); !errors.Is(err, ErrCrypto) {
		t.Fatalf("NewCrypto with another suite: %v", err)
	}
}

func TestOfferCryptoLines(t *testing.T) {
	mk := func(lines ...string) []byte {
		return sdpWith(append([]string{"c=IN IP4 192.0.2.1"}, lines...)...)
	}
	t.Run("the acceptable lines are kept in order, the others counted", func(t *testing.T) {
		o, err := ParseOffer(mk("m=audio 6000 RTP/SAVP 0",
			"a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:"+sampleB64,
			"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"+sampleB64+"|2^20|1:4",
			"a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:"+sampleB64,
			"a=crypto:4 AES_CM_128_HMAC_SHA1_80 inline:"+sampleB64))
		if err != nil {
			t.Fatal(err)
		}
		if o.Proto != ProtoSRTP || o.CryptoLines != 4 || len(o.Crypto) != 2 ||
			o.Crypto[0].Tag != 3 || o.Crypto[0].Suite != SuiteAES32 || o.Crypto[1].Tag != 4 || o.Crypto[1].Suite != SuiteAES80 {
			t.Fatalf("got %s with %d lines: %v", o.Proto, o.CryptoLines, o.Crypto)
		}
	})
	t.Run("RTP/AVP with a=crypto is best-effort SRTP", func(t *testing.T) {
		o, err := ParseOffer(mk("m=audio 6000 RTP/AVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+sampleB64))
		if err != nil {
			t.Fatal(err)
		}
		if o.Proto != ProtoRTP || len(o.Crypto) != 1 || o.Fallback != nil {
			t.Fatalf("got %+v", o)
		}
	})
	t.Run("a session-level a=crypto is not the stream's", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+sampleB64, "m=audio 6000 RTP/AVP 0"))
		if err != nil {
			t.Fatal(err)
		}
		if o.CryptoLines != 0 || len(o.Crypto) != 0 {
			t.Fatalf("got %+v", o)
		}
	})
	t.Run("an SRTP line without G.711 is passed over", func(t *testing.T) {
		o, err := ParseOffer(mk("m=audio 6000 RTP/SAVP 18", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+sampleB64, "m=audio 6002 RTP/AVP 8"))
		if err != nil {
			t.Fatal(err)
		}
		if o.AudioIndex != 1 || o.Proto != ProtoRTP || o.CryptoLines != 0 {
			t.Fatalf("got %+v", o)
		}
	})
}

// TestSecureAnswer: our answer keeps the offer's profile and the tag and
// suite of the line we accepted, with our own key (RFC 4568 7.1.2).
func TestSecureAnswer(t *testing.T) {
	ours := netip.MustParseAddr("192.0.2.100")
	for _, suite := range []string{SuiteAES80, SuiteAES32} {
		for _, proto := range []string{ProtoSRTP, ProtoRTP} {
			t.Run(proto+" "+suite, func(t *testing.T) {
				o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 "+proto+" 0 101",
					"a=crypto:5 "+suite+" inline:"+sampleB64, "a=rtpmap:101 telephone-event/8000"))
				if err != nil {
					t.Fatal(err)
				}
				a, err := NewAnswer(o, ours, 40000, 1, 1)
				if err != nil {
					t.Fatal(err)
				}
				mine, err := NewCrypto(o.Crypto[0].Tag, o.Crypto[0].Suite)
				if err != nil {
					t.Fatal(err)
				}
				a.Crypto = &mine
				body := a.Marshal()
				var sd pionsdp.SessionDescription
				if err := sd.Unmarshal(body); err != nil {
					t.Fatalf("pion rejects our answer: %v\n%s", err, body)
				}
				back, err := ParseOffer(body)
				if err != nil {
					t.Fatal(err)
				}
				if back.Proto != proto || back.CryptoLines != 1 || len(back.Crypto) != 1 || back.Crypto[0] != mine ||
					back.Crypto[0].Tag != 5 || back.Crypto[0].Suite != suite || back.Crypto[0].Key == sampleKey {
					t.Fatalf("answer reads back as %s %v\n%s", back.Proto, back.Crypto, body)
				}
			})
		}
	}
	t.Run("an RTP/SAVP answer without a key rejects the stream", func(t *testing.T) {
		o, err := ParseOffer(readSample(t, "srtp-only.sdp"))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAnswer(o, ours, 40000, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if body := a.Marshal(); !bytes.Contains(body, []byte("m=audio 0 RTP/SAVP 0\r\n")) || bytes.Contains(body, []byte("a=crypto")) {
			t.Fatalf("answer:\n%s", body)
		}
	})
	t.Run("a plain answer to a best-effort offer has no a=crypto", func(t *testing.T) {
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/AVP 0", "a=crypto:1 "+SuiteAES80+" inline:"+sampleB64))
		if err != nil {
			t.Fatal(err)
		}
		a, err := NewAnswer(o, ours, 40000, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if body := a.Marshal(); !bytes.Contains(body, []byte("m=audio 40000 RTP/AVP 0\r\n")) || bytes.Contains(body, []byte("a=crypto")) {
			t.Fatalf("answer:\n%s", body)
		}
	})
}

func TestSecureOffer(t *testing.T) {
	c80, _ := NewCrypto(1, SuiteAES80)
	c32, _ := NewCrypto(2, SuiteAES32)
	for _, proto := range []string{ProtoSRTP, ProtoRTP} {
		body := NewSecureOffer(netip.MustParseAddr("192.0.2.100"), 41000, 5, 6, proto, []Crypto{c80, c32})
		o, err := ParseOffer(body)
		if err != nil {
			t.Fatal(err)
		}
		if o.Proto != proto || len(o.Crypto) != 2 || o.Crypto[0] != c80 || o.Crypto[1] != c32 || o.DTMF != 101 {
			t.Fatalf("%s offer reads back as %+v\n%s", proto, o, body)
		}
	}
}

// FuzzCrypto feeds arbitrary a=crypto values to the parser: it never
// panics, refuses with ErrCrypto only, never quotes the key in an error,
// and whatever it accepts is one of our suites with a 30-byte key and
// writes back (Attribute) as a value that parses to the same thing.
func FuzzCrypto(f *testing.F) {
	for _, s := range []string{
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64,
		"2 AES_CM_128_HMAC_SHA1_32 inline:" + sampleB64 + "|2^31",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^20|1:4",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|2^20|1:4;inline:" + sampleB64 + "|2^20|2:4 KDR=1",
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + " WSH=64",
		"1 AES_256_CM_HMAC_SHA1_80 inline:" + sampleB64 + sampleB64,
		"1 AES_CM_128_HMAC_SHA1_80 inline:" + sampleB64 + "|18446744073709551616",
		"", "1", "1 x inline:", "x AES_CM_128_HMAC_SHA1_80 inline:=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		c, err := ParseCrypto(value)
		if err != nil {
			if !errors.Is(err, ErrCrypto) {
				t.Fatalf("unclassified error %v", err)
			}
			if _, key, ok := strings.Cut(value, "inline:"); ok && len(key) >= 8 && strings.Contains(err.Error(), key[:8]) &&
				!strings.Contains(value[:strings.Index(value, "inline:")], key[:8]) {
				t.Fatalf("error %q quotes the key", err)
			}
			return
		}
		if c.Suite != SuiteAES80 && c.Suite != SuiteAES32 || c.Tag > 999999999 {
			t.Fatalf("accepted %v", c)
		}
		back, err := ParseCrypto(c.Attribute())
		if err != nil || back != c {
			t.Fatalf("%q accepted as %v, written %q, read back %v, %v", value, c, c.Attribute(), back, err)
		}
		// The offer parser takes the line as the same attribute.
		o, err := ParseOffer(sdpWith("c=IN IP4 192.0.2.1", "m=audio 6000 RTP/SAVP 0", "a=crypto:"+c.Attribute()))
		if err != nil || len(o.Crypto) != 1 || o.Crypto[0] != c {
			t.Fatalf("in an offer: %v, %v", o, err)
		}
	})
}
