package control

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/rpc/node"
	"webconf/test/phone"
	"webconf/test/testutil"
)

func TestHardExpiryHangsUpAndDeletes(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Webconference.SupportRoomsTimeout = true })
	pin := norm(h.di(t, "roomCreate", "brief", 2)).([]any)[2].(string)
	p := h.dial(t, phone.Config{Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=brief")}})
	testutil.WaitFor(t, 5*time.Second, "the caller in", func() bool { return h.connected("brief") == 1 })
	select {
	case <-p.Done():
	case <-time.After(6 * time.Second):
		t.Fatal("the caller was not hung up when the room's timeout passed")
	}
	if r := norm(h.di(t, "getRoomPassword", "master", "brief")).([]any); r[0] != 404 {
		t.Fatalf("room still there after its timeout: %v (pin %s)", r, pin)
	}
}

func TestSoftExpiryAndSweep(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, t.TempDir())
	cfg.Webconference.RoomsExpireDelay = time.Second
	cfg.Webconference.RoomSweepInterval = 2
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	clk := testutil.NewClock(time.Unix(1_700_000_000, 0)) // the registry's clock, moved only when told
	h := startOpts(t, cfg, node.Options{Now: clk.Now})
	old := norm(h.di(t, "roomCreate", "old")).([]any)[2].(string)
	idle := norm(h.di(t, "roomCreate", "idle")).([]any)[2].(string)
	si := info(0, 0, 0, 0)
	// Strictly more than one whole second must pass: at one second the
	// rooms are still listed, at 2.1 they are not.
	clk.Add(time.Second)
	eq(t, h.di(t, "listRooms", "master"), 200, []any{"idle", "old"}, si)
	clk.Add(1100 * time.Millisecond)
	eq(t, h.di(t, "listRooms", "master"), 200, []any{}, si) // hidden, not erased
	eq(t, h.di(t, "getRoomPassword", "master", "idle"), 0, idle, si)
	// An expired room fails once with the right PIN, and is erased.
	eq(t, h.di(t, "roomInfo", "idle", idle), 1, "wrong adminpin or inexisting room", []any{}, si)
	eq(t, h.di(t, "getRoomPassword", "master", "idle"), 404, "Room does not exist.", si)
	// The sweep runs on every 2nd roomCreate/dialout and erases "old".
	h.di(t, "roomCreate", "n1")
	eq(t, h.di(t, "getRoomPassword", "master", "old"), 0, old, si)
	h.di(t, "roomCreate", "n2")
	eq(t, h.di(t, "getRoomPassword", "master", "old"), 404, "Room does not exist.", si)
}

func TestIgnorePinAndFirstClaimer(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	si := info(0, 0, 0, 0)
	h.dial(t, phone.Config{Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=claim")}})
	testutil.WaitFor(t, 5*time.Second, "the caller in", func() bool { return h.connected("claim") == 1 })
	eq(t, h.di(t, "getRoomPassword", "master", "claim"), 0, "", info(1, 0, 0, 0))
	// Whoever asks first with a PIN claims a dial-in room.
	if r := norm(h.di(t, "roomInfo", "claim", "first")).([]any); r[0] != 0 {
		t.Fatalf("first claimer: %v", r)
	}
	if r := norm(h.di(t, "roomInfo", "claim", "second")).([]any); r[0] != 1 {
		t.Fatalf("second claimer: %v", r)
	}
	h2 := start(t, func(c *conf.Config) { c.Webconference.IgnorePin = true })
	pin := norm(h2.di(t, "roomCreate", "open")).([]any)[2].(string)
	eq(t, h2.di(t, "roomInfo", "open", "anything"), 0, "OK", []any{}, si)
	eq(t, h2.di(t, "getRoomPassword", "master", "open"), 0, pin, si)
}

// jsonCall posts a JSON-RPC body to /jsonrpc.
func jsonCall(t *testing.T, h *harness, body string) (int, []byte) {
	t.Helper()
	url := strings.Replace(h.url, "/RPC2", "/jsonrpc", 1)
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func TestJSONRPCOnTheSamePort(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	si := info(0, 0, 0, 0)
	type reply struct {
		ID     any `json:"id"`
		Result any `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	one := func(method string, params ...any) reply {
		t.Helper()
		p, _ := json.Marshal(params)
		code, b := jsonCall(t, h, `{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+string(p)+`}`)
		var r reply
		if code != 200 || json.Unmarshal(b, &r) != nil {
			t.Fatalf("%s: HTTP %d %s", method, code, b)
		}
		return r
	}
	r := one("roomCreate", "j1")
	res := r.Result.([]any)
	pin := res[2].(string)
	if res[0] != float64(0) || res[1] != "OK" || len(pin) != 6 || res[3] != si {
		t.Fatalf("roomCreate: %v", r.Result)
	}
	for _, tc := range []struct {
		method string
		params []any
		want   string
	}{
		{"roomInfo", []any{"j1", pin}, `[0,"OK",[],"` + si + `"]`},
		{"di", []any{"webconference", "roomInfo", "j1", "bad"}, `[1,"wrong adminpin or inexisting room",[],"` + si + `"]`},
		{"di", []any{"webconference", "addParticipant", "j1", "p", "sip:x@y"}, `[200,"OK","` + si + `"]`},
		{"findParticipant", []any{"p"}, `[["j1"],"` + si + `"]`},
		{"mute", []any{"j1", pin, "nope"}, `[2,"call does not exist","` + si + `"]`},
		{"unmute", []any{"j1", "bad", "nope"}, `[1,"wrong adminpin or inexisting room","` + si + `"]`},
		{"kickout", []any{"j1", pin, "nope"}, `[2,"call does not exist","` + si + `"]`},
		{"changeRoomAdminpin", []any{"j1", pin, "x"}, `[0,"OK","` + si + `"]`},
		{"getRoomPassword", []any{"master", "j1"}, `[0,"x","` + si + `"]`},
		{"listRooms", []any{"master"}, `[200,["j1"],"` + si + `"]`},
		{"serverInfo", []any{}, `["` + si + `","` + si + `"]`},
		{"vqRoomFeedback", []any{"j1", "x", 3}, `[0,"OK","` + si + `"]`},
		{"vqCallFeedback", []any{"j1", "x", "t", 3}, `[0,"OK","` + si + `"]`},
		{"vqConferenceFeedback", []any{"j1", "x", "s", "c", 3}, `[0,"OK","` + si + `"]`},
		{"dialout", []any{"j1", "bad", "a", "b", "c", "d", "e"}, `[1,"wrong adminpin or inexisting room","","` + si + `"]`},
		{"roomDelete", []any{"j1", "x"}, `[0,"OK","` + si + `"]`},
		{"calls", []any{}, `0`},
	} {
		got := one(tc.method, tc.params...)
		b, _ := json.Marshal(got.Result)
		if got.Error != nil || string(b) != tc.want {
			t.Errorf("%s%v: %s %+v, want %s", tc.method, tc.params, b, got.Error, tc.want)
		}
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"roomInfo","params":["j1"]}`, -32602},
		{`{"jsonrpc":"2.0","id":1,"method":"nosuch","params":[]}`, -32601},
		{`{"jsonrpc":"2.0","id":1,"method":"di","params":["webconference","nosuch"]}`, -32601},
		{`{"jsonrpc":"2.0","id":1,"method":"roomInfo","params":{"room":"x"}}`, -32602},
		{`{"jsonrpc":"1.0","id":1,"method":"roomInfo","params":[]}`, -32600},
		{`{not json`, -32700},
	} {
		_, b := jsonCall(t, h, tc.body)
		var r reply
		if json.Unmarshal(b, &r) != nil || r.Error == nil || r.Error.Code != tc.code {
			t.Errorf("%s: %s, want error %d", tc.body, b, tc.code)
		}
	}
	// A batch with a notification: two answers, in order.
	_, b := jsonCall(t, h, `[{"jsonrpc":"2.0","id":"a","method":"calls","params":[]},{"jsonrpc":"2.0","method":"calls","params":[]},{"jsonrpc":"2.0","id":7,"method":"nosuch"}]`)
	var batch []reply
	if err := json.Unmarshal(b, &batch); err != nil || len(batch) != 2 || batch[0].ID != "a" || batch[1].Error == nil || batch[1].Error.Code != -32601 {
		t.Fatalf("batch: %s", b)
	}
	// Only notifications: nothing to say.
	if code, b := jsonCall(t, h, `{"jsonrpc":"2.0","method":"calls","params":[]}`); code != 204 || len(bytes.TrimSpace(b)) != 0 {
		t.Fatalf("notification: HTTP %d %q", code, b)
	}
}
