package sipapp

import (
	"errors"
	"fmt"
	"strings"

	"webconf/sipapp/rtpleg"
	"webconf/sipapp/sdp"
)

// SRTP modes, [server] srtp.
const (
	SRTPOff       = "off"
	SRTPOptional  = "optional"
	SRTPMandatory = "mandatory"
)

// errSRTPRefused: the offer cannot be answered under the SRTP policy
// (488 Not Acceptable Here, RFC 3261 21.4.26).
var errSRTPRefused = errors.New("sipapp: offer refused by the SRTP policy")

// secureTransport reports whether SDES keys may travel over a call's
// signalling transport: only TLS (sipgo's names; "TLS" for SIP over TLS,
// RFC 3261 26.2, "WSS" for SIP over secure WebSocket, RFC 7118). Over UDP
// or TCP anyone on the path reads the key in the SDP (RFC 4568 section 8.3).
func secureTransport(transport string) bool {
	return strings.EqualFold(transport, "TLS") || strings.EqualFold(transport, "WSS")
}

// srtpChoice is what the policy decided for an offer.
type srtpChoice struct {
	// offer is the stream to answer: the offer itself, or the plain
	// RTP/AVP fallback of an RTP/SAVP offer.
	offer *sdp.Offer
	// remote is the offerer's a=crypto we accept (the first acceptable
	// line, RFC 4568 section 7.1.2); nil: plain RTP.
	remote *sdp.Crypto
}

// srtpPolicy decides how to answer an offer that came over transport
// (call.trans: "UDP", "TCP", "TLS", ...) in mode (SRTPOff, SRTPOptional or
// SRTPMandatory; "" is optional):
//
//   - Keys are used only over a secure transport (TLS). There, in optional
//     and mandatory mode, an offer with an acceptable a=crypto gets SRTP:
//     RTP/SAVP if offered so, RTP/AVP with a=crypto if offered so (the
//     "best effort" SRTP of baresip, Linphone and others).
//   - mandatory refuses anything else with 488: a plain offer over any
//     transport, an offer whose a=crypto lines are all unacceptable, and
//     every offer over UDP or TCP (keys may not be used there), which makes
//     mandatory without a TLS listener refuse every call.
//   - optional (over UDP/TCP, or without an acceptable a=crypto) and off
//     answer plain RTP/AVP: an RTP/AVP offer's a=crypto lines are ignored
//     (no a=crypto in the answer); an RTP/SAVP offer is answered by its
//     plain RTP/AVP fallback m-line if it has one, else 488 (an RTP/SAVP
//     stream has no valid plain answer).
func srtpPolicy(mode, transport string, offer *sdp.Offer) (srtpChoice, error) {
	if offer == nil {
		return srtpChoice{}, fmt.Errorf("%w: no offer", errSRTPRefused)
	}
	secure := secureTransport(transport)
	switch mode {
	case SRTPMandatory:
		switch {
		case !secure:
			return srtpChoice{}, fmt.Errorf("%w: srtp=mandatory and the call is over %s, where keys may not be sent", errSRTPRefused, transport)
		case len(offer.Crypto) == 0:
			return srtpChoice{}, fmt.Errorf("%w: srtp=mandatory and the offer has no acceptable a=crypto (%s, %d lines)", errSRTPRefused, offer.Proto, offer.CryptoLines)
		}
		return srtpChoice{offer: offer, remote: &offer.Crypto[0]}, nil
	case SRTPOff:
	default: // optional
		if secure && len(offer.Crypto) > 0 {
			return srtpChoice{offer: offer, remote: &offer.Crypto[0]}, nil
		}
	}
	if offer.Proto == sdp.ProtoSRTP {
		if offer.Fallback == nil {
			return srtpChoice{}, fmt.Errorf("%w: RTP/SAVP offer without a plain fallback, and SRTP may not be used (srtp=%s, %s)", errSRTPRefused, modeName(mode), transport)
		}
		return srtpChoice{offer: offer.Fallback}, nil
	}
	return srtpChoice{offer: offer}, nil
}

func modeName(mode string) string {
	if mode == "" {
		return SRTPOptional
	}
	return mode
}

// callSRTP is a call's SRTP state (under the call's sdpMu): the profile
// of our m-line and the keys both ways.
type callSRTP struct {
	proto  string
	local  sdp.Crypto // ours: sent in our SDP, we encrypt with it
	remote sdp.Crypto // the peer's: we decrypt with it
}

// keys are the leg's view of s.
func (s *callSRTP) keys() *rtpleg.Keys {
	if s == nil {
		return nil
	}
	k := &rtpleg.Keys{Suite: legSuite(s.local.Suite), Send: s.local.Key, Receive: s.remote.Key}
	return k
}

func legSuite(suite string) rtpleg.Suite {
	if suite == sdp.SuiteAES32 {
		return rtpleg.SuiteAES32
	}
	return rtpleg.SuiteAES80
}

// secureFor makes the SRTP state for answering remote: our key is kept
// when the peer's tag and suite are the ones already in use (a re-INVITE
// or a session refresh, RFC 4568 section 7.1.4), else it is fresh.
func secureFor(cur *callSRTP, proto string, remote sdp.Crypto) (*callSRTP, error) {
	if cur != nil && cur.local.Tag == remote.Tag && cur.local.Suite == remote.Suite {
		return &callSRTP{proto: proto, local: cur.local, remote: remote}, nil
	}
	local, err := sdp.NewCrypto(remote.Tag, remote.Suite)
	if err != nil {
		return nil, err
	}
	return &callSRTP{proto: proto, local: local, remote: remote}, nil
}
