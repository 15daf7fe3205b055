package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/rpc/node"
	"webconf/test/phone"
	"webconf/test/testnode"
	"webconf/test/testutil"
)

const master = "master"

type harness struct {
	node *node.Node
	base string
}

// start runs a node on loopback ports (SIP, RTP, HTTP) with the master
// password and JSON-RPC on; edit may change its config first.
func start(t *testing.T, edit func(*conf.Config)) *harness {
	t.Helper()
	cfg := testnode.Config(t, 55000, 59998, master)
	cfg.XMLRPC.JSONRPC = true
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, cfg, node.Options{})
	return &harness{node: n, base: "http://" + n.HTTPAddr()}
}

// dialRoom calls the room by P-App-Param; the phone hangs up when the
// test ends.
func (h *harness) dialRoom(t *testing.T, room, from string) *phone.Phone {
	t.Helper()
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{
		Server: h.node.SIP.Addr(), FromUser: from,
		Headers: []sip.Header{sip.NewHeader("P-App-Param", "room="+room)},
	})
	if err != nil {
		t.Fatalf("dial room %s: %v", room, err)
	}
	testutil.HangUpAtEnd(t, p)
	return p
}

// rest sends a JSON request; auth is an Authorization value or "".
func (h *harness) rest(t *testing.T, method, path, auth string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, h.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, res.StatusCode, want, data)
	}
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

func operatorAuth() string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth("admin", master)
	return req.Header.Get("Authorization")
}
