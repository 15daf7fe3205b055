package control

import (
	"testing"
	"time"

	"webconf/conf"
)

// findParticipant needs no PIN, but the participant ID it looks up is a
// PIN under room_pin_split: every unknown ID is charged to the client's
// rpc_failures budget, as a wrong admin PIN is, and a banned client then
// finds nothing, even with a right ID: the reply of a wrong one (issue 11,
// point 8). Over the real XML-RPC server, one multicall counting each
// inner call.
func TestParticipantPinGuessingBansTheClient(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		c.Limits.RPCFailures = 5
		c.Limits.RoomFailures = 0
		c.Limits.FailureWindow, c.Limits.BanTime = time.Minute, time.Minute
	})
	si := info(0, 0, 0, 0)
	eq(t, h.di(t, "addParticipant", "vault", "4711", "sip:alice@example.org"), 200, "OK", si)
	eq(t, h.di(t, "findParticipant", "4711"), []any{"vault"}, si)
	// Three wrong IDs in one system.multicall count three times.
	var calls []any
	for _, id := range []string{"0000", "0001", "0002"} {
		calls = append(calls, map[string]any{"methodName": "findParticipant", "params": []any{id}})
	}
	var res any
	if err := h.cli.Call("system.multicall", []any{calls}, &res); err != nil {
		t.Fatal(err)
	}
	eq(t, h.di(t, "findParticipant", "4711"), []any{"vault"}, si) // 3 < 5: still allowed
	eq(t, h.call(t, "findParticipant", "0003"), []any{}, si)
	eq(t, h.di(t, "findParticipant", "4711"), []any{"vault"}, si)
	eq(t, h.call(t, "findParticipant", "0004"), []any{}, si) // the 5th: banned
	// Banned: the right ID gets the wrong-ID reply, and the ban is the
	// one wrong admin PINs and master passwords share.
	eq(t, h.di(t, "findParticipant", "4711"), []any{}, si)
	eq(t, h.call(t, "findParticipant", "4711"), []any{}, si)
	eq(t, h.di(t, "getRoomPassword", "master", "vault"), 403, "Wrong Master Password.", si)
}
