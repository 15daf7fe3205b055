package sipapp

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestAPanickingHandlerEndsOnlyItsRequest makes the INFO handler path
// panic and checks that the server answers 500, counts it, and still
// answers OPTIONS.
func TestAPanickingHandlerEndsOnlyItsRequest(t *testing.T) {
	s, err := New(Options{SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 44000, RTPHigh: 44100})
	if err != nil {
		t.Fatal(err)
	}
	s.testHook = func(r *sip.Request) {
		if r.Method == sip.INFO {
			panic("boom")
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}()
	ua, _ := sipgo.NewUA()
	defer ua.Close()
	cl, _ := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	do := func(m sip.RequestMethod) int {
		var uri sip.Uri
		_ = sip.ParseUri("sip:conference@"+s.Addr(), &uri)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := cl.Do(ctx, sip.NewRequest(m, uri))
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		return res.StatusCode
	}
	if code := do(sip.INFO); code != 500 {
		t.Fatalf("panicking INFO got %d, want 500", code)
	}
	if code := do(sip.OPTIONS); code != 200 {
		t.Fatalf("OPTIONS after the panic got %d", code)
	}
	if n := s.Metrics().Panics; n != 1 {
		t.Fatalf("panics counted: %d, want 1", n)
	}
}
