package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// interrupted is the context the events command runs in: until SIGINT or
// SIGTERM (tests replace it).
var interrupted = func() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// resumeDelay is the first wait before reconnecting; it doubles up to
// maxResumeDelay while connections keep failing.
var resumeDelay, maxResumeDelay = 500 * time.Millisecond, 10 * time.Second

// events prints the event stream, one JSON message per line, until
// interrupted; after a lost connection it resumes with since = the last
// seq printed.
func (x *cli) events(args []string) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rooms := fs.String("rooms", "", "comma-separated rooms: only their events")
	names := fs.String("names", "", "comma-separated event names: only those")
	since := fs.String("since", "", "the last seq already seen: replay what came after it")
	token := fs.String("token", "", "a user's token (else the operator's master password)")
	if pos, err := parseInterspersed(fs, args); err != nil || len(pos) != 0 {
		return usageError("events [-rooms R1,R2] [-names N1,N2] [-since SEQ] [-token TOKEN]")
	}
	hdr := http.Header{}
	if *token != "" {
		hdr.Set("Authorization", "Bearer "+*token)
	} else {
		pw, err := x.masterPassword()
		if err != nil {
			return err
		}
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth("admin", pw)
		hdr.Set("Authorization", r.Header.Get("Authorization"))
	}
	var last *uint64
	if *since != "" {
		n, err := strconv.ParseUint(*since, 10, 64)
		if err != nil {
			return usageError(fmt.Sprintf("-since %q: not a sequence number", *since))
		}
		last = &n
	}
	ctx, stop := interrupted()
	defer stop()
	delay := resumeDelay
	for {
		q := url.Values{}
		if *rooms != "" {
			q.Set("rooms", *rooms)
		}
		if *names != "" {
			q.Set("names", *names)
		}
		if last != nil {
			q.Set("since", strconv.FormatUint(*last, 10))
		}
		printed, err := x.stream(ctx, q, hdr, &last)
		if ctx.Err() != nil {
			return nil
		}
		var fatal *refusedError
		if errors.As(err, &fatal) {
			return err
		}
		if printed {
			delay = resumeDelay
		}
		if last != nil {
			fmt.Fprintf(x.errOut, "webconfctl: event stream lost (%v); resuming after seq %d\n", err, *last)
		} else {
			fmt.Fprintf(x.errOut, "webconfctl: event stream lost (%v); reconnecting\n", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, maxResumeDelay)
	}
}

// refusedError is an answer that retrying would not change.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// stream connects once and prints until the connection ends; printed
// says whether any message came.
func (x *cli) stream(ctx context.Context, q url.Values, hdr http.Header, last **uint64) (printed bool, err error) {
	u := strings.Replace(x.api, "http", "ws", 1) + "/api/v1/events"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				return false, &refusedError{"event stream: wrong credentials (401)"}
			case http.StatusGone:
				return false, &refusedError{"event stream: the events after seq " + q.Get("since") +
					" are no longer kept (410): fetch the state again and run without -since"}
			case http.StatusBadRequest:
				return false, &refusedError{"event stream: " + errorMessage(resp)}
			}
		}
		return false, fmt.Errorf("cannot reach the event stream at %s (-api URL): %w", x.api, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return printed, err
		}
		var m struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(msg, &m); err != nil {
			return printed, fmt.Errorf("a message that is not JSON: %w", err)
		}
		if _, err := fmt.Fprintf(x.out, "%s\n", msg); err != nil {
			return printed, &refusedError{err.Error()}
		}
		printed = true
		*last = &m.Seq
	}
}

// errorMessage is the message of a JSON error answer, or its status.
func errorMessage(resp *http.Response) string {
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if resp.Body != nil {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return e.Error.Message
		}
	}
	return resp.Status
}
