package sipapp

import (
	"errors"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/dsp"
	"webconf/sipapp/meeting"
	"webconf/sipapp/mixer"
)

// This file is the contract of browser participants (issue 16): a WebRTC
// leg (package sipapp/webrtc) is one more member of a room's mix, through
// the same gates as a SIP caller (lock, valid_since / valid_until, seats,
// lobby), with the same mute, kick, participants list and events.

// BrowserLeg is a browser participant's media: what the mixer reads and
// writes (G.711 frames), and its end.
type BrowserLeg interface {
	mixer.Input
	mixer.Output
	// Done is closed when the media has ended (ICE failed or closed, the
	// peer connection closed).
	Done() <-chan struct{}
	// Close ends the media; it may be called more than once.
	Close()
}

// BrowserJoin is a browser participant on its way into a room.
type BrowserJoin struct {
	// Room is the room's name: a meeting's exten, or an existing room
	// (an XML-RPC room, an open public room). Empty when PublicID is set.
	Room string
	// PublicID is the identifier of a public room (/c/<identifier>): the
	// room is made if none is open, charged to Peer's budget of public
	// rooms, as for sip:c.<identifier>.
	PublicID string
	// Name is the display name typed on the join page (caller_id_name).
	Name string
	// User is the uuid of a signed-in user (a meeting owner joining with
	// a token); "" for a guest.
	User string
	// Peer is the browser's address (after trusted proxies), for logs
	// and budgets.
	Peer netip.Addr
	Leg  BrowserLeg
	// State is told how the participant moves along: lobby, joined,
	// muted, unmuted, ended (with a reason). It is called on the
	// participant's own goroutine, in order, never with a lock held, and
	// must not block for long.
	State func(BrowserState)
}

// BrowserState is one step of a browser participant.
type BrowserState struct {
	Kind    string // BrowserLobby, BrowserJoined, BrowserMuted, BrowserUnmuted, BrowserEnded
	Reason  string // for BrowserEnded: a Reason* code
	CallTag string // the participant's call tag (its id in lists, events, kick)
	Room    string // the room's name
}

// Browser participant steps.
const (
	BrowserLobby   = "lobby"
	BrowserJoined  = "joined"
	BrowserMuted   = "muted"
	BrowserUnmuted = "unmuted"
	BrowserEnded   = "ended"
)

// Why a browser participant is refused or ended: the signalling's error
// codes, shown by the join page.
const (
	ReasonNotStarted  = "meeting-not-started"
	ReasonOver        = "meeting-ended"
	ReasonFull        = "meeting-full"
	ReasonLocked      = "room-locked"
	ReasonNoRoom      = "room-not-found"
	ReasonBudget      = "too-many-rooms" // the source made its budget of public rooms
	ReasonUnavailable = "unavailable"    // the store refused the room
	ReasonKicked      = "kicked"
	ReasonLeft        = "left"       // the browser left
	ReasonMediaLost   = "media-lost" // the leg ended, or sent nothing for dead_rtp_time
	ReasonAlone       = "alone"      // max_participant_alone_time
	ReasonShutdown    = "shutdown"
)

// BrowserRefused is JoinBrowser's error when the participant may not go
// in; Reason is a Reason* code.
type BrowserRefused struct{ Reason string }

func (e *BrowserRefused) Error() string { return "browser participant refused: " + e.Reason }

// ErrBrowserUnimplemented was the contract stub's answer; nothing returns
// it any more (kept so that code written against the stub still builds).
var ErrBrowserUnimplemented = errors.New("browser participants are not built yet")

// A browser participant is a *call without a SIP dialog: c.web holds its
// leg and its State callback. It goes through the very code a SIP caller
// does (inRoom, meetingGate, waitLobby, stay, talk, makePublicRoom), so
// that the gates, the registry record, the mix, the sounds, mute, kick,
// talk detection and events cannot drift apart; those flows branch on
// c.web only where a SIP caller would get SIP (sendBye, a refusal's
// prompt, dead_rtp_time's clock). A browser participant is not in
// Server.calls (no Call-ID, no RTP leg): Server.browsers holds it for
// Shutdown.

// Browser is a browser participant's handle.
type Browser struct {
	tag   string
	s     *Server
	c     *call
	leg   BrowserLeg
	in    browserInput
	state func(BrowserState)

	wake    chan struct{} // poked when steps or the mute changed (cap 1)
	started chan struct{} // closed at the first step (lobby or joined) or when the flow ended before
	done    chan struct{} // closed after the last State call

	// reason is why it ended when the ender said (endAs): written in the
	// call's endOnce before endCh closes, read after.
	reason string

	mu        sync.Mutex
	began     bool   // a step was taken: it started (JoinBrowser returns the handle)
	final     string // the Reason* it ended with (set by finish)
	steps     []BrowserState
	room      string // the room it waits for or is in
	joined    bool   // in the room's mix and record: SetMuted goes through the registry
	left      bool   // finished: SetMuted does nothing
	wantMuted bool   // SetMuted(true) before it joined
	startOnce sync.Once
}

// browserInput reads the leg's frames for the mixer and notes when the
// last one came (dead_rtp_time). No allocation: one clock read per frame.
type browserInput struct {
	in   mixer.Input
	last atomic.Int64 // unix nanoseconds
}

func (b *browserInput) ReadFrame(f *dsp.Frame) bool {
	if !b.in.ReadFrame(f) {
		return false
	}
	b.last.Store(time.Now().UnixNano())
	return true
}

// browserNumber is a browser participant's number in the room's record
// (roomInfo's number, the events' caller id), shaped as a SIP caller's
// (numberOf): the display name, then a URI whose user is "browser".
func browserNumber(name string, host netip.Addr) string {
	uri := "<webrtc:browser@" + host.String() + ">"
	if name == "" {
		return uri
	}
	if isToken(name) {
		return name + " " + uri
	}
	return `"` + name + `" ` + uri
}

// refuse ends a caller on the way in that may not go in: a SIP caller
// hears prompt, then BYE; a browser participant ends with reason.
func (c *call) refuse(reason string, prompt []int16) {
	if c.web != nil {
		c.endAs(endFailed, reason)
		return
	}
	c.playThenBye(prompt)
}

// lastReceive is when media last came from the caller.
func (c *call) lastReceive() time.Time {
	if c.web != nil {
		return time.Unix(0, c.web.in.last.Load())
	}
	return c.leg.LastReceive()
}

// browserRoom resolves where a browser participant goes and applies the
// checks that need no waiting (CheckBrowserRoom). newPublic is the
// identifier of a public room to make (room is then "").
func (s *Server) browserRoom(name, publicID string) (room, newPublic string, err error) {
	if s.ctx == nil || s.ctx.Err() != nil {
		return "", "", &BrowserRefused{Reason: ReasonShutdown}
	}
	switch {
	case publicID != "":
		r, ok := s.book.PublicRoomNumber(publicID)
		if !ok {
			switch {
			case !s.opt.Meetings.PublicRooms || !meeting.ValidIdentifier(publicID) || meeting.ReservedIdentifier(publicID):
				return "", "", &BrowserRefused{Reason: ReasonNoRoom}
			case !s.book.CanMakePublicRoom():
				return "", "", &BrowserRefused{Reason: ReasonUnavailable}
			}
			return "", publicID, nil
		}
		room = r
	case name == "" || !s.book.IsMeetingRoom(name) && !s.reg.Exists(name):
		// An existing room only: a browser does not make a plain room.
		return "", "", &BrowserRefused{Reason: ReasonNoRoom}
	default:
		room = name
	}
	if s.reg.Locked(room) {
		return "", "", &BrowserRefused{Reason: ReasonLocked}
	}
	// As meetingGate, but for its SIP dial-in switch (SIP callers only).
	if g, ok := s.book.GateFor(room); ok {
		now := time.Now()
		switch {
		case !g.ValidSince.IsZero() && now.Before(g.ValidSince):
			return "", "", &BrowserRefused{Reason: ReasonNotStarted}
		case !g.ValidUntil.IsZero() && !now.Before(g.ValidUntil):
			return "", "", &BrowserRefused{Reason: ReasonOver}
		case s.Seats(room) >= g.MaxParticipants:
			return "", "", &BrowserRefused{Reason: ReasonFull}
		}
	}
	return room, "", nil
}

// CheckBrowserRoom applies, without a leg, the checks that need no
// waiting (the room exists or may be made, not locked, the meeting's
// valid_since / valid_until, seats left): the signalling refuses with the
// reason before any media is set up. A *BrowserRefused says why.
func (s *Server) CheckBrowserRoom(room, publicID string) error {
	_, _, err := s.browserRoom(room, publicID)
	return err
}

// JoinBrowser starts a browser participant: it goes through the room's
// gates (again: things change), waits in the lobby if the meeting has
// one, joins the mix, and stays until Leave, a kick, the leg's end, the
// meeting's end or shutdown; j.State learns each step. An error (a
// *BrowserRefused) means it never started; the leg is not closed.
func (s *Server) JoinBrowser(j BrowserJoin) (*Browser, error) {
	if j.Leg == nil {
		return nil, errors.New("sipapp: browser participant without a media leg")
	}
	room, newPublic, err := s.browserRoom(j.Room, j.PublicID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	b := &Browser{
		s: s, leg: j.Leg, state: j.State,
		wake: make(chan struct{}, 1), started: make(chan struct{}), done: make(chan struct{}),
	}
	if b.state == nil {
		b.state = func(BrowserState) {}
	}
	b.in.in = j.Leg
	b.in.last.Store(now.UnixNano())
	c := &call{
		s: s, tag: newCallTag(now), web: b, pre: room, newPublic: newPublic, user: j.User,
		number: browserNumber(j.Name, s.ip),
		remote: party{name: j.Name, uri: sip.Uri{Scheme: "webrtc", User: "browser", Host: s.ip.String()}},
		alone:  make(chan struct{}, 1), endCh: make(chan struct{}),
		who: caller{addr: j.Peer.Unmap().String()},
	}
	c.log = s.log.With("call_tag", c.tag, "browser", j.Peer.String())
	c.member = mixer.NewMember(&b.in, j.Leg)
	b.c, b.tag = c, c.tag

	s.mu.Lock()
	if s.ctx.Err() != nil {
		// Shutdown has begun: its loop over s.browsers has run or will
		// run without this one.
		s.mu.Unlock()
		return nil, &BrowserRefused{Reason: ReasonShutdown}
	}
	s.browsers[b] = struct{}{}
	s.wg.Add(2) // the flow and the State notifier
	s.mu.Unlock()
	go b.run()
	go b.notify()
	<-b.started
	b.mu.Lock()
	began, final := b.began, b.final
	b.mu.Unlock()
	if !began {
		return nil, &BrowserRefused{Reason: final}
	}
	return b, nil
}

// run is the participant's flow: a SIP caller's from the room on.
func (b *Browser) run() {
	c := b.c
	defer c.s.wg.Done()
	defer b.finish()
	defer func() {
		// As a call's: a flow that panics ends alone, counted.
		if r := recover(); r != nil {
			c.s.counters.panics.Add(1)
			c.log.Error("browser participant flow panicked", "panic", r, "stack", string(debug.Stack()))
			c.end(endFailed)
		}
	}()
	room := c.pre
	if c.newPublic != "" {
		r, _, _, ok := c.makePublicRoom()
		if !ok {
			return
		}
		room = r
	}
	c.inRoom(room, "", true)
}

// reasonOf is the Reason* of a participant that ended for r (when the
// ender gave none).
func reasonOf(r endReason) string {
	switch r {
	case endBye:
		return ReasonLeft
	case endKick:
		return ReasonKicked
	case endTimeout:
		return ReasonMediaLost
	case endShutdown:
		return ReasonShutdown
	}
	return ReasonUnavailable
}

// finish runs when the flow is over (out of the room, its record
// finished): the last step, the leg closed, or the refusal JoinBrowser
// returns when it never started.
func (b *Browser) finish() {
	c := b.c
	c.end(endFailed) // nothing when it has ended (every way out ends it)
	reason := b.reason
	if reason == "" {
		reason = reasonOf(endReason(c.why.Load()))
	}
	c.s.mu.Lock()
	delete(c.s.browsers, b)
	c.s.mu.Unlock()
	b.mu.Lock()
	b.final, b.left = reason, true
	began := b.began
	if began {
		b.steps = append(b.steps, BrowserState{Kind: BrowserEnded, Reason: reason, CallTag: b.tag, Room: b.room})
	}
	b.mu.Unlock()
	if began {
		b.leg.Close()
		b.poke()
		c.log.Info("browser participant ended", "reason", reason)
	} else {
		c.log.Info("browser participant refused", "reason", reason)
	}
	b.startOnce.Do(func() { close(b.started) })
}

// step records a step for the notifier; the first starts the participant.
func (b *Browser) step(kind, room string) {
	b.mu.Lock()
	b.began, b.room = true, room
	b.steps = append(b.steps, BrowserState{Kind: kind, CallTag: b.tag, Room: room})
	b.mu.Unlock()
	b.poke()
	b.startOnce.Do(func() { close(b.started) })
}

// inMix is the flow's word that the participant is in room's mix and
// record: joined, and a mute asked for before applied.
func (b *Browser) inMix(room string) {
	b.mu.Lock()
	b.joined = true
	mute := b.wantMuted
	b.mu.Unlock()
	b.step(BrowserJoined, room)
	if mute {
		b.setMuted(room, true)
	}
}

func (b *Browser) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// notify is the participant's State goroutine: the steps in order, the
// mute as it changes (whoever changed it), and the leg's end.
func (b *Browser) notify() {
	defer b.s.wg.Done()
	<-b.started
	b.mu.Lock()
	began := b.began
	b.mu.Unlock()
	if !began {
		return
	}
	defer close(b.done)
	legDone := b.leg.Done()
	joined, muted := false, false
	for {
		b.mu.Lock()
		steps := b.steps
		b.steps = nil
		room := b.room
		b.mu.Unlock()
		for _, st := range steps {
			b.tell(st)
			switch st.Kind {
			case BrowserEnded:
				return
			case BrowserJoined:
				joined = true
			}
		}
		if m := b.c.member.Muted(); joined && m != muted {
			muted = m
			kind := BrowserUnmuted
			if m {
				kind = BrowserMuted
			}
			b.tell(BrowserState{Kind: kind, CallTag: b.tag, Room: room})
		}
		select {
		case <-b.wake:
		case <-legDone:
			legDone = nil
			b.c.log.Info("browser media ended")
			b.c.endAs(endTimeout, ReasonMediaLost)
		}
	}
}

// tell calls State; a callback that panics ends the participant, not the
// process.
func (b *Browser) tell(st BrowserState) {
	defer func() {
		if r := recover(); r != nil {
			b.s.counters.panics.Add(1)
			b.c.log.Error("browser State callback panicked", "panic", r, "stack", string(debug.Stack()))
			b.c.end(endFailed)
		}
	}()
	b.state(st)
}

// CallTag is the participant's call tag.
func (b *Browser) CallTag() string { return b.tag }

// SetMuted mutes or unmutes the participant (the browser's own button),
// as a moderator's mute does: the room hears it, lists and events show it.
// Before it joins (in the lobby), it is kept and applied on joining.
func (b *Browser) SetMuted(v bool) {
	b.mu.Lock()
	if b.left {
		b.mu.Unlock()
		return
	}
	if !b.joined {
		b.wantMuted = v
		b.mu.Unlock()
		return
	}
	room := b.room
	b.mu.Unlock()
	b.setMuted(room, v)
}

// setMuted is the registry's mute (XML-RPC's and REST's): the record, the
// mix (through call.SetMuted) and the events.
func (b *Browser) setMuted(room string, v bool) {
	f := b.s.reg.Unmute
	if v {
		f = b.s.reg.Mute
	}
	if err := f(room, b.tag); err != nil {
		b.c.log.Info("browser mute not applied", "room", room, "muted", v, "err", err)
	}
}

// Leave ends the participant (the browser hung up or went away).
func (b *Browser) Leave() { b.c.endAs(endBye, ReasonLeft) }

// Done is closed once the participant has left its room (after its last
// State call).
func (b *Browser) Done() <-chan struct{} { return b.done }

// browsersInLocked lists the browser participants in room's mix (s.mu held).
func (s *Server) browsersInLocked(room string) []*call {
	var out []*call
	if lr := s.rooms[room]; lr != nil {
		for _, c := range lr.members {
			if c.web != nil {
				out = append(out, c)
			}
		}
	}
	return out
}
