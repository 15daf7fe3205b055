package meetings

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"webconf/rpc/events"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// Tones of the ad hoc story (callers stay at or below 1300 Hz).
const (
	fBob   = 900.0
	fCarol = 1300.0
)

// adhocCall places a call from the user's line to dest (a callee): the
// user's phone and the far party answer; it returns both phones, the
// user's leg and the far party's leg (from talking_to).
func (h *harness) adhocCall(t *testing.T, tok string, line, far *phone.Callee, own, other float64, who string) (pu, pf *phone.Phone, userLeg, farLeg string) {
	t.Helper()
	r := h.must(t, 201, "POST", "/api/v1/users/me/calls", bearer(tok), map[string]any{"destination": "sip:" + who + "@" + far.Addr()})
	userLeg, _ = r.JSON["call_id"].(string)
	pu = accept(t, line, "the user's line, calling "+who)
	pu.SetTone(own)
	pf = accept(t, far, who)
	pf.SetTone(other)
	hearsButSelf(t, pu, own, other, "the user, calling "+who)
	hearsButSelf(t, pf, other, own, who)
	for _, it := range h.callItems(t, tok) {
		if it["call_id"] == userLeg {
			for k := range it["talking_to"].(map[string]any) {
				farLeg = k
			}
		}
	}
	if userLeg == "" || farLeg == "" {
		t.Fatalf("call to %s: user's leg %q, far leg %q", who, userLeg, farLeg)
	}
	return pu, pf, userLeg, farLeg
}

// hearsAll checks that p hears every one of others and not itself.
func hearsAll(t *testing.T, p *phone.Phone, own float64, others []float64, who string) {
	t.Helper()
	if err := p.HearsAllButSelf(testutil.Ctx(t, 10*time.Second), own, others, 1200, 200); err != nil {
		t.Fatalf("%s: %v", who, err)
	}
}

const adhocNames = "conference_adhoc_created,conference_adhoc_deleted,conference_adhoc_participant_joined,conference_adhoc_participant_left"

// TestAdhocConference is the ad hoc story on the wire: a user with a line
// calls alice and bob, holds alice, and merges both calls with bob's as
// host: the three hear each other and not themselves (alice comes off
// hold by joining), the user's leg to alice gets a BYE; carol is added
// with PUT; alice is removed with DELETE and the others go on; DELETE on
// the conference hangs up all. A second conference: the user's phone
// hangs up the host leg, and everyone is hung up. Every error status; the
// user's event stream sees the conference events in order.
func TestAdhocConference(t *testing.T) {
	line := callee(t, phone.CalleeConfig{})
	alice := callee(t, phone.CalleeConfig{})
	bob := callee(t, phone.CalleeConfig{})
	carol := callee(t, phone.CalleeConfig{})
	h := start(t, nil)
	uid, tok := h.user(t, "uma")
	h.must(t, 200, "PUT", "/api/v1/users/"+uid, operator, map[string]any{"line": "sip:uma@" + line.Addr()})
	st := h.openStream(t, "names="+adhocNames+"&token="+url.QueryEscape(tok), nil)
	adhoc := "/api/v1/users/me/conferences/adhoc"

	// HEAD: 200 for a user with a line, 403 for one without, 401 without a token.
	h.must(t, 200, "HEAD", adhoc, bearer(tok), nil)
	_, lineless := h.user(t, "lee")
	h.must(t, 403, "HEAD", adhoc, bearer(lineless), nil)
	h.must(t, 401, "HEAD", adhoc, nil, nil)
	otherUID, other := h.user(t, "olga")
	h.must(t, 200, "PUT", "/api/v1/users/"+otherUID, operator, map[string]any{"line": "sip:olga@" + line.Addr()})

	pua, pa, uaLeg, aLeg := h.adhocCall(t, tok, line, alice, fUser, fAlice, "alice")
	pub, pb, ubLeg, bLeg := h.adhocCall(t, tok, line, bob, fUser, fBob, "bob")
	h.must(t, 204, "PUT", "/api/v1/users/me/calls/"+uaLeg+"/hold", bearer(tok), nil)
	quiet(t, pua, fAlice, "alice on hold")
	quiet(t, pa, fUser, "the user, heard by alice on hold")

	// Refusals before there is a conference, each changing nothing.
	type bad struct {
		method, path, tok string
		body              any
		status            int
		code              string
	}
	check := func(cases []bad) {
		t.Helper()
		for _, c := range cases {
			r := h.do(t, c.method, c.path, bearer(c.tok), c.body)
			if r.Status != c.status || r.ErrorCode() != c.code {
				t.Errorf("%s %s %v: %d %q, want %d %q", c.method, c.path, c.body, r.Status, r.ErrorCode(), c.status, c.code)
			}
		}
	}
	body := func(host string, parts ...string) map[string]any {
		if parts == nil {
			parts = []string{}
		}
		return map[string]any{"host_call_id": host, "participant_call_ids": parts}
	}
	check([]bad{
		{"POST", adhoc, tok, body("nope", aLeg), 400, "host-call-not-found"},
		{"POST", adhoc, tok, body(bLeg, aLeg), 400, "host-call-not-found"},    // bob's leg is not the user's
		{"POST", adhoc, other, body(ubLeg, aLeg), 400, "host-call-not-found"}, // another user
		{"POST", adhoc, tok, body(ubLeg, "nope"), 400, "participant-call-not-found"},
		{"POST", adhoc, tok, body(ubLeg, aLeg, "nope"), 400, "participant-call-not-found"}, // one bad: nothing moves
		{"POST", adhoc, tok, body(ubLeg, uaLeg), 400, "participant-call-not-found"},        // the user's own leg
		{"POST", adhoc, tok, body(ubLeg, bLeg), 400, "participant-call-not-found"},         // the host's peer
		{"POST", adhoc, lineless, body(ubLeg, aLeg), 403, "adhoc-not-allowed"},
		{"POST", adhoc, tok, "[]", 400, "invalid-json"},
		{"POST", adhoc, tok, map[string]any{"host_call_id": ubLeg, "x": 1}, 400, "invalid-field"},
	})
	stillUp(t, pua, "the user's leg to alice after refused requests")
	for _, it := range h.callItems(t, tok) {
		if it["conference_id"] != nil || len(it["talking_to"].(map[string]any)) != 1 || (it["call_id"] == uaLeg) != (it["on_hold"] == true) {
			t.Fatalf("a refused request changed a call: %v", it)
		}
	}

	// The conference: bob's call is the host, alice a participant.
	r := h.must(t, 201, "POST", adhoc, bearer(tok), body(ubLeg, aLeg))
	conf, _ := r.JSON["conference_id"].(string)
	if len(conf) != 36 {
		t.Fatalf("conference_id %q", conf)
	}
	hungUp(t, pua, "the user's leg to alice")
	hearsAll(t, pub, fUser, []float64{fAlice, fBob}, "the user")
	hearsAll(t, pb, fBob, []float64{fUser, fAlice}, "bob")
	hearsAll(t, pa, fAlice, []float64{fUser, fBob}, "alice, off hold by joining")
	st.expect(t, "the user",
		ev(events.AdhocCreated, "conference_id", conf),
		ev(events.AdhocParticipantJoined, "conference_id", conf, "call_id", ubLeg),
		ev(events.AdhocParticipantJoined, "conference_id", conf, "call_id", bLeg),
		ev(events.AdhocParticipantJoined, "conference_id", conf, "call_id", aLeg))
	// The user's own calls: the host leg alone now, talking to bob and alice.
	testutil.WaitFor(t, 5*time.Second, "the merged leg to go from the list", func() bool { return len(h.callItems(t, tok)) == 1 })
	for _, it := range h.callItems(t, tok) {
		tt := it["talking_to"].(map[string]any)
		if _, a := tt[aLeg]; it["call_id"] != ubLeg || it["conference_id"] != conf || len(tt) != 2 || !a || it["on_hold"] != false {
			t.Errorf("in the conference: %v", it)
		}
	}

	// A third call, carol's; refusals while the conference runs.
	puc, pc, ucLeg, cLeg := h.adhocCall(t, tok, line, carol, fUser, fCarol, "carol")
	parts := adhoc + "/" + conf + "/participants/"
	check([]bad{
		{"POST", adhoc, tok, body(ubLeg, cLeg), 409, "host-already-in-conference"},
		{"POST", adhoc, tok, body(ucLeg, aLeg), 409, "participant-already-in-conference"},
		{"PUT", parts + aLeg, tok, nil, 409, "participant-already-in-conference"},
		{"PUT", parts + "nope", tok, nil, 400, "participant-call-not-found"},
		{"PUT", parts + ucLeg, tok, nil, 400, "participant-call-not-found"},
		{"PUT", adhoc + "/nope/participants/" + cLeg, tok, nil, 404, "adhoc-conference-not-found"},
		{"PUT", parts + cLeg, other, nil, 404, "adhoc-conference-not-found"},
		{"DELETE", parts + cLeg, tok, nil, 400, "participant-call-not-found"},
		{"DELETE", parts + aLeg, other, nil, 404, "adhoc-conference-not-found"},
		{"DELETE", adhoc + "/" + conf, other, nil, 404, "adhoc-conference-not-found"},
		{"DELETE", adhoc + "/nope", tok, nil, 404, "adhoc-conference-not-found"},
		{"GET", adhoc, tok, nil, 405, "method-not-allowed"},
	})
	stillUp(t, puc, "the user's leg to carol after refused requests")
	hearsButSelf(t, pc, fCarol, fUser, "carol, still in her two-party call")

	// PUT carol in: the user's leg to her is hung up; four hear each other.
	h.must(t, 204, "PUT", parts+cLeg, bearer(tok), nil)
	hungUp(t, puc, "the user's leg to carol")
	hearsAll(t, pub, fUser, []float64{fAlice, fBob, fCarol}, "the user with carol")
	hearsAll(t, pc, fCarol, []float64{fUser, fAlice, fBob}, "carol")
	st.expect(t, "the user", ev(events.AdhocParticipantJoined, "conference_id", conf, "call_id", cLeg))

	// DELETE alice: only she is hung up; the others go on.
	h.must(t, 204, "DELETE", parts+aLeg, bearer(tok), nil)
	hungUp(t, pa, "alice, removed")
	quiet(t, pub, fAlice, "alice, removed")
	hearsAll(t, pub, fUser, []float64{fBob, fCarol}, "the user after alice left")
	hearsAll(t, pb, fBob, []float64{fUser, fCarol}, "bob after alice left")
	hearsAll(t, pc, fCarol, []float64{fUser, fBob}, "carol after alice left")
	st.expect(t, "the user", ev(events.AdhocParticipantLeft, "conference_id", conf, "call_id", aLeg))

	// DELETE the conference: all three hung up, then it is gone.
	h.must(t, 204, "DELETE", adhoc+"/"+conf, bearer(tok), nil)
	hungUp(t, pub, "the user (host leg) after DELETE")
	hungUp(t, pb, "bob after DELETE")
	hungUp(t, pc, "carol after DELETE")
	lefts := leftCalls(t, st, conf, 3)
	if !slices.Equal(lefts, sorted(ubLeg, bLeg, cLeg)) {
		t.Errorf("left after DELETE: %v", lefts)
	}
	st.expect(t, "the user", ev(events.AdhocDeleted, "conference_id", conf))
	testutil.WaitFor(t, 5*time.Second, "the calls to go", func() bool { return len(h.callItems(t, tok)) == 0 })
	h.must(t, 404, "DELETE", adhoc+"/"+conf, bearer(tok), nil)

	// A second conference: the host leg hangs up, everyone is hung up.
	pua, pa, _, aLeg = h.adhocCall(t, tok, line, alice, fUser, fAlice, "alice")
	pub, pb, ubLeg, bLeg = h.adhocCall(t, tok, line, bob, fUser, fBob, "bob")
	conf2, _ := h.must(t, 201, "POST", adhoc, bearer(tok), body(ubLeg, aLeg)).JSON["conference_id"].(string)
	if conf2 == conf || conf2 == "" {
		t.Fatalf("second conference_id %q", conf2)
	}
	hungUp(t, pua, "the user's leg to alice (second conference)")
	hearsAll(t, pa, fAlice, []float64{fUser, fBob}, "alice (second conference)")
	st.expect(t, "the user",
		ev(events.AdhocCreated, "conference_id", conf2),
		ev(events.AdhocParticipantJoined, "conference_id", conf2, "call_id", ubLeg),
		ev(events.AdhocParticipantJoined, "conference_id", conf2, "call_id", bLeg),
		ev(events.AdhocParticipantJoined, "conference_id", conf2, "call_id", aLeg))
	if err := pub.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	hungUp(t, pb, "bob after the host left")
	hungUp(t, pa, "alice after the host left")
	st.expect(t, "the user", ev(events.AdhocParticipantLeft, "conference_id", conf2, "call_id", ubLeg))
	if lefts := leftCalls(t, st, conf2, 2); !slices.Equal(lefts, sorted(bLeg, aLeg)) {
		t.Errorf("left after the host: %v", lefts)
	}
	st.expect(t, "the user", ev(events.AdhocDeleted, "conference_id", conf2))
	testutil.WaitFor(t, 5*time.Second, "the calls to go", func() bool { return len(h.callItems(t, tok)) == 0 })
}

// leftCalls reads n conference_adhoc_participant_left of conf (in the
// order the SIP sides end) and returns their call_ids, sorted.
func leftCalls(t *testing.T, st *stream, conf string, n int) []string {
	t.Helper()
	var ids []string
	for range n {
		m := st.next(t)
		if m.Name != events.AdhocParticipantLeft || m.Data["conference_id"] != conf {
			t.Fatalf("got %s %v, want %s of %s", m.Name, m.Data, events.AdhocParticipantLeft, conf)
		}
		id, _ := m.Data["call_id"].(string)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func sorted(s ...string) []string { slices.Sort(s); return s }
