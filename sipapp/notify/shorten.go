package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"webconf/conf"
)

// shortenTimeout bounds one call to the shortener: a slow one must not
// hold up invitations, which then carry the long link.
const shortenTimeout = 5 * time.Second

// shortCacheSize bounds the links a Shortener remembers (it forgets them
// all when full): every message of a meeting carries the same link, which
// is then shortened once.
const shortCacheSize = 4096

// Shortener shortens meeting links through [meetings] shortenerURL
// (Bitly v4's shape: POST {"long_url": ...} with Authorization: Bearer
// <shortenerToken>, a 2xx answer {"link": ...}), each link once (the
// answers are remembered). A nil Shortener leaves links as they are. It
// calls the network: use it when a message is sent, not inside a store
// transaction.
type Shortener struct {
	token, url string
	client     *http.Client
	log        *slog.Logger

	mu    sync.Mutex
	short map[string]string // long -> short, successes only
}

// NewShortener returns the shortener of m (nil when m has no
// shortenerToken); failures are logged to log.
func NewShortener(m conf.Meetings, log *slog.Logger) *Shortener {
	if m.ShortenerToken == "" {
		return nil
	}
	u := m.ShortenerURL
	if u == "" {
		u = conf.DefaultShortenerURL
	}
	return &Shortener{token: m.ShortenerToken, url: u, log: log, client: newGatewayClient(shortenTimeout), short: map[string]string{}}
}

// Shorten returns the short form of long, or long itself when there is no
// shortener or it fails (logged, without the token).
func (s *Shortener) Shorten(ctx context.Context, long string) string {
	if s == nil || long == "" {
		return long
	}
	s.mu.Lock()
	short, ok := s.short[long]
	s.mu.Unlock()
	if ok {
		return short
	}
	short, err := s.shorten(ctx, long)
	if err != nil {
		s.log.Warn("link shortener failed, the long link is used", "error", err)
		return long
	}
	s.mu.Lock()
	if len(s.short) >= shortCacheSize {
		clear(s.short)
	}
	s.short[long] = short
	s.mu.Unlock()
	return short
}

func (s *Shortener) shorten(ctx context.Context, long string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, shortenTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"long_url": long}) // a map of strings always encodes
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("shortener: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return "", fmt.Errorf("shortener %s: %w", req.URL.Host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("shortener %s: %w", req.URL.Host, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", fmt.Errorf("shortener %s: status %d", req.URL.Host, resp.StatusCode)
	}
	var reply struct {
		Link string `json:"link"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return "", fmt.Errorf("shortener %s: reply is not JSON: %w", req.URL.Host, err)
	}
	if u, err := url.Parse(reply.Link); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("shortener %s: reply has no http(s) link: %q", req.URL.Host, reply.Link)
	}
	return reply.Link, nil
}
