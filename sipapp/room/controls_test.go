package room

import (
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"

	"webconf/sipapp/store/storetest"
)

// eventLog records the events a registry sends, in order.
type eventLog struct {
	NopEvents
	mu  sync.Mutex
	got []string
}

func (e *eventLog) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, s)
}

func (e *eventLog) RoomLocked(room string)            { e.add("locked " + room) }
func (e *eventLog) RoomUnlocked(room string)          { e.add("unlocked " + room) }
func (e *eventLog) Muted(room, tag string)            { e.add("muted " + room + " " + tag) }
func (e *eventLog) Unmuted(room, tag string)          { e.add("unmuted " + room + " " + tag) }
func (e *eventLog) Joined(room string, p Participant) { e.add("joined " + room + " " + p.CallTag) }

// take returns the events so far and forgets them.
func (e *eventLog) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.got
	e.got = nil
	return out
}

func TestRoomLock(t *testing.T) {
	ev := &eventLog{}
	r := NewRegistry(defaults(), ev, newClock().now)
	a := &fakeCall{}
	if err := r.Join("1", "A", "a", "", ReasonDirect, false, a); err != nil {
		t.Fatal(err)
	}
	ev.take()
	if err := r.SetLocked("1", true); err != nil {
		t.Fatal(err)
	}
	if !r.Locked("1") {
		t.Fatal("room not locked after SetLocked(true)")
	}
	// Locking a locked room changes nothing and says nothing.
	if err := r.SetLocked("1", true); err != nil {
		t.Fatal(err)
	}
	if got := ev.take(); !reflect.DeepEqual(got, []string{"locked 1"}) {
		t.Fatalf("events %q, want one RoomLocked", got)
	}
	if err := r.Join("1", "B", "b", "", ReasonDirect, false, &fakeCall{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("join of a locked room: %v, want ErrLocked", err)
	}
	if err := r.JoinAdmitted("1", "L", "l", "", ReasonDirect, false, &fakeCall{}); err != nil {
		t.Fatalf("an admitted caller: %v", err)
	}
	if err := r.AddDialout("1", "D", "sip:d@x", "", &fakeCall{}); err != nil {
		t.Fatalf("a dial-out into a locked room: %v", err)
	}
	if a.kicked {
		t.Fatal("the caller already in was hung up by the lock")
	}
	info, _ := r.Room("1")
	var tags []string
	for _, p := range info.Participants {
		tags = append(tags, p.CallTag)
	}
	if !reflect.DeepEqual(tags, []string{"A", "L", "D"}) {
		t.Fatalf("records %q, want A, L, D (B refused)", tags)
	}
	ev.take()
	if err := r.SetLocked("1", false); err != nil {
		t.Fatal(err)
	}
	if got := ev.take(); !reflect.DeepEqual(got, []string{"unlocked 1"}) {
		t.Fatalf("events %q, want one RoomUnlocked", got)
	}
	if err := r.Join("1", "B", "b", "", ReasonDirect, false, &fakeCall{}); err != nil {
		t.Fatalf("join after unlock: %v", err)
	}
	if err := r.SetLocked("nope", true); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("lock of no room: %v, want ErrNoRoom", err)
	}
	if r.Locked("nope") {
		t.Fatal("a missing room reads locked")
	}
}

func TestRoomLockIsStored(t *testing.T) {
	sr := newStoredRegistry(t, defaults())
	if err := sr.r.Open("7", "123456"); err != nil {
		t.Fatal(err)
	}
	if err := sr.r.SetLocked("7", true); err != nil {
		t.Fatal(err)
	}
	if !sr.reloaded().Locked("7") {
		t.Fatal("the lock is lost across a restart")
	}
	sr.fault.Fail(true, storetest.PutRoom)
	if err := sr.r.SetLocked("7", false); !errors.Is(err, ErrStore) {
		t.Fatalf("refused write: %v, want ErrStore", err)
	}
	if !sr.r.Locked("7") || !sr.reloaded().Locked("7") {
		t.Fatal("a refused unlock changed the room")
	}
	sr.fault.Fail(false, storetest.PutRoom)
	if err := sr.r.SetLocked("7", false); err != nil {
		t.Fatal(err)
	}
	if sr.reloaded().Locked("7") {
		t.Fatal("the unlock is lost across a restart")
	}
}

func TestRoomMuteAll(t *testing.T) {
	ev := &eventLog{}
	r := NewRegistry(defaults(), ev, newClock().now)
	calls := map[string]*fakeCall{"A": {}, "B": {}, "C": {}, "D": {}}
	for _, tag := range []string{"A", "B", "C"} {
		if err := r.Join("1", tag, tag, "", ReasonDirect, false, calls[tag]); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.AddDialout("1", "D", "sip:d@x", "", calls["D"]); err != nil {
		t.Fatal(err)
	}
	// C is muted already: mute-all says nothing new about it.
	if err := r.Mute("1", "C"); err != nil {
		t.Fatal(err)
	}
	ev.take()
	if err := r.MuteAll("1", "Z"); !errors.Is(err, ErrNoCall) {
		t.Fatalf("mute-all with an unknown asker: %v, want ErrNoCall", err)
	}
	if got := ev.take(); len(got) != 0 || len(calls["B"].muted) != 0 {
		t.Fatalf("a refused mute-all changed something: events %q", got)
	}
	if err := r.MuteAll("1", "A"); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.take(), []string{"muted 1 B", "muted 1 D"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if len(calls["A"].muted) != 0 || !reflect.DeepEqual(calls["B"].muted, []bool{true}) || !reflect.DeepEqual(calls["D"].muted, []bool{true}) {
		t.Fatalf("calls muted: A %v B %v D %v", calls["A"].muted, calls["B"].muted, calls["D"].muted)
	}
	info, _ := r.Room("1")
	for _, p := range info.Participants {
		if p.Muted != (p.CallTag != "A") {
			t.Errorf("record %s muted=%v", p.CallTag, p.Muted)
		}
	}
	if err := r.UnmuteAll("1"); err != nil {
		t.Fatal(err)
	}
	if got, want := ev.take(), []string{"unmuted 1 B", "unmuted 1 C", "unmuted 1 D"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if err := r.MuteAll("nope"); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("mute-all of no room: %v", err)
	}
	// Without an asker, everyone is muted.
	if err := r.MuteAll("1"); err != nil {
		t.Fatal(err)
	}
	if got := ev.take(); len(got) != 4 {
		t.Fatalf("events %q, want four Muted", got)
	}
}

// TestRoomMuteAllSparesUsers: MuteAllBut spares the calls of the users
// named (a meeting's owners' phones, joined with JoinAs) as well as the
// tags named; the record carries its user, a guest's none.
func TestRoomMuteAllSparesUsers(t *testing.T) {
	ev := &eventLog{}
	r := NewRegistry(defaults(), ev, newClock().now)
	calls := map[string]*fakeCall{"O": {}, "P": {}, "G": {}, "H": {}}
	for tag, user := range map[string]string{"O": "owner-1", "P": "someone", "G": "", "H": ""} {
		if err := r.JoinAs(user, false, "1", tag, tag, "", ReasonDirect, false, calls[tag]); err != nil {
			t.Fatal(err)
		}
	}
	info, _ := r.Room("1")
	users := map[string]string{}
	for _, p := range info.Participants {
		users[p.CallTag] = p.User
	}
	if want := map[string]string{"O": "owner-1", "P": "someone", "G": "", "H": ""}; !reflect.DeepEqual(users, want) {
		t.Fatalf("records' users %v, want %v", users, want)
	}
	ev.take()
	if err := r.MuteAllBut("1", []string{"owner-1", "absent"}, "H"); err != nil {
		t.Fatal(err)
	}
	got := ev.take()
	slices.Sort(got)
	if want := []string{"muted 1 G", "muted 1 P"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if len(calls["O"].muted) != 0 || len(calls["H"].muted) != 0 {
		t.Fatalf("spared calls muted: O %v H %v", calls["O"].muted, calls["H"].muted)
	}
}
