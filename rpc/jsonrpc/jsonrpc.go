// Package jsonrpc serves an rpc.Table as JSON-RPC 2.0
// (https://www.jsonrpc.org/specification), the modern twin of the XML-RPC
// interface: same method names, positional params, the same result values.
// The xmlrpc server hands it the bodies of POST /jsonrpc.
//
// Values follow package rpc: a JSON number without fraction or exponent is
// an int (one beyond int64 becomes a float64), any other number a float64,
// objects map[string]any, arrays []any; []byte results are base64 strings.
//
// Error codes:
//
//	-32700  parse error: the body is not JSON
//	-32600  invalid request: jsonrpc is not "2.0", method is not a string,
//	        id is not a string, number or null, params neither array nor
//	        object, an empty batch or one over 100 entries, a body over
//	        1 MiB, or arrays/objects nested deeper than 100 inside params
//	-32601  method not found (Fault.Kind KindUnknownMethod)
//	-32602  invalid params: a params object ("params must be an array"),
//	        or a Fault of Kind KindParams, as
//	        "invalid params: argument N: <SEMS message>" (N counts from 1;
//	        Fault.Param is 0-based)
//	-32603  internal error: an error that is not an *rpc.Fault, a panic, or
//	        a result JSON cannot carry (NaN)
//	other   SEMS's own application faults (e.g. 504, 500, 400): code and
//	        message exactly as XML-RPC sends them. SEMS's codes lie outside
//	        the range JSON-RPC reserves (-32768..-32000).
package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"

	"webconf/rpc"
)

// Limits.
const (
	MaxBody  = 1 << 20
	MaxDepth = 100 // nested arrays/objects inside params
	MaxBatch = 100
)

// JSON-RPC 2.0 error codes.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603
)

type errorObj struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// response is one reply; exactly one of Result and Error is written.
type response struct {
	id     json.RawMessage
	result any
	err    *errorObj
}

var nullID = json.RawMessage("null")

// Handle answers one JSON-RPC body (a request or a batch). ok is false
// when there is nothing to send back: a notification, or a batch of only
// notifications.
func Handle(ctx context.Context, t *rpc.Table, body []byte) (resp []byte, ok bool) {
	return handleWith(ctx, t, body, true)
}

// handleWith is Handle; fast false is the reference way for the tests: no
// fastRequest, and encoding/json writes every answer.
func handleWith(ctx context.Context, t *rpc.Table, body []byte, fast bool) (resp []byte, ok bool) {
	encode := encodeJSON
	if fast {
		encode = encodeFast
	}
	if len(body) > MaxBody {
		return encode(errResp(nullID, CodeInvalidRequest, "invalid request: body too large")), true
	}
	body = bytes.TrimLeft(body, " \t\r\n")
	batch := len(body) > 0 && body[0] == '['
	if fast && !batch {
		if id, method, args, ok := fastRequest(body); ok {
			result, err := call(ctx, t, method, args)
			if err != nil {
				return encode(faultResp(id, method, err)), true
			}
			return encode(response{id: id, result: result}), true
		}
	}
	// The depth scan comes first: it is linear and allocation-free, while
	// the validator keeps a stack per level. The envelope around params is
	// the request object and the params array, plus the batch array.
	envelope := 2
	if batch {
		envelope = 3
	}
	if depth(body) > MaxDepth+envelope {
		return encode(errResp(nullID, CodeInvalidRequest, "invalid request: nested deeper than "+strconv.Itoa(MaxDepth))), true
	}
	if !json.Valid(body) {
		return encode(errResp(nullID, CodeParseError, "parse error: body is not valid JSON")), true
	}
	if !batch {
		r, ok := handleOne(ctx, t, body)
		if !ok {
			return nil, false
		}
		return encode(r), true
	}
	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return encode(errResp(nullID, CodeParseError, "parse error: "+err.Error())), true
	}
	switch {
	case len(items) == 0:
		return encode(errResp(nullID, CodeInvalidRequest, "invalid request: empty batch")), true
	case len(items) > MaxBatch:
		return encode(errResp(nullID, CodeInvalidRequest, fmt.Sprintf("invalid request: batch of %d over %d", len(items), MaxBatch))), true
	}
	var out bytes.Buffer
	n := 0
	for _, it := range items {
		r, ok := handleOne(ctx, t, it)
		if !ok {
			continue
		}
		if n == 0 {
			out.WriteByte('[')
		} else {
			out.WriteByte(',')
		}
		out.Write(encode(r))
		n++
	}
	if n == 0 {
		return nil, false
	}
	out.WriteByte(']')
	return out.Bytes(), true
}

// handleOne runs one request object; ok is false for a notification.
func handleOne(ctx context.Context, t *rpc.Table, raw json.RawMessage) (response, bool) {
	var req map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &req) != nil {
		return errResp(nullID, CodeInvalidRequest, "invalid request: not an object"), true
	}
	id, hasID := req["id"]
	if hasID && !validID(id) {
		return errResp(nullID, CodeInvalidRequest, "invalid request: id must be a string, number or null"), true
	}
	respID := id
	if !hasID {
		respID = nullID
	}
	var version, method string
	if json.Unmarshal(req["jsonrpc"], &version) != nil || version != "2.0" {
		return errResp(respID, CodeInvalidRequest, `invalid request: jsonrpc must be "2.0"`), true
	}
	if m := req["method"]; len(m) == 0 || m[0] != '"' || json.Unmarshal(m, &method) != nil {
		return errResp(respID, CodeInvalidRequest, "invalid request: method must be a string"), true
	}
	var args []any
	if p, ok := req["params"]; ok {
		switch p[0] {
		case '[':
			var err error
			if args, err = decodeParams(p); err != nil {
				return errResp(respID, CodeInvalidParams, "invalid params: "+err.Error()), hasID
			}
		case '{':
			return errResp(respID, CodeInvalidParams, "invalid params: params must be an array"), hasID
		default:
			return errResp(respID, CodeInvalidRequest, "invalid request: params must be an array"), true
		}
	}
	result, err := call(ctx, t, method, args)
	if !hasID {
		return response{}, false // notification: the outcome is not reported (JSON-RPC 2.0 section 4.1)
	}
	if err != nil {
		return faultResp(respID, method, err), true
	}
	return response{id: respID, result: result}, true
}

func validID(id json.RawMessage) bool {
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return true
	}
	return string(id) == "null"
}

// decodeParams decodes the params array with numbers kept as text, then
// turns each number into an int or a float64.
func decodeParams(p json.RawMessage) ([]any, error) {
	d := json.NewDecoder(bytes.NewReader(p))
	d.UseNumber()
	var args []any
	if err := d.Decode(&args); err != nil {
		return nil, fmt.Errorf("decode params: %w", err)
	}
	for i := range args {
		v, err := convert(args[i])
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		args[i] = v
	}
	return args, nil
}

var errRange = errors.New("number out of range")

func convert(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return int(n), nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil { // the syntax is valid JSON, so only ±Inf overflow is left
			return nil, fmt.Errorf("%.30s: %w", s, errRange)
		}
		return f, nil
	case []any:
		for i := range x {
			e, err := convert(x[i])
			if err != nil {
				return nil, err
			}
			x[i] = e
		}
	case map[string]any:
		for k, e := range x {
			e, err := convert(e)
			if err != nil {
				return nil, err
			}
			x[k] = e
		}
	}
	return v, nil
}

var errPanic = errors.New("method panicked")

func call(ctx context.Context, t *rpc.Table, method string, args []any) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("jsonrpc: method panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
			v, err = nil, fmt.Errorf("jsonrpc: %s: %v: %w", method, p, errPanic)
		}
	}()
	return t.Call(ctx, method, args)
}

// faultResp maps a method error to a JSON-RPC error (package comment).
func faultResp(id json.RawMessage, method string, err error) response {
	var f *rpc.Fault
	if !errors.As(err, &f) {
		return errResp(id, CodeInternal, "internal error")
	}
	switch f.Kind {
	case rpc.KindUnknownMethod:
		return errResp(id, CodeMethodNotFound, "method not found: "+method)
	case rpc.KindParams:
		msg := "invalid params: "
		if f.Param >= 0 {
			msg += "argument " + strconv.Itoa(f.Param+1) + ": "
		}
		return errResp(id, CodeInvalidParams, msg+f.Message)
	}
	return errResp(id, f.Code, f.Message)
}

func errResp(id json.RawMessage, code int, msg string) response {
	return response{id: id, err: &errorObj{Code: code, Message: msg}}
}

// encodeFast writes a response with the id bytes as received, so that ids of
// every type are echoed exactly. A result JSON cannot carry becomes
// -32603. Results of package rpc's usual types are written by appendValue,
// others by encoding/json.
func encodeFast(r response) []byte {
	if r.err == nil {
		b := make([]byte, 0, 512)
		b = append(b, `{"jsonrpc":"2.0","result":`...)
		if b, ok := appendValue(b, r.result, 0); ok {
			b = append(b, `,"id":`...)
			b = append(b, r.id...)
			return append(b, '}')
		}
	}
	return encodeJSON(r)
}

// encodeJSON is encode on encoding/json alone.
func encodeJSON(r response) []byte {
	var b bytes.Buffer
	b.WriteString(`{"jsonrpc":"2.0",`)
	if r.err == nil {
		var rb bytes.Buffer
		enc := json.NewEncoder(&rb)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r.result); err != nil {
			r.err = &errorObj{Code: CodeInternal, Message: "internal error"}
		} else {
			b.WriteString(`"result":`)
			b.Write(bytes.TrimSuffix(rb.Bytes(), []byte("\n")))
		}
	}
	if r.err != nil {
		e, _ := json.Marshal(r.err) // a struct of int and string: cannot fail
		b.WriteString(`"error":`)
		b.Write(e)
	}
	b.WriteString(`,"id":`)
	b.Write(r.id)
	b.WriteByte('}')
	return b.Bytes()
}

// depth returns the deepest nesting of arrays and objects in a JSON
// text (a rough count for invalid text), without decoding it, so that a
// deep body is refused before a decoder walks into it.
func depth(b []byte) int {
	d, deepest := 0, 0
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			d++
			deepest = max(deepest, d)
		case ']', '}':
			d--
		}
	}
	return deepest
}
