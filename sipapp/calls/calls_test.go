package calls

import (
	"slices"
	"sync"
	"testing"

	"webconf/dsp"
	"webconf/sipapp/mixer"
)

// fakeGroup records its members.
type fakeGroup struct {
	mu      sync.Mutex
	members []*mixer.Member
	closed  bool
}

func (g *fakeGroup) Add(m *mixer.Member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members = append(g.members, m)
}

func (g *fakeGroup) Remove(m *mixer.Member) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members = slices.DeleteFunc(g.members, func(x *mixer.Member) bool { return x == m })
}

func (g *fakeGroup) Close() { g.mu.Lock(); g.closed = true; g.members = nil; g.mu.Unlock() }

type fakeMixer struct{ groups []*fakeGroup }

func (f *fakeMixer) NewGroup() Group { g := &fakeGroup{}; f.groups = append(f.groups, g); return g }

// groupOf finds the open group holding m.
func (f *fakeMixer) groupOf(m *mixer.Member) *fakeGroup {
	var found *fakeGroup
	for _, g := range f.groups {
		if !g.closed && slices.Contains(g.members, m) {
			if found != nil {
				panic("a member in two groups")
			}
			found = g
		}
	}
	return found
}

type nopIO struct{}

func (nopIO) ReadFrame(*dsp.Frame) bool { return false }
func (nopIO) WriteFrame([]byte, uint8)  {}
func (nopIO) WriteSilence()             {}

type fakeEP struct {
	m      *mixer.Member
	hungUp []string
}

func newEP() *fakeEP                    { return &fakeEP{m: mixer.NewMember(nopIO{}, nil)} }
func (e *fakeEP) Member() *mixer.Member { return e.m }
func (e *fakeEP) Hangup(reason string)  { e.hungUp = append(e.hungUp, reason) }

type rec struct {
	mu           sync.Mutex
	evs          []string
	confs, users []string // the ad hoc events' (adhoc_test.go)
}

func (r *rec) add(s string)                                { r.mu.Lock(); r.evs = append(r.evs, s); r.mu.Unlock() }
func (r *rec) CallCreated(c Call, u []string)              { r.add("created " + c.CallID) }
func (r *rec) CallUpdated(c Call, u []string)              { r.add("updated " + c.CallID) }
func (r *rec) CallAnswered(c Call, u []string)             { r.add("answered " + c.CallID) }
func (r *rec) CallEnded(c Call, reason string, u []string) { r.add("ended " + c.CallID + " " + reason) }

// twoParty makes the user's leg u (owned by user) and its peer p in one mix.
func twoParty(t *testing.T, b *Switchboard, user, u, p string) (*fakeEP, *fakeEP, *Mix) {
	t.Helper()
	m := b.NewMix(TwoParty, "", nil)
	eu, ep := newEP(), newEP()
	if err := b.Add(LegSpec{ID: u, User: user, PeerNumber: "alice", Endpoint: eu}, m); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(LegSpec{ID: p, PeerNumber: "user", Endpoint: ep}, m); err != nil {
		t.Fatal(err)
	}
	return eu, ep, m
}

func TestTwoPartyCall(t *testing.T) {
	fm := &fakeMixer{}
	ev := &rec{}
	b := New(fm, ev)
	eu, ep, m := twoParty(t, b, "U1", "u1", "p1")
	if fm.groupOf(eu.m) == nil || fm.groupOf(eu.m) != fm.groupOf(ep.m) {
		t.Fatal("the two legs are not in one group")
	}
	if err := b.Add(LegSpec{ID: "u1", Endpoint: newEP()}, m); err != ErrDuplicate {
		t.Errorf("a second leg u1: %v", err)
	}
	b.SetStatus("u1", StatusUp)
	b.SetStatus("p1", StatusRinging)
	b.SetStatus("p1", StatusUp)

	// The user sees their own leg only (wazo-calld's /users/me/calls); the
	// peer's is named in talking_to.
	list := b.List("U1")
	if len(list) != 1 || list[0].CallID != "u1" {
		t.Fatalf("List = %+v", list)
	}
	peer, _ := b.Get("p1")
	if to, ok := list[0].TalkingTo["p1"]; !ok || to != nil || len(list[0].TalkingTo) != 1 {
		t.Errorf("u1 talking_to = %v", list[0].TalkingTo)
	}
	if to := peer.TalkingTo["u1"]; to == nil || *to != "U1" {
		t.Errorf("p1 talking_to = %v", peer.TalkingTo)
	}
	if list[0].ConferenceID != nil || *list[0].UserUUID != "U1" || peer.UserUUID != nil {
		t.Errorf("ids: %+v %+v", list, peer)
	}
	if len(b.List("U2")) != 0 || b.Visible("U2", "p1") || b.Visible("U1", "p1") || !b.Visible("U1", "u1") {
		t.Error("visibility is wrong: a user acts on their own legs only")
	}

	// The peer hangs up: the user's leg is hung up with the reason.
	b.Ended("p1", "BYE")
	if len(eu.hungUp) != 1 || eu.hungUp[0] != "peer: BYE" || len(ep.hungUp) != 0 {
		t.Fatalf("hang-ups: user %v peer %v", eu.hungUp, ep.hungUp)
	}
	b.Ended("u1", "peer: BYE")
	if b.Len() != 0 || fm.groupOf(eu.m) != nil {
		t.Error("legs or audio left behind")
	}
	for _, g := range fm.groups {
		if !g.closed {
			t.Error("a group was left open")
		}
	}
	want := []string{"created u1", "created p1", "updated u1" /* talks to p1 */, "updated u1", "answered u1", "updated p1", "updated p1", "answered p1",
		"ended p1 BYE", "updated u1", "ended u1 peer: BYE"}
	if !slices.Equal(ev.evs, want) {
		t.Errorf("events\n got %q\nwant %q", ev.evs, want)
	}
	if err := b.Hangup("u1", "x"); err != ErrNoSuchCall {
		t.Errorf("Hangup of an ended leg: %v", err)
	}
}

func TestHoldAndMute(t *testing.T) {
	fm := &fakeMixer{}
	b := New(fm, nil)
	eu, ep, _ := twoParty(t, b, "U1", "u1", "p1")
	shared := fm.groupOf(eu.m)
	if err := b.Hold("p1", true); err != nil {
		t.Fatal(err)
	}
	if g := fm.groupOf(ep.m); g == nil || g == shared || len(g.members) != 1 {
		t.Fatal("a held leg is not alone")
	}
	if c, _ := b.Get("p1"); !c.OnHold {
		t.Error("on_hold not shown")
	}
	if err := b.Hold("p1", false); err != nil {
		t.Fatal(err)
	}
	if fm.groupOf(ep.m) != shared {
		t.Fatal("an unheld leg is not back in its mix")
	}
	if err := b.Mute("u1", true); err != nil || !eu.m.Muted() {
		t.Fatalf("mute: %v %v", err, eu.m.Muted())
	}
	if c, _ := b.Get("u1"); !c.Muted {
		t.Error("muted not shown")
	}
	if err := b.Mute("u1", false); err != nil || eu.m.Muted() {
		t.Fatal("unmute")
	}
	if b.Hold("nope", true) != ErrNoSuchCall || b.Mute("nope", true) != ErrNoSuchCall {
		t.Error("unknown leg")
	}
}

// TestAdhocShape is the ad hoc conference the next step builds: the
// user's call to bob (host) and to alice; alice's leg moves into the host
// mix, now a conference, and the user's leg to alice is hung up without
// its rule hanging alice up.
func TestAdhocShape(t *testing.T) {
	fm := &fakeMixer{}
	b := New(fm, nil)
	eub, epb, hostMix := twoParty(t, b, "U1", "ub", "bob")
	eua, epa, _ := twoParty(t, b, "U1", "ua", "alice")
	conf := b.NewMix(Conference, "U1", nil)
	conf.SetID("conf-1")
	for _, id := range []string{"ub", "bob", "alice"} {
		if err := b.Move(id, conf); err != nil {
			t.Fatal(err)
		}
	}
	if hostMix.group != nil || !hostMix.gone {
		t.Error("the emptied two-party mix was not closed")
	}
	if err := b.Hangup("ua", "merged"); err != nil {
		t.Fatal(err)
	}
	b.Ended("ua", "merged")
	if len(epa.hungUp) != 0 {
		t.Fatalf("alice was hung up: %v", epa.hungUp)
	}
	g := fm.groupOf(eub.m)
	if g == nil || fm.groupOf(epb.m) != g || fm.groupOf(epa.m) != g || fm.groupOf(eua.m) != nil {
		t.Fatal("the conference's audio is wrong")
	}
	c, _ := b.Get("ub")
	if c.ConferenceID == nil || *c.ConferenceID != "conf-1" || len(c.TalkingTo) != 2 {
		t.Errorf("ub = %+v", c)
	}
	if got := b.Legs(conf); !slices.Equal(got, []string{"ub", "bob", "alice"}) {
		t.Errorf("Legs = %v", got)
	}
	if err := b.Move("ub", b.NewMix(TwoParty, "", nil)); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(LegSpec{ID: "x", Endpoint: newEP()}, hostMix); err != ErrMixGone {
		t.Errorf("Add to a finished mix: %v", err)
	}
}
