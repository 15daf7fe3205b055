package events

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A WebSocket client that stops reading is cut off with 1008 once its
// queue fills, while the publisher and a reading client go on; when it
// reads again it finds what was sent, then the close reason.
func TestStreamSlowClientClosedWithReason(t *testing.T) {
	b := New(Options{Origin: origin, RingSize: 64, ClientQueue: 4, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	defer b.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, replay, err := b.Subscribe(Filter{Operator: true}, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusGone)
			return
		}
		_ = Serve(w, r, sub, replay, false)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dial := func() *websocket.Conn {
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		return c
	}
	slow := dial()
	defer slow.CloseNow()
	fast := dial()
	defer fast.CloseNow()
	for b.Subscribers() != 2 {
		time.Sleep(time.Millisecond)
	}
	var read atomic.Int64 // what the fast client has read
	got := make(chan int)
	go func() {
		for {
			if _, _, err := fast.Read(ctx); err != nil {
				got <- int(read.Load())
				return
			}
			read.Add(1)
		}
	}()
	// The fast client reads each event before the next is published, so
	// it is never behind.
	caughtUp := func(n int) {
		for read.Load() != int64(n) {
			if ctx.Err() != nil {
				t.Fatalf("the fast client read %d of %d", read.Load(), n)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}

	// 16 KiB events: the socket buffers fill, the writer blocks, the
	// queue fills, the bus cuts the slow client off.
	big := RoomParticipant{Room: "r", Number: strings.Repeat("x", 16<<10)}
	published := 0
	for b.CutOff() == 0 {
		if ctx.Err() != nil {
			t.Fatal("the slow client was never cut off")
		}
		b.Publish(RoomParticipantTalkStarted, big, "r", nil)
		published++
		caughtUp(published)
	}
	b.Publish(RoomDeleted, Room{Room: "r"}, "r", nil)
	published++
	if b.Subscribers() != 1 {
		t.Fatalf("%d subscribers, want the fast one", b.Subscribers())
	}

	// The slow client reads again: some events, then 1008.
	n := 0
	var err error
	for {
		if _, _, err = slow.Read(ctx); err != nil {
			break
		}
		n++
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTooSlow || ce.Reason != ReasonTooSlow {
		t.Fatalf("slow client ended with %v, want close 1008 %q", err, ReasonTooSlow)
	}
	if n >= published {
		t.Errorf("slow client read %d of %d", n, published)
	}
	// The fast one has everything: close it from the bus's side.
	b.Close()
	if m := <-got; m != published {
		t.Errorf("fast client read %d, want %d", m, published)
	}
	t.Logf("published %d; the slow client got %d before 1008", published, n)
}
