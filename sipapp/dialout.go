package sipapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"webconf/dsp/g711"
	"webconf/sipapp/mixer"
	"webconf/sipapp/room"
	"webconf/sipapp/rtpleg"
	"webconf/sipapp/sdp"
)

// DialRequest is a dialout as SEMS's dialout function takes it (spec 2.5).
type DialRequest struct {
	Room          string
	Callee        string // user part of the R-URI and To
	FromUser      string
	Domain        string // From domain
	AuthUser      string // digest credentials; never logged
	AuthPwd       string
	Headers       []string // extra header lines "Name: value"
	CalleeDomain  string   // host[:port] of the R-URI and To; default Domain
	ParticipantID string
}

var (
	// ErrDialoutNotAllowed: the toll-fraud guard refused the callee.
	ErrDialoutNotAllowed = errors.New("dialout not allowed")
	// ErrDialoutFailed: the call could not be placed at all.
	ErrDialoutFailed = errors.New("dialout could not be placed")
)

// Dialout places an outgoing call into a room and returns its call_tag
// (our From-tag, SEMS's format) as soon as the INVITE is sent. The
// participant record exists, at 1 "INVITE", before the INVITE leaves.
func (s *Server) Dialout(ctx context.Context, req DialRequest) (string, error) {
	if s.ctx == nil || s.ctx.Err() != nil || s.ShutdownMode() {
		return "", fmt.Errorf("%w: server is stopping", ErrDialoutFailed)
	}
	if req.CalleeDomain == "" {
		req.CalleeDomain = req.Domain
	}
	// callee_domain may name the scheme: "sips:host[:port]" dials SIPS
	// (TLS); a ";transport=tls" after the host dials sip: over TLS.
	scheme := "sip"
	if rest, ok := cutPrefixFold(req.CalleeDomain, "sips:"); ok {
		scheme, req.CalleeDomain = "sips", rest
	} else if rest, ok := cutPrefixFold(req.CalleeDomain, "sip:"); ok {
		req.CalleeDomain = rest
	}
	target := req.Callee + "@" + req.CalleeDomain
	if err := s.admitDialout(target); err != nil {
		return "", err
	}
	tag, err := s.placeCall(req, scheme, target)
	if err != nil {
		s.dialouts.Add(-1)
		return "", err
	}
	return tag, nil
}

// dialoutAllowed applies dialout_allowed_re to user@host[:port].
func (s *Server) dialoutAllowed(target string) error {
	if re := s.opt.DialoutAllowedRE; re != nil && !re.MatchString(target) {
		return fmt.Errorf("%w: %q does not match dialout_allowed_re", ErrDialoutNotAllowed, target)
	}
	return nil
}

// admitDialout applies the dial-out guards to one outgoing leg (a room's
// dial-out or a leg of the calls API): dialout_allowed_re on
// user@host[:port], then max_dialouts, counting the leg in when admitted
// (its flow counts it out when it ends).
func (s *Server) admitDialout(target string) error {
	if err := s.dialoutAllowed(target); err != nil {
		return err
	}
	if max := s.opt.MaxDialouts; max > 0 {
		if n := s.dialouts.Add(1); int(n) > max {
			s.dialouts.Add(-1)
			return fmt.Errorf("%w: %d dial-outs already running (max_dialouts)", ErrDialoutNotAllowed, max)
		}
	} else {
		s.dialouts.Add(1)
	}
	return nil
}

func (s *Server) placeCall(req DialRequest, scheme, target string) (string, error) {
	var ruri, fromURI sip.Uri
	if err := sip.ParseUri(scheme+":"+target, &ruri); err != nil {
		return "", fmt.Errorf("%w: callee %q: %v", ErrDialoutFailed, target, err)
	}
	if _, err := TransportForURI(ruri); err != nil {
		return "", fmt.Errorf("%w: callee %q: %v", ErrDialoutFailed, target, err)
	}
	if err := sip.ParseUri("sip:"+req.FromUser+"@"+req.Domain, &fromURI); err != nil {
		return "", fmt.Errorf("%w: from %q: %v", ErrDialoutFailed, req.FromUser+"@"+req.Domain, err)
	}
	c, err := s.newUAC(ruri, fromURI, s.proxy, &req)
	if err != nil {
		return "", err
	}
	c.pid, c.room, c.number = req.ParticipantID, req.Room, scheme+":"+target
	c.log = c.log.With("room", req.Room)
	leg := c.leg
	if err := s.reg.AddDialout(req.Room, c.tag, c.number, c.pid, c); err != nil {
		leg.Close()
		s.load.done(time.Now())
		return "", fmt.Errorf("%w: %v", ErrDialoutFailed, err)
	}
	inv := c.buildInvite(req)
	ctx, cancel := context.WithCancel(s.ctx)
	tx, err := s.client.TransactionRequest(ctx, inv, sipgo.ClientRequestAddVia)
	if err != nil {
		cancel()
		c.log.Warn("dialout INVITE not sent", "err", err)
		s.reg.SetStatus(req.Room, c.tag, room.StatusFinished, "")
		leg.Close()
		s.load.done(time.Now())
		return "", fmt.Errorf("%w: %v", ErrDialoutFailed, err)
	}
	s.mu.Lock()
	s.calls[c.callID] = c
	s.mu.Unlock()
	s.wg.Add(1)
	go c.runUAC(ctx, cancel, inv, tx)
	c.log.Info("dialout", "callee", target)
	return c.tag, nil
}

// newUAC prepares an outgoing call to ruri, From fromURI, through proxy
// (nil: straight to ruri's host): its next hop resolved (and, over TLS,
// connected), the call limit admitted, its SDP offer decided and its RTP
// leg open. creds (nil: none) answer challenges from that hop only. On
// error nothing is held.
func (s *Server) newUAC(ruri, fromURI sip.Uri, proxy *sip.Uri, creds *DialRequest) (*call, error) {
	// The next hop: the outbound proxy when there is one (the INVITE
	// then names it in a Route header), else the callee's host. Its
	// address is resolved once; everything before the answer goes there,
	// and only a challenge from there gets credentials.
	hop := ruri
	if proxy != nil {
		hop = *proxy
	}
	trans := transportOf(hop)
	if err := checkTransport(trans, s.opt.SIPTLSListen); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDialoutFailed, hop.String(), err)
	}
	if ruri.IsEncrypted() && trans != TransportTLS {
		// A sips: target must be reached over TLS on every hop (RFC 3261
		// 26.2.2, RFC 5630 3.1.1): through an outbound proxy over UDP or
		// TCP the first hop would not be.
		return nil, fmt.Errorf("%w: %s is a sips: target and the outbound proxy %s is not over TLS", ErrDialoutFailed, ruri.String(), hop.String())
	}
	dest, err := s.resolveHop(s.ctx, hop)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDialoutFailed, err)
	}
	// A TLS hop is connected to here, at dest, its certificate verified
	// for the name (or address) the hop was given by (tlsdial.go).
	tlsName := tlsHopName(hop, trans)
	if tlsName != "" {
		if err := s.tlsToName(s.ctx, dest, tlsName); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDialoutFailed, err)
		}
	}
	if !s.load.admit(time.Now()) {
		return nil, fmt.Errorf("%w: call limit", ErrDialoutFailed)
	}
	now := time.Now()
	c := &call{
		s: s, uac: true, tag: newCallTag(now), callID: newCallTag(now),
		number: ruri.String(), proxy: proxy,
		ackCh: make(chan struct{}), digits: make(chan byte, 32),
		alone: make(chan struct{}, 1), endCh: make(chan struct{}),
		trans: trans, sips: ruri.IsEncrypted(), sessID: uint64(now.UnixNano()),
		local: party{uri: fromURI}, remote: party{uri: ruri}, target: ruri,
		dest: dest, stReset: make(chan struct{}, 1), tlsName: tlsName, tlsAddr: dest,
	}
	c.creds = creds
	if ap, err := netip.ParseAddrPort(dest); err == nil {
		c.authHop = ap.Addr().Unmap()
	}
	c.log = s.log.With("call_tag", c.tag, "call_id", c.callID)
	if err := c.offerSRTP(); err != nil {
		s.load.done(time.Now())
		return nil, fmt.Errorf("%w: %v", ErrDialoutFailed, err)
	}
	// The callee's address is unknown when we offer: a port of its own,
	// unless every call shares (rtp_socket=shared).
	leg, err := s.openLeg(rtpleg.Config{PT: g711.PCMU, DTMF: -1}, s.opt.RTPSocket == RTPSocketShared, c.authHop, c)
	if err != nil {
		s.load.done(time.Now())
		return nil, fmt.Errorf("%w: %v", ErrDialoutFailed, err)
	}
	c.leg = leg
	c.member = mixer.NewMember(leg, leg)
	leg.OnPanic(c.legPanicked)
	return c, nil
}

// buildInvite makes the dial-out INVITE (spec 2.5, A.3): R-URI and To
// sip:callee@callee_domain, From <sip:from_user@domain>, the extra
// headers, and a real SDP offer (SEMS sends an empty one).
func (c *call) buildInvite(req DialRequest) *sip.Request {
	inv := sip.NewRequest(sip.INVITE, *c.target.Clone())
	from := sip.FromHeader{Address: *c.local.uri.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", c.tag)
	to := sip.ToHeader{Address: *c.remote.uri.Clone(), Params: sip.NewParams()}
	inv.AppendHeader(&from)
	inv.AppendHeader(&to)
	inv.AppendHeader(sip.NewHeader("Call-ID", c.callID))
	inv.AppendHeader(&sip.CSeqHeader{SeqNo: c.cseq.Add(10), MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	inv.AppendHeader(&mf)
	if p := c.proxy; p != nil {
		// Loose routing through the outbound proxy (RFC 3261 8.1.2,
		// 16.12): the Request-URI stays the callee.
		inv.AppendHeader(&sip.RouteHeader{Address: *p.Clone()})
	}
	inv.AppendHeader(c.contact())
	inv.AppendHeader(sip.NewHeader("Allow", allowed))
	inv.AppendHeader(sip.NewHeader("User-Agent", c.s.opt.Signature))
	for _, line := range req.Headers {
		name, value, ok := strings.Cut(line, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || !isToken(name) {
			c.log.Warn("dialout: ignoring a malformed extra header line")
			continue
		}
		inv.AppendHeader(sip.NewHeader(name, value))
	}
	for _, h := range c.s.uacTimerHeaders(c.s.opt.SessionTimer.Expires) {
		inv.AppendHeader(h)
	}
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	c.sdpVersion = 1
	inv.SetBody(sdp.NewSecureOffer(c.s.ip, c.leg.Port(), c.sessID, c.sdpVersion, c.offerProto, c.offered))
	inv.SetTransport(c.trans)
	inv.SetDestination(c.dest)
	c.s.fromSIPPort(inv)
	return inv
}

// replyReason is SEMS's reason string for a reply: "<code> <phrase>".
func replyReason(res *sip.Response) string { return fmt.Sprintf("%d %s", res.StatusCode, res.Reason) }

// dialFlow is where a dial-out's flow stands, so that a panic anywhere in
// it can be undone (abandon). Only the flow's goroutine touches it.
type dialFlow struct {
	inv      *sip.Request
	tx       sip.ClientTransaction // the INVITE's, until it is terminated
	answered bool                  // the 2xx was ACKed: the dialog exists
	final    bool                  // the record's final status is set
	staying  bool                  // in stay, whose defer leaves the mix and finishes the record
}

// hook runs the tests' dial-out hook, if any.
func (c *call) hook(stage string) {
	if h := c.s.dialHook; h != nil {
		h(stage)
	}
}

// runUAC is the life of a dial-out: ringing (with ringback into the room),
// early media, answer, then the same in-room loop as a dial-in.
func (c *call) runUAC(ctx context.Context, cancel context.CancelFunc, inv *sip.Request, tx sip.ClientTransaction) {
	defer c.s.wg.Done()
	defer c.s.dialouts.Add(-1)
	defer c.s.load.done(time.Now())
	defer cancel()
	defer c.cleanup()
	f := &dialFlow{inv: inv, tx: tx}
	defer func() {
		// As for a dial-in, a flow that panics ends alone: out of the
		// room, BYE or CANCEL to the callee, counted.
		if r := recover(); r != nil {
			c.s.counters.panics.Add(1)
			c.log.Error("dial-out flow panicked", "panic", r, "stack", string(debug.Stack()))
			c.end(endFailed)
			c.abandon(f)
		}
	}()
	c.startMedia()
	answered := c.awaitAnswer(ctx, f)
	f.tx.Terminate()
	f.tx = nil
	if !answered {
		f.final = true
		return
	}
	c.s.reg.SetStatus(c.room, c.tag, room.StatusConnected, "200 OK")
	c.hook("answered")
	f.staying = true
	c.stay(c.room)
}

// abandon undoes what a dial-out that panicked had under way: it leaves
// the room's mix, hangs up an answered callee (BYE) or cancels a ringing
// one (CANCEL), and finishes the record.
func (c *call) abandon(f *dialFlow) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("dial-out clean-up after a panic panicked", "panic", r)
		}
	}()
	if !f.staying {
		c.s.leaveLive(c.room, c, false) // nothing when it is not in the mix
	}
	switch {
	case f.answered:
		c.sendBye()
	case f.tx != nil:
		c.cancelInvite(f.inv, f.tx)
	}
	if f.tx != nil {
		f.tx.Terminate()
		f.tx = nil
	}
	if !f.staying && !f.final {
		c.s.reg.SetStatus(c.room, c.tag, room.StatusFinished, "")
		f.final = true
	}
}

// awaitAnswer follows a dial-out's INVITE until it is answered (true) or
// over (false, status already final).
func (c *call) awaitAnswer(ctx context.Context, f *dialFlow) bool {
	ok, reason := c.followInvite(ctx, f, &roomDial{c: c})
	if !ok {
		c.s.reg.SetStatus(c.room, c.tag, room.StatusFinished, reason)
	}
	return ok
}

// inviteHooks is what the reply loop of an outgoing INVITE (followInvite)
// leaves to the flow that placed it: a room's dial-out (roomDial) or a
// leg of the calls API (legDial).
type inviteHooks interface {
	// progress sees every 1xx first, 100 included.
	progress(res *sip.Response)
	// ringing follows a 1xx other than 100 once its SDP, if any, is
	// taken: early, the leg hears the callee's early media from now on.
	ringing(early bool)
	// answered ends a 2xx taken: the leg hears the callee.
	answered()
	// leave comes first when the attempt fails (before a BYE or CANCEL).
	leave()
	// challengeFailed: a 401/407 could not be answered.
	challengeFailed(code int, err error)
	// notResent: a retry of the INVITE could not be sent (hopErr: its
	// TLS hop could not be secured; nil: the transaction did not start).
	// It returns the reason the attempt ends with.
	notResent(hopErr error) string
	// cancelling: the call ended before the answer; the CANCEL follows.
	// It returns the reason the attempt ends with.
	cancelling() string
}

// followInvite follows an outgoing INVITE's replies until the callee
// answers (true) or the attempt is over (false, and its reason: the reply
// that ended it, or the hooks'). f.tx is the transaction under way (the
// caller terminates it); f.answered is set once the 2xx is ACKed.
func (c *call) followInvite(ctx context.Context, f *dialFlow, h inviteHooks) (bool, string) {
	authTried, minSETried := false, false
	fail := func(reason string) (bool, string) {
		h.leave()
		return false, reason
	}
	// retry sends next in a new transaction in place of the one under way;
	// false (and the reason) when it could not be sent.
	retry := func(next *sip.Request) (string, bool) {
		f.tx.Terminate()
		if err := c.secureHop(ctx, next); err != nil {
			return h.notResent(err), false
		}
		tx, err := c.s.client.TransactionRequest(ctx, next, sipgo.ClientRequestAddVia)
		if err != nil {
			return h.notResent(nil), false
		}
		f.inv, f.tx = next, tx
		return "", true
	}
	for {
		select {
		case res, ok := <-f.tx.Responses():
			if !ok {
				continue
			}
			code := res.StatusCode
			switch {
			case code < 200:
				h.progress(res)
				if code == 100 {
					continue
				}
				early := len(res.Body()) > 0 && c.applyAnswer(res) == nil
				if early {
					// Early media replaces the ringback (spec 5.5).
					c.member.SetInput(c.leg)
				}
				h.ringing(early)
			case code < 300:
				c.confirm(res)
				f.answered = true
				c.negotiateUAC(res)
				if err := c.applyAnswer(res); err != nil {
					c.log.Warn("unusable SDP answer, hanging up", "err", err)
					h.leave()
					c.sendBye()
					return false, "488 Not Acceptable Here"
				}
				c.member.SetInput(c.leg)
				go c.reack(f.tx, res)
				// Joined from now on (set before the others can see the
				// call arrive; an atomic, as listings read it meanwhile).
				c.joinedAt.Store(time.Now().UnixNano())
				h.answered()
				return true, ""
			case code == 422 && !minSETried && c.s.opt.SessionTimer.Enabled && minSE(res) > 0:
				// Session interval too small: ask again with the callee's
				// Min-SE (RFC 4028 section 7.4), once.
				minSETried = true
				next := c.retryOf(f.inv, "Session-Expires", "Min-SE")
				next.AppendHeader(sip.NewHeader("Session-Expires", secs(max(minSE(res), c.s.opt.SessionTimer.Expires))))
				next.AppendHeader(sip.NewHeader("Min-SE", secs(minSE(res))))
				if reason, ok := retry(next); !ok {
					return fail(reason)
				}
			case (code == 401 || code == 407) && !authTried:
				authTried = true
				next, err := c.answerChallenge(f.inv, res)
				if err != nil {
					h.challengeFailed(code, err)
					return fail(replyReason(res))
				}
				if reason, ok := retry(next); !ok {
					return fail(reason)
				}
			default:
				// Unlike SEMS, the failure reason stays (spec 10.9).
				return fail(replyReason(res))
			}
		case <-f.tx.Done():
			reason := "408 Request Timeout"
			if err := f.tx.Err(); err != nil && !errors.Is(err, sip.ErrTransactionTimeout) {
				reason = "503 Service Unavailable"
			}
			return fail(reason)
		case <-c.endCh:
			// Kicked (or shutting down) before the answer: CANCEL.
			h.leave()
			reason := h.cancelling()
			c.cancelInvite(f.inv, f.tx)
			return false, reason
		}
	}
}

// roomDial is a room's dial-out as its INVITE goes: its record's status
// follows the replies; while it rings it is in the room's mix (with the
// ringback or the callee's early media).
type roomDial struct {
	c      *call
	inRoom bool // in the room's mix while ringing / early media
}

func (d *roomDial) progress(res *sip.Response) {
	st := room.StatusConnecting
	if res.StatusCode == 180 || res.StatusCode == 183 {
		st = room.StatusRinging
	}
	d.c.s.reg.SetStatus(d.c.room, d.c.tag, st, replyReason(res))
}

func (d *roomDial) ringing(early bool) {
	c := d.c
	if !early && c.s.ringback != nil && !d.inRoom {
		c.member.SetInput(c.s.ringback.source())
	}
	if !d.inRoom && (early || c.s.ringback != nil) {
		c.s.joinLive(c.room, c, true)
		d.inRoom = true
	}
	c.hook("ringing")
}

func (d *roomDial) answered() {
	if d.inRoom {
		d.c.s.announce(d.c.room, d.c)
	} else {
		d.c.s.joinLive(d.c.room, d.c, false)
	}
}

func (d *roomDial) leave() {
	if d.inRoom {
		d.c.s.leaveLive(d.c.room, d.c, false)
		d.inRoom = false
	}
}

func (d *roomDial) challengeFailed(code int, err error) {
	d.c.log.Warn("dialout challenge not answered", "code", code, "err", err)
}

func (d *roomDial) notResent(hopErr error) string {
	if hopErr != nil {
		d.c.log.Warn("dialout INVITE not resent", "err", hopErr)
	}
	return ""
}

func (d *roomDial) cancelling() string {
	d.c.s.reg.SetStatus(d.c.room, d.c.tag, room.StatusDisconnecting, room.ReasonDisconnect)
	return ""
}

// cutPrefixFold is strings.CutPrefix ignoring ASCII case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// splitHostPortLoose splits "host:port" (IPv6 in brackets) or returns a
// bare host alone; anything else is an error.
func splitHostPortLoose(d string) (string, string, error) {
	if h, p, err := net.SplitHostPort(d); err == nil {
		return h, p, nil
	}
	if strings.ContainsAny(d, ":[]") || d == "" {
		if a, err := netip.ParseAddr(d); err == nil {
			return a.String(), "", nil // a bare IPv6 address
		}
		return "", "", fmt.Errorf("bad host %q", d)
	}
	return d, "", nil
}

// confirm records the dialog the 2xx established: their tag, the remote
// target (Contact) and the route set (Record-Route reversed, RFC 3261
// 12.1.2).
func (c *call) confirm(res *sip.Response) {
	c.dlg.Lock()
	if to := res.To(); to != nil {
		c.fromTag, _ = to.Params.Get("tag")
	}
	if ct := res.Contact(); ct != nil {
		c.target = *ct.Address.Clone()
		c.dest = hopAddr(c.target)
	}
	rrs := routeURIs(res.GetHeaders("Record-Route"))
	c.routes = c.routes[:0]
	for i := len(rrs) - 1; i >= 0; i-- {
		c.routes = append(c.routes, rrs[i])
	}
	c.dlg.Unlock()
	c.sendAck(res)
}

// sendAck acknowledges a 2xx (the TU's job, RFC 3261 13.2.2.4).
func (c *call) sendAck(res *sip.Response) {
	ack := c.inDialog(sip.ACK)
	if cs := ack.CSeq(); cs != nil && res.CSeq() != nil {
		cs.SeqNo = res.CSeq().SeqNo
		c.cseq.Add(^uint32(0)) // the ACK reuses the INVITE's number
	}
	if err := c.s.client.WriteRequest(ack, sipgo.ClientRequestAddVia); err != nil {
		c.log.Info("ACK not sent", "err", err)
	}
}

// reack answers retransmitted 2xx with the ACK again until the
// transaction ends (the 200 was retransmitted because our ACK was lost).
func (c *call) reack(tx sip.ClientTransaction, first *sip.Response) {
	t := time.NewTimer(64 * sip.T1)
	defer t.Stop()
	for {
		select {
		case res, ok := <-tx.Responses():
			if !ok {
				return
			}
			if res.IsSuccess() {
				c.sendAck(first)
			}
		case <-tx.Done():
			return
		case <-t.C:
			return
		case <-c.endCh:
			return
		}
	}
}

// offerSRTP decides a dial-out's offer: over a secure transport, and
// unless srtp=off, a=crypto lines for both suites (AES_CM_128_HMAC_SHA1_80
// first, each with a fresh key) on RTP/SAVP in mandatory mode, on RTP/AVP
// ("best effort", a callee without SRTP answers plain) in optional mode.
// Over UDP or TCP the offer is plain, and mandatory mode refuses to dial.
func (c *call) offerSRTP() error {
	c.offerProto = sdp.ProtoRTP
	mode := c.s.opt.SRTP
	secure := secureTransport(c.trans)
	switch {
	case mode == SRTPMandatory && !secure:
		return fmt.Errorf("srtp=mandatory and the dial-out goes over %s, where SRTP keys may not be sent", c.trans)
	case mode == SRTPOff || !secure:
		return nil
	case mode == SRTPMandatory:
		c.offerProto = sdp.ProtoSRTP
	}
	for i, suite := range []string{sdp.SuiteAES80, sdp.SuiteAES32} {
		cr, err := sdp.NewCrypto(uint32(i+1), suite)
		if err != nil {
			return err
		}
		c.offered = append(c.offered, cr)
	}
	return nil
}

// answeredSRTP checks the callee's answer against our offer (RFC 4568
// 7.1.3): an a=crypto in the answer names one of our tags with its suite,
// on the profile we offered; without one, the call is plain, which only a
// best-effort offer (optional mode, RTP/AVP) allows.
func (c *call) answeredSRTP(o *sdp.Offer) (*callSRTP, error) {
	if len(c.offered) == 0 {
		if o.CryptoLines > 0 || o.Proto != sdp.ProtoRTP {
			return nil, fmt.Errorf("%w: %s answer with %d a=crypto lines to a plain offer", errSRTPRefused, o.Proto, o.CryptoLines)
		}
		return nil, nil
	}
	if o.Proto != c.offerProto {
		return nil, fmt.Errorf("%w: %s answer to an %s offer", errSRTPRefused, o.Proto, c.offerProto)
	}
	if len(o.Crypto) == 0 {
		if o.CryptoLines > 0 || c.offerProto == sdp.ProtoSRTP || c.s.opt.SRTP == SRTPMandatory {
			return nil, fmt.Errorf("%w: no acceptable a=crypto in the answer (%d lines)", errSRTPRefused, o.CryptoLines)
		}
		return nil, nil
	}
	remote := o.Crypto[0]
	for _, ours := range c.offered {
		if ours.Tag == remote.Tag && ours.Suite == remote.Suite {
			return &callSRTP{proto: c.offerProto, local: ours, remote: remote}, nil
		}
	}
	return nil, fmt.Errorf("%w: the answer's a=crypto (tag %d, %s) is not one we offered", errSRTPRefused, remote.Tag, remote.Suite)
}

// applyAnswer takes the callee's SDP into the leg.
func (c *call) applyAnswer(res *sip.Response) error {
	o, err := sdp.ParseOffer(res.Body())
	if err != nil {
		return err
	}
	sec, err := c.answeredSRTP(o)
	if err != nil {
		return err
	}
	send := o.Direction != sdp.RecvOnly && o.Direction != sdp.Inactive
	c.sdpMu.Lock()
	defer c.sdpMu.Unlock()
	if c.srtp != nil && sec == nil {
		return errSRTPDowngrade
	}
	if err := c.leg.Update(rtpleg.Config{
		PT: o.Codecs[0], DTMF: o.DTMF, CN: cnPT(o.CN), Ptime: o.Ptime,
		Remote:   netip.AddrPortFrom(o.Addr.Unmap(), uint16(o.Port)),
		Send:     send && !o.Hold,
		ExpectRx: o.Direction == sdp.SendRecv || o.Direction == sdp.SendOnly,
		SRTP:     sec.keys(),
	}); err != nil {
		return err
	}
	c.srtp = sec
	// The callee's answer is here: its packets may latch the leg from now
	// on (strict RTP); what came before is dropped.
	c.leg.Answered()
	return nil
}

// cancelInvite sends CANCEL (RFC 3261 9.1) and waits briefly for the
// INVITE's final reply; a 200 that crossed the CANCEL is ACKed and hung up.
func (c *call) cancelInvite(inv *sip.Request, tx sip.ClientTransaction) {
	cancelReq := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	for _, name := range []string{"Via", "From", "To", "Call-ID", "Route", "Max-Forwards"} {
		if h := inv.GetHeader(name); h != nil {
			cancelReq.AppendHeader(sip.HeaderClone(h))
		}
	}
	if cs := inv.CSeq(); cs != nil {
		cancelReq.AppendHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: sip.CANCEL})
	}
	cancelReq.SetTransport(inv.Transport())
	cancelReq.SetDestination(inv.Destination())
	cancelReq.Laddr = inv.Laddr
	cancelReq.SetBody(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel2()
	if ctx2.Err() == nil {
		if ctx.Err() == nil {
			if _, err := c.s.client.Do(ctx, cancelReq, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
				c.log.Info("CANCEL failed", "err", err)
			}
		}
	}
	for {
		select {
		case res, ok := <-tx.Responses():
			if !ok {
				return
			}
			if res.IsSuccess() {
				c.confirm(res)
				c.sendBye()
				return
			}
			if res.StatusCode >= 300 {
				return
			}
		case <-tx.Done():
			return
		case <-ctx2.Done():
			return
		}
	}
}
