package meetings

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/coder/websocket"

	"webconf/rpc/events"
	"webconf/test/testutil"
)

// stream is a client of the node's event stream (testutil.EventStream,
// shared with test/control).
type stream struct{ *testutil.EventStream }

// openStream connects with the query and the header; it fails the test
// unless the upgrade succeeds.
func (h *harness) openStream(t *testing.T, query string, hdr http.Header) *stream {
	t.Helper()
	return &stream{testutil.OpenEvents(t, h.node.HTTPAddr(), query, hdr)}
}

func (h *harness) dialStream(t *testing.T, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	return testutil.DialEvents(t, h.node.HTTPAddr(), query, hdr)
}

// tokenStream opens the stream of the user whose token it is.
func (h *harness) tokenStream(t *testing.T, tok string) *stream {
	t.Helper()
	return h.openStream(t, "token="+url.QueryEscape(tok), nil)
}

// expect reads the next events, which must be these, in this order.
func (s *stream) expect(t *testing.T, who string, want ...testutil.Event) []testutil.Event {
	t.Helper()
	return s.Expect(t, who, want...)
}

// next is the next event, talk events skipped unless Talk is set.
func (s *stream) next(t *testing.T) testutil.Event {
	t.Helper()
	return s.Next(t)
}

// ev is an expected event: its name and payload fields.
func ev(name string, kv ...any) testutil.Event { return testutil.Ev(name, kv...) }

func basicHeader(user, pass string) http.Header { return testutil.BasicHeader(user, pass) }

// partEv is the expected room_participant_* event of a live caller of a
// room: the SEMS call tag as call_id, the registry's number and
// participant_id, and meetingUUID (nil for no meeting).
func (h *harness) partEv(t *testing.T, name, room, tag string, meetingUUID any) testutil.Event {
	t.Helper()
	info, _ := h.node.SIP.Registry().Room(room)
	for _, p := range info.Participants {
		if p.CallTag == tag {
			return ev(name, "room", room, "call_id", tag, "number", p.Number, "participant_id", p.ID, "meeting_uuid", meetingUUID)
		}
	}
	t.Fatalf("no call %s in room %s: %+v", tag, room, info.Participants)
	return testutil.Event{}
}

// sawNothing proves that a user's stream got no event so far: the user
// makes a meeting of their own and locks it, whose room_created and
// room_locked must be the next events (not one of somebody else's).
func (h *harness) sawNothing(t *testing.T, s *stream, tok, who string) {
	t.Helper()
	m := h.meeting(t, tok, nil)
	h.must(t, 204, "PUT", "/api/v1/users/me/meetings/"+m["uuid"].(string)+"/lock", bearer(tok), nil)
	s.expect(t, who, ev(events.RoomCreated, "room", m["exten"]), ev(events.RoomLocked, "room", m["exten"]))
}
