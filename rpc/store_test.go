package rpc

import (
	"testing"

	"webconf/sipapp"
	"webconf/sipapp/store"
	"webconf/sipapp/store/storetest"
)

// A control function whose room, PIN or invite write the store refuses
// answers "internal error" in its own reply shape and changes nothing:
// roomInfo, listRooms and findParticipant show the state before, and so
// does a node restarted on the same store (issue 11, point 1).
func TestRefusedStoreWritesAnswerInternalError(t *testing.T) {
	mem := store.NewMemory()
	st := storetest.NewFaulty(mem)
	s := newService(t, func(so *sipapp.Options, _ *Options) { so.Store = st })

	st.Fail(true, storetest.PutRoom)
	eq(t, call(t, s, "roomCreate", "a"), 1, "internal error", "", si)
	eq(t, call(t, s, "roomInfo", "a", "x"), 1, "internal error", []any{}, si)
	eq(t, call(t, s, "changeRoomAdminpin", "a", "x", "y"), 1, "internal error", si)
	eq(t, call(t, s, "mute", "a", "x", "tag"), 1, "internal error", si)
	eq(t, call(t, s, "dialout", "a", "x", "bob", "me", "example.org", "", ""), 1, "internal error", "", si)
	eq(t, call(t, s, "addParticipant", "a", "p", "sip:p@x"), 500, "internal error", si)
	eq(t, call(t, s, "listRooms", "master"), 200, []any{}, si)
	st.Fail(false, storetest.PutRoom)

	r := call(t, s, "roomCreate", "a")
	pin, _ := r[2].(string)
	if r[0] != 0 || len(pin) != 6 {
		t.Fatalf("roomCreate with the store back: %#v", r)
	}
	eq(t, call(t, s, "addParticipant", "a", "p1", "sip:p1@x"), 200, "OK", si)

	st.Fail(true, storetest.PutRoom)
	eq(t, call(t, s, "changeRoomAdminpin", "a", pin, "new"), 1, "internal error", si)
	eq(t, call(t, s, "roomCreate", "a"), 1, "room already opened", "", si) // no write needed
	st.Fail(false, storetest.PutRoom)

	st.Fail(true, storetest.AddInvite)
	eq(t, call(t, s, "addParticipant", "a", "p2", "sip:p2@x"), 500, "internal error", si)
	eq(t, call(t, s, "addParticipant", "b", "p2", "sip:p2@x"), 500, "internal error", si)
	st.Fail(false, storetest.AddInvite)

	st.Fail(true, storetest.DeleteRoom)
	eq(t, call(t, s, "roomDelete", "a", pin), 1, "internal error", si)
	st.Fail(false, storetest.DeleteRoom)

	check := func(s *Service, when string) {
		t.Helper()
		eq(t, call(t, s, "listRooms", "master"), 200, []any{"a"}, si)
		eq(t, call(t, s, "getRoomPassword", "master", "a"), 0, pin, si)
		eq(t, call(t, s, "roomInfo", "a", pin), 0, "OK", []any{[]any{"", "sip:p1@x", 0, "", 0, "p1"}}, si)
		eq(t, call(t, s, "findParticipant", "p2"), []any{}, si)
		if t.Failed() {
			t.Fatalf("%s", when)
		}
	}
	check(s, "after the refused writes")
	// A restart on the same store finds the same.
	check(newService(t, func(so *sipapp.Options, _ *Options) { so.Store = mem }), "after a restart")

	// And the refused calls pass once the store does.
	eq(t, call(t, s, "roomDelete", "a", pin), 0, "OK", si)
	eq(t, call(t, s, "listRooms", "master"), 200, []any{}, si)
}
