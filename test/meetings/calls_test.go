package meetings

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"webconf/conf"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// callee listens as a test phone (a user's line, a provider, a far
// party); it is closed when the test ends.
func callee(t *testing.T, cfg phone.CalleeConfig) *phone.Callee {
	t.Helper()
	cfg.ToneAmplitude = 6000
	c, err := phone.Listen(testutil.Ctx(t, 5*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func accept(t *testing.T, c *phone.Callee, what string) *phone.Phone {
	t.Helper()
	p, err := c.Accept(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("%s never answered: %v", what, err)
	}
	return p
}

func hearsButSelf(t *testing.T, p *phone.Phone, own, other float64, who string) {
	t.Helper()
	if err := p.HearsAllButSelf(testutil.Ctx(t, 10*time.Second), own, []float64{other}, 1500, 200); err != nil {
		t.Fatalf("%s: %v", who, err)
	}
}

// callItems is GET /users/me/calls' items.
func (h *harness) callItems(t *testing.T, tok string) []map[string]any {
	t.Helper()
	r := h.must(t, 200, "GET", "/api/v1/users/me/calls", bearer(tok), nil)
	var out []map[string]any
	for _, it := range r.JSON["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

const (
	fUser  = 700.0
	fAlice = 1100.0
	fRing  = 440.0 // the US ringback's lower tone
)

// TestCallsTwoParty: POST /users/me/calls rings the user's line, then
// dials alice through the provider (which challenges: the provider's
// credentials answer it); the user hears ringback, then alice; each
// hears the other and not themselves; hold and mute are heard; DELETE
// hangs both up with BYE.
func TestCallsTwoParty(t *testing.T) {
	line := callee(t, phone.CalleeConfig{})
	alice := callee(t, phone.CalleeConfig{Ring: 1500 * time.Millisecond,
		Auth: &phone.Auth{Realm: "provider", User: "acct", Password: "prov-secret"}})
	h := start(t, func(c *conf.Config) {
		c.Calls = conf.Calls{Domain: alice.Addr(), AuthUser: "acct", AuthPassword: "prov-secret"}
		c.Webconference.Ringback = "us"
	})
	uid, tok := h.user(t, "carol", "sip")
	h.must(t, 200, "PUT", "/api/v1/users/"+uid, operator, map[string]any{"line": "sip:carol@" + line.Addr()})
	if got := h.must(t, 200, "GET", "/api/v1/users/"+uid, operator, nil).JSON["line"]; got != "sip:carol@"+line.Addr() {
		t.Fatalf("line = %v", got)
	}

	r := h.must(t, 201, "POST", "/api/v1/users/me/calls", bearer(tok), map[string]any{"destination": "1002"})
	userLeg, _ := r.JSON["call_id"].(string)
	if userLeg == "" {
		t.Fatalf("no call_id: %s", r.Body)
	}
	pu := accept(t, line, "the user's line")
	pu.SetTone(fUser)
	// While alice rings, the user hears ringback.
	if err := pu.WaitLevel(testutil.Ctx(t, 8*time.Second), fRing, 1000, 100*time.Millisecond); err != nil {
		t.Fatalf("no ringback while alice rings: %v", err)
	}
	pa := accept(t, alice, "alice")
	pa.SetTone(fAlice)
	hearsButSelf(t, pu, fUser, fAlice, "the user")
	hearsButSelf(t, pa, fAlice, fUser, "alice")
	invs := alice.Invites()
	if len(invs) != 2 || invs[0].GetHeader("Authorization") != nil || invs[1].GetHeader("Authorization") == nil {
		t.Fatalf("the provider's challenge was not answered once: %d INVITEs", len(invs))
	}
	if !strings.HasPrefix(invs[0].Recipient.String(), "sip:1002@") {
		t.Errorf("the provider was asked for %s", invs[0].Recipient.String())
	}

	// The user's calls are their own legs (wazo-calld's /users/me/calls);
	// the peer's leg is named in talking_to.
	items := h.callItems(t, tok)
	if len(items) != 1 {
		t.Fatalf("GET calls: %v", items)
	}
	var peerLeg string
	for _, it := range items {
		if it["status"] != "Up" || it["on_hold"] != false || it["muted"] != false || it["conference_id"] != nil {
			t.Errorf("item %v", it)
		}
		if it["call_id"] == userLeg {
			if it["user_uuid"] != uid || it["peer_caller_id_number"] != "1002" {
				t.Errorf("user's leg %v", it)
			}
			for k := range it["talking_to"].(map[string]any) {
				peerLeg = k
			}
		}
	}
	if peerLeg == "" || peerLeg == userLeg {
		t.Fatalf("talking_to of the user's leg: %v", items)
	}

	ctl := func(id, op string) {
		t.Helper()
		h.must(t, 204, "PUT", "/api/v1/users/me/calls/"+id+"/"+op, bearer(tok), nil)
	}
	// Hold the call: the user and alice neither hear nor are heard.
	ctl(userLeg, "hold")
	quiet(t, pu, fAlice, "alice on hold")
	quiet(t, pa, fUser, "the user, heard by alice on hold")
	if it := h.callItems(t, tok); it[0]["on_hold"] != true {
		t.Errorf("on_hold not shown: %v", it)
	}
	ctl(userLeg, "unhold")
	hearsButSelf(t, pu, fUser, fAlice, "the user after unhold")
	hearsButSelf(t, pa, fAlice, fUser, "alice after unhold")
	// Mute the user: alice no longer hears them; they still hear alice.
	ctl(userLeg, "mute")
	quiet(t, pa, fUser, "the muted user")
	hear(t, pu, fAlice, "alice, by the muted user")
	if it := h.callItems(t, tok); it[0]["muted"] != true {
		t.Errorf("muted not shown: %v", it)
	}
	ctl(userLeg, "unmute")
	hear(t, pa, fUser, "the unmuted user")

	// Errors.
	_, other := h.user(t, "dave")
	for _, c := range []struct {
		method, path, tok string
		body              any
		status            int
		code              string
	}{
		{"PUT", "/api/v1/users/me/calls/nope/hold", tok, nil, 404, "no-such-call"},
		{"DELETE", "/api/v1/users/me/calls/nope", tok, nil, 404, "no-such-call"},
		{"PUT", "/api/v1/users/me/calls/" + userLeg + "/mute", other, nil, 404, "no-such-call"},
		{"DELETE", "/api/v1/users/me/calls/" + peerLeg, other, nil, 404, "no-such-call"},
		{"PUT", "/api/v1/users/me/calls/" + peerLeg + "/hold", tok, nil, 404, "no-such-call"}, // alice's leg is not the user's
		{"DELETE", "/api/v1/users/me/calls/" + peerLeg, tok, nil, 404, "no-such-call"},
		{"POST", "/api/v1/users/me/calls", other, map[string]any{"destination": "1002"}, 400, "user-has-no-line"},
		{"POST", "/api/v1/users/me/calls", tok, map[string]any{"destination": "http://x"}, 400, "invalid-destination"},
		{"POST", "/api/v1/users/me/calls", tok, map[string]any{"destination": ""}, 400, "invalid-destination"},
		{"PUT", "/api/v1/users/" + uid, "", "no json", 400, "invalid-json"},
	} {
		var a auth
		if c.tok != "" {
			a = bearer(c.tok)
		}
		if c.path == "/api/v1/users/"+uid {
			a = operator
		}
		r := h.do(t, c.method, c.path, a, c.body)
		if r.Status != c.status || r.ErrorCode() != c.code {
			t.Errorf("%s %s: %d %q, want %d %q", c.method, c.path, r.Status, r.ErrorCode(), c.status, c.code)
		}
	}
	if r := h.do(t, "PUT", "/api/v1/users/"+uid, operator, map[string]any{"line": "tel:+1555"}); r.Status != 400 || !strings.Contains(r.ErrorMessage(), "line") {
		t.Errorf("a tel: line: %d %s", r.Status, r.Body)
	}
	if len(h.callItems(t, other)) != 0 {
		t.Error("another user sees the calls")
	}

	// DELETE the user's leg: both phones get a BYE, the list empties.
	h.must(t, 204, "DELETE", "/api/v1/users/me/calls/"+userLeg, bearer(tok), nil)
	hungUp(t, pu, "the user")
	hungUp(t, pa, "alice")
	testutil.WaitFor(t, 5*time.Second, "the calls to go", func() bool { return len(h.callItems(t, tok)) == 0 })
}

// TestCallsCredentialsOnlyForProvider: a SIP URI on another host than the
// provider's is dialled without the provider's credentials: its
// challenge is not answered, the call fails and the user's leg is hung
// up.
func TestCallsCredentialsOnlyForProvider(t *testing.T) {
	line := callee(t, phone.CalleeConfig{})
	bob := callee(t, phone.CalleeConfig{Auth: &phone.Auth{Realm: "provider", User: "acct", Password: "prov-secret"}})
	h := start(t, func(c *conf.Config) {
		// The provider is 127.0.0.2; bob is on 127.0.0.1.
		c.Calls = conf.Calls{Domain: "127.0.0.2:5999", AuthUser: "acct", AuthPassword: "prov-secret"}
	})
	uid, tok := h.user(t, "carol", "sip")
	h.must(t, 200, "PUT", "/api/v1/users/"+uid, operator, map[string]any{"line": "sip:carol@" + line.Addr()})
	h.must(t, 201, "POST", "/api/v1/users/me/calls", bearer(tok), map[string]any{"destination": "sip:bob@" + bob.Addr()})
	pu := accept(t, line, "the user's line")
	hungUp(t, pu, "the user, after bob's challenge")
	invs := bob.Invites()
	if len(invs) != 1 || invs[0].GetHeader("Authorization") != nil || invs[0].GetHeader("Proxy-Authorization") != nil {
		t.Fatalf("bob got %d INVITEs (want 1, without credentials)", len(invs))
	}
	testutil.WaitFor(t, 5*time.Second, "the calls to go", func() bool { return len(h.callItems(t, tok)) == 0 })
}

// TestCallsDialIn: the user's own phone, with the user's SIP credentials,
// dials a number at webconf: it is challenged, then its call goes out
// through the provider and shows in GET calls; wrong credentials get 403.
func TestCallsDialIn(t *testing.T) {
	alice := callee(t, phone.CalleeConfig{})
	h := start(t, func(c *conf.Config) { c.Calls = conf.Calls{Domain: alice.Addr()} })
	uid, tok := h.user(t, "carol", "sip")
	h.must(t, 200, "PUT", "/api/v1/users/"+uid, operator, map[string]any{"sip_password": "carol-phone-pw"})

	bad := phone.Config{Server: h.node.SIP.Addr(), User: "1002", FromUser: "carol", AuthUser: "carol", AuthPassword: "wrong-password"}
	if _, err := phone.Dial(testutil.Ctx(t, 10*time.Second), bad); err == nil || !strings.Contains(fmt.Sprint(err), "403") {
		t.Fatalf("wrong credentials: %v", err)
	}
	pu := h.dial(t, phone.Config{User: "1002", FromUser: "carol", AuthUser: "carol", AuthPassword: "carol-phone-pw"})
	pu.SetTone(fUser)
	pa := accept(t, alice, "alice")
	pa.SetTone(fAlice)
	hearsButSelf(t, pu, fUser, fAlice, "the user")
	hearsButSelf(t, pa, fAlice, fUser, "alice")
	items := h.callItems(t, tok)
	if len(items) != 1 || items[0]["user_uuid"] != uid {
		t.Fatalf("GET calls: %v", items)
	}
	if invs := alice.Invites(); len(invs) != 1 || !strings.HasPrefix(invs[0].Recipient.String(), "sip:1002@") {
		t.Fatalf("alice's INVITEs: %v", invs)
	}
	// The far party hangs up: the user's phone gets a BYE.
	if err := pa.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	hungUp(t, pu, "the user, after alice hung up")
}
