package meetings

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"webconf/conf"
	"webconf/rpc/node"
	"webconf/sipapp/notify"
	"webconf/test/testutil"
)

// outboxFakes stand in for the templates and transports: they record every
// message by Message-ID (or key) and refuse the addresses in refuse.
type outboxFakes struct {
	mu     sync.Mutex
	sent   map[string]int // Message-ID or key -> times
	to     []string
	refuse map[string]bool
}

func (f *outboxFakes) record(key, to string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse[to] {
		return fmt.Errorf("550 mailbox unavailable: %w", notify.ErrPermanent)
	}
	f.sent[key]++
	f.to = append(f.to, to)
	return nil
}

func (f *outboxFakes) SendEmail(_ context.Context, e notify.Email) error {
	return f.record(e.MessageID, e.To)
}

func (f *outboxFakes) SendSMS(_ context.Context, s notify.SMS) error { return f.record(s.Key, s.To) }

func (f *outboxFakes) Email(k notify.Kind, _ string, _ notify.Party, m notify.Meeting) (string, string, string, string, error) {
	return "webconf@example.org", string(k) + ": " + m.Name, m.URL, "<p>" + m.URL + "</p>", nil
}

func (f *outboxFakes) SMS(k notify.Kind, _ string, _ notify.Party, m notify.Meeting) (string, string, error) {
	return "webconf", string(k) + " " + m.URL, nil
}

func (f *outboxFakes) count() (ids, sends int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.sent {
		ids++
		sends += n
	}
	return ids, sends
}

// statuses is participant/mechanism/kind/status of each message, and the
// reasons of the failed ones.
func statuses(items []map[string]any) map[string]int {
	out := map[string]int{}
	for _, it := range items {
		out[fmt.Sprintf("%s/%s", it["kind"], it["status"])]++
	}
	return out
}

func TestRESTInvitations(t *testing.T) {
	fakes := &outboxFakes{sent: map[string]int{}, refuse: map[string]bool{"bad@example.org": true}}
	cfg := testConfig(t)
	cfg.Meetings.InviteMechanisms = []string{"email", "sms"}
	cfg.Meetings.LinkHost = "https://meet.example.org"
	h := startOpts(t, cfg, node.Options{Notify: node.NotifyParts{Renderer: fakes, Mailer: fakes, SMS: fakes}})
	_, tok := h.user(t, "alice", "meetings")
	_, other := h.user(t, "bob", "meetings")
	m := h.meeting(t, tok, map[string]any{"name": "Board", "participants": []map[string]any{
		{"name": "Ann", "email": "ann@example.org", "phone": "+34600000001"},
		{"name": "Bad", "email": "bad@example.org"},
	}})
	path := "/api/v1/users/me/meetings/" + m["uuid"].(string) + "/invitations"

	var items []map[string]any
	testutil.WaitFor(t, 10*time.Second, "the invitations to be sent or failed", func() bool {
		items = restItems(t, h.must(t, 200, "GET", path, bearer(tok), nil))
		s := statuses(items)
		return s["invitation/sent"] == 2 && s["invitation/failed"] == 1
	})
	for _, it := range items {
		p := it["participant"].(map[string]any)
		if it["attempts"].(float64) != 1 {
			t.Errorf("%v: attempts %v, want 1", p, it["attempts"])
		}
		switch it["status"] {
		case "failed":
			if p["email"] != "bad@example.org" || !strings.Contains(fmt.Sprint(it["reason"]), "550 mailbox unavailable") || it["mechanism"] != "email" {
				t.Errorf("failed message %v", it)
			}
		case "sent":
			restTime(t, it, "sent_at")
			restNull(t, it, "next_attempt")
			restNull(t, it, "reason")
		}
	}
	if ids, sends := fakes.count(); ids != 2 || sends != 2 {
		t.Fatalf("%d Message-IDs in %d sends, want 2 and 2", ids, sends)
	}

	// Someone else's meeting, or none, is 404; so is its resend.
	h.restFail(t, 404, "not-found", "GET", path, bearer(other), nil)
	h.restFail(t, 404, "not-found", "POST", path+"/resend", bearer(other), nil)
	h.restFail(t, 404, "not-found", "GET", "/api/v1/users/me/meetings/"+restUUID()+"/invitations", bearer(tok), nil)

	// Resend: 202 and new messages, with new Message-IDs, then sent.
	fakes.mu.Lock()
	delete(fakes.refuse, "bad@example.org")
	fakes.mu.Unlock()
	r := h.must(t, 202, "POST", path+"/resend", bearer(tok), nil)
	if n := len(restItems(t, r)); n != 6 {
		t.Fatalf("resend answered %d messages, want 6\n%s", n, r.Body)
	}
	testutil.WaitFor(t, 10*time.Second, "the resent invitations", func() bool {
		s := statuses(restItems(t, h.must(t, 200, "GET", path, bearer(tok), nil)))
		return s["invitation/sent"] == 5 && s["invitation/failed"] == 1
	})
	if ids, sends := fakes.count(); ids != 5 || sends != 5 {
		t.Fatalf("%d Message-IDs in %d sends, want 5 and 5", ids, sends)
	}

	// An update adding a participant invites only them; send_invites
	// invites everyone.
	h.must(t, 200, "PUT", "/api/v1/users/me/meetings/"+m["uuid"].(string), bearer(tok), map[string]any{"participants": []map[string]any{
		{"name": "Ann", "email": "ann@example.org", "phone": "+34600000001"},
		{"name": "Bad", "email": "bad@example.org"},
		{"name": "Cy", "phone": "+34600000002"},
	}})
	testutil.WaitFor(t, 10*time.Second, "Cy's invitation", func() bool {
		_, sends := fakes.count()
		return sends == 6
	})
	h.must(t, 200, "PUT", "/api/v1/users/me/meetings/"+m["uuid"].(string), bearer(tok), map[string]any{"send_invites": true})
	testutil.WaitFor(t, 10*time.Second, "everyone's invitation", func() bool {
		_, sends := fakes.count()
		return sends == 10
	})
}

func TestRESTInvitationsOff(t *testing.T) {
	h := start(t, func(c *conf.Config) { c.Meetings.InviteMechanisms = nil })
	_, tok := h.user(t, "alice", "meetings")
	m := h.meeting(t, tok, map[string]any{"participants": []map[string]any{{"name": "Ann", "email": "ann@example.org"}}})
	path := "/api/v1/users/me/meetings/" + m["uuid"].(string) + "/invitations"
	if items := restItems(t, h.must(t, 200, "GET", path, bearer(tok), nil)); len(items) != 0 {
		t.Errorf("invitations with no mechanism: %v", items)
	}
	h.restFail(t, 412, "invitations-off", "POST", path+"/resend", bearer(tok), nil)
}
