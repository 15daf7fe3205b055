package meetings

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/rpc/events"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// A phone in an XML-RPC room and phones in two users' meetings, seen by
// the operator, the meeting owner and another user; resuming with since.
func TestEventStream(t *testing.T) {
	h := start(t, nil)
	names := "names=" + strings.Join([]string{events.RoomCreated, events.RoomParticipantJoined, events.RoomParticipantLeft,
		events.RoomParticipantMuted, events.MeetingJoined, events.MeetingLeft}, ",")
	// The operator's stream opens before the meetings are made: room events
	// are published by the adapter's goroutine, so a room_created of a
	// meeting made just before a stream opens may reach it or not.
	op := h.openStream(t, names, basicHeader("admin", master))
	_, aliceTok := h.user(t, "alice", "meetings")
	_, bobTok := h.user(t, "bob", "meetings")
	ma := h.meeting(t, aliceTok, nil)
	mb := h.meeting(t, bobTok, nil)
	exA, idA := ma["exten"].(string), ma["uuid"].(string)
	exB := mb["exten"].(string)
	op.expect(t, "operator", ev(events.RoomCreated, "room", exA), ev(events.RoomCreated, "room", exB))

	// No credentials, or wrong ones: 401 before any upgrade.
	for _, c := range []struct {
		query string
		hdr   http.Header
	}{
		{"", nil},
		{"token=nope", nil},
		{"", http.Header{"Authorization": {"Bearer nope"}}},
		{"", basicHeader("admin", "wrong")},
	} {
		_, resp, err := h.dialStream(t, c.query, c.hdr)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("events?%s %v: err %v, resp %v; want 401", c.query, c.hdr, err, resp)
		}
	}

	opTalk := h.openStream(t, "names=room_participant_talk_started&rooms=4711", basicHeader("admin", master))
	opTalk.Talk = true
	alice := h.openStream(t, "token="+url.QueryEscape(aliceTok), nil)
	bob := h.openStream(t, "", http.Header{"Authorization": {"Bearer " + bobTok}})

	// An XML-RPC room (made by its first caller): the operator only.
	x := h.dial(t, phone.Config{User: "conference", FromUser: "xavier", DisplayName: "Xavier",
		Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=4711")}})
	x.SetTone(500)
	xTag := x.RemoteTag()
	got := op.expect(t, "operator",
		ev(events.RoomCreated, "room", "4711"),
		ev(events.RoomParticipantJoined, "room", "4711", "call_id", xTag, "meeting_uuid", nil))
	if n := got[1].Data["number"].(string); !strings.HasPrefix(n, "Xavier <sip:xavier@127.0.0.1") {
		t.Errorf("number %q", n)
	}
	if got[0].Origin != h.node.NodeUUID() || len(got[0].Origin) != 36 {
		t.Errorf("origin_uuid %q, want the node's %q", got[0].Origin, h.node.NodeUUID())
	}
	opTalk.expect(t, "operator (talk)", ev(events.RoomParticipantTalkStarted, "room", "4711", "call_id", xTag))
	if err := h.node.SIP.Registry().Mute("4711", xTag); err != nil {
		t.Fatal(err)
	}
	op.expect(t, "operator", ev(events.RoomParticipantMuted, "room", "4711", "call_id", xTag))
	if err := x.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	op.expect(t, "operator", ev(events.RoomParticipantLeft, "room", "4711", "call_id", xTag))

	// Alice's meeting: the operator and alice see the room and the
	// meeting events, with Wazo's payload.
	a := h.dial(t, phone.Config{User: exA, FromUser: "carol", DisplayName: "Carol Q"})
	aTag := a.RemoteTag()
	joined := ev(events.MeetingJoined, "id", aTag, "call_id", aTag, "caller_id_name", "Carol Q",
		"caller_id_number", "carol", "user_uuid", nil, "meeting_uuid", idA)
	left := joined
	left.Name = events.MeetingLeft
	roomJoined := ev(events.RoomParticipantJoined, "room", exA, "call_id", aTag, "meeting_uuid", idA)
	roomLeft := ev(events.RoomParticipantLeft, "room", exA, "call_id", aTag, "meeting_uuid", idA)
	op.expect(t, "operator", roomJoined, joined)
	aliceSaw := alice.expect(t, "alice", roomJoined, joined)
	if err := a.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	op.expect(t, "operator", roomLeft, left)
	alice.expect(t, "alice", roomLeft, left)

	// Bob's meeting: bob sees it, alice does not (her next event is the
	// next caller of her own meeting).
	b := h.dial(t, phone.Config{User: exB, FromUser: "dan"})
	bTag := b.RemoteTag()
	bob.expect(t, "bob", ev(events.RoomParticipantJoined, "room", exB, "call_id", bTag),
		ev(events.MeetingJoined, "call_id", bTag, "caller_id_number", "dan", "meeting_uuid", mb["uuid"]))
	op.expect(t, "operator", ev(events.RoomParticipantJoined, "room", exB), ev(events.MeetingJoined, "call_id", bTag))
	a2 := h.dial(t, phone.Config{User: exA, FromUser: "erin"})
	alice.expect(t, "alice", ev(events.RoomParticipantJoined, "room", exA, "call_id", a2.RemoteTag()))

	// Alice comes back with since = the seq before her first meeting
	// event: the same events again, then the live ones.
	since := aliceSaw[0].Seq - 1
	again := h.openStream(t, fmt.Sprintf("token=%s&since=%d", url.QueryEscape(aliceTok), since), nil)
	replayed := again.expect(t, "alice again", roomJoined, joined, roomLeft, left,
		ev(events.RoomParticipantJoined, "room", exA, "call_id", a2.RemoteTag()), ev(events.MeetingJoined, "call_id", a2.RemoteTag()))
	if replayed[0].Seq != aliceSaw[0].Seq {
		t.Errorf("replay starts at %d, want %d", replayed[0].Seq, aliceSaw[0].Seq)
	}
	a2.Hangup(testutil.Ctx(t, 5*time.Second))
	again.expect(t, "alice again", ev(events.RoomParticipantLeft, "call_id", a2.RemoteTag()), ev(events.MeetingLeft, "call_id", a2.RemoteTag()))

	// A since from before the ring (or from another run): 410 before the
	// upgrade, a JSON error.
	_, resp, err := h.dialStream(t, "since=1&token="+url.QueryEscape(aliceTok), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusGone {
		t.Errorf("since=1: err %v, resp %v; want 410", err, resp)
	}
	r := h.do(t, "GET", "/api/v1/events?since=1&token="+url.QueryEscape(aliceTok), nil, nil)
	if r.Status != http.StatusGone || r.ErrorCode() != "since-too-old" {
		t.Errorf("since=1 over plain HTTP: %d %s", r.Status, r.Body)
	}
	if r := h.do(t, "GET", "/api/v1/events?names=bogus", operator, nil); r.Status != http.StatusBadRequest || r.ErrorCode() != "invalid-query" {
		t.Errorf("names=bogus: %d %s", r.Status, r.Body)
	}
}
