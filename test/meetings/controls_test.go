package meetings

import (
	"strings"
	"testing"
	"time"

	"webconf/rpc/events"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// participantByID finds a participant of a list by its id.
func participantByID(t *testing.T, parts []map[string]any, id string) map[string]any {
	t.Helper()
	for _, p := range parts {
		if p["id"] == id {
			return p
		}
	}
	t.Fatalf("participant %s not in %v", id, parts)
	return nil
}

// ownedMeeting is a node with a meeting of the user "owner" and another
// user, "other", who owns nothing there: what the room controls' tests
// start from.
type ownedMeeting struct {
	*harness
	tok, otherTok string
	m             map[string]any
	exten, id     string
	base          string // the meeting's REST path
}

func newOwnedMeeting(t *testing.T) ownedMeeting {
	t.Helper()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings")
	_, otherTok := h.user(t, "other", "meetings")
	m := h.meeting(t, tok, nil)
	id := m["uuid"].(string)
	return ownedMeeting{h, tok, otherTok, m, m["exten"].(string), id, "/api/v1/users/me/meetings/" + id}
}

// TestMeetingLock locks a meeting's room over REST: a caller who dials its
// number or its guest account gets 403 before the answer, a keypad caller
// hears room_locked and is hung up, callers already in stay and a caller
// waiting in the lobby goes in when admitted; unlocking lets callers in.
func TestMeetingLock(t *testing.T) {
	t.Parallel()
	o := newOwnedMeeting(t)
	h, tok, otherTok, m, exten, id, base := o.harness, o.tok, o.otherTok, o.m, o.exten, o.id, o.base
	user, pass := guestCreds(t, m)
	owner := h.tokenStream(t, tok)
	other := h.tokenStream(t, otherTok)

	a := h.joinByExten(t, exten, 400)
	h.waitParticipants(t, tok, id, 1, false)
	owner.expect(t, "owner", h.partEv(t, events.RoomParticipantJoined, exten, a.RemoteTag(), id),
		ev(events.MeetingJoined, "call_id", a.RemoteTag(), "meeting_uuid", id))
	h.must(t, 204, "PUT", base+"/lock", bearer(tok), nil)
	h.must(t, 204, "PUT", base+"/lock", bearer(tok), nil) // again: no change, no error

	err := dialErr(t, h, phone.Config{User: exten})
	if statusOf(err) != 403 || !strings.Contains(strings.ToLower(err.Error()), "locked") {
		t.Errorf("direct by exten: got %v, want 403 saying it is locked", err)
	}
	if err := dialErr(t, h, phone.Config{User: "meeting-guest", AuthUser: user, AuthPassword: pass}); statusOf(err) != 403 {
		t.Errorf("meeting-guest: got %v, want 403", err)
	}
	k := h.dial(t, phone.Config{User: "conference"})
	hear(t, k, fEnterPin, "enter_pin")
	if err := k.SendDTMF(testutil.Ctx(t, 10*time.Second), exten+"#", phone.RFC4733); err != nil {
		t.Fatal(err)
	}
	hear(t, k, fLocked, "room_locked")
	hungUp(t, k, "keypad caller of a locked meeting")
	stillUp(t, a, "the caller already in")
	if n := len(h.participants(t, tok, id)); n != 1 {
		t.Fatalf("%d participants in the locked meeting, want 1", n)
	}

	h.must(t, 204, "PUT", base+"/unlock", bearer(tok), nil)
	b := h.joinByExten(t, exten, 600)
	h.waitParticipants(t, tok, id, 2, false)
	hear(t, a, 600, "b, after the unlock")
	hear(t, b, 400, "a")
	// One room_locked for the two locks; nothing of the refused callers;
	// the unlock, then b.
	owner.expect(t, "owner", ev(events.RoomLocked, "room", exten), ev(events.RoomUnlocked, "room", exten),
		h.partEv(t, events.RoomParticipantJoined, exten, b.RemoteTag(), id),
		ev(events.MeetingJoined, "call_id", b.RemoteTag(), "meeting_uuid", id))
	h.sawNothing(t, other, otherTok, "another user")
}

// TestMeetingLockAndLobby: a caller who waits in the lobby since before the
// lock goes in when the owner admits them; a newcomer is refused.
func TestMeetingLockAndLobby(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings")
	m := h.meeting(t, tok, map[string]any{"lobby": map[string]any{"state": 1}})
	exten, id := m["exten"].(string), m["uuid"].(string)

	w := h.joinByExten(t, exten, 400)
	hear(t, w, fLobby, "the lobby prompt")
	h.waitParticipants(t, tok, id, 1, true)
	h.must(t, 204, "PUT", "/api/v1/users/me/meetings/"+id+"/lock", bearer(tok), nil)
	if err := dialErr(t, h, phone.Config{User: exten}); statusOf(err) != 403 {
		t.Errorf("newcomer to a locked meeting with a lobby: got %v, want 403", err)
	}
	h.must(t, 204, "POST", "/api/v1/meetings/"+id+"/webinar/lobby/admit/"+w.RemoteTag(), bearer(tok), nil)
	h.waitParticipants(t, tok, id, 1, false)
	stillUp(t, w, "the admitted caller")
}

// TestMeetingMuteAll mutes every caller but the one the owner names, over
// REST, and checks it in the audio and the participants list (muted and
// talking), then unmutes them all.
func TestMeetingMuteAll(t *testing.T) {
	t.Parallel()
	o := newOwnedMeeting(t)
	h, tok, otherTok, exten, id, base := o.harness, o.tok, o.otherTok, o.exten, o.id, o.base
	owner := h.tokenStream(t, tok)
	other := h.tokenStream(t, otherTok)

	a := h.joinByExten(t, exten, 400) // the owner's phone
	b := h.joinByExten(t, exten, 600)
	c := h.joinByExten(t, exten, 800)
	h.waitParticipants(t, tok, id, 3, false)
	hear(t, a, 600, "b")
	hear(t, a, 800, "c")
	var joined []testutil.Event
	for _, p := range []*phone.Phone{a, b, c} {
		joined = append(joined, h.partEv(t, events.RoomParticipantJoined, exten, p.RemoteTag(), id),
			ev(events.MeetingJoined, "call_id", p.RemoteTag(), "meeting_uuid", id))
	}
	owner.expect(t, "owner", joined...)
	// The muted events of these calls, in the room's order.
	muted := func(name string, ps ...*phone.Phone) []testutil.Event {
		var out []testutil.Event
		for _, p := range ps {
			out = append(out, h.partEv(t, name, exten, p.RemoteTag(), id))
		}
		return out
	}

	h.must(t, 204, "PUT", base+"/participants/mute", bearer(tok), map[string]any{"except_participant_id": a.RemoteTag()})
	owner.expect(t, "owner", muted(events.RoomParticipantMuted, b, c)...)
	quiet(t, a, 600, "b after mute-all")
	quiet(t, a, 800, "c after mute-all")
	quiet(t, b, 800, "c after mute-all")
	hear(t, b, 400, "a, the one spared")
	hear(t, c, 400, "a, the one spared")
	var parts []map[string]any
	testutil.WaitFor(t, 5*time.Second, "a talking and b, c muted in the list", func() bool {
		parts = h.participants(t, tok, id)
		pa := participantByID(t, parts, a.RemoteTag())
		return pa["talking"] == true && pa["muted"] == false &&
			participantByID(t, parts, b.RemoteTag())["muted"] == true &&
			participantByID(t, parts, c.RemoteTag())["muted"] == true
	})

	h.must(t, 204, "PUT", base+"/participants/unmute", bearer(tok), nil)
	owner.expect(t, "owner", muted(events.RoomParticipantUnmuted, b, c)...)
	hear(t, a, 600, "b after unmute-all")
	hear(t, a, 800, "c after unmute-all")
	for _, p := range h.participants(t, tok, id) {
		if p["muted"] != false {
			t.Errorf("%v still muted after unmute-all", p)
		}
	}

	// Without a body everyone is muted, the owner's phone too.
	h.must(t, 204, "PUT", base+"/participants/mute", bearer(tok), nil)
	quiet(t, b, 400, "a after a mute-all without exception")
	owner.expect(t, "owner", muted(events.RoomParticipantMuted, a, b, c)...)
	h.sawNothing(t, other, otherTok, "another user")
}

func TestMeetingControlErrors(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings")
	_, other := h.user(t, "other", "meetings")
	m := h.meeting(t, tok, nil)
	exten, id := m["exten"].(string), m["uuid"].(string)
	base := "/api/v1/users/me/meetings/" + id
	a := h.joinByExten(t, exten, 400)
	h.waitParticipants(t, tok, id, 1, false)

	for _, path := range []string{"/lock", "/unlock", "/participants/mute", "/participants/unmute"} {
		h.restFail(t, 404, "not-found", "PUT", base+path, bearer(other), nil)
		h.restFail(t, 404, "not-found", "PUT", "/api/v1/users/me/meetings/"+restUUID()+path, bearer(tok), nil)
		h.restUnauthorized(t, "Bearer", "PUT", base+path, nil, nil)
	}
	h.restFail(t, 400, "invalid-json", "PUT", base+"/participants/mute", bearer(tok), "{not json", "malformed JSON")
	h.restFail(t, 400, "invalid-field", "PUT", base+"/participants/mute", bearer(tok), map[string]any{"except": "x"}, "except: unknown field")
	h.restFail(t, 400, "invalid-field", "PUT", base+"/participants/mute", bearer(tok), map[string]any{"except_participant_id": 5}, "except_participant_id")
	h.restFail(t, 404, "no-such-participant", "PUT", base+"/participants/mute", bearer(tok), map[string]any{"except_participant_id": "nobody"})
	// None of these changed anything: a is not muted, the room not locked.
	if p := h.participants(t, tok, id); p[0]["muted"] != false {
		t.Fatalf("a refused mute-all muted %v", p)
	}
	if h.node.SIP.Registry().Locked(exten) {
		t.Fatal("a refused request locked the room")
	}
	stillUp(t, a, "a")
}

// TestMeetingMuteOne: the owner mutes one caller (the console's button):
// the others stop hearing it, the list and the events show it; unmuting
// brings it back. Someone else's meeting, or a call that is not in the
// room, is 404 and changes nothing.
func TestMeetingMuteOne(t *testing.T) {
	t.Parallel()
	o := newOwnedMeeting(t)
	h, tok, otherTok, exten, id, base := o.harness, o.tok, o.otherTok, o.exten, o.id, o.base
	owner := h.tokenStream(t, tok)
	a := h.joinByExten(t, exten, 400)
	b := h.joinByExten(t, exten, 600)
	h.waitParticipants(t, tok, id, 2, false)
	hear(t, a, 600, "b")
	owner.expect(t, "owner", h.partEv(t, events.RoomParticipantJoined, exten, a.RemoteTag(), id),
		ev(events.MeetingJoined, "call_id", a.RemoteTag()),
		h.partEv(t, events.RoomParticipantJoined, exten, b.RemoteTag(), id),
		ev(events.MeetingJoined, "call_id", b.RemoteTag()))

	h.restFail(t, 404, "not-found", "PUT", base+"/participants/"+b.RemoteTag()+"/mute", bearer(otherTok), nil)
	h.restFail(t, 404, "no-such-participant", "PUT", base+"/participants/nobody/mute", bearer(tok), nil)
	hear(t, a, 600, "b after refused mutes")

	h.must(t, 204, "PUT", base+"/participants/"+b.RemoteTag()+"/mute", bearer(tok), nil)
	owner.expect(t, "owner", h.partEv(t, events.RoomParticipantMuted, exten, b.RemoteTag(), id))
	quiet(t, a, 600, "b muted")
	hear(t, b, 400, "a, not muted")
	if p := participantByID(t, h.participants(t, tok, id), b.RemoteTag()); p["muted"] != true {
		t.Errorf("b in the list after mute: %v", p)
	}
	h.must(t, 204, "PUT", base+"/participants/"+b.RemoteTag()+"/unmute", bearer(tok), nil)
	owner.expect(t, "owner", h.partEv(t, events.RoomParticipantUnmuted, exten, b.RemoteTag(), id))
	hear(t, a, 600, "b unmuted")
}
