package e2e

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"webconf/sipapp"
	"webconf/sipapp/room"
	"webconf/sipapp/store/storetest"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// startStored runs a server whose store is st.
func startStored(t *testing.T, st *storetest.Faulty) *server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return startLogged(t, testPrompts(), nil, log, func(opt *sipapp.Options) { opt.Store = st })
}

// A caller whose room the store refuses does not join a room a restart
// would not have: it is hung up with a BYE carrying the 503 (RFC 3326
// Reason; the call was answered before its room was known), and no room
// is left behind. Once the store takes writes again, the same call joins.
func TestCallRefusedWhenItsRoomCannotBeStored(t *testing.T) {
	t.Parallel()
	st := storetest.NewFaulty(nil)
	s := startStored(t, st)
	st.Fail(true, storetest.PutRoom)
	p := s.direct(t, "unstored", phone.Config{})
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a caller whose room cannot be stored was not hung up")
	}
	if reason := p.ByeReason(); !strings.Contains(reason, "cause=503") {
		t.Fatalf("BYE Reason %q, want SIP cause=503", reason)
	}
	if s.Registry().Exists("unstored") {
		t.Fatal("the refused call left a room the store does not have")
	}
	if n := st.Calls(storetest.PutRoom); n == 0 {
		t.Fatal("the room was never written")
	}

	st.Fail(false, storetest.PutRoom)
	q := s.direct(t, "unstored", phone.Config{})
	testutil.WaitFor(t, 5*time.Second, "the second caller in the room", func() bool {
		for _, part := range s.participants("unstored") {
			if part.Status == room.StatusConnected {
				return true
			}
		}
		return false
	})
	snap, err := st.Load(context.Background())
	if err != nil || len(snap.Rooms) != 1 || snap.Rooms[0].Name != "unstored" {
		t.Fatalf("stored rooms %+v (%v), want the joined room", snap.Rooms, err)
	}
	_ = q
}
