package events

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"testing"
	"time"
)

const origin = "3f1c2a9e-5b4d-4e8f-9a7b-1c2d3e4f5a6b"

func newBus(t *testing.T, ring, queue int) *Bus {
	t.Helper()
	b := New(Options{Origin: origin, RingSize: ring, ClientQueue: queue,
		Now: func() time.Time { return time.UnixMicro(1000) }, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(b.Close)
	return b
}

// drain takes what is queued for s now (Publish has returned, so all of
// it is there).
func drain(s *Sub) []*Event {
	var out []*Event
	for {
		select {
		case ev := <-s.Events():
			out = append(out, ev)
		default:
			return out
		}
	}
}

func seqs(evs []*Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		out = append(out, ev.Seq)
	}
	return out
}

func TestMessageShape(t *testing.T) {
	b := newBus(t, 16, 16)
	s, _, err := b.Subscribe(Filter{Operator: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seq := b.Publish(RoomParticipantJoined, RoomParticipant{Room: "4711", CallID: "tag-1", Number: "<sip:a@h>"}, "4711", nil)
	if seq != 1001 {
		t.Errorf("first seq %d, want 1001 (the start time in microseconds, plus one)", seq)
	}
	evs := drain(s)
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	want := `{"name":"room_participant_joined","origin_uuid":"` + origin + `","seq":1001,"data":{"room":"4711","call_id":"tag-1","number":"\u003csip:a@h\u003e","participant_id":"","user_uuid":null,"meeting_uuid":null}}`
	if string(evs[0].Msg) != want {
		t.Errorf("message\n%s\nwant\n%s", evs[0].Msg, want)
	}
}

func TestFanOutAndVisibility(t *testing.T) {
	b := newBus(t, 64, 64)
	sub := func(f Filter) *Sub {
		s, _, err := b.Subscribe(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	op := sub(Filter{Operator: true})
	opRoom := sub(Filter{Operator: true, Rooms: map[string]bool{"a": true}})
	opName := sub(Filter{Operator: true, Names: map[string]bool{RoomDeleted: true}})
	alice := sub(Filter{User: "alice"})
	aliceNamed := sub(Filter{User: "alice", Names: map[string]bool{MeetingJoined: true}})
	bob := sub(Filter{User: "bob"})
	nobody := sub(Filter{}) // a user without a uuid sees nothing

	b.Publish(RoomParticipantJoined, Room{Room: "a"}, "a", nil)             // 1001: operators only
	b.Publish(MeetingJoined, Room{Room: "a"}, "a", []string{"alice"})       // 1002
	b.Publish(RoomDeleted, Room{Room: "b"}, "b", []string{"bob", "alice"})  // 1003
	b.Publish(MeetingLeft, Room{Room: "c"}, "c", []string{"carol", "dave"}) // 1004
	b.Publish(RoomDeleted, Room{Room: "a"}, "a", []string{"bob"})           // 1005
	for _, c := range []struct {
		name string
		s    *Sub
		want []uint64
	}{
		{"operator", op, []uint64{1001, 1002, 1003, 1004, 1005}},
		{"operator ?rooms=a", opRoom, []uint64{1001, 1002, 1005}},
		{"operator ?names=room_deleted", opName, []uint64{1003, 1005}},
		{"alice", alice, []uint64{1002, 1003}},
		{"alice ?names=meeting_participant_joined", aliceNamed, []uint64{1002}},
		{"bob", bob, []uint64{1003, 1005}},
		{"no uuid", nobody, nil},
	} {
		if got := seqs(drain(c.s)); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestResumeFromRing(t *testing.T) {
	b := newBus(t, 16, 64)
	for i := range 10 {
		b.Publish(RoomCreated, Room{Room: fmt.Sprint(i)}, fmt.Sprint(i), []string{"alice"})
	}
	since := uint64(1006)
	s, replay, err := b.Subscribe(Filter{User: "alice"}, &since)
	if err != nil {
		t.Fatal(err)
	}
	b.Publish(RoomCreated, Room{Room: "x"}, "x", []string{"alice"})
	if got := seqs(replay); fmt.Sprint(got) != "[1007 1008 1009 1010]" {
		t.Errorf("replay %v, want 1007-1010", got)
	}
	if got := seqs(drain(s)); fmt.Sprint(got) != "[1011]" {
		t.Errorf("live after the replay %v, want [1011]: no gap, no repeat", got)
	}
	// The replay honours visibility and filters too.
	since = 1000
	_, replay, err = b.Subscribe(Filter{User: "bob"}, &since)
	if err != nil || len(replay) != 0 {
		t.Errorf("bob's replay %v, %v: want nothing", seqs(replay), err)
	}
	// Up to date: nothing to replay.
	since = b.Last()
	if _, replay, err := b.Subscribe(Filter{Operator: true}, &since); err != nil || len(replay) != 0 {
		t.Errorf("since=last: replay %v, err %v", seqs(replay), err)
	}
}

func TestSinceTooOld(t *testing.T) {
	b := newBus(t, 16, 64)
	for range 40 {
		b.Publish(RoomCreated, Room{}, "", nil)
	}
	// Kept: 1025-1040.
	for _, since := range []uint64{1024, 1040} {
		if _, replay, err := b.Subscribe(Filter{Operator: true}, &since); err != nil || len(replay) != int(1040-since) {
			t.Errorf("since %d: %d replayed, err %v", since, len(replay), err)
		}
	}
	for _, since := range []uint64{0, 1000, 1023, 1041, 99999} {
		if _, _, err := b.Subscribe(Filter{Operator: true}, &since); !errors.Is(err, ErrTooOld) {
			t.Errorf("since %d: err %v, want ErrTooOld", since, err)
		}
	}
}

// A subscriber that reads nothing is cut off once its queue is full; the
// publisher never waits for it (nothing reads at all while it publishes),
// and the others get every event in order.
func TestSlowSubscriberCutOffPublisherGoesOn(t *testing.T) {
	const n = 20000
	b := New(Options{Origin: origin, RingSize: 64, ClientQueue: 8, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer b.Close()
	slow, _, _ := b.Subscribe(Filter{Operator: true}, nil)
	// A subscriber with a deeper queue: made by hand, as a client whose
	// queue can hold the whole burst.
	good := &Sub{f: Filter{Operator: true}, ch: make(chan *Event, n), done: make(chan struct{}), bus: b}
	b.mu.Lock()
	b.subs[good] = struct{}{}
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			b.Publish(RoomParticipantTalkStarted, RoomParticipant{Room: "r", CallID: "c"}, "r", nil)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the publisher is blocked")
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow subscriber was not cut off")
	}
	if !errors.Is(slow.Err(), ErrTooSlow) || b.CutOff() != 1 {
		t.Errorf("slow: err %v, cut off %d", slow.Err(), b.CutOff())
	}
	if got := len(drain(slow)); got != 8 {
		t.Errorf("slow got %d before it was cut off, want its queue (8)", got)
	}
	evs := drain(good)
	if len(evs) != n {
		t.Fatalf("good got %d, want %d", len(evs), n)
	}
	for i, ev := range evs {
		if ev.Seq != evs[0].Seq+uint64(i) {
			t.Fatalf("good: event %d has seq %d, want %d", i, ev.Seq, evs[0].Seq+uint64(i))
		}
	}
	if b.Subscribers() != 1 {
		t.Errorf("%d subscribers left, want 1", b.Subscribers())
	}
}

// Fan-out allocates nothing per subscriber: publishing to a hundred costs
// what publishing to one does.
func TestPublishAllocationsIndependentOfSubscribers(t *testing.T) {
	allocs := func(subs int) float64 {
		b := newBus(t, 64, 1<<14)
		for range subs {
			if _, _, err := b.Subscribe(Filter{Operator: true}, nil); err != nil {
				t.Fatal(err)
			}
		}
		p := RoomParticipant{Room: "r", CallID: "c"}
		return testing.AllocsPerRun(1000, func() { b.Publish(RoomParticipantMuted, p, "r", nil) })
	}
	one, hundred := allocs(1), allocs(100)
	// (The race detector's own allocations make the figures wobble by
	// one; a copy per subscriber would add a hundred.)
	if hundred > one+1 {
		t.Errorf("allocations per publish: %v with 1 subscriber, %v with 100", one, hundred)
	}
	t.Logf("allocations per publish: %v", one)
}

func TestCloseEndsSubscriptions(t *testing.T) {
	b := newBus(t, 16, 16)
	s, _, _ := b.Subscribe(Filter{Operator: true}, nil)
	b.Close()
	<-s.Done()
	if !errors.Is(s.Err(), ErrClosed) {
		t.Errorf("err %v, want ErrClosed", s.Err())
	}
	if _, _, err := b.Subscribe(Filter{Operator: true}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
	if seq := b.Publish(RoomCreated, Room{}, "", nil); seq != 0 {
		t.Errorf("publish after close: seq %d", seq)
	}
}

func TestParseQuery(t *testing.T) {
	var f Filter
	since, err := ParseQuery(url.Values{"rooms": {"a, b", "c"}, "names": {"room_deleted,meeting_participant_left"}, "since": {"42"}}, &f)
	if err != nil || since == nil || *since != 42 {
		t.Fatalf("since %v, err %v", since, err)
	}
	if fmt.Sprint(f.Rooms) != "map[a:true b:true c:true]" || fmt.Sprint(f.Names) != "map[meeting_participant_left:true room_deleted:true]" {
		t.Errorf("filter %+v", f)
	}
	for _, q := range []url.Values{
		{"names": {"room_joined"}},
		{"since": {"-1"}},
		{"since": {"x"}},
		{"since": {"1", "2"}},
	} {
		var f Filter
		var qe *QueryError
		if _, err := ParseQuery(q, &f); !errors.As(err, &qe) {
			t.Errorf("%v: err %v, want a QueryError", q, err)
		}
	}
}
