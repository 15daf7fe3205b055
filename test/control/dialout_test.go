package control

import (
	"testing"
	"time"

	"webconf/test/phone"
	"webconf/test/testutil"
)

// TestDialoutOverXMLRPC places a call as pyqtgui does and follows it in
// roomInfo until it is connected, then kicks it.
func TestDialoutOverXMLRPC(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	cal, err := phone.Listen(testutil.Ctx(t, 5*time.Second), phone.CalleeConfig{
		Auth: &phone.Auth{Realm: "127.0.0.1", User: "wcuser", Password: "pw"}, Ring: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cal.Close()
	pin := norm(h.di(t, "roomCreate", "out")).([]any)[2].(string)
	r := norm(h.di(t, "dialout", "out", pin, "bob", "conference", cal.Addr(), "wcuser", "pw", "X-A: 1|X-B: 2", "", "pid-9")).([]any)
	if r[0] != 0 || r[1] != "OK" {
		t.Fatalf("dialout: %v", r)
	}
	tag := r[2].(string)
	b, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inv := cal.Invites()[0]
	if inv.GetHeader("X-A") == nil || inv.GetHeader("X-B") == nil {
		t.Fatalf("the '|'-separated headers did not arrive:\n%s", inv)
	}
	testutil.WaitFor(t, 5*time.Second, "status 3 in roomInfo", func() bool {
		parts := norm(h.di(t, "roomInfo", "out", pin)).([]any)[2].([]any)
		for _, p := range parts {
			f := p.([]any)
			if f[0] == tag {
				return f[2] == 3 && f[3] == "200 OK" && f[5] == "pid-9" && f[1] == "sip:bob@"+cal.Addr()
			}
		}
		return false
	})
	if res := norm(h.di(t, "kickout", "out", pin, tag)).([]any); res[0] != 0 {
		t.Fatalf("kickout: %v", res)
	}
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE to the callee")
	}
}
