package events

import (
	"strings"
	"testing"
	"time"

	"webconf/sipapp/calls"
)

// TestCallEventsReachTheirUsers: the calls Switchboard's events become
// call_* messages that the users they name see (and no one else but the
// operator), call_ended with its reason, and ?rooms= leaves them out.
func TestCallEventsReachTheirUsers(t *testing.T) {
	b := newBus(t, 64, 64)
	sub := func(f Filter) *Sub {
		s, _, err := b.Subscribe(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice, bob, op := sub(Filter{User: "alice"}), sub(Filter{User: "bob"}), sub(Filter{Operator: true})
	opRooms := sub(Filter{Operator: true, Rooms: map[string]bool{"4711": true}})

	u := "alice"
	c := calls.Call{CallID: "leg-1", PeerCallerIDNumber: "123", Status: calls.StatusRinging,
		TalkingTo: map[string]*string{"leg-2": nil}, CreationTime: time.Unix(0, 0).UTC(), UserUUID: &u}
	e := NewCallEvents(b)
	e.CallCreated(c, []string{"alice"})
	c.Status = calls.StatusUp
	e.CallAnswered(c, []string{"alice"})
	e.CallUpdated(c, []string{"alice"})
	e.CallEnded(c, "486 Busy Here", []string{"alice"})

	got := drain(alice)
	var names []string
	for _, ev := range got {
		names = append(names, ev.Name)
	}
	if strings.Join(names, " ") != "call_created call_answered call_updated call_ended" {
		t.Fatalf("alice saw %v", names)
	}
	if m := string(got[0].Msg); !strings.Contains(m, `"data":{"call_id":"leg-1","peer_caller_id_name":"","peer_caller_id_number":"123","status":"Ringing","on_hold":false,"muted":false,"talking_to":{"leg-2":null},"conference_id":null,"creation_time":"1970-01-01T00:00:00Z","user_uuid":"alice"}}`) {
		t.Errorf("call_created message %s", m)
	}
	if m := string(got[3].Msg); !strings.Contains(m, `"status":"Up"`) || !strings.HasSuffix(m, `"user_uuid":"alice","reason":"486 Busy Here"}}`) {
		t.Errorf("call_ended message %s", m)
	}
	if n := len(drain(bob)); n != 0 {
		t.Errorf("bob saw %d of alice's call events", n)
	}
	if n := len(drain(op)); n != 4 {
		t.Errorf("the operator saw %d call events, want 4", n)
	}
	if n := len(drain(opRooms)); n != 0 {
		t.Errorf("an operator filtering on a room saw %d call events", n)
	}
}
