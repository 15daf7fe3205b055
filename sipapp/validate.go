package sipapp

import (
	"runtime/debug"
	"strings"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// supported are the option tags we understand in Require (RFC 3261
// 8.2.2.3): only session timers.
var supported = map[string]bool{"timer": true}

// validated wraps a handler with the checks RFC 3261 8.2 asks of a UAS
// before it acts on a request, so that messages a proxy might read
// differently (spec/reliability.md 1.6, RFC 4475) are refused rather than
// half-understood.
//
// It also contains panics: a handler that panics (a bug, or input nobody
// thought of) ends its request alone, with 500 when it can still answer;
// the process and every other call go on.
func (s *Server) validated(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				s.counters.panics.Add(1)
				s.log.Error("SIP handler panicked", "method", string(req.Method), "panic", r, "stack", string(debug.Stack()))
				if !req.IsAck() {
					s.respond(tx, req, 500, "Server Internal Error", nil)
				}
			}
		}()
		if s.testHook != nil {
			s.testHook(req)
		}
		if code, reason, hdrs := s.check(req); code != 0 {
			if !req.IsAck() {
				s.respond(tx, req, code, reason, nil, hdrs...)
			}
			return
		}
		h(req, tx)
	}
}

func (s *Server) check(req *sip.Request) (int, string, []sip.Header) {
	if req.SipVersion != "SIP/2.0" {
		return 505, "Version Not Supported", nil
	}
	switch strings.ToLower(req.Recipient.Scheme) {
	case "sip", "sips", "tel":
	default:
		return 416, "Unsupported URI Scheme", nil
	}
	// sipgo upper-cases the start line's method but not CSeq's.
	if cs := req.CSeq(); cs == nil || !strings.EqualFold(string(cs.MethodName), string(req.Method)) {
		return 400, "CSeq Method Does Not Match", nil
	}
	// Single-valued headers given twice with different values: which one a
	// proxy believed is anyone's guess (RFC 4475 3.3.8, 3.3.9).
	for _, name := range []string{"To", "From", "Call-ID", "CSeq", "Max-Forwards", "Content-Length"} {
		hs := req.GetHeaders(name)
		for _, h := range hs[min(1, len(hs)):] {
			if h.Value() != hs[0].Value() {
				return 400, "Conflicting " + name, nil
			}
		}
	}
	if req.IsAck() || req.IsCancel() {
		return 0, "", nil // RFC 3261 8.2.2.3: no Require checks for ACK and CANCEL
	}
	var unknown []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			if tag = strings.TrimSpace(tag); tag != "" && !supported[strings.ToLower(tag)] {
				unknown = append(unknown, tag)
			}
		}
	}
	if len(unknown) > 0 {
		return 420, "Bad Extension", []sip.Header{sip.NewHeader("Unsupported", strings.Join(unknown, ", "))}
	}
	if req.IsInvite() {
		if !acceptsSDP(req) {
			return 406, "Not Acceptable", nil
		}
		if ct := req.ContentType(); ct != nil && len(req.Body()) > 0 && mediaType(ct.Value()) != "application/sdp" {
			return 415, "Unsupported Media Type", []sip.Header{sip.NewHeader("Accept", "application/sdp")}
		}
	}
	return 0, "", nil
}

func mediaType(v string) string {
	return strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
}

// acceptsSDP: our answers carry SDP, so an Accept that rules it out gets
// 406 (RFC 3261 21.4.7). No Accept means application/sdp.
func acceptsSDP(req *sip.Request) bool {
	hs := req.GetHeaders("Accept")
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			switch mediaType(t) {
			case "application/sdp", "application/*", "*/*", "":
				return true
			}
		}
	}
	return false
}
