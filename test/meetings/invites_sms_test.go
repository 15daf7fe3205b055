package meetings

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"webconf/conf"
	"webconf/rpc/node"
	"webconf/test/testutil"
)

// gatewayRequest is one request the test SMS/push gateway received.
type gatewayRequest struct {
	Path   string
	Header http.Header
	Body   []byte
	Status int // what the gateway answered
}

// testGateway is an HTTP SMS and push gateway on loopback: it records
// every request and answers refuse[0] (then the next), else 200.
type testGateway struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []gatewayRequest
	refuse []int
	// The link shortener (Bitly v4's POST /v4/shorten): it answers
	// {"link": "https://sho.rt/<last 8 of the long link>"}, or 500 with
	// shortFail.
	shortFail bool
}

// shortLink is what the test shortener makes of long.
func shortLink(long string) string { return "https://sho.rt/" + long[len(long)-8:] }

func newTestGateway(t *testing.T) *testGateway {
	g := &testGateway{}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		g.mu.Lock()
		status := http.StatusOK
		if r.URL.Path == "/v4/shorten" {
			var req struct {
				LongURL string `json:"long_url"`
			}
			if g.shortFail || json.Unmarshal(body, &req) != nil || len(req.LongURL) < 8 || r.Header.Get("Authorization") != "Bearer bitly-t0ken" {
				status = http.StatusInternalServerError
			}
			g.reqs = append(g.reqs, gatewayRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: status})
			g.mu.Unlock()
			w.WriteHeader(status)
			if status == http.StatusOK {
				_ = json.NewEncoder(w).Encode(map[string]string{"link": shortLink(req.LongURL)})
			}
			return
		}
		if len(g.refuse) > 0 {
			status, g.refuse = g.refuse[0], g.refuse[1:]
		}
		g.reqs = append(g.reqs, gatewayRequest{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Status: status})
		g.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(g.Close)
	return g
}

// requests are those to paths starting with prefix.
func (g *testGateway) requests(prefix string) []gatewayRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []gatewayRequest
	for _, r := range g.reqs {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

type smsBody struct{ To, From, Text string }

// TestInvitationsBySMSAndPush: with inviteMechanisms[] = sms, [sms] a JSON
// gateway with basic auth and [push] a bearer-token push service, a
// meeting's phone participants get an SMS invitation (the gateway's
// 503 retried with the same idempotency key), then an SMS reminder
// remindBefore ahead; the participant who is a user also gets the push
// reminder with Quobis's fixed payload. With shortenerToken the SMS carry
// the shortened link; when the shortener fails, the long one.
func TestInvitationsBySMSAndPush(t *testing.T) {
	t.Parallel()
	gw := newTestGateway(t)
	cfg := testConfig(t)
	cfg.Meetings.InviteMechanisms = []string{"sms"}
	cfg.Meetings.LinkHost = "https://meet.example.org"
	cfg.Meetings.TemplatePath = ""
	cfg.Meetings.RemindBefore = 1
	cfg.SMS = conf.SMS{URL: gw.URL + "/sms/send", Method: "POST", Auth: "basic", Username: "gwuser", Password: "gw-s3cret",
		Body: `{"to": "{{to}}", "from": "{{from}}", "text": "{{text}}"}`, IdempotencyHeader: "Idempotency-Key", Timeout: 5 * time.Second}
	cfg.Push = conf.Push{URL: gw.URL + "/push/{{user}}", Token: "push-t0ken", Timeout: 5 * time.Second}
	cfg.Meetings.ShortenerToken, cfg.Meetings.ShortenerURL = "bitly-t0ken", gw.URL+"/v4/shorten"
	h := startOpts(t, cfg, node.Options{Notify: node.NotifyParts{RetryBase: 100 * time.Millisecond}})
	_, tok := h.user(t, "alice", "meetings")
	carol := h.must(t, 201, "POST", "/api/v1/users", operator, map[string]any{"username": "carol", "mobile_phone": "+34600000003", "capabilities": []string{}}).JSON["uuid"].(string)

	gw.mu.Lock()
	gw.refuse = []int{503} // the first SMS: retried with its key
	gw.mu.Unlock()
	since := time.Now().Add(63 * time.Second).Truncate(time.Second)
	m := h.meeting(t, tok, map[string]any{"name": "Stand-up «B»", "valid_since": since.UTC().Format(time.RFC3339),
		"participants": []map[string]any{{"name": "Carol", "phone": "+34600000003"}, {"name": "Dan", "phone": "+34600000004"}}})
	uuid, link := m["uuid"].(string), shortLink(m["url"].(string))

	// The invitations, then (2-3 s later) the reminders: SMS and push.
	testutil.WaitFor(t, 30*time.Second, "2 SMS invitations, 2 SMS reminders and a push", func() bool {
		return len(gw.requests("/sms/")) >= 5 && len(gw.requests("/push/")) >= 1
	})
	sms := gw.requests("/sms/")
	keys := map[string][]string{} // Idempotency-Key -> kinds of text
	var invited, reminded []string
	for i, r := range sms {
		if user, pass, ok := (&http.Request{Header: r.Header}).BasicAuth(); !ok || user != "gwuser" || pass != "gw-s3cret" {
			t.Errorf("SMS %d: basic auth %q/%q (%v)", i, user, pass, ok)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("SMS %d: Content-Type %q", i, ct)
		}
		var b smsBody
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("SMS %d: body is not the JSON template: %v\n%s", i, err, r.Body)
		}
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			t.Errorf("SMS %d: no Idempotency-Key", i)
		}
		if !strings.Contains(b.Text, "Stand-up «B»") || !strings.Contains(b.Text, link) {
			t.Errorf("SMS %d to %s: text lacks the name or %s:\n%s", i, b.To, link, b.Text)
		}
		switch {
		case strings.HasPrefix(b.Text, "Invitation: "):
			if r.Status == 200 {
				invited = append(invited, b.To)
			}
		case strings.HasPrefix(b.Text, "Reminder: "):
			reminded = append(reminded, b.To)
		default:
			t.Errorf("SMS %d: text %q", i, b.Text)
		}
		keys[key] = append(keys[key], b.To+":"+strings.Fields(b.Text)[0])
	}
	slices.Sort(invited)
	slices.Sort(reminded)
	if want := []string{"+34600000003", "+34600000004"}; !slices.Equal(invited, want) || !slices.Equal(reminded, want) {
		t.Errorf("SMS invitations sent to %v, reminders to %v; want both to %v", invited, reminded, want)
	}
	if sms[0].Status != 503 || len(keys[sms[0].Header.Get("Idempotency-Key")]) != 2 {
		t.Errorf("the refused SMS was not retried with its idempotency key: %v", keys)
	}
	if len(keys) != 4 {
		t.Errorf("%d idempotency keys for 4 messages: %v", len(keys), keys)
	}

	push := gw.requests("/push/")
	if len(push) != 1 {
		t.Fatalf("%d push requests, want 1 (Carol is the only user)", len(push))
	}
	p := push[0]
	var payload map[string]any
	if err := json.Unmarshal(p.Body, &payload); err != nil {
		t.Fatalf("push body: %v\n%s", err, p.Body)
	}
	want := map[string]any{"type": "meeting-reminder", "info": map[string]any{"id": uuid, "name": "Stand-up «B»"}}
	if gotJS, _ := json.Marshal(payload); string(gotJS) != string(must(json.Marshal(want))) {
		t.Errorf("push payload %s, want %s", p.Body, must(json.Marshal(want)))
	}
	if p.Path != "/push/"+carol || p.Header.Get("Authorization") != "Bearer push-t0ken" || p.Header.Get("X-Webconf-User") != carol ||
		p.Header.Get("Idempotency-Key") == "" || p.Header.Get("Content-Type") != "application/json" {
		t.Errorf("push request %s headers %v", p.Path, p.Header)
	}
	testutil.WaitFor(t, 5*time.Second, "GET .../invitations to show everything sent", func() bool {
		s := statuses(h.invitationItems(t, tok, uuid))
		return s["invitation/sent"] == 2 && s["reminder/sent"] == 3
	})

	// The shortener failing: the SMS carries the long link.
	gw.mu.Lock()
	gw.shortFail = true
	gw.mu.Unlock()
	m = h.meeting(t, tok, map[string]any{"name": "Open", "participants": []map[string]any{{"phone": "+34600000005"}}})
	var last smsBody
	testutil.WaitFor(t, 10*time.Second, "the SMS of a meeting whose link the shortener refuses", func() bool {
		sms := gw.requests("/sms/")
		_ = json.Unmarshal(sms[len(sms)-1].Body, &last)
		return last.To == "+34600000005"
	})
	if !strings.Contains(last.Text, m["url"].(string)) {
		t.Errorf("the shortener failed; the SMS should carry the long link %s:\n%s", m["url"], last.Text)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
