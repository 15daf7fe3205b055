package sipapp

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"webconf/sipapp/room"
	"webconf/sipapp/store/storetest"
)

// TestPredefinedRoomStoreRefused: a server whose store refuses the write of
// a predefined room does not start.
func TestPredefinedRoomStoreRefused(t *testing.T) {
	st := storetest.NewFaulty(nil)
	st.Fail(true, storetest.PutRoom)
	_, err := New(Options{SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 40200, RTPHigh: 40210, Store: st,
		PredefinedRooms: []PredefinedRoom{{Room: "p", AdminPin: "1"}}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if !errors.Is(err, room.ErrStore) {
		t.Fatalf("start with a predefined room the store refuses: %v, want room.ErrStore", err)
	}
}
