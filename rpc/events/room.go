package events

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"webconf/sipapp/room"
)

// MeetingOf tells which meeting owns a room: its uuid and owners' uuids
// (ok false for a room no meeting owns). It may block briefly (the
// meetings Book's lock); it is only called on the adapter's own goroutine.
type MeetingOf func(room string) (uuid string, owners []string, ok bool)

// roomQueue bounds the events waiting for the adapter's goroutine.
const roomQueue = 8192

type roomKind uint8

const (
	evCreated roomKind = iota
	evDeleted
	evJoined
	evLeft
	evMuted
	evUnmuted
	evTalkOn
	evTalkOff
	evStatus
	evLocked
	evUnlocked
	evLobbyIn
	evLobbyOut
	evSync // a barrier: Sync waits for it
)

// roomEv is one room.Events event as it waits in the queue: a value, so that
// queueing it allocates nothing.
type roomEv struct {
	kind      roomKind
	room, tag string
	p         room.Participant
	admitted  bool          // evLobbyOut only
	done      chan struct{} // evSync only
}

// part is a participant between its join and its leave, with what its
// events carry.
type part struct {
	room, number, pid string
	user              *string  // the user whose phone it is; nil: a guest
	meeting           *string  // uuid of the room's meeting at the join
	owners            []string // the meeting's owners at the join
}

// RoomEvents turns the room registry's and the mixer's events
// (room.Events) into room_* and meeting_participant_* events on a Bus.
//
// The room.Events methods run on call and mixer goroutines, some with the
// registry's lock held, so each only queues a small value (no allocation,
// no lock but the channel's) and returns; one goroutine of the adapter
// looks up the room's meeting and publishes, in the order the events
// came. When the queue is full an event is dropped and counted (Dropped)
// rather than making a call wait.
type RoomEvents struct {
	bus     *Bus
	q       chan roomEv
	stop    chan struct{}
	stopped chan struct{}
	once    sync.Once
	meeting atomic.Pointer[MeetingOf]
	dropped atomic.Uint64
	log     *slog.Logger

	// The goroutine's own state.
	parts  map[string]*part            // call tag -> participant
	byRoom map[string]map[string]*part // room -> call tag -> participant
	lobby  map[string]*part            // call tag -> a caller in a meeting's lobby
}

var _ room.Events = (*RoomEvents)(nil)

// NewRoomEvents starts the adapter; Close stops it.
func NewRoomEvents(bus *Bus, log *slog.Logger) *RoomEvents {
	if log == nil {
		log = slog.Default()
	}
	r := &RoomEvents{
		bus: bus, q: make(chan roomEv, roomQueue), stop: make(chan struct{}), stopped: make(chan struct{}), log: log,
		parts: map[string]*part{}, byRoom: map[string]map[string]*part{}, lobby: map[string]*part{},
	}
	go r.run()
	return r
}

// SetMeetingOf sets how a room's meeting is found (the meetings Book
// exists only once the SIP server, which takes the adapter, is made).
func (r *RoomEvents) SetMeetingOf(f MeetingOf) { r.meeting.Store(&f) }

// Dropped is how many events a full queue dropped.
func (r *RoomEvents) Dropped() uint64 { return r.dropped.Load() }

// Close publishes what is queued and stops the goroutine.
func (r *RoomEvents) Close() {
	r.once.Do(func() { close(r.stop) })
	<-r.stopped
}

// Sync returns once every event queued before it is published (or the
// adapter is closed): a client that opens a stream after Sync sees none
// of them live.
func (r *RoomEvents) Sync() {
	done := make(chan struct{})
	select {
	case r.q <- roomEv{kind: evSync, done: done}:
	case <-r.stopped:
		return
	}
	select {
	case <-done:
	case <-r.stopped:
	}
}

func (r *RoomEvents) put(ev roomEv) {
	select {
	case r.q <- ev:
	default:
		if r.dropped.Add(1) == 1 {
			r.log.Warn("room event queue full: events dropped (counted; logged once)", "event_kind", ev.kind, "room", ev.room)
		}
	}
}

// RoomCreated implements room.Events.
func (r *RoomEvents) RoomCreated(room string) { r.put(roomEv{kind: evCreated, room: room}) }

// RoomDeleted implements room.Events.
func (r *RoomEvents) RoomDeleted(room string) { r.put(roomEv{kind: evDeleted, room: room}) }

// Joined implements room.Events.
func (r *RoomEvents) Joined(room string, p room.Participant) {
	r.put(roomEv{kind: evJoined, room: room, tag: p.CallTag, p: p})
}

// Left implements room.Events.
func (r *RoomEvents) Left(room, tag string) { r.put(roomEv{kind: evLeft, room: room, tag: tag}) }

// Muted implements room.Events.
func (r *RoomEvents) Muted(room, tag string) { r.put(roomEv{kind: evMuted, room: room, tag: tag}) }

// Unmuted implements room.Events.
func (r *RoomEvents) Unmuted(room, tag string) { r.put(roomEv{kind: evUnmuted, room: room, tag: tag}) }

// RoomLocked implements room.Events.
func (r *RoomEvents) RoomLocked(room string) { r.put(roomEv{kind: evLocked, room: room}) }

// RoomUnlocked implements room.Events.
func (r *RoomEvents) RoomUnlocked(room string) { r.put(roomEv{kind: evUnlocked, room: room}) }

// TalkingStarted implements room.Events.
func (r *RoomEvents) TalkingStarted(room, tag string) {
	r.put(roomEv{kind: evTalkOn, room: room, tag: tag})
}

// TalkingStopped implements room.Events.
func (r *RoomEvents) TalkingStopped(room, tag string) {
	r.put(roomEv{kind: evTalkOff, room: room, tag: tag})
}

// LobbyJoined implements room.Events.
func (r *RoomEvents) LobbyJoined(room string, p room.Participant) {
	r.put(roomEv{kind: evLobbyIn, room: room, tag: p.CallTag, p: p})
}

// LobbyLeft implements room.Events.
func (r *RoomEvents) LobbyLeft(room, tag string, admitted bool) {
	r.put(roomEv{kind: evLobbyOut, room: room, tag: tag, admitted: admitted})
}

// Status implements room.Events: a dial-out's first Connected is its
// join (dial-ins join through Joined).
func (r *RoomEvents) Status(name string, p room.Participant) {
	if p.Status == room.StatusConnected {
		r.put(roomEv{kind: evStatus, room: name, tag: p.CallTag, p: p})
	}
}

func (r *RoomEvents) run() {
	defer close(r.stopped)
	for {
		select {
		case ev := <-r.q:
			r.handle(ev)
		case <-r.stop:
			for {
				select {
				case ev := <-r.q:
					r.handle(ev)
				default:
					return
				}
			}
		}
	}
}

func (r *RoomEvents) handle(ev roomEv) {
	switch ev.kind {
	case evSync:
		close(ev.done)
	case evCreated:
		uuid, owners := r.meetingOf(ev.room)
		r.bus.Publish(RoomCreated, Room{Room: ev.room}, ev.room, ownersIf(uuid, owners))
	case evLocked, evUnlocked:
		name := RoomLocked
		if ev.kind == evUnlocked {
			name = RoomUnlocked
		}
		uuid, owners := r.meetingOf(ev.room)
		r.bus.Publish(name, Room{Room: ev.room}, ev.room, ownersIf(uuid, owners))
	case evDeleted:
		// The registry forgets a deleted room's records: its callers
		// leave now, as far as the stream is concerned.
		for tag, p := range r.byRoom[ev.room] {
			r.leave(tag, p)
		}
		uuid, owners := r.meetingOf(ev.room)
		r.bus.Publish(RoomDeleted, Room{Room: ev.room}, ev.room, ownersIf(uuid, owners))
	case evJoined, evStatus:
		if _, ok := r.parts[ev.tag]; ok || ev.tag == "" {
			return
		}
		p := &part{room: ev.room, number: ev.p.Number, pid: ev.p.ID}
		if ev.p.User != "" {
			u := ev.p.User
			p.user = &u
		}
		if uuid, owners := r.meetingOf(ev.room); uuid != "" {
			p.meeting, p.owners = &uuid, owners
		}
		r.parts[ev.tag] = p
		if r.byRoom[ev.room] == nil {
			r.byRoom[ev.room] = map[string]*part{}
		}
		r.byRoom[ev.room][ev.tag] = p
		r.bus.Publish(RoomParticipantJoined, r.payload(ev.tag, p), p.room, p.owners)
		if p.meeting != nil {
			r.bus.Publish(MeetingJoined, meetingPayload(ev.tag, p), p.room, p.owners)
		}
	case evLobbyIn:
		if _, ok := r.lobby[ev.tag]; ok || ev.tag == "" {
			return
		}
		p := &part{room: ev.room, number: ev.p.Number}
		if ev.p.User != "" {
			u := ev.p.User
			p.user = &u
		}
		if uuid, owners := r.meetingOf(ev.room); uuid != "" {
			p.meeting, p.owners = &uuid, owners
		}
		r.lobby[ev.tag] = p
		r.bus.Publish(RoomParticipantLobbyJoined, lobbyPayload(ev.tag, p, false), p.room, p.owners)
	case evLobbyOut:
		p, ok := r.lobby[ev.tag]
		if !ok {
			return
		}
		delete(r.lobby, ev.tag)
		r.bus.Publish(RoomParticipantLobbyLeft, lobbyPayload(ev.tag, p, ev.admitted), p.room, p.owners)
	case evLeft:
		if p, ok := r.parts[ev.tag]; ok {
			r.leave(ev.tag, p)
		}
	case evMuted, evUnmuted:
		name := RoomParticipantMuted
		if ev.kind == evUnmuted {
			name = RoomParticipantUnmuted
		}
		p, ok := r.parts[ev.tag]
		if !ok {
			// A record without a live call (an invitation, a finished
			// call) can be muted too.
			p = &part{room: ev.room}
			if uuid, owners := r.meetingOf(ev.room); uuid != "" {
				p.meeting, p.owners = &uuid, owners
			}
		}
		r.bus.Publish(name, r.payload(ev.tag, p), p.room, p.owners)
	case evTalkOn, evTalkOff:
		p, ok := r.parts[ev.tag]
		if !ok {
			return // the mixer's last word on a call that has left
		}
		name := RoomParticipantTalkStarted
		if ev.kind == evTalkOff {
			name = RoomParticipantTalkStopped
		}
		r.bus.Publish(name, r.payload(ev.tag, p), p.room, p.owners)
	}
}

func (r *RoomEvents) leave(tag string, p *part) {
	delete(r.parts, tag)
	if m := r.byRoom[p.room]; m != nil {
		delete(m, tag)
		if len(m) == 0 {
			delete(r.byRoom, p.room)
		}
	}
	r.bus.Publish(RoomParticipantLeft, r.payload(tag, p), p.room, p.owners)
	if p.meeting != nil {
		r.bus.Publish(MeetingLeft, meetingPayload(tag, p), p.room, p.owners)
	}
}

func (r *RoomEvents) payload(tag string, p *part) RoomParticipant {
	return RoomParticipant{Room: p.room, CallID: tag, Number: p.number, ParticipantID: p.pid, UserUUID: p.user, MeetingUUID: p.meeting}
}

func lobbyPayload(tag string, p *part, admitted bool) LobbyParticipant {
	name, number := callerID(p.number)
	return LobbyParticipant{Room: p.room, CallID: tag, Number: p.number, CallerIDName: name, CallerIDNumber: number,
		UserUUID: p.user, MeetingUUID: p.meeting, Admitted: admitted}
}

func meetingPayload(tag string, p *part) MeetingParticipant {
	name, number := callerID(p.number)
	return MeetingParticipant{ID: tag, CallerIDName: name, CallerIDNumber: number, CallID: tag, UserUUID: p.user, MeetingUUID: *p.meeting}
}

func (r *RoomEvents) meetingOf(room string) (string, []string) {
	f := r.meeting.Load()
	if f == nil {
		return "", nil
	}
	uuid, owners, ok := (*f)(room)
	if !ok {
		return "", nil
	}
	return uuid, owners
}

func ownersIf(uuid string, owners []string) []string {
	if uuid == "" {
		return nil
	}
	return owners
}

// callerID splits a participant's number, `"Name" <sip:user@host>`,
// `Name <sip:user@host>` or `sip:user@host`, into the display name and
// the URI's user part, as the meetings participants list shows them.
func callerID(number string) (name, user string) {
	uri := number
	if i := strings.LastIndexByte(number, '<'); i >= 0 {
		name = strings.TrimSpace(number[:i])
		if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
			name = name[1 : len(name)-1] // sipapp quotes it without escaping
		}
		uri, _, _ = strings.Cut(number[i+1:], ">")
	}
	if _, rest, ok := strings.Cut(uri, ":"); ok {
		uri = rest
	}
	if u, _, ok := strings.Cut(uri, "@"); ok {
		return name, u
	}
	return name, ""
}
