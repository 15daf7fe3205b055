package sipapp

import (
	"errors"
	"log/slog"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/sipapp/meeting"
	"webconf/sipapp/mixer"
	"webconf/sipapp/room"
	"webconf/sipapp/rtpleg"
	"webconf/sipapp/sdp"
)

// endReason says why a call ended.
type endReason int

const (
	endNone     endReason = iota
	endBye                // the caller hung up
	endKick               // kicked by the control API or the lonely-user timer
	endTimeout            // no RTP for dead_rtp_time, or no ACK
	endShutdown           // server stopping
	endFailed             // we gave up (wrong PIN, bad room)
)

// call is one SIP dialog with its media leg and its flow.
type call struct {
	s       *Server
	log     *slog.Logger
	invite  *sip.Request
	tx      sip.ServerTransaction
	callID  string
	tag     string // our To-tag: SEMS's call_tag
	fromTag string // their tag (under dlg once the call is visible)
	number  string
	pid     string
	dest    string // where in-dialog requests go (host:port)
	trans   string // transport of the dialog: "UDP", "TCP" or "TLS"
	sips    bool   // the dialog is SIPS (RFC 3261 12.1.1): our Contact is sips:

	// The dialog as RFC 3261 12 defines it: our side and theirs (tags are
	// tag and fromTag), the remote target and the route set. dlg guards
	// fromTag, target, dest and routes: a dial-out learns them from the
	// 2xx (confirm) while sipgo's goroutines look the call up.
	dlg    sync.Mutex
	uac    bool
	local  party
	remote party
	target sip.Uri
	routes []sip.Uri

	// authHop is the address a dial-out's INVITE was sent to (the outbound
	// proxy or the callee's host, resolved): the only host whose
	// challenges, to the INVITE or to a later request, get credentials.
	authHop netip.Addr
	// tlsName and tlsAddr: a dial-out whose next hop is TLS reaches it at
	// tlsAddr (where the hop's name resolved to) over a connection whose
	// certificate names tlsName, the hop as it was given: a host name or
	// an address (tlsdial.go). Set once when the call is made.
	tlsName, tlsAddr string
	// proxy is the outbound proxy a call we placed goes through (the
	// [server] one for a room's dial-out, the [calls] one for a call to
	// the provider); nil: straight to the callee.
	proxy *sip.Uri

	leg    *rtpleg.Leg
	member *mixer.Member
	offer  *sdp.Offer

	sdpMu      sync.Mutex // serialises offers/answers and the SDP version
	sdpVersion uint64
	sessID     uint64
	answer     []byte
	srtp       *callSRTP // under sdpMu; nil: plain RTP
	// A dial-out's SRTP offer (set before the INVITE, then only read):
	// the a=crypto lines we offered, over offerProto.
	offered    []sdp.Crypto
	offerProto string

	ackCh   chan struct{}
	ackOnce sync.Once
	digits  chan byte
	alone   chan struct{} // poked when the room's head count changes
	endCh   chan struct{}
	endOnce sync.Once
	why     atomic.Int32
	cseq    atomic.Uint32

	room     string       // set once the call is in a room
	joinedAt atomic.Int64 // unix nanos when it joined its room; 0 before
	talking  atomic.Bool
	// pre is the room chosen before the answer (a meeting-guest caller
	// with good credentials, or a meeting's or public room's number as
	// the Request-URI user).
	pre string
	// admitted: an owner let the call out of a meeting's lobby, where it
	// waited since before the room was locked; the lock does not keep it
	// out.
	admitted bool
	// newPublic is the identifier of the public room this call is to make
	// once acknowledged (sip:c.<identifier> of no open room).
	newPublic string
	// user is the UUID of the user whose phone this is (it answered the
	// challenge of a meeting's direct dial with the user's SIP
	// credentials, meetingUser); "" for a guest. Set before the call runs.
	user string

	// RFC 4028 session timer: interval, whether we refresh, and a poke
	// when the peer refreshed.
	stMu        sync.Mutex
	stInterval  time.Duration
	stWeRefresh bool
	stHdrs      []sip.Header
	stReset     chan struct{}

	creds *DialRequest // a dial-out's digest credentials; never logged
	who   caller       // whom the INVITE is charged to, for per-source budgets

	// web is set for a browser participant (browser.go): no SIP dialog,
	// no RTP leg; nil for every SIP call.
	web *Browser
}

// newCall validates an initial INVITE, negotiates SDP and opens the RTP
// leg. On failure it returns the SIP status to answer with.
func (s *Server) newCall(req *sip.Request, tx sip.ServerTransaction) (*call, int, string) {
	cid, from, to := req.CallID(), req.From(), req.To()
	if cid == nil || from == nil || to == nil || req.Contact() == nil {
		return nil, 400, "Bad Request"
	}
	fromTag, _ := from.Params.Get("tag")
	if fromTag == "" {
		return nil, 400, "Missing From Tag"
	}
	ct := req.ContentType()
	if len(req.Body()) == 0 || ct == nil || !strings.EqualFold(strings.TrimSpace(strings.SplitN(ct.Value(), ";", 2)[0]), "application/sdp") {
		// We never send the offer in a 200 (no delayed offer support).
		return nil, 488, "Not Acceptable Here"
	}
	offer, err := sdp.ParseOffer(req.Body())
	if err != nil {
		if errors.Is(err, sdp.ErrMalformed) {
			return nil, 400, "Bad Request"
		}
		return nil, 488, "Not Acceptable Here"
	}
	choice, err := srtpPolicy(s.opt.SRTP, req.Transport(), offer)
	if err != nil {
		s.log.Info("call refused", "reason", err)
		return nil, 488, "Not Acceptable Here"
	}
	offer = choice.offer
	now := time.Now()
	c := &call{
		s: s, invite: req, tx: tx, callID: cid.Value(), fromTag: fromTag,
		tag: newCallTag(now), number: numberOf(from), offer: offer,
		ackCh: make(chan struct{}), digits: make(chan byte, 32),
		alone: make(chan struct{}, 1), endCh: make(chan struct{}),
		trans: req.Transport(), sessID: uint64(now.UnixNano()),
		stReset: make(chan struct{}, 1),
	}
	stHdrs, ok := c.negotiateUAS(req)
	if !ok {
		return nil, 422, ""
	}
	c.stHdrs = stHdrs
	c.sips = c.trans == TransportTLS && wantsSIPS(req)
	c.log = s.log.With("call_tag", c.tag, "call_id", c.callID)
	c.who = s.callerOf(req)
	c.pid = s.participantID(req)
	c.local = party{name: to.DisplayName, uri: to.Address}
	c.remote = party{name: from.DisplayName, uri: from.Address}
	c.target = req.Contact().Address
	// The route set of a UAS is the Record-Route list in order (RFC 3261
	// 12.1.1).
	c.routes = routeURIs(req.GetHeaders("Record-Route"))
	c.dest = hopAddr(req.Recipient)
	if ctc := req.Contact(); ctc != nil {
		c.dest = hopAddr(ctc.Address)
	}
	if sip.IsReliable(c.trans) {
		// Stream transports: in-dialog requests go back over the
		// connection the INVITE came on (phones often do not listen).
		c.dest = req.Source()
	}
	if len(offer.Codecs) == 0 {
		return nil, 488, "Not Acceptable Here"
	}
	// The leg starts with no destination and no sending; buildAnswer
	// applies the negotiated settings.
	var src netip.Addr
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		src = ap.Addr().Unmap()
	}
	remote := netip.AddrPortFrom(offer.Addr.Unmap(), uint16(offer.Port))
	leg, err := s.openLeg(rtpleg.Config{PT: offer.Codecs[0], DTMF: -1, Remote: remote}, s.rtpSocketFor(offer, src), src, c)
	if err != nil {
		c.log.Warn("no RTP port for call", "err", err)
		s.counters.refused.Add(1)
		return nil, 503, "Service Unavailable"
	}
	c.leg = leg
	c.member = mixer.NewMember(leg, leg)
	leg.OnPanic(c.legPanicked)
	if _, err := c.buildAnswer(choice); err != nil {
		leg.Close()
		return nil, 488, "Not Acceptable Here"
	}
	s.mu.Lock()
	if _, dup := s.calls[c.callID]; dup {
		s.mu.Unlock()
		leg.Close()
		return nil, 482, "Loop Detected"
	}
	s.calls[c.callID] = c
	s.mu.Unlock()
	s.wg.Add(1)
	s.pending.Add(1)
	return c, 0, ""
}

func legConfig(o *sdp.Offer, a sdp.Answer) rtpleg.Config {
	send := a.Direction == "sendrecv" || a.Direction == "sendonly"
	return rtpleg.Config{
		PT: a.PT, DTMF: a.DTMF, CN: cnPT(a.CN), Ptime: o.Ptime,
		Remote:   netip.AddrPortFrom(o.Addr.Unmap(), uint16(o.Port)),
		Send:     send && !o.Hold,
		ExpectRx: o.Direction == "sendrecv" || o.Direction == "sendonly",
	}
}

// cnPT is the leg's comfort noise payload type for an SDP one (-1: none).
func cnPT(pt int) uint8 {
	if pt <= 0 || pt > 127 {
		return 0
	}
	return uint8(pt)
}

// errSRTPDowngrade: a call that uses SRTP does not go on in the clear.
var errSRTPDowngrade = errors.New("sipapp: an offer without SRTP for a call that uses it")

// buildAnswer makes our SDP answer to the offer srtpPolicy chose (bumping
// the version, RFC 3264 8), with our a=crypto when it chose SRTP, and
// applies it to the leg. A call with SRTP refuses a plain re-offer.
func (c *call) buildAnswer(ch srtpChoice) ([]byte, error) {
	c.sdpMu.Lock()
	defer c.sdpMu.Unlock()
	o := ch.offer
	ans, err := sdp.NewAnswer(o, c.s.ip, c.leg.Port(), c.sessID, c.sdpVersion)
	if err != nil {
		return nil, err
	}
	var sec *callSRTP
	switch {
	case ch.remote != nil:
		if sec, err = secureFor(c.srtp, o.Proto, *ch.remote); err != nil {
			return nil, err
		}
		local := sec.local
		ans.Crypto = &local
	case c.srtp != nil:
		return nil, errSRTPDowngrade
	}
	cfg := legConfig(o, ans)
	cfg.SRTP = sec.keys()
	if err := c.leg.Update(cfg); err != nil {
		return nil, err
	}
	c.sdpVersion++
	c.srtp = sec
	c.answer = ans.Marshal()
	return c.answer, nil
}

func (s *Server) participantID(req *sip.Request) string {
	if s.opt.ParticipantIDParam != "" {
		for _, h := range req.GetHeaders("P-App-Param") {
			if v, ok := appParam(h.Value(), s.opt.ParticipantIDParam); ok {
				return v
			}
		}
		return ""
	}
	if h := req.GetHeader(s.opt.ParticipantIDHeader); h != nil {
		return strings.TrimSpace(h.Value())
	}
	return ""
}

// appParam reads one parameter of SEMS's P-App-Param header
// ("room=123;enter_room=true"; values may be quoted).
func appParam(header, name string) (string, bool) {
	for _, part := range strings.Split(header, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		if strings.EqualFold(strings.TrimSpace(k), name) {
			v = strings.TrimSpace(v)
			v = strings.TrimPrefix(strings.TrimSuffix(v, `"`), `"`)
			return v, true
		}
	}
	return "", false
}

func (c *call) contact() sip.Header {
	return sip.NewHeader("Contact", "<"+c.s.contactURI(c.trans, c.sips)+">")
}

// response builds a response to the INVITE with our To-tag.
func (c *call) response(code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(c.invite, code, reason, body)
	if to := res.To(); to != nil && code > 100 {
		// sipgo puts a UUID tag on responses; ours is the call_tag.
		to.Params.Add("tag", c.tag)
	}
	res.AppendHeader(sip.NewHeader("Server", c.s.opt.Signature))
	if code > 100 {
		res.AppendHeader(c.contact())
		res.AppendHeader(sip.NewHeader("Allow", allowed))
	}
	if code >= 200 && code < 300 && c.s.opt.SessionTimer.Enabled {
		res.AppendHeader(sip.NewHeader("Supported", "timer"))
		for _, h := range c.stHdrs {
			res.AppendHeader(sip.HeaderClone(h))
		}
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

func (c *call) acked() { c.ackOnce.Do(func() { close(c.ackCh) }) }

// Kick hangs the call up from our side (control API, lonely user).
func (c *call) Kick() { c.end(endKick) }

// SetMuted stops or restarts feeding the caller's audio into the room.
func (c *call) SetMuted(v bool) {
	c.member.SetMuted(v)
	if c.web != nil {
		c.web.poke() // its State learns it
	}
}

// end asks the call to finish; the first reason wins.
func (c *call) end(r endReason) { c.endAs(r, "") }

// endAs is end with, for a browser participant, the Reason* it ends with
// (ignored for a SIP call); "" derives it from r.
func (c *call) endAs(r endReason, reason string) {
	c.endOnce.Do(func() {
		if c.web != nil && reason != "" {
			c.web.reason = reason
		}
		c.why.Store(int32(r))
		close(c.endCh)
	})
}

// startMedia starts receiving RTP: polled by the mixer on Linux (no
// goroutine per call), or with a read goroutine (rtp_receive=goroutine,
// or elsewhere).
func (c *call) startMedia() {
	if c.s.opt.RTPReceive != "goroutine" && c.leg.StartPolled() == nil {
		return
	}
	c.leg.Start()
}

// legPanicked ends a call whose RTP receive loop died: that call alone.
func (c *call) legPanicked(any) {
	c.s.counters.panics.Add(1)
	c.end(endFailed)
}

// digit delivers a key from RTP events, SIP INFO or in-band detection. It
// never blocks: the senders are the RTP and mixer goroutines.
func (c *call) digit(d byte) {
	select {
	case c.digits <- d:
	default:
	}
}

// run is the whole life of the call.
func (c *call) run() {
	defer c.s.wg.Done()
	defer c.cleanup()
	defer func() {
		// A call that panics ends alone: it is hung up and counted, and
		// the process and the room go on.
		if r := recover(); r != nil {
			c.s.counters.panics.Add(1)
			c.log.Error("call flow panicked", "panic", r, "stack", string(debug.Stack()))
			c.end(endFailed)
			c.sendBye()
		}
	}()
	acked := c.answerCall()
	c.s.pending.Add(-1)
	if !acked {
		return
	}
	c.startMedia()
	room, pid, direct, ok := c.route()
	if !ok {
		return
	}
	c.inRoom(room, pid, direct)
}

// answerCall sends 200 OK (after answer_delay, if set, during which a
// CANCEL ends it) and waits for the ACK, retransmitting the 200 with
// RFC 3261 13.3.1.4 timing. false: the call is over.
func (c *call) answerCall() bool {
	ctx := c.s.ctx
	if d := c.s.opt.AnswerDelay; d > 0 {
		if err := c.tx.Respond(c.response(180, "Ringing", nil)); err != nil {
			return false
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.tx.Done():
			// CANCEL: the transaction layer already answered 487.
			c.log.Info("call cancelled before answer")
			return false
		case <-ctx.Done():
			_ = c.tx.Respond(c.response(503, "Service Unavailable", nil))
			return false
		}
	}
	c.sdpMu.Lock()
	ok := c.response(200, "OK", c.answer)
	c.sdpMu.Unlock()
	if err := c.tx.Respond(ok); err != nil {
		c.log.Info("cannot answer call", "err", err)
		return false
	}
	// Only packets that arrive from now on may latch the leg (strict RTP).
	c.leg.Answered()
	if sip.IsReliable(c.trans) {
		select {
		case <-c.ackCh:
			return true
		case <-time.After(64 * sip.T1):
		case <-c.endCh:
			return false
		}
		c.log.Info("no ACK for 200 OK, hanging up")
		c.sendBye()
		return false
	}
	interval := sip.T1
	deadline := time.NewTimer(64 * sip.T1)
	defer deadline.Stop()
	retry := time.NewTimer(interval)
	defer retry.Stop()
	for {
		select {
		case <-c.ackCh:
			return true
		case <-c.endCh:
			return false
		case <-retry.C:
			_ = c.tx.Respond(ok)
			interval = min(2*interval, sip.T2)
			retry.Reset(interval)
		case <-deadline.C:
			c.log.Info("no ACK for 200 OK, hanging up")
			c.sendBye()
			return false
		}
	}
}

// route decides where the call goes (spec 5.1): P-App-Param enter_room,
// P-App-Param room, direct_room_re on the R-URI user, else keypad entry.
func (c *call) route() (room, pid string, direct, ok bool) {
	if c.pre != "" {
		return c.pre, c.pid, true, true
	}
	if c.newPublic != "" {
		return c.makePublicRoom()
	}
	enter := false
	for _, h := range c.invite.GetHeaders("P-App-Param") {
		if v, ok := appParam(h.Value(), "enter_room"); ok && strings.EqualFold(v, "true") {
			enter = true
		}
	}
	if !enter {
		for _, h := range c.invite.GetHeaders("P-App-Param") {
			if v, ok := appParam(h.Value(), "room"); ok {
				return c.directRoom(v)
			}
		}
		user := c.invite.Recipient.User
		if re := c.s.opt.DirectRoomRE; re != nil && re.MatchString(user) {
			room := user
			if n := c.s.opt.DirectRoomStrip; len(user) > n {
				room = user[n:]
			}
			return c.directRoom(room)
		}
	}
	return c.keypad()
}

// makePublicRoom is the first caller's way into a public room: the room
// is made now that the call is answered and acknowledged (its source is
// real), and charged to the source's public_rooms_per_source budget.
func (c *call) makePublicRoom() (room, pid string, direct, ok bool) {
	s := c.s
	if c.who.Banned(s.guards.PublicRooms) {
		c.log.Info("public room refused: the source made its budget of public rooms", "identifier", c.newPublic)
		c.refuse(ReasonBudget, s.opt.Prompts.WrongPinBye)
		return "", "", false, false
	}
	p, created, err := s.book.MakePublicRoom(c.newPublic)
	if me := (*meeting.Error)(nil); errors.As(err, &me) && me.Code == "store-unavailable" {
		// Its room or the public room itself was refused: nothing was made.
		c.refuseUnstored("c."+c.newPublic, err)
		return "", "", false, false
	}
	if err != nil {
		c.log.Info("public room refused", "identifier", c.newPublic, "err", err)
		c.refuse(ReasonUnavailable, s.opt.Prompts.ConferenceFull)
		return "", "", false, false
	}
	if created {
		c.log.Info("public room made", "identifier", p.Identifier, "room", p.Room)
		if c.who.Fail(s.guards.PublicRooms) {
			s.log.Warn("source made its budget of public rooms; more are refused for a while", "source", c.who.addr, "proxy", c.who.proxy)
		}
	}
	return p.Room, c.pid, true, true
}

// splitPin applies room_pin_split: the first n characters name the room,
// the rest is the participant's personal PIN.
func (c *call) splitPin(s string) (room, pid string, ok bool) {
	n := c.s.opt.RoomPinSplit
	if n <= 0 {
		return s, c.pid, true
	}
	if len(s) <= n {
		return "", "", false
	}
	return s[:n], s[n:], true
}

func (c *call) directRoom(name string) (string, string, bool, bool) {
	room, pid, ok := c.splitPin(name)
	if !ok || !c.s.reg.CanEnter(room, pid, c.s.opt.RoomPinSplit > 0) {
		// SEMS leaves a too-short direct string in silence forever (spec
		// 10.14); we say goodbye instead.
		c.playThenBye(c.s.opt.Prompts.WrongPinBye)
		return "", "", false, false
	}
	return room, pid, true, true
}

// lobby is the mixer group a caller is in while typing: just them.
func (c *call) enterLobby() *mixer.Group {
	g := c.s.mix.NewGroup()
	g.Add(c.member)
	return g
}

func (c *call) play(samples []int16) *mixer.Prompt {
	p := mixer.NewPrompt(samples, false)
	c.member.Play(p)
	return p
}

// playThenBye plays a prompt in a lobby and hangs up when it ends.
func (c *call) playThenBye(samples []int16) {
	g := c.enterLobby()
	defer g.Close()
	c.byeAfter(c.play(samples))
}

// byeAfter hangs up (BYE) once p has been played; if the call ends first,
// only a kick still sends the BYE (byeIfKicked).
func (c *call) byeAfter(p *mixer.Prompt) {
	select {
	case <-p.Done:
		c.end(endFailed)
		c.sendBye()
	case <-c.endCh:
		c.byeIfKicked()
	}
}

// keypad is the room-number entry of spec 5.2, plus max_pin_attempts and
// pin_timeout.
func (c *call) keypad() (string, string, bool, bool) {
	pr := c.s.opt.Prompts
	g := c.enterLobby()
	defer g.Close()
	c.member.DetectDTMF(c.digit)
	defer c.member.DetectDTMF(nil)
	c.play(pr.EnterPin)

	var buf []byte
	attempts := 0
	timeout := c.s.opt.PinTimeout
	var tc <-chan time.Time
	var timer *time.Timer
	if timeout > 0 {
		timer = time.NewTimer(timeout)
		defer timer.Stop()
		tc = timer.C
	}
	rtpDead := c.rtpWatch()
	defer rtpDead.Stop()
	guards := c.s.guards
	fail := func(room string) bool { // a wrong entry; true when the caller is out of tries
		attempts++
		c.s.counters.pinFailures.Add(1)
		buf = buf[:0]
		// The call was answered and acknowledged, so its source address
		// is real (not a forged UDP source) and may be charged; behind a
		// trusted proxy, the caller it stands for is.
		banned := c.who.Fail(guards.Sources)
		if banned {
			c.log.Warn("source banned after too many wrong room numbers", "source", c.who.addr, "proxy", c.who.proxy)
		}
		if room != "" && c.s.reg.Exists(room) && guards.Rooms.Fail(room) {
			c.log.Warn("alarm: too many failed entries for one room; slowing it down", "room", room)
		}
		if max := c.s.opt.MaxPinAttempts; banned || (max > 0 && attempts >= max) {
			c.member.StopPrompts()
			c.byeAfter(c.play(pr.WrongPinBye))
			return true
		}
		c.member.StopPrompts()
		c.play(pr.WrongPin)
		return false
	}
	for {
		select {
		case <-c.endCh:
			c.byeIfKicked()
			return "", "", false, false
		case <-rtpDead.C:
			if c.rtpExpired(rtpDead) {
				return "", "", false, false
			}
		case <-tc:
			c.log.Info("no digit before pin_timeout")
			c.s.counters.pinFailures.Add(1)
			c.member.StopPrompts()
			c.byeAfter(c.play(pr.WrongPinBye))
			return "", "", false, false
		case d := <-c.digits:
			if timer != nil {
				timer.Reset(timeout)
			}
			if d >= '0' && d <= '9' {
				if len(buf) < 64 {
					buf = append(buf, d)
				}
				c.member.StopPrompts() // barge-in
				continue
			}
			if d != '*' && d != '#' {
				continue
			}
			typed := string(buf)
			if typed == "" {
				c.member.StopPrompts()
				c.play(pr.WrongPin)
				continue
			}
			room, pid, ok := c.splitPin(typed)
			if ok && guards.Rooms.Banned(room) && !c.tarpit() {
				return "", "", false, false
			}
			if !ok || !c.s.reg.CanEnter(room, pid, c.s.opt.RoomPinSplit > 0) {
				if fail(room) {
					return "", "", false, false
				}
				continue
			}
			if c.s.reg.Locked(room) {
				// A right number, but the room takes nobody new: say so
				// and hang up (not a wrong entry).
				c.log.Info("room is locked", "room", room)
				c.member.DetectDTMF(nil)
				c.member.StopPrompts()
				c.byeAfter(c.play(pr.RoomLocked))
				return "", "", false, false
			}
			// Read the digits back (SEMS means to but its read-back is
			// broken), then "entering conference", then join.
			c.member.DetectDTMF(nil)
			c.member.StopPrompts()
			for _, d := range typed {
				c.play(pr.Digits[d-'0'])
			}
			last := c.play(pr.EnteringConference)
			select {
			case <-last.Done:
				return room, pid, false, true
			case <-c.endCh:
				c.byeIfKicked()
				return "", "", false, false
			}
		}
	}
}

// tarpit slows an entry for a room under attack (its failure budget is
// spent): every attempt on it waits room_tarpit. false: the call ended.
func (c *call) tarpit() bool {
	t := time.NewTimer(c.s.guards.Tarpit)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.endCh:
		c.byeIfKicked()
		return false
	}
}

// rtpWatch returns a timer for dead_rtp_time checks (stopped when off).
func (c *call) rtpWatch() *time.Timer {
	d := c.s.opt.DeadRTPTime
	if d <= 0 {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return t
	}
	return time.NewTimer(d)
}

// rtpExpired is called when the RTP timer fires: true when no packet came
// for dead_rtp_time (the call is then hung up); otherwise it re-arms the
// timer for the rest of the period. One timer per call, no polling.
func (c *call) rtpExpired(t *time.Timer) bool {
	d := c.s.opt.DeadRTPTime
	idle := time.Since(c.lastReceive())
	if idle >= d {
		c.log.Info("no RTP, hanging up", "idle", idle.Round(time.Second))
		c.end(endTimeout)
		c.sendBye()
		return true
	}
	t.Reset(d - idle)
	return false
}

// byeIfKicked sends our BYE when the call ends from our side.
func (c *call) byeIfKicked() {
	switch endReason(c.why.Load()) {
	case endKick, endShutdown, endTimeout, endFailed:
		c.sendBye()
	}
}

// inRoom joins the room and stays until the call ends.
func (c *call) inRoom(name, pid string, direct bool) {
	reason := room.ReasonEntered
	if direct {
		reason = room.ReasonDirect
	}
	if c.s.reg.Locked(name) {
		// Locked after the INVITE was let through (a direct dial is
		// refused with 403 before the answer).
		c.refuseLocked(name)
		return
	}
	leave, ok := c.meetingGate(name)
	if !ok {
		return
	}
	defer leave()
	if err := c.s.reg.JoinAs(c.user, c.admitted, name, c.tag, c.number, pid, reason, c.s.opt.RoomPinSplit > 0, c); err != nil {
		if errors.Is(err, room.ErrStore) {
			c.refuseUnstored(name, err)
			return
		}
		if errors.Is(err, room.ErrLocked) {
			c.refuseLocked(name)
			return
		}
		c.log.Info("cannot join room", "room", name, "err", err)
		c.refuse(ReasonNoRoom, c.s.opt.Prompts.WrongPinBye)
		return
	}
	// Until stay's own clean-up is in place, a panic (recovered in run)
	// must not leave the call in the room's mix nor its record live: the
	// others would hear a dead member and the room would never empty.
	staying := false
	defer func() {
		if !staying {
			c.s.leaveLive(name, c, false) // nothing when it is not in the mix
			c.s.reg.SetStatus(name, c.tag, room.StatusFinished, "")
		}
	}()
	c.room = name
	c.joinedAt.Store(time.Now().UnixNano())
	c.s.joinLive(name, c, false)
	c.hook("joined")
	if c.web != nil {
		c.web.inMix(name)
	}
	staying = true
	c.stay(name)
}

// stay keeps a call that is in a room's mix there until it ends, then
// takes it out and records the end (spec 4: 4 "BYE" or 4 "disconnect",
// then 5 ""). Its clean-up is deferred first, so that it runs whatever
// happens after.
func (c *call) stay(name string) {
	defer func() {
		c.s.leaveLive(name, c, false)
		why := endReason(c.why.Load())
		switch why {
		case endBye:
			c.s.reg.SetStatus(name, c.tag, room.StatusDisconnecting, room.ReasonBye)
		case endKick:
			c.s.reg.SetStatus(name, c.tag, room.StatusDisconnecting, room.ReasonDisconnect)
		}
		c.s.reg.SetStatus(name, c.tag, room.StatusFinished, "")
	}()
	sink := c.s.opt.Events
	c.member.OnTalking(func(on bool) {
		c.talking.Store(on)
		if on {
			sink.TalkingStarted(name, c.tag)
		} else {
			sink.TalkingStopped(name, c.tag)
		}
	})
	c.log.Info("joined room", "room", name)
	c.talk(name)
}

// talk keeps an answered call until it ends: BYE, our hang-up, no RTP for
// dead_rtp_time, or the session timer (RFC 4028). In a room (name not
// ""), the lonely-user timer runs too; a two-party leg passes "".
func (c *call) talk(name string) {
	rtpDead := c.rtpWatch()
	defer rtpDead.Stop()
	lonely := time.NewTimer(time.Hour)
	lonely.Stop()
	defer lonely.Stop()
	var alone chan struct{} // nil: never ready
	if name != "" {
		alone = c.alone
		c.checkAlone(lonely)
	}
	session := time.NewTimer(time.Hour)
	session.Stop()
	defer session.Stop()
	armSession := func() {
		session.Stop()
		if d, _, ok := c.sessionDeadline(); ok {
			session.Reset(d)
		}
	}
	armSession()
	for {
		select {
		case <-c.endCh:
			c.byeIfKicked()
			return
		case <-c.stReset:
			armSession()
		case <-session.C:
			if _, weRefresh, _ := c.sessionDeadline(); weRefresh && c.refreshSession() {
				armSession()
				continue
			}
			c.log.Info("session timer expired, hanging up")
			c.end(endTimeout)
			c.sendBye()
			return
		case <-rtpDead.C:
			if c.rtpExpired(rtpDead) {
				return
			}
		case <-alone:
			c.checkAlone(lonely)
		case <-lonely.C:
			if c.s.liveCount(name) <= 1 {
				c.log.Info("alone for lonely_user_timer, hanging up")
				c.endAs(endKick, ReasonAlone)
			}
		case <-c.digits:
			// DTMF inside the conference or a call does nothing (spec 5.4).
		}
	}
}

// checkAlone (re)arms the lonely-user timer when the caller is alone and
// disarms it otherwise, so that no stale timer can fire (SEMS bug 10.13).
func (c *call) checkAlone(t *time.Timer) {
	d := c.s.opt.LonelyUserTimer
	if d <= 0 {
		return
	}
	t.Stop()
	if c.s.liveCount(c.room) <= 1 {
		t.Reset(d)
	}
}

func (c *call) pokeAlone() {
	select {
	case c.alone <- struct{}{}:
	default:
	}
}

// reoffer answers a re-INVITE or UPDATE with SDP: hold, resume, or a new
// address. A bad offer gets 488 and leaves the call as it was.
func (c *call) reoffer(req *sip.Request, tx sip.ServerTransaction) {
	stHdrs, ok := c.negotiateUAS(req)
	if !ok {
		c.s.reject422(tx, req)
		return
	}
	o, err := sdp.ParseOffer(req.Body())
	if err != nil {
		c.s.respond(tx, req, 488, "Not Acceptable Here", nil)
		return
	}
	// Judged by the transport this offer came over, not the dialog's: a
	// re-INVITE over UDP for a call made over TLS would have our answer
	// carry the call's key in the clear (RFC 4568 8.3).
	choice, err := srtpPolicy(c.s.opt.SRTP, req.Transport(), o)
	if err != nil {
		c.log.Info("re-offer refused", "reason", err)
		c.s.respond(tx, req, 488, "Not Acceptable Here", nil)
		return
	}
	o = choice.offer
	body, err := c.buildAnswer(choice)
	if err != nil {
		c.log.Info("re-offer refused", "reason", err)
		c.s.respond(tx, req, 488, "Not Acceptable Here", nil)
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(sip.NewHeader("Server", c.s.opt.Signature))
	res.AppendHeader(c.contact())
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	for _, h := range stHdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		c.log.Debug("re-INVITE answer failed", "err", err)
	}
	// A new address was learned from packets after this answer only; an
	// unchanged one keeps its latch (Answered then does nothing).
	c.leg.Answered()
	c.refreshed()
	c.log.Info("media renegotiated", "hold", o.Hold, "direction", o.Direction)
}

// refuseUnstored ends a call whose room (or invite) the store refused:
// it does not join a room a restart would not have. The call is answered
// by then (the room is known only after the 200 OK, from the keypad or the
// route), so the refusal is a BYE whose Reason header (RFC 3326) carries
// the 503 the INVITE would have had.
func (c *call) refuseUnstored(room string, err error) {
	c.log.Error("call refused: its room cannot be stored", "room", room, "err", err)
	if c.web != nil {
		c.endAs(endFailed, ReasonUnavailable)
		return
	}
	c.end(endFailed)
	c.sendBye(sip.NewHeader("Reason", `SIP ;cause=503 ;text="room cannot be stored"`))
}

// sendBye hangs up from our side (RFC 3261 15.1.1), with extra headers if
// any.
func (c *call) sendBye(extra ...sip.Header) {
	if c.web != nil {
		return // a browser participant has no dialog: its end is its State
	}
	req := c.inDialog(sip.BYE)
	for _, h := range extra {
		req.AppendHeader(h)
	}
	// The BYE transaction runs on its own (it may retransmit for 32 s,
	// RFC 3261 17.1.2.2); the call does not wait for it, and Shutdown
	// gives outstanding BYEs a short grace before cancelling them.
	c.s.byes.Add(1)
	go func() {
		defer c.s.byes.Done()
		if _, err := c.transact(req); err != nil {
			c.log.Info("BYE not answered", "err", err)
		}
	}()
}

// party is one end of a dialog.
type party struct {
	name string
	uri  sip.Uri
}

// joined is when the call joined its room; zero when it never did.
func (c *call) joined() time.Time {
	if n := c.joinedAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// peerTag is the remote party's dialog tag.
func (c *call) peerTag() string {
	c.dlg.Lock()
	defer c.dlg.Unlock()
	return c.fromTag
}

// inDialog builds a request within the dialog (RFC 3261 12.2.1.1): remote
// target as Request-URI and the route set as Route (loose routing; a
// strict router's URI becomes the Request-URI), or through the outbound
// proxy when the route set is empty; our party and tag in From, theirs in
// To, the next CSeq.
func (c *call) inDialog(method sip.RequestMethod) *sip.Request {
	c.dlg.Lock()
	defer c.dlg.Unlock()
	rt := c.inDialogRoute()
	req := sip.NewRequest(method, rt.ruri)
	from := sip.FromHeader{DisplayName: c.local.name, Address: *c.local.uri.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", c.tag)
	to := sip.ToHeader{DisplayName: c.remote.name, Address: *c.remote.uri.Clone(), Params: sip.NewParams()}
	if c.fromTag != "" {
		to.Params.Add("tag", c.fromTag)
	}
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(sip.NewHeader("Call-ID", c.callID))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: c.cseq.Add(1), MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	for _, r := range rt.routes {
		req.AppendHeader(&sip.RouteHeader{Address: r})
	}
	req.AppendHeader(sip.NewHeader("User-Agent", c.s.opt.Signature))
	req.SetTransport(rt.trans)
	req.SetBody(nil)
	req.SetDestination(rt.dest)
	c.s.fromSIPPort(req)
	return req
}

// fromSIPPort makes a UDP request leave from our SIP socket, so that the
// peer sees (and answers) the port it knows.
func (s *Server) fromSIPPort(req *sip.Request) {
	if sip.IsReliable(req.Transport()) {
		return
	}
	if a, err := netip.ParseAddrPort(s.udp.LocalAddr().String()); err == nil {
		req.Laddr = sip.Addr{IP: a.Addr().AsSlice(), Port: int(a.Port())}
	}
}

// cleanup releases everything the call holds, however it ended.
func (c *call) cleanup() {
	c.end(endShutdown) // no-op when already ended
	c.leg.Close()
	st := c.leg.Stats()
	c.s.mu.Lock()
	// Together, so that a metrics scrape counts the leg exactly once.
	delete(c.s.calls, c.callID)
	c.s.retired.add(st)
	c.s.mu.Unlock()
	c.s.stats.record(c.joined())
	c.log.Info("call ended", "reason", strconv.Itoa(int(c.why.Load())))
}
