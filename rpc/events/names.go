package events

// The events of rooms and meetings, and their payloads (calls.go has
// the calls API's). Every name a
// client may ask for in ?names= is in Names; rpc/rest's OpenAPI test
// requires a message schema for each.
const (
	RoomCreated                = "room_created"
	RoomDeleted                = "room_deleted"
	RoomLocked                 = "room_locked"
	RoomUnlocked               = "room_unlocked"
	RoomParticipantJoined      = "room_participant_joined"
	RoomParticipantLeft        = "room_participant_left"
	RoomParticipantMuted       = "room_participant_muted"
	RoomParticipantUnmuted     = "room_participant_unmuted"
	RoomParticipantTalkStarted = "room_participant_talk_started"
	RoomParticipantTalkStopped = "room_participant_talk_stopped"
	RoomParticipantLobbyJoined = "room_participant_lobby_joined"
	RoomParticipantLobbyLeft   = "room_participant_lobby_left"
	MeetingJoined              = "meeting_participant_joined"
	MeetingLeft                = "meeting_participant_left"
)

// names is every event name the bus serves, in documentation order.
var names = []string{
	RoomCreated, RoomDeleted, RoomLocked, RoomUnlocked,
	RoomParticipantJoined, RoomParticipantLeft, RoomParticipantMuted, RoomParticipantUnmuted,
	RoomParticipantTalkStarted, RoomParticipantTalkStopped,
	RoomParticipantLobbyJoined, RoomParticipantLobbyLeft,
	MeetingJoined, MeetingLeft,
	CallCreated, CallUpdated, CallAnswered, CallEnded,
	AdhocCreated, AdhocDeleted, AdhocParticipantJoined, AdhocParticipantLeft,
}

var known = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}()

// Names lists every event name.
func Names() []string { return append([]string(nil), names...) }

// Known reports whether name is an event name.
func Known(name string) bool { return known[name] }

// Room is the payload of room_created, room_deleted, room_locked and
// room_unlocked.
type Room struct {
	Room string `json:"room"`
}

// RoomParticipant is the payload of the room_participant_* events: the
// room, the participant's SEMS call tag (the call_tag roomInfo lists and
// kick/mute take) as call_id, and what roomInfo says of it.
type RoomParticipant struct {
	Room   string `json:"room"`
	CallID string `json:"call_id"`
	// Number is roomInfo's number: the caller's From ("Name" <sip:...>)
	// or a dial-out's sip:callee@domain.
	Number        string `json:"number"`
	ParticipantID string `json:"participant_id"`
	// UserUUID is the user whose phone the call is (it answered a meeting
	// direct dial's challenge with the user's SIP credentials), null for
	// a guest and in rooms that are no meeting's.
	UserUUID *string `json:"user_uuid"`
	// MeetingUUID is the meeting whose room it is, null otherwise.
	MeetingUUID *string `json:"meeting_uuid"`
}

// LobbyParticipant is the payload of room_participant_lobby_joined and
// _left: a caller entering or leaving a meeting room's lobby, where it
// waits to be admitted (in no room record nor mix meanwhile), with its
// caller id split as the participants list shows it.
type LobbyParticipant struct {
	Room           string `json:"room"`
	CallID         string `json:"call_id"`
	Number         string `json:"number"`
	CallerIDName   string `json:"caller_id_name"`
	CallerIDNumber string `json:"caller_id_number"`
	// UserUUID is the user whose phone it is; null for a guest.
	UserUUID *string `json:"user_uuid"`
	// MeetingUUID is the meeting whose lobby it is (null only if the
	// meeting went in between).
	MeetingUUID *string `json:"meeting_uuid"`
	// Admitted (in _left) is true when it left the lobby to go in: an
	// owner admitted it or lifted the lobby (room_participant_joined
	// follows); false when it hung up, was removed or the meeting ended,
	// and always false in _joined.
	Admitted bool `json:"admitted"`
}

// MeetingParticipant is Wazo's payload of meeting_participant_joined and
// _left (meetings-anchors.md 1.8): the participant as GET
// .../participants lists it, plus meeting_uuid.
type MeetingParticipant struct {
	ID             string  `json:"id"`
	CallerIDName   string  `json:"caller_id_name"`
	CallerIDNumber string  `json:"caller_id_number"`
	CallID         string  `json:"call_id"`
	UserUUID       *string `json:"user_uuid"` // the user whose phone it is; null: a guest
	MeetingUUID    string  `json:"meeting_uuid"`
}
