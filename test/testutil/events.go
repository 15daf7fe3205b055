package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Event is one message of the event stream (GET /api/v1/events).
type Event struct {
	Name   string         `json:"name"`
	Origin string         `json:"origin_uuid"`
	Seq    uint64         `json:"seq"`
	Data   map[string]any `json:"data"`
}

// Ev is an expected event: its name and payload fields (key, value
// pairs; a nil value is JSON null).
func Ev(name string, kv ...any) Event {
	d := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1]
	}
	return Event{Name: name, Data: d}
}

// EventStream is a WebSocket client of a node's event stream; it reads
// every message as it comes, so the server never finds it slow.
type EventStream struct {
	c    *websocket.Conn
	msgs chan Event
	err  chan error // why reading stopped
	// Talk keeps the talk events (else Next skips them: their timing
	// depends on the audio).
	Talk bool
}

// DialEvents opens the event stream of the node whose REST API listens
// on httpAddr, with the query (without "?") and the header.
func DialEvents(t testing.TB, httpAddr, query string, hdr http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	u := "ws://" + httpAddr + "/api/v1/events"
	if query != "" {
		u += "?" + query
	}
	return websocket.Dial(Ctx(t, 10*time.Second), u, &websocket.DialOptions{HTTPHeader: hdr})
}

// OpenEvents is DialEvents that fails the test unless the upgrade
// succeeds; the connection is closed when the test ends.
func OpenEvents(t testing.TB, httpAddr, query string, hdr http.Header) *EventStream {
	t.Helper()
	c, resp, err := DialEvents(t, httpAddr, query, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("events?%s: %v (status %d)", query, err, status)
	}
	s := &EventStream{c: c, msgs: make(chan Event, 1024), err: make(chan error, 1)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				s.err <- err
				close(s.msgs)
				return
			}
			var m Event
			if err := json.Unmarshal(b, &m); err != nil {
				s.err <- fmt.Errorf("message %s: %w", b, err)
				close(s.msgs)
				return
			}
			s.msgs <- m
		}
	}()
	t.Cleanup(func() { c.CloseNow() })
	return s
}

// Next is the next message, skipping talk events unless Talk is set; it
// fails the test when none comes within 10 s.
func (s *EventStream) Next(t testing.TB) Event {
	t.Helper()
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatalf("stream ended: %v", <-s.err)
			}
			if !s.Talk && strings.HasPrefix(m.Name, "room_participant_talk_") {
				continue
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no event within 10 s")
		}
	}
}

// Expect reads the next messages, which must have these names and
// payload fields, in this order, with rising seq. Values are compared
// as fmt.Sprint prints them (a map[string]any matches an object with the
// same keys and values).
func (s *EventStream) Expect(t testing.TB, who string, want ...Event) []Event {
	t.Helper()
	var got []Event
	for i, w := range want {
		m := s.Next(t)
		got = append(got, m)
		if m.Name != w.Name {
			t.Fatalf("%s: event %d is %s %v, want %s %v", who, i, m.Name, m.Data, w.Name, w.Data)
		}
		Check(t, who, m, w)
		if i > 0 && m.Seq <= got[i-1].Seq {
			t.Errorf("%s: seq %d after %d", who, m.Seq, got[i-1].Seq)
		}
	}
	return got
}

// Check compares an event's payload with want's fields (as Expect
// does).
func Check(t testing.TB, who string, got, want Event) {
	t.Helper()
	for k, v := range want.Data {
		if gv, ok := got.Data[k]; !ok || fmt.Sprint(gv) != fmt.Sprint(v) {
			t.Errorf("%s: %s: data[%q] = %v, want %v (data %v)", who, got.Name, k, gv, v, got.Data)
		}
	}
}

// BasicHeader is an Authorization header with Basic credentials.
func BasicHeader(user, pass string) http.Header {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pass)
	return http.Header{"Authorization": r.Header["Authorization"]}
}
