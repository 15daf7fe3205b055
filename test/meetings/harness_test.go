// Package meetings tests the REST API for meetings against a running node
// (real HTTP on loopback) and the meeting rules on the wire with the SIP
// test phone: join by exten or meeting-guest digest, valid_since and
// valid_until, max_participants, the lobby, the SIP switch, expiry and
// public rooms.
package meetings

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"webconf/conf"
	"webconf/prompts"
	"webconf/rpc/node"
	"webconf/test/phone"
	"webconf/test/testnode"
	"webconf/test/testutil"
)

const master = "master"

// Test prompts are single tones, so a test can tell by ear which prompt a
// caller hears. Callers' own tones stay at or below 1300 Hz.
const (
	fEnterPin    = 1500.0
	fWrongPin    = 1550.0
	fWrongPinBye = 1600.0
	fEntering    = 1650.0
	fFirst       = 1700.0
	fJoin        = 1750.0
	fDrop        = 1800.0
	fNotStarted  = 1850.0
	fEnded       = 1900.0
	fFull        = 1950.0
	fLobby       = 2000.0
	fLocked      = 2050.0
)

var toneSamples = testutil.Tone

// testPrompts are short so that the flows run fast; digits read back as
// one 2500 Hz blip each.
func testPrompts() *prompts.Set {
	p := &prompts.Set{
		EnterPin:           toneSamples(fEnterPin, 1500*time.Millisecond),
		WrongPin:           toneSamples(fWrongPin, 600*time.Millisecond),
		WrongPinBye:        toneSamples(fWrongPinBye, 600*time.Millisecond),
		EnteringConference: toneSamples(fEntering, 300*time.Millisecond),
		FirstParticipant:   toneSamples(fFirst, 300*time.Millisecond),
		JoinSound:          toneSamples(fJoin, 200*time.Millisecond),
		DropSound:          toneSamples(fDrop, 200*time.Millisecond),
		MeetingNotStarted:  toneSamples(fNotStarted, 800*time.Millisecond),
		MeetingEnded:       toneSamples(fEnded, 800*time.Millisecond),
		ConferenceFull:     toneSamples(fFull, 800*time.Millisecond),
		LobbyWait:          toneSamples(fLobby, 800*time.Millisecond),
		RoomLocked:         toneSamples(fLocked, 800*time.Millisecond),
	}
	for d := range p.Digits {
		p.Digits[d] = toneSamples(2500, 100*time.Millisecond)
	}
	return p
}

type harness struct {
	node *node.Node
	base string // http://host:port
}

// testConfig is a node on free loopback ports with a master password.
func testConfig(t testing.TB) *conf.Config {
	t.Helper()
	cfg := testnode.Config(t, 40000, 49998, master)
	cfg.Webconference.DirectRoomRE = nil
	return cfg
}

// start runs a node; edit may change the config first. It is stopped when
// the test ends.
func start(t testing.TB, edit func(*conf.Config)) *harness {
	t.Helper()
	cfg := testConfig(t)
	if edit != nil {
		edit(cfg)
	}
	return startOpts(t, cfg, node.Options{})
}

// startOpts runs a node on cfg with o (its log and prompts are the
// tests'); it is stopped when the test ends.
func startOpts(t testing.TB, cfg *conf.Config, o node.Options) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	o.Prompts = testPrompts()
	n := testnode.Start(t, cfg, o)
	return &harness{node: n, base: "http://" + n.HTTPAddr()}
}

// reply is an HTTP answer with its decoded JSON body (nil when not JSON).
type reply struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

// ErrorCode is the error.code of an error body, or "".
func (r reply) ErrorCode() string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// ErrorMessage is the error.message of an error body, or "".
func (r reply) ErrorMessage() string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// auth is how a request authenticates: nil (nobody), basic or bearer.
type auth func(*http.Request)

func basic(user, pass string) auth { return func(r *http.Request) { r.SetBasicAuth(user, pass) } }
func bearer(tok string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

var operator = basic("admin", master)

// do sends one request; body, if not nil and not []byte or string, is
// sent as JSON (restRaw sends headers and bytes as they are).
func (h *harness) do(t testing.TB, method, path string, a auth, body any) reply {
	t.Helper()
	var data []byte
	switch b := body.(type) {
	case nil:
		return h.restRaw(t, method, path, a, nil, nil)
	case []byte:
		data = b
	case string:
		data = []byte(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		data = js
	}
	return h.restRaw(t, method, path, a, map[string]string{"Content-Type": "application/json"}, data)
}

// must sends a request that must answer want.
func (h *harness) must(t testing.TB, want int, method, path string, a auth, body any) reply {
	t.Helper()
	r := h.do(t, method, path, a, body)
	if r.Status != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", method, path, r.Status, want, r.Body)
	}
	return r
}

// user creates a user with the capabilities and returns its uuid and token.
func (h *harness) user(t testing.TB, name string, caps ...string) (uuid, token string) {
	t.Helper()
	if caps == nil {
		caps = []string{}
	}
	r := h.must(t, 201, "POST", "/api/v1/users", operator, map[string]any{"username": name, "capabilities": caps})
	return r.JSON["uuid"].(string), r.JSON["token"].(string)
}

// meeting creates a meeting with the fields and returns its JSON.
func (h *harness) meeting(t testing.TB, token string, fields map[string]any) map[string]any {
	t.Helper()
	if fields == nil {
		fields = map[string]any{}
	}
	if _, ok := fields["name"]; !ok {
		fields["name"] = "meeting"
	}
	m := h.must(t, 201, "POST", "/api/v1/users/me/meetings", bearer(token), fields).JSON
	// Its room_created is published by the room events' goroutine: a
	// stream opened after this returns must not see it live.
	if h.node != nil { // nil: the node is a webconfd process
		h.node.SyncRoomEvents()
	}
	return m
}

// dial calls the node's SIP address; the phone is hung up and closed when
// the test ends.
func (h *harness) dial(t *testing.T, cfg phone.Config) *phone.Phone {
	t.Helper()
	cfg.Server = h.node.SIP.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := phone.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %q: %v", cfg.User, err)
	}
	testutil.HangUpAtEnd(t, p)
	return p
}
