package testutil

import (
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
