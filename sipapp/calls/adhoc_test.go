package calls

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// The ad hoc events as rec records them: "adhoc_created", "joined <call_id>",
// "left <call_id>", "adhoc_deleted"; the conference ids and users go to
// confs and users.
func (r *rec) adhoc(s, conf string, users []string) {
	r.mu.Lock()
	r.confs = append(r.confs, conf)
	r.users = append(r.users, strings.Join(users, ","))
	r.mu.Unlock()
	r.add(s)
}
func (r *rec) AdhocCreated(a AdhocConference, u []string) {
	r.adhoc("adhoc_created", a.ConferenceID, u)
}
func (r *rec) AdhocDeleted(a AdhocConference, u []string) {
	r.adhoc("adhoc_deleted", a.ConferenceID, u)
}
func (r *rec) AdhocParticipantJoined(p AdhocParticipant, u []string) {
	r.adhoc("joined "+p.CallID, p.ConferenceID, u)
}
func (r *rec) AdhocParticipantLeft(p AdhocParticipant, u []string) {
	r.adhoc("left "+p.CallID, p.ConferenceID, u)
}

// take returns the events recorded since the last take.
func (r *rec) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.evs
	r.evs = nil
	return out
}

// adhocOnly keeps the ad hoc events and call_ended.
func adhocOnly(evs []string) []string {
	var out []string
	for _, e := range evs {
		if !strings.HasPrefix(e, "updated ") && !strings.HasPrefix(e, "created ") && !strings.HasPrefix(e, "answered ") {
			out = append(out, e)
		}
	}
	return out
}

// story is the user U1's three two-party calls: ub to bob, ua to alice,
// uc to carol; alice is on hold.
type story struct {
	fm                          *fakeMixer
	ev                          *rec
	b                           *Switchboard
	eub, ebob, eua, ealice, euc *fakeEP
	ecarol                      *fakeEP
}

func newStory(t *testing.T) *story {
	t.Helper()
	s := &story{fm: &fakeMixer{}, ev: &rec{}}
	s.b = New(s.fm, s.ev)
	s.eub, s.ebob, _ = twoParty(t, s.b, "U1", "ub", "bob")
	s.eua, s.ealice, _ = twoParty(t, s.b, "U1", "ua", "alice")
	s.euc, s.ecarol, _ = twoParty(t, s.b, "U1", "uc", "carol")
	if err := s.b.Hold("alice", true); err != nil {
		t.Fatal(err)
	}
	s.ev.take()
	return s
}

// end is the SIP side reporting the legs a test hung up.
func (s *story) end(ids ...string) {
	for _, id := range ids {
		s.b.Ended(id, "hungup")
	}
}

// TestAdhocStart: the host call and its peer and the participant move
// into one conference group; alice comes off hold; the user's leg to
// alice is hung up (not alice); GET calls shows conference_id and
// talking_to; the events come in order, for U1.
func TestAdhocStart(t *testing.T) {
	s := newStory(t)
	b := s.b
	id, err := b.StartAdhoc("U1", "ub", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 36 || strings.Count(id, "-") != 4 {
		t.Errorf("conference_id %q is not a UUID", id)
	}
	g := s.fm.groupOf(s.eub.m)
	if g == nil || s.fm.groupOf(s.ebob.m) != g || s.fm.groupOf(s.ealice.m) != g || len(g.members) != 3 {
		t.Fatal("ub, bob and alice are not in one group of three")
	}
	if !slices.Equal(s.eua.hungUp, []string{ReasonMerged}) {
		t.Errorf("the user's leg to alice: hung up %v", s.eua.hungUp)
	}
	for name, e := range map[string]*fakeEP{"ub": s.eub, "bob": s.ebob, "alice": s.ealice, "uc": s.euc, "carol": s.ecarol} {
		if len(e.hungUp) != 0 {
			t.Errorf("%s was hung up: %v", name, e.hungUp)
		}
	}
	if c, _ := b.Get("alice"); c.OnHold {
		t.Error("alice is still on hold in the conference")
	}
	for _, leg := range []string{"ub", "bob", "alice"} {
		c, _ := b.Get(leg)
		if c.ConferenceID == nil || *c.ConferenceID != id || len(c.TalkingTo) != 2 {
			t.Errorf("%s = %+v", leg, c)
		}
	}
	got := adhocOnly(s.ev.take())
	want := []string{"adhoc_created", "joined ub", "joined bob", "joined alice"}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	for i, c := range s.ev.confs {
		if c != id || s.ev.users[i] != "U1" {
			t.Errorf("event %d: conference %q users %q", i, c, s.ev.users[i])
		}
	}
	// The SIP side reports the merged leg's end: alice stays.
	s.end("ua")
	if len(s.ealice.hungUp) != 0 || b.Len() != 5 {
		t.Fatalf("alice hung up %v, %d legs", s.ealice.hungUp, b.Len())
	}
	list := b.List("U1") // the user's own legs: the host leg and the one to carol
	if len(list) != 2 || list[0].CallID != "ub" || list[1].CallID != "uc" {
		t.Fatalf("List: %+v", list)
	}

	// PUT: carol joins, the user's leg to her is hung up.
	if err := b.AddAdhocParticipant("U1", id, "carol"); err != nil {
		t.Fatal(err)
	}
	if g := s.fm.groupOf(s.ecarol.m); g != s.fm.groupOf(s.eub.m) || len(g.members) != 4 {
		t.Fatal("carol is not in the conference")
	}
	if !slices.Equal(s.euc.hungUp, []string{ReasonMerged}) {
		t.Errorf("the user's leg to carol: %v", s.euc.hungUp)
	}
	s.end("uc")
	if got := adhocOnly(s.ev.take()); !slices.Equal(got, []string{"ended ua hungup", "joined carol", "ended uc hungup"}) {
		t.Errorf("events %q", got)
	}
}

// TestAdhocErrors: every refusal, each changing nothing (no audio moved,
// no hang-up, no event).
func TestAdhocErrors(t *testing.T) {
	s := newStory(t)
	b := s.b
	// U2's call to dave; dave's peer is not U1's.
	eu2, _, _ := twoParty(t, b, "U2", "u2", "dave")
	s.ev.take()
	groups := func() []*fakeGroup {
		var gs []*fakeGroup
		for _, e := range []*fakeEP{s.eub, s.ebob, s.eua, s.ealice, s.euc, s.ecarol, eu2} {
			gs = append(gs, s.fm.groupOf(e.m))
		}
		return gs
	}
	before := groups()
	for _, c := range []struct {
		host  string
		parts []string
		err   error
	}{
		{"nope", nil, ErrHostCallNotFound},
		{"bob", nil, ErrHostCallNotFound}, // the peer's leg, not the user's
		{"u2", nil, ErrHostCallNotFound},  // another user's
		{"ub", []string{"nope"}, ErrParticipantCallNotFound},
		{"ub", []string{"dave"}, ErrParticipantCallNotFound},           // the other leg is U2's
		{"ub", []string{"ua"}, ErrParticipantCallNotFound},             // the user's own leg: its peer alice is no user
		{"ub", []string{"bob"}, ErrParticipantCallNotFound},            // the host's peer
		{"ub", []string{"ub"}, ErrParticipantCallNotFound},             // the host
		{"ub", []string{"alice", "alice"}, ErrParticipantCallNotFound}, // twice
		{"ub", []string{"alice", "nope"}, ErrParticipantCallNotFound},  // one good, one bad: nothing moves
	} {
		if _, err := b.StartAdhoc("U1", c.host, c.parts); !errors.Is(err, c.err) {
			t.Errorf("host %s participants %v: %v, want %v", c.host, c.parts, err, c.err)
		}
	}
	if _, err := b.StartAdhoc("", "ub", nil); !errors.Is(err, ErrHostCallNotFound) {
		t.Errorf("no user: %v", err)
	}
	if !slices.Equal(groups(), before) {
		t.Fatal("a refused request moved audio")
	}
	for _, e := range []*fakeEP{s.eub, s.ebob, s.eua, s.ealice, s.euc, s.ecarol, eu2} {
		if len(e.hungUp) != 0 {
			t.Fatalf("a refused request hung up a leg: %v", e.hungUp)
		}
	}
	if evs := s.ev.take(); len(evs) != 0 {
		t.Fatalf("a refused request made events: %q", evs)
	}
	if c, _ := b.Get("alice"); !c.OnHold {
		t.Error("a refused request took alice off hold")
	}

	id, err := b.StartAdhoc("U1", "ub", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	s.end("ua")
	s.ev.take()
	// The host already in a conference; a participant already in one.
	if _, err := b.StartAdhoc("U1", "ub", nil); !errors.Is(err, ErrHostAlreadyInConference) {
		t.Errorf("host in a conference: %v", err)
	}
	if err := b.AddAdhocParticipant("U1", id, "alice"); !errors.Is(err, ErrParticipantAlreadyInConference) {
		t.Errorf("participant in the conference: %v", err)
	}
	if _, err := b.StartAdhoc("U1", "uc", []string{"alice"}); !errors.Is(err, ErrParticipantAlreadyInConference) {
		t.Errorf("participant in another conference: %v", err)
	}
	for _, c := range []struct {
		user, conf, call string
		err              error
	}{
		{"U2", id, "carol", ErrNoSuchAdhoc}, // not U2's conference
		{"U1", "nope", "carol", ErrNoSuchAdhoc},
		{"U1", id, "nope", ErrParticipantCallNotFound},
		{"U1", id, "dave", ErrParticipantCallNotFound},
	} {
		if err := b.AddAdhocParticipant(c.user, c.conf, c.call); !errors.Is(err, c.err) {
			t.Errorf("PUT %s %s by %s: %v, want %v", c.conf, c.call, c.user, err, c.err)
		}
	}
	if err := b.RemoveAdhocParticipant("U2", id, "alice"); !errors.Is(err, ErrNoSuchAdhoc) {
		t.Errorf("DELETE participant by U2: %v", err)
	}
	if err := b.RemoveAdhocParticipant("U1", id, "carol"); !errors.Is(err, ErrParticipantCallNotFound) {
		t.Errorf("DELETE a participant not in it: %v", err)
	}
	if err := b.DeleteAdhoc("U2", id); !errors.Is(err, ErrNoSuchAdhoc) {
		t.Errorf("DELETE by U2: %v", err)
	}
	if evs := s.ev.take(); len(evs) != 0 {
		t.Errorf("refused requests made events: %q", evs)
	}
	for _, e := range []*fakeEP{s.eub, s.ebob, s.ealice, s.euc, s.ecarol, eu2} {
		if len(e.hungUp) != 0 {
			t.Fatalf("a refused request hung up a leg: %v", e.hungUp)
		}
	}

	// A host talking to more than one leg (in a mix of three).
	m := b.NewMix(TwoParty, "", nil)
	for _, l := range []string{"x1", "x2", "x3"} {
		if err := b.Add(LegSpec{ID: l, User: "U3", Endpoint: newEP()}, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.StartAdhoc("U3", "x1", nil); !errors.Is(err, ErrHostAlreadyInConference) {
		t.Errorf("host talking to two legs: %v", err)
	}
	// A host talking to nobody.
	lone := b.NewMix(TwoParty, "", nil)
	if err := b.Add(LegSpec{ID: "y", User: "U3", Endpoint: newEP()}, lone); err != nil {
		t.Fatal(err)
	}
	if _, err := b.StartAdhoc("U3", "y", nil); !errors.Is(err, ErrHostCallNotFound) {
		t.Errorf("host alone: %v", err)
	}
}

// TestAdhocRules: removing a participant hangs up that call only; the
// last one left alone is hung up; the host leaving hangs up all; an
// emptied conference is deleted (once); DELETE hangs up all.
func TestAdhocRules(t *testing.T) {
	s := newStory(t)
	b := s.b
	id, err := b.StartAdhoc("U1", "ub", []string{"alice", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	s.end("ua", "uc")
	s.ev.take()

	// Remove alice: only alice is hung up.
	if err := b.RemoveAdhocParticipant("U1", id, "alice"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.ealice.hungUp, []string{"hangup"}) || len(s.ebob.hungUp)+len(s.ecarol.hungUp)+len(s.eub.hungUp) != 0 {
		t.Fatalf("hang-ups: alice %v bob %v carol %v ub %v", s.ealice.hungUp, s.ebob.hungUp, s.ecarol.hungUp, s.eub.hungUp)
	}
	s.end("alice")
	if g := s.fm.groupOf(s.eub.m); g == nil || len(g.members) != 3 {
		t.Fatal("the others are not together any more")
	}
	// carol hangs up: ub and bob are two, nobody is hung up.
	s.end("carol")
	if len(s.ebob.hungUp)+len(s.eub.hungUp) != 0 {
		t.Fatal("two legs left were hung up")
	}
	// bob hangs up: the host is left alone and hung up.
	s.end("bob")
	if !slices.Equal(s.eub.hungUp, []string{"peer: hungup"}) {
		t.Fatalf("the last one left: %v", s.eub.hungUp)
	}
	s.end("ub")
	got := adhocOnly(s.ev.take())
	want := []string{"left alice", "ended alice hungup", "left carol", "ended carol hungup",
		"left bob", "ended bob hungup", "left ub", "ended ub hungup", "adhoc_deleted"}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	if err := b.DeleteAdhoc("U1", id); !errors.Is(err, ErrNoSuchAdhoc) {
		t.Errorf("a deleted conference: %v", err)
	}
	for _, g := range s.fm.groups {
		if !g.closed {
			t.Error("a group was left open")
		}
	}

	// The host leaving hangs up all the others.
	s = newStory(t)
	b = s.b
	if _, err := b.StartAdhoc("U1", "ub", []string{"alice", "carol"}); err != nil {
		t.Fatal(err)
	}
	s.end("ua", "uc", "ub")
	for name, e := range map[string]*fakeEP{"bob": s.ebob, "alice": s.ealice, "carol": s.ecarol} {
		if !slices.Equal(e.hungUp, []string{"peer: hungup"}) {
			t.Errorf("%s after the host left: %v", name, e.hungUp)
		}
	}

	// DELETE hangs up every call in it.
	s = newStory(t)
	b = s.b
	id, err = b.StartAdhoc("U1", "ub", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteAdhoc("U1", id); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*fakeEP{"ub": s.eub, "bob": s.ebob, "alice": s.ealice} {
		if !slices.Equal(e.hungUp, []string{"hangup"}) {
			t.Errorf("%s after DELETE: %v", name, e.hungUp)
		}
	}
	if len(s.ecarol.hungUp)+len(s.euc.hungUp) != 0 {
		t.Error("DELETE hung up a call outside the conference")
	}
}
