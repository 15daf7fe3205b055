package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"webconf/rpc"
)

type stub struct {
	tab   *rpc.Table
	calls atomic.Int32
	last  atomic.Value // []any
}

func newStub() *stub {
	s := &stub{tab: rpc.NewTable()}
	s.tab.Register("echo", func(_ context.Context, args []any) (any, error) {
		s.calls.Add(1)
		s.last.Store(args)
		return args, nil
	})
	s.tab.Register("roomCreate", func(_ context.Context, args []any) (any, error) {
		s.calls.Add(1)
		if len(args) < 1 {
			return nil, &rpc.Fault{Code: 300, Message: "Exception: Type mismatch in arguments.", Param: 0, Kind: rpc.KindParams}
		}
		if _, ok := args[0].(string); !ok {
			return nil, &rpc.Fault{Code: 300, Message: "Exception: Type mismatch in arguments.", Param: 0, Kind: rpc.KindParams}
		}
		if len(args) > 1 {
			if _, ok := args[1].(int); !ok {
				return nil, &rpc.Fault{Code: 300, Message: "Exception: Type mismatch in arguments.", Param: 1, Kind: rpc.KindParams}
			}
		}
		return []any{0, "OK", "647764", "si"}, nil
	})
	s.tab.Register("di", func(_ context.Context, args []any) (any, error) {
		return nil, &rpc.Fault{Code: 504, Message: "Exception: AmDynInvoke::NotImplemented: nosuchmethod", Param: -1}
	})
	s.tab.Register("plainError", func(context.Context, []any) (any, error) { return nil, errors.New("disk on fire") })
	s.tab.Register("boom", func(context.Context, []any) (any, error) { panic("boom") })
	s.tab.Register("nan", func(context.Context, []any) (any, error) { return math.NaN(), nil })
	s.tab.Register("bytes", func(context.Context, []any) (any, error) { return []byte("hi"), nil })
	return s
}

func handle(t *testing.T, s *stub, body string) (string, bool) {
	t.Helper()
	resp, ok := Handle(context.Background(), s.tab, []byte(body))
	if ok && !json.Valid(resp) {
		t.Fatalf("response is not JSON: %q", resp)
	}
	return string(resp), ok
}

func TestSingleRequests(t *testing.T) {
	cases := []struct {
		name, body, want string
	}{
		{"a call returns the method's result", `{"jsonrpc":"2.0","method":"roomCreate","params":["1234"],"id":1}`,
			`{"jsonrpc":"2.0","result":[0,"OK","647764","si"],"id":1}`},
		{"a call without params has no arguments", `{"jsonrpc":"2.0","method":"echo","id":"a"}`,
			`{"jsonrpc":"2.0","result":null,"id":"a"}`},
		{"a string id is echoed byte for byte", `{"jsonrpc":"2.0","method":"echo","params":[],"id":"\u00e9 \"x\""}`,
			`{"jsonrpc":"2.0","result":[],"id":"\u00e9 \"x\""}`},
		{"a number id is echoed as written", `{"jsonrpc":"2.0","method":"echo","params":[],"id":-1.50e2}`,
			`{"jsonrpc":"2.0","result":[],"id":-1.50e2}`},
		{"a null id is echoed", `{"jsonrpc":"2.0","method":"echo","params":[],"id":null}`,
			`{"jsonrpc":"2.0","result":[],"id":null}`},
		{"bytes are a base64 string", `{"jsonrpc":"2.0","method":"bytes","id":1}`,
			`{"jsonrpc":"2.0","result":"aGk=","id":1}`},
		{"HTML characters are not escaped", `{"jsonrpc":"2.0","method":"echo","params":["<sip:a@b>&"],"id":1}`,
			`{"jsonrpc":"2.0","result":["<sip:a@b>&"],"id":1}`},
		{"invalid JSON is -32700", `{"jsonrpc":"2.0",`,
			`{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse error: body is not valid JSON"},"id":null}`},
		{"an empty body is -32700", ``,
			`{"jsonrpc":"2.0","error":{"code":-32700,"message":"parse error: body is not valid JSON"},"id":null}`},
		{"a scalar body is -32600", `42`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: not an object"},"id":null}`},
		{"jsonrpc 1.0 is -32600", `{"jsonrpc":"1.0","method":"echo","id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: jsonrpc must be \"2.0\""},"id":7}`},
		{"a missing jsonrpc member is -32600", `{"method":"echo","id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: jsonrpc must be \"2.0\""},"id":7}`},
		{"a numeric method is -32600", `{"jsonrpc":"2.0","method":1,"id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: method must be a string"},"id":7}`},
		{"an object id is -32600 with a null id", `{"jsonrpc":"2.0","method":"echo","id":{"a":1}}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: id must be a string, number or null"},"id":null}`},
		{"a boolean id is -32600", `{"jsonrpc":"2.0","method":"echo","id":true}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: id must be a string, number or null"},"id":null}`},
		{"string params are -32600", `{"jsonrpc":"2.0","method":"echo","params":"x","id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: params must be an array"},"id":7}`},
		{"a params object is -32602", `{"jsonrpc":"2.0","method":"echo","params":{"room":"1"},"id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"invalid params: params must be an array"},"id":7}`},
		{"an unknown method is -32601", `{"jsonrpc":"2.0","method":"calls","id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"method not found: calls"},"id":7}`},
		{"a mistyped argument is -32602 naming it", `{"jsonrpc":"2.0","method":"roomCreate","params":["1234","60"],"id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"invalid params: argument 2: Exception: Type mismatch in arguments."},"id":7}`},
		{"a number too large for float64 is -32602", `{"jsonrpc":"2.0","method":"echo","params":[1,1e400],"id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32602,"message":"invalid params: argument 2: 1e400: number out of range"},"id":7}`},
		{"a SEMS fault keeps its code and message", `{"jsonrpc":"2.0","method":"di","params":["webconference","nosuchmethod"],"id":7}`,
			`{"jsonrpc":"2.0","error":{"code":504,"message":"Exception: AmDynInvoke::NotImplemented: nosuchmethod"},"id":7}`},
		{"a plain error is -32603", `{"jsonrpc":"2.0","method":"plainError","id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":7}`},
		{"a panic is -32603", `{"jsonrpc":"2.0","method":"boom","id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":7}`},
		{"a result JSON cannot carry is -32603", `{"jsonrpc":"2.0","method":"nan","id":7}`,
			`{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":7}`},
	}
	s := newStub()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := handle(t, s, tc.body)
			if !ok || got != tc.want {
				t.Fatalf("got %v %s\nwant %s", ok, got, tc.want)
			}
		})
	}
}

func TestParamValues(t *testing.T) {
	s := newStub()
	_, ok := handle(t, s, `{"jsonrpc":"2.0","method":"echo","params":[1,-2,1.5,1e3,9223372036854775808,"s",true,null,[2,{"k":3}],{"a":[0.5]}],"id":1}`)
	if !ok {
		t.Fatal("no response")
	}
	want := []any{1, -2, 1.5, 1000.0, 9223372036854775808.0, "s", true, nil, []any{2, map[string]any{"k": 3}}, map[string]any{"a": []any{0.5}}}
	if got := s.last.Load(); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
}

func TestNotifications(t *testing.T) {
	t.Run("a notification runs the method and sends nothing", func(t *testing.T) {
		s := newStub()
		if got, ok := handle(t, s, `{"jsonrpc":"2.0","method":"echo","params":[1]}`); ok || got != "" {
			t.Fatalf("got %v %q", ok, got)
		}
		if s.calls.Load() != 1 {
			t.Fatal("method not run")
		}
	})
	t.Run("a failing notification sends nothing", func(t *testing.T) {
		if got, ok := handle(t, newStub(), `{"jsonrpc":"2.0","method":"nosuch"}`); ok {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("an invalid notification is still answered", func(t *testing.T) {
		got, ok := handle(t, newStub(), `{"jsonrpc":"2.0","method":5}`)
		if !ok || !strings.Contains(got, `"code":-32600`) {
			t.Fatalf("got %v %q", ok, got)
		}
	})
	t.Run("a batch of only notifications sends nothing", func(t *testing.T) {
		s := newStub()
		if got, ok := handle(t, s, `[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"echo"}]`); ok {
			t.Fatalf("got %q", got)
		}
		if s.calls.Load() != 2 {
			t.Fatalf("ran %d methods, want 2", s.calls.Load())
		}
	})
}

func TestBatches(t *testing.T) {
	t.Run("a batch answers each request in order and skips notifications", func(t *testing.T) {
		got, ok := handle(t, newStub(), `[
			{"jsonrpc":"2.0","method":"roomCreate","params":["1"],"id":"1"},
			{"jsonrpc":"2.0","method":"echo","params":[7]},
			{"jsonrpc":"2.0","method":"calls","id":2},
			1,
			{"foo":"boo"}
		]`)
		want := `[{"jsonrpc":"2.0","result":[0,"OK","647764","si"],"id":"1"},` +
			`{"jsonrpc":"2.0","error":{"code":-32601,"message":"method not found: calls"},"id":2},` +
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: not an object"},"id":null},` +
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: jsonrpc must be \"2.0\""},"id":null}]`
		if !ok || got != want {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
	t.Run("an empty batch is one -32600 error", func(t *testing.T) {
		got, ok := handle(t, newStub(), ` [ ] `)
		if want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: empty batch"},"id":null}`; !ok || got != want {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("a batch of 100 is served", func(t *testing.T) {
		s := newStub()
		items := strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","method":"echo","id":1},`, 100), ",")
		got, ok := handle(t, s, "["+items+"]")
		var out []map[string]any
		if !ok || json.Unmarshal([]byte(got), &out) != nil || len(out) != 100 || s.calls.Load() != 100 {
			t.Fatalf("got %d responses, %d calls", len(out), s.calls.Load())
		}
	})
	t.Run("a batch of 101 is one -32600 error and runs nothing", func(t *testing.T) {
		s := newStub()
		items := strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","method":"echo","id":1},`, 101), ",")
		got, ok := handle(t, s, "["+items+"]")
		if !ok || !strings.HasPrefix(got, `{"jsonrpc":"2.0","error":{"code":-32600,`) || s.calls.Load() != 0 {
			t.Fatalf("got %s, %d calls", got, s.calls.Load())
		}
	})
}

func TestLimits(t *testing.T) {
	nested := func(depth int, batch bool) string {
		r := `{"jsonrpc":"2.0","method":"echo","params":[` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `],"id":1}`
		if batch {
			r = "[" + r + "]"
		}
		return r
	}
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("params nested 100 deep are served (batch %v)", batch), func(t *testing.T) {
			got, ok := handle(t, newStub(), nested(100, batch))
			if !ok || !strings.Contains(got, `"result"`) {
				t.Fatalf("got %.200s", got)
			}
		})
		t.Run(fmt.Sprintf("params nested 101 deep are -32600 (batch %v)", batch), func(t *testing.T) {
			got, ok := handle(t, newStub(), nested(101, batch))
			if want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: nested deeper than 100"},"id":null}`; !ok || got != want {
				t.Fatalf("got %.200s", got)
			}
		})
	}
	t.Run("a body over 1 MiB is -32600", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","method":"echo","params":["` + strings.Repeat("a", MaxBody) + `"],"id":1}`
		got, ok := handle(t, newStub(), body)
		if want := `{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: body too large"},"id":null}`; !ok || got != want {
			t.Fatalf("got %.200s", got)
		}
	})
	t.Run("a very deep body is refused without decoding", func(t *testing.T) {
		body := strings.Repeat("[", 500000) + strings.Repeat("]", 500000)
		got, ok := handle(t, newStub(), body)
		if !ok || !strings.Contains(got, `"code":-32600`) {
			t.Fatalf("got %.200s", got)
		}
	})
	t.Run("brackets inside strings do not count as depth", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","method":"echo","params":["` + strings.Repeat(`[{\"`, 200) + `"],"id":1}`
		got, ok := handle(t, newStub(), body)
		if !ok || !strings.Contains(got, `"result"`) {
			t.Fatalf("got %.200s", got)
		}
	})
}

// FuzzHandle: any body gets valid JSON or no answer, and never a panic;
// and the same bytes as the reference way (encoding/json for every request
// and answer), so that the hand-written fast paths change nothing.
func FuzzHandle(f *testing.F) {
	for _, b := range fastBodies {
		f.Add([]byte(b))
	}
	f.Add([]byte(`{"jsonrpc":"2.0","method":"roomCreate","params":["1234"],"id":1}`))
	f.Add([]byte(`[{"jsonrpc":"2.0","method":"echo","params":[1,2.5,{"a":[null]}]},{"jsonrpc":"2.0","method":"x","id":"s"}]`))
	f.Add([]byte(`{"jsonrpc":"2.0","method":"echo","params":{"a":1},"id":null}`))
	f.Add([]byte(`[]`))
	s := newStub()
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, ok := Handle(context.Background(), s.tab, body)
		if ok && !json.Valid(resp) {
			t.Fatalf("invalid JSON response %q", resp)
		}
		if !ok && resp != nil {
			t.Fatalf("not ok but a response %q", resp)
		}
		ref, refOK := handleWith(context.Background(), s.tab, body, false)
		if ok != refOK || string(resp) != string(ref) {
			t.Fatalf("%q: got %q %v, the reference %q %v", body, resp, ok, ref, refOK)
		}
	})
}

// fastBodies are plain requests, which fastRequest reads, and answers
// appendValue writes (echo returns its arguments).
var fastBodies = []string{
	`{"jsonrpc":"2.0","method":"roomInfo","params":["room1","647764"],"id":1}`,
	` { "id" : "a-b" , "method" : "echo" , "params" : [ "xé ", -12, 0, true, false, null ] , "jsonrpc" : "2.0" } ` + "\n",
	`{"jsonrpc":"2.0","method":"echo","params":[],"id":null}`,
	`{"jsonrpc":"2.0","method":"echo","id":-0}`,
	`{"jsonrpc":"2.0","method":"nosuch","params":[1],"id":7}`,
	`{"jsonrpc":"2.0","method":"roomCreate","params":[5],"id":8}`,
	`{"jsonrpc":"2.0","method":"bytes","id":9}`,
}

// The plain requests take the fast way and answer what the reference way
// answers; others (escapes, floats, objects, batches) take the reference.
func TestFastPaths(t *testing.T) {
	s := newStub()
	for _, body := range fastBodies {
		if _, _, _, ok := fastRequest([]byte(strings.TrimLeft(body, " "))); !ok {
			t.Errorf("not read by fastRequest: %s", body)
		}
		got, ok := Handle(context.Background(), s.tab, []byte(body))
		ref, refOK := handleWith(context.Background(), s.tab, []byte(body), false)
		if ok != refOK || string(got) != string(ref) {
			t.Errorf("%s: got %s, the reference %s", body, got, ref)
		}
	}
	for _, body := range []string{
		`{"jsonrpc":"2.0","method":"echo","params":["a\"b"],"id":1}`,
		`{"jsonrpc":"2.0","method":"echo","params":[1.5],"id":1}`,
		`{"jsonrpc":"2.0","method":"echo","params":[{"a":1}],"id":1}`,
		`{"jsonrpc":"2.0","method":"echo","params":["\xff"],"id":1}`,
		`{"jsonrpc":"2.0","method":"echo","params":[1],"id":1,"id":2}`,
		`{"jsonrpc":"2.0","method":"echo","params":[1]}`,
		`{"jsonrpc":"2.0","method":"echo","params":[12345678901234567890],"id":1}`,
	} {
		body = strings.ReplaceAll(body, `\xff`, "\xff")
		if _, _, _, ok := fastRequest([]byte(body)); ok {
			t.Errorf("read by fastRequest: %s", body)
		}
	}
	// Every value type and string escape the answer writer knows.
	for _, v := range []any{
		nil, "", "a\"\\\b\f\n\r\t\x01\x1f\x7f<>&\u2028\u2029\xff\xe9é", -1 << 62, int64(5), true, false,
		0.0, math.Copysign(0, -1), 1.5, 1e-7, 1e-6, 1e20, 1e21, 123456789.125, -2.5e-300, math.MaxFloat64,
		[]any(nil), []any{}, []any{1, "x", []any{nil}}, []string(nil), []string{"a", "b"},
		map[string]any(nil), map[string]any{"b": 1, "a": []byte("hi"), "\u00e9": nil}, []byte(nil), []byte{},
	} {
		got, ok := appendValue(nil, v, 0)
		want, err := json.Marshal(v)
		if err != nil || !ok {
			t.Fatalf("%#v: %v %v", v, ok, err)
		}
		// json.Marshal escapes <, > and & (HTML); encode does not.
		want = []byte(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(want)))
		if string(got) != string(want) {
			t.Errorf("%#v: got %s, want %s", v, got, want)
		}
	}
	if _, ok := appendValue(nil, math.NaN(), 0); ok {
		t.Error("NaN written")
	}
}

// BenchmarkRoomInfo is the codec's share of a JSON-RPC roomInfo request
// (cmd/rpcload -jsonrpc) with a result shaped as SEMS's.
func BenchmarkRoomInfo(b *testing.B) {
	tab := rpc.NewTable()
	result := []any{0, "OK", []any{[]any{"6CADA34C-6B020E05", "user <sip:user@example.com>", 3, "direct access: entered", 0, ""}},
		"Server: webconf calls: 1 active/1 total/1 connect/0 min"}
	tab.Register("roomInfo", func(context.Context, []any) (any, error) { return result, nil })
	body := []byte(`{"jsonrpc":"2.0","method":"roomInfo","params":["room1","647764"],"id":1}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := Handle(context.Background(), tab, body); !ok {
			b.Fatal("no answer")
		}
	}
}
