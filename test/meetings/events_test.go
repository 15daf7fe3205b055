package meetings

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/emiago/sipgo/sip"

	"webconf/rpc/events"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// evMsg is one message of the event stream.
type evMsg struct {
	Name   string         `json:"name"`
	Origin string         `json:"origin_uuid"`
	Seq    uint64         `json:"seq"`
	Data   map[string]any `json:"data"`
}

// stream is a WebSocket client of GET /api/v1/events.
type stream struct {
	c    *websocket.Conn
	msgs chan evMsg
	err  chan error // why reading stopped
	// talk: keep the talk events (else next skips them: their timing
	// depends on the audio)
	talk bool
}

// openStream connects with the query and the header; it fails the test
// unless the upgrade succeeds.
func (h *harness) openStream(t *testing.T, query string, hdr http.Header) *stream {
	t.Helper()
	c, resp, err := h.dialStream(t, query, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("events?%s: %v (status %d)", query, err, status)
	}
	s := &stream{c: c, msgs: make(chan evMsg, 1024), err: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				s.err <- err
				close(s.msgs)
				return
			}
			var m evMsg
			if err := json.Unmarshal(b, &m); err != nil {
				s.err <- fmt.Errorf("message %s: %w", b, err)
				close(s.msgs)
				return
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return s
}

func (h *harness) dialStream(t *testing.T, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws://" + h.node.HTTPAddr() + "/api/v1/events"
	if query != "" {
		u += "?" + query
	}
	return websocket.Dial(testutil.Ctx(t, 10*time.Second), u, &websocket.DialOptions{HTTPHeader: hdr})
}

// next is the next message, skipping talk events (their timing depends
// on the audio).
func (s *stream) next(t *testing.T) evMsg {
	t.Helper()
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("stream ended: %v", <-s.err)
			}
			if !s.talk && strings.HasPrefix(m.Name, "room_participant_talk_") {
				continue
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10 s")
		}
	}
}

// expect reads the next messages, which must have these names and
// payload fields (a nil value: JSON null), in this order.
func (s *stream) expect(t *testing.T, who string, want ...evMsg) []evMsg {
	t.Helper()
	var got []evMsg
	for i, w := range want {
		m := s.next(t)
		got = append(got, m)
		if m.Name != w.Name {
			t.Fatalf("%s: event %d is %s %v, want %s %v", who, i, m.Name, m.Data, w.Name, w.Data)
		}
		for k, v := range w.Data {
			if gv, ok := m.Data[k]; !ok || fmt.Sprint(gv) != fmt.Sprint(v) {
				t.Errorf("%s: %s: data[%q] = %v, want %v (data %v)", who, m.Name, k, gv, v, m.Data)
			}
		}
		if i > 0 && m.Seq <= got[i-1].Seq {
			t.Errorf("%s: seq %d after %d", who, m.Seq, got[i-1].Seq)
		}
	}
	return got
}

func ev(name string, kv ...any) evMsg {
	d := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return evMsg{Name: name, Data: d}
}

func basicHeader(user, pass string) http.Header {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return http.Header{"Authorization": r.Header["Authorization"]}
}

// A phone in an XML-RPC room and phones in two users' meetings, seen by
// the operator, the meeting owner and another user; resuming with since.
func TestEventStream(t *testing.T) {
	h := start(t, nil)
	_, aliceTok := h.user(t, "alice", "meetings")
	_, bobTok := h.user(t, "bob", "meetings")
	ma := h.meeting(t, aliceTok, nil)
	mb := h.meeting(t, bobTok, nil)
	exA, idA := ma["exten"].(string), ma["uuid"].(string)
	exB := mb["exten"].(string)

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

	names := "names=" + strings.Join([]string{events.RoomCreated, events.RoomParticipantJoined, events.RoomParticipantLeft,
		events.RoomParticipantMuted, events.MeetingJoined, events.MeetingLeft}, ",")
	op := h.openStream(t, names, basicHeader("admin", master))
	opTalk := h.openStream(t, "names=room_participant_talk_started&rooms=4711", basicHeader("admin", master))
	opTalk.talk = true
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
