package events

import (
	"strings"
	"testing"
)

// TestRoomLockEvents: the registry's RoomLocked/RoomUnlocked become
// room_locked/room_unlocked for the operator and, for a meeting's room,
// its owners; a user who owns nothing there sees neither.
func TestRoomLockEvents(t *testing.T) {
	b := newBus(t, 64, 64)
	op, _, err := b.Subscribe(Filter{Operator: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner, _, _ := b.Subscribe(Filter{User: "owner"}, nil)
	other, _, _ := b.Subscribe(Filter{User: "other"}, nil)
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
