package control

import (
	"testing"
	"time"

	"webconf/conf"
)

func TestAdminPinGuessingBansTheClient(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		c.Limits.RPCFailures = 5
		c.Limits.RoomFailures = 0
		c.Limits.FailureWindow, c.Limits.BanTime = time.Minute, time.Minute
	})
	pin := norm(h.di(t, "roomCreate", "vault")).([]any)[2].(string)
	si := info(0, 0, 0, 0)
	// Four wrong PINs inside one system.multicall count four times.
	var calls []any
	for i := 0; i < 4; i++ {
		calls = append(calls, map[string]any{"methodName": "di", "params": []any{"webconference", "roomInfo", "vault", "000000"}})
	}
	var res any
	if err := h.cli.Call("system.multicall", []any{calls}, &res); err != nil {
		t.Fatal(err)
	}
	eq(t, h.di(t, "roomInfo", "vault", pin), 0, "OK", []any{}, si) // still allowed: 4 < 5
	eq(t, h.di(t, "roomInfo", "vault", "000001"), 1, "wrong adminpin or inexisting room", []any{}, si)
	// Banned now: even the right PIN gets the wrong-PIN reply, and so does
	// the master password.
	eq(t, h.di(t, "roomInfo", "vault", pin), 1, "wrong adminpin or inexisting room", []any{}, si)
	eq(t, h.di(t, "getRoomPassword", "master", "vault"), 403, "Wrong Master Password.", si)
}

func TestRoomUnderAttackIsTarpitted(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		c.Limits.RPCFailures = 0
		c.Limits.RoomFailures = 2
		c.Limits.RoomTarpit = 700 * time.Millisecond
		c.Limits.FailureWindow, c.Limits.BanTime = time.Minute, time.Minute
	})
	pin := norm(h.di(t, "roomCreate", "target")).([]any)[2].(string)
	h.di(t, "roomInfo", "target", "x")
	h.di(t, "roomInfo", "target", "y")
	start := time.Now()
	eq(t, h.di(t, "roomInfo", "target", pin), 0, "OK", []any{}, info(0, 0, 0, 0))
	if el := time.Since(start); el < 700*time.Millisecond {
		t.Fatalf("answered in %v: a room under attack must be slowed by room_tarpit", el)
	}
	start = time.Now()
	h.di(t, "roomInfo", "other", "x")
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("another room was slowed too (%v)", el)
	}
}

func TestMaxRooms(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Limits.MaxRooms = 2 })
	h.di(t, "roomCreate", "a")
	h.di(t, "roomCreate", "b")
	eq(t, h.di(t, "roomCreate", "c"), 1, "too many rooms", "", info(0, 0, 0, 0))
	eq(t, h.di(t, "roomInfo", "d", "p"), 1, "wrong adminpin or inexisting room", []any{}, info(0, 0, 0, 0))
}
