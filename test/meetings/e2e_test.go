package meetings

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"webconf/conf"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// hear waits until p hears freq.
func hear(t *testing.T, p *phone.Phone, freq float64, what string) {
	t.Helper()
	if err := p.WaitLevel(testutil.Ctx(t, 8*time.Second), freq, 1500, 100*time.Millisecond); err != nil {
		t.Fatalf("waiting to hear %s (%.0f Hz): %v", what, freq, err)
	}
}

// quiet waits until p does not hear freq.
func quiet(t *testing.T, p *phone.Phone, freq float64, what string) {
	t.Helper()
	if err := p.WaitQuiet(testutil.Ctx(t, 8*time.Second), freq, 300, 300*time.Millisecond); err != nil {
		t.Fatalf("waiting for %s (%.0f Hz) to stop: %v", what, freq, err)
	}
}

// hungUp waits for the server's BYE.
func hungUp(t *testing.T, p *phone.Phone, what string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the server did not hang up", what)
	}
}

// stillUp checks that the call has not ended.
func stillUp(t *testing.T, p *phone.Phone, what string) {
	t.Helper()
	select {
	case <-p.Done():
		t.Fatalf("%s: the call ended", what)
	default:
	}
}

// joinByExten dials the meeting's number as the Request-URI user; the
// phone sends tone freq.
func (h *harness) joinByExten(t *testing.T, exten string, freq float64) *phone.Phone {
	t.Helper()
	p := h.dial(t, phone.Config{User: exten, FromUser: fmt.Sprintf("caller%.0f", freq)})
	p.SetTone(freq)
	return p
}

// guestCreds decodes guest_sip_authorization.
func guestCreds(t *testing.T, m map[string]any) (user, pass string) {
	t.Helper()
	s, _ := m["guest_sip_authorization"].(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("guest_sip_authorization %q: %v", s, err)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok {
		t.Fatalf("guest_sip_authorization %q is not user:password", b)
	}
	return user, pass
}

// participants lists the meeting's live participants over the API.
func (h *harness) participants(t *testing.T, tok, id string) []map[string]any {
	t.Helper()
	r := h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+id+"/participants", bearer(tok), nil)
	var out []map[string]any
	for _, it := range r.JSON["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	if int(r.JSON["total"].(float64)) != len(out) {
		t.Fatalf("participants: total %v for %d items", r.JSON["total"], len(out))
	}
	return out
}

// waitParticipants waits until the meeting has n participants, waiting
// in the lobby as lobby says.
func (h *harness) waitParticipants(t *testing.T, tok, id string, n int, lobby bool) []map[string]any {
	t.Helper()
	var got []map[string]any
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("%d participants (lobby %v)", n, lobby), func() bool {
		got = h.participants(t, tok, id)
		c := 0
		for _, p := range got {
			if p["lobby"] == lobby {
				c++
			}
		}
		return c == n
	})
	return got
}

func dialErr(t *testing.T, h *harness, cfg phone.Config) error {
	t.Helper()
	cfg.Server = h.node.SIP.Addr()
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), cfg)
	if err == nil {
		p.Close()
		t.Fatalf("dial %q: answered, want a refusal", cfg.User)
	}
	return err
}

func statusOf(err error) int {
	var se *phone.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestJoinByExtenAndKeypad(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings")
	m := h.meeting(t, tok, map[string]any{"name": "weekly"})
	exten, id := m["exten"].(string), m["uuid"].(string)

	a := h.joinByExten(t, exten, 400)
	b := h.joinByExten(t, exten, 600)
	// A third caller types the number on the keypad.
	c := h.dial(t, phone.Config{User: "conference", FromUser: "keypad"})
	c.SetTone(800)
	hear(t, c, fEnterPin, "enter_pin")
	if err := c.SendDTMF(testutil.Ctx(t, 10*time.Second), exten+"#", phone.RFC4733); err != nil {
		t.Fatal(err)
	}
	parts := h.waitParticipants(t, tok, id, 3, false)
	for _, p := range []*phone.Phone{a, b, c} {
		found := false
		for _, x := range parts {
			found = found || x["id"] == p.RemoteTag()
		}
		if !found {
			t.Errorf("participant %s missing from %v", p.RemoteTag(), parts)
		}
	}
	// Everyone hears the others and not themselves.
	hear(t, a, 600, "b")
	hear(t, a, 800, "c")
	hear(t, c, 400, "a")
	quiet(t, a, 400, "a's own tone")

	// The owner kicks b.
	h.must(t, 204, "DELETE", "/api/v1/users/me/meetings/"+id+"/participants/"+b.RemoteTag(), bearer(tok), nil)
	hungUp(t, b, "kicked caller")
	h.waitParticipants(t, tok, id, 2, false)
	stillUp(t, a, "a after b's kick")
}

func TestMeetingGuestDigest(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings")
	m := h.meeting(t, tok, nil)
	user, pass := guestCreds(t, m)

	host := h.dial(t, phone.Config{User: m["exten"].(string), FromUser: "host"})
	host.SetTone(500)
	g := h.dial(t, phone.Config{User: "meeting-guest", FromUser: "guest", AuthUser: user, AuthPassword: pass})
	g.SetTone(700)
	hear(t, host, 700, "the guest")
	hear(t, g, 500, "the host")
	h.waitParticipants(t, tok, m["uuid"].(string), 2, false)

	t.Run("a wrong password is refused with 403", func(t *testing.T) {
		err := dialErr(t, h, phone.Config{User: "meeting-guest", AuthUser: user, AuthPassword: pass + "x"})
		if statusOf(err) != 403 {
			t.Fatalf("got %v, want 403", err)
		}
	})
	t.Run("an unknown guest account is refused with 403", func(t *testing.T) {
		err := dialErr(t, h, phone.Config{User: "meeting-guest", AuthUser: "meeting-nobody-guest", AuthPassword: pass})
		if statusOf(err) != 403 {
			t.Fatalf("got %v, want 403", err)
		}
	})
	t.Run("no credentials get the challenge", func(t *testing.T) {
		err := dialErr(t, h, phone.Config{User: "meeting-guest"})
		if statusOf(err) != 401 {
			t.Fatalf("got %v, want 401", err)
		}
	})
	h.waitParticipants(t, tok, m["uuid"].(string), 2, false)
}

func TestValidSinceAndValidUntil(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings")
	now := time.Now().UTC()

	t.Run("before valid_since", func(t *testing.T) {
		m := h.meeting(t, tok, map[string]any{"valid_since": now.Add(time.Hour).Format(time.RFC3339)})
		p := h.dial(t, phone.Config{User: m["exten"].(string)})
		hear(t, p, fNotStarted, "meeting has not started")
		hungUp(t, p, "early caller")
	})
	t.Run("after valid_until", func(t *testing.T) {
		m := h.meeting(t, tok, map[string]any{
			"valid_since": now.Add(-2 * time.Hour).Format(time.RFC3339),
			"valid_until": now.Add(-time.Hour).Format(time.RFC3339),
		})
		p := h.dial(t, phone.Config{User: m["exten"].(string)})
		hear(t, p, fEnded, "meeting is over")
		hungUp(t, p, "late caller")
	})
	t.Run("reaching valid_until hangs up everyone and keeps the meeting", func(t *testing.T) {
		until := time.Now().UTC().Add(3 * time.Second).Truncate(time.Second).Add(time.Second)
		m := h.meeting(t, tok, map[string]any{"valid_until": until.Format(time.RFC3339)})
		a := h.joinByExten(t, m["exten"].(string), 400)
		b := h.joinByExten(t, m["exten"].(string), 600)
		hear(t, a, 600, "b")
		hungUp(t, a, "a at valid_until")
		hungUp(t, b, "b at valid_until")
		if time.Now().Before(until) {
			t.Errorf("hung up before valid_until (%v)", until)
		}
		h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+m["uuid"].(string), bearer(tok), nil)
		late := h.dial(t, phone.Config{User: m["exten"].(string)})
		hear(t, late, fEnded, "meeting is over")
		hungUp(t, late, "caller after valid_until")
	})
}

// TestTheHundredAndFirstCaller fills a meeting with the default
// max_participants (100) and checks that the next caller hears that it is
// full and is hung up, while the others stay.
func TestTheHundredAndFirstCaller(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Limits.InviteRate, c.Limits.InviteBurst = 0, 0 })
	_, tok := h.user(t, "owner", "meetings")
	m := h.meeting(t, tok, nil)
	if m["max_participants"].(float64) != 100 {
		t.Fatalf("default max_participants %v, want 100", m["max_participants"])
	}
	exten := m["exten"].(string)
	phones := make([]*phone.Phone, 100)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := phone.Dial(testutil.Ctx(t, 30*time.Second), phone.Config{
				Server: h.node.SIP.Addr(), User: exten, FromUser: fmt.Sprintf("p%d", i)})
			if err != nil {
				errs <- err
				return
			}
			p.SetSending(false) // 100 senders add nothing to what is tested
			phones[i] = p
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("one of the first 100 callers: %v", err)
	}
	t.Cleanup(func() {
		for _, p := range phones {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_ = p.Hangup(ctx)
			cancel()
			p.Close()
		}
	})
	h.waitParticipants(t, tok, m["uuid"].(string), 100, false)
	full := h.must(t, 200, "GET", "/api/v1/guests/me/meetings/"+m["uuid"].(string)+"/status", nil, nil)
	if full.JSON["full"] != true {
		t.Errorf("status %s, want full", full.Body)
	}

	last := h.dial(t, phone.Config{User: exten, FromUser: "p100"})
	hear(t, last, fFull, "conference is full")
	hungUp(t, last, "the 101st caller")
	for i, p := range phones {
		stillUp(t, p, fmt.Sprintf("caller %d", i))
	}
	if n := len(h.participants(t, tok, m["uuid"].(string))); n != 100 {
		t.Errorf("%d participants after the refusal, want 100", n)
	}
}

func TestLobbyWaitAndAdmit(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings")
	m := h.meeting(t, tok, map[string]any{"lobby": map[string]any{"state": 1}})
	exten, id := m["exten"].(string), m["uuid"].(string)

	a := h.joinByExten(t, exten, 400)
	b := h.joinByExten(t, exten, 600)
	hear(t, a, fLobby, "the lobby prompt")
	hear(t, b, fLobby, "the lobby prompt")
	h.waitParticipants(t, tok, id, 2, true)
	for name, want := range map[string]string{"webconf_lobby_waiting": "2", "webconf_meetings": "1", "webconf_meeting_users": "1"} {
		if got := h.metric(t, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	// Waiting callers hear nobody.
	quiet(t, a, 600, "b while both wait")

	// The owner admits a: a is in the room, b still waits.
	h.must(t, 204, "POST", "/api/v1/meetings/"+id+"/webinar/lobby/admit/"+a.RemoteTag(), bearer(tok), nil)
	h.waitParticipants(t, tok, id, 1, false)
	quiet(t, b, 400, "a (b is still in the lobby)")

	// Lifting the lobby lets b in too.
	r := h.must(t, 200, "PUT", "/api/v1/meetings/"+id+"/webinar/lobby", bearer(tok), map[string]any{"state": 0})
	if r.JSON["lobby"].(map[string]any)["state"].(float64) != 0 {
		t.Fatalf("lobby after lifting: %s", r.Body)
	}
	h.waitParticipants(t, tok, id, 2, false)
	hear(t, a, 600, "b")
	hear(t, b, 400, "a")

	// Turning the lobby on again keeps those inside; a newcomer waits.
	h.must(t, 200, "PUT", "/api/v1/meetings/"+id+"/webinar/lobby", bearer(tok), map[string]any{"state": 1})
	c := h.joinByExten(t, exten, 800)
	hear(t, c, fLobby, "the lobby prompt")
	h.waitParticipants(t, tok, id, 1, true)
	stillUp(t, a, "a after the lobby came back")
	hear(t, a, 600, "b, still in the room")
	quiet(t, a, 800, "c in the lobby")
}

func TestSIPSwitchOff(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "owner", "meetings", "sip")
	m := h.meeting(t, tok, nil)
	exten, id := m["exten"].(string), m["uuid"].(string)
	user, pass := guestCreds(t, m)
	h.must(t, 200, "PUT", "/api/v1/meetings/"+id+"/webinar/sip", bearer(tok), map[string]any{"state": 0})

	if err := dialErr(t, h, phone.Config{User: exten}); statusOf(err) != 403 {
		t.Errorf("direct by exten: got %v, want 403 before answer", err)
	}
	if err := dialErr(t, h, phone.Config{User: "meeting-guest", AuthUser: user, AuthPassword: pass}); statusOf(err) != 403 {
		t.Errorf("meeting-guest: got %v, want 403", err)
	}
	k := h.dial(t, phone.Config{User: "conference"})
	hear(t, k, fEnterPin, "enter_pin")
	if err := k.SendDTMF(testutil.Ctx(t, 10*time.Second), exten+"#", phone.RFC4733); err != nil {
		t.Fatal(err)
	}
	hear(t, k, fWrongPinBye, "wrong_pin_bye")
	hungUp(t, k, "keypad caller")

	// Back on, the same number works.
	h.must(t, 200, "PUT", "/api/v1/meetings/"+id+"/webinar/sip", bearer(tok), map[string]any{"state": 1})
	h.joinByExten(t, exten, 400)
	h.waitParticipants(t, tok, id, 1, false)
}

func TestExpiryHangsUpAndDeletes(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Meetings.MeetingTTL = 3 * time.Second })
	_, tok := h.user(t, "owner", "meetings")
	m := h.meeting(t, tok, nil)
	keep := h.meeting(t, tok, map[string]any{"persistent": true})
	expires, err := time.Parse(time.RFC3339, m["expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	a := h.joinByExten(t, m["exten"].(string), 400)
	b := h.joinByExten(t, m["exten"].(string), 600)
	hear(t, a, 600, "b")
	hungUp(t, a, "a at expiry")
	hungUp(t, b, "b at expiry")
	if time.Now().Before(expires) {
		t.Errorf("hung up before expires_at %v", expires)
	}
	h.must(t, 404, "GET", "/api/v1/users/me/meetings/"+m["uuid"].(string), bearer(tok), nil)
	h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+keep["uuid"].(string), bearer(tok), nil)
	if _, ok := h.node.SIP.Registry().Room(m["exten"].(string)); ok {
		t.Error("the expired meeting's room is still there")
	}
}

func TestPublicRoom(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Meetings.PublicRooms = true })
	asJSON := func(r *http.Request) { r.Header.Set("Accept", "application/json") }
	// Asking makes nothing: the page tells how to call.
	r := h.do(t, "GET", "/c/team-a", nil, nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), "sip:c.team-a@") {
		t.Fatalf("GET /c/team-a: %d %s", r.Status, r.Body)
	}
	if js := h.do(t, "GET", "/c/team-a", asJSON, nil); js.Status != 200 || js.JSON["open"] != false || js.JSON["room"] != nil {
		t.Fatalf("GET /c/team-a before any call: %d %s", js.Status, js.Body)
	}
	// The first caller by identifier makes the room.
	a := h.dial(t, phone.Config{User: "c.team-a", FromUser: "a"})
	a.SetTone(400)
	var room string
	testutil.WaitFor(t, 10*time.Second, "the first call to open the room", func() bool {
		js := h.do(t, "GET", "/c/team-a", asJSON, nil)
		room, _ = js.JSON["room"].(string)
		return js.Status == 200 && js.JSON["open"] == true && room != ""
	})
	// One caller by number, one on the keypad.
	b := h.dial(t, phone.Config{User: room, FromUser: "b"})
	b.SetTone(600)
	c := h.dial(t, phone.Config{User: "conference", FromUser: "c"})
	c.SetTone(800)
	hear(t, c, fEnterPin, "enter_pin")
	if err := c.SendDTMF(testutil.Ctx(t, 10*time.Second), room+"#", phone.RFC4733); err != nil {
		t.Fatal(err)
	}
	hear(t, a, 600, "b")
	hear(t, a, 800, "c")
	hear(t, b, 400, "a")
	// A second caller by identifier joins the same room.
	d := h.dial(t, phone.Config{User: "c.team-a", FromUser: "d"})
	d.SetTone(1000)
	hear(t, a, 1000, "d")
	if n := h.node.SIP.Meetings().Counts().PublicRooms; n != 1 {
		t.Fatalf("%d public rooms, want 1", n)
	}
}

// TestPublicRoomBudget: making a public room is charged to the caller's
// address; once spent, its calls to new identifiers are refused before
// they are answered, while open rooms still take it.
func TestPublicRoomBudget(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		c.Meetings.PublicRooms = true
		c.Meetings.PublicRoomsPerSource = 2
	})
	for _, id := range []string{"one", "two"} {
		p := h.dial(t, phone.Config{User: "c." + id, FromUser: id})
		p.SetTone(400)
		testutil.WaitFor(t, 10*time.Second, "c."+id+" to be made", func() bool {
			_, ok := h.node.SIP.Meetings().PublicRoomNumber(id)
			return ok
		})
	}
	if err := dialErr(t, h, phone.Config{User: "c.three", FromUser: "x"}); statusOf(err) != 403 {
		t.Fatalf("a third public room from the same address: %v, want 403", err)
	}
	if _, ok := h.node.SIP.Meetings().PublicRoomNumber("three"); ok {
		t.Fatal("the refused room exists")
	}
	// An open room still takes the same address.
	again := h.dial(t, phone.Config{User: "c.one", FromUser: "again"})
	again.SetTone(600)
}

// metric reads one unlabelled sample from /metrics ("" when absent).
func (h *harness) metric(t *testing.T, name string) string {
	t.Helper()
	r := h.must(t, 200, "GET", "/metrics", nil, nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}
