package control

import (
	"fmt"
	"io"
	"net"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/dsp/tone"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// norm turns the stock client's int64s into ints, recursively.
func norm(v any) any {
	switch x := v.(type) {
	case int64:
		return int(x)
	case nil:
		// kolo decodes an empty string value as nil.
		return ""
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = norm(x[i])
		}
		return out
	}
	return v
}

func eq(t *testing.T, got []any, want ...any) {
	t.Helper()
	if g := norm(got); !reflect.DeepEqual(g, want) {
		t.Fatalf("got  %#v\nwant %#v", g, want)
	}
}

func TestEveryFunctionOverXMLRPC(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	si := info(0, 0, 0, 0)
	if n, ok := norm(func() any { var r any; _ = h.cli.Call("calls", nil, &r); return r }()).(int); !ok || n != 0 {
		t.Fatalf("calls() must answer an int")
	}
	r := h.di(t, "roomCreate", "1234")
	pin, _ := r[2].(string)
	eq(t, r, 0, "OK", pin, si)
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(pin) {
		t.Fatalf("pin %q", pin)
	}
	eq(t, h.di(t, "roomCreate", "1234"), 1, "room already opened", "", si)
	direct := norm(h.call(t, "roomCreate", "direct")).([]any)
	eq(t, h.di(t, "getRoomPassword", "master", "direct"), 0, direct[2], si)
	eq(t, h.call(t, "webconference.roomInfo", "1234", pin), 0, "OK", []any{}, si)
	eq(t, h.di(t, "roomInfo", "1234", "bad"), 1, "wrong adminpin or inexisting room", []any{}, si)
	eq(t, h.di(t, "addParticipant", "1234", "pid7", "sip:carol@example.com"), 200, "OK", si)
	eq(t, h.di(t, "roomInfo", "1234", pin), 0, "OK", []any{[]any{"", "sip:carol@example.com", 0, "", 0, "pid7"}}, si)
	eq(t, h.di(t, "findParticipant", "pid7"), []any{"1234"}, si)
	eq(t, h.di(t, "kickout", "1234", pin, "x"), 2, "call does not exist", si)
	eq(t, h.di(t, "mute", "1234", "bad", "x"), 1, "wrong adminpin or inexisting room", si)
	eq(t, h.di(t, "unmute", "1234", pin, "x"), 2, "call does not exist", si)
	eq(t, h.di(t, "changeRoomAdminpin", "1234", pin, "999999"), 0, "OK", si)
	eq(t, h.di(t, "changeRoomAdminpin", "1234", pin, "1"), 1, "wrong adminpin or inexisting room", si)
	eq(t, h.di(t, "getRoomPassword", "master", "1234"), 0, "999999", si)
	eq(t, h.di(t, "getRoomPassword", "wrong", "1234"), 403, "Wrong Master Password.", si)
	eq(t, h.di(t, "getRoomPassword", "master", "none"), 404, "Room does not exist.", si)
	eq(t, h.di(t, "listRooms", "master"), 200, []any{"1234", "direct"}, si)
	eq(t, h.di(t, "listRooms", "wrong"), 407, []any{"Wrong Master Password."}, si)
	eq(t, h.di(t, "serverInfo"), si, si)
	eq(t, h.di(t, "help"), "help text goes here", si)
	eq(t, h.di(t, "vqRoomFeedback", "1234", "x", 5), 0, "OK", si)
	eq(t, h.di(t, "vqCallFeedback", "1234", "x", "tag", 5), 0, "OK", si)
	eq(t, h.di(t, "vqConferenceFeedback", "1234", "x", "me", "good", 5), 0, "OK", si)
	eq(t, h.di(t, "flushFeedback"), si)
	eq(t, h.di(t, "resetFeedback", ""), -2, "no filename given", si)
	eq(t, h.di(t, "resetFeedback", "/etc/shadow"), -1, "error opening new feedback file", si)
	eq(t, h.di(t, "dialout", "1234", "bad", "bob", "me", "example.com", "u", "p"), 1, "wrong adminpin or inexisting room", "", si)
	eq(t, h.di(t, "roomDelete", "1234", "bad"), 1, "wrong adminpin or inexisting room", si)
	eq(t, h.di(t, "roomDelete", "1234", "999999"), 0, "OK", si)
	eq(t, h.di(t, "roomDelete", "1234", "999999"), 2, "room does not exist\n", si)
	list := norm(h.di(t, "_list")).([]any)
	if len(list) != 15 || list[0] != "roomCreate" {
		t.Fatalf("_list %v", list)
	}
	for _, tc := range []struct {
		method string
		args   []any
		code   int
		msg    string
	}{
		{"di", []any{"webconference", "nosuchmethod"}, 504, "Exception: AmDynInvoke::NotImplemented: nosuchmethod"},
		{"di", []any{"nosuch", "roomCreate", "1"}, 500, "could not get factory"},
		{"di", []any{"webconference"}, 400, "need at least factory name and function name to call"},
		{"di", []any{"webconference", "roomInfo", "1234"}, 300, "Exception: AmArg out of bounds - parameter number mismatch."},
		{"roomInfo", []any{1234, "x"}, 300, "Exception: Type mismatch in arguments."},
		{"nosuchmethod", []any{}, -1, "nosuchmethod: unknown method name"},
	} {
		f := h.fault(t, tc.method, tc.args...)
		if f.Code != tc.code || f.String != tc.msg {
			t.Errorf("%s%v: fault %d %q, want %d %q", tc.method, tc.args, f.Code, f.String, tc.code, tc.msg)
		}
	}
}

// rawCall posts body over a fresh connection and returns the whole HTTP
// response.
func rawCall(t *testing.T, addr, body string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /RPC2 HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: gzip\r\nContent-Type: text/xml\r\nUser-Agent: Python-xmlrpc/3.11\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", addr, len(body), body)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pyCall is the body Python's xmlrpc.client sends (spec A.2).
func pyCall(method string, params ...string) string {
	var sb strings.Builder
	sb.WriteString("<?xml version='1.0'?>\n<methodCall>\n<methodName>" + method + "</methodName>\n<params>\n")
	for _, p := range params {
		sb.WriteString("<param>\n<value><string>" + p + "</string></value>\n</param>\n")
	}
	sb.WriteString("</params>\n</methodCall>\n")
	return sb.String()
}

func httpReply(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nServer: XMLRPC++ 0.8\r\nContent-Type: text/xml\r\nContent-length: %d\r\n\r\n%s", len(body), body)
}

// TestMasterPasswordOff: master_password=off gives SEMS's empty master
// password: getRoomPassword and listRooms refuse everyone, "off" too.
func TestMasterPasswordOff(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Webconference.MasterPassword = "off" })
	si := info(0, 0, 0, 0)
	if r := h.di(t, "roomCreate", "1234"); len(r) < 1 || r[0] != int64(0) {
		t.Fatalf("roomCreate: %v", r)
	}
	for _, pw := range []string{"off", ""} {
		eq(t, h.di(t, "getRoomPassword", pw, "1234"), 403, "Wrong Master Password.", si)
		eq(t, h.di(t, "listRooms", pw), 407, []any{"Wrong Master Password."}, si)
	}
}

func TestWireBytesMatchSEMS(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	addr := h.node.RPCAddr()
	si := info(0, 0, 0, 0)
	const head = "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param>\r\n\t<value>"
	const tail = "</value>\r\n</param></params></methodResponse>\r\n"

	got := rawCall(t, addr, pyCall("roomCreate", "1234"))
	pin := regexp.MustCompile(`<value>([0-9]{6})</value>`).FindStringSubmatch(got)
	if pin == nil {
		t.Fatalf("no PIN in %q", got)
	}
	want := httpReply(head + "<array><data><value><i4>0</i4></value><value>OK</value><value>" + pin[1] + "</value><value>" + si + "</value></data></array>" + tail)
	if got != want {
		t.Fatalf("roomCreate:\n got %q\nwant %q", got, want)
	}
	got = rawCall(t, addr, pyCall("roomInfo", "1234", "wrong"))
	want = httpReply(head + "<array><data><value><i4>1</i4></value><value>wrong adminpin or inexisting room</value><value><array><data></data></array></value><value>" + si + "</value></data></array>" + tail)
	if got != want {
		t.Fatalf("roomInfo wrong pin:\n got %q\nwant %q", got, want)
	}
	got = rawCall(t, addr, pyCall("di", "webconference", "nosuchmethod"))
	want = httpReply("<?xml version=\"1.0\"?>\r\n<methodResponse><fault>\r\n\t<value><struct><member><name>faultCode</name><value><i4>504</i4></value></member><member><name>faultString</name><value>Exception: AmDynInvoke::NotImplemented: nosuchmethod</value></member></struct></value>\r\n</fault></methodResponse>\r\n")
	if got != want {
		t.Fatalf("di fault:\n got %q\nwant %q", got, want)
	}
	got = rawCall(t, addr, pyCall("listRooms", "bad"))
	want = httpReply(head + "<array><data><value><i4>407</i4></value><value><array><data><value>Wrong Master Password.</value></data></array></value><value>" + si + "</value></data></array>" + tail)
	if got != want {
		t.Fatalf("listRooms:\n got %q\nwant %q", got, want)
	}
	got = rawCall(t, addr, pyCall("roomInfo", "1234"))
	want = httpReply("<?xml version=\"1.0\"?>\r\n<methodResponse><fault>\r\n\t<value><struct><member><name>faultCode</name><value><i4>300</i4></value></member><member><name>faultString</name><value>Exception: AmArg out of bounds - parameter number mismatch.</value></member></struct></value>\r\n</fault></methodResponse>\r\n")
	if got != want {
		t.Fatalf("roomInfo arity fault:\n got %q\nwant %q", got, want)
	}

	// A dialled-in caller in roomInfo, with SEMS's number form, escaped.
	p := h.dial(t, phone.Config{User: "conference", FromUser: "sipp", DisplayName: "sipp", Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=1234")}})
	testutil.WaitFor(t, 5*time.Second, "the caller in the room", func() bool { return h.connected("1234") == 1 })
	got = rawCall(t, addr, pyCall("roomInfo", "1234", pin[1]))
	part := `<value><array><data><value>` + regexp.QuoteMeta(p.RemoteTag()) + `</value><value>sipp &lt;sip:sipp@127\.0\.0\.1(:[0-9]+)?&gt;</value><value><i4>3</i4></value><value>direct access: entered</value><value><i4>0</i4></value><value></value></data></array></value>`
	body := regexp.QuoteMeta(head+"<array><data><value><i4>0</i4></value><value>OK</value><value><array><data>") + part +
		regexp.QuoteMeta("</data></array></value><value>"+info(1, 0, 0, 0)+"</value></data></array>"+tail)
	re := regexp.MustCompile("^" + regexp.QuoteMeta("HTTP/1.1 200 OK\r\nServer: XMLRPC++ 0.8\r\nContent-Type: text/xml\r\nContent-length: ") +
		`([0-9]+)\r\n\r\n(` + body + ")$")
	m := re.FindStringSubmatch(got)
	if m == nil || m[1] != fmt.Sprint(len(m[2])) {
		t.Logf("pattern %s", re)
		t.Fatalf("roomInfo with a caller:\n%q", got)
	}
}

func TestLiveCallControl(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	pin := norm(h.di(t, "roomCreate", "77")).([]any)[2].(string)
	room := []sip.Header{sip.NewHeader("P-App-Param", "room=77")}
	a := h.dial(t, phone.Config{FromUser: "alice", Headers: room})
	// Records are listed in join order; the join follows the ACK.
	testutil.WaitFor(t, 5*time.Second, "alice in the room", func() bool { return h.connected("77") == 1 })
	b := h.dial(t, phone.Config{FromUser: "bob", Headers: room})
	a.SetTone(500)
	b.SetTone(700)
	hears := func(p *phone.Phone, f float64) {
		t.Helper()
		if err := p.WaitLevel(testutil.Ctx(t, 8*time.Second), f, 1500, 200*time.Millisecond); err != nil {
			t.Fatalf("not hearing %.0f Hz: %v", f, err)
		}
	}
	hears(b, 500)
	parts := norm(h.di(t, "roomInfo", "77", pin)).([]any)[2].([]any)
	if len(parts) != 2 {
		t.Fatalf("participants %v", parts)
	}
	first := parts[0].([]any)
	if first[0] != a.RemoteTag() || !strings.HasPrefix(first[1].(string), "<sip:alice@") || first[2] != 3 || first[3] != "direct access: entered" || first[4] != 0 || first[5] != "" {
		t.Fatalf("alice's record %v", first)
	}
	si := info(2, 0, 0, 0)
	eq(t, h.di(t, "mute", "77", pin, a.RemoteTag()), 0, "OK", si)
	if err := b.WaitQuiet(testutil.Ctx(t, 5*time.Second), 500, 300, 200*time.Millisecond); err != nil {
		t.Fatalf("alice still audible after mute: %v", err)
	}
	if lvl := tone.Level(a.Audio(200*time.Millisecond), 700); lvl < 1500 {
		t.Fatalf("muted alice must still hear bob (level %.0f)", lvl)
	}
	if rec := norm(h.di(t, "roomInfo", "77", pin)).([]any)[2].([]any)[0].([]any); rec[4] != 1 {
		t.Fatalf("muted flag not in roomInfo: %v", rec)
	}
	eq(t, h.di(t, "unmute", "77", pin, a.RemoteTag()), 0, "OK", si)
	hears(b, 500)
	eq(t, h.di(t, "kickout", "77", pin, a.RemoteTag()), 0, "OK", si)
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("kickout sent no BYE")
	}
	c := h.dial(t, phone.Config{FromUser: "carol", Headers: room})
	// A call leaves the active count just before it is counted as
	// finished (SEMS's order too): wait for both.
	ended := func() uint64 { total, _, _ := h.node.SIP.Stats().Snapshot(); return total }
	testutil.WaitFor(t, 5*time.Second, "carol in and alice gone", func() bool {
		return h.node.SIP.ActiveCalls() == 2 && h.connected("77") == 2 && ended() == 1
	})
	eq(t, h.di(t, "roomDelete", "77", pin), 0, "OK", info(2, 1, 1, 0))
	for _, p := range []*phone.Phone{b, c} {
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("roomDelete did not hang up everyone")
		}
	}
	testutil.WaitFor(t, 5*time.Second, "no calls", func() bool { return h.node.SIP.ActiveCalls() == 0 && ended() == 3 })
	eq(t, h.di(t, "listRooms", "master"), 200, []any{}, info(0, 3, 3, 0))
}
