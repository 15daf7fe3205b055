package rest

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"webconf/rpc/events"
	"webconf/sipapp"
	"webconf/sipapp/webrtc"
)

// A browser participant's media is a sipapp.BrowserLeg.
var _ sipapp.BrowserLeg = (*webrtc.Leg)(nil)

const (
	// signalWait bounds how long the socket waits for the join and for
	// the offer: an idle socket holds nothing for long.
	signalWait = 30 * time.Second
	// signalWriteTimeout drops a browser that reads nothing.
	signalWriteTimeout = 10 * time.Second
)

// roomEventNames are the events a joined browser is sent about its room.
var roomEventNames = map[string]bool{
	events.RoomParticipantJoined: true, events.RoomParticipantLeft: true,
	events.RoomParticipantMuted: true, events.RoomParticipantUnmuted: true,
	events.RoomParticipantTalkStarted: true, events.RoomParticipantTalkStopped: true,
	events.RoomParticipantLobbyJoined: true, events.RoomParticipantLobbyLeft: true,
	events.RoomLocked: true, events.RoomUnlocked: true, events.RoomDeleted: true,
}

// signal is one browser's signalling socket.
type signal struct {
	a    *API
	conn *websocket.Conn
	ctx  context.Context
	peer string

	wmu sync.Mutex // orders writes (the State callback, the event relay)

	in chan signalIn // parsed messages; closed when the socket ends
}

func (s *signal) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, signalWriteTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, b)
}

// fail sends an error and closes the socket.
func (s *signal) fail(code, msg string) {
	_ = s.send(sigError{Type: "error", Code: code, Message: msg})
	_ = s.conn.Close(websocket.StatusPolicyViolation, code)
}

// readLoop parses what the browser sends: bad messages are answered here
// and dropped; good ones go to in.
func (s *signal) readLoop() {
	defer close(s.in)
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			_ = s.send(sigError{Type: "error", Code: codeBadMessage, Message: "text frames only"})
			continue
		}
		m, err := parseSignal(data)
		if err != nil {
			_ = s.send(sigError{Type: "error", Code: codeBadMessage, Message: err.Error()})
			continue
		}
		select {
		case s.in <- m:
		case <-s.ctx.Done():
			return
		}
	}
}

// next waits for a message of one of the types in want; others are
// bad-message. ok is false when the socket ended or wait passed.
func (s *signal) next(wait time.Duration, want ...string) (signalIn, bool) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case m, ok := <-s.in:
			if !ok {
				return m, false
			}
			if slices.Contains(want, m.Type) {
				return m, true
			}
			_ = s.send(sigError{Type: "error", Code: codeBadMessage, Message: m.Type + " is not expected now (want " + strings.Join(want, " or ") + ")"})
		case <-t.C:
			s.fail(codeBadMessage, "nothing came in time (want "+strings.Join(want, " or ")+")")
			return signalIn{}, false
		}
	}
}

// browserTarget is where a join goes.
type browserTarget struct {
	room, publicID    string
	meetingUUID, name *string
	user              string
}

// sameOrigin: no Origin (not a browser), or an Origin whose host is the
// request's.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// webrtcSignal is GET /api/v1/rooms/{room}/webrtc: a browser joins a room
// (see the contract in the OpenAPI document). HTTP-level refusals come
// before the upgrade: off (404), a banned address (429), another origin
// (403 forbidden-origin: the join carries no secret a page must hold,
// but a guest's credentials or a token a page of ours was given must not
// be usable from elsewhere), too many sockets open (429
// too-many-browsers, webrtc_seats.go).
func (a *API) webrtcSignal(c *ctx) {
	if a.o.WebRTC == nil {
		c.fail(errNoRoute)
		return
	}
	if a.banned(c) {
		return
	}
	if !sameOrigin(c.r) {
		c.fail(&apiError{http.StatusForbidden, codeForbiddenOrigin, "the page's origin is not this server"})
		return
	}
	peer := a.peer(c.r)
	if !a.browsers.take(peer) {
		c.fail(errTooManyBrowsers)
		return
	}
	defer a.browsers.give(peer)
	rc := http.NewResponseController(c.w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(c.w, c.r, &websocket.AcceptOptions{InsecureSkipVerify: true}) // origin checked above
	if err != nil {
		return // Accept has answered
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxSignal)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := &signal{a: a, conn: conn, ctx: ctx, peer: peer, in: make(chan signalIn, 8)}
	go s.readLoop()
	a.runSignal(s, c.r.PathValue("room"))
}

func (a *API) runSignal(s *signal, roomParam string) {
	join, ok := s.next(signalWait, sigJoin)
	if !ok {
		return
	}
	t, code, msg := a.browserTarget(roomParam, join, s.peer)
	if code != "" {
		s.fail(code, msg)
		return
	}
	if err := a.sip.CheckBrowserRoom(t.room, t.publicID); err != nil {
		s.fail(refusal(err))
		return
	}
	readyRoom := t.room
	if readyRoom == "" {
		readyRoom = sipapp.PublicRoomPrefix + t.publicID
		if n, ok := a.book.PublicRoomNumber(t.publicID); ok {
			readyRoom = n
		}
	}
	if err := s.send(sigReady{Type: "ready", Room: readyRoom, MeetingUUID: t.meetingUUID, Name: t.name, ICEServers: a.o.WebRTC.ICEServers()}); err != nil {
		return
	}
	var leg *webrtc.Leg
	for leg == nil {
		offer, ok := s.next(signalWait, sigOffer)
		if !ok {
			return
		}
		l, answer, err := a.o.WebRTC.Answer(s.ctx, offer.SDP)
		if err != nil {
			// A bad offer changes nothing: the browser may send another.
			_ = s.send(sigError{Type: "error", Code: codeBadMessage, Message: err.Error()})
			continue
		}
		leg = l
		if err := s.send(sigAnswer{Type: "answer", SDP: answer}); err != nil {
			leg.Close()
			return
		}
	}
	defer leg.Close()

	var sub *events.Sub
	var relay sync.WaitGroup
	defer func() {
		if sub != nil {
			sub.Close()
		}
		relay.Wait()
	}()
	peer, _ := netip.ParseAddr(s.peer)
	b, err := a.sip.JoinBrowser(sipapp.BrowserJoin{
		Room: t.room, PublicID: t.publicID, Name: join.Name, User: t.user, Peer: peer, Leg: leg,
		State: func(st sipapp.BrowserState) {
			switch st.Kind {
			case sipapp.BrowserLobby:
				_ = s.send(sigType{Type: "lobby"})
			case sipapp.BrowserJoined:
				_ = s.send(sigJoined{Type: "joined", CallID: st.CallTag, Room: st.Room})
				// Subscribed before the snapshot: an event in between is
				// sent twice rather than lost.
				if bus := a.o.Events; bus != nil && sub == nil {
					if sb, _, err := bus.Subscribe(events.Filter{Operator: true, Rooms: map[string]bool{st.Room: true}, Names: roomEventNames}, nil); err == nil {
						sub = sb
					}
				}
				_ = s.send(sigParticipants{Type: "participants", Participants: a.sip.Participants(st.Room)})
				if sub != nil {
					relay.Add(1)
					go func(sub *events.Sub) {
						defer relay.Done()
						s.relay(sub)
					}(sub)
				}
			case sipapp.BrowserMuted, sipapp.BrowserUnmuted:
				_ = s.send(sigMuted{Type: "muted", Muted: st.Kind == sipapp.BrowserMuted})
			case sipapp.BrowserEnded:
				_ = s.send(sigBye{Type: "bye", Reason: st.Reason})
			}
		},
	})
	if err != nil {
		s.fail(refusal(err))
		return
	}
	for {
		select {
		case <-b.Done():
			_ = s.conn.Close(websocket.StatusNormalClosure, "")
			return
		case m, ok := <-s.in:
			switch {
			case !ok || m.Type == sigLeave:
				b.Leave()
				<-b.Done()
				_ = s.conn.Close(websocket.StatusNormalClosure, "")
				return
			case m.Type == sigMute:
				b.SetMuted(*m.Muted)
			case m.Type == sigCandidate:
				if err := leg.AddCandidate(*m.Candidate); err != nil {
					_ = s.send(sigError{Type: "error", Code: codeBadMessage, Message: err.Error()})
				}
			default:
				_ = s.send(sigError{Type: "error", Code: codeBadMessage, Message: m.Type + " is not expected now"})
			}
		}
	}
}

// relay sends the room's events until the subscription or the socket ends.
func (s *signal) relay(sub *events.Sub) {
	for {
		select {
		case <-sub.Done():
			return
		case <-s.ctx.Done():
			return
		case ev := <-sub.Events():
			if err := s.send(sigEvent{Type: "event", Event: ev.Msg}); err != nil {
				return
			}
		}
	}
}

// refusal is a join's refusal as a signalling error code and message.
func refusal(err error) (code, msg string) {
	var r *sipapp.BrowserRefused
	if errors.As(err, &r) {
		return r.Reason, err.Error()
	}
	return sipapp.ReasonUnavailable, "the room cannot take browser participants now"
}

// browserTarget resolves {room} and checks the join's credentials: a
// meeting (by uuid, or its number) needs its guest credentials or one of
// its owners' tokens; a public room (c.<identifier>) and a plain room
// need neither. A wrong credential is charged to the address's budget.
func (a *API) browserTarget(param string, j signalIn, peer string) (t browserTarget, code, msg string) {
	if id, ok := strings.CutPrefix(param, sipapp.PublicRoomPrefix); ok {
		if !a.o.PublicRooms {
			return t, codeNotFound, "public rooms are off"
		}
		if _, _, err := a.book.PublicRoomInfo(id); err != nil {
			return t, codeNotFound, "no such public room identifier"
		}
		t.publicID = id
		return t, "", ""
	}
	m, ok := a.book.Meeting(param)
	if !ok {
		g, isMeeting := a.book.GateFor(param)
		if !isMeeting {
			t.room = param // a plain room: CheckBrowserRoom says whether it exists
			return t, "", ""
		}
		if m, ok = a.book.Meeting(g.MeetingUUID); !ok {
			return t, codeNotFound, "no such room"
		}
	}
	t.room, t.meetingUUID, t.name = m.Exten, strPtr(m.UUID), strPtr(m.Name)
	switch {
	case j.Token != nil:
		u, ok := a.book.Authenticate(*j.Token)
		if ok && slices.Contains(m.OwnerUUIDs, u.UUID) {
			t.user = u.UUID
			return t, "", ""
		}
	case j.Auth != nil:
		if guestAuthOK(*j.Auth, m.GuestUser, m.GuestPassword) {
			return t, "", ""
		}
	}
	if a.sip.Guards().RPC.Fail(peer) {
		a.log.Warn("http client banned after too many failed credentials", "peer", peer)
	}
	return browserTarget{}, codeUnauthorized, "this meeting needs its guest credentials or an owner's token"
}

// guestAuthOK compares base64 user:password with a meeting's guest
// account in constant time.
func guestAuthOK(auth, user, pass string) bool {
	raw, err := base64.StdEncoding.DecodeString(auth)
	if err != nil {
		return false
	}
	u, p, _ := strings.Cut(string(raw), ":")
	okU := subtle.ConstantTimeCompare([]byte(u), []byte(user))
	okP := subtle.ConstantTimeCompare([]byte(p), []byte(pass))
	return okU&okP == 1 && user != "" && pass != ""
}
