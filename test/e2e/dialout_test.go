package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"webconf/conf"
	"webconf/sipapp"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

func dialReq(room string, c *phone.Callee) sipapp.DialRequest {
	return sipapp.DialRequest{
		Room: room, Callee: "bob", FromUser: "conference", Domain: c.Addr(),
		AuthUser: "wcuser", AuthPwd: "s3cret",
	}
}

// dialout places the call as the control API would and returns its tag.
func (s *server) dialout(t *testing.T, req sipapp.DialRequest) string {
	t.Helper()
	tag, err := s.Dialout(context.Background(), req)
	if err != nil {
		t.Fatalf("dialout: %v", err)
	}
	if len(tag) != 34 || strings.ToUpper(tag) != tag {
		t.Fatalf("call tag %q is not in SEMS's format", tag)
	}
	return tag
}

// accept waits for the callee to be answered and hangs it up at the end.
func accept(t *testing.T, c *phone.Callee) *phone.Phone {
	t.Helper()
	p, err := c.Accept(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("callee never answered: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// withoutTrying drops "1 100 Trying": whether a 100 is sent depends on
// timing, and SEMS reports it like any reply.
func withoutTrying(s []string) []string {
	return slices.DeleteFunc(s, func(v string) bool { return v == "1 100 Trying" })
}

func (s *server) waitDialStatuses(t *testing.T, tag string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := withoutTrying(s.events.statuses(tag))
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status sequence of %s:\n got %q\nwant %q", tag, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDialoutAnsweredAfterAChallenge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		auth phone.Auth
	}{
		{"401 with MD5", phone.Auth{Realm: "127.0.0.1", User: "wcuser", Password: "s3cret"}},
		{"407 with SHA-256 and qop", phone.Auth{Realm: "127.0.0.1", User: "wcuser", Password: "s3cret", Proxy: true, Algorithm: "SHA-256", QOP: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, nil)
			a := srv.direct(t, "dial", phone.Config{})
			a.SetTone(500)
			cal := testutil.ListenCallee(t, phone.CalleeConfig{Auth: &tc.auth, Ring: 300 * time.Millisecond})
			req := dialReq("dial", cal)
			req.Headers = []string{"X-Tenant: acme", "Subject: conference call"}
			req.ParticipantID = "bob-1"
			tag := srv.dialout(t, req)
			b := accept(t, cal)
			b.SetTone(700)
			srv.waitDialStatuses(t, tag, "1 INVITE", "2 180 Ringing", "3 200 OK")

			invites := cal.Invites()
			if len(invites) != 2 {
				t.Fatalf("%d INVITEs, want 2 (challenged, then answered)", len(invites))
			}
			hdr := "Authorization"
			if tc.auth.Proxy {
				hdr = "Proxy-Authorization"
			}
			if h := invites[1].GetHeader(hdr); h == nil || !strings.Contains(h.Value(), `username="wcuser"`) {
				t.Fatalf("second INVITE lacks %s: %v", hdr, h)
			}
			first := invites[0]
			if first.GetHeader("X-Tenant") == nil || first.GetHeader("X-Tenant").Value() != "acme" || first.GetHeader("Subject") == nil {
				t.Fatalf("extra headers missing from the INVITE:\n%s", first)
			}
			if f := first.From(); f == nil || f.Address.User != "conference" {
				t.Fatalf("From %v, want sip:conference@...", f)
			}
			if tg, _ := first.From().Params.Get("tag"); tg != tag {
				t.Fatalf("From-tag %q, want the call tag %q", tg, tag)
			}
			if to := first.To(); to == nil || to.Address.User != "bob" {
				t.Fatalf("To %v, want sip:bob@...", to)
			}
			if !strings.Contains(string(first.Body()), "m=audio ") || strings.Contains(string(first.Body()), "m=audio 0 ") {
				t.Fatalf("the offer has no usable audio:\n%s", first.Body())
			}
			// Audio both ways.
			hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
			hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
			var rec room.Participant
			for _, p := range srv.participants("dial") {
				if p.CallTag == tag {
					rec = p
				}
			}
			if rec.ID != "bob-1" || !strings.HasPrefix(rec.Number, "sip:bob@127.0.0.1:") {
				t.Fatalf("record %+v: want participant id bob-1 and number sip:bob@<callee domain>", rec)
			}

			// Kick hangs the callee up.
			if err := srv.Registry().Kick("dial", tag); err != nil {
				t.Fatal(err)
			}
			waitDone(t, b, 5*time.Second, "kick of a dialled call")
			srv.waitDialStatuses(t, tag, "1 INVITE", "2 180 Ringing", "3 200 OK", "4 disconnect", "5 ")
		})
	}
}

func TestDialoutFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     phone.CalleeConfig
		kick    bool // kick while it rings
		invites int
		want    []string
	}{
		{"busy", phone.CalleeConfig{Reject: 486}, false, 1, []string{"1 INVITE", "5 486 Busy Here"}},
		{"no answer, cancelled", phone.CalleeConfig{NoAnswer: true}, true, 1, []string{"1 INVITE", "2 180 Ringing", "4 disconnect", "5 "}},
		{"wrong credentials", phone.CalleeConfig{Auth: &phone.Auth{Realm: "127.0.0.1", User: "wcuser", Password: "other", Always: true}}, false, 2, []string{"1 INVITE", "5 401 Unauthorized"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, nil)
			cal := testutil.ListenCallee(t, tc.cfg)
			tag := srv.dialout(t, dialReq("fail", cal))
			if tc.kick {
				srv.waitDialStatuses(t, tag, "1 INVITE", "2 180 Ringing")
				if err := srv.Registry().Kick("fail", tag); err != nil {
					t.Fatal(err)
				}
				if err := cal.WaitCancel(testutil.Ctx(t, 5*time.Second)); err != nil {
					t.Fatalf("no CANCEL: %v", err)
				}
			}
			srv.waitDialStatuses(t, tag, tc.want...)
			if n := len(cal.Invites()); n != tc.invites {
				t.Fatalf("%d INVITEs, want %d", n, tc.invites)
			}
			testutil.WaitFor(t, 5*time.Second, "no calls left", func() bool { return srv.ActiveCalls() == 0 })
		})
	}
}

func TestRingbackWhileTheCalleeRings(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "ring", phone.Config{})
	srv.inRoom(t, a, "ring", room.ReasonDirect)
	quiet(t, a, fFirst)
	cal := testutil.ListenCallee(t, phone.CalleeConfig{Ring: 4 * time.Second})
	tag := srv.dialout(t, dialReq("ring", cal))
	if err := a.WaitAudio(testutil.Ctx(t, 5*time.Second), func(s []int16) bool {
		return levelOf(s, 440) > 1500 && levelOf(s, 480) > 1500
	}, 200*time.Millisecond); err != nil {
		t.Fatalf("no 440+480 Hz ringback in the room: %v", err)
	}
	// Muting the ringing callee removes the ringback (spec 5.6).
	if err := srv.Registry().Mute("ring", tag); err != nil {
		t.Fatal(err)
	}
	quiet(t, a, 440)
	if err := srv.Registry().Unmute("ring", tag); err != nil {
		t.Fatal(err)
	}
	b := accept(t, cal)
	b.SetTone(900)
	hear(t, a, fJoin, "join beep when the callee answers")
	hearsAllButSelf(t, a, 0, []float64{900}, 1500, 1e9)
	quiet(t, a, 440)
}

func TestEarlyMediaReplacesRingback(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "early", phone.Config{})
	cal := testutil.ListenCallee(t, phone.CalleeConfig{Ring: 3 * time.Second, EarlyMedia: true})
	tag := srv.dialout(t, dialReq("early", cal))
	early, err := cal.EarlyPhone(testutil.Ctx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	early.SetTone(1100)
	hear(t, a, 1100, "early media from the callee")
	if lvl := a.Level(440, 300*time.Millisecond); lvl > 300 {
		t.Fatalf("ringback (%.0f) during early media", lvl)
	}
	srv.waitDialStatuses(t, tag, "1 INVITE", "2 183 Session Progress")
	accept(t, cal)
	srv.waitDialStatuses(t, tag, "1 INVITE", "2 183 Session Progress", "3 200 OK")
}

func TestMuteAndUnmuteADialledCall(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "mutedial", phone.Config{})
	cal := testutil.ListenCallee(t, phone.CalleeConfig{})
	tag := srv.dialout(t, dialReq("mutedial", cal))
	b := accept(t, cal)
	b.SetTone(800)
	hear(t, a, 800, "the callee")
	if err := srv.Registry().Mute("mutedial", tag); err != nil {
		t.Fatal(err)
	}
	quiet(t, a, 800)
	if err := srv.Registry().Unmute("mutedial", tag); err != nil {
		t.Fatal(err)
	}
	hear(t, a, 800, "the callee after unmute")
	// The callee hangs up: 4 "BYE", then 5 "".
	if err := b.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK", "4 BYE", "5 ")
}

func TestDialoutGuard(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		c.Webconference.DialoutAllowedPattern = `^[0-9]+@`
		c.Webconference.MaxDialouts = 1
		if err := c.Validate(); err != nil {
			panic(err)
		}
	})
	cal := testutil.ListenCallee(t, phone.CalleeConfig{NoAnswer: true})
	if _, err := srv.Dialout(context.Background(), dialReq("guard", cal)); !errors.Is(err, sipapp.ErrDialoutNotAllowed) {
		t.Fatalf("callee bob@...: %v, want not allowed by dialout_allowed_re", err)
	}
	req := dialReq("guard", cal)
	req.Callee = "0049301234"
	srv.Registry().Open("guard", "")
	srv.dialout(t, req)
	if _, err := srv.Dialout(context.Background(), req); !errors.Is(err, sipapp.ErrDialoutNotAllowed) {
		t.Fatalf("second concurrent dialout: %v, want not allowed by max_dialouts", err)
	}
}
