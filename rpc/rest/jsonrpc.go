package rest

import (
	"io"
	"mime"
	"net/http"

	"webconf/rpc"
	"webconf/rpc/jsonrpc"
)

// jsonRPC is POST /api/v1/jsonrpc: the XML-RPC port's JSON-RPC 2.0 (the
// same method table) on the HTTP origin, so that a page of ours reaches
// it same-origin. The functions carry their own secrets (master password,
// admin PINs) and their failures are charged to the client's budget
// exactly as on the XML-RPC port: the key is the client's address, or the
// one a trusted proxy names. The body must be application/json: a page
// of another origin cannot send that without a CORS preflight, which we
// never allow, so it cannot spend a visitor's budget.
func (a *API) jsonRPC(c *ctx) {
	if a.o.JSONRPC == nil {
		c.fail(errJSONRPCOff)
		return
	}
	if mt, _, err := mime.ParseMediaType(c.r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		c.fail(errMediaType)
		return
	}
	// One byte over the limit is enough for jsonrpc to answer -32600.
	body, err := io.ReadAll(io.LimitReader(c.r.Body, jsonrpc.MaxBody+1))
	if err != nil {
		c.fail(&apiError{http.StatusBadRequest, "invalid-body", "cannot read the body"})
		return
	}
	ctx := rpc.WithClient(c.r.Context(), a.peer(c.r))
	resp, ok := a.o.JSONRPC(ctx, body)
	if !ok || resp == nil {
		c.noContent() // notifications only
		return
	}
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(resp)
}
