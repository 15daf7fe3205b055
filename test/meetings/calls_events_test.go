package meetings

import (
	"testing"
	"time"

	"webconf/conf"
	"webconf/rpc/events"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// callEv is an expected call event of a leg: its call_id, status,
// on_hold, muted, talking_to (leg -> user UUID or nil) and user_uuid
// (nil: not a user's), and kv more fields.
func callEv(name, id, status string, hold, muted bool, talkingTo map[string]any, user any, kv ...any) testutil.Event {
	return ev(name, append([]any{"call_id", id, "status", status, "on_hold", hold, "muted", muted,
		"talking_to", talkingTo, "user_uuid", user, "conference_id", nil}, kv...)...)
}

// TestCallsTwoPartyEvents: the user's stream sees the whole two-party
// story of POST /users/me/calls, on the user's own leg (wazo-calld's
// calls of a user), in order and with the calls API's payloads: created,
// answered, talking to the far party's leg once that is placed, held
// and taken off hold, muted and unmuted, and ended by DELETE with its
// reason. The operator sees that and the far party's leg (created
// talking to the user's, ringing, answered, ended for its peer) in the
// same order; another user sees none of it.
func TestCallsTwoPartyEvents(t *testing.T) {
	line := callee(t, phone.CalleeConfig{})
	alice := callee(t, phone.CalleeConfig{Ring: 500 * time.Millisecond})
	h := start(t, func(c *conf.Config) { c.Calls = conf.Calls{Domain: alice.Addr()} })
	uid, tok := h.user(t, "carol", "sip", "meetings")
	_, otherTok := h.user(t, "dave", "sip", "meetings")
	h.must(t, 200, "PUT", "/api/v1/users/"+uid, operator, map[string]any{"line": "sip:carol@" + line.Addr()})
	user := h.tokenStream(t, tok)
	op := h.openStream(t, "", basicHeader("admin", master))
	other := h.tokenStream(t, otherTok)

	r := h.must(t, 201, "POST", "/api/v1/users/me/calls", bearer(tok), map[string]any{"destination": "1002"})
	u, _ := r.JSON["call_id"].(string)
	pu := accept(t, line, "the user's line")
	pu.SetTone(fUser)
	pa := accept(t, alice, "alice")
	pa.SetTone(fAlice)
	hearsButSelf(t, pu, fUser, fAlice, "the user")

	// The user's leg until the far party's is placed.
	none := map[string]any{}
	mine := []testutil.Event{
		callEv(events.CallCreated, u, "Down", false, false, none, uid, "peer_caller_id_number", "1002"),
		callEv(events.CallUpdated, u, "Up", false, false, none, uid),
		callEv(events.CallAnswered, u, "Up", false, false, none, uid),
	}
	op.expect(t, "the operator", mine...)
	// The far party's leg: the operator learns its call_id from its
	// call_created.
	first := op.next(t)
	a, _ := first.Data["call_id"].(string)
	if first.Name != events.CallCreated || a == "" || a == u {
		t.Fatalf("the operator's 4th event: %s %v, want the far party's call_created", first.Name, first.Data)
	}
	toUser, toAlice := map[string]any{u: uid}, map[string]any{a: nil}
	testutil.Check(t, "the operator", first, callEv(events.CallCreated, a, "Down", false, false, toUser, nil,
		"peer_caller_id_name", "carol", "peer_caller_id_number", "carol"))
	// The user's leg now talks to it.
	talks := callEv(events.CallUpdated, u, "Up", false, false, toAlice, uid)
	mine = append(mine, talks)
	op.expect(t, "the operator", talks,
		callEv(events.CallUpdated, a, "Ringing", false, false, toUser, nil),
		callEv(events.CallUpdated, a, "Up", false, false, toUser, nil),
		callEv(events.CallAnswered, a, "Up", false, false, toUser, nil))

	ctl := func(what string) {
		t.Helper()
		h.must(t, 204, "PUT", "/api/v1/users/me/calls/"+u+"/"+what, bearer(tok), nil)
	}
	ctl("hold")
	quiet(t, pa, fUser, "the user on hold")
	ctl("unhold")
	ctl("mute")
	quiet(t, pa, fUser, "the muted user")
	ctl("unmute")
	controls := []testutil.Event{
		callEv(events.CallUpdated, u, "Up", true, false, toAlice, uid),
		callEv(events.CallUpdated, u, "Up", false, false, toAlice, uid),
		callEv(events.CallUpdated, u, "Up", false, true, toAlice, uid),
		callEv(events.CallUpdated, u, "Up", false, false, toAlice, uid),
	}
	mine = append(mine, controls...)
	op.expect(t, "the operator", controls...)

	// DELETE: the user's leg ends (hangup); the far party's, left talking
	// to nobody, is hung up for it.
	h.must(t, 204, "DELETE", "/api/v1/users/me/calls/"+u, bearer(tok), nil)
	hungUp(t, pu, "the user")
	hungUp(t, pa, "alice")
	ended := callEv(events.CallEnded, u, "Up", false, false, toAlice, uid, "reason", "hangup")
	mine = append(mine, ended)
	op.expect(t, "the operator", ended,
		callEv(events.CallUpdated, a, "Up", false, false, none, nil),
		callEv(events.CallEnded, a, "Up", false, false, none, nil, "reason", "peer: hangup"))

	user.expect(t, "the user", mine...)
	h.sawNothing(t, user, tok, "the user, after the call") // nothing of the far party's leg
	h.sawNothing(t, other, otherTok, "another user")
}
