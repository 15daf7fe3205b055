// Package rpc is webconf's control plane: one transport-neutral table of
// methods (the SEMS webconference functions, xmlrpc2di's built-ins and di)
// that thin codecs serve: XML-RPC in rpc/xmlrpc, JSON-RPC 2.0 in
// rpc/jsonrpc. A method takes positional arguments and returns one value;
// every error a method returns is a *Fault, so that each codec maps it to
// its wire form in one place.
//
// Values are plain Go values, the same for every codec:
//
//	int      XML-RPC <i4>/<int>, JSON number without fraction
//	bool     <boolean>, JSON true/false
//	float64  <double>, JSON number with fraction
//	string   <string> or untyped text, JSON string
//	[]any    <array>, JSON array
//	map[string]any  <struct>, JSON object
//	[]byte   <base64> (JSON has none: a base64 string)
//	nil      an undefined value; XML-RPC writes it as <i4>0</i4>, as SEMS does
package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
)

// Fault is an error with a wire code: an XML-RPC fault (code and
// faultString exactly as SEMS sends them) or a JSON-RPC error.
type Fault struct {
	Code    int
	Message string
	// Param is the 0-based index of the argument at fault, or -1; JSON-RPC
	// uses it to name the bad argument (-32602).
	Param int
	// Kind classifies the fault for codecs that have their own codes.
	Kind FaultKind
}

// FaultKind says what went wrong, independent of SEMS's numbers.
type FaultKind int

const (
	// KindInternal: the method failed.
	KindInternal FaultKind = iota
	// KindUnknownMethod: no such method (JSON-RPC -32601).
	KindUnknownMethod
	// KindParams: missing or mistyped arguments (JSON-RPC -32602).
	KindParams
)

func (f *Fault) Error() string { return fmt.Sprintf("fault %d: %s", f.Code, f.Message) }

type peerKey struct{}

// WithPeer records the client's address in ctx; codecs set it so that
// methods can keep per-client budgets (failed PINs and passwords).
func WithPeer(ctx context.Context, addr net.Addr) context.Context {
	return context.WithValue(ctx, peerKey{}, addr)
}

// Peer is the client's host (without port), or "" when unknown: the key
// of its budgets (WithClient's, when a codec set one).
func Peer(ctx context.Context) string {
	if k, ok := ctx.Value(clientKey{}).(string); ok {
		return k
	}
	a, _ := ctx.Value(peerKey{}).(net.Addr)
	if a == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// Method is one entry of the table.
type Method func(ctx context.Context, args []any) (any, error)

// Table maps method names to methods. It is filled at start-up and read
// concurrently afterwards.
type Table struct {
	methods map[string]Method
	order   []string
	observe func(method string, code int)
}

// Observe sets a hook told the method and result code of every call (the
// reply array's code, the fault code, or 0), for metrics. Set it before
// serving.
func (t *Table) Observe(f func(method string, code int)) { t.observe = f }

// NewTable returns an empty table.
func NewTable() *Table { return &Table{methods: map[string]Method{}} }

// Register adds a method; a name already taken keeps its first method
// (xmlrpc2di registers plain names only when not yet taken).
func (t *Table) Register(name string, m Method) bool {
	if _, ok := t.methods[name]; ok {
		return false
	}
	t.methods[name] = m
	t.order = append(t.order, name)
	return true
}

// Names lists the registered names in registration order.
func (t *Table) Names() []string { return append([]string(nil), t.order...) }

// Call runs a method. An unknown name is SEMS's fault -1
// "<name>: unknown method name".
func (t *Table) Call(ctx context.Context, name string, args []any) (any, error) {
	m, ok := t.methods[name]
	if !ok {
		t.record("unknown", -1)
		return nil, &Fault{Code: -1, Message: name + ": unknown method name", Param: -1, Kind: KindUnknownMethod}
	}
	res, err := m(ctx, args)
	if t.observe != nil {
		label := name
		if name == "di" && len(args) >= 2 {
			if fn, ok := args[1].(string); ok {
				label = "di:" + fn
			}
		}
		code := 0
		var f *Fault
		switch {
		case errors.As(err, &f):
			code = f.Code
			if f.Kind == KindUnknownMethod {
				label = name + ":unknown" // keep the label set bounded
			}
		case err != nil:
			code = 500
		default:
			if arr, ok := res.([]any); ok && len(arr) > 0 {
				if c, ok := arr[0].(int); ok {
					code = c
				}
			}
		}
		t.observe(label, code)
	}
	return res, err
}

func (t *Table) record(method string, code int) {
	if t.observe != nil {
		t.observe(method, code)
	}
}
