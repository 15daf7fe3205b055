package sipapp

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"webconf/sipapp/calls"
	"webconf/sipapp/meeting"
	"webconf/sipapp/mixer"
)

// CallEvents is the typed sink of the calls API's events (call_created,
// call_updated, call_answered, call_ended with its reason), each with the
// call as GET /users/me/calls shows it and the users who may see it. Its
// methods must not block; the default ignores everything.
type CallEvents = calls.Events

// CallsConfig is the [calls] section: the provider of the calls API.
type CallsConfig struct {
	Domain        string // host[:port]; numbers become sip:<number>@<domain>
	OutboundProxy string // sip:host[:port][;transport=...]; "" = the domain itself
	AuthUser      string // digest credentials, for the provider's host only; never logged
	AuthPassword  string
	FromUser      string // From user towards the provider (default AuthUser)
}

// Errors of the calls API (rpc/rest maps them to HTTP).
var (
	ErrNoLine             = errors.New("the user has no line")
	ErrBadDestination     = errors.New("bad destination")
	ErrNoProvider         = errors.New("no provider: [calls] domain is empty")
	ErrDestinationRefused = errors.New("destination not allowed")
	ErrNoSuchCall         = calls.ErrNoSuchCall
)

// numberRe is a destination that is a number (dialled through the provider).
var numberRe = regexp.MustCompile(`^\+?[0-9*#]{1,32}$`)

// mixAdapter gives the model the mixer's groups.
type mixAdapter struct{ m *mixer.Scheduler }

func (a mixAdapter) NewGroup() calls.Group { return a.m.NewGroup() }

// Calls is the model of the calls API's legs (for the REST API and ad hoc
// conferences).
func (s *Server) Calls() *calls.Switchboard { return s.board }

// callLeg is a call of the calls API as the model sees it.
type callLeg struct {
	c      *call
	reason atomic.Pointer[string] // why we hung it up
}

func (l *callLeg) Member() *mixer.Member { return l.c.member }

func (l *callLeg) Hangup(reason string) {
	l.reason.CompareAndSwap(nil, &reason)
	l.c.end(endKick)
}

// providerHost reports whether a destination's host is the provider's
// domain.
func (s *Server) providerHost(u sip.Uri) bool {
	d := s.opt.Calls.Domain
	if d == "" {
		return false
	}
	h := u.Host
	if u.Port != 0 {
		h = fmt.Sprintf("%s:%d", u.Host, u.Port)
	}
	return strings.EqualFold(h, d) || strings.EqualFold(u.Host, d)
}

// Destination turns a destination of the calls API into the URI it
// dials: a number becomes sip:<number>@<domain>, a sip:/sips: URI is
// taken as it is. dialout_allowed_re applies to user@host[:port].
func (s *Server) Destination(dest string) (sip.Uri, error) {
	var u sip.Uri
	dest = strings.TrimSpace(dest)
	switch {
	case dest == "":
		return u, fmt.Errorf("%w: destination is empty", ErrBadDestination)
	case numberRe.MatchString(dest):
		if s.opt.Calls.Domain == "" {
			return u, fmt.Errorf("%w: %q is a number", ErrNoProvider, dest)
		}
		dest = "sip:" + dest + "@" + s.opt.Calls.Domain
	default:
		if err := meeting.CheckLine("destination", dest); err != nil {
			return u, fmt.Errorf("%w: %q is neither a number (digits, *, #, an optional leading +) nor a sip:/sips: URI", ErrBadDestination, dest)
		}
	}
	if err := sip.ParseUri(dest, &u); err != nil {
		return u, fmt.Errorf("%w: %v", ErrBadDestination, err)
	}
	if _, err := TransportForURI(u); err != nil {
		return u, fmt.Errorf("%w: %v", ErrBadDestination, err)
	}
	target := u.User + "@" + u.Host
	if u.Port != 0 {
		target = fmt.Sprintf("%s:%d", target, u.Port)
	}
	if err := s.dialoutAllowed(target); err != nil {
		return u, fmt.Errorf("%w: %v", ErrDestinationRefused, err)
	}
	return u, nil
}

// legSpec is one outgoing leg to place.
type legSpec struct {
	to       sip.Uri
	fromUser string // user part of From
	user     string // owner's UUID ("" for the far party)
	peerName string // what the owner sees of the other end
	peerNum  string
	ringback bool // the mix hears ringback while it rings
	answered func(*callLeg)
}

// dialLeg places an outgoing leg in mix m: through the provider (its
// proxy and its credentials, which then answer only challenges from the
// provider's host) when the destination is on the provider's domain,
// else straight to its host without credentials.
func (s *Server) dialLeg(spec legSpec, m *calls.Mix) (*callLeg, error) {
	if s.ctx == nil || s.ctx.Err() != nil || s.ShutdownMode() {
		return nil, fmt.Errorf("%w: server is stopping", ErrDialoutFailed)
	}
	target := spec.to.User + "@" + spec.to.Host
	if spec.to.Port != 0 {
		target = fmt.Sprintf("%s:%d", target, spec.to.Port)
	}
	if err := s.admitDialout(target); err != nil {
		return nil, err
	}
	fail := func(err error) (*callLeg, error) {
		s.dialouts.Add(-1)
		return nil, err
	}
	var proxy *sip.Uri
	var creds *DialRequest
	fromHost := s.ip.String()
	if s.ip.Is6() {
		fromHost = "[" + fromHost + "]"
	}
	cfg := s.opt.Calls
	if s.providerHost(spec.to) {
		proxy = s.callsProxy
		fromHost = cfg.Domain
		if cfg.AuthUser != "" {
			creds = &DialRequest{AuthUser: cfg.AuthUser, AuthPwd: cfg.AuthPassword}
		}
		if u := cfg.FromUser; u != "" {
			spec.fromUser = u
		} else if cfg.AuthUser != "" {
			spec.fromUser = cfg.AuthUser
		}
	}
	var from sip.Uri
	if err := sip.ParseUri("sip:"+spec.fromUser+"@"+fromHost, &from); err != nil {
		return fail(fmt.Errorf("%w: from %q: %v", ErrDialoutFailed, spec.fromUser, err))
	}
	c, err := s.newUAC(spec.to, from, proxy, creds)
	if err != nil {
		return fail(err)
	}
	l := &callLeg{c: c}
	// Receiving starts before the leg is in a mix (the mixer polls it from
	// then on).
	c.startMedia()
	if err := s.board.Add(calls.LegSpec{ID: c.tag, User: spec.user, PeerName: spec.peerName, PeerNumber: spec.peerNum, Endpoint: l}, m); err != nil {
		c.leg.Close()
		s.load.done(time.Now())
		return fail(fmt.Errorf("%w: %v", ErrDialoutFailed, err))
	}
	if spec.ringback && s.ringback != nil {
		c.member.SetInput(s.ringback.source())
	}
	inv := c.buildInvite(DialRequest{})
	ctx, cancel := context.WithCancel(s.ctx)
	tx, err := s.client.TransactionRequest(ctx, inv, sipgo.ClientRequestAddVia)
	if err != nil {
		cancel()
		c.leg.Close()
		s.load.done(time.Now())
		s.board.Ended(c.tag, "503 Service Unavailable")
		return fail(fmt.Errorf("%w: %v", ErrDialoutFailed, err))
	}
	s.mu.Lock()
	s.calls[c.callID] = c
	s.mu.Unlock()
	s.wg.Add(1)
	go l.run(ctx, cancel, inv, tx, spec.answered)
	c.log.Info("call leg placed", "to", spec.to.String(), "user", spec.user)
	return l, nil
}

// run is the life of an outgoing leg: ringing, answer, talk, end; the
// model hears of its end (and so hangs up its peer) whatever ended it.
func (l *callLeg) run(ctx context.Context, cancel context.CancelFunc, inv *sip.Request, tx sip.ClientTransaction, answered func(*callLeg)) {
	c := l.c
	s := c.s
	why := "hangup"
	defer s.wg.Done()
	defer s.dialouts.Add(-1)
	defer s.load.done(time.Now())
	defer cancel()
	defer c.cleanup()
	defer func() { s.board.Ended(c.tag, l.endReason(why)) }()
	f := &dialFlow{inv: inv, tx: tx}
	defer func() {
		if r := recover(); r != nil {
			s.counters.panics.Add(1)
			c.log.Error("call leg panicked", "panic", r, "stack", string(debug.Stack()))
			c.end(endFailed)
			switch {
			case f.answered:
				c.sendBye()
			case f.tx != nil:
				c.cancelInvite(f.inv, f.tx)
			}
			why = "failed"
		}
	}()
	ok, reason := c.followInvite(ctx, f, legDial{c})
	f.tx.Terminate()
	f.tx = nil
	if !ok {
		why = reason
		return
	}
	s.board.SetStatus(c.tag, calls.StatusUp)
	if answered != nil {
		answered(l)
	}
	c.talk("")
}

// endReason is why the leg ended, for call_ended.
func (l *callLeg) endReason(why string) string {
	if r := l.reason.Load(); r != nil {
		return *r
	}
	switch endReason(l.c.why.Load()) {
	case endBye:
		return "BYE"
	case endTimeout:
		return "timeout"
	case endShutdown:
		return "shutdown"
	}
	return why
}

// legDial is a leg of the calls API as its INVITE goes: the model hears
// that it rings; its ringback was set when it was placed (dialLeg).
type legDial struct{ c *call }

func (d legDial) progress(res *sip.Response) {
	if res.StatusCode == 180 || res.StatusCode == 183 {
		d.c.s.board.SetStatus(d.c.tag, calls.StatusRinging)
	}
}

func (legDial) ringing(bool) {}
func (legDial) answered()    {}
func (legDial) leave()       {}

func (d legDial) challengeFailed(code int, err error) {
	d.c.log.Warn("call leg challenge not answered", "code", code, "err", err)
}

func (legDial) notResent(error) string { return "503 Service Unavailable" }
func (legDial) cancelling() string     { return "cancelled" }

// PlaceCall is POST /users/me/calls: it rings the user's line; when the
// user answers, it dials the destination (the user hears ringback while
// it rings) and the two legs hear each other in a private mix. It returns
// the call_id of the user's leg.
func (s *Server) PlaceCall(u meeting.User, destination string) (string, error) {
	if u.Line == "" {
		return "", ErrNoLine
	}
	to, err := s.Destination(destination)
	if err != nil {
		return "", err
	}
	var line sip.Uri
	if err := sip.ParseUri(u.Line, &line); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoLine, err)
	}
	m := s.board.NewMix(calls.TwoParty, "", nil)
	who := to.User
	if who == "" {
		who = to.Host
	}
	l, err := s.dialLeg(legSpec{
		to: line, fromUser: userPart(who), user: u.UUID, peerNum: who,
		answered: func(*callLeg) { s.dialPeer(u, to, m) },
	}, m)
	if err != nil {
		return "", err
	}
	return l.c.tag, nil
}

// userPart makes a From user part of a destination (escaping nothing:
// only what a SIP user part may hold is kept).
func userPart(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 0x80 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("-_.!~*'()&=+$,;?/", r)) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "webconf"
	}
	return b.String()
}

// dialPeer dials the destination of a user's call once its first leg is
// up; if it cannot be placed, the user's leg is hung up with the reason.
func (s *Server) dialPeer(u meeting.User, to sip.Uri, m *calls.Mix) {
	_, err := s.dialLeg(legSpec{
		to: to, fromUser: userPart(u.Username), peerName: u.Username, peerNum: u.Username, ringback: true,
	}, m)
	if err != nil {
		for _, id := range s.board.Legs(m) {
			_ = s.board.Hangup(id, "destination: "+err.Error())
		}
	}
}

// callsDialin handles an INVITE from a user's phone calling out: From
// names a user with a SIP account and the Request-URI user is a number
// no room answers. It is challenged (401) until its digest credentials
// are the user's (userAuth); then it is answered and the destination
// dialled through the provider, as for POST /users/me/calls. false: not
// such a call (the INVITE goes on to the rooms).
func (s *Server) callsDialin(req *sip.Request, tx sip.ServerTransaction) bool {
	from := req.From()
	if from == nil || !numberRe.MatchString(req.Recipient.User) || req.Recipient.User == GuestExten {
		return false
	}
	if room, _, id := s.directTarget(req); room != "" || id != "" {
		return false
	}
	u, password, ok := s.book.SIPAccount(from.Address.User)
	if !ok {
		return false
	}
	if code, reason, hdr := s.userAuth(req, u, password); code != 0 {
		if hdr != nil {
			s.respond(tx, req, code, reason, nil, hdr)
		} else {
			s.respond(tx, req, code, reason, nil)
		}
		return true
	}
	to, err := s.Destination(req.Recipient.User)
	if err != nil {
		code, reason := 404, "Not Found"
		if errors.Is(err, ErrDestinationRefused) {
			code, reason = 403, "Forbidden"
		}
		s.respond(tx, req, code, reason, nil)
		return true
	}
	c, code, reason := s.newCall(req, tx)
	if c == nil {
		if code == 422 {
			s.reject422(tx, req)
		} else {
			s.respond(tx, req, code, reason, nil)
		}
		return true
	}
	c.runOutgoing(u, to)
	return true
}

// runOutgoing is a user's phone's call out: answered at once, it hears
// ringback while the destination rings, then the destination.
func (c *call) runOutgoing(u meeting.User, to sip.Uri) {
	s := c.s
	defer s.wg.Done()
	defer c.cleanup()
	l := &callLeg{c: c}
	m := s.board.NewMix(calls.TwoParty, "", nil)
	added := false
	defer func() {
		if r := recover(); r != nil {
			s.counters.panics.Add(1)
			c.log.Error("outgoing call panicked", "panic", r, "stack", string(debug.Stack()))
			c.end(endFailed)
			c.sendBye()
		}
		if added {
			s.board.Ended(c.tag, l.endReason("hangup"))
		}
	}()
	acked := c.answerCall()
	s.pending.Add(-1)
	if !acked {
		return
	}
	c.startMedia()
	if err := s.board.Add(calls.LegSpec{ID: c.tag, User: u.UUID, PeerNumber: to.User, Status: calls.StatusUp, Endpoint: l}, m); err != nil {
		c.end(endFailed)
		c.sendBye()
		return
	}
	added = true
	s.dialPeer(u, to, m)
	c.talk("")
}

func digestChallenge(realm, nonce string, stale bool) string {
	return (&digest.Challenge{Realm: realm, Nonce: nonce, Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale}).String()
}
