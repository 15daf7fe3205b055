// Package testutil has the small helpers the end-to-end test packages
// share: contexts that end with the test, and waiting for a condition
// with a deadline instead of sleeping and hoping.
package testutil

import (
	"context"
	"testing"
	"time"
)

// Ctx returns a context that times out after d and is cancelled when the
// test ends.
func Ctx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// WaitFor polls cond every 20 ms until it holds, or fails the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
