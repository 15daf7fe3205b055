package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"webconf/conf"
)

// PushHeaderUser is the header that names the user a push reminder is
// for (the payload itself is Quobis's, which has no user field).
const PushHeaderUser = "X-Webconf-User"

// PushGateway sends push reminders to [push] url: a POST of Quobis's
// fixed payload {"type": "meeting-reminder", "info": {"id": <meeting
// uuid>, "name": <meeting name>}} per participant user, the user's uuid
// in PushHeaderUser and in place of {{user}} in the url, the message's
// Key in Idempotency-Key and, when a token is set, Authorization: Bearer.
type PushGateway struct {
	cfg    conf.Push
	client *http.Client
}

// NewPushGateway returns the pusher of c, or nil and no error when c has
// no url (no push). A configuration that does not validate is an error.
func NewPushGateway(c conf.Push) (Pusher, error) {
	if c.URL == "" {
		return nil, nil
	}
	whole := conf.Default()
	whole.Push = c
	if err := whole.Validate(); err != nil {
		return nil, fmt.Errorf("notify: push gateway: %w", err)
	}
	return &PushGateway{cfg: c, client: newGatewayClient(c.Timeout)}, nil
}

type pushPayload struct {
	Type string   `json:"type"`
	Info pushInfo `json:"info"`
}

type pushInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// SendPush sends p, with SendSMS's outcomes: nil on 2xx, ErrPermanent on
// a 4xx other than 408 and 429, else retryable. A push without a user is
// permanent: there is nobody to send it to.
func (g *PushGateway) SendPush(ctx context.Context, p Push) error {
	if p.UserUUID == "" {
		return fmt.Errorf("push gateway: a reminder for meeting %s without a user: %w", p.MeetingUUID, ErrPermanent)
	}
	body, err := json.Marshal(pushPayload{Type: "meeting-reminder", Info: pushInfo{ID: p.MeetingUUID, Name: p.Name}})
	if err != nil {
		return fmt.Errorf("push gateway: %w: %w", err, ErrPermanent)
	}
	target := strings.ReplaceAll(g.cfg.URL, "{{user}}", url.PathEscape(p.UserUUID))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("push gateway: %w: %w", err, ErrPermanent)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(PushHeaderUser, p.UserUUID)
	if p.Key != "" {
		req.Header.Set("Idempotency-Key", p.Key)
	}
	if g.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+g.cfg.Token)
	}
	return doGateway(g.client, req, "push gateway")
}
