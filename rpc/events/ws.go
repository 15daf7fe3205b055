package events

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// Close codes and reasons a stream ends with.
const (
	// CloseTooSlow (1008, policy violation) ends the stream of a client
	// whose queue filled up: events were dropped, so it must resume with
	// ?since= (or resynchronise when that is refused).
	CloseTooSlow   = websocket.StatusPolicyViolation
	ReasonTooSlow  = "too slow: events dropped"
	CloseStopping  = websocket.StatusGoingAway
	ReasonStopping = "server stopping"
)

// writeTimeout bounds the write of one message: a client that reads
// nothing for that long is dropped even when few events come.
const writeTimeout = 10 * time.Second

// Serve upgrades the request to a WebSocket and streams the subscription
// to it, replay first, one text message per event, until the client
// closes, the bus cuts it off (CloseTooSlow) or closes (CloseStopping).
// It owns sub and closes it.
//
// crossOrigin allows a page of another origin to open the stream: right
// for credentials a page must hold itself (a token), wrong for HTTP Basic,
// which a browser would send on its own to any page's request.
func Serve(w http.ResponseWriter, r *http.Request, sub *Sub, replay []*Event, crossOrigin bool) error {
	defer sub.Close()
	// The HTTP server's read and write timeouts would end the stream.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: crossOrigin})
	if err != nil {
		return err // Accept has answered
	}
	defer c.CloseNow()
	c.SetReadLimit(1024) // clients send nothing but control frames
	ctx := c.CloseRead(context.Background())

	send := func(ev *Event) error {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, ev.Msg)
	}
	for _, ev := range replay {
		if err := send(ev); err != nil {
			return err
		}
	}
	for {
		// A cut-off goes first, even with events still queued: they are
		// not all there.
		select {
		case <-sub.Done():
			return closeFor(c, sub.Err())
		default:
		}
		select {
		case <-sub.Done():
			return closeFor(c, sub.Err())
		case <-ctx.Done():
			return nil // the client went
		case ev := <-sub.Events():
			if err := send(ev); err != nil {
				return err
			}
		}
	}
}

func closeFor(c *websocket.Conn, why error) error {
	switch {
	case errors.Is(why, ErrTooSlow):
		return c.Close(CloseTooSlow, ReasonTooSlow)
	case errors.Is(why, ErrClosed):
		return c.Close(CloseStopping, ReasonStopping)
	}
	return c.Close(websocket.StatusNormalClosure, "")
}
