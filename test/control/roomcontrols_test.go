package control

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/prompts"
	"webconf/rpc/events"
	"webconf/rpc/node"
	"webconf/rpc/xmlrpc/client"
	"webconf/test/phone"
	"webconf/test/testnode"
	"webconf/test/testutil"
)

// Tones of the prompts these tests listen for; callers stay at or below
// 1300 Hz.
const (
	fEnterPin = 1500.0
	fLocked   = 2050.0
)

// tonePrompts are the built-in prompts with the ones these tests listen
// for replaced by tones.
func tonePrompts() *prompts.Set {
	p := *prompts.Builtin()
	p.EnterPin = testutil.Tone(fEnterPin, 1500*time.Millisecond)
	p.RoomLocked = testutil.Tone(fLocked, 800*time.Millisecond)
	p.EnteringConference = testutil.Tone(1800, 200*time.Millisecond)
	for d := range p.Digits {
		p.Digits[d] = testutil.Tone(2500, 100*time.Millisecond)
	}
	return &p
}

// startControls is a node with tone prompts and direct_room_re 000777.
func startControls(t *testing.T) *harness {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Webconference.DirectRoomRE = regexp.MustCompile("^000777")
	cfg.Webconference.DirectRoomStrip = 6
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return startOpts(t, cfg, node.Options{Prompts: tonePrompts()})
}

func hearTone(t *testing.T, p *phone.Phone, f float64, what string) {
	t.Helper()
	if err := p.WaitLevel(testutil.Ctx(t, 8*time.Second), f, 1500, 100*time.Millisecond); err != nil {
		t.Fatalf("waiting to hear %s (%.0f Hz): %v", what, f, err)
	}
}

func quietTone(t *testing.T, p *phone.Phone, f float64, what string) {
	t.Helper()
	if err := p.WaitQuiet(testutil.Ctx(t, 8*time.Second), f, 300, 300*time.Millisecond); err != nil {
		t.Fatalf("waiting for %s (%.0f Hz) to stop: %v", what, f, err)
	}
}

func roomHeader(name string) []sip.Header {
	return []sip.Header{sip.NewHeader("P-App-Param", "room="+name)}
}

// jsonResult calls a JSON-RPC method and returns its result.
func jsonResult(t *testing.T, h *harness, method string, params ...any) any {
	t.Helper()
	p, _ := json.Marshal(params)
	code, b := jsonCall(t, h, `{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+string(p)+`}`)
	var r struct {
		Result any `json:"result"`
		Error  any `json:"error"`
	}
	if code != 200 || json.Unmarshal(b, &r) != nil || r.Error != nil {
		t.Fatalf("%s: HTTP %d %s", method, code, b)
	}
	return r.Result
}

// participantsByTag is roomParticipants over JSON-RPC: the lock and each
// record by call tag.
func participantsByTag(t *testing.T, h *harness, room, pin string) (bool, map[string]map[string]any) {
	t.Helper()
	res := jsonResult(t, h, "roomParticipants", room, pin).([]any)
	if res[0] != float64(0) || res[1] != "OK" {
		t.Fatalf("roomParticipants: %v", res)
	}
	obj := res[2].(map[string]any)
	out := map[string]map[string]any{}
	for _, p := range obj["participants"].([]any) {
		m := p.(map[string]any)
		out[m["call_tag"].(string)] = m
	}
	return obj["locked"].(bool), out
}

// operatorEvents opens the event stream with the operator's credentials
// (the master password): every room's events.
func (h *harness) operatorEvents(t *testing.T) *testutil.EventStream {
	t.Helper()
	return testutil.OpenEvents(t, h.node.HTTPAddr(), "", testutil.BasicHeader("admin", "master"))
}

// partEv is the expected room_participant_* event of an XML-RPC room's
// caller: the SEMS call tag as call_id, roomParticipants' number and
// participant_id, no meeting.
func partEv(name, room, tag string, rec map[string]any) testutil.Event {
	return testutil.Ev(name, "room", room, "call_id", tag, "number", rec["number"],
		"participant_id", rec["participant_id"], "meeting_uuid", nil)
}

// TestRoomMuteAllOverXMLRPC: three phones in an XML-RPC room; roomMuteAll
// naming the asker leaves the asker audible and the others not (they still
// hear), roomParticipants says who is muted and talking, roomUnmuteAll
// brings them back. roomInfo keeps SEMS's arrays.
func TestRoomMuteAllOverXMLRPC(t *testing.T) {
	t.Parallel()
	h := startControls(t)
	op := h.operatorEvents(t)
	pin := norm(h.di(t, "roomCreate", "500")).([]any)[2].(string)
	a := h.dial(t, phone.Config{FromUser: "alice", Headers: roomHeader("500")})
	b := h.dial(t, phone.Config{FromUser: "bob", Headers: roomHeader("500")})
	c := h.dial(t, phone.Config{FromUser: "carol", Headers: roomHeader("500")})
	a.SetTone(500)
	b.SetTone(700)
	c.SetTone(900)
	testutil.WaitFor(t, 5*time.Second, "three callers in the room", func() bool { return h.connected("500") == 3 })
	hearTone(t, a, 700, "bob")
	hearTone(t, a, 900, "carol")
	si := info(3, 0, 0, 0)
	_, recs := participantsByTag(t, h, "500", pin)
	ta, tb, tc := a.RemoteTag(), b.RemoteTag(), c.RemoteTag()
	ra, rb, rc := recs[ta], recs[tb], recs[tc]
	for i, r := range []map[string]any{ra, rb, rc} {
		if r == nil || !strings.Contains(r["number"].(string), []string{"alice", "bob", "carol"}[i]) {
			t.Fatalf("roomParticipants records %v", recs)
		}
	}
	op.Expect(t, "operator", testutil.Ev(events.RoomCreated, "room", "500"),
		partEv(events.RoomParticipantJoined, "500", ta, ra),
		partEv(events.RoomParticipantJoined, "500", tb, rb),
		partEv(events.RoomParticipantJoined, "500", tc, rc))

	eq(t, h.call(t, "roomMuteAll", "500", pin, ta), 0, "OK", si)
	// One event per call whose state changed, in the room's order: not
	// the asker.
	op.Expect(t, "operator", partEv(events.RoomParticipantMuted, "500", tb, rb),
		partEv(events.RoomParticipantMuted, "500", tc, rc))
	quietTone(t, a, 700, "bob after mute-all")
	quietTone(t, a, 900, "carol after mute-all")
	quietTone(t, b, 900, "carol after mute-all")
	hearTone(t, b, 500, "alice, who asked")
	hearTone(t, c, 500, "alice, who asked")
	hearTone(t, c, 500, "alice, who asked")
	testutil.WaitFor(t, 5*time.Second, "alice talking, bob and carol muted", func() bool {
		locked, ps := participantsByTag(t, h, "500", pin)
		pa, pb, pc := ps[a.RemoteTag()], ps[b.RemoteTag()], ps[c.RemoteTag()]
		return !locked && pa["muted"] == false && pa["talking"] == true && pb["muted"] == true && pc["muted"] == true &&
			pa["status"] == float64(3) && pa["reason"] == "direct access: entered" && strings.Contains(pa["number"].(string), "alice")
	})
	// roomInfo is SEMS's: arrays of six, muted as 0/1, nothing more.
	got := rawCall(t, h.node.RPCAddr(), pyCall("roomInfo", "500", pin))
	if strings.Contains(got, "<struct>") || strings.Contains(got, "talking") {
		t.Fatalf("roomInfo changed shape: %q", got)
	}
	for _, rec := range norm(h.di(t, "roomInfo", "500", pin)).([]any)[2].([]any) {
		r := rec.([]any)
		if len(r) != 6 || r[4] != map[bool]int{true: 0, false: 1}[r[0] == a.RemoteTag()] {
			t.Fatalf("roomInfo record %v", r)
		}
	}

	eq(t, h.call(t, "webconference.roomUnmuteAll", "500", pin), 0, "OK", si)
	hearTone(t, a, 700, "bob after unmute-all")
	hearTone(t, a, 900, "carol after unmute-all")
	op.Expect(t, "operator", partEv(events.RoomParticipantUnmuted, "500", tb, rb),
		partEv(events.RoomParticipantUnmuted, "500", tc, rc))

	// Errors change nothing.
	eq(t, h.call(t, "roomMuteAll", "500", "bad"), 1, "wrong adminpin or inexisting room", si)
	eq(t, h.call(t, "roomMuteAll", "500", pin, "nobody"), 2, "call does not exist", si)
	eq(t, h.di(t, "roomUnmuteAll", "500", "bad"), 1, "wrong adminpin or inexisting room", si)
	if f := h.fault(t, "roomMuteAll", "500"); f.Code != 300 || f.String != "Exception: AmArg out of bounds - parameter number mismatch." {
		t.Fatalf("roomMuteAll without a PIN: %+v", f)
	}
	if f := h.fault(t, "roomParticipants", "500", 7); f.Code != 300 || f.String != "Exception: Type mismatch in arguments." {
		t.Fatalf("roomParticipants with an int PIN: %+v", f)
	}
	hearTone(t, b, 900, "carol, after the refused requests")
	// Without an asker, everyone is muted.
	eq(t, h.call(t, "roomMuteAll", "500", pin), 0, "OK", si)
	quietTone(t, b, 500, "alice after a mute-all without asker")
	// The refused requests published nothing: the next events are this
	// mute-all's, alice's too.
	op.Expect(t, "operator", partEv(events.RoomParticipantMuted, "500", ta, ra),
		partEv(events.RoomParticipantMuted, "500", tb, rb),
		partEv(events.RoomParticipantMuted, "500", tc, rc))
}

// TestRoomLockOverXMLRPC: a locked XML-RPC room refuses a keypad caller
// with room_locked and BYE, and a direct dial (direct_room_re, P-App-Param)
// with 403 before the answer; the caller in it stays; roomUnlock lets
// them in.
func TestRoomLockOverXMLRPC(t *testing.T) {
	t.Parallel()
	h := startControls(t)
	op := h.operatorEvents(t)
	pin := norm(h.di(t, "roomCreate", "600")).([]any)[2].(string)
	a := h.dial(t, phone.Config{FromUser: "alice", Headers: roomHeader("600")})
	testutil.WaitFor(t, 5*time.Second, "alice in the room", func() bool { return h.connected("600") == 1 })
	si := info(1, 0, 0, 0)
	_, recs := participantsByTag(t, h, "600", pin)
	op.Expect(t, "operator", testutil.Ev(events.RoomCreated, "room", "600"),
		partEv(events.RoomParticipantJoined, "600", a.RemoteTag(), recs[a.RemoteTag()]))

	eq(t, h.call(t, "roomLock", "600", "bad"), 1, "wrong adminpin or inexisting room", si)
	if locked, _ := participantsByTag(t, h, "600", pin); locked {
		t.Fatal("a refused roomLock locked the room")
	}
	eq(t, h.call(t, "roomLock", "600", pin), 0, "OK", si)
	if locked, _ := participantsByTag(t, h, "600", pin); !locked {
		t.Fatal("roomParticipants does not show the lock")
	}

	refused := func(cfg phone.Config, what string) {
		t.Helper()
		cfg.Server = h.node.SIP.Addr()
		p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), cfg)
		if err == nil {
			p.Close()
			t.Fatalf("%s: answered, want 403 before the answer", what)
		}
		var se *phone.StatusError
		if !errors.As(err, &se) || se.Code != 403 || !strings.Contains(se.Reason, "Locked") {
			t.Fatalf("%s: %v, want 403 saying the conference is locked", what, err)
		}
	}
	refused(phone.Config{User: "000777600"}, "direct_room_re dial")
	refused(phone.Config{User: "conference", Headers: roomHeader("600")}, "P-App-Param room dial")

	k := h.dial(t, phone.Config{User: "conference", FromUser: "keypad"})
	hearTone(t, k, fEnterPin, "enter_pin")
	if err := k.SendDTMF(testutil.Ctx(t, 10*time.Second), "600#", phone.RFC4733); err != nil {
		t.Fatal(err)
	}
	hearTone(t, k, fLocked, "room_locked")
	select {
	case <-k.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the keypad caller of a locked room got no BYE")
	}
	select {
	case <-a.Done():
		t.Fatal("the caller already in was hung up by the lock")
	default:
	}
	if n := h.connected("600"); n != 1 {
		t.Fatalf("%d callers in the locked room, want 1", n)
	}

	if r := norm(h.di(t, "roomUnlock", "600", pin)).([]any); r[0] != 0 || r[1] != "OK" {
		t.Fatalf("roomUnlock: %v", r)
	}
	b := h.dial(t, phone.Config{User: "000777600", FromUser: "bob"})
	k2 := h.dial(t, phone.Config{User: "conference", FromUser: "keypad2"})
	hearTone(t, k2, fEnterPin, "enter_pin")
	if err := k2.SendDTMF(testutil.Ctx(t, 10*time.Second), "600#", phone.RFC4733); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "bob and the keypad caller in after the unlock", func() bool { return h.connected("600") == 3 })
	// The refused request, the refused callers and the hung-up keypad
	// caller published nothing: the lock, the unlock, then the callers
	// let in.
	_, recs = participantsByTag(t, h, "600", pin)
	op.Expect(t, "operator", testutil.Ev(events.RoomLocked, "room", "600"), testutil.Ev(events.RoomUnlocked, "room", "600"),
		partEv(events.RoomParticipantJoined, "600", b.RemoteTag(), recs[b.RemoteTag()]),
		partEv(events.RoomParticipantJoined, "600", k2.RemoteTag(), recs[k2.RemoteTag()]))
	a.SetTone(500)
	hearTone(t, b, 500, "alice")
	hearTone(t, k2, 500, "alice")
}

// TestRoomControlNames: the new names are not in SEMS's _list, but di,
// the direct names and JSON-RPC answer them.
func TestRoomControlNames(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Webconference.PrivateRooms = true })
	si := info(0, 0, 0, 0)
	list := norm(h.di(t, "_list")).([]any)
	if len(list) != 15 {
		t.Fatalf("_list has %d names: %v", len(list), list)
	}
	for _, n := range list {
		if strings.HasPrefix(n.(string), "roomLock") || strings.HasPrefix(n.(string), "roomUnlock") ||
			strings.Contains(n.(string), "MuteAll") || n == "roomParticipants" {
			t.Fatalf("_list names %s, which SEMS does not have", n)
		}
	}
	pin := norm(h.di(t, "roomCreate", "700")).([]any)[2].(string)
	for _, m := range []string{"roomLock", "webconference.roomLock", "roomUnlock", "webconference.roomUnlock",
		"roomUnmuteAll", "webconference.roomUnmuteAll", "roomMuteAll", "webconference.roomMuteAll"} {
		eq(t, h.call(t, m, "700", pin), 0, "OK", si)
	}
	// Private mode: an unknown room is not made by the getRoom rule.
	eq(t, h.di(t, "roomLock", "nosuch", "x"), 1, "wrong adminpin or inexisting room", si)
	if r := norm(h.di(t, "roomParticipants", "nosuch", "x")).([]any); len(r) != 4 || r[0] != 1 || r[1] != "wrong adminpin or inexisting room" || r[3] != si {
		t.Fatalf("roomParticipants of no room: %v", r)
	}
	if h.node.SIP.Registry().Exists("nosuch") {
		t.Fatal("roomLock made a room in private mode")
	}
	res, _ := json.Marshal(jsonResult(t, h, "roomLock", "700", pin))
	if string(res) != `[0,"OK","`+si+`"]` {
		t.Fatalf("JSON-RPC roomLock: %s", res)
	}
	res, _ = json.Marshal(jsonResult(t, h, "roomParticipants", "700", pin))
	if string(res) != `[0,"OK",{"locked":true,"participants":[]},"`+si+`"]` {
		t.Fatalf("JSON-RPC roomParticipants: %s", res)
	}
	_, b := jsonCall(t, h, `{"jsonrpc":"2.0","id":1,"method":"roomLock","params":["700"]}`)
	if !strings.Contains(string(b), `"code":-32602`) {
		t.Fatalf("roomLock without a PIN over JSON-RPC: %s", b)
	}
}

// TestRoomLockSurvivesARestart: the lock is stored with the room.
func TestRoomLockSurvivesARestart(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, t.TempDir())
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	first, err := node.Start(cfg, node.Options{Log: testnode.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	h1 := &harness{node: first}
	cli, err := client.New("http://" + first.RPCAddr() + "/RPC2")
	if err != nil {
		t.Fatal(err)
	}
	h1.cli = cli
	pin := norm(h1.di(t, "roomCreate", "800")).([]any)[2].(string)
	if r := norm(h1.di(t, "roomLock", "800", pin)).([]any); r[0] != 0 {
		t.Fatalf("roomLock: %v", r)
	}
	cli.Close()
	if err := first.Shutdown(testutil.Ctx(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	h := startCfg(t, cfg)
	if locked, _ := participantsByTag(t, h, "800", pin); !locked {
		t.Fatal("the lock is gone after a restart")
	}
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: h.node.SIP.Addr(), Headers: roomHeader("800")})
	if err == nil {
		p.Close()
		t.Fatal("a direct dial into the restored locked room was answered")
	}
	var se *phone.StatusError
	if !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("direct dial after the restart: %v, want 403", err)
	}
}
