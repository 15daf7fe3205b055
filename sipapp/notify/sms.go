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

// SMSGateway sends SMS through the HTTP gateway of [sms]: the configured
// body with {{to}}, {{from}} and {{text}} replaced by the message's values
// (URL-encoded in a form, JSON-string-escaped in JSON; a GET puts the form
// in the query string), the configured auth, and the message's Key in the
// idempotency header.
type SMSGateway struct {
	cfg    conf.SMS
	format string // form or json
	client *http.Client
}

// NewSMSGateway returns the SMS sender of c, or nil and no error when c
// has no url (no SMS service). A configuration that does not validate
// (conf.Config.Validate's rules for [sms]) is an error.
func NewSMSGateway(c conf.SMS) (SMSSender, error) {
	if c.URL == "" {
		return nil, nil
	}
	whole := conf.Default()
	whole.SMS = c
	if err := whole.Validate(); err != nil {
		return nil, fmt.Errorf("notify: sms gateway: %w", err)
	}
	c = whole.SMS // normalised (method in upper case)
	return &SMSGateway{cfg: c, format: c.BodyFormat(), client: newGatewayClient(c.Timeout)}, nil
}

// SendSMS sends s: nil on a 2xx answer; an error wrapping ErrPermanent on
// a 4xx other than 408 and 429 (or a 3xx, or when s has no number); any
// other error is worth a retry.
func (g *SMSGateway) SendSMS(ctx context.Context, s SMS) error {
	if s.To == "" {
		return fmt.Errorf("sms gateway: an SMS without a number: %w", ErrPermanent)
	}
	escape := url.QueryEscape
	if g.format == "json" {
		escape = jsonString
	}
	body := fillSMSBody(g.cfg.Body, map[string]string{"to": escape(s.To), "from": escape(s.From), "text": escape(s.Text)})

	var req *http.Request
	var err error
	if g.cfg.Method == http.MethodGet {
		u, _ := url.Parse(g.cfg.URL) // validated
		if q := strings.TrimSpace(body); u.RawQuery == "" {
			u.RawQuery = q
		} else if q != "" {
			u.RawQuery += "&" + q
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, g.cfg.Method, g.cfg.URL, strings.NewReader(body))
		if err == nil {
			if g.format == "json" {
				req.Header.Set("Content-Type", "application/json")
			} else {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		}
	}
	if err != nil {
		return fmt.Errorf("sms gateway: %w: %w", err, ErrPermanent)
	}
	switch g.cfg.Auth {
	case "basic":
		req.SetBasicAuth(g.cfg.Username, g.cfg.Password)
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+g.cfg.Token)
	}
	if g.cfg.IdempotencyHeader != "" && s.Key != "" {
		req.Header.Set(g.cfg.IdempotencyHeader, s.Key)
	}
	return doGateway(g.client, req, "sms gateway")
}

// fillSMSBody replaces each placeholder of body by its (escaped) value.
func fillSMSBody(body string, values map[string]string) string {
	var b strings.Builder
	last := 0
	for _, m := range conf.SMSPlaceholder.FindAllStringSubmatchIndex(body, -1) {
		b.WriteString(body[last:m[0]])
		b.WriteString(values[body[m[2]:m[3]]])
		last = m[1]
	}
	b.WriteString(body[last:])
	return b.String()
}

// jsonString is s escaped as the inside of a JSON string.
func jsonString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	out := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	return string(out[1 : len(out)-1])
}
