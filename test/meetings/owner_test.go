package meetings

import (
	"slices"
	"testing"
	"time"

	"webconf/rpc/events"
	"webconf/rpc/xmlrpc/client"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// dialResponses dials like h.dial and returns the phone with the INVITE's
// response codes (a 401 before the 200 when it was challenged).
func (h *harness) dialResponses(t *testing.T, cfg phone.Config) (*phone.Phone, []int) {
	t.Helper()
	cfg.Server = h.node.SIP.Addr()
	pd, err := phone.DialNoWait(testutil.Ctx(t, 10*time.Second), cfg)
	if err != nil {
		t.Fatalf("dial %q: %v", cfg.User, err)
	}
	p, err := pd.Wait(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		pd.Close()
		t.Fatalf("dial %q as %q: %v (responses %v)", cfg.User, cfg.FromUser, err, pd.Responses())
	}
	testutil.HangUpAtEnd(t, p)
	return p, pd.Responses()
}

// withUser is an expected event with the user_uuid it must carry (nil:
// JSON null, a guest).
func withUser(e testutil.Event, user any) testutil.Event {
	e.Data["user_uuid"] = user
	return e
}

// TestMeetingOwnerPhone: the owner's phone (From = the owner's username,
// who has a SIP password) dials the meeting's number, is challenged (401),
// answers with the owner's credentials and joins as the owner: user_uuid
// in the participants list and in the owner's events. Wrong credentials
// get 403 and are counted; callers whose From names no SIP account join
// as guests with no challenge (user_uuid null). Mute-all without a body
// mutes the guests and leaves the owner audible, over REST and over
// XML-RPC (roomMuteAll with the room's admin PIN).
func TestMeetingOwnerPhone(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ownerUID, tok := h.user(t, "olive", "meetings", "sip")
	h.must(t, 200, "PUT", "/api/v1/users/"+ownerUID, operator, map[string]any{"sip_password": "olive-phone-pw"})
	h.user(t, "nopw", "meetings", "sip") // a user without a SIP password
	m := h.meeting(t, tok, nil)
	exten, id := m["exten"].(string), m["uuid"].(string)
	base := "/api/v1/users/me/meetings/" + id
	owner := h.tokenStream(t, tok)

	// Wrong password: 403, charged like a wrong room number; no credentials:
	// the challenge is the final answer.
	before := h.node.SIP.Metrics().PinFailures
	bad := phone.Config{User: exten, FromUser: "olive", AuthUser: "olive", AuthPassword: "not-the-password"}
	if err := dialErr(t, h, bad); statusOf(err) != 403 {
		t.Fatalf("wrong SIP password: %v, want 403", err)
	}
	if got := h.node.SIP.Metrics().PinFailures; got != before+1 {
		t.Errorf("pin failures %d after a wrong SIP password, want %d", got, before+1)
	}
	if err := dialErr(t, h, phone.Config{User: exten, FromUser: "olive"}); statusOf(err) != 401 {
		t.Fatalf("the owner's username without credentials: %v, want 401", err)
	}

	// The owner's phone: 401, then in as the owner.
	o, codes := h.dialResponses(t, phone.Config{User: exten, FromUser: "olive", DisplayName: "Olive",
		AuthUser: "olive", AuthPassword: "olive-phone-pw"})
	if !slices.Contains(codes, 401) || codes[len(codes)-1] != 200 {
		t.Fatalf("the owner's phone got %v, want a 401 then 200", codes)
	}
	o.SetTone(400)
	oTag := o.RemoteTag()
	h.waitParticipants(t, tok, id, 1, false)
	owner.expect(t, "owner",
		withUser(h.partEv(t, events.RoomParticipantJoined, exten, oTag, id), ownerUID),
		ev(events.MeetingJoined, "id", oTag, "call_id", oTag, "caller_id_name", "Olive",
			"caller_id_number", "olive", "user_uuid", ownerUID, "meeting_uuid", id))

	// Guests: an unknown From, and a user's name with no SIP password:
	// no challenge, user_uuid null.
	var guests []*phone.Phone
	for i, from := range []string{"stranger", "nopw"} {
		g, codes := h.dialResponses(t, phone.Config{User: exten, FromUser: from})
		if slices.Contains(codes, 401) {
			t.Fatalf("guest %q was challenged: %v", from, codes)
		}
		g.SetTone(float64(600 + 200*i))
		guests = append(guests, g)
		h.waitParticipants(t, tok, id, 2+i, false)
		owner.expect(t, "owner",
			withUser(h.partEv(t, events.RoomParticipantJoined, exten, g.RemoteTag(), id), nil),
			ev(events.MeetingJoined, "call_id", g.RemoteTag(), "caller_id_number", from, "user_uuid", nil, "meeting_uuid", id))
	}
	g1, g2 := guests[0], guests[1]
	parts := h.participants(t, tok, id)
	if u, ok := participantByID(t, parts, oTag)["user_uuid"]; !ok || u != ownerUID {
		t.Errorf("the owner's phone in the list: user_uuid %v (present %v), want %s", u, ok, ownerUID)
	}
	for _, g := range guests {
		if u, ok := participantByID(t, parts, g.RemoteTag())["user_uuid"]; !ok || u != nil {
			t.Errorf("guest %s in the list: user_uuid %v (present %v), want null", g.RemoteTag(), u, ok)
		}
	}
	hear(t, o, 600, "the first guest")
	hear(t, g1, 400, "the owner")

	// mutedEvs: the muted (or unmuted) events of the guests, in the room's
	// order; the owner's call has none.
	mutedEvs := func(name string) []testutil.Event {
		return []testutil.Event{
			withUser(h.partEv(t, name, exten, g1.RemoteTag(), id), nil),
			withUser(h.partEv(t, name, exten, g2.RemoteTag(), id), nil),
		}
	}
	// spared: the owner hears neither guest, and the guests hear the
	// owner's new tone f (fresh audio: what a guest heard before the
	// mute cannot pass for it).
	spared := func(how string, f float64) {
		t.Helper()
		o.SetTone(f)
		quiet(t, o, 600, "the first guest after "+how)
		quiet(t, o, 800, "the second guest after "+how)
		hear(t, g1, f, "the owner, spared by "+how)
		hear(t, g2, f, "the owner, spared by "+how)
		var parts []map[string]any
		testutil.WaitFor(t, 5*time.Second, "the owner talking and unmuted, the guests muted", func() bool {
			parts = h.participants(t, tok, id)
			po := participantByID(t, parts, oTag)
			return po["muted"] == false && po["talking"] == true &&
				participantByID(t, parts, g1.RemoteTag())["muted"] == true &&
				participantByID(t, parts, g2.RemoteTag())["muted"] == true
		})
	}

	// REST, no body: the owner's phone is spared.
	h.must(t, 204, "PUT", base+"/participants/mute", bearer(tok), nil)
	owner.expect(t, "owner", mutedEvs(events.RoomParticipantMuted)...)
	spared("REST mute-all", 1000)
	h.must(t, 204, "PUT", base+"/participants/unmute", bearer(tok), nil)
	owner.expect(t, "owner", mutedEvs(events.RoomParticipantUnmuted)...)
	hear(t, o, 600, "the first guest after unmute-all")

	// XML-RPC roomMuteAll on the meeting's room, no call tag: the same.
	info, _ := h.node.SIP.Registry().Room(exten)
	cli, err := client.New("http://" + h.node.RPCAddr() + "/RPC2")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var res []any
	if err := cli.Call("roomMuteAll", []any{exten, info.AdminPin}, &res); err != nil || len(res) < 2 || res[1] != "OK" {
		t.Fatalf("roomMuteAll: %v %v", res, err)
	}
	owner.expect(t, "owner", mutedEvs(events.RoomParticipantMuted)...)
	spared("XML-RPC roomMuteAll", 1200)
	// The owner's next events are of their new meeting: no muted event of
	// the owner's phone came.
	h.sawNothing(t, owner, tok, "owner")
}
