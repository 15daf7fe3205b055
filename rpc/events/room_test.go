package events

import (
	"encoding/json"
	"strings"
	"testing"

	"webconf/sipapp/room"
)

// watchers subscribes the operator, the user "owner" and the user
// "other", who owns nothing.
func watchers(t *testing.T, b *Bus) (op, owner, other *Sub) {
	t.Helper()
	subs := make([]*Sub, 3)
	for i, f := range []Filter{{Operator: true}, {User: "owner"}, {User: "other"}} {
		s, _, err := b.Subscribe(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
	}
	return subs[0], subs[1], subs[2]
}

// TestRoomLockEvents: the registry's RoomLocked/RoomUnlocked become
// room_locked/room_unlocked for the operator and, for a meeting's room,
// its owners; a user who owns nothing there sees neither.
func TestRoomLockEvents(t *testing.T) {
	b := newBus(t, 64, 64)
	op, owner, other := watchers(t, b)
	r := NewRoomEvents(b, nil)
	r.SetMeetingOf(func(room string) (string, []string, bool) {
		if room == "meet" {
			return "m-uuid", []string{"owner"}, true
		}
		return "", nil, false
	})
	r.RoomLocked("4711")
	r.RoomLocked("meet")
	r.RoomUnlocked("meet")
	r.Close() // publishes what is queued

	var got []string
	for _, ev := range drain(op) {
		got = append(got, ev.Name+" "+ev.Room)
	}
	if strings.Join(got, ", ") != "room_locked 4711, room_locked meet, room_unlocked meet" {
		t.Errorf("operator saw %q", got)
	}
	own := drain(owner)
	if len(own) != 2 || !strings.HasSuffix(string(own[0].Msg), `"data":{"room":"meet"}}`) {
		t.Errorf("the meeting's owner saw %d events (%v)", len(own), own)
	}
	if n := len(drain(other)); n != 0 {
		t.Errorf("a user owning nothing saw %d lock events", n)
	}
}

// TestParticipantUserEvents: the user a call is known to be (room
// Participant.User) is user_uuid in room_participant_* and
// meeting_participant_* events, from the join to the leave; a guest's is
// null.
func TestParticipantUserEvents(t *testing.T) {
	b := newBus(t, 64, 64)
	op, _, err := b.Subscribe(Filter{Operator: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := NewRoomEvents(b, nil)
	r.SetMeetingOf(func(room string) (string, []string, bool) { return "m-uuid", []string{"owner"}, true })
	r.Joined("meet", room.Participant{CallTag: "t-owner", Number: "<sip:o@h>", Status: room.StatusConnected, User: "owner"})
	r.Joined("meet", room.Participant{CallTag: "t-guest", Number: "<sip:g@h>", Status: room.StatusConnected})
	r.Muted("meet", "t-owner")
	r.Left("meet", "t-owner")
	r.Close()

	var got []string
	for _, ev := range drain(op) {
		var m struct {
			Data struct {
				CallID   string  `json:"call_id"`
				UserUUID *string `json:"user_uuid"`
			} `json:"data"`
		}
		if err := json.Unmarshal(ev.Msg, &m); err != nil {
			t.Fatal(err)
		}
		u := "null"
		if m.Data.UserUUID != nil {
			u = *m.Data.UserUUID
		}
		got = append(got, ev.Name+" "+m.Data.CallID+" "+u)
	}
	want := []string{
		"room_participant_joined t-owner owner", "meeting_participant_joined t-owner owner",
		"room_participant_joined t-guest null", "meeting_participant_joined t-guest null",
		"room_participant_muted t-owner owner",
		"room_participant_left t-owner owner", "meeting_participant_left t-owner owner",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRoomEventsSync: after Sync, what was queued before it is on the bus
// (a stream opened then does not see it live); Sync after Close returns.
func TestRoomEventsSync(t *testing.T) {
	b := newBus(t, 64, 64)
	r := NewRoomEvents(b, nil)
	before := b.Last()
	for i := 0; i < 100; i++ {
		r.RoomCreated("4711")
	}
	r.Sync()
	if got := b.Last() - before; got != 100 {
		t.Errorf("%d events on the bus after Sync, want 100", got)
	}
	r.Close()
	r.Sync()
}

// TestLobbyEvents: a caller entering and leaving a meeting's lobby is
// room_participant_lobby_joined and _left (admitted or not), with its
// caller id and meeting, for the operator and the meeting's owners only;
// a leave of a caller the adapter never saw in the lobby is nothing.
func TestLobbyEvents(t *testing.T) {
	b := newBus(t, 64, 64)
	op, owner, other := watchers(t, b)
	r := NewRoomEvents(b, nil)
	r.SetMeetingOf(func(room string) (string, []string, bool) { return "m-uuid", []string{"owner"}, true })
	r.LobbyJoined("meet", room.Participant{CallTag: "t-ann", Number: `"Ann" <webrtc:browser@127.0.0.1>`})
	r.LobbyJoined("meet", room.Participant{CallTag: "t-bob", Number: "<sip:bob@h>", User: "u-bob"})
	r.LobbyLeft("meet", "t-ann", true)
	r.LobbyLeft("meet", "t-bob", false)
	r.LobbyLeft("meet", "t-never", false)
	r.Close()

	var got []string
	for _, ev := range drain(op) {
		var m struct {
			Data LobbyParticipant `json:"data"`
		}
		if err := json.Unmarshal(ev.Msg, &m); err != nil {
			t.Fatal(err)
		}
		d := m.Data
		u := "null"
		if d.UserUUID != nil {
			u = *d.UserUUID
		}
		if d.MeetingUUID == nil || *d.MeetingUUID != "m-uuid" || d.Room != "meet" || ev.Room != "meet" {
			t.Errorf("%s: room %q, meeting %v", ev.Name, d.Room, d.MeetingUUID)
		}
		got = append(got, ev.Name+" "+d.CallID+" "+d.CallerIDName+"|"+d.CallerIDNumber+" "+u+" "+map[bool]string{true: "admitted", false: "-"}[d.Admitted])
	}
	want := []string{
		"room_participant_lobby_joined t-ann Ann|browser null -",
		"room_participant_lobby_joined t-bob |bob u-bob -",
		"room_participant_lobby_left t-ann Ann|browser null admitted",
		"room_participant_lobby_left t-bob |bob u-bob -",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(drain(owner)); n != 4 {
		t.Errorf("the meeting's owner saw %d lobby events, want 4", n)
	}
	if n := len(drain(other)); n != 0 {
		t.Errorf("a user owning nothing saw %d lobby events", n)
	}
}
