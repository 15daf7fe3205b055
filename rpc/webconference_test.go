package rpc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"webconf/sipapp"
	"webconf/sipapp/room"
)

const testSig = "webconf test"

func newService(t *testing.T, edit func(*sipapp.Options, *Options)) *Service {
	t.Helper()
	so := sipapp.Options{SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 40000, RTPHigh: 40100,
		Registry: room.Config{RoomsExpire: true, RoomsExpireDelay: 7200e9, ParticipantsExpire: true, ParticipantsExpireDelay: 10e9}}
	ro := Options{Signature: testSig, MasterPassword: "master", RoomSweepInterval: 10, ExportDI: true, DirectExport: []string{"webconference"}}
	if edit != nil {
		edit(&so, &ro)
	}
	srv, err := sipapp.New(so)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(srv, ro)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

const si = "Server: " + testSig + " calls: 0 active/0 total/0 connect/0 min"

// call runs a method through di and through its direct name and checks
// that both give the same.
func call(t *testing.T, s *Service, fn string, args ...any) []any {
	t.Helper()
	res, err := s.Table().Call(context.Background(), "di", append([]any{"webconference", fn}, args...))
	if err != nil {
		t.Fatalf("di %s%v: %v", fn, args, err)
	}
	arr, ok := res.([]any)
	if !ok {
		t.Fatalf("%s: result %T, want an array", fn, res)
	}
	return arr
}

func fault(t *testing.T, s *Service, method string, args ...any) *Fault {
	t.Helper()
	_, err := s.Table().Call(context.Background(), method, args)
	var f *Fault
	if !errors.As(err, &f) {
		t.Fatalf("%s%v: got %v, want a fault", method, args, err)
	}
	return f
}

func eq(t *testing.T, got []any, want ...any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

func TestRoomLifecycle(t *testing.T) {
	s := newService(t, nil)
	r := call(t, s, "roomCreate", "1234")
	pin, _ := r[2].(string)
	if len(r) != 4 || r[0] != 0 || r[1] != "OK" || len(pin) != 6 || strings.Trim(pin, "0123456789") != "" || r[3] != si {
		t.Fatalf("roomCreate: %#v", r)
	}
	eq(t, call(t, s, "roomCreate", "1234"), 1, "room already opened", "", si)
	eq(t, call(t, s, "roomInfo", "1234", pin), 0, "OK", []any{}, si)
	eq(t, call(t, s, "roomInfo", "1234", "wrong"), 1, "wrong adminpin or inexisting room", []any{}, si)
	eq(t, call(t, s, "changeRoomAdminpin", "1234", "wrong", "x"), 1, "wrong adminpin or inexisting room", si)
	eq(t, call(t, s, "changeRoomAdminpin", "1234", pin, "4321"), 0, "OK", si)
	eq(t, call(t, s, "getRoomPassword", "master", "1234"), 0, "4321", si)
	eq(t, call(t, s, "getRoomPassword", "bad", "1234"), 403, "Wrong Master Password.", si)
	eq(t, call(t, s, "getRoomPassword", "master", "nope"), 404, "Room does not exist.", si)
	eq(t, call(t, s, "listRooms", "bad"), 407, []any{"Wrong Master Password."}, si)
	eq(t, call(t, s, "addParticipant", "1234", "p1", "sip:x@y"), 200, "OK", si)
	eq(t, call(t, s, "roomInfo", "1234", "4321"), 0, "OK", []any{[]any{"", "sip:x@y", 0, "", 0, "p1"}}, si)
	eq(t, call(t, s, "findParticipant", "p1"), []any{"1234"}, si)
	eq(t, call(t, s, "findParticipant", "nobody"), []any{}, si)
	eq(t, call(t, s, "kickout", "1234", "4321", "nosuchtag"), 2, "call does not exist", si)
	eq(t, call(t, s, "mute", "1234", "bad", "x"), 1, "wrong adminpin or inexisting room", si)
	eq(t, call(t, s, "unmute", "1234", "4321", "x"), 2, "call does not exist", si)
	// Public mode: roomInfo on an unknown room creates it with that PIN.
	eq(t, call(t, s, "roomInfo", "new", "np"), 0, "OK", []any{}, si)
	eq(t, call(t, s, "listRooms", "master"), 200, []any{"1234", "new"}, si)
	eq(t, call(t, s, "roomDelete", "1234", "bad"), 1, "wrong adminpin or inexisting room", si)
	eq(t, call(t, s, "roomDelete", "1234", "4321"), 0, "OK", si)
	eq(t, call(t, s, "roomDelete", "1234", "4321"), 2, "room does not exist\n", si)
	eq(t, call(t, s, "dialout", "new", "bad", "a", "b", "c", "d", "e"), 1, "wrong adminpin or inexisting room", "", si)
}

func TestPrivateMode(t *testing.T) {
	s := newService(t, func(so *sipapp.Options, ro *Options) { so.Registry.Private = true; ro.Private = true })
	eq(t, call(t, s, "roomInfo", "x", "y"), 1, "wrong adminpin or inexisting room", []any{}, si)
	eq(t, call(t, s, "addParticipant", "x", "p", "n"), 400, "Failed", si)
	eq(t, call(t, s, "listRooms", "master"), 200, []any{}, si)
}

func TestMasterPasswordUnsetRefusesEverything(t *testing.T) {
	s := newService(t, func(_ *sipapp.Options, ro *Options) { ro.MasterPassword = "" })
	eq(t, call(t, s, "listRooms", ""), 407, []any{"Wrong Master Password."}, si)
	eq(t, call(t, s, "getRoomPassword", "", "x"), 403, "Wrong Master Password.", si)
}

func TestSpecialReplies(t *testing.T) {
	s := newService(t, nil)
	eq(t, call(t, s, "serverInfo"), si, si)
	eq(t, call(t, s, "help"), "help text goes here", si)
	eq(t, call(t, s, "flushFeedback"), si)
	list := call(t, s, "_list")
	if len(list) != 15 || list[0] != "roomCreate" || list[14] != "findParticipant" {
		t.Fatalf("_list: %#v", list)
	}
	res, err := s.Table().Call(context.Background(), "calls", nil)
	if err != nil || res != 0 {
		t.Fatalf("calls: %v %v", res, err)
	}
}

func TestFaults(t *testing.T) {
	s := newService(t, nil)
	for _, tc := range []struct {
		method string
		args   []any
		code   int
		msg    string
	}{
		{"di", []any{"webconference"}, 400, "need at least factory name and function name to call"},
		{"di", []any{"nosuch", "roomCreate"}, 500, "could not get factory"},
		{"di", []any{"webconference", "nosuchmethod"}, 504, "Exception: AmDynInvoke::NotImplemented: nosuchmethod"},
		{"di", []any{"webconference", "roomInfo", "1234"}, 300, "Exception: AmArg out of bounds - parameter number mismatch."},
		{"di", []any{"webconference", "roomInfo"}, 300, "Exception: Type mismatch in arguments."},
		{"roomInfo", []any{1234, "x"}, 300, "Exception: Type mismatch in arguments."},
		{"vqRoomFeedback", []any{"r", "p", "5"}, 300, "Exception: Type mismatch in arguments."},
		{"nosuch", nil, -1, "nosuch: unknown method name"},
		{"addParticipant", []any{"a", "b", "c"}, -1, "addParticipant: unknown method name"}, // di only
	} {
		f := fault(t, s, tc.method, tc.args...)
		if f.Code != tc.code || f.Message != tc.msg {
			t.Errorf("%s%v: fault %d %q, want %d %q", tc.method, tc.args, f.Code, f.Message, tc.code, tc.msg)
		}
	}
	// Extra trailing arguments are ignored.
	eq(t, call(t, s, "roomInfo", "r", "p", "extra", 5), 0, "OK", []any{}, si)
}

func TestDirectExportNames(t *testing.T) {
	s := newService(t, func(_ *sipapp.Options, ro *Options) { ro.DirectExport = nil })
	if f := fault(t, s, "roomCreate", "1"); f.Code != -1 {
		t.Fatalf("roomCreate without direct_export: %v", f)
	}
	s = newService(t, nil)
	for _, name := range []string{"roomCreate", "webconference.roomCreate"} {
		res, err := s.Table().Call(context.Background(), name, []any{"room-" + name})
		if err != nil || res.([]any)[0] != 0 {
			t.Fatalf("%s: %v %v", name, res, err)
		}
	}
	s = newService(t, func(_ *sipapp.Options, ro *Options) { ro.ExportDI = false })
	if f := fault(t, s, "di", "webconference", "help"); f.Code != -1 {
		t.Fatalf("di without export_di: %v", f)
	}
}

func TestFeedbackFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "feedback.txt")
	s := newService(t, func(_ *sipapp.Options, ro *Options) { ro.FeedbackFile = path })
	s.fb.now = func() (tm timeT) { return fixed }
	eq(t, call(t, s, "vqRoomFeedback", "r1", "pin", 4), 0, "OK", si)
	eq(t, call(t, s, "vqCallFeedback", "r1", "pin", "TAG", 3), 0, "OK", si)
	eq(t, call(t, s, "vqConferenceFeedback", "r1", "pin", "bob", "nice", 5), 0, "OK", si)
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Fatalf("written before flushFeedback: %q", b)
	}
	call(t, s, "flushFeedback")
	want := "RO r1|||pin|||4|||1700000000|||\nCA|||r1|||pin|||TAG|||3|||1700000000|||\nCO|||r1|||pin|||5|||bob|||nice|||1700000000|||\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Fatalf("feedback file:\n%q\nwant\n%q", b, want)
	}
	eq(t, call(t, s, "resetFeedback", ""), -2, "no filename given", si)
	eq(t, call(t, s, "resetFeedback", "/etc/passwd"), -1, "error opening new feedback file", si)
	eq(t, call(t, s, "resetFeedback", "../escape.txt"), -1, "error opening new feedback file", si)
	eq(t, call(t, s, "resetFeedback", "new.txt"), 0, "OK", si)
	eq(t, call(t, s, "resetFeedback", filepath.Join(dir, "abs.txt")), 0, "OK", si)
	call(t, s, "vqRoomFeedback", "r2", "p", 1)
	call(t, s, "flushFeedback")
	if b, _ := os.ReadFile(filepath.Join(dir, "abs.txt")); string(b) != "RO r2|||p|||1|||1700000000|||\n" {
		t.Fatalf("new feedback file: %q", b)
	}
}

type timeT = time.Time

var fixed = time.Unix(1700000000, 0)

// BenchmarkRoomInfo is the table's share of an XML-RPC roomInfo request
// (cmd/rpcload's loop): the PIN check, the room's reading and the
// server-info string, for a client whose address the codec has recorded.
func BenchmarkRoomInfo(b *testing.B) {
	so := sipapp.Options{SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 40000, RTPHigh: 40100}
	srv, err := sipapp.New(so)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(srv, Options{Signature: testSig, DirectExport: []string{"webconference"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	ctx := WithClient(context.Background(), "127.0.0.1")
	res, err := s.Table().Call(ctx, "roomCreate", []any{"bench"})
	if err != nil {
		b.Fatal(err)
	}
	args := []any{"bench", res.([]any)[2]}
	b.ReportAllocs()
	for b.Loop() {
		r, err := s.Table().Call(ctx, "roomInfo", args)
		if err != nil || r.([]any)[0] != 0 {
			b.Fatalf("%v %v", r, err)
		}
	}
}
