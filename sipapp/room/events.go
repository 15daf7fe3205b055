package room

// Events is how the conference core tells higher layers (the control
// plane's event stream, metrics) what happens. Implementations must return
// quickly and never call back into the registry while handling an event:
// events are delivered on call and mixer goroutines.
type Events interface {
	RoomCreated(room string)
	RoomDeleted(room string)
	Joined(room string, p Participant)
	Left(room, callTag string)
	Muted(room, callTag string)
	Unmuted(room, callTag string)
	TalkingStarted(room, callTag string)
	TalkingStopped(room, callTag string)
	// Status reports every change of a participant record's status or
	// reason (the transitions roomInfo pollers see, without polling).
	Status(room string, p Participant)
	// RoomLocked and RoomUnlocked report a change of a room's lock
	// (Registry.SetLocked).
	RoomLocked(room string)
	RoomUnlocked(room string)
	// LobbyJoined and LobbyLeft report a caller entering and leaving a
	// meeting room's lobby, where it waits to be admitted (it is in
	// neither the room's record nor its mix meanwhile). admitted: it left
	// to go in (an owner admitted it or lifted the lobby); false: it hung
	// up, was removed, or the meeting ended.
	LobbyJoined(room string, p Participant)
	LobbyLeft(room, callTag string, admitted bool)
}

// NopEvents ignores every event.
type NopEvents struct{}

func (NopEvents) RoomCreated(string)              {}
func (NopEvents) RoomDeleted(string)              {}
func (NopEvents) Joined(string, Participant)      {}
func (NopEvents) Left(string, string)             {}
func (NopEvents) Muted(string, string)            {}
func (NopEvents) Unmuted(string, string)          {}
func (NopEvents) TalkingStarted(string, string)   {}
func (NopEvents) TalkingStopped(string, string)   {}
func (NopEvents) Status(string, Participant)      {}
func (NopEvents) RoomLocked(string)               {}
func (NopEvents) RoomUnlocked(string)             {}
func (NopEvents) LobbyJoined(string, Participant) {}
func (NopEvents) LobbyLeft(string, string, bool)  {}

var _ Events = NopEvents{}
