package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"webconf/sipapp"
	"webconf/sipapp/meeting"
	"webconf/sipapp/store"
)

// FuzzMeetingBody (issue 7, REST JSON bodies) sends arbitrary bytes as the
// body of the three routes that decode a meeting or lobby body:
//
//	POST /api/v1/users/me/meetings
//	PUT  /api/v1/users/me/meetings/{uuid}
//	PUT  /api/v1/meetings/{uuid}/webinar/lobby
//
// through the real mux, authentication and handlers, on a fresh meeting
// each time. Per request: no panic; the status is the route's success
// (201 or 200) or a 4xx; every non-2xx body is exactly
// {"error":{"code":"…","message":"…"}} with both strings non-empty; a
// 4xx leaves the user's meeting list byte-identical; a 2xx body is a
// meeting view (no unknown field) with an all-digit exten, the meeting
// that was addressed (or a new one for POST), and it can be read back.
func FuzzMeetingBody(f *testing.F) {
	h := newFzHarness(f)
	for _, s := range fzSeeds {
		f.Add([]byte(s.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		h.run(t, body)
	})
}

// TestMeetingBodySeeds runs the seeds with the statuses each must get, so
// that the plain test run proves the harness reaches both the success and
// the error paths of every route (a broken token or path would turn every
// answer into a 4xx, which the fuzz invariants alone would accept).
func TestMeetingBodySeeds(t *testing.T) {
	h := newFzHarness(t)
	for _, s := range fzSeeds {
		t.Run(s.name, func(t *testing.T) {
			got := h.run(t, []byte(s.body))
			if got != s.want {
				t.Errorf("statuses (POST meeting, PUT meeting, PUT lobby) = %v, want %v", got, s.want)
			}
		})
	}
}

// fzSeed is a seed body and the statuses it must get from POST meeting,
// PUT meeting and PUT lobby.
type fzSeed struct {
	name, body string
	want       [3]int
}

const (
	fzCreated = http.StatusCreated
	fzOK      = http.StatusOK
	fzBad     = http.StatusBadRequest
)

var fzSeeds = []fzSeed{
	{"minimal meeting", `{"name":"Weekly sync"}`, [3]int{fzCreated, fzOK, fzBad}},
	{"every field", `{"name":"Board","owner_uuids":[],"persistent":true,"require_authorization":true,` +
		`"valid_since":"2030-01-01T09:00:00Z","valid_until":"2030-01-01T11:00:00+01:00","language":"en",` +
		`"participants":[{"name":"Ann","email":"ann@example.com","phone":"+33123456789"}],` +
		`"max_participants":10,"lobby":{"state":1,"timer":null},"sip_dialin":false}`, [3]int{fzCreated, fzOK, fzBad}},
	// A client sends back what it got: read-only fields are ignored.
	{"echo of an answer", `{"uuid":"6f1d6a7e-0000-4000-8000-000000000000","name":"Echo","owner_uuids":[],` +
		`"exten":"12345678","ingress_http_uri":null,"guest_sip_authorization":"bWVldGluZzpwdw==","persistent":false,` +
		`"require_authorization":false,"creation_time":"2026-11-22T00:00:00Z","valid_since":null,"valid_until":null,` +
		`"expires_at":"2026-11-22T01:00:00Z","language":"en","participants":[],"url":null,"max_participants":100,` +
		`"lobby":{"state":0,"timer":null},"sip_dialin":true,"dialin_number":null,"sip_uri":"sip:12345678@127.0.0.1:5060"}`,
		[3]int{fzCreated, fzOK, fzBad}},
	{"invalid UTF-8 becomes U+FFFD", "{\"name\":\"\xff\"}", [3]int{fzCreated, fzOK, fzBad}},
	{"duplicate key", `{"name":"a","name":"b","lobby":{"state":1},"lobby":{"state":0}}`, [3]int{fzCreated, fzOK, fzBad}},
	{"lobby on", `{"state":1,"timer":null}`, [3]int{fzBad, fzBad, fzOK}},
	{"lobby off", `{"state":0}`, [3]int{fzBad, fzBad, fzOK}},
	{"empty object", `{}`, [3]int{fzBad, fzOK, fzBad}},

	{"empty body", ``, [3]int{fzBad, fzBad, fzBad}},
	{"cut short", `{"name":`, [3]int{fzBad, fzBad, fzBad}},
	{"array", `[]`, [3]int{fzBad, fzBad, fzBad}},
	{"string", `"name"`, [3]int{fzBad, fzBad, fzBad}},
	// null is not an object: decode promises a JSON object body.
	{"null", `null`, [3]int{fzBad, fzBad, fzBad}},
	{"trailing data", `{"name":"a"} {}`, [3]int{fzBad, fzBad, fzBad}},
	{"unknown language", `{"name":"x","language":"xx"}`, [3]int{fzBad, fzBad, fzBad}},
	{"phone not E.164", `{"name":"x","participants":[{"phone":"123"}]}`, [3]int{fzBad, fzBad, fzBad}},
	{"max_participants 0", `{"name":"x","max_participants":0}`, [3]int{fzBad, fzBad, fzBad}},
	{"max_participants huge", `{"name":"x","max_participants":1e400}`, [3]int{fzBad, fzBad, fzBad}},
	{"name null", `{"name":null}`, [3]int{fzBad, fzBad, fzBad}},
	{"name control char", `{"name":"\u0000"}`, [3]int{fzBad, fzBad, fzBad}},
	{"lobby state 2", `{"state":2}`, [3]int{fzBad, fzBad, fzBad}},
	{"lobby state string", `{"state":"1"}`, [3]int{fzBad, fzBad, fzBad}},
	{"lobby timer past", `{"state":1,"timer":1}`, [3]int{fzBad, fzBad, fzBad}},
	{"nested unknown field", `{"name":"x","lobby":{"state":1,"extra":1}}`, [3]int{fzBad, fzBad, fzBad}},
	{"bad time", `{"name":"x","valid_until":"yesterday"}`, [3]int{fzBad, fzBad, fzBad}},
	{"unknown owner", `{"name":"x","owner_uuids":["00000000-0000-4000-8000-000000000000"]}`, [3]int{fzBad, fzBad, fzBad}},
	{"deep nesting", `{"name":"x","participants":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}`, [3]int{fzBad, fzBad, fzBad}},
}

// fzHarness is the REST API on a SIP server that is built but not
// started: the meetings routes only need the Book and the room registry,
// and not listening keeps each fuzz worker free of sockets.
type fzHarness struct {
	mu    sync.Mutex // one input at a time: the invariants read the whole list
	mux   *http.ServeMux
	token string
}

func newFzHarness(tb testing.TB) *fzHarness {
	tb.Helper()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := sipapp.New(sipapp.Options{
		SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 50000, RTPHigh: 50100,
		Store: store.NewMemory(), Log: quiet,
		Meetings: meeting.Config{TTL: time.Hour, MaxParticipants: 100, Languages: []string{"en"}, SIPDialin: true},
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Shutdown is for a started server; the Book's timers are all that
	// runs here.
	tb.Cleanup(srv.Meetings().Close)
	api := New(Options{SIP: srv, MasterPassword: "m", SIPHost: "127.0.0.1:5060", Log: quiet})
	h := &fzHarness{mux: http.NewServeMux()}
	api.Register(h.mux)

	req := httptest.NewRequest(http.MethodPost, "/api/v1/users", strings.NewReader(`{"username":"fuzz","capabilities":["meetings","sip"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", "m")
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, req)
	var u struct {
		Token string `json:"token"`
	}
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &u) != nil || u.Token == "" {
		tb.Fatalf("create user: %d %s", rec.Code, rec.Body)
	}
	h.token = u.Token
	return h
}

func (h *fzHarness) do(method, path string, body []byte) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	rec := httptest.NewRecorder()
	h.mux.ServeHTTP(rec, req)
	return rec
}

const fzList = "/api/v1/users/me/meetings"

// list is GET of the user's meetings, as bytes.
func (h *fzHarness) list(t *testing.T) []byte {
	t.Helper()
	rec := h.do(http.MethodGet, fzList, nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET list: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// run sends body to the three routes, each on a fresh meeting that is
// alone in the list, checks the invariants and returns the statuses.
func (h *fzHarness) run(t *testing.T, body []byte) [3]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	routes := []struct {
		method string
		path   func(uuid string) string
		ok     int
	}{
		{http.MethodPost, func(string) string { return fzList }, http.StatusCreated},
		{http.MethodPut, func(id string) string { return fzList + "/" + id }, http.StatusOK},
		{http.MethodPut, func(id string) string { return "/api/v1/meetings/" + id + "/webinar/lobby" }, http.StatusOK},
	}
	var got [3]int
	for i, r := range routes {
		got[i] = h.step(t, r.method, r.path, r.ok, body)
	}
	return got
}

func (h *fzHarness) step(t *testing.T, method string, path func(string) string, okStatus int, body []byte) int {
	t.Helper()
	// A persistent meeting without lobby timer or valid_until: no timer
	// can change the list while we compare it.
	rec := h.do(http.MethodPost, fzList, []byte(`{"name":"base","persistent":true}`))
	var base meetingView
	if rec.Code != http.StatusCreated || json.Unmarshal(rec.Body.Bytes(), &base) != nil {
		t.Fatalf("create base meeting: %d %s", rec.Code, rec.Body)
	}
	defer h.clear(t)
	before := h.list(t)

	p := path(base.UUID)
	rec = h.do(method, p, body)
	where := fmt.Sprintf("%s %s with body %q", method, strings.Replace(p, base.UUID, "{uuid}", 1), fzShort(body))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", where, ct)
	}
	switch {
	case rec.Code == okStatus:
		var v meetingView
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("%s: %d answer is not a meeting: %v\n%s", where, rec.Code, err, rec.Body)
		}
		if !fzDigits(v.Exten) {
			t.Fatalf("%s: exten %q is not all digits", where, v.Exten)
		}
		if method == http.MethodPost {
			if v.UUID == base.UUID || !meeting.ValidUUID(v.UUID) || v.Exten == base.Exten {
				t.Fatalf("%s: new meeting %q exten %q (base %q %q)", where, v.UUID, v.Exten, base.UUID, base.Exten)
			}
		} else if v.UUID != base.UUID || v.Exten != base.Exten {
			t.Fatalf("%s: answered meeting %q exten %q, want %q %q", where, v.UUID, v.Exten, base.UUID, base.Exten)
		}
		back := h.do(http.MethodGet, fzList+"/"+v.UUID, nil)
		var g meetingView
		if back.Code != http.StatusOK || json.Unmarshal(back.Body.Bytes(), &g) != nil || g.Exten != v.Exten {
			t.Fatalf("%s: the answered meeting does not read back: %d %s", where, back.Code, back.Body)
		}
	case rec.Code >= 400 && rec.Code < 500:
		if err := fzErrorBody(rec.Body.Bytes()); err != nil {
			t.Fatalf("%s: %d: %v\n%s", where, rec.Code, err, rec.Body)
		}
		if after := h.list(t); !bytes.Equal(before, after) {
			t.Fatalf("%s: %d changed the meeting list:\nbefore %s\nafter  %s", where, rec.Code, before, after)
		}
	default:
		t.Fatalf("%s: status %d, want %d or a 4xx\n%s", where, rec.Code, okStatus, rec.Body)
	}
	return rec.Code
}

// clear deletes every meeting of the user, so that the next step starts
// from an empty list (and their timers stop).
func (h *fzHarness) clear(t *testing.T) {
	t.Helper()
	var l struct {
		Items []meetingView `json:"items"`
	}
	if err := json.Unmarshal(h.list(t), &l); err != nil {
		t.Fatal(err)
	}
	for _, m := range l.Items {
		if rec := h.do(http.MethodDelete, fzList+"/"+m.UUID, nil); rec.Code != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d %s", m.UUID, rec.Code, rec.Body)
		}
	}
	if got := h.list(t); string(got) != `{"items":[],"total":0}`+"\n" {
		t.Fatalf("list after clearing: %s", got)
	}
}

// fzErrorBody checks that b is exactly {"error":{"code":…,"message":…}}
// with two non-empty strings and nothing else.
func fzErrorBody(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return fmt.Errorf("error body is not a JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the error object")
	}
	if len(top) != 1 || top["error"] == nil {
		return fmt.Errorf("error body has keys %v, want only error", fzKeys(top))
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &inner); err != nil || len(inner) != 2 {
		return fmt.Errorf("error member has keys %v, want code and message", fzKeys(inner))
	}
	for _, k := range []string{"code", "message"} {
		var s string
		if err := json.Unmarshal(inner[k], &s); err != nil || s == "" {
			return fmt.Errorf("error.%s is %s, want a non-empty string", k, inner[k])
		}
	}
	return nil
}

func fzKeys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func fzDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// fzShort keeps failure messages readable for large inputs.
func fzShort(b []byte) []byte {
	if len(b) > 300 {
		return append(b[:300:300], "..."...)
	}
	return b
}
