package sipapp

import (
	"time"

	"webconf/sipapp/meeting"
	"webconf/sipapp/mixer"
	"webconf/sipapp/room"
)

// This file is the SIP side of meetings (package meeting keeps the data):
// the rules a caller meets on the way into a meeting's room (SIP dial-in
// switch, valid_since / valid_until, max_participants, the lobby), and
// the hooks through which the Book opens, ends and unlocks rooms.

// lobbyWait is a caller held in a meeting's lobby.
type lobbyWait struct {
	c     *call
	admit chan struct{} // closed to let the caller in
	since time.Time
}

// Meetings returns the meetings book.
func (s *Server) Meetings() *meeting.Book { return s.book }

// OpenRoom implements meeting.Hooks. It may run with the Book's lock held;
// it takes only the registry's. A room the store refuses is not made and
// the error (ErrStore) says so: the Book then stores no new meeting or
// public room (503 over REST). A stored one whose room is refused at
// start-up keeps its number, and its first caller makes the room
// (meetingGate), or is refused while the store still fails.
func (s *Server) OpenRoom(room string) error {
	return s.reg.Pin(room)
}

// RoomTaken implements meeting.Hooks.
func (s *Server) RoomTaken(room string) bool { return s.reg.Exists(room) }

// EndRoom implements meeting.Hooks: everyone in the room and its lobby is
// hung up; with remove the room goes too. A browser participant learns
// that the meeting ended (ReasonOver).
func (s *Server) EndRoom(room string, remove bool) {
	s.mu.Lock()
	waiting := s.lobby[room]
	delete(s.lobby, room)
	web := s.browsersInLocked(room)
	s.mu.Unlock()
	for _, c := range web {
		c.endAs(endKick, ReasonOver)
	}
	for _, w := range waiting {
		w.c.endAs(endKick, ReasonOver) // a SIP call's Kick
	}
	if remove {
		if err := s.reg.Drop(room); err != nil {
			s.log.Warn("ended meeting's room kept until a sweep can delete it", "room", room)
		}
		return
	}
	s.reg.KickAll(room)
}

// LobbyLifted implements meeting.Hooks: every waiting caller goes in.
func (s *Server) LobbyLifted(room string) {
	s.mu.Lock()
	waiting := s.lobby[room]
	delete(s.lobby, room)
	s.mu.Unlock()
	for _, w := range waiting {
		close(w.admit)
	}
}

// Admit lets one caller out of a meeting room's lobby. false: no such
// caller is waiting there.
func (s *Server) Admit(room, tag string) bool {
	s.mu.Lock()
	w, ok := s.lobby[room][tag]
	if ok {
		delete(s.lobby[room], tag)
	}
	s.mu.Unlock()
	if ok {
		close(w.admit)
	}
	return ok
}

// LiveParticipant is a caller in a meeting's room or its lobby.
type LiveParticipant struct {
	ID             string    `json:"id"`       // the call tag: what DELETE and admit take
	CallTag        string    `json:"call_tag"` // the same, under SEMS's name
	CallerIDName   string    `json:"caller_id_name"`
	CallerIDNumber string    `json:"caller_id_number"`
	JoinedAt       time.Time `json:"joined_at"`
	Muted          bool      `json:"muted"`
	Talking        bool      `json:"talking"`
	Lobby          bool      `json:"lobby"` // waiting to be admitted
	// UserUUID is the user whose phone it is (Wazo's user_uuid: the
	// caller answered with the user's SIP credentials); null for a guest.
	UserUUID *string `json:"user_uuid"`
}

// Participants lists the callers in a room's mix and in its lobby, the
// earliest first. It holds the server's lock only to copy the lists: what
// it reads of each call is immutable or atomic, so neither it nor the
// in-dialog requests waiting for that lock wait for a room's tick.
func (s *Server) Participants(room string) []LiveParticipant {
	s.mu.Lock()
	var members []*call
	if lr := s.rooms[room]; lr != nil {
		members = append(members, lr.members...)
	}
	waiting := make([]*lobbyWait, 0, len(s.lobby[room]))
	for _, w := range s.lobby[room] {
		waiting = append(waiting, w)
	}
	s.mu.Unlock()
	out := make([]LiveParticipant, 0, len(members)+len(waiting))
	for _, c := range members {
		out = append(out, LiveParticipant{
			ID: c.tag, CallTag: c.tag, CallerIDName: c.remote.name, CallerIDNumber: c.remote.uri.User,
			JoinedAt: c.joined().UTC().Truncate(time.Second), Muted: c.member.Muted(), Talking: c.talking.Load(),
			UserUUID: c.userUUID(),
		})
	}
	for _, w := range waiting {
		out = append(out, LiveParticipant{
			ID: w.c.tag, CallTag: w.c.tag, CallerIDName: w.c.remote.name, CallerIDNumber: w.c.remote.uri.User,
			JoinedAt: w.since.UTC().Truncate(time.Second), Lobby: true, UserUUID: w.c.userUUID(),
		})
	}
	return out
}

// userUUID is the call's user as JSON has it: null for a guest.
func (c *call) userUUID() *string {
	if c.user == "" {
		return nil
	}
	u := c.user
	return &u
}

// MuteAll mutes every call of a room but the calls tagged in except and,
// in a meeting's room, the calls of the meeting's owners (their phones,
// known by their SIP credentials): what REST, XML-RPC and JSON-RPC's
// mute-all do. A tag in except that names no call of the room is
// room.ErrNoCall and nothing changes.
func (s *Server) MuteAll(name string, except ...string) error {
	var owners []string
	if g, ok := s.book.GateFor(name); ok {
		if m, ok := s.book.Meeting(g.MeetingUUID); ok {
			owners = m.OwnerUUIDs
		}
	}
	return s.reg.MuteAllBut(name, owners, except...)
}

// KickParticipant hangs up a caller of the room (in its mix or lobby).
func (s *Server) KickParticipant(room, tag string) bool {
	s.mu.Lock()
	var target *call
	if lr := s.rooms[room]; lr != nil {
		for _, c := range lr.members {
			if c.tag == tag {
				target = c
			}
		}
	}
	if w, ok := s.lobby[room][tag]; ok {
		target = w.c
	}
	s.mu.Unlock()
	if target == nil {
		return false
	}
	target.Kick()
	return true
}

// takeSeat counts a caller into a meeting room unless it is full: the
// count includes callers waiting in the lobby, who will join.
func (s *Server) takeSeat(room string, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seats[room] >= max {
		return false
	}
	s.seats[room]++
	return true
}

func (s *Server) freeSeat(room string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seats[room] <= 1 {
		delete(s.seats, room)
		return
	}
	s.seats[room]--
}

// meetingGate applies a meeting's rules to a caller on the way into room
// (which need not be a meeting's). It hangs up callers it refuses, after a
// prompt saying why. ok: go in, then call leave when the call leaves.
func (c *call) meetingGate(room string) (leave func(), ok bool) {
	s := c.s
	g, isMeeting := s.book.GateFor(room)
	if !isMeeting {
		// A public room lives public_room_ttl after its last call: the
		// Book counts the calls in it.
		if s.book.EnterPublicRoom(room) {
			// Its room may have been refused at start-up (or deleted
			// over XML-RPC): open it now, kept from soft expiry.
			if err := s.reg.Pin(room); err != nil {
				s.book.LeavePublicRoom(room)
				c.refuseUnstored(room, err)
				return nil, false
			}
			return func() { s.book.LeavePublicRoom(room) }, true
		}
		return func() {}, true
	}
	pr := s.opt.Prompts
	now := time.Now()
	switch {
	case !g.SIPDialin && c.web == nil:
		// As for a wrong room number: the caller learns nothing more.
		// (The switch is about SIP: browsers go in.)
		c.log.Info("meeting refuses SIP callers", "room", room)
		c.playThenBye(pr.WrongPinBye)
		return nil, false
	case !g.ValidSince.IsZero() && now.Before(g.ValidSince):
		c.log.Info("meeting has not started", "room", room)
		c.refuse(ReasonNotStarted, pr.MeetingNotStarted)
		return nil, false
	case !g.ValidUntil.IsZero() && !now.Before(g.ValidUntil):
		c.log.Info("meeting is over", "room", room)
		c.refuse(ReasonOver, pr.MeetingEnded)
		return nil, false
	}
	// An operator may have deleted it over XML-RPC, or the store refused
	// it when the meeting was made.
	if err := s.reg.Pin(room); err != nil {
		c.refuseUnstored(room, err)
		return nil, false
	}
	if !s.takeSeat(room, g.MaxParticipants) {
		c.log.Info("meeting is full", "room", room, "max", g.MaxParticipants)
		c.refuse(ReasonFull, pr.ConferenceFull)
		return nil, false
	}
	leave = func() { s.freeSeat(room) }
	if g.LobbyOn && !c.waitLobby(room) {
		leave()
		return nil, false
	}
	return leave, true
}

// waitLobby holds the caller alone with the lobby prompt until an owner
// admits them or lifts the lobby. false: the call ended meanwhile.
func (c *call) waitLobby(room string) bool {
	s := c.s
	w := &lobbyWait{c: c, admit: make(chan struct{}), since: time.Now()}
	s.mu.Lock()
	if s.lobby[room] == nil {
		s.lobby[room] = map[string]*lobbyWait{}
	}
	s.lobby[room][c.tag] = w
	s.mu.Unlock()
	announced, admitted := false, false
	defer func() {
		s.mu.Lock()
		if s.lobby[room][c.tag] == w {
			delete(s.lobby[room], c.tag)
			if len(s.lobby[room]) == 0 {
				delete(s.lobby, room)
			}
		}
		s.mu.Unlock()
		// After it is off the list: a console that reloads the
		// participants on this event no longer sees it waiting.
		if announced {
			s.opt.Events.LobbyLeft(room, c.tag, admitted)
		}
	}()
	// Registered first, checked second: a lobby lifted in between either
	// saw this caller (and closed admit) or is seen here.
	if !s.book.LobbyOn(room) {
		return true
	}
	c.log.Info("waiting in the meeting's lobby", "room", room)
	s.opt.Events.LobbyJoined(room, c.lobbyRecord())
	announced = true
	if c.web != nil {
		c.web.step(BrowserLobby, room)
	}
	g := c.enterLobby()
	defer g.Close()
	c.member.Play(mixer.NewPrompt(s.lobbyLoop, true))
	defer c.member.StopPrompts()
	rtpDead := c.rtpWatch()
	defer rtpDead.Stop()
	for {
		select {
		case <-w.admit:
			c.log.Info("admitted from the lobby", "room", room)
			c.admitted = true
			admitted = true
			return true
		case <-c.endCh:
			c.byeIfKicked()
			return false
		case <-rtpDead.C:
			if c.rtpExpired(rtpDead) {
				return false
			}
		case <-c.digits:
		}
	}
}

// lobbyRecord is the caller as the lobby events tell of it (no record
// of the room's holds it while it waits).
func (c *call) lobbyRecord() room.Participant {
	return room.Participant{CallTag: c.tag, Number: c.number, User: c.user}
}

// Seats is how many callers are in a meeting room or its lobby.
func (s *Server) Seats(room string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seats[room]
}

// LobbyWaiting is how many callers wait in meeting lobbies.
func (s *Server) LobbyWaiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.lobby {
		n += len(m)
	}
	return n
}
