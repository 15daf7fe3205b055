package sipapp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"webconf/sipapp/sdp"
)

// SessionTimer is RFC 4028 configuration (SEMS's session_timer plugin
// keys). Durations are whole seconds on the wire.
type SessionTimer struct {
	Enabled   bool
	Expires   time.Duration // the interval we ask for (session_expires)
	MinSE     time.Duration // the smallest interval we accept (minimum_timer)
	Max       time.Duration // the largest interval we accept (maximum_timer)
	Refresh   string        // UPDATE_FALLBACK_INVITE, UPDATE or INVITE
	Accept501 bool          // a 501 to our refresh keeps the call (accept_501_reply)
}

// sessionExpires parses "Session-Expires: 1800;refresher=uac" (or its
// compact form "x").
func sessionExpires(m interface{ GetHeader(string) sip.Header }) (d time.Duration, refresher string, ok bool) {
	h := m.GetHeader("Session-Expires")
	if h == nil {
		h = m.GetHeader("x")
	}
	if h == nil {
		return 0, "", false
	}
	parts := strings.Split(h.Value(), ";")
	n, err := strconv.ParseUint(strings.TrimSpace(parts[0]), 10, 32)
	if err != nil {
		return 0, "", false
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(v))
		}
	}
	return time.Duration(n) * time.Second, refresher, true
}

func minSE(m interface{ GetHeader(string) sip.Header }) time.Duration {
	h := m.GetHeader("Min-SE")
	if h == nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(strings.Split(h.Value(), ";")[0]), 10, 32)
	if err != nil {
		return 0
	}
	return time.Duration(n) * time.Second
}

func supportsTimer(m interface{ GetHeaders(string) []sip.Header }) bool {
	for _, name := range []string{"Supported", "k", "Require"} {
		for _, h := range m.GetHeaders(name) {
			for _, opt := range strings.Split(h.Value(), ",") {
				if strings.EqualFold(strings.TrimSpace(opt), "timer") {
					return true
				}
			}
		}
	}
	return false
}

func secs(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// negotiateUAS applies RFC 4028 section 9 to a request (initial INVITE or
// a refresh): ok=false means answer 422 with our Min-SE. It sets the call's
// interval and refresher and returns the headers for the 2xx.
func (c *call) negotiateUAS(req *sip.Request) (hdrs []sip.Header, ok bool) {
	st := c.s.opt.SessionTimer
	if !st.Enabled {
		return nil, true
	}
	want, refresher, has := sessionExpires(req)
	if has && want < st.MinSE {
		return nil, false
	}
	interval := st.Expires
	if has {
		interval = min(want, max(st.Max, st.MinSE))
	}
	interval = max(interval, minSE(req), st.MinSE)
	uacTimer := supportsTimer(req)
	switch {
	case refresher == "uac" || refresher == "uas":
	case uacTimer:
		refresher = "uac"
	default:
		refresher = "uas"
	}
	c.stMu.Lock()
	c.stInterval, c.stWeRefresh = interval, refresher == "uas"
	c.stMu.Unlock()
	hdrs = append(hdrs, sip.NewHeader("Session-Expires", secs(interval)+";refresher="+refresher))
	if uacTimer {
		hdrs = append(hdrs, sip.NewHeader("Require", "timer"))
	}
	return hdrs, true
}

// reject422 answers a too-small Session-Expires (RFC 4028 section 6).
func (s *Server) reject422(tx sip.ServerTransaction, req *sip.Request) {
	s.respond(tx, req, 422, "Session Interval Too Small", nil,
		sip.NewHeader("Min-SE", secs(s.opt.SessionTimer.MinSE)))
}

// uacTimerHeaders go into a dial-out INVITE.
func (s *Server) uacTimerHeaders(expires time.Duration) []sip.Header {
	st := s.opt.SessionTimer
	if !st.Enabled {
		return nil
	}
	return []sip.Header{
		sip.NewHeader("Supported", "timer"),
		sip.NewHeader("Session-Expires", secs(expires)),
		sip.NewHeader("Min-SE", secs(st.MinSE)),
	}
}

// negotiateUAC reads the 2xx to our INVITE: who refreshes, how often.
func (c *call) negotiateUAC(res *sip.Response) {
	if !c.s.opt.SessionTimer.Enabled {
		return
	}
	d, refresher, ok := sessionExpires(res)
	if !ok {
		return // the callee does not do session timers
	}
	c.stMu.Lock()
	c.stInterval, c.stWeRefresh = d, refresher != "uas"
	c.stMu.Unlock()
}

// sessionDeadline is when the session timer next fires: half the interval
// when we refresh; otherwise the interval less min(32 s, a third), after
// which an unrefreshed session has expired (RFC 4028 section 10).
func (c *call) sessionDeadline() (time.Duration, bool, bool) {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	if c.stInterval <= 0 {
		return 0, false, false
	}
	if c.stWeRefresh {
		return c.stInterval / 2, true, true
	}
	return c.stInterval - min(32*time.Second, c.stInterval/3), false, true
}

// refreshed re-arms the timer after a refresh from the peer.
func (c *call) refreshed() {
	select {
	case c.stReset <- struct{}{}:
	default:
	}
}

// refreshSession sends our refresh: UPDATE (RFC 3311) without a body,
// falling back to a re-INVITE with our SDP when the peer does not do
// UPDATE, or a re-INVITE straight away. false: the session is over.
func (c *call) refreshSession() bool {
	st := c.s.opt.SessionTimer
	c.stMu.Lock()
	interval := c.stInterval
	c.stMu.Unlock()
	useUpdate := st.Refresh != "INVITE"
	// A re-INVITE carries our SDP, with the SRTP key of an SRTP call: it
	// may go only over TLS (RFC 4568 8.3). When the dialog's next hop is
	// not (a route set naming UDP or TCP), the refresh is an UPDATE
	// without a body, and a peer without UPDATE is not refreshed.
	c.dlg.Lock()
	hopTrans := c.inDialogRoute().trans
	c.dlg.Unlock()
	c.sdpMu.Lock()
	keysInClear := c.srtp != nil && !secureTransport(hopTrans)
	c.sdpMu.Unlock()
	if keysInClear {
		useUpdate = true
	}
	for attempt := 0; attempt < 2; attempt++ {
		method := sip.INVITE
		if useUpdate {
			method = sip.UPDATE
		}
		req := c.inDialog(method)
		// The refresher param is relative to this transaction: we send
		// it, so we are its UAC (RFC 4028 section 7.4).
		req.AppendHeader(sip.NewHeader("Session-Expires", secs(interval)+";refresher=uac"))
		req.AppendHeader(sip.NewHeader("Supported", "timer"))
		req.AppendHeader(c.contact())
		if method == sip.INVITE {
			c.sdpMu.Lock()
			body := append([]byte(nil), c.answer...)
			c.sdpMu.Unlock()
			if len(body) == 0 {
				body = c.offerBody()
			}
			req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			req.SetBody(body)
		}
		res, err := c.transact(req)
		switch {
		case err != nil:
			c.log.Info("session refresh failed", "err", err)
			return false
		case res.IsSuccess():
			if method == sip.INVITE {
				c.ackInDialog(req, res)
			}
			if d, _, ok := sessionExpires(res); ok && d > 0 {
				c.stMu.Lock()
				c.stInterval = d
				c.stMu.Unlock()
			}
			return true
		case (res.StatusCode == 501 || res.StatusCode == 405) && keysInClear:
			c.log.Warn("session not refreshed: the peer does not take UPDATE, and a re-INVITE would carry the SRTP key over "+hopTrans, "status", res.StatusCode)
			return true
		case (res.StatusCode == 501 || res.StatusCode == 405) && useUpdate && st.Refresh == "UPDATE_FALLBACK_INVITE":
			useUpdate = false
			continue
		case res.StatusCode == 501 && st.Accept501:
			return true
		default:
			c.log.Info("session refresh refused", "status", res.StatusCode)
			return false
		}
	}
	return false
}

// offerBody is our SDP offer for a re-INVITE when no answer was kept.
func (c *call) offerBody() []byte {
	c.sdpMu.Lock()
	defer c.sdpMu.Unlock()
	c.sdpVersion++
	if c.srtp != nil {
		// The same key, tag and profile: the refresh changes nothing.
		return sdp.NewSecureOffer(c.s.ip, c.leg.Port(), c.sessID, c.sdpVersion, c.srtp.proto, []sdp.Crypto{c.srtp.local})
	}
	return sdp.NewOffer(c.s.ip, c.leg.Port(), c.sessID, c.sdpVersion)
}

// ackInDialog acknowledges a 2xx to our re-INVITE.
func (c *call) ackInDialog(inv *sip.Request, res *sip.Response) {
	ack := c.inDialog(sip.ACK)
	if cs := ack.CSeq(); cs != nil && inv.CSeq() != nil {
		cs.SeqNo = inv.CSeq().SeqNo
		c.cseq.Add(^uint32(0))
	}
	if err := c.s.client.WriteRequest(ack, sipgo.ClientRequestAddVia); err != nil {
		c.log.Info("ACK not sent", "err", err)
	}
}

// transact sends an in-dialog request and waits for its final response,
// answering one digest challenge with the dial-out's credentials (only for
// dial-outs: a dial-in caller has given us none).
func (c *call) transact(req *sip.Request) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(c.s.byeCtx, 64*sip.T1)
	defer cancel()
	for attempt := 0; ; attempt++ {
		res, err := c.roundTrip(ctx, req)
		if err != nil {
			return nil, err
		}
		if (res.StatusCode != 401 && res.StatusCode != 407) || attempt > 0 || c.creds == nil {
			return res, nil
		}
		next, err := c.answerChallenge(req, res)
		if err != nil {
			return res, nil
		}
		req = next
	}
}

func (c *call) roundTrip(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	tx, err := c.s.client.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res, ok := <-tx.Responses():
			if !ok {
				return nil, fmt.Errorf("transaction closed")
			}
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("transaction ended")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// answerChallenge answers a 401/407 to one of our requests (RFC 3261
// 22.2) with the dial-out's credentials, and only to the next hop the
// request was sent to: the reply must come from that host (the outbound
// proxy, the first route, or the callee's host), whatever realm it names
// (providers dialled by IP address name their realm, Asterisk says
// "asterisk"); dialout_auth_realms, when set, restricts the realms. SEMS
// answers any realm from anyone (spec 2.5), which hands credentials to
// whoever can reach us. Callers answer at most once per request.
func (c *call) answerChallenge(req *sip.Request, res *sip.Response) (*sip.Request, error) {
	if c.creds == nil {
		return nil, fmt.Errorf("no credentials for this call")
	}
	hname, aname := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		hname, aname = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(hname)
	if h == nil {
		return nil, fmt.Errorf("no %s header", hname)
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return nil, fmt.Errorf("bad challenge: %w", err)
	}
	if !digest.CanDigest(chal) {
		return nil, fmt.Errorf("unsupported challenge (algorithm %q)", chal.Algorithm)
	}
	if !c.s.realmAllowed(chal.Realm) {
		return nil, fmt.Errorf("realm %q is not in dialout_auth_realms", chal.Realm)
	}
	if err := c.fromNextHop(req, res); err != nil {
		return nil, err
	}
	cred, err := digest.Digest(chal, digest.Options{
		Method: string(req.Method), URI: req.Recipient.String(),
		Username: c.creds.AuthUser, Password: c.creds.AuthPwd,
	})
	if err != nil {
		return nil, err
	}
	next := c.retryOf(req, aname)
	next.AppendHeader(sip.NewHeader(aname, cred.String()))
	return next, nil
}

// retryOf copies a request for a new transaction: no Via (the client adds
// a fresh branch), the next CSeq, the same destination, and without the
// named headers (which the caller replaces).
func (c *call) retryOf(req *sip.Request, drop ...string) *sip.Request {
	next := req.Clone()
	next.RemoveHeader("Via")
	for _, name := range drop {
		next.RemoveHeader(name)
	}
	if cs := next.CSeq(); cs != nil {
		cs.SeqNo = c.cseq.Add(1)
	}
	next.SetDestination(req.Destination())
	next.SetTransport(req.Transport())
	next.Laddr = req.Laddr
	return next
}
