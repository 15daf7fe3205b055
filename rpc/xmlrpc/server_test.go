package xmlrpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"webconf/rpc"
)

// The server-info strings of Appendix A.4.
const (
	si0 = "Server: Sip Express Media Server (1.6.0 (x86_64/linux)) calls: 0 active/0 total/0 connect/0 min"
	si1 = "Server: Sip Express Media Server (1.6.0 (x86_64/linux)) calls: 1 active/0 total/0 connect/0 min"
)

// stubTable returns, for the A.4 calls, the values SEMS returned, so that
// the codec alone decides the bytes.
func stubTable() *rpc.Table {
	t := rpc.NewTable()
	t.Register("roomCreate", func(_ context.Context, args []any) (any, error) {
		return []any{0, "OK", "647764", si0}, nil
	})
	t.Register("roomInfo", func(_ context.Context, args []any) (any, error) {
		if len(args) < 2 {
			return nil, &rpc.Fault{Code: 300, Message: "Exception: AmArg out of bounds - parameter number mismatch.", Param: 1, Kind: rpc.KindParams}
		}
		if args[1] != "647764" {
			return []any{1, "wrong adminpin or inexisting room", []any{}, si0}, nil
		}
		return []any{0, "OK", []any{
			[]any{"", "sip:x@y", 0, "", 0, "pid1"},
			[]any{"6CADA34C-6B020E050002B056-FBFFF6C0", "sipp <sip:sipp@127.0.0.1:5071>", 3, "direct access: entered", 0, ""},
		}, si1}, nil
	})
	t.Register("listRooms", func(_ context.Context, args []any) (any, error) {
		return []any{407, []any{"Wrong Master Password."}, si0}, nil
	})
	t.Register("getRoomPassword", func(_ context.Context, args []any) (any, error) {
		return []any{403, "Wrong Master Password.", si0}, nil
	})
	t.Register("di", func(_ context.Context, args []any) (any, error) {
		return nil, &rpc.Fault{Code: 504, Message: "Exception: AmDynInvoke::NotImplemented: " + args[1].(string), Param: -1}
	})
	t.Register("echo", func(_ context.Context, args []any) (any, error) { return args, nil })
	t.Register("boom", func(context.Context, []any) (any, error) { panic("boom") })
	t.Register("plainError", func(context.Context, []any) (any, error) { return nil, errors.New("disk on fire") })
	t.Register("badResult", func(context.Context, []any) (any, error) { return struct{}{}, nil })
	return t
}

// A.4 and A.2 bodies, exactly as SEMS sent them.
const (
	wantRoomInfoWrong = "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param>\r\n\t<value><array><data><value><i4>1</i4></value><value>wrong adminpin or inexisting room</value><value><array><data></data></array></value><value>Server: Sip Express Media Server (1.6.0 (x86_64/linux)) calls: 0 active/0 total/0 connect/0 min</value></data></array></value>\r\n</param></params></methodResponse>\r\n"
	wantListRooms     = "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param>\r\n\t<value><array><data><value><i4>407</i4></value><value><array><data><value>Wrong Master Password.</value></data></array></value><value>Server: Sip Express Media Server (1.6.0 (x86_64/linux)) calls: 0 active/0 total/0 connect/0 min</value></data></array></value>\r\n</param></params></methodResponse>\r\n"
	wantGetRoomPw     = "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param>\r\n\t<value><array><data><value><i4>403</i4></value><value>Wrong Master Password.</value><value>Server: Sip Express Media Server (1.6.0 (x86_64/linux)) calls: 0 active/0 total/0 connect/0 min</value></data></array></value>\r\n</param></params></methodResponse>\r\n"
	wantDi504         = "<?xml version=\"1.0\"?>\r\n<methodResponse><fault>\r\n\t<value><struct><member><name>faultCode</name><value><i4>504</i4></value></member><member><name>faultString</name><value>Exception: AmDynInvoke::NotImplemented: nosuchmethod</value></member></struct></value>\r\n</fault></methodResponse>\r\n"
	wantRoomInfo300   = "<?xml version=\"1.0\"?>\r\n<methodResponse><fault>\r\n\t<value><struct><member><name>faultCode</name><value><i4>300</i4></value></member><member><name>faultString</name><value>Exception: AmArg out of bounds - parameter number mismatch.</value></member></struct></value>\r\n</fault></methodResponse>\r\n"
	wantCallsUnknown  = "<?xml version=\"1.0\"?>\r\n<methodResponse><fault>\r\n\t<value><struct><member><name>faultCode</name><value><i4>-1</i4></value></member><member><name>faultString</name><value>calls: unknown method name</value></member></struct></value>\r\n</fault></methodResponse>\r\n"
	wantRoomInfoOK    = "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param>\r\n\t<value><array><data><value><i4>0</i4></value><value>OK</value><value><array><data><value><array><data><value></value><value>sip:x@y</value><value><i4>0</i4></value><value></value><value><i4>0</i4></value><value>pid1</value></data></array></value><value><array><data><value>6CADA34C-6B020E050002B056-FBFFF6C0</value><value>sipp &lt;sip:sipp@127.0.0.1:5071&gt;</value><value><i4>3</i4></value><value>direct access: entered</value><value><i4>0</i4></value><value></value></data></array></value></data></array></value><value>Server: Sip Express Media Server (1.6.0 (x86_64/linux)) calls: 1 active/0 total/0 connect/0 min</value></data></array></value>\r\n</param></params></methodResponse>\r\n"
	wantRoomCreate    = "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param>\r\n\t<value><array><data><value><i4>0</i4></value><value>OK</value><value>647764</value><value>Server: Sip Express Media Server (1.6.0 (x86_64/linux)) calls: 0 active/0 total/0 connect/0 min</value></data></array></value>\r\n</param></params></methodResponse>\r\n"
)

func faultBody(code int, msg string) string {
	return "<?xml version=\"1.0\"?>\r\n<methodResponse><fault>\r\n\t<value><struct><member><name>faultCode</name><value><i4>" +
		strconv.Itoa(code) + "</i4></value></member><member><name>faultString</name><value>" + msg +
		"</value></member></struct></value>\r\n</fault></methodResponse>\r\n"
}

// pyBody is the request body Python's xmlrpc.client sends (A.2).
func pyBody(method string, args ...string) string {
	var b strings.Builder
	b.WriteString("<?xml version='1.0'?>\n<methodCall>\n<methodName>" + method + "</methodName>\n<params>\n")
	for _, a := range args {
		b.WriteString("<param>\n<value><string>" + a + "</string></value>\n</param>\n")
	}
	b.WriteString("</params>\n</methodCall>\n")
	return b.String()
}

// pyRequest frames a body as Python's http.client does.
func pyRequest(body string) string {
	return "POST /RPC2 HTTP/1.1\r\nHost: 127.0.0.1:8090\r\nAccept-Encoding: gzip\r\n" +
		"Content-Type: text/xml\r\nUser-Agent: Python-xmlrpc/3.12\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func wantHTTP(body string) string {
	return "HTTP/1.1 200 OK\r\nServer: XMLRPC++ 0.8\r\nContent-Type: text/xml\r\nContent-length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

func start(t testing.TB, tab *rpc.Table, o Options) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(tab, o)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after Close", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return ln.Addr().String(), srv
}

type client struct {
	t testing.TB
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

// waitConns waits until the server holds n connections.
func waitConns(t testing.TB, srv *Server, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		open, _ := srv.Conns()
		if open == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server holds %d connections, want %d", open, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialFrom dials addr from the local address ip (Linux routes all of
// 127/8 to the loopback interface).
func dialFrom(t testing.TB, ip, addr string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (cl *client) send(s string) {
	cl.t.Helper()
	if _, err := io.WriteString(cl.c, s); err != nil {
		cl.t.Fatalf("write: %v", err)
	}
}

// response reads one whole HTTP response and returns it raw.
func (cl *client) response() string {
	cl.t.Helper()
	var head strings.Builder
	n := -1
	for {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			cl.t.Fatalf("read response head (so far %q): %v", head.String()+line, err)
		}
		head.WriteString(line)
		if line == "\r\n" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Content-length: "); ok {
			n, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if n < 0 {
		return head.String()
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(cl.r, body); err != nil {
		cl.t.Fatalf("read body: %v", err)
	}
	return head.String() + string(body)
}

func (cl *client) call(body string) string {
	cl.t.Helper()
	cl.send(pyRequest(body))
	return cl.response()
}

// closed asserts that the server closes the connection with nothing more
// to read.
func (cl *client) closed() {
	cl.t.Helper()
	b, err := cl.r.ReadByte()
	if err == nil {
		rest, _ := cl.r.Peek(cl.r.Buffered())
		cl.t.Fatalf("connection open, read %q", append([]byte{b}, rest...))
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		cl.t.Fatalf("want the server to close, got %v", err)
	}
}

func isReset(err error) bool { return strings.Contains(err.Error(), "connection reset") }

func TestAppendixA4(t *testing.T) {
	addr, _ := start(t, stubTable(), Options{})
	cases := []struct {
		name, method string
		args         []string
		want         string
	}{
		{"roomCreate on a fresh server is A.2's exchange", "roomCreate", []string{"1234"}, wantRoomCreate},
		{"roomInfo with a wrong pin has an empty participant array", "roomInfo", []string{"1234", "wrong"}, wantRoomInfoWrong},
		{"roomInfo lists participants with escaped From headers", "roomInfo", []string{"1234", "647764"}, wantRoomInfoOK},
		{"listRooms with a wrong master password wraps 407's message", "listRooms", []string{"bad"}, wantListRooms},
		{"getRoomPassword with a wrong master password is 403", "getRoomPassword", []string{"bad", "1234"}, wantGetRoomPw},
		{"di of an unknown function is fault 504", "di", []string{"webconference", "nosuchmethod"}, wantDi504},
		{"roomInfo with one argument is fault 300", "roomInfo", []string{"1234"}, wantRoomInfo300},
		{"an unregistered method is fault -1", "calls", nil, wantCallsUnknown},
	}
	cl := dial(t, addr) // all on one keep-alive connection, as Python's client does
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl.t = t
			if got, want := cl.call(pyBody(tc.method, tc.args...)), wantHTTP(tc.want); got != want {
				t.Errorf("got\n%q\nwant\n%q", got, want)
			}
		})
	}
	if got := len(wantRoomCreate); got != 311 {
		t.Errorf("A.2 says Content-length 311, the fixture has %d", got)
	}
}

func TestEncodeMatchesSEMS(t *testing.T) {
	if got := string(EncodeFault(504, "Exception: AmDynInvoke::NotImplemented: nosuchmethod")); got != wantDi504 {
		t.Errorf("EncodeFault = %q", got)
	}
	if got := string(EncodeResponse([]any{403, "Wrong Master Password.", si0})); got != wantGetRoomPw {
		t.Errorf("EncodeResponse = %q", got)
	}
	if got, want := string(EncodeResponse(struct{}{})), faultBody(500, "Exception occured."); got != want {
		t.Errorf("unencodable result = %q, want SEMS's catch-all fault", got)
	}
}

func TestHTTPFraming(t *testing.T) {
	addr, _ := start(t, stubTable(), Options{})
	create := pyBody("roomCreate", "1234")

	t.Run("HTTP/1.1 keeps the connection for a second request", func(t *testing.T) {
		cl := dial(t, addr)
		for i := range 2 {
			if got := cl.call(create); got != wantHTTP(wantRoomCreate) {
				t.Fatalf("request %d: %q", i, got)
			}
		}
	})
	t.Run("two pipelined requests are answered in order", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(pyRequest(pyBody("getRoomPassword", "bad", "1")) + pyRequest(create))
		if got := cl.response(); got != wantHTTP(wantGetRoomPw) {
			t.Fatalf("first: %q", got)
		}
		if got := cl.response(); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("second: %q", got)
		}
	})
	t.Run("HTTP/1.0 closes after the reply", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(fmt.Sprintf("POST / HTTP/1.0\r\nContent-length: %d\r\n\r\n%s", len(create), create))
		if got := cl.response(); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
		cl.closed()
	})
	t.Run("HTTP/1.0 with Connection: keep-alive stays open", func(t *testing.T) {
		cl := dial(t, addr)
		for range 2 {
			cl.send(fmt.Sprintf("POST / HTTP/1.0\r\nConnection: Keep-Alive\r\nContent-length: %d\r\n\r\n%s", len(create), create))
			if got := cl.response(); got != wantHTTP(wantRoomCreate) {
				t.Fatalf("got %q", got)
			}
		}
	})
	t.Run("Connection: close closes after the reply", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(fmt.Sprintf("POST /control HTTP/1.1\r\nConnection: close\r\nCONTENT-LENGTH: %d\r\n\r\n%s", len(create), create))
		if got := cl.response(); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
		cl.closed()
	})
	t.Run("a bare LF header block ending in \\n\\n works", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(fmt.Sprintf("POST / HTTP/1.1\nContent-length: %d\n\n%s", len(create), create))
		if got := cl.response(); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("a POST without Content-length is closed without a reply", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send("POST / HTTP/1.1\r\nHost: x\r\n\r\n" + create)
		cl.closed()
	})
	t.Run("a POST with Content-length 0 is closed without a reply", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send("POST / HTTP/1.1\r\nContent-length: 0\r\n\r\n")
		cl.closed()
	})
	t.Run("conflicting Content-length headers are closed without a reply", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(fmt.Sprintf("POST / HTTP/1.1\r\nContent-length: %d\r\nContent-Length: 5\r\n\r\n%s", len(create), create))
		cl.closed()
	})
	t.Run("chunked transfer coding is closed without a reply", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(fmt.Sprintf("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-length: %d\r\n\r\n%s", len(create), create))
		cl.closed()
	})
	t.Run("GET gets 405 with Allow: POST and the connection closes", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		got := cl.response()
		if !strings.HasPrefix(got, "HTTP/1.1 405 Method Not Allowed\r\n") || !strings.Contains(got, "\r\nAllow: POST\r\n") {
			t.Fatalf("got %q", got)
		}
		if body := got[strings.Index(got, "\r\n\r\n")+4:]; strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
			t.Errorf("body %q is not one line", body)
		}
		cl.closed()
	})
	t.Run("Expect: 100-continue gets 100 Continue before the body is sent", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(fmt.Sprintf("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-length: %d\r\n\r\n", len(create)))
		if got := cl.response(); got != "HTTP/1.1 100 Continue\r\n\r\n" {
			t.Fatalf("got %q", got)
		}
		cl.send(create)
		if got := cl.response(); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("an oversized header block is closed without a reply", func(t *testing.T) {
		cl := dial(t, addr)
		var b strings.Builder
		b.WriteString("POST / HTTP/1.1\r\n")
		for b.Len() < maxHeader+100 {
			b.WriteString("X-Padding: " + strings.Repeat("a", 5000) + "\r\n")
		}
		cl.send(b.String())
		cl.closed()
	})
}

func TestLimits(t *testing.T) {
	addr, _ := start(t, stubTable(), Options{})

	t.Run("a body over 1 MiB gets fault 400 unread and the connection closes", func(t *testing.T) {
		cl := dial(t, addr)
		cl.send(fmt.Sprintf("POST / HTTP/1.1\r\nContent-length: %d\r\n\r\n<methodCall>", DefaultMaxBody+1))
		if got, want := cl.response(), wantHTTP(faultBody(400, "request too large")); got != want {
			t.Fatalf("got %q want %q", got, want)
		}
		cl.closed()
	})
	t.Run("a body of exactly 1 MiB is read", func(t *testing.T) {
		cl := dial(t, addr)
		body := pyBody("echo", "x")
		body += strings.Repeat(" ", DefaultMaxBody-len(body)) // trailing bytes are ignored
		got := cl.call(body)
		want := wantHTTP(string(EncodeResponse([]any{"x"})))
		if got != want {
			t.Fatalf("got %.200q", got)
		}
	})
	nested := func(depth int) string {
		return "<methodCall><methodName>echo</methodName><params><param><value>" +
			strings.Repeat("<array><data><value>", depth) + "<i4>7</i4>" +
			strings.Repeat("</value></data></array>", depth) + "</value></param></params></methodCall>"
	}
	t.Run("arrays nested 100 deep are accepted", func(t *testing.T) {
		cl := dial(t, addr)
		var v any = 7
		for range 100 {
			v = []any{v}
		}
		if got, want := cl.call(nested(100)), wantHTTP(string(EncodeResponse([]any{v}))); got != want {
			t.Fatalf("got %.300q", got)
		}
	})
	t.Run("arrays nested 101 deep are fault 400", func(t *testing.T) {
		cl := dial(t, addr)
		if got, want := cl.call(nested(101)), wantHTTP(faultBody(400, "parameters nested too deeply")); got != want {
			t.Fatalf("got %q", got)
		}
	})
}

func TestFaults(t *testing.T) {
	addr, _ := start(t, stubTable(), Options{})
	cl := dial(t, addr)
	cases := []struct{ name, body, want string }{
		{"malformed XML is fault -1 with an empty name", "<methodCall><methodName>roomCreate</methodName><params>", faultBody(-1, ": unknown method name")},
		{"a call without methodName is fault -1", "<methodCall><params/></methodCall>", faultBody(-1, ": unknown method name")},
		{"a DOCTYPE is refused as malformed", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><methodCall><methodName>echo</methodName></methodCall>`, faultBody(-1, ": unknown method name")},
		{"an i8 parameter is unsupported", "<methodCall><methodName>echo</methodName><params><param><value><i8>5</i8></value></param></params></methodCall>", faultBody(400, "unsupported parameter type")},
		{"a nil parameter is unsupported", "<methodCall><methodName>echo</methodName><params><param><value><nil/></value></param></params></methodCall>", faultBody(400, "unsupported parameter type")},
		{"a dateTime parameter is unsupported", "<methodCall><methodName>echo</methodName><params><param><value><dateTime.iso8601>20240101T00:00:00</dateTime.iso8601></value></param></params></methodCall>", faultBody(400, "unsupported parameter type")},
		{"a method panic is fault 500 and the server lives on", pyBody("boom"), faultBody(500, "Exception occured.")},
		{"a plain error is fault 500", pyBody("plainError"), faultBody(500, "Exception occured.")},
		{"a result the wire cannot carry is fault 500", pyBody("badResult"), faultBody(500, "Exception occured.")},
		{"the server still answers after a panic", pyBody("roomCreate", "1"), wantRoomCreate},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cl.t = t
			if got := cl.call(tc.body); got != wantHTTP(tc.want) {
				t.Fatalf("got %q\nwant %q", got, wantHTTP(tc.want))
			}
		})
	}
}

func TestMulticall(t *testing.T) {
	addr, _ := start(t, stubTable(), Options{})
	cl := dial(t, addr)
	member := func(name, val string) string {
		return "<member><name>" + name + "</name><value>" + val + "</value></member>"
	}
	item := func(method string, params ...string) string {
		p := ""
		for _, x := range params {
			p += "<value>" + x + "</value>"
		}
		return "<value><struct>" + member("methodName", method) + member("params", "<array><data>"+p+"</data></array>") + "</struct></value>"
	}
	body := "<methodCall><methodName>system.multicall</methodName><params><param><value><array><data>" +
		item("getRoomPassword", "bad", "1234") +
		item("di", "webconference", "nosuchmethod") +
		item("calls") +
		item("system.multicall") +
		"<value><struct>" + member("methodName", "echo") + "</struct></value>" +
		"</data></array></value></param></params></methodCall>"
	fault := func(code int, msg string) map[string]any {
		return map[string]any{"faultCode": code, "faultString": msg}
	}
	want := EncodeResponse([]any{
		[]any{[]any{403, "Wrong Master Password.", si0}},
		fault(504, "Exception: AmDynInvoke::NotImplemented: nosuchmethod"),
		fault(-1, "calls: unknown method name"),
		fault(-1, "system.multicall: nested system.multicall is not allowed"),
		fault(-1, "system.multicall: Invalid argument (expected a struct with members methodName and params)"),
	})
	if got := cl.call(body); got != wantHTTP(string(want)) {
		t.Fatalf("got  %q\nwant %q", got, wantHTTP(string(want)))
	}
	if !strings.Contains(string(want), "<value><struct><member><name>faultCode</name><value><i4>504</i4></value></member><member><name>faultString</name>") {
		t.Errorf("fault items are not SEMS's fault structs: %q", want)
	}

	t.Run("a multicall without an array is fault -1", func(t *testing.T) {
		cl.t = t
		got := cl.call(pyBody("system.multicall", "x"))
		if want := wantHTTP(faultBody(-1, "system.multicall: Invalid argument (expected an array)")); got != want {
			t.Fatalf("got %q", got)
		}
	})
}

func TestJSONPath(t *testing.T) {
	var calls atomic.Int32
	addr, _ := start(t, stubTable(), Options{JSON: func(_ context.Context, body []byte) ([]byte, bool) {
		calls.Add(1)
		if bytes.Contains(body, []byte("notify")) {
			return nil, false
		}
		return append([]byte(`{"echo":`), append(body, '}')...), true
	}})
	cl := dial(t, addr)
	req := func(path, body string) string {
		return fmt.Sprintf("POST %s HTTP/1.1\r\nContent-Type: application/json\r\nContent-length: %d\r\n\r\n%s", path, len(body), body)
	}
	t.Run("POST /jsonrpc goes to the JSON handler with SEMS's framing", func(t *testing.T) {
		cl.t = t
		cl.send(req("/jsonrpc", `[1]`))
		want := "HTTP/1.1 200 OK\r\nServer: XMLRPC++ 0.8\r\nContent-Type: application/json\r\nContent-length: 12\r\n\r\n{\"echo\":[1]}"
		if got := cl.response(); got != want {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("a JSON answer with nothing to say is 204 and the connection stays", func(t *testing.T) {
		cl.t = t
		cl.send(req("/jsonrpc?x=1", `notify`))
		if got := cl.response(); got != "HTTP/1.1 204 No Content\r\nServer: XMLRPC++ 0.8\r\n\r\n" {
			t.Fatalf("got %q", got)
		}
		cl.send(req("/RPC2", pyBody("roomCreate", "1")))
		if got := cl.response(); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("other paths are XML-RPC: got %q", got)
		}
	})
	if n := calls.Load(); n != 2 {
		t.Errorf("JSON handler ran %d times, want 2", n)
	}

	t.Run("without a JSON handler /jsonrpc is XML-RPC, as in SEMS", func(t *testing.T) {
		addr, _ := start(t, stubTable(), Options{})
		cl := dial(t, addr)
		cl.send(req("/jsonrpc", pyBody("roomCreate", "1")))
		if got := cl.response(); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
	})
}

func TestTimeoutsAndConnections(t *testing.T) {
	t.Run("an idle keep-alive connection is closed after IdleTimeout", func(t *testing.T) {
		addr, _ := start(t, stubTable(), Options{IdleTimeout: 50 * time.Millisecond})
		cl := dial(t, addr)
		if got := cl.call(pyBody("roomCreate", "1")); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
		began := time.Now()
		cl.closed() // blocks until the server closes, bounded by the 10 s client deadline
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("closed after %v", d)
		}
	})
	t.Run("a request whose headers never finish is closed after ReadTimeout", func(t *testing.T) {
		addr, _ := start(t, stubTable(), Options{ReadTimeout: 50 * time.Millisecond})
		cl := dial(t, addr)
		cl.send("POST / HTTP/1.1\r\nContent-le")
		cl.closed()
	})
	t.Run("connections beyond MaxConns are closed at once", func(t *testing.T) {
		addr, _ := start(t, stubTable(), Options{MaxConns: 1})
		first := dial(t, addr)
		if got := first.call(pyBody("roomCreate", "1")); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
		second := dial(t, addr)
		second.closed()
		if got := first.call(pyBody("roomCreate", "1")); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("the first connection broke: %q", got)
		}
		first.c.Close()
		// The slot frees once the server has seen the close; retry until then.
		deadline := time.Now().Add(5 * time.Second)
		for {
			third := dial(t, addr)
			third.send(pyRequest(pyBody("roomCreate", "1")))
			line, err := third.r.ReadString('\n')
			if err == nil && line == "HTTP/1.1 200 OK\r\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("slot never freed: %q %v", line, err)
			}
			third.c.Close()
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("a request whose head is not in within HeaderTimeout is closed then", func(t *testing.T) {
		// ReadTimeout stays 30 s; the client gives up after 10.
		addr, _ := start(t, stubTable(), Options{HeaderTimeout: 200 * time.Millisecond})
		began := time.Now()
		cl := dial(t, addr)
		cl.send("POST / HTTP/1.1\r\nContent-le")
		cl.closed()
		if d := time.Since(began); d < 200*time.Millisecond {
			t.Errorf("closed after %v, before HeaderTimeout", d)
		}
	})
	t.Run("a keep-alive request's head has HeaderTimeout from its first byte", func(t *testing.T) {
		addr, _ := start(t, stubTable(), Options{HeaderTimeout: 200 * time.Millisecond})
		cl := dial(t, addr)
		if got := cl.call(pyBody("roomCreate", "1")); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("got %q", got)
		}
		cl.send("POST / HTTP/1.1\r\nContent-le")
		cl.closed()
	})
	t.Run("one source address cannot take the connections of the others", func(t *testing.T) {
		addr, srv := start(t, stubTable(), Options{MaxConnsPerSource: 2, MaxConns: 4})
		a1, a2, a3 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
		a3.closed() // over the per-source bound: closed at once
		for _, cl := range []*client{a1, a2} {
			if got := cl.call(pyBody("roomCreate", "1")); got != wantHTTP(wantRoomCreate) {
				t.Fatalf("a connection within the bound: %q", got)
			}
		}
		other := dial(t, addr)
		if got := other.call(pyBody("roomCreate", "1")); got != wantHTTP(wantRoomCreate) {
			t.Fatalf("another address was not served: %q", got)
		}
		other.c.Close()
		waitConns(t, srv, 2)
		// MaxConns still bounds what the per-source bounds let through:
		// 2 + 2 from two addresses fill it.
		b1, b2 := dialFrom(t, "127.0.0.3", addr), dialFrom(t, "127.0.0.3", addr)
		for _, cl := range []*client{b1, b2} {
			if got := cl.call(pyBody("roomCreate", "1")); got != wantHTTP(wantRoomCreate) {
				t.Fatalf("127.0.0.3: %q", got)
			}
		}
		dial(t, addr).closed()
		if open, refused := srv.Conns(); open != 4 || refused != 2 {
			t.Fatalf("open %d, refused %d; want 4 and 2", open, refused)
		}
	})
	t.Run("Close ends open connections and running methods see their context end", func(t *testing.T) {
		tab := rpc.NewTable()
		entered := make(chan struct{})
		tab.Register("block", func(ctx context.Context, _ []any) (any, error) {
			close(entered)
			<-ctx.Done()
			return nil, ctx.Err()
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := NewServer(tab, Options{})
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		idle := dial(t, ln.Addr().String())
		busy := dial(t, ln.Addr().String())
		busy.send(pyRequest(pyBody("block")))
		select {
		case <-entered:
		case <-time.After(5 * time.Second):
			t.Fatal("method not called")
		}
		if err := srv.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Serve: %v", err)
		}
		idle.closed()
		busy.closed()
	})
}

// BenchmarkRoomInfo100 measures keep-alive requests/s for a roomInfo call
// answered with 100 participants.
func BenchmarkRoomInfo100(b *testing.B) {
	parts := make([]any, 100)
	for i := range parts {
		parts[i] = []any{fmt.Sprintf("6CADA34C-6B020E05%04d-FBFFF6C0", i), fmt.Sprintf("user%d <sip:user%d@example.com>", i, i), 3, "direct access: entered", 0, ""}
	}
	result := []any{0, "OK", parts, si1}
	tab := rpc.NewTable()
	tab.Register("roomInfo", func(context.Context, []any) (any, error) { return result, nil })
	addr, _ := start(b, tab, Options{})
	cl := dial(b, addr)
	cl.c.SetDeadline(time.Time{})
	req := pyRequest(pyBody("roomInfo", "1234", "647764"))
	respLen := len(wantHTTP(string(EncodeResponse(result))))
	buf := make([]byte, respLen)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cl.send(req)
		if _, err := io.ReadFull(cl.r, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// asciiFields splits a request line as bytes.Fields does; lines with
// other than ASCII bytes are left to bytes.Fields.
func TestASCIIFields(t *testing.T) {
	for _, line := range []string{
		"POST /RPC2 HTTP/1.1", "  POST\t/ \vHTTP/1.0 \r", "", " ", "a", "GET  /x?y=1  HTTP/1.1  extra", "\f\fPOST\f",
	} {
		var fa [3][]byte
		got, ok := asciiFields(fa[:0], []byte(line))
		if want := bytes.Fields([]byte(line)); !ok || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("%q: got %q %v, want %q", line, got, ok, want)
		}
	}
	if _, ok := asciiFields(nil, []byte("POST /\u00e9 HTTP/1.1")); ok {
		t.Error("a non-ASCII line was split")
	}
}
