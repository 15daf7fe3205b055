package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"webconf/rpc/events"
)

// The OpenAPI document is written by hand, so nothing but this check keeps
// it in step with the route table: a route added to routes.go without its
// operation, an operation left behind after a route went, a path parameter
// not declared, a dangling $ref or the wrong security all fail here.

// oaDoc is as much of an OpenAPI 3 document as the check reads.
type oaDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Parameters      map[string]oaParam `json:"parameters"`
		SecuritySchemes map[string]struct {
			Type   string `json:"type"`
			Scheme string `json:"scheme"`
			In     string `json:"in"`
			Name   string `json:"name"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type oaParam struct {
	Ref      string `json:"$ref"`
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type oaOperation struct {
	OperationID string                     `json:"operationId"`
	Parameters  []oaParam                  `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
	// nil: absent (the document sets no global security, so every
	// operation must say); empty: no credentials.
	Security *[]map[string][]string `json:"security"`
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

var (
	templateParam = regexp.MustCompile(`\{([^{}]+)\}`)
	statusKey     = regexp.MustCompile(`^[1-5](\d\d|XX)$`)
)

// pathParams are the parameter names in a path template.
func pathParams(path string) []string {
	var out []string
	for _, m := range templateParam.FindAllStringSubmatch(path, -1) {
		out = append(out, m[1])
	}
	return out
}

// checkOpenAPI lists everything wrong with the document for these routes;
// nil means it is complete and consistent.
func checkOpenAPI(raw []byte, routes []route) []string {
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	var doc oaDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return []string{"document is not valid JSON of the expected shape: " + err.Error()}
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		bad("openapi is %q, want 3.x", doc.OpenAPI)
	}

	// Every route is documented.
	want := map[string]route{}
	for _, r := range routes {
		key := strings.ToLower(r.method) + " " + r.path
		if _, dup := want[key]; dup {
			bad("route %s %s is in the table twice", r.method, r.path)
		}
		want[key] = r
		item, ok := doc.Paths[r.path]
		if !ok {
			bad("route %s %s: path missing from paths", r.method, r.path)
			continue
		}
		if _, ok := item[strings.ToLower(r.method)]; !ok {
			bad("route %s %s: method missing under paths[%q]", r.method, r.path, r.path)
		}
	}

	// Every operation is a route, and is well formed.
	opIDs := map[string]string{}
	for path, item := range doc.Paths {
		var pathLevel []oaParam
		if p, ok := item["parameters"]; ok {
			if err := json.Unmarshal(p, &pathLevel); err != nil {
				bad("paths[%q].parameters: %v", path, err)
			}
		}
		for key, rawOp := range item {
			if key == "parameters" || key == "summary" || key == "description" || key == "servers" {
				continue
			}
			if !slices.Contains(oaMethods, key) {
				bad("paths[%q]: unknown key %q", path, key)
				continue
			}
			where := strings.ToUpper(key) + " " + path
			r, ok := want[key+" "+path]
			if !ok {
				bad("%s is documented but is not a route (stale entry)", where)
				continue
			}
			var op oaOperation
			if err := json.Unmarshal(rawOp, &op); err != nil {
				bad("%s: %v", where, err)
				continue
			}
			if op.OperationID == "" {
				bad("%s: no operationId", where)
			} else if other, dup := opIDs[op.OperationID]; dup {
				bad("%s: operationId %q already used by %s", where, op.OperationID, other)
			} else {
				opIDs[op.OperationID] = where
			}
			if len(op.Responses) == 0 {
				bad("%s: no responses", where)
			}
			for code := range op.Responses {
				if code != "default" && !statusKey.MatchString(code) {
					bad("%s: response key %q is not a status", where, code)
				}
			}
			probs = append(probs, checkParams(doc, where, path, pathLevel, op.Parameters)...)
			probs = append(probs, checkSecurity(doc, where, r.auth, op)...)
		}
	}

	probs = append(probs, checkRefs(raw)...)
	probs = append(probs, checkEventSchemas(raw, events.Names())...)
	return probs
}

// checkParams: the template's parameters and the declared path parameters
// (on the path item or the operation) are the same set, all required.
func checkParams(doc oaDoc, where, path string, pathLevel, opLevel []oaParam) []string {
	var probs []string
	declared := map[string]bool{}
	for _, p := range append(slices.Clone(pathLevel), opLevel...) {
		if p.Ref != "" {
			name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
			c, found := doc.Components.Parameters[name]
			if !ok || !found {
				probs = append(probs, fmt.Sprintf("%s: parameter $ref %q does not resolve", where, p.Ref))
				continue
			}
			p = c
		}
		if p.In != "path" {
			continue
		}
		if !p.Required {
			probs = append(probs, fmt.Sprintf("%s: path parameter %q is not required: true", where, p.Name))
		}
		declared[p.Name] = true
	}
	inTemplate := pathParams(path)
	for _, name := range inTemplate {
		if !declared[name] {
			probs = append(probs, fmt.Sprintf("%s: path parameter {%s} is not declared (in: path)", where, name))
		}
	}
	for name := range declared {
		if !slices.Contains(inTemplate, name) {
			probs = append(probs, fmt.Sprintf("%s: declares path parameter %q that is not in the path", where, name))
		}
	}
	return probs
}

// checkSecurity: the operation names the credentials the route's table
// entry demands, and documents the answers to wrong ones.
func checkSecurity(doc oaDoc, where string, auth authKind, op oaOperation) []string {
	if op.Security == nil {
		return []string{where + ": no security (the document has no global one; say [] for none)"}
	}
	reqs := *op.Security
	if auth == authNone {
		if len(reqs) != 0 {
			return []string{fmt.Sprintf("%s: needs no credentials, but security is %v", where, reqs)}
		}
		return nil
	}
	if auth == authViewer {
		return checkViewerSecurity(doc, where, op)
	}
	if auth == authCaller {
		return checkCallerSecurity(doc, where, op)
	}
	scheme := map[authKind]string{authOperator: "basic", authUser: "bearer"}[auth]
	var probs []string
	if len(reqs) != 1 || len(reqs[0]) != 1 {
		probs = append(probs, fmt.Sprintf("%s: security %v, want one %s scheme", where, reqs, scheme))
	} else {
		for name := range reqs[0] {
			s, ok := doc.Components.SecuritySchemes[name]
			if !ok {
				probs = append(probs, fmt.Sprintf("%s: security scheme %q is not in components", where, name))
			} else if s.Type != "http" || !strings.EqualFold(s.Scheme, scheme) {
				probs = append(probs, fmt.Sprintf("%s: security scheme %q is %s/%s, want http/%s", where, name, s.Type, s.Scheme, scheme))
			}
		}
	}
	for _, code := range []string{"401", "429"} {
		if _, ok := op.Responses[code]; !ok {
			probs = append(probs, fmt.Sprintf("%s: takes credentials but does not document %s", where, code))
		}
	}
	return probs
}

// checkCallerSecurity: event tickets take HTTP Basic (operator) or a
// bearer token, two alternatives, and nothing in the query.
func checkCallerSecurity(doc oaDoc, where string, op oaOperation) []string {
	var probs []string
	want := map[string]bool{"http/basic": false, "http/bearer": false}
	for _, req := range *op.Security {
		for name := range req {
			s, ok := doc.Components.SecuritySchemes[name]
			key := s.Type + "/" + strings.ToLower(s.Scheme)
			if _, known := want[key]; !ok || !known || len(req) != 1 {
				probs = append(probs, fmt.Sprintf("%s: security %v, want operator basic or user bearer", where, *op.Security))
				continue
			}
			want[key] = true
		}
	}
	return append(probs, credentialGaps(where, want, op)...)
}

// credentialGaps: the schemes in want that the operation's security does
// not offer, and the 401 and 429 every route taking credentials documents.
func credentialGaps(where string, want map[string]bool, op oaOperation) []string {
	var probs []string
	for k, seen := range want {
		if !seen {
			probs = append(probs, fmt.Sprintf("%s: security does not offer %s", where, k))
		}
	}
	for _, code := range []string{"401", "429"} {
		if _, ok := op.Responses[code]; !ok {
			probs = append(probs, fmt.Sprintf("%s: takes credentials but does not document %s", where, code))
		}
	}
	return probs
}

// checkViewerSecurity: the event stream takes HTTP Basic (operator), a
// bearer token, or the token in the query: three alternatives.
func checkViewerSecurity(doc oaDoc, where string, op oaOperation) []string {
	var probs []string
	want := map[string]bool{"http/basic": false, "http/bearer": false, "apiKey/query/token": false}
	for _, req := range *op.Security {
		for name := range req {
			s, ok := doc.Components.SecuritySchemes[name]
			if !ok {
				probs = append(probs, fmt.Sprintf("%s: security scheme %q is not in components", where, name))
				continue
			}
			key := s.Type + "/" + strings.ToLower(s.Scheme)
			if s.Type == "apiKey" {
				key = s.Type + "/" + s.In + "/" + s.Name
			}
			want[key] = true
		}
	}
	return append(probs, credentialGaps(where, want, op)...)
}

// checkEventSchemas: every event name the bus serves has a message schema
// among EventMessage's oneOf, with its name as the only enum value and a
// data payload that resolves; and none documented is unknown.
func checkEventSchemas(raw []byte, names []string) []string {
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return []string{err.Error()}
	}
	var probs []string
	msg, ok := resolvePointer(root, "/components/schemas/EventMessage")
	if !ok {
		return []string{"components/schemas/EventMessage is missing"}
	}
	one, _ := msg.(map[string]any)["oneOf"].([]any)
	documented := map[string]bool{}
	for i, o := range one {
		ref, _ := o.(map[string]any)["$ref"].(string)
		s, ok := resolvePointer(root, strings.TrimPrefix(ref, "#"))
		if !ok {
			probs = append(probs, fmt.Sprintf("EventMessage.oneOf[%d]: $ref %q does not resolve", i, ref))
			continue
		}
		props, _ := s.(map[string]any)["properties"].(map[string]any)
		nameProp, _ := props["name"].(map[string]any)
		enum, _ := nameProp["enum"].([]any)
		if len(enum) != 1 {
			probs = append(probs, fmt.Sprintf("%s: name must have one enum value, has %v", ref, enum))
			continue
		}
		name, _ := enum[0].(string)
		documented[name] = true
		if !slices.Contains(names, name) {
			probs = append(probs, fmt.Sprintf("%s documents event %q, which the bus does not know", ref, name))
		}
		data, _ := props["data"].(map[string]any)
		dref, _ := data["$ref"].(string)
		if _, ok := resolvePointer(root, strings.TrimPrefix(dref, "#")); dref == "" || !ok {
			probs = append(probs, fmt.Sprintf("event %s: data has no payload schema", name))
		}
		for _, f := range []string{"origin_uuid", "seq"} {
			if _, ok := props[f]; !ok {
				probs = append(probs, fmt.Sprintf("event %s: no %s", name, f))
			}
		}
	}
	for _, n := range names {
		if !documented[n] {
			probs = append(probs, fmt.Sprintf("event %s has no message schema in EventMessage.oneOf", n))
		}
	}
	return probs
}

// checkRefs: every "$ref" anywhere is a local reference to something under
// components that exists.
func checkRefs(raw []byte) []string {
	var root any
	if err := json.Unmarshal(raw, &root); err != nil {
		return []string{err.Error()}
	}
	var probs []string
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"]; ok {
				s, _ := ref.(string)
				if !strings.HasPrefix(s, "#/components/") {
					probs = append(probs, fmt.Sprintf("%s: $ref %v is not a local component", at, ref))
				} else if _, ok := resolvePointer(root, strings.TrimPrefix(s, "#")); !ok {
					probs = append(probs, fmt.Sprintf("%s: $ref %q does not resolve", at, s))
				}
			}
			for k, c := range v {
				walk(at+"/"+k, c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s/%d", at, i), c)
			}
		}
	}
	walk("#", root)
	return probs
}

// resolvePointer follows a JSON pointer (RFC 6901) from the root.
func resolvePointer(root any, ptr string) (any, bool) {
	cur := root
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// serveDocument starts the API's mux on loopback and fetches the document
// as a client would. Only the document's route is called, which needs no
// SIP server behind the API.
func serveDocument(t *testing.T) []byte {
	t.Helper()
	mux := http.NewServeMux()
	(&API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: status %d, body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if !bytes.Equal(body, openAPIDoc) {
		t.Errorf("served document (%d bytes) differs from the embedded openapi.json (%d bytes)", len(body), len(openAPIDoc))
	}
	return body
}

// tableRoutes is the route table, checked against the exported list the
// rest of the project sees.
func tableRoutes(t *testing.T) []route {
	t.Helper()
	a := &API{}
	rs := a.routes()
	var fromTable []Route
	for _, r := range rs {
		fromTable = append(fromTable, Route{r.method, r.path})
	}
	if exported := a.Routes(); !slices.Equal(exported, fromTable) {
		t.Fatalf("Routes() = %v, want the table's %v", exported, fromTable)
	}
	if len(rs) == 0 {
		t.Fatal("the route table is empty")
	}
	return rs
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	routes := tableRoutes(t)
	doc := serveDocument(t)
	for _, p := range checkOpenAPI(doc, routes) {
		t.Error(p)
	}
}

// TestOpenAPICheckFindsMistakes breaks a copy of the real document in each
// way the check must notice, so that the check above cannot pass by
// checking nothing.
func TestOpenAPICheckFindsMistakes(t *testing.T) {
	routes := tableRoutes(t)
	if probs := checkOpenAPI(openAPIDoc, routes); len(probs) != 0 {
		t.Fatalf("the real document must pass first: %v", probs)
	}
	// A route with a path parameter and credentials, to break.
	var target route
	for _, r := range routes {
		if r.auth == authUser && len(pathParams(r.path)) > 0 {
			target = r
			break
		}
	}
	if target.path == "" {
		t.Fatal("no user route with a path parameter in the table")
	}
	method := strings.ToLower(target.method)
	op := func(doc map[string]any) map[string]any {
		return doc["paths"].(map[string]any)[target.path].(map[string]any)[method].(map[string]any)
	}
	firstOp := func(doc map[string]any, path string) map[string]any {
		for _, m := range oaMethods {
			if o, ok := doc["paths"].(map[string]any)[path].(map[string]any)[m]; ok {
				return o.(map[string]any)
			}
		}
		t.Fatalf("no operation under %s", path)
		return nil
	}
	otherPath := routes[0].path
	if otherPath == target.path {
		otherPath = routes[len(routes)-1].path
	}

	cases := []struct {
		name   string
		mutate func(doc map[string]any)
		want   string
	}{
		{"old version", func(d map[string]any) { d["openapi"] = "2.0" }, `want 3.x`},
		{"route's path missing", func(d map[string]any) { delete(d["paths"].(map[string]any), target.path) },
			"path missing from paths"},
		{"route's method missing", func(d map[string]any) {
			delete(d["paths"].(map[string]any)[target.path].(map[string]any), method)
		}, "method missing under paths"},
		{"stale path", func(d map[string]any) {
			d["paths"].(map[string]any)["/api/v1/gone"] = map[string]any{"get": op(d)}
		}, "GET /api/v1/gone is documented but is not a route"},
		{"stale method", func(d map[string]any) {
			d["paths"].(map[string]any)[target.path].(map[string]any)["patch"] = op(d)
		}, "PATCH " + target.path + " is documented but is not a route"},
		{"no operationId", func(d map[string]any) { delete(op(d), "operationId") }, "no operationId"},
		{"duplicate operationId", func(d map[string]any) {
			firstOp(d, otherPath)["operationId"] = op(d)["operationId"]
		}, "already used by"},
		{"no responses", func(d map[string]any) { op(d)["responses"] = map[string]any{} }, "no responses"},
		{"path parameter undeclared", func(d map[string]any) {
			delete(d["paths"].(map[string]any)[target.path].(map[string]any), "parameters")
			delete(op(d), "parameters")
		}, "is not declared (in: path)"},
		{"path parameter optional", func(d map[string]any) {
			name := pathParams(target.path)[0]
			delete(d["paths"].(map[string]any)[target.path].(map[string]any), "parameters")
			op(d)["parameters"] = []any{map[string]any{"name": name, "in": "path", "schema": map[string]any{"type": "string"}}}
		}, "is not required: true"},
		{"extra path parameter", func(d map[string]any) {
			op(d)["parameters"] = []any{map[string]any{"name": "nope", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}}
		}, `declares path parameter "nope"`},
		{"dangling $ref", func(d map[string]any) {
			op(d)["responses"].(map[string]any)["418"] = map[string]any{"$ref": "#/components/responses/Teapot"}
		}, `$ref "#/components/responses/Teapot" does not resolve`},
		{"no security", func(d map[string]any) { delete(op(d), "security") }, "no security"},
		{"wrong security", func(d map[string]any) { op(d)["security"] = []any{} }, "security [], want one bearer scheme"},
		{"event without a schema", func(d map[string]any) {
			em := d["components"].(map[string]any)["schemas"].(map[string]any)["EventMessage"].(map[string]any)
			em["oneOf"] = em["oneOf"].([]any)[1:]
		}, "event room_created has no message schema"},
		{"event payload missing", func(d map[string]any) {
			s := d["components"].(map[string]any)["schemas"].(map[string]any)["Event_meeting_participant_left"].(map[string]any)
			delete(s["properties"].(map[string]any), "data")
		}, "event meeting_participant_left: data has no payload schema"},
		{"unknown event documented", func(d map[string]any) {
			s := d["components"].(map[string]any)["schemas"].(map[string]any)["Event_room_locked"].(map[string]any)
			s["properties"].(map[string]any)["name"] = map[string]any{"enum": []any{"room_exploded"}}
		}, `documents event "room_exploded"`},
		{"event stream without the query token", func(d map[string]any) {
			op := d["paths"].(map[string]any)["/api/v1/events"].(map[string]any)["get"].(map[string]any)
			op["security"] = op["security"].([]any)[:2]
		}, "security does not offer apiKey/query/token"},
		{"401 undocumented", func(d map[string]any) {
			delete(op(d)["responses"].(map[string]any), "401")
		}, "does not document 401"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
				t.Fatal(err)
			}
			c.mutate(doc)
			broken, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			probs := checkOpenAPI(broken, routes)
			for _, p := range probs {
				if strings.Contains(p, c.want) {
					return
				}
			}
			t.Errorf("check missed it: want a problem containing %q, got %q", c.want, probs)
		})
	}
}
