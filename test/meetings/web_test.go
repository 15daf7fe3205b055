package meetings

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"webconf/conf"
	"webconf/rpc/events"
)

// ---------------------------------------------------------------------------
// Event tickets (POST /api/v1/events/tickets): how a browser opens the
// event stream without a token or a password in the URL.

func (h *harness) ticket(t *testing.T, a auth) string {
	t.Helper()
	r := h.must(t, 201, "POST", "/api/v1/events/tickets", a, nil)
	tk, _ := r.JSON["ticket"].(string)
	if len(tk) < 32 || r.JSON["expires_in"] != 30.0 {
		t.Fatalf("ticket answer: %s", r.Body)
	}
	return tk
}

func TestEventTickets(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, alice := h.user(t, "alice", "meetings")
	_, bob := h.user(t, "bob", "meetings")

	// Only with credentials in the header.
	h.restUnauthorized(t, "Bearer", "POST", "/api/v1/events/tickets", nil, nil)
	h.restUnauthorized(t, "Basic", "POST", "/api/v1/events/tickets", basic("admin", "wrong"), nil)
	if r := h.restRaw(t, "POST", "/api/v1/events/tickets?token="+url.QueryEscape(alice), nil, nil, nil); r.Status != 401 {
		t.Fatalf("a token in the query bought a ticket: %d %s", r.Status, r.Body)
	}

	// The operator's ticket sees everything; bob's only his own.
	opTicket := h.ticket(t, operator)
	ops := h.openStream(t, "ticket="+opTicket, nil)
	bobs := h.openStream(t, "ticket="+h.ticket(t, bearer(bob)), nil)
	m := h.meeting(t, alice, nil)
	ops.expect(t, "operator", ev(events.RoomCreated, "room", m["exten"]))
	h.sawNothing(t, bobs, bob, "bob")

	// Once only; unknown tickets are refused before the upgrade.
	for _, q := range []string{"ticket=" + opTicket, "ticket=nonsense", "ticket=" + opTicket + "x"} {
		c, resp, err := h.dialStream(t, q, nil)
		if err == nil {
			c.CloseNow()
			t.Fatalf("events?%s: upgraded", q)
		}
		if resp == nil || resp.StatusCode != 401 {
			t.Fatalf("events?%s: %v, want 401", q, resp)
		}
	}

	// An operator's ticket is good from our own origin only (it stands
	// for HTTP Basic); a user's from any, as the token is.
	evil := http.Header{"Origin": {"http://evil.example"}}
	if c, resp, err := h.dialStream(t, "ticket="+h.ticket(t, operator), evil); err == nil || resp == nil || resp.StatusCode != 403 {
		if c != nil {
			c.CloseNow()
		}
		t.Fatalf("operator ticket from another origin: %v %v, want 403", resp, err)
	}
	c, resp, err := h.dialStream(t, "ticket="+h.ticket(t, bearer(alice)), evil)
	if err != nil {
		t.Fatalf("user ticket from another origin: %v %v", resp, err)
	}
	c.CloseNow()

	// A ticket of a user deleted since is refused.
	carolUUID, carol := h.user(t, "carol", "meetings")
	tk := h.ticket(t, bearer(carol))
	h.must(t, 204, "DELETE", "/api/v1/users/"+carolUUID, operator, nil)
	if _, resp, err := h.dialStream(t, "ticket="+tk, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("ticket of a deleted user: %v %v, want 401", resp, err)
	}
}

// ---------------------------------------------------------------------------
// JSON-RPC on the HTTP origin (POST /api/v1/jsonrpc).

func (h *harness) jsonRPC(t *testing.T, method string, params ...any) reply {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":%q,"params":%s}`, method, mustJSON(t, params))
	r := h.restRaw(t, "POST", "/api/v1/jsonrpc", nil, map[string]string{"Content-Type": "application/json"}, []byte(body))
	if r.Status != 200 || r.JSON["jsonrpc"] != "2.0" || r.JSON["id"] != 7.0 {
		t.Fatalf("jsonrpc %s: %d %s", method, r.Status, r.Body)
	}
	return r
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJSONRPCOverHTTP(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Limits.RPCFailures = 3 })

	// The same table: roomCreate, then listRooms with the master password.
	created := fmt.Sprint(h.jsonRPC(t, "roomCreate", "4711").JSON["result"])
	if !strings.HasPrefix(created, "[0 OK ") {
		t.Fatalf("roomCreate: %s", created)
	}
	if got := fmt.Sprint(h.jsonRPC(t, "listRooms", master).JSON["result"]); !strings.HasPrefix(got, "[200 [4711]") {
		t.Fatalf("listRooms: %s", got)
	}
	// JSON-RPC errors are 200 with an error object.
	if e := fmt.Sprint(h.jsonRPC(t, "noSuchMethod", 1).JSON["error"]); !strings.Contains(e, "-32601") {
		t.Fatalf("unknown method: %s", e)
	}
	// Only application/json: a form or text/plain (what another origin
	// may send without a preflight) is 415 and calls nothing.
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", ""} {
		r := h.restRaw(t, "POST", "/api/v1/jsonrpc", nil, map[string]string{"Content-Type": ct},
			[]byte(`{"jsonrpc":"2.0","id":1,"method":"roomCreate","params":["4712"]}`))
		restErr(t, r, 415, "unsupported-media-type")
	}
	if got := fmt.Sprint(h.jsonRPC(t, "listRooms", master).JSON["result"]); !strings.HasPrefix(got, "[200 [4711]") {
		t.Fatalf("a refused request made a room: %s", got)
	}

	// The same guards: wrong master passwords spend the address's
	// rpc_failures budget, then even the right one fails, here and on
	// the XML-RPC port (one budget per client).
	for i := 0; i < 3; i++ {
		if got := fmt.Sprint(h.jsonRPC(t, "listRooms", "wrong").JSON["result"]); !strings.HasPrefix(got, "[407 ") {
			t.Fatalf("wrong password %d: %s", i, got)
		}
	}
	if got := fmt.Sprint(h.jsonRPC(t, "listRooms", master).JSON["result"]); !strings.HasPrefix(got, "[407 ") {
		t.Fatalf("a banned client listed rooms: %s", got)
	}
	if !h.node.SIP.Guards().RPC.Banned("127.0.0.1") {
		t.Fatal("the client is not banned")
	}
}

func TestJSONRPCOverHTTPOff(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.XMLRPC.JSONRPC = false })
	r := h.restRaw(t, "POST", "/api/v1/jsonrpc", nil, map[string]string{"Content-Type": "application/json"},
		[]byte(`{"jsonrpc":"2.0","id":1,"method":"roomCreate","params":["4711"]}`))
	restErr(t, r, 404, "not-found")
	if _, ok := h.node.SIP.Registry().Room("4711"); ok {
		t.Fatal("the room was made")
	}
}

// ---------------------------------------------------------------------------
// The pages: join page at a meeting's link, the console, their assets.

var assetRE = regexp.MustCompile(`src="(/assets/[0-9a-f]+/join\.js)"`)

func TestJoinPages(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		c.Meetings.LinkHost = "https://meet.example"
		c.Meetings.LinkFormat = "user"
		c.Meetings.PSTNExtension = "+34930000000"
		c.Meetings.PublicRooms = true
	})
	_, alice := h.user(t, "alice", "meetings")
	m := h.meeting(t, alice, map[string]any{"name": "Weekly <sync>"})
	uuid := m["uuid"].(string)
	if want := "https://meet.example/u/alice/" + uuid; m["url"] != want {
		t.Fatalf("url %v, want %s", m["url"], want)
	}

	for _, path := range []string{"/m/" + uuid, "/u/alice/" + uuid} {
		p := h.restRaw(t, "GET", path, nil, nil, nil)
		page := string(p.Body)
		if p.Status != 200 || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("GET %s: %d %s", path, p.Status, p.Header.Get("Content-Type"))
		}
		for _, want := range []string{"Weekly &lt;sync&gt;", `data-room="` + uuid + `"`, `data-meeting="` + uuid + `"`,
			"34930000000", `href="sip:` + m["exten"].(string) + "@", `<label for="name">`, `aria-live="polite"`} {
			if !strings.Contains(page, want) {
				t.Fatalf("GET %s lacks %q:\n%s", path, want, page)
			}
		}
		csp := p.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self' ws://" + h.node.HTTPAddr(), "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Fatalf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if cc := p.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Fatalf("GET %s: Cache-Control %q", path, cc)
		}
	}

	// Its script, cached for good under a versioned URL.
	page := string(h.restRaw(t, "GET", "/m/"+uuid, nil, nil, nil).Body)
	js := assetRE.FindStringSubmatch(page)
	if js == nil {
		t.Fatalf("no script in the page:\n%s", page)
	}
	a := h.restRaw(t, "GET", js[1], nil, nil, nil)
	if a.Status != 200 || !strings.HasPrefix(a.Header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(a.Header.Get("Cache-Control"), "immutable") || !strings.Contains(string(a.Body), "/webrtc`") {
		t.Fatalf("GET %s: %d %v", js[1], a.Status, a.Header)
	}
	for _, bad := range []string{"/assets/000000000000/join.js", strings.Replace(js[1], "join.js", "nope.js", 1), strings.Replace(js[1], "join.js", "join.html", 1)} {
		if r := h.restRaw(t, "GET", bad, nil, nil, nil); r.Status != 404 {
			t.Fatalf("GET %s: %d", bad, r.Status)
		}
	}

	// An unknown meeting: a 404 page that says so.
	nf := h.restRaw(t, "GET", "/m/00000000-0000-4000-8000-000000000000", nil, nil, nil)
	if nf.Status != 404 || !strings.Contains(string(nf.Body), "Meeting not found") {
		t.Fatalf("unknown meeting: %d\n%s", nf.Status, nf.Body)
	}

	// The console.
	c := h.restRaw(t, "GET", "/console", nil, nil, nil)
	if c.Status != 200 || !strings.Contains(string(c.Body), "console.js") || c.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /console: %d\n%s", c.Status, c.Body)
	}

	// The public room page is the join page too, its JSON unchanged
	// (TestRESTPublicRooms checks the rest).
	pr := h.restRaw(t, "GET", "/c/team-a", nil, nil, nil)
	if pr.Status != 200 || !strings.Contains(string(pr.Body), `data-room="c.team-a"`) || !strings.Contains(string(pr.Body), `id="join-form"`) ||
		pr.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /c/team-a: %d\n%s", pr.Status, pr.Body)
	}
}
