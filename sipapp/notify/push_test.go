package notify

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"webconf/conf"
)

func newPush(t *testing.T, c conf.Push) Pusher {
	t.Helper()
	p, err := NewPushGateway(c)
	if err != nil || p == nil {
		t.Fatalf("NewPushGateway: %v, %v", p, err)
	}
	return p
}

func TestPushPostsQuobisPayload(t *testing.T) {
	g := newTestGateway(t)
	c := conf.Default().Push
	c.URL, c.Token = g.URL+"/users/{{user}}/push", "push-tok"
	p := Push{Key: "push-1", UserUUID: "3f2a/ü", MeetingUUID: "8d1e-42", Name: `Café "semanal" & <retro>`}
	if err := newPush(t, c).SendPush(context.Background(), p); err != nil {
		t.Fatalf("SendPush: %v", err)
	}
	r := g.next(t)
	if r.Method != "POST" || r.Path != "/users/3f2a%2F%C3%BC/push" {
		t.Errorf("got %s %s, want POST /users/3f2a%%2F%%C3%%BC/push", r.Method, r.Path)
	}
	var got any
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
		t.Fatalf("the body is not JSON: %v\n%s", err, r.Body)
	}
	want := map[string]any{"type": "meeting-reminder", "info": map[string]any{"id": p.MeetingUUID, "name": p.Name}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("payload %s, want exactly %v", r.Body, want)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if a := r.Header.Get("Authorization"); a != "Bearer push-tok" {
		t.Errorf("Authorization %q", a)
	}
	if k, u := r.Header.Get("Idempotency-Key"), r.Header.Get(PushHeaderUser); k != p.Key || u != p.UserUUID {
		t.Errorf("Idempotency-Key %q, %s %q", k, PushHeaderUser, u)
	}
}

func TestPushStatusMapping(t *testing.T) {
	g := newTestGateway(t)
	c := conf.Default().Push
	c.URL = g.URL
	pu := newPush(t, c)
	p := Push{Key: "k", UserUUID: "u1", MeetingUUID: "m1", Name: "n"}
	for _, tc := range []struct {
		status          int
		sent, permanent bool
	}{{200, true, false}, {204, true, false}, {500, false, false}, {429, false, false}, {400, false, true}, {404, false, true}} {
		g.status.Store(int32(tc.status))
		err := pu.SendPush(context.Background(), p)
		r := g.next(t)
		if r.Header.Get("Authorization") != "" {
			t.Errorf("no token, yet Authorization %q", r.Header.Get("Authorization"))
		}
		if tc.sent != (err == nil) || tc.permanent != errors.Is(err, ErrPermanent) {
			t.Errorf("status %d: err %v; want sent %v permanent %v", tc.status, err, tc.sent, tc.permanent)
		}
	}
	if err := pu.SendPush(context.Background(), Push{MeetingUUID: "m1"}); !errors.Is(err, ErrPermanent) {
		t.Errorf("a push without a user: %v, want permanent", err)
	}
	g.Close()
	if err := pu.SendPush(context.Background(), p); err == nil || errors.Is(err, ErrPermanent) {
		t.Errorf("a push service that is down: %v, want retryable", err)
	}
}

func TestNewPushGateway(t *testing.T) {
	if p, err := NewPushGateway(conf.Default().Push); p != nil || err != nil {
		t.Errorf("no url: %v, %v; want no push and no error", p, err)
	}
	_, err := NewPushGateway(conf.Push{URL: "push.example.com/x", Timeout: 10e9})
	if err == nil || !strings.Contains(err.Error(), "[push] url") {
		t.Errorf("a bad url: %v", err)
	}
}
