package meetings

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"webconf/conf"
)

// HTTP-level tests of the meetings REST API: every route with a success
// case and the error statuses it documents, over real HTTP against a
// running node.

var restDigits = regexp.MustCompile(`^[0-9]+$`)

// restErr checks that r is an error answer with the status and code, in
// exactly the documented form {"error":{"code":string,"message":string}},
// and that the message contains each of msgHas (the field at fault).
func restErr(t testing.TB, r reply, status int, code string, msgHas ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d\n%s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer has Content-Type %q, want application/json\n%s", ct, r.Body)
	}
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &outer); err != nil {
		t.Fatalf("error body is not a JSON object: %v\n%s", err, r.Body)
	}
	if len(outer) != 1 || outer["error"] == nil {
		t.Fatalf("error body must have exactly the key \"error\"\n%s", r.Body)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(outer["error"], &inner); err != nil {
		t.Fatalf("error.error is not an object: %v\n%s", err, r.Body)
	}
	if len(inner) != 2 {
		t.Fatalf("error object must have exactly code and message\n%s", r.Body)
	}
	for _, k := range []string{"code", "message"} {
		var s string
		raw, ok := inner[k]
		if !ok || !bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) || json.Unmarshal(raw, &s) != nil || s == "" {
			t.Fatalf("error.%s must be a non-empty string\n%s", k, r.Body)
		}
	}
	if code != "" && r.ErrorCode() != code {
		t.Fatalf("error code %q, want %q\n%s", r.ErrorCode(), code, r.Body)
	}
	for _, s := range msgHas {
		if !strings.Contains(r.ErrorMessage(), s) {
			t.Fatalf("error message %q does not name %q", r.ErrorMessage(), s)
		}
	}
}

// restFail sends a request that must fail with the status and code.
func (h *harness) restFail(t testing.TB, status int, code, method, path string, a auth, body any, msgHas ...string) reply {
	t.Helper()
	r := h.do(t, method, path, a, body)
	if r.Status != status {
		t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.Status, status, r.Body)
	}
	restErr(t, r, status, code, msgHas...)
	return r
}

// restUnauthorized sends a request that must be refused 401 with a
// challenge of the scheme.
func (h *harness) restUnauthorized(t testing.TB, scheme, method, path string, a auth, body any) {
	t.Helper()
	h.restUnauthorizedAs(t, "unauthorized", scheme, method, path, a, body)
}

// restUnauthorizedAs is restUnauthorized with another error code.
func (h *harness) restUnauthorizedAs(t testing.TB, code, scheme, method, path string, a auth, body any) {
	t.Helper()
	r := h.restFail(t, 401, code, method, path, a, body)
	if c := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(c, scheme+" ") {
		t.Fatalf("%s %s: WWW-Authenticate %q, want a %s challenge", method, path, c, scheme)
	}
}

// restRaw sends a request with the given headers and body as they are
// (do always sends application/json).
func (h *harness) restRaw(t testing.TB, method, path string, a auth, hdr map[string]string, body []byte) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, h.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if a != nil {
		a(req)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{Status: res.StatusCode, Header: res.Header, Body: data}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && method != http.MethodHead {
		if err := json.Unmarshal(data, &r.JSON); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v\n%s", method, path, err, data)
		}
	}
	return r
}

// restUUID is a random lower-case version 4 UUID.
func restUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	s := hex.EncodeToString(u[:])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// restStr is m[key], which must be a string.
func restStr(t testing.TB, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok {
		t.Fatalf("%s is %#v, want a string", key, m[key])
	}
	return s
}

// restNull checks that m has key and that it is null.
func restNull(t testing.TB, m map[string]any, key string) {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Fatalf("%s is missing, want null", key)
	}
	if v != nil {
		t.Fatalf("%s is %#v, want null", key, v)
	}
}

// restTime parses an RFC 3339 field.
func restTime(t testing.TB, m map[string]any, key string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, restStr(t, m, key))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return tm
}

// restItems is the items of a {items,total} list, checked for agreement.
func restItems(t testing.TB, r reply) []map[string]any {
	t.Helper()
	raw, ok := r.JSON["items"].([]any)
	if !ok {
		t.Fatalf("items is %#v, want a list\n%s", r.JSON["items"], r.Body)
	}
	total, ok := r.JSON["total"].(float64)
	if !ok || int(total) != len(raw) {
		t.Fatalf("total is %#v with %d items\n%s", r.JSON["total"], len(raw), r.Body)
	}
	out := make([]map[string]any, len(raw))
	for i, x := range raw {
		out[i] = x.(map[string]any)
	}
	return out
}

// restUUIDs are the uuid fields of list items.
func restUUIDs(t testing.TB, items []map[string]any) []string {
	t.Helper()
	var out []string
	for _, it := range items {
		out = append(out, restStr(t, it, "uuid"))
	}
	slices.Sort(out)
	return out
}

// restOwners is a meeting's owner_uuids.
func restOwners(t testing.TB, m map[string]any) []string {
	t.Helper()
	raw, ok := m["owner_uuids"].([]any)
	if !ok {
		t.Fatalf("owner_uuids is %#v, want a list", m["owner_uuids"])
	}
	var out []string
	for _, o := range raw {
		out = append(out, o.(string))
	}
	slices.Sort(out)
	return out
}

func restSorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// ---------------------------------------------------------------------------
// Users (operator routes).

func TestRESTUsers(t *testing.T) {
	t.Parallel()
	h := start(t, nil)

	r := h.must(t, 201, "POST", "/api/v1/users", operator, map[string]any{
		"username": "alice", "email": "alice@example.com", "mobile_phone": "+34600111222",
		"alias": "Alice", "capabilities": []string{"meetings", "sip", "meetings"},
	})
	id := restStr(t, r.JSON, "uuid")
	tok := restStr(t, r.JSON, "token")
	if len(tok) < 20 {
		t.Fatalf("token %q is too short to be a secret", tok)
	}
	if loc := r.Header.Get("Location"); loc != "/api/v1/users/"+id {
		t.Fatalf("Location %q, want /api/v1/users/%s", loc, id)
	}
	if restStr(t, r.JSON, "username") != "alice" || restStr(t, r.JSON, "role") != "user" ||
		restStr(t, r.JSON, "mobile_phone") != "+34600111222" || restStr(t, r.JSON, "email") != "alice@example.com" {
		t.Fatalf("created user: %s", r.Body)
	}
	if caps := fmt.Sprint(r.JSON["capabilities"]); caps != "[meetings sip]" {
		t.Fatalf("capabilities %s, want [meetings sip] (duplicates dropped)", caps)
	}
	restTime(t, r.JSON, "created")
	restNull(t, r.JSON, "last_login")

	// The token is shown once: the user as read back has none.
	g := h.must(t, 200, "GET", "/api/v1/users/"+id, operator, nil)
	if _, ok := g.JSON["token"]; ok {
		t.Fatalf("GET of the user shows a token: %s", g.Body)
	}
	if restStr(t, g.JSON, "uuid") != id || restStr(t, g.JSON, "username") != "alice" {
		t.Fatalf("GET user: %s", g.Body)
	}

	// The token works as a bearer token, and using it sets last_login.
	me := h.must(t, 200, "GET", "/api/v1/users/me", bearer(tok), nil)
	if restStr(t, me.JSON, "uuid") != id {
		t.Fatalf("GET users/me: %s", me.Body)
	}
	if _, ok := me.JSON["token"]; ok {
		t.Fatalf("users/me shows a token: %s", me.Body)
	}
	g = h.must(t, 200, "GET", "/api/v1/users/"+id, operator, nil)
	restTime(t, g.JSON, "last_login")

	// The listing shows the user, without tokens.
	h.user(t, "bob")
	l := h.must(t, 200, "GET", "/api/v1/users", operator, nil)
	items := restItems(t, l)
	var names []string
	for _, it := range items {
		names = append(names, restStr(t, it, "username"))
		if _, ok := it["token"]; ok {
			t.Fatalf("listing shows a token: %s", l.Body)
		}
	}
	if fmt.Sprint(names) != "[alice bob]" {
		t.Fatalf("listed %v, want [alice bob]", names)
	}

	// 400s, each naming the field.
	const users = "/api/v1/users"
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"capabilities": []string{}}, "username")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": nil}, "username")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "has space"}, "username")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": ""}, "username")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "c", "capabilities": []string{"fly"}}, "capabilities")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "c", "mobile_phone": "600111222"}, "mobile_phone")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "c", "landline": "+0123"}, "landline")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "c", "email": "not an email"}, "email")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "c", "role": "god"}, "role")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "c", "password": "x"}, "password")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": 5}, "username")
	h.restFail(t, 400, "invalid-field", "POST", users, operator, map[string]any{"username": "c", "capabilities": "meetings"}, "capabilities")
	h.restFail(t, 400, "invalid-json", "POST", users, operator, `{"username":`)
	h.restFail(t, 400, "invalid-json", "POST", users, operator, `{"username" "c"}`)
	h.restFail(t, 400, "invalid-json", "POST", users, operator, `{"username":"c"} {}`)
	h.restFail(t, 400, "invalid-json", "POST", users, operator, `["c"]`)
	h.restFail(t, 400, "invalid-json", "POST", users, operator, []byte{})

	// 409: the username is taken.
	h.restFail(t, 409, "conflict", "POST", users, operator, map[string]any{"username": "alice"}, "username")

	// 415: not JSON.
	for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded"} {
		r := h.restRaw(t, "POST", users, operator, map[string]string{"Content-Type": ct}, []byte(`{"username":"carol"}`))
		restErr(t, r, 415, "unsupported-media-type")
	}
	// A charset parameter is still JSON.
	r = h.restRaw(t, "POST", users, operator, map[string]string{"Content-Type": "application/json; charset=utf-8"}, []byte(`{"username":"carol"}`))
	if r.Status != 201 {
		t.Fatalf("POST with application/json; charset=utf-8: %d\n%s", r.Status, r.Body)
	}

	// 413: a body over 1 MiB, by one byte; exactly 1 MiB is read (and
	// refused for its overlong username).
	sized := func(n int) []byte {
		b := []byte(`{"username":"` + strings.Repeat("a", n-len(`{"username":""}`)) + `"}`)
		if len(b) != n {
			t.Fatalf("body of %d bytes, want %d", len(b), n)
		}
		return b
	}
	r = h.restRaw(t, "POST", users, operator, map[string]string{"Content-Type": "application/json"}, sized(1<<20+1))
	restErr(t, r, 413, "payload-too-large")
	r = h.restRaw(t, "POST", users, operator, map[string]string{"Content-Type": "application/json"}, sized(1<<20))
	restErr(t, r, 400, "invalid-field", "username")

	// None of the refused bodies made a user.
	if n := len(restItems(t, h.must(t, 200, "GET", users, operator, nil))); n != 3 {
		t.Fatalf("%d users after the refused creations, want 3 (alice, bob, carol)", n)
	}

	// GET and DELETE of a user that does not exist.
	h.restFail(t, 404, "not-found", "GET", "/api/v1/users/"+restUUID(), operator, nil)
	h.restFail(t, 404, "not-found", "DELETE", "/api/v1/users/"+restUUID(), operator, nil)

	// DELETE: 204 with no body, then 404, and the token is dead.
	d := h.must(t, 204, "DELETE", "/api/v1/users/"+id, operator, nil)
	if len(d.Body) != 0 {
		t.Fatalf("204 with a body: %q", d.Body)
	}
	h.restFail(t, 404, "not-found", "GET", "/api/v1/users/"+id, operator, nil)
	h.restFail(t, 404, "not-found", "DELETE", "/api/v1/users/"+id, operator, nil)
	h.restUnauthorized(t, "Bearer", "GET", "/api/v1/users/me", bearer(tok), nil)
}

func TestRESTUsersUnauthorized(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "alice", "meetings")

	body := map[string]any{"username": "mallory"}
	// Operator routes: Basic admin:master_password only.
	h.restUnauthorized(t, "Basic", "POST", "/api/v1/users", nil, body)
	h.restUnauthorized(t, "Basic", "POST", "/api/v1/users", basic("admin", "wrong"), body)
	h.restUnauthorized(t, "Basic", "POST", "/api/v1/users", basic("root", master), body)
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", bearer(tok), nil)
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users/"+restUUID(), basic("admin", ""), nil)
	h.restUnauthorized(t, "Basic", "DELETE", "/api/v1/users/"+restUUID(), nil, nil)
	// User routes: a bearer token only.
	h.restUnauthorized(t, "Bearer", "GET", "/api/v1/users/me/meetings", nil, nil)
	h.restUnauthorized(t, "Bearer", "GET", "/api/v1/users/me/meetings", bearer("not-a-token"), nil)
	h.restUnauthorized(t, "Bearer", "POST", "/api/v1/users/me/meetings", operator, map[string]any{"name": "x"})

	// Nothing was created by the refused requests.
	if n := len(restItems(t, h.must(t, 200, "GET", "/api/v1/users", operator, nil))); n != 1 {
		t.Fatalf("%d users, want 1", n)
	}
	if n := len(restItems(t, h.must(t, 200, "GET", "/api/v1/users/me/meetings", bearer(tok), nil))); n != 0 {
		t.Fatalf("%d meetings, want 0", n)
	}
}

// TestRESTOperatorOffWithMasterPasswordOff: master_password=off turns the
// operator routes off (SEMS's empty master_password); "off" is no password.
func TestRESTOperatorOffWithMasterPasswordOff(t *testing.T) {
	t.Parallel()
	var dir string
	h := start(t, func(c *conf.Config) { c.Webconference.MasterPassword = "off"; dir = c.Server.DataDir })
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", basic("admin", "off"), nil)
	h.restUnauthorized(t, "Basic", "POST", "/api/v1/users", basic("admin", "off"), map[string]any{"username": "alice"})
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", basic("admin", ""), nil)
	h.restUnauthorized(t, "Basic", "POST", "/api/v1/users", basic("admin", ""), map[string]any{"username": "alice"})
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", basic("admin", master), nil)
	h.restUnauthorized(t, "Basic", "PUT", "/api/v1/ingresses/http", basic("admin", ""), map[string]any{"uri": "https://x.example"})
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", nil, nil)
	// Routes without credentials still answer.
	h.must(t, 200, "GET", "/api/v1/openapi.json", nil, nil)
	// And no password was made.
	if _, err := os.Stat(filepath.Join(dir, conf.MasterPasswordFile)); !os.IsNotExist(err) {
		t.Fatalf("master_password=off made %s: %v", conf.MasterPasswordFile, err)
	}
}

func TestRESTBanAfterFailures(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Limits.RPCFailures = 3 })
	_, tok := h.user(t, "alice", "meetings")
	h.must(t, 200, "GET", "/api/v1/users", operator, nil)

	// Three wrong credentials of any kind spend the budget...
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", basic("admin", "guess1"), nil)
	h.restUnauthorized(t, "Bearer", "GET", "/api/v1/users/me", bearer("guess2"), nil)
	h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", basic("admin", "guess3"), nil)
	// ... after which even the right ones are refused.
	h.restFail(t, 429, "too-many-failures", "GET", "/api/v1/users", operator, nil)
	h.restFail(t, 429, "too-many-failures", "POST", "/api/v1/users", operator, map[string]any{"username": "bob"})
	h.restFail(t, 429, "too-many-failures", "GET", "/api/v1/users/me/meetings", bearer(tok), nil)
	h.restFail(t, 429, "too-many-failures", "GET", "/api/v1/users", basic("admin", "guess4"), nil)
	// Routes that ask for no credentials are not affected.
	h.must(t, 200, "GET", "/api/v1/openapi.json", nil, nil)
}

func TestRESTDeleteUserCascade(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	alice, aliceTok := h.user(t, "alice", "meetings")
	bob, bobTok := h.user(t, "bob", "meetings")

	alone := h.meeting(t, aliceTok, map[string]any{"name": "alice alone"})
	shared := h.meeting(t, aliceTok, map[string]any{"name": "shared", "owner_uuids": []string{bob}})
	if got := restOwners(t, shared); !slices.Equal(got, restSorted(alice, bob)) {
		t.Fatalf("shared meeting owners %v, want alice and bob", got)
	}
	bobs := h.meeting(t, bobTok, map[string]any{"name": "bob's"})
	aloneID, sharedID := restStr(t, alone, "uuid"), restStr(t, shared, "uuid")

	h.must(t, 204, "DELETE", "/api/v1/users/"+alice, operator, nil)

	// The meeting alice alone owned is gone, for guests too.
	h.restFail(t, 404, "not-found", "GET", "/api/v1/guests/me/meetings/"+aloneID, nil, nil)
	// The shared one stays with bob as its only owner.
	g := h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+sharedID, bearer(bobTok), nil)
	if got := restOwners(t, g.JSON); !slices.Equal(got, []string{bob}) {
		t.Fatalf("shared meeting owners after deleting alice: %v, want [%s]", got, bob)
	}
	items := restItems(t, h.must(t, 200, "GET", "/api/v1/users/me/meetings", bearer(bobTok), nil))
	if got := restUUIDs(t, items); !slices.Equal(got, restSorted(sharedID, restStr(t, bobs, "uuid"))) {
		t.Fatalf("bob's meetings %v", got)
	}
	h.restUnauthorized(t, "Bearer", "GET", "/api/v1/users/me/meetings", bearer(aliceTok), nil)
}

// ---------------------------------------------------------------------------
// Meetings.

func TestRESTMeetingCreate(t *testing.T) {
	t.Parallel()
	const link = "https://meet.example.com"
	h := start(t, func(c *conf.Config) {
		c.Meetings.MeetingTTL = time.Hour
		c.Meetings.LinkHost = link
	})
	alice, tok := h.user(t, "alice", "meetings")

	before := time.Now().UTC().Truncate(time.Second)
	r := h.must(t, 201, "POST", "/api/v1/users/me/meetings", bearer(tok), map[string]any{"name": "Weekly"})
	after := time.Now().UTC()
	m := r.JSON
	id := restStr(t, m, "uuid")
	if loc := r.Header.Get("Location"); loc != "/api/v1/users/me/meetings/"+id {
		t.Fatalf("Location %q", loc)
	}
	if restStr(t, m, "name") != "Weekly" {
		t.Fatalf("name: %s", r.Body)
	}
	if got := restOwners(t, m); !slices.Equal(got, []string{alice}) {
		t.Fatalf("owner_uuids %v, want [%s]", got, alice)
	}
	exten := restStr(t, m, "exten")
	if !restDigits.MatchString(exten) {
		t.Fatalf("exten %q is not all digits", exten)
	}
	creds := restStr(t, m, "guest_sip_authorization")
	dec, err := base64.StdEncoding.DecodeString(creds)
	if err != nil {
		t.Fatalf("guest_sip_authorization %q is not base64: %v", creds, err)
	}
	user, pass, ok := strings.Cut(string(dec), ":")
	if !ok || user == "" || pass == "" {
		t.Fatalf("guest_sip_authorization decodes to %q, want user:password", dec)
	}
	if m["persistent"] != false || m["require_authorization"] != false || m["sip_dialin"] != true {
		t.Fatalf("persistent, require_authorization, sip_dialin: %s", r.Body)
	}
	created := restTime(t, m, "creation_time")
	if created.Before(before) || created.After(after) {
		t.Fatalf("creation_time %v not between %v and %v", created, before, after)
	}
	if exp := restTime(t, m, "expires_at"); !exp.Equal(created.Add(time.Hour)) {
		t.Fatalf("expires_at %v, want creation_time + meeting_ttl = %v", exp, created.Add(time.Hour))
	}
	if restStr(t, m, "language") != "en" || m["max_participants"] != float64(100) {
		t.Fatalf("language, max_participants defaults: %s", r.Body)
	}
	if lobby, _ := m["lobby"].(map[string]any); len(lobby) != 2 || lobby["state"] != float64(0) || lobby["timer"] != nil {
		t.Fatalf("lobby %#v, want {state 0, timer null}", m["lobby"])
	}
	if u := restStr(t, m, "url"); u != link+"/m/"+id {
		t.Fatalf("url %q, want %s/m/%s", u, link, id)
	}
	if want := "sip:" + exten + "@" + h.node.SIP.Addr(); m["sip_uri"] != want {
		t.Fatalf("sip_uri %v, want %s", m["sip_uri"], want)
	}
	restNull(t, m, "ingress_http_uri")
	restNull(t, m, "valid_since")
	restNull(t, m, "valid_until")
	restNull(t, m, "dialin_number")
	if p, ok := m["participants"].([]any); !ok || len(p) != 0 {
		t.Fatalf("participants %#v, want []", m["participants"])
	}

	// What the Location names reads back the same.
	g := h.must(t, 200, "GET", r.Header.Get("Location"), bearer(tok), nil)
	if !bytes.Equal(g.Body, r.Body) {
		t.Fatalf("GET differs from the create answer:\n%s\n%s", g.Body, r.Body)
	}

	// Once the ingress is set, meetings carry it.
	const ingress = "https://ingress.example.com/base"
	h.must(t, 200, "PUT", "/api/v1/ingresses/http", operator, map[string]any{"uri": ingress})
	g = h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+id, bearer(tok), nil)
	if g.JSON["ingress_http_uri"] != ingress {
		t.Fatalf("ingress_http_uri %v, want %s", g.JSON["ingress_http_uri"], ingress)
	}

	// persistent: no expiry. require_authorization: no credentials.
	p := h.meeting(t, tok, map[string]any{"persistent": true})
	if p["persistent"] != true {
		t.Fatalf("persistent: %v", p)
	}
	restNull(t, p, "expires_at")
	ra := h.meeting(t, tok, map[string]any{"require_authorization": true})
	if ra["require_authorization"] != true {
		t.Fatalf("require_authorization: %v", ra)
	}
	restNull(t, ra, "guest_sip_authorization")
	if restStr(t, ra, "exten") == exten || restStr(t, p, "exten") == exten {
		t.Fatalf("two meetings share an exten")
	}

	// Every field a client may set, round trip. sip_dialin needs the sip
	// capability, as PUT .../webinar/sip does: alice has only meetings.
	since := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	until := since.Add(2 * time.Hour)
	timer := time.Now().Add(3 * time.Hour).Unix()
	nMeetings := len(h.must(t, 200, "GET", "/api/v1/users/me/meetings", bearer(tok), nil).JSON["items"].([]any))
	// A value that would change it (the default is on) is refused; the
	// value it has may be sent back, as a client PUTs back what it read.
	h.restUnauthorizedAs(t, "no-sip-capability", "Bearer", "POST", "/api/v1/users/me/meetings", bearer(tok),
		map[string]any{"name": "No SIP", "sip_dialin": false})
	h.restUnauthorizedAs(t, "no-sip-capability", "Bearer", "PUT", "/api/v1/users/me/meetings/"+id, bearer(tok),
		map[string]any{"sip_dialin": false})
	h.must(t, 200, "PUT", "/api/v1/users/me/meetings/"+id, bearer(tok), map[string]any{"sip_dialin": true})
	if n := len(h.must(t, 200, "GET", "/api/v1/users/me/meetings", bearer(tok), nil).JSON["items"].([]any)); n != nMeetings {
		t.Fatalf("refused creations with sip_dialin made meetings: %d, want %d", n, nMeetings)
	}
	if g := h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+id, bearer(tok), nil); g.JSON["sip_dialin"] != true {
		t.Fatalf("a refused update changed sip_dialin: %s", g.Body)
	}
	_, sipTok := h.user(t, "alice-sip", "meetings", "sip")
	full := h.meeting(t, sipTok, map[string]any{
		"name": "Full", "language": "es", "max_participants": 7,
		"valid_since": since.Format(time.RFC3339), "valid_until": until.Format(time.RFC3339),
		"participants": []map[string]any{{"name": "Carol", "email": "carol@example.com", "phone": "+441234567890"}},
		"lobby":        map[string]any{"state": 1, "timer": timer},
		"sip_dialin":   false,
	})
	if full["language"] != "es" || full["max_participants"] != float64(7) || full["sip_dialin"] != false {
		t.Fatalf("full meeting: %v", full)
	}
	if !restTime(t, full, "valid_since").Equal(since) || !restTime(t, full, "valid_until").Equal(until) {
		t.Fatalf("valid_since/valid_until: %v %v", full["valid_since"], full["valid_until"])
	}
	if lobby := full["lobby"].(map[string]any); lobby["state"] != float64(1) || lobby["timer"] != float64(timer) {
		t.Fatalf("lobby %v, want state 1 timer %d", lobby, timer)
	}
	ps := full["participants"].([]any)
	if len(ps) != 1 || fmt.Sprint(ps[0]) != "map[email:carol@example.com name:Carol phone:+441234567890]" {
		t.Fatalf("participants %v", ps)
	}

	// Read-only fields in a body are accepted and ignored.
	ro := h.must(t, 201, "POST", "/api/v1/users/me/meetings", bearer(tok), map[string]any{
		"name": "ro", "uuid": id, "exten": exten, "creation_time": "2000-01-01T00:00:00Z",
		"ingress_http_uri": "https://evil.example", "guest_sip_authorization": "eDp5",
		"url": "https://evil.example/m/x", "expires_at": "2000-01-01T00:00:00Z", "dialin_number": "123",
		"sip_uri": "sip:evil@example.com",
	}).JSON
	if ro["uuid"] == id || ro["exten"] == exten || ro["guest_sip_authorization"] == "eDp5" ||
		ro["ingress_http_uri"] != ingress || restTime(t, ro, "creation_time").Year() == 2000 ||
		restTime(t, ro, "expires_at").Year() == 2000 || ro["url"] != link+"/m/"+restStr(t, ro, "uuid") ||
		ro["sip_uri"] != "sip:"+restStr(t, ro, "exten")+"@"+h.node.SIP.Addr() || ro["dialin_number"] != nil {
		t.Fatalf("read-only fields were taken from the body: %v", ro)
	}
	// The meeting whose uuid and exten were sent is untouched.
	g2 := h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+id, bearer(tok), nil)
	if g2.JSON["name"] != "Weekly" || g2.JSON["exten"] != exten {
		t.Fatalf("the first meeting changed: %s", g2.Body)
	}
}

func TestRESTMeetingURLByUser(t *testing.T) {
	t.Parallel()
	const link = "http://meet.example.com:8443/app"
	h := start(t, func(c *conf.Config) {
		c.Meetings.LinkHost = link
		c.Meetings.LinkFormat = "user"
	})
	// linkFormat user: the creator's alias (or username), escaped, then
	// the uuid.
	r := h.must(t, 201, "POST", "/api/v1/users", operator, map[string]any{"username": "alice", "alias": "Alice Smith", "capabilities": []string{"meetings"}})
	m := h.meeting(t, restStr(t, r.JSON, "token"), nil)
	if want := link + "/u/Alice%20Smith/" + restStr(t, m, "uuid"); m["url"] != want {
		t.Fatalf("url %v, want %s", m["url"], want)
	}
	_, tok := h.user(t, "bob", "meetings")
	m = h.meeting(t, tok, nil)
	if want := link + "/u/bob/" + restStr(t, m, "uuid"); m["url"] != want {
		t.Fatalf("url %v, want %s", m["url"], want)
	}
}

func TestRESTMeetingValidation(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Meetings.MaxParticipants = 10 })
	_, tok := h.user(t, "alice", "meetings")
	_, noCap := h.user(t, "bob")
	const path = "/api/v1/users/me/meetings"

	// 403 without the meetings capability; the user may still list.
	h.restFail(t, 403, "forbidden", "POST", path, bearer(noCap), map[string]any{"name": "x"})
	if n := len(restItems(t, h.must(t, 200, "GET", path, bearer(noCap), nil))); n != 0 {
		t.Fatalf("bob has %d meetings", n)
	}

	// Without linkHost, url is null; the cap is also the default.
	m := h.meeting(t, tok, nil)
	restNull(t, m, "url")
	if m["max_participants"] != float64(10) {
		t.Fatalf("max_participants default %v, want the server cap 10", m["max_participants"])
	}
	h.meeting(t, tok, map[string]any{"max_participants": 10})
	h.meeting(t, tok, map[string]any{"max_participants": 1})

	bad := []struct {
		body  any
		code  string
		field string
	}{
		{map[string]any{}, "invalid-field", "name"},
		{map[string]any{"name": nil}, "invalid-field", "name"},
		{map[string]any{"name": ""}, "invalid-field", "name"},
		{map[string]any{"name": 5}, "invalid-field", "name"},
		{map[string]any{"name": "x", "valid_since": "2030-01-02T10:00:00Z", "valid_until": "2030-01-02T09:00:00Z"}, "invalid-field", "valid_until"},
		{map[string]any{"name": "x", "valid_since": "2030-01-02T10:00:00Z", "valid_until": "2030-01-02T10:00:00Z"}, "invalid-field", "valid_until"},
		{map[string]any{"name": "x", "participants": []map[string]any{{"name": "a", "phone": "0044123"}}}, "invalid-field", "participants[0].phone"},
		{map[string]any{"name": "x", "participants": []map[string]any{{"name": "a"}, {"email": "nope"}}}, "invalid-field", "participants[1].email"},
		{map[string]any{"name": "x", "participants": []map[string]any{{}}}, "invalid-field", "participants[0]"},
		{map[string]any{"name": "x", "language": "xx"}, "invalid-field", "language"},
		{map[string]any{"name": "x", "max_participants": 0}, "invalid-field", "max_participants"},
		{map[string]any{"name": "x", "max_participants": 11}, "invalid-field", "max_participants"},
		{map[string]any{"name": "x", "max_participants": -1}, "invalid-field", "max_participants"},
		{map[string]any{"name": "x", "max_participants": "5"}, "invalid-field", "max_participants"},
		{map[string]any{"name": "x", "lobby": map[string]any{"state": 2}}, "invalid-field", "lobby.state"},
		{map[string]any{"name": "x", "lobby": map[string]any{}}, "invalid-field", "lobby.state"},
		{map[string]any{"name": "x", "lobby": map[string]any{"state": 1, "timer": 1}}, "invalid-field", "lobby.timer"},
		{map[string]any{"name": "x", "lobby": map[string]any{"state": "1"}}, "invalid-field", "lobby.state"},
		{map[string]any{"name": "x", "lobby": nil}, "invalid-field", "lobby"},
		{map[string]any{"name": "x", "valid_since": "tomorrow"}, "invalid-field", "valid_since"},
		{map[string]any{"name": "x", "valid_until": "2030-01-02 10:00"}, "invalid-field", "valid_until"},
		{map[string]any{"name": "x", "valid_since": 1893456000}, "invalid-field", "valid_since"},
		{map[string]any{"name": "x", "persistent": "yes"}, "invalid-field", "persistent"},
		{map[string]any{"name": "x", "persistent": nil}, "invalid-field", "persistent"},
		{map[string]any{"name": "x", "owner_uuids": []string{restUUID()}}, "invalid-field", "owner_uuids"},
		{map[string]any{"name": "x", "colour": "red"}, "invalid-field", "colour"},
		{`{"name":"x"`, "invalid-json", ""},
	}
	for _, c := range bad {
		t.Run(fmt.Sprint(c.body), func(t *testing.T) {
			var has []string
			if c.field != "" {
				has = append(has, c.field)
			}
			h.restFail(t, 400, c.code, "POST", path, bearer(tok), c.body, has...)
		})
	}
	// Only the three good meetings were made.
	if n := len(restItems(t, h.must(t, 200, "GET", path, bearer(tok), nil))); n != 3 {
		t.Fatalf("%d meetings after the refused ones, want 3", n)
	}
	// A meeting body over 1 MiB, and one that is not JSON.
	big := []byte(`{"name":"` + strings.Repeat("a", 1<<20) + `"}`)
	restErr(t, h.restRaw(t, "POST", path, bearer(tok), map[string]string{"Content-Type": "application/json"}, big), 413, "payload-too-large")
	restErr(t, h.restRaw(t, "POST", path, bearer(tok), map[string]string{"Content-Type": "text/plain"}, []byte(`{"name":"x"}`)), 415, "unsupported-media-type")
}

func TestRESTMeetingCRUD(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	alice, aTok := h.user(t, "alice", "meetings")
	bob, bTok := h.user(t, "bob", "meetings")
	const path = "/api/v1/users/me/meetings"

	m1 := h.meeting(t, aTok, map[string]any{"name": "one", "language": "ca", "participants": []map[string]any{{"name": "Dan"}}})
	m2 := h.meeting(t, aTok, map[string]any{"name": "two"})
	m3 := h.meeting(t, bTok, map[string]any{"name": "three"})
	id1, id2, id3 := restStr(t, m1, "uuid"), restStr(t, m2, "uuid"), restStr(t, m3, "uuid")

	// The list shows only the caller's meetings, oldest first.
	l := h.must(t, 200, "GET", path, bearer(aTok), nil)
	items := restItems(t, l)
	if got := restUUIDs(t, items); !slices.Equal(got, restSorted(id1, id2)) {
		t.Fatalf("alice lists %v, want %s and %s", got, id1, id2)
	}
	if l.JSON["total"] != float64(2) || len(l.JSON) != 2 {
		t.Fatalf("list answer %s, want {items,total:2}", l.Body)
	}
	if got := restUUIDs(t, restItems(t, h.must(t, 200, "GET", path, bearer(bTok), nil))); !slices.Equal(got, []string{id3}) {
		t.Fatalf("bob lists %v, want [%s]", got, id3)
	}

	// Another user's meeting is as absent as an unknown one.
	for _, id := range []string{id3, restUUID(), "not-a-uuid"} {
		h.restFail(t, 404, "not-found", "GET", path+"/"+id, bearer(aTok), nil)
		h.restFail(t, 404, "not-found", "PUT", path+"/"+id, bearer(aTok), map[string]any{"name": "stolen"})
		h.restFail(t, 404, "not-found", "DELETE", path+"/"+id, bearer(aTok), nil)
	}
	if g := h.must(t, 200, "GET", path+"/"+id3, bearer(bTok), nil); g.JSON["name"] != "three" {
		t.Fatalf("bob's meeting changed: %s", g.Body)
	}

	// PUT changes only the fields given.
	before := h.must(t, 200, "GET", path+"/"+id1, bearer(aTok), nil).JSON
	u := h.must(t, 200, "PUT", path+"/"+id1, bearer(aTok), map[string]any{"name": "renamed", "max_participants": 5}).JSON
	for k, v := range before {
		switch k {
		case "name":
			if u[k] != "renamed" {
				t.Fatalf("name %v, want renamed", u[k])
			}
		case "max_participants":
			if u[k] != float64(5) {
				t.Fatalf("max_participants %v, want 5", u[k])
			}
		default:
			if fmt.Sprint(u[k]) != fmt.Sprint(v) {
				t.Fatalf("PUT of name and max_participants changed %s: %v -> %v", k, v, u[k])
			}
		}
	}
	if g := h.must(t, 200, "GET", path+"/"+id1, bearer(aTok), nil).JSON; fmt.Sprint(g) != fmt.Sprint(u) {
		t.Fatalf("GET after PUT differs from the PUT answer:\n%v\n%v", g, u)
	}
	// A refused PUT changes nothing.
	h.restFail(t, 400, "invalid-field", "PUT", path+"/"+id1, bearer(aTok), map[string]any{"name": "x", "language": "xx"}, "language")
	h.restFail(t, 400, "invalid-field", "PUT", path+"/"+id1, bearer(aTok), map[string]any{"name": nil}, "name")
	if g := h.must(t, 200, "GET", path+"/"+id1, bearer(aTok), nil).JSON; g["name"] != "renamed" || g["language"] != "ca" {
		t.Fatalf("a refused PUT changed the meeting: %v", g)
	}
	// valid_until is checked against the stored valid_since.
	h.must(t, 200, "PUT", path+"/"+id1, bearer(aTok), map[string]any{"valid_since": "2031-05-01T10:00:00+02:00"})
	h.restFail(t, 400, "invalid-field", "PUT", path+"/"+id1, bearer(aTok), map[string]any{"valid_until": "2031-05-01T07:59:59Z"}, "valid_until")
	u = h.must(t, 200, "PUT", path+"/"+id1, bearer(aTok), map[string]any{"valid_until": "2031-05-01T08:00:01Z"}).JSON
	if u["valid_since"] != "2031-05-01T08:00:00Z" || u["valid_until"] != "2031-05-01T08:00:01Z" {
		t.Fatalf("valid_since %v valid_until %v, want them in UTC", u["valid_since"], u["valid_until"])
	}
	// null clears a time.
	u = h.must(t, 200, "PUT", path+"/"+id1, bearer(aTok), map[string]any{"valid_since": nil, "valid_until": nil}).JSON
	restNull(t, u, "valid_since")
	restNull(t, u, "valid_until")
	// The caller stays an owner whatever owner_uuids says.
	u = h.must(t, 200, "PUT", path+"/"+id1, bearer(aTok), map[string]any{"owner_uuids": []string{bob}}).JSON
	if got := restOwners(t, u); !slices.Equal(got, restSorted(alice, bob)) {
		t.Fatalf("owners after PUT [bob]: %v, want alice and bob", got)
	}
	h.must(t, 200, "GET", path+"/"+id1, bearer(bTok), nil)
	u = h.must(t, 200, "PUT", path+"/"+id1, bearer(bTok), map[string]any{"owner_uuids": []string{}}).JSON
	if got := restOwners(t, u); !slices.Equal(got, []string{bob}) {
		t.Fatalf("owners after bob's PUT []: %v, want [bob]", got)
	}
	h.restFail(t, 404, "not-found", "GET", path+"/"+id1, bearer(aTok), nil)
	// Making it persistent drops the expiry; making it not persistent
	// again sets it from the creation time.
	u = h.must(t, 200, "PUT", path+"/"+id1, bearer(bTok), map[string]any{"persistent": true}).JSON
	restNull(t, u, "expires_at")
	u = h.must(t, 200, "PUT", path+"/"+id1, bearer(bTok), map[string]any{"persistent": false}).JSON
	if !restTime(t, u, "expires_at").Equal(restTime(t, u, "creation_time").Add(48 * time.Hour)) {
		t.Fatalf("expires_at %v with creation_time %v and the default 48h TTL", u["expires_at"], u["creation_time"])
	}

	// DELETE: 204, then 404, for guests too.
	d := h.must(t, 204, "DELETE", path+"/"+id2, bearer(aTok), nil)
	if len(d.Body) != 0 {
		t.Fatalf("204 with a body: %q", d.Body)
	}
	h.restFail(t, 404, "not-found", "GET", path+"/"+id2, bearer(aTok), nil)
	h.restFail(t, 404, "not-found", "DELETE", path+"/"+id2, bearer(aTok), nil)
	h.restFail(t, 404, "not-found", "GET", "/api/v1/guests/me/meetings/"+id2, nil, nil)
	if n := len(restItems(t, h.must(t, 200, "GET", path, bearer(aTok), nil))); n != 0 {
		t.Fatalf("alice still lists %d meetings", n)
	}
}

func TestRESTParticipants(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, aTok := h.user(t, "alice", "meetings")
	_, bTok := h.user(t, "bob", "meetings")
	id := restStr(t, h.meeting(t, aTok, nil), "uuid")
	base := "/api/v1/users/me/meetings/" + id + "/participants"

	r := h.must(t, 200, "GET", base, bearer(aTok), nil)
	if items := restItems(t, r); len(items) != 0 {
		t.Fatalf("participants of a meeting nobody dialled: %s", r.Body)
	}
	h.restFail(t, 404, "no-such-participant", "DELETE", base+"/nobody", bearer(aTok), nil)
	// Someone else's meeting, or none.
	h.restFail(t, 404, "not-found", "GET", base, bearer(bTok), nil)
	h.restFail(t, 404, "not-found", "DELETE", base+"/nobody", bearer(bTok), nil)
	h.restFail(t, 404, "not-found", "GET", "/api/v1/users/me/meetings/"+restUUID()+"/participants", bearer(aTok), nil)
	h.restUnauthorized(t, "Bearer", "GET", base, nil, nil)
}

// ---------------------------------------------------------------------------
// Guest authorizations.

func TestRESTAuthorizations(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, aTok := h.user(t, "alice", "meetings")
	_, bTok := h.user(t, "bob", "meetings")

	m := h.meeting(t, aTok, map[string]any{"require_authorization": true})
	id := restStr(t, m, "uuid")
	// The credentials an accepted guest gets are the meeting's, which the
	// owner sees only once require_authorization is off.
	open := h.must(t, 200, "PUT", "/api/v1/users/me/meetings/"+id, bearer(aTok), map[string]any{"require_authorization": false}).JSON
	creds := restStr(t, open, "guest_sip_authorization")
	h.must(t, 200, "PUT", "/api/v1/users/me/meetings/"+id, bearer(aTok), map[string]any{"require_authorization": true})

	guest, guest2 := restUUID(), restUUID()
	gpath := func(g, meeting string) string {
		return "/api/v1/guests/" + g + "/meetings/" + meeting + "/authorizations"
	}

	// A guest asks: 201 pending, no credentials yet.
	r := h.must(t, 201, "POST", gpath(guest, id), nil, map[string]any{"guest_name": "Gina"})
	a := r.JSON
	aid := restStr(t, a, "uuid")
	if a["status"] != "pending" || a["guest_name"] != "Gina" || a["guest_uuid"] != guest || a["meeting_uuid"] != id {
		t.Fatalf("new authorization: %s", r.Body)
	}
	restTime(t, a, "creation_time")
	restNull(t, a, "guest_sip_authorization")

	// 400: guest_uuid not a UUID, guest_name empty or absent or wrong.
	h.restFail(t, 400, "invalid-field", "POST", gpath("not-a-uuid", id), nil, map[string]any{"guest_name": "Gina"}, "guest_uuid")
	h.restFail(t, 400, "invalid-field", "POST", gpath(guest, id), nil, map[string]any{"guest_name": ""}, "guest_name")
	h.restFail(t, 400, "invalid-field", "POST", gpath(guest, id), nil, map[string]any{}, "guest_name")
	h.restFail(t, 400, "invalid-field", "POST", gpath(guest, id), nil, map[string]any{"guest_name": 7}, "guest_name")
	h.restFail(t, 400, "invalid-field", "POST", gpath(guest, id), nil, map[string]any{"guest_name": "Gina", "x": 1}, "x")
	// 404: no such meeting.
	h.restFail(t, 404, "not-found", "POST", gpath(guest, restUUID()), nil, map[string]any{"guest_name": "Gina"})

	// The guest polls; another guest cannot see it.
	p := h.must(t, 200, "GET", gpath(guest, id)+"/"+aid, nil, nil)
	if p.JSON["status"] != "pending" {
		t.Fatalf("poll: %s", p.Body)
	}
	restNull(t, p.JSON, "guest_sip_authorization")
	h.restFail(t, 404, "not-found", "GET", gpath(guest2, id)+"/"+aid, nil, nil)
	h.restFail(t, 404, "not-found", "GET", gpath(guest, restUUID())+"/"+aid, nil, nil)
	h.restFail(t, 404, "not-found", "GET", gpath(guest, id)+"/"+restUUID(), nil, nil)

	// The owner lists and reads it.
	own := "/api/v1/users/me/meetings/" + id + "/authorizations"
	l := restItems(t, h.must(t, 200, "GET", own, bearer(aTok), nil))
	if len(l) != 1 || l[0]["uuid"] != aid || l[0]["status"] != "pending" {
		t.Fatalf("owner's list: %v", l)
	}
	restNull(t, l[0], "guest_sip_authorization")
	g := h.must(t, 200, "GET", own+"/"+aid, bearer(aTok), nil)
	if g.JSON["status"] != "pending" || g.JSON["guest_name"] != "Gina" {
		t.Fatalf("owner's get: %s", g.Body)
	}
	h.restFail(t, 404, "not-found", "GET", own+"/"+restUUID(), bearer(aTok), nil)
	h.restFail(t, 404, "not-found", "PUT", own+"/"+restUUID()+"/accept", bearer(aTok), nil)

	// Someone who does not own the meeting sees none of it.
	h.restFail(t, 404, "not-found", "GET", own, bearer(bTok), nil)
	h.restFail(t, 404, "not-found", "GET", own+"/"+aid, bearer(bTok), nil)
	h.restFail(t, 404, "not-found", "PUT", own+"/"+aid+"/accept", bearer(bTok), nil)
	h.restFail(t, 404, "not-found", "PUT", own+"/"+aid+"/reject", bearer(bTok), nil)
	h.restFail(t, 404, "not-found", "DELETE", own+"/"+aid, bearer(bTok), nil)
	h.restUnauthorized(t, "Bearer", "GET", own, nil, nil)
	if p := h.must(t, 200, "GET", gpath(guest, id)+"/"+aid, nil, nil); p.JSON["status"] != "pending" {
		t.Fatalf("a non-owner changed the request: %s", p.Body)
	}

	// Accept: the credentials appear for the owner and the guest.
	acc := h.must(t, 200, "PUT", own+"/"+aid+"/accept", bearer(aTok), nil)
	if acc.JSON["status"] != "accepted" || acc.JSON["guest_sip_authorization"] != creds {
		t.Fatalf("accepted: %s\nwant guest_sip_authorization %s", acc.Body, creds)
	}
	p = h.must(t, 200, "GET", gpath(guest, id)+"/"+aid, nil, nil)
	if p.JSON["status"] != "accepted" || p.JSON["guest_sip_authorization"] != creds {
		t.Fatalf("guest's poll after accept: %s", p.Body)
	}
	// Reject: they are gone again.
	rej := h.must(t, 200, "PUT", own+"/"+aid+"/reject", bearer(aTok), nil)
	if rej.JSON["status"] != "rejected" {
		t.Fatalf("rejected: %s", rej.Body)
	}
	restNull(t, rej.JSON, "guest_sip_authorization")
	p = h.must(t, 200, "GET", gpath(guest, id)+"/"+aid, nil, nil)
	if p.JSON["status"] != "rejected" {
		t.Fatalf("guest's poll after reject: %s", p.Body)
	}
	restNull(t, p.JSON, "guest_sip_authorization")

	// Delete: 204, then 404 everywhere.
	h.must(t, 204, "DELETE", own+"/"+aid, bearer(aTok), nil)
	h.restFail(t, 404, "not-found", "GET", own+"/"+aid, bearer(aTok), nil)
	h.restFail(t, 404, "not-found", "DELETE", own+"/"+aid, bearer(aTok), nil)
	h.restFail(t, 404, "not-found", "GET", gpath(guest, id)+"/"+aid, nil, nil)
	if l := restItems(t, h.must(t, 200, "GET", own, bearer(aTok), nil)); len(l) != 0 {
		t.Fatalf("list after delete: %v", l)
	}

	// Deleting the meeting deletes its requests.
	second := h.must(t, 201, "POST", gpath(guest, id), nil, map[string]any{"guest_name": "Gina"}).JSON
	h.must(t, 204, "DELETE", "/api/v1/users/me/meetings/"+id, bearer(aTok), nil)
	h.restFail(t, 404, "not-found", "GET", gpath(guest, id)+"/"+restStr(t, second, "uuid"), nil, nil)
	h.restFail(t, 404, "not-found", "POST", gpath(guest, id), nil, map[string]any{"guest_name": "Gina"})

	// A meeting that does not require authorization accepts at once.
	oid := restStr(t, h.meeting(t, aTok, nil), "uuid")
	oc := h.must(t, 201, "POST", gpath(guest2, oid), nil, map[string]any{"guest_name": "Otto"})
	if oc.JSON["status"] != "accepted" {
		t.Fatalf("request to an open meeting: %s", oc.Body)
	}
	guestView := h.must(t, 200, "GET", "/api/v1/guests/me/meetings/"+oid, nil, nil)
	if oc.JSON["guest_sip_authorization"] == nil || oc.JSON["guest_sip_authorization"] != guestView.JSON["guest_sip_authorization"] {
		t.Fatalf("accepted at once without the meeting's credentials: %s", oc.Body)
	}
}

func TestRESTAuthorizationQuota(t *testing.T) {
	t.Parallel()
	// Wazo's pending quota alone: the per-address budget would stop this
	// one client first.
	h := start(t, func(c *conf.Config) { c.Meetings.GuestRequestsPerSource = 0 })
	_, tok := h.user(t, "alice", "meetings")
	id := restStr(t, h.meeting(t, tok, map[string]any{"require_authorization": true}), "uuid")
	path := func() string { return "/api/v1/guests/" + restUUID() + "/meetings/" + id + "/authorizations" }

	var first string
	for i := range 128 {
		r := h.must(t, 201, "POST", path(), nil, map[string]any{"guest_name": fmt.Sprint("guest ", i)})
		if i == 0 {
			first = restStr(t, r.JSON, "uuid")
		}
	}
	h.restFail(t, 400, "quota-exceeded", "POST", path(), nil, map[string]any{"guest_name": "one too many"})
	own := "/api/v1/users/me/meetings/" + id + "/authorizations"
	if n := len(restItems(t, h.must(t, 200, "GET", own, bearer(tok), nil))); n != 128 {
		t.Fatalf("%d requests listed, want 128", n)
	}
	// Only pending requests count: deciding one makes room for one.
	h.must(t, 200, "PUT", own+"/"+first+"/reject", bearer(tok), nil)
	h.must(t, 201, "POST", path(), nil, map[string]any{"guest_name": "next"})
	h.restFail(t, 400, "quota-exceeded", "POST", path(), nil, map[string]any{"guest_name": "one too many"})
}

// TestRESTGuestRequestsBounded: anonymous authorization requests are rows
// kept 24 h, so all live ones count (not only pending ones), per meeting
// and per guest, and one address has a budget; beyond each, 429 in the
// API's error shape and nothing stored.
func TestRESTGuestRequestsBounded(t *testing.T) {
	t.Parallel()
	list := func(t *testing.T, h *harness, tok, id string) int {
		t.Helper()
		return len(restItems(t, h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+id+"/authorizations", bearer(tok), nil)))
	}
	post := func(t *testing.T, h *harness, guest, id string, status int) reply {
		t.Helper()
		return h.must(t, status, "POST", "/api/v1/guests/"+guest+"/meetings/"+id+"/authorizations", nil, map[string]any{"guest_name": "g"})
	}

	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		h := start(t, func(c *conf.Config) { c.Meetings.GuestRequestsPerSource = 20 })
		_, tok := h.user(t, "alice", "meetings")
		open := restStr(t, h.meeting(t, tok, nil), "uuid") // accepted at once: not pending
		for range 20 {
			post(t, h, restUUID(), open, 201)
		}
		for range 5 {
			r := post(t, h, restUUID(), open, 429)
			restErr(t, r, 429, "too-many-requests")
			if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Fatalf("429 without Retry-After: %q", ra)
			}
		}
		if n := list(t, h, tok, open); n != 20 {
			t.Fatalf("%d requests stored, want the 20 of the budget", n)
		}
		if v := h.metric(t, "webconf_guest_request_bans_total"); v != "1" {
			t.Fatalf("webconf_guest_request_bans_total %q, want 1", v)
		}
	})

	t.Run("per meeting", func(t *testing.T) {
		t.Parallel()
		h := start(t, func(c *conf.Config) {
			c.Meetings.GuestRequestsPerSource = 0
			c.Meetings.MaxAuthorizations = 30
		})
		_, tok := h.user(t, "alice", "meetings")
		open := restStr(t, h.meeting(t, tok, nil), "uuid")
		other := restStr(t, h.meeting(t, tok, nil), "uuid")
		for range 30 {
			post(t, h, restUUID(), open, 201)
		}
		restErr(t, post(t, h, restUUID(), open, 429), 429, "too-many-authorizations")
		if n := list(t, h, tok, open); n != 30 {
			t.Fatalf("%d requests stored, want 30", n)
		}
		// Another meeting has its own cap.
		post(t, h, restUUID(), other, 201)
	})

	t.Run("per guest", func(t *testing.T) {
		t.Parallel()
		h := start(t, func(c *conf.Config) {
			c.Meetings.GuestRequestsPerSource = 0
			c.Meetings.MaxAuthorizationsPerGuest = 3
		})
		_, tok := h.user(t, "alice", "meetings")
		a := restStr(t, h.meeting(t, tok, nil), "uuid")
		b := restStr(t, h.meeting(t, tok, map[string]any{"require_authorization": true}), "uuid")
		g := restUUID()
		post(t, h, g, a, 201)
		post(t, h, g, a, 201)
		post(t, h, g, b, 201)
		restErr(t, post(t, h, g, a, 429), 429, "too-many-authorizations")
		restErr(t, post(t, h, g, b, 429), 429, "too-many-authorizations")
		if n := list(t, h, tok, a) + list(t, h, tok, b); n != 3 {
			t.Fatalf("%d requests stored, want 3", n)
		}
		post(t, h, restUUID(), a, 201)
	})
}

// ---------------------------------------------------------------------------
// Guests' view, the ingress.

func TestRESTGuests(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "alice", "meetings")
	m := h.meeting(t, tok, map[string]any{"name": "Open"})
	id := restStr(t, m, "uuid")
	path := "/api/v1/guests/me/meetings/" + id

	g := h.must(t, 200, "GET", path, nil, nil)
	if g.JSON["uuid"] != id || g.JSON["name"] != "Open" || g.JSON["exten"] != m["exten"] {
		t.Fatalf("guest view: %s", g.Body)
	}
	if g.JSON["guest_sip_authorization"] != m["guest_sip_authorization"] || m["guest_sip_authorization"] == nil {
		t.Fatalf("guest view credentials %v, want the meeting's %v", g.JSON["guest_sip_authorization"], m["guest_sip_authorization"])
	}
	if g.JSON["sip_uri"] != m["sip_uri"] || g.JSON["require_authorization"] != false {
		t.Fatalf("guest view: %s", g.Body)
	}
	restNull(t, g.JSON, "ingress_http_uri")
	// The guest view gives away nothing of the owner's.
	for _, k := range []string{"owner_uuids", "participants", "guest_password", "guest_user"} {
		if _, ok := g.JSON[k]; ok {
			t.Fatalf("guest view shows %s: %s", k, g.Body)
		}
	}
	h.must(t, 200, "PUT", "/api/v1/ingresses/http", operator, map[string]any{"uri": "https://in.example.com"})
	if g := h.must(t, 200, "GET", path, nil, nil); g.JSON["ingress_http_uri"] != "https://in.example.com" {
		t.Fatalf("ingress_http_uri %v", g.JSON["ingress_http_uri"])
	}

	// Requiring authorization hides the credentials.
	ra := h.meeting(t, tok, map[string]any{"name": "Closed", "require_authorization": true})
	rg := h.must(t, 200, "GET", "/api/v1/guests/me/meetings/"+restStr(t, ra, "uuid"), nil, nil)
	restNull(t, rg.JSON, "guest_sip_authorization")
	if rg.JSON["require_authorization"] != true || rg.JSON["name"] != "Closed" || rg.JSON["exten"] != ra["exten"] {
		t.Fatalf("guest view of a closed meeting: %s", rg.Body)
	}

	// status
	s := h.must(t, 200, "GET", path+"/status", nil, nil)
	if len(s.JSON) != 1 || s.JSON["full"] != false {
		t.Fatalf("status %s, want {\"full\": false}", s.Body)
	}

	unknown := "/api/v1/guests/me/meetings/" + restUUID()
	h.restFail(t, 404, "not-found", "GET", unknown, nil, nil)
	h.restFail(t, 404, "not-found", "GET", unknown+"/status", nil, nil)
}

func TestRESTIngress(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	const path = "/api/v1/ingresses/http"
	h.restFail(t, 404, "not-configured", "GET", path, operator, nil)

	r := h.must(t, 200, "PUT", path, operator, map[string]any{"uri": "https://meet.example.com/x"})
	if len(r.JSON) != 1 || r.JSON["uri"] != "https://meet.example.com/x" {
		t.Fatalf("PUT ingress: %s", r.Body)
	}
	if g := h.must(t, 200, "GET", path, operator, nil); len(g.JSON) != 1 || g.JSON["uri"] != "https://meet.example.com/x" {
		t.Fatalf("GET ingress: %s", g.Body)
	}
	for _, body := range []any{
		map[string]any{"uri": "not a url"},
		map[string]any{"uri": "ftp://x.example"},
		map[string]any{"uri": "https://"},
		map[string]any{"uri": "https:///no-host"},
		map[string]any{"uri": "http://?q"},
		map[string]any{"uri": "https://user:secret@meet.example.com"},
		map[string]any{"uri": "https://exa mple.com"},
		map[string]any{"uri": ""},
		map[string]any{"uri": nil},
		map[string]any{},
		map[string]any{"uri": 1},
	} {
		h.restFail(t, 400, "invalid-field", "PUT", path, operator, body, "uri")
	}
	// The refused PUTs left it as it was.
	if g := h.must(t, 200, "GET", path, operator, nil); g.JSON["uri"] != "https://meet.example.com/x" {
		t.Fatalf("GET ingress after refused PUTs: %s", g.Body)
	}
	h.must(t, 200, "PUT", path, operator, map[string]any{"uri": "http://other.example"})
	if g := h.must(t, 200, "GET", path, operator, nil); g.JSON["uri"] != "http://other.example" {
		t.Fatalf("GET ingress after a second PUT: %s", g.Body)
	}

	_, tok := h.user(t, "alice", "meetings")
	h.restUnauthorized(t, "Basic", "GET", path, nil, nil)
	h.restUnauthorized(t, "Basic", "PUT", path, nil, map[string]any{"uri": "https://evil.example"})
	h.restUnauthorized(t, "Basic", "PUT", path, bearer(tok), map[string]any{"uri": "https://evil.example"})
	h.restUnauthorized(t, "Basic", "PUT", path, basic("admin", "nope"), map[string]any{"uri": "https://evil.example"})
	if g := h.must(t, 200, "GET", path, operator, nil); g.JSON["uri"] != "http://other.example" {
		t.Fatalf("an unauthorized PUT changed the ingress: %s", g.Body)
	}
}

// ---------------------------------------------------------------------------
// Webinar controls.

func TestRESTLobby(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, aTok := h.user(t, "alice", "meetings")
	_, bTok := h.user(t, "bob", "meetings")
	id := restStr(t, h.meeting(t, aTok, nil), "uuid")
	path := "/api/v1/meetings/" + id + "/webinar/lobby"
	get := func() map[string]any {
		return h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+id, bearer(aTok), nil).JSON["lobby"].(map[string]any)
	}

	// Lobby on with a timer: the answer is the meeting, and it reads back.
	timer := time.Now().Add(time.Hour).Unix()
	r := h.must(t, 200, "PUT", path, bearer(aTok), map[string]any{"state": 1, "timer": timer})
	if r.JSON["uuid"] != id {
		t.Fatalf("PUT lobby answers %s, want the meeting", r.Body)
	}
	if l := r.JSON["lobby"].(map[string]any); l["state"] != float64(1) || l["timer"] != float64(timer) {
		t.Fatalf("lobby %v, want state 1 timer %d", l, timer)
	}
	if l := get(); l["state"] != float64(1) || l["timer"] != float64(timer) {
		t.Fatalf("lobby read back %v", l)
	}
	// On without a timer, then off: the timer goes.
	r = h.must(t, 200, "PUT", path, bearer(aTok), map[string]any{"state": 1, "timer": nil})
	if l := r.JSON["lobby"].(map[string]any); l["state"] != float64(1) || l["timer"] != nil {
		t.Fatalf("lobby %v, want state 1 timer null", l)
	}
	r = h.must(t, 200, "PUT", path, bearer(aTok), map[string]any{"state": 0, "timer": timer})
	if l := r.JSON["lobby"].(map[string]any); l["state"] != float64(0) || l["timer"] != nil {
		t.Fatalf("lobby %v, want state 0 timer null", l)
	}
	if l := get(); l["state"] != float64(0) || l["timer"] != nil {
		t.Fatalf("lobby read back %v", l)
	}
	h.must(t, 200, "PUT", path, bearer(aTok), map[string]any{"state": 1})

	// 400s leave the lobby as it was.
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 2}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": -1}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": nil}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 1, "timer": time.Now().Add(-time.Minute).Unix()}, "timer")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 1, "timer": 0}, "timer")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": "1"}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": true}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 1, "timer": "soon"}, "timer")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 1, "when": 1}, "when")
	h.restFail(t, 400, "invalid-json", "PUT", path, bearer(aTok), `{"state":`)
	if l := get(); l["state"] != float64(1) || l["timer"] != nil {
		t.Fatalf("lobby after refused PUTs %v, want state 1 timer null", l)
	}

	// 403 for a user who does not own it, 404 for no such meeting.
	h.restFail(t, 403, "forbidden", "PUT", path, bearer(bTok), map[string]any{"state": 0})
	h.restFail(t, 404, "not-found", "PUT", "/api/v1/meetings/"+restUUID()+"/webinar/lobby", bearer(aTok), map[string]any{"state": 0})
	h.restUnauthorized(t, "Bearer", "PUT", path, nil, map[string]any{"state": 0})
	if l := get(); l["state"] != float64(1) {
		t.Fatalf("a non-owner changed the lobby: %v", l)
	}

	// Admit: nobody is waiting; non-owners may not; unknown meeting.
	admit := "/api/v1/meetings/" + id + "/webinar/lobby/admit/"
	h.restFail(t, 404, "no-such-participant", "POST", admit+"nobody", bearer(aTok), nil)
	h.restFail(t, 403, "forbidden", "POST", admit+"nobody", bearer(bTok), nil)
	h.restFail(t, 404, "not-found", "POST", "/api/v1/meetings/"+restUUID()+"/webinar/lobby/admit/nobody", bearer(aTok), nil)
	h.restUnauthorized(t, "Bearer", "POST", admit+"nobody", nil, nil)
}

func TestRESTSIPSwitch(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, aTok := h.user(t, "alice", "meetings", "sip")
	_, bTok := h.user(t, "bob", "meetings", "sip")
	_, cTok := h.user(t, "carol", "meetings")
	id := restStr(t, h.meeting(t, aTok, nil), "uuid")
	carols := restStr(t, h.meeting(t, cTok, nil), "uuid")
	path := "/api/v1/meetings/" + id + "/webinar/sip"
	dialin := func() any {
		return h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+id, bearer(aTok), nil).JSON["sip_dialin"]
	}

	r := h.must(t, 200, "PUT", path, bearer(aTok), map[string]any{"state": 0})
	if r.JSON["uuid"] != id || r.JSON["sip_dialin"] != false {
		t.Fatalf("state 0: %s", r.Body)
	}
	if dialin() != false {
		t.Fatal("sip_dialin reads back true after state 0")
	}
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 0}, "state")
	r = h.must(t, 200, "PUT", path, bearer(aTok), map[string]any{"state": 1})
	if r.JSON["sip_dialin"] != true || dialin() != true {
		t.Fatalf("state 1: %s", r.Body)
	}
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 1}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": 2}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": nil}, "state")
	h.restFail(t, 400, "invalid-field", "PUT", path, bearer(aTok), map[string]any{"state": "0"}, "state")
	if dialin() != true {
		t.Fatal("a refused PUT changed sip_dialin")
	}

	// 401: an owner without the sip capability. Every 401 carries a
	// challenge (RFC 9110 section 15.5.2); the token is good, so it does
	// not ask for another.
	h.restUnauthorizedAs(t, "no-sip-capability", "Bearer", "PUT", "/api/v1/meetings/"+carols+"/webinar/sip", bearer(cTok), map[string]any{"state": 0})
	if g := h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+carols, bearer(cTok), nil); g.JSON["sip_dialin"] != true {
		t.Fatalf("carol switched SIP without the capability: %s", g.Body)
	}
	// 403: not an owner, even with the capability.
	h.restFail(t, 403, "forbidden", "PUT", path, bearer(bTok), map[string]any{"state": 0})
	// 404: no such meeting.
	h.restFail(t, 404, "not-found", "PUT", "/api/v1/meetings/"+restUUID()+"/webinar/sip", bearer(aTok), map[string]any{"state": 0})
	h.restUnauthorized(t, "Bearer", "PUT", path, nil, map[string]any{"state": 0})
	if dialin() != true {
		t.Fatal("a refused PUT changed sip_dialin")
	}
}

func TestRESTSIPSwitchOffOnServer(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Meetings.SIPDialin = false })
	_, tok := h.user(t, "alice", "meetings", "sip")
	id := restStr(t, h.meeting(t, tok, nil), "uuid")
	path := "/api/v1/meetings/" + id + "/webinar/sip"
	h.restFail(t, 412, "sip-not-configured", "PUT", path, bearer(tok), map[string]any{"state": 0})
	h.restFail(t, 412, "sip-not-configured", "PUT", path, bearer(tok), map[string]any{"state": 1})
}

// ---------------------------------------------------------------------------
// Public rooms.

func TestRESTPublicRooms(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Meetings.PublicRooms = true })
	asJSON := map[string]string{"Accept": "application/json"}

	// Before anyone called: how to call, no room yet.
	r := h.restRaw(t, "GET", "/c/team-a_1", nil, asJSON, nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /c/team-a_1: %d %s\n%s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if r.JSON["identifier"] != "team-a_1" || r.JSON["open"] != false {
		t.Fatalf("public room: %s", r.Body)
	}
	restNull(t, r.JSON, "room")
	restNull(t, r.JSON, "room_sip_uri")
	if want := "sip:c.team-a_1@" + h.node.SIP.Addr(); r.JSON["sip_uri"] != want {
		t.Fatalf("sip_uri %v, want %s", r.JSON["sip_uri"], want)
	}
	p := h.restRaw(t, "GET", "/c/team-a_1", nil, map[string]string{"Accept": "text/html"}, nil)
	if p.Status != 200 || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(p.Body), `href="sip:c.team-a_1@`+h.node.SIP.Addr()+`"`) || strings.Contains(string(p.Body), "room number") {
		t.Fatalf("HTML page before the first call: %d %s\n%s", p.Status, p.Header.Get("Content-Type"), p.Body)
	}
	if n := h.node.SIP.Meetings().Counts().PublicRooms; n != 0 {
		t.Fatalf("GET made %d public rooms", n)
	}

	// Its first caller makes it (the SIP side; TestPublicRoom dials).
	made, err := h.node.SIP.Meetings().PublicRoom("team-a_1")
	if err != nil {
		t.Fatal(err)
	}
	r = h.restRaw(t, "GET", "/c/team-a_1", nil, map[string]string{"Accept": "text/html;q=0.5, application/json"}, nil)
	room := restStr(t, r.JSON, "room")
	if r.Status != 200 || r.JSON["open"] != true || room != made.Room || !restDigits.MatchString(room) ||
		r.JSON["room_sip_uri"] != "sip:"+room+"@"+h.node.SIP.Addr() {
		t.Fatalf("GET of the open room: %d %s, want room %s", r.Status, r.Body, made.Room)
	}
	// Another identifier is not open.
	if o := h.restRaw(t, "GET", "/c/other", nil, asJSON, nil); o.Status != 200 || o.JSON["open"] != false {
		t.Fatalf("/c/other: %d %s", o.Status, o.Body)
	}

	// Without Accept: application/json, an HTML page.
	p = h.restRaw(t, "GET", "/c/team-a_1", nil, map[string]string{"Accept": "text/html"}, nil)
	if p.Status != 200 || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("HTML page: %d %s", p.Status, p.Header.Get("Content-Type"))
	}
	page := string(p.Body)
	if !strings.Contains(page, room) || !strings.Contains(page, `href="sip:c.team-a_1@`+h.node.SIP.Addr()+`"`) {
		t.Fatalf("the page lacks the room number %s or a sip: link:\n%s", room, page)
	}
	if np := h.restRaw(t, "GET", "/c/team-a_1", nil, nil, nil); np.Status != 200 || !strings.HasPrefix(np.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("no Accept: %d %s", np.Status, np.Header.Get("Content-Type"))
	}

	// 400 for identifiers that are not letters, digits, - and _, 1-64,
	// and for meeting-guest.
	for _, id := range []string{"%21", "a%20b", "caf%C3%A9", "a.b", strings.Repeat("x", 65), "meeting-guest"} {
		restErr(t, h.restRaw(t, "GET", "/c/"+id, nil, asJSON, nil), 400, "invalid-field", "identifier")
	}
	if r := h.restRaw(t, "GET", "/c/"+strings.Repeat("x", 64), nil, asJSON, nil); r.Status != 200 {
		t.Fatalf("a 64-character identifier: %d %s", r.Status, r.Body)
	}
}

func TestRESTPublicRoomsOff(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	restErr(t, h.restRaw(t, "GET", "/c/team", nil, map[string]string{"Accept": "application/json"}, nil), 404, "not-found")
	restErr(t, h.restRaw(t, "GET", "/c/team", nil, nil, nil), 404, "not-found")
}

// TestRESTPublicRoomsGETStoresNothing: a scanner or a link previewer
// asking for many new identifiers gets its answers and uses up nothing:
// with max_public_rooms 50, 60 new ids all answer 200, no room is made,
// and callers can still make rooms afterwards.
func TestRESTPublicRoomsGETStoresNothing(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		c.Meetings.PublicRooms = true
		c.Meetings.MaxPublicRooms = 50
	})
	asJSON := map[string]string{"Accept": "application/json"}
	for i := range 60 {
		hdr := asJSON
		if i%2 == 1 {
			hdr = nil // the HTML page
		}
		if r := h.restRaw(t, "GET", fmt.Sprintf("/c/scan-%d", i), nil, hdr, nil); r.Status != 200 {
			t.Fatalf("GET %d: %d %s", i, r.Status, r.Body)
		}
	}
	book := h.node.SIP.Meetings()
	if n := book.Counts().PublicRooms; n != 0 {
		t.Fatalf("60 GETs made %d public rooms, want 0", n)
	}
	if v := h.metric(t, "webconf_public_rooms"); v != "0" {
		t.Fatalf("webconf_public_rooms %q after the GETs, want 0", v)
	}
	// The cap is on rooms callers make.
	for i := range 50 {
		if _, err := book.PublicRoom(fmt.Sprintf("made-%d", i)); err != nil {
			t.Fatalf("room %d under the cap: %v", i+1, err)
		}
	}
	if _, err := book.PublicRoom("one-too-many"); err == nil {
		t.Fatal("a 51st public room was made")
	}
	// GET still answers at the cap, for open rooms and others.
	if r := h.restRaw(t, "GET", "/c/made-0", nil, asJSON, nil); r.Status != 200 || r.JSON["open"] != true {
		t.Fatalf("open room at the cap: %d %s", r.Status, r.Body)
	}
	if r := h.restRaw(t, "GET", "/c/scan-61", nil, asJSON, nil); r.Status != 200 || r.JSON["open"] != false {
		t.Fatalf("new id at the cap: %d %s", r.Status, r.Body)
	}
}

// ---------------------------------------------------------------------------
// Routing.

func TestRESTRouting(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	_, tok := h.user(t, "alice", "meetings")

	for _, p := range []string{"/api/nothing", "/api/v1/nothing", "/api/v2/users", "/api/v1/users/me/meetings/x/y/z"} {
		h.restFail(t, 404, "not-found", "GET", p, operator, nil)
	}
	h.restFail(t, 404, "not-found", "POST", "/api/v1/nothing", bearer(tok), map[string]any{})

	for _, c := range []struct {
		method, path string
		allow        []string
	}{
		{"PATCH", "/api/v1/users", []string{"GET", "POST"}},
		{"POST", "/api/v1/users/" + restUUID(), []string{"DELETE", "GET", "PUT"}},
		{"POST", "/api/v1/users/me/meetings/" + restUUID(), []string{"DELETE", "GET", "PUT"}},
		{"DELETE", "/api/v1/ingresses/http", []string{"GET", "PUT"}},
		{"GET", "/api/v1/meetings/" + restUUID() + "/webinar/sip", []string{"PUT"}},
		{"POST", "/api/v1/openapi.json", []string{"GET"}},
		{"DELETE", "/c/x", []string{"GET"}},
	} {
		r := h.restFail(t, 405, "method-not-allowed", c.method, c.path, operator, nil)
		var allow []string
		for _, m := range strings.Split(r.Header.Get("Allow"), ",") {
			allow = append(allow, strings.TrimSpace(m))
		}
		slices.Sort(allow)
		if !slices.Equal(allow, c.allow) {
			t.Fatalf("%s %s: Allow %q, want %v", c.method, c.path, r.Header.Get("Allow"), c.allow)
		}
	}

	o := h.must(t, 200, "GET", "/api/v1/openapi.json", nil, nil)
	if !strings.HasPrefix(o.Header.Get("Content-Type"), "application/json") || o.JSON["openapi"] == nil || o.JSON["paths"] == nil {
		t.Fatalf("openapi.json: %s %s", o.Header.Get("Content-Type"), o.Body)
	}
}
