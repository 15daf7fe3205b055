package meeting

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"webconf/sipapp/store"
)

// TestUserLine: a user's line is a sip:/sips: URI, checked on create and
// on update, kept across a restart, and cleared by null.
func TestUserLine(t *testing.T) {
	st := store.NewMemory()
	b := newBook(t, Config{}, st, newHooks())
	for _, bad := range []string{"tel:+15550100", "alice@example.com", "sip:", "sip:alice@", "http://x", "sip:a b@example.com", "sip:alice@example.com?Subject=x", "sip:alice@example.com:0", "sip:alice@example.com:70000", "sip:alice@[::1", "sip:alice@-x"} {
		body, _ := json.Marshal(map[string]any{"username": "x", "line": bad})
		_, _, err := b.CreateUser(userIn(t, string(body)))
		if e, ok := AsError(err); !ok || e.Kind != Invalid || e.Field != "line" {
			t.Errorf("line %q: got %v, want an invalid line", bad, err)
		}
	}
	for i, good := range []string{"sip:bob@[2001:db8::1]:5062", "SIPS:bob@phone.example.com;transport=tls", "sip:192.0.2.9", "sip:+15550100;user=phone@gw.example.com:5060;lr"} {
		body, _ := json.Marshal(map[string]any{"username": fmt.Sprintf("u%d", i), "line": good})
		if _, _, err := b.CreateUser(userIn(t, string(body))); err != nil {
			t.Errorf("line %q refused: %v", good, err)
		}
	}
	u, _ := mustUser(t, b, `{"username":"alice","line":"sip:alice@192.0.2.1:5062","capabilities":["sip"]}`)
	if u.Line != "sip:alice@192.0.2.1:5062" || u.SIPAccount {
		t.Fatalf("created %+v", u)
	}
	upd := func(js string) (User, error) {
		var in UserUpdate
		if err := json.Unmarshal([]byte(js), &in); err != nil {
			t.Fatal(err)
		}
		return b.UpdateUser(u.UUID, in)
	}
	if _, err := upd(`{"line":"mailto:alice@example.com"}`); err == nil || !strings.Contains(err.Error(), "line") {
		t.Errorf("bad line on update: %v", err)
	}
	if got, _ := b.User(u.UUID); got.Line != "sip:alice@192.0.2.1:5062" {
		t.Errorf("a refused update changed the line to %q", got.Line)
	}
	if _, err := upd(`{"sip_password":"short"}`); err == nil {
		t.Error("a 5-character SIP password was accepted")
	}
	got, err := upd(`{"line":"sips:alice@phone.example.com","sip_password":"correct-horse"}`)
	if err != nil || got.Line != "sips:alice@phone.example.com" || !got.SIPAccount {
		t.Fatalf("update: %+v %v", got, err)
	}
	if raw, _ := json.Marshal(got); strings.Contains(string(raw), "correct-horse") {
		t.Errorf("the user's JSON shows the SIP password: %s", raw)
	}
	if _, pw, ok := b.SIPAccount("alice"); !ok || pw != "correct-horse" {
		t.Errorf("SIPAccount(alice) = %q %v", pw, ok)
	}
	// Without the sip capability the password is refused.
	if _, err := upd(`{"capabilities":["meetings"]}`); err == nil || !strings.Contains(err.Error(), "sip capability") {
		t.Errorf("dropping the sip capability with a password set: %v", err)
	}

	// A restart keeps both.
	b2 := newBook(t, Config{}, st, newHooks())
	if got, _ := b2.User(u.UUID); got.Line != "sips:alice@phone.example.com" || !got.SIPAccount {
		t.Errorf("after a restart: %+v", got)
	}
	if _, pw, ok := b2.SIPAccount("alice"); !ok || pw != "correct-horse" {
		t.Errorf("after a restart, SIPAccount(alice) = %q %v", pw, ok)
	}
	if got, err := upd(`{"line":null,"sip_password":""}`); err != nil || got.Line != "" || got.SIPAccount {
		t.Errorf("clearing: %+v %v", got, err)
	}
	if _, _, ok := b.SIPAccount("alice"); ok {
		t.Error("a cleared password still authenticates")
	}
}

// TestOldUserDocumentLoads: a user stored before lines existed loads with
// no line and no SIP account.
func TestOldUserDocumentLoads(t *testing.T) {
	st := store.NewMemory()
	old := `{"uuid":"0b5f3c1e-2a4b-4c6d-8e9f-0a1b2c3d4e5f","username":"bob","email":"","mobile_phone":"","landline":"","alias":"","role":"user","capabilities":["meetings"],"created":"2026-01-01T00:00:00Z","last_login":null,"token_hash":"` + strings.Repeat("ab", 32) + `"}`
	if err := st.WriteDocs(context.Background(), []store.Doc{{Kind: kindUser, ID: "0b5f3c1e-2a4b-4c6d-8e9f-0a1b2c3d4e5f", Body: []byte(old)}}, nil); err != nil {
		t.Fatal(err)
	}
	b := newBook(t, Config{}, st, newHooks())
	u, ok := b.User("0b5f3c1e-2a4b-4c6d-8e9f-0a1b2c3d4e5f")
	if !ok || u.Username != "bob" || u.Line != "" || u.SIPAccount {
		t.Fatalf("old user: %+v %v", u, ok)
	}
}
