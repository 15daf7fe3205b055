package e2e

import (
	"bytes"
	"testing"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/test/phone"
)

// srtpRoom sends a call straight into a room.
var srtpRoom = []sip.Header{appParam("room=srtp")}

// SDES offers the test phones make: best effort (RTP/AVP with a=crypto)
// with both suites, and RTP/SAVP.
var (
	bestEffort = &phone.SRTP{Suites: []string{phone.SuiteAES80, phone.SuiteAES32}}
	savp       = &phone.SRTP{SAVP: true}
)

// TestSRTPKeysNeverOverUDP: SDES keys travel in the SDP, so a call over UDP
// never uses them (RFC 4568 section 8.3). In mandatory mode every offer over
// UDP is refused with 488, plain or with a=crypto; in optional mode (the
// default) an RTP/AVP offer with a=crypto is answered plain RTP/AVP without
// a=crypto and the call works, and an RTP/SAVP offer, which has no plain
// answer, gets 488.
func TestSRTPKeysNeverOverUDP(t *testing.T) {
	t.Parallel()
	t.Run("mandatory refuses every offer over UDP with 488", func(t *testing.T) {
		srv := start(t, func(c *conf.Config) { c.Server.SRTP = "mandatory" })
		for _, tc := range []struct {
			name string
			cfg  phone.Config
		}{
			{"a plain offer", phone.Config{Headers: srtpRoom}},
			{"an RTP/AVP offer with a=crypto", phone.Config{Headers: srtpRoom, SRTP: bestEffort}},
			{"an RTP/SAVP offer", phone.Config{Headers: srtpRoom, SRTP: savp}},
		} {
			if code := dialStatus(t, srv, tc.cfg); code != 488 {
				t.Errorf("%s: %d, want 488", tc.name, code)
			}
		}
		if n := srv.Metrics().ActiveCalls; n != 0 {
			t.Errorf("%d calls after the refusals", n)
		}
	})
	t.Run("optional answers RTP/AVP with a=crypto in the clear, and the call works", func(t *testing.T) {
		srv := start(t, nil) // srtp=optional is the default
		a := srv.direct(t, "srtp-udp", phone.Config{SRTP: bestEffort})
		b := srv.direct(t, "srtp-udp", phone.Config{})
		ans := a.AnswerSDP()
		if bytes.Contains(ans, []byte("a=crypto")) || !bytes.Contains(ans, []byte(" RTP/AVP ")) || a.Secure() {
			t.Fatalf("the answer over UDP (secure %v):\n%s", a.Secure(), ans)
		}
		a.SetTone(500)
		b.SetTone(700)
		hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
		hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
		if n := a.Unauthenticated(); n != 0 {
			t.Errorf("the phone dropped %d packets as unauthenticated", n)
		}
	})
	t.Run("optional refuses an RTP/SAVP offer over UDP with 488", func(t *testing.T) {
		srv := start(t, nil)
		if code := dialStatus(t, srv, phone.Config{Headers: srtpRoom, SRTP: savp}); code != 488 {
			t.Fatalf("RTP/SAVP over UDP: %d, want 488", code)
		}
	})
}
