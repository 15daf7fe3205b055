package sipapp

import (
	"errors"
	"strings"
	"testing"

	"webconf/sipapp/sdp"
)

const testKey = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

func offerOf(t *testing.T, lines ...string) *sdp.Offer {
	t.Helper()
	body := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + strings.Join(lines, "\r\n") + "\r\n"
	o, err := sdp.ParseOffer([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSRTPPolicy: every mode, transport and kind of offer.
func TestSRTPPolicy(t *testing.T) {
	crypto80 := "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + testKey
	crypto32 := "a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:" + testKey
	mki := "a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^20|1:4"
	offers := map[string]*sdp.Offer{
		"plain":       offerOf(t, "m=audio 6000 RTP/AVP 0"),
		"avp+crypto":  offerOf(t, "m=audio 6000 RTP/AVP 0", crypto32, crypto80),
		"avp+mki":     offerOf(t, "m=audio 6000 RTP/AVP 0", mki),
		"savp":        offerOf(t, "m=audio 6000 RTP/SAVP 0", crypto80),
		"savp+mki":    offerOf(t, "m=audio 6000 RTP/SAVP 0", mki),
		"savp+plain":  offerOf(t, "m=audio 6000 RTP/SAVP 0", crypto80, "m=audio 6002 RTP/AVP 0"),
		"savp-nokey":  offerOf(t, "m=audio 6000 RTP/SAVP 0"),
		"savpmki+avp": offerOf(t, "m=audio 6000 RTP/SAVP 0", mki, "m=audio 6002 RTP/AVP 0"),
	}
	// want: "488", "plain" (answer RTP/AVP without a=crypto, port of the
	// stream) or "srtp <tag> <proto>".
	cases := []struct{ mode, transport, offer, want string }{
		{SRTPOff, "TLS", "plain", "plain 6000"},
		{SRTPOff, "TLS", "avp+crypto", "plain 6000"},
		{SRTPOff, "TLS", "savp", "488"},
		{SRTPOff, "TLS", "savp+plain", "plain 6002"},
		{SRTPOff, "UDP", "avp+crypto", "plain 6000"},

		{SRTPOptional, "UDP", "plain", "plain 6000"},
		{SRTPOptional, "UDP", "avp+crypto", "plain 6000"},
		{SRTPOptional, "TCP", "avp+crypto", "plain 6000"},
		{SRTPOptional, "UDP", "savp", "488"},
		{SRTPOptional, "UDP", "savp+plain", "plain 6002"},
		{SRTPOptional, "TLS", "plain", "plain 6000"},
		{SRTPOptional, "TLS", "avp+crypto", "srtp 4 RTP/AVP"},
		{SRTPOptional, "tls", "avp+crypto", "srtp 4 RTP/AVP"},
		{SRTPOptional, "TLS", "avp+mki", "plain 6000"},
		{SRTPOptional, "TLS", "savp", "srtp 3 RTP/SAVP"},
		{SRTPOptional, "TLS", "savp+plain", "srtp 3 RTP/SAVP"},
		{SRTPOptional, "TLS", "savp+mki", "488"},
		{SRTPOptional, "TLS", "savp-nokey", "488"},
		{SRTPOptional, "TLS", "savpmki+avp", "plain 6002"},
		{"", "TLS", "savp", "srtp 3 RTP/SAVP"},
		{"", "UDP", "avp+crypto", "plain 6000"},

		{SRTPMandatory, "UDP", "plain", "488"},
		{SRTPMandatory, "UDP", "avp+crypto", "488"},
		{SRTPMandatory, "UDP", "savp", "488"},
		{SRTPMandatory, "TCP", "savp+plain", "488"},
		{SRTPMandatory, "TLS", "plain", "488"},
		{SRTPMandatory, "TLS", "avp+mki", "488"},
		{SRTPMandatory, "TLS", "savp+mki", "488"},
		{SRTPMandatory, "TLS", "savpmki+avp", "488"},
		{SRTPMandatory, "TLS", "avp+crypto", "srtp 4 RTP/AVP"},
		{SRTPMandatory, "TLS", "savp", "srtp 3 RTP/SAVP"},
		{SRTPMandatory, "TLS", "savp+plain", "srtp 3 RTP/SAVP"},
	}
	for _, tc := range cases {
		ch, err := srtpPolicy(tc.mode, tc.transport, offers[tc.offer])
		got := "488"
		switch {
		case err != nil:
			if !errors.Is(err, errSRTPRefused) {
				t.Errorf("%s over %s, %s: unclassified %v", tc.mode, tc.transport, tc.offer, err)
			}
		case ch.remote != nil:
			got = "srtp " + itoa(int(ch.remote.Tag)) + " " + ch.offer.Proto
		default:
			got = "plain " + itoa(ch.offer.Port)
			if ch.offer.Proto != sdp.ProtoRTP {
				got = "plain answer on " + ch.offer.Proto
			}
		}
		if got != tc.want {
			t.Errorf("srtp=%q over %s, %s offer: %s, want %s (%v)", tc.mode, tc.transport, tc.offer, got, tc.want, err)
		}
	}
	if _, err := srtpPolicy(SRTPOptional, "TLS", nil); err == nil {
		t.Error("no offer accepted")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
