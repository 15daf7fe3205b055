package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// shortTimers turns on RFC 4028 with intervals of seconds, not minutes
// (the config file insists on Min-SE >= 90 s; the server takes what it is
// given).
func shortTimers(c *conf.Config) {
	w := &c.Webconference
	w.EnableSessionTimer = true
	w.SessionExpires, w.MinimumTimer, w.MaximumTimer = 2*time.Second, time.Second, 10*time.Second
	w.SessionRefreshMethod = "UPDATE_FALLBACK_INVITE"
}

func methods(p *phone.Phone) []string {
	var m []string
	for _, r := range p.Requests() {
		m = append(m, string(r.Method))
	}
	return m
}

func TestSessionTimerWeRefresh(t *testing.T) {
	t.Parallel()
	for _, refuseUpdate := range []bool{false, true} {
		name := "with UPDATE"
		if refuseUpdate {
			name = "falling back to re-INVITE"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, shortTimers)
			// A phone without timer support: the server must refresh.
			a := srv.direct(t, "st", phone.Config{RefuseUpdate: refuseUpdate})
			want := "UPDATE"
			if refuseUpdate {
				want = "INVITE"
			}
			testutil.WaitFor(t, 5*time.Second, "a refresh from the server", func() bool {
				for _, r := range a.Requests() {
					if string(r.Method) == want {
						h := r.GetHeader("Session-Expires")
						return h != nil && strings.HasPrefix(h.Value(), "2")
					}
				}
				return false
			})
			// Refreshed sessions live on past their interval.
			testutil.WaitFor(t, 5*time.Second, "a second refresh", func() bool {
				n := 0
				for _, m := range methods(a) {
					if m == want {
						n++
					}
				}
				return n >= 2
			})
			select {
			case <-a.Done():
				t.Fatalf("hung up although refreshed: %v", methods(a))
			default:
			}
		})
	}
}

func TestSessionTimerPeerStopsRefreshing(t *testing.T) {
	t.Parallel()
	srv := start(t, shortTimers)
	a := srv.direct(t, "st2", phone.Config{Headers: []sip.Header{
		sip.NewHeader("Supported", "timer"),
		sip.NewHeader("Session-Expires", "2;refresher=uac"),
	}})
	// The phone never refreshes: after 2 s less a third, BYE.
	waitDone(t, a, 5*time.Second, "an expired session")
	if m := methods(a); len(m) != 1 || m[0] != "BYE" {
		t.Fatalf("requests from the server %v, want only the BYE (the phone is the refresher)", m)
	}
}

func TestSessionTimerTooSmall(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		shortTimers(c)
		c.Webconference.MinimumTimer = 3 * time.Second
		c.Webconference.SessionExpires = 4 * time.Second
	})
	_, err := phone.Dial(testutil.Ctx(t, 5*time.Second), phone.Config{Server: srv.addr, User: "conference",
		Headers: []sip.Header{sip.NewHeader("Session-Expires", "1"), sip.NewHeader("Supported", "timer")}})
	var se *phone.StatusError
	if !errors.As(err, &se) || se.Code != 422 {
		t.Fatalf("got %v, want 422 Session Interval Too Small", err)
	}
	testutil.WaitFor(t, 3*time.Second, "no call left", func() bool { return srv.ActiveCalls() == 0 })
}
