package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"webconf/conf"
)

// gwRequest is what the test gateway received.
type gwRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

// testGateway is an HTTP gateway on loopback that records every request
// and answers with status (200 until set).
type testGateway struct {
	*httptest.Server
	reqs   chan gwRequest
	status atomic.Int32
	reply  atomic.Value // string body of the answer
	count  atomic.Int32
}

func newTestGateway(t *testing.T) *testGateway {
	t.Helper()
	g := &testGateway{reqs: make(chan gwRequest, 16)}
	g.status.Store(200)
	g.reply.Store("")
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		g.count.Add(1)
		g.reqs <- gwRequest{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(b)}
		w.WriteHeader(int(g.status.Load()))
		_, _ = io.WriteString(w, g.reply.Load().(string))
	}))
	t.Cleanup(g.Close)
	return g
}

// next is the next request the gateway received.
func (g *testGateway) next(t *testing.T) gwRequest {
	t.Helper()
	select {
	case r := <-g.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the gateway received no request")
		return gwRequest{}
	}
}

func smsConf(url, body string) conf.SMS {
	c := conf.Default().SMS
	c.URL, c.Body = url, body
	return c
}

func newSMS(t *testing.T, c conf.SMS) SMSSender {
	t.Helper()
	s, err := NewSMSGateway(c)
	if err != nil || s == nil {
		t.Fatalf("NewSMSGateway: %v, %v", s, err)
	}
	return s
}

// Values that need escaping in a form and in JSON.
var awkward = SMS{
	Key:  "sms-7f3a:1",
	To:   "+34 600 000 000",
	From: `Ana "la jefa" & Co`,
	Text: "Reunión «año» 50% a+b=c & d;e\nhttps://meet.example.com/m/1?x=1&y=2 \\ \"fin\"",
}

func TestSMSFormPostWithBasicAuth(t *testing.T) {
	g := newTestGateway(t)
	c := smsConf(g.URL+"/send?account=7", "To={{to}}&From={{ from }}&Body={{text}}")
	c.Auth, c.Username, c.Password = "basic", "acct", "pa:ss&ñ"
	if err := newSMS(t, c).SendSMS(context.Background(), awkward); err != nil {
		t.Fatalf("SendSMS: %v", err)
	}
	r := g.next(t)
	if r.Method != "POST" || r.Path != "/send" || r.RawQuery != "account=7" {
		t.Errorf("got %s %s?%s, want POST /send?account=7", r.Method, r.Path, r.RawQuery)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	form, err := url.ParseQuery(r.Body)
	if err != nil {
		t.Fatalf("the body %q is not a form: %v", r.Body, err)
	}
	if form.Get("To") != awkward.To || form.Get("From") != awkward.From || form.Get("Body") != awkward.Text || len(form) != 3 {
		t.Errorf("form %q does not carry the values: %#v", r.Body, form)
	}
	if !strings.Contains(r.Body, "Reuni%C3%B3n") {
		t.Errorf("ñ/ó not URL-encoded as UTF-8: %q", r.Body)
	}
	req := &http.Request{Header: r.Header}
	if u, p, ok := req.BasicAuth(); !ok || u != "acct" || p != "pa:ss&ñ" {
		t.Errorf("basic auth %q %q %v", u, p, ok)
	}
	if k := r.Header.Get("Idempotency-Key"); k != awkward.Key {
		t.Errorf("Idempotency-Key %q, want %q", k, awkward.Key)
	}
}

func TestSMSJSONPutWithBearer(t *testing.T) {
	g := newTestGateway(t)
	c := smsConf(g.URL+"/v1/messages", `{"messages": [{"to": "{{to}}", "from": "{{from}}", "body": "{{text}}", "note": "x"}]}`)
	c.Method, c.Auth, c.Token, c.IdempotencyHeader = "put", "bearer", "tok-123", "X-Request-Id"
	if err := newSMS(t, c).SendSMS(context.Background(), awkward); err != nil {
		t.Fatalf("SendSMS: %v", err)
	}
	r := g.next(t)
	if r.Method != "PUT" || r.Path != "/v1/messages" {
		t.Errorf("got %s %s, want PUT /v1/messages", r.Method, r.Path)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc struct {
		Messages []map[string]string `json:"messages"`
	}
	if err := json.Unmarshal([]byte(r.Body), &doc); err != nil {
		t.Fatalf("the body is not JSON: %v\n%s", err, r.Body)
	}
	want := map[string]string{"to": awkward.To, "from": awkward.From, "body": awkward.Text, "note": "x"}
	if len(doc.Messages) != 1 || len(doc.Messages[0]) != 4 {
		t.Fatalf("body %s", r.Body)
	}
	for k, v := range want {
		if doc.Messages[0][k] != v {
			t.Errorf("%s = %q, want %q", k, doc.Messages[0][k], v)
		}
	}
	if a := r.Header.Get("Authorization"); a != "Bearer tok-123" {
		t.Errorf("Authorization %q", a)
	}
	if k := r.Header.Get("X-Request-Id"); k != awkward.Key || r.Header.Get("Idempotency-Key") != "" {
		t.Errorf("X-Request-Id %q (Idempotency-Key %q), want the key in the configured header only", k, r.Header.Get("Idempotency-Key"))
	}
}

func TestSMSGetPutsTheFormInTheQuery(t *testing.T) {
	g := newTestGateway(t)
	c := smsConf(g.URL+"/http/send?api=1", "to={{to}}&text={{text}}")
	c.Method = "GET"
	if err := newSMS(t, c).SendSMS(context.Background(), awkward); err != nil {
		t.Fatalf("SendSMS: %v", err)
	}
	r := g.next(t)
	q, err := url.ParseQuery(r.RawQuery)
	if r.Method != "GET" || r.Path != "/http/send" || err != nil || r.Body != "" {
		t.Fatalf("got %s %s?%s body %q (%v)", r.Method, r.Path, r.RawQuery, r.Body, err)
	}
	if q.Get("api") != "1" || q.Get("to") != awkward.To || q.Get("text") != awkward.Text {
		t.Errorf("query %#v does not carry the url's key and the values", q)
	}
	if r.Header.Get("Authorization") != "" {
		t.Errorf("auth none sent Authorization %q", r.Header.Get("Authorization"))
	}
}

func TestSMSStatusMapping(t *testing.T) {
	g := newTestGateway(t)
	s := newSMS(t, smsConf(g.URL, "t={{text}}"))
	for _, tc := range []struct {
		status    int
		sent      bool
		permanent bool
	}{
		{200, true, false}, {201, true, false}, {202, true, false}, {204, true, false},
		{500, false, false}, {502, false, false}, {503, false, false},
		{408, false, false}, {429, false, false},
		{400, false, true}, {401, false, true}, {403, false, true}, {404, false, true}, {422, false, true},
		{302, false, true},
	} {
		g.status.Store(int32(tc.status))
		g.reply.Store(`{"error": "nope"}`)
		err := s.SendSMS(context.Background(), SMS{Key: "k", To: "1", Text: "hi"})
		g.next(t)
		if tc.sent != (err == nil) || tc.permanent != errors.Is(err, ErrPermanent) {
			t.Errorf("status %d: err %v; want sent %v permanent %v", tc.status, err, tc.sent, tc.permanent)
		}
		if err != nil && !strings.Contains(err.Error(), "nope") {
			t.Errorf("status %d: the error %v does not show the gateway's answer", tc.status, err)
		}
	}
	if err := s.SendSMS(context.Background(), SMS{Key: "k", Text: "hi"}); !errors.Is(err, ErrPermanent) || g.count.Load() != 15 {
		t.Errorf("an SMS without a number: %v after %d requests; want permanent, not sent", err, g.count.Load())
	}
}

func TestSMSGatewayDownIsRetryable(t *testing.T) {
	g := newTestGateway(t)
	c := smsConf(g.URL+"/send?api_key=secret-in-url", "t={{text}}")
	c.Auth, c.Token = "bearer", "secret-token"
	s := newSMS(t, c)
	g.Close() // nobody listens on the port any more
	err := s.SendSMS(context.Background(), SMS{Key: "k", To: "1", Text: "hi"})
	if err == nil || errors.Is(err, ErrPermanent) {
		t.Fatalf("a gateway that is down: %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("the error shows a secret: %v", err)
	}
}

func TestSMSGatewayTimeoutIsRetryable(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := smsConf(srv.URL, "t={{text}}")
	c.Timeout = time.Second
	s := newSMS(t, c)
	done := make(chan error, 1)
	go func() { done <- s.SendSMS(context.Background(), SMS{To: "1", Text: "hi"}) }()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, ErrPermanent) {
			t.Fatalf("a gateway that does not answer: %v, want a retryable error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SendSMS still waits after 5 s, timeout is 1 s")
	}
}

func TestNewSMSGateway(t *testing.T) {
	if s, err := NewSMSGateway(conf.Default().SMS); s != nil || err != nil {
		t.Errorf("no url: %v, %v; want no service and no error", s, err)
	}
	_, err := NewSMSGateway(smsConf("http://127.0.0.1:1/", "to={{to}}"))
	if err == nil || !strings.Contains(err.Error(), "[sms] body: has no {{text}}") {
		t.Errorf("a body without {{text}}: %v", err)
	}
}

func TestSMSRedirectIsNotFollowed(t *testing.T) {
	var elsewhere atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			elsewhere.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	c := smsConf(srv.URL+"/send", "t={{text}}")
	c.Auth, c.Token = "bearer", "tok"
	err := newSMS(t, c).SendSMS(context.Background(), SMS{To: "1", Text: "hi"})
	if !errors.Is(err, ErrPermanent) || elsewhere.Load() != 0 {
		t.Errorf("a 307: err %v, %d requests followed it; want a permanent error and none", err, elsewhere.Load())
	}
}
