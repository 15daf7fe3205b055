package testutil

import (
	"context"
	"testing"
	"time"

	"webconf/test/phone"
)

// ListenCallee starts a test callee (a UAS test phone) the server can
// dial; it is closed when the test ends.
func ListenCallee(t testing.TB, cfg phone.CalleeConfig) *phone.Callee {
	t.Helper()
	c, err := phone.Listen(Ctx(t, 5*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// HangUpAtEnd hangs p up when the test ends, as a person would (so that
// the server has no calls left to end when it stops), and closes it.
func HangUpAtEnd(t testing.TB, p *phone.Phone) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = p.Hangup(ctx)
		p.Close()
	})
}
