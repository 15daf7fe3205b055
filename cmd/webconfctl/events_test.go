package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"webconf/test/testutil"
)

// runEvents runs webconfctl events until the test ends (its context is
// cancelled then) and returns its stdout, line by line, and its exit code.
func runEvents(t *testing.T, args ...string) (lines <-chan string, rc <-chan int, stderr *syncWriter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	old := interrupted
	interrupted = func() (context.Context, context.CancelFunc) { return ctx, cancel }
	pr, pw := io.Pipe()
	out := make(chan string, 100)
	code := make(chan int, 1)
	errb := &syncWriter{}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		code <- run(args, pw, errb)
		pw.Close()
	}()
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			out <- sc.Text()
		}
		close(out)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("webconfctl events did not stop when interrupted")
		}
		interrupted = old
	})
	return out, code, errb
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func nextLine(t *testing.T, lines <-chan string) map[string]any {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("webconfctl events ended")
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10 s")
	}
	return nil
}

// The operator's stream from a real node: a room made over XML-RPC is
// printed as one JSON line.
func TestEventsCommand(t *testing.T) {
	t.Setenv("WEBCONF_MASTER_PASSWORD", "")
	n := startNodeHTTP(t, "127.0.0.1:0")
	url := "http://" + n.RPCAddr() + "/"
	lines, _, _ := runEvents(t, "-url", url, "-api", n.HTTPAddr(), "-master", "master", "events", "-names", "room_created,room_deleted")
	testutil.WaitFor(t, 10*time.Second, "the stream connected", func() bool { return n.Events().Subscribers() == 1 })
	out, _, rc := ctl(t, url, "create", "600")
	if rc != 0 {
		t.Fatalf("create: %q", out)
	}
	m := nextLine(t, lines)
	data, _ := m["data"].(map[string]any)
	if m["name"] != "room_created" || data["room"] != "600" || m["origin_uuid"] != n.NodeUUID() {
		t.Errorf("printed %v", m)
	}

	// Wrong credentials: an error, not a retry loop.
	_, rc2, errb := runEvents(t, "-url", url, "-api", n.HTTPAddr(), "events", "-token", "nope")
	select {
	case c := <-rc2:
		if c != 1 || !strings.Contains(errb.String(), "401") {
			t.Errorf("wrong token: rc %d, stderr %q", c, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wrong token: still running")
	}
}

// After a lost connection the command reconnects with since = the last
// seq it printed.
func TestEventsCommandResumes(t *testing.T) {
	resumeDelay = 10 * time.Millisecond
	t.Cleanup(func() { resumeDelay = 500 * time.Millisecond })
	queries := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		queries <- r.URL.RawQuery
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		seq := 7
		if r.URL.Query().Get("since") == "7" {
			seq = 8
		}
		_ = c.Write(r.Context(), websocket.MessageText, fmt.Appendf(nil, `{"name":"room_created","origin_uuid":"u","seq":%d,"data":{"room":"r"}}`, seq))
		if seq == 7 {
			c.Close(websocket.StatusPolicyViolation, "too slow: events dropped")
			return
		}
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	lines, _, errb := runEvents(t, "-api", srv.URL, "-master", "m", "events", "-rooms", "r")
	if m := nextLine(t, lines); m["seq"] != 7.0 {
		t.Fatalf("first line %v", m)
	}
	if m := nextLine(t, lines); m["seq"] != 8.0 {
		t.Fatalf("second line %v", m)
	}
	if q := <-queries; q != "rooms=r" {
		t.Errorf("first query %q", q)
	}
	if q := <-queries; q != "rooms=r&since=7" {
		t.Errorf("after the drop: query %q, want rooms=r&since=7", q)
	}
	if !strings.Contains(errb.String(), "resuming after seq 7") {
		t.Errorf("stderr %q", errb.String())
	}
}
