package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"webconf/conf"
)

func shortenerConf(url, token string) conf.Meetings {
	m := conf.Default().Meetings
	m.ShortenerURL, m.ShortenerToken = url, token
	return m
}

const longLink = "https://meet.example.com/m/alice/8d1e-42?lang=es&x=ñ"

func TestShortenBitlyShape(t *testing.T) {
	g := newTestGateway(t)
	g.status.Store(201) // Bitly answers 201 Created for a new link
	g.reply.Store(`{"id": "bit.ly/3xYz", "link": "https://bit.ly/3xYz", "long_url": "ignored"}`)
	var logs bytes.Buffer
	s := NewShortener(shortenerConf(g.URL+"/v4/shorten", "bitly-tok"), slog.New(slog.NewTextHandler(&logs, nil)))
	if got := s.Shorten(context.Background(), longLink); got != "https://bit.ly/3xYz" {
		t.Errorf("Shorten = %q, want the short link", got)
	}
	r := g.next(t)
	var body map[string]string
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil || len(body) != 1 || body["long_url"] != longLink {
		t.Errorf("body %s (%v), want {\"long_url\": %q}", r.Body, err, longLink)
	}
	if r.Method != "POST" || r.Path != "/v4/shorten" || r.Header.Get("Authorization") != "Bearer bitly-tok" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %s %s, Authorization %q, Content-Type %q", r.Method, r.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"))
	}
	if logs.Len() != 0 {
		t.Errorf("a success logged: %s", logs.String())
	}
	t.Run("a link is shortened once, another link again", func(t *testing.T) {
		if got := s.Shorten(context.Background(), longLink); got != "https://bit.ly/3xYz" || g.count.Load() != 1 {
			t.Errorf("Shorten = %q after %d requests, want the remembered link after 1", got, g.count.Load())
		}
		g.reply.Store(`{"link": "https://bit.ly/other"}`)
		if got := s.Shorten(context.Background(), longLink+"2"); got != "https://bit.ly/other" || g.count.Load() != 2 {
			t.Errorf("Shorten = %q after %d requests", got, g.count.Load())
		}
		g.next(t)
	})
}

func TestShortenFallsBackToTheLongLink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		reply  string
	}{
		{"a 500", 500, `{"link": "https://bit.ly/no"}`},
		{"a 403 (bad token)", 403, `{"message": "FORBIDDEN"}`},
		{"a reply that is not JSON", 200, `<html>`},
		{"a reply without a link", 200, `{"id": "x"}`},
		{"a link that is not http", 200, `{"link": "javascript:alert(1)"}`},
		{"an ftp link", 200, `{"link": "ftp://bit.ly/x"}`},
		{"a link without a host", 200, `{"link": "https:///3xYz"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGateway(t)
			g.status.Store(int32(tc.status))
			g.reply.Store(tc.reply)
			var logs bytes.Buffer
			s := NewShortener(shortenerConf(g.URL, "bitly-tok"), slog.New(slog.NewTextHandler(&logs, nil)))
			for range 2 { // a failure is not remembered: the next message tries again
				if got := s.Shorten(context.Background(), longLink); got != longLink {
					t.Errorf("Shorten = %q, want the long link", got)
				}
				g.next(t)
			}
			if !strings.Contains(logs.String(), "link shortener failed") || strings.Contains(logs.String(), "bitly-tok") {
				t.Errorf("log %q: want the failure, without the token", logs.String())
			}
		})
	}
	t.Run("a shortener that is down", func(t *testing.T) {
		g := newTestGateway(t)
		g.Close()
		var logs bytes.Buffer
		s := NewShortener(shortenerConf(g.URL, "bitly-tok"), slog.New(slog.NewTextHandler(&logs, nil)))
		if got := s.Shorten(context.Background(), longLink); got != longLink || !strings.Contains(logs.String(), "link shortener failed") {
			t.Errorf("Shorten = %q, log %q", got, logs.String())
		}
	})
}

func TestShortenWithoutTokenSendsNothing(t *testing.T) {
	g := newTestGateway(t)
	s := NewShortener(shortenerConf(g.URL, ""), slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if got := s.Shorten(context.Background(), longLink); got != longLink {
		t.Errorf("Shorten = %q, want the long link", got)
	}
	if n := g.count.Load(); n != 0 {
		t.Errorf("the shortener was called %d times without a token", n)
	}
}
