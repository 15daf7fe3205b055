package meetings

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"webconf/rpc/node"
	"webconf/sipapp/store"
	"webconf/sipapp/store/storetest"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// TestCreateMeetingRoomRefused: a POST of a meeting whose room the store
// refuses answers 503 and changes nothing (the meeting list, the rooms,
// what the store holds); so does one whose room is stored but the meeting
// itself refused (its room goes again). Once the store works a new POST
// succeeds (issue 11, point 1: one policy for rooms and meetings).
func TestCreateMeetingRoomRefused(t *testing.T) {
	t.Parallel()
	var fault *storetest.Faulty
	h := startOpts(t, testConfig(t), node.Options{WrapStore: func(st store.Store) store.Store {
		fault = storetest.NewFaulty(st)
		return fault
	}})
	_, tok := h.user(t, "owner", "meetings")
	first := h.meeting(t, tok, nil)

	type state struct {
		listed, rooms, storedRooms, storedMeetings []string
	}
	snapshot := func() state {
		var s state
		for _, m := range restItems(t, h.must(t, 200, "GET", "/api/v1/users/me/meetings", bearer(tok), nil)) {
			s.listed = append(s.listed, restStr(t, m, "uuid")+" "+restStr(t, m, "exten"))
		}
		s.rooms = h.node.SIP.Registry().Rooms()
		slices.Sort(s.rooms)
		snap, err := fault.Load(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range snap.Rooms {
			s.storedRooms = append(s.storedRooms, r.Name)
		}
		for _, d := range snap.Docs {
			if d.Kind == "meeting" {
				s.storedMeetings = append(s.storedMeetings, d.ID)
			}
		}
		return s
	}
	before := snapshot()
	if len(before.listed) != 1 || !slices.Contains(before.rooms, restStr(t, first, "exten")) ||
		!slices.Equal(before.storedMeetings, []string{restStr(t, first, "uuid")}) {
		t.Fatalf("before the refusals: %+v", before)
	}

	for _, op := range []storetest.Op{storetest.PutRoom, storetest.WriteDocs} {
		fault.Fail(true, op)
		r := h.do(t, "POST", "/api/v1/users/me/meetings", bearer(tok), map[string]any{"name": "refused"})
		fault.Fail(false, op)
		restErr(t, r, 503, "store-unavailable")
		if after := snapshot(); !slices.Equal(after.listed, before.listed) || !slices.Equal(after.rooms, before.rooms) ||
			!slices.Equal(after.storedRooms, before.storedRooms) || !slices.Equal(after.storedMeetings, before.storedMeetings) {
			t.Fatalf("a POST refused by the store (op %d) changed the state:\n got %+v\nwant %+v", op, after, before)
		}
	}

	second := h.meeting(t, tok, map[string]any{"name": "after"})
	after := snapshot()
	if len(after.listed) != 2 || !slices.Contains(after.rooms, restStr(t, second, "exten")) ||
		!slices.Contains(after.storedRooms, restStr(t, second, "exten")) ||
		!slices.Contains(after.storedMeetings, restStr(t, second, "uuid")) {
		t.Fatalf("after the store came back: %+v", after)
	}
}

// TestPublicRoomRefusedByStore: the first caller to c.<identifier> while
// the store refuses the room makes nothing (no public room in the Book,
// none stored, no room) and is hung up with a BYE carrying the 503; once
// the store works the next first caller makes it.
func TestPublicRoomRefusedByStore(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Meetings.PublicRooms = true
	var fault *storetest.Faulty
	h := startOpts(t, cfg, node.Options{WrapStore: func(st store.Store) store.Store {
		fault = storetest.NewFaulty(st)
		return fault
	}})
	book := h.node.SIP.Meetings()
	fault.Fail(true, storetest.PutRoom)
	p := h.dial(t, phone.Config{User: "c.refused", FromUser: "a"})
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first caller of a public room the store refuses was not hung up")
	}
	if reason := p.ByeReason(); !strings.Contains(reason, "cause=503") {
		t.Fatalf("BYE Reason %q, want SIP cause=503", reason)
	}
	if _, ok := book.PublicRoomNumber("refused"); ok || book.Counts().PublicRooms != 0 {
		t.Fatal("a public room whose room the store refused was made")
	}
	snap, err := fault.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Rooms) != 0 || len(snap.Docs) != 0 || len(h.node.SIP.Registry().Rooms()) != 0 {
		t.Fatalf("a refused public room left rooms %v / %+v or documents %+v", h.node.SIP.Registry().Rooms(), snap.Rooms, snap.Docs)
	}

	fault.Fail(false, storetest.PutRoom)
	q := h.dial(t, phone.Config{User: "c.refused", FromUser: "b"})
	q.SetTone(400)
	testutil.WaitFor(t, 10*time.Second, "the public room to be made", func() bool {
		room, ok := book.PublicRoomNumber("refused")
		return ok && h.node.SIP.Registry().Exists(room)
	})
}
