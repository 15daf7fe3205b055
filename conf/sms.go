package conf

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// SMS is the [sms] section: the HTTP gateway meeting invitations and
// reminders go through by SMS (package sipapp/notify). Url "" = no SMS
// service.
type SMS struct {
	// URL is the gateway's http(s) endpoint, without credentials (they go
	// in auth, so that the URL may be logged).
	URL string `ini:"url"`
	// Method is POST (the default), PUT or GET; a GET sends the body's
	// form fields in the query string instead of a body.
	Method string `ini:"method"`
	// Auth is none, basic (Username and Password) or bearer (Token).
	Auth     string `ini:"auth"`
	Username string `ini:"username"`
	Password string `ini:"password" secret:"true"`
	Token    string `ini:"token" secret:"true"`
	// ContentType is form (application/x-www-form-urlencoded) or json;
	// "" derives it from Body (json when it starts with '{' or '[').
	ContentType string `ini:"content_type"`
	// Body is the request body with the placeholders {{to}}, {{from}} and
	// {{text}} (text is required), each replaced by the value escaped for
	// the body's format: URL-encoded in a form, JSON-string-escaped in
	// JSON (so in JSON they go inside quotes: "text": "{{text}}").
	Body string `ini:"body"`
	// IdempotencyHeader carries the message's idempotency key, fixed when
	// it is queued, so that a gateway can drop a retried duplicate; ""
	// sends none.
	IdempotencyHeader string        `ini:"idempotency_header"`
	Timeout           time.Duration `ini:"timeout" unit:"s"`
}

// Push is the [push] section: where push reminders go, as a POST of
// Quobis's payload {"type": "meeting-reminder", "info": {"id", "name"}}
// per participant user. URL "" = no push.
type Push struct {
	// URL is the push service's http(s) endpoint; {{user}} in it is
	// replaced by the user's uuid, which also goes in X-Webconf-User.
	URL string `ini:"url"`
	// Token, when set, is sent as Authorization: Bearer.
	Token   string        `ini:"token" secret:"true"`
	Timeout time.Duration `ini:"timeout" unit:"s"`
}

// DefaultShortenerURL is Bitly's v4 shorten endpoint ([meetings]
// shortenerURL).
const DefaultShortenerURL = "https://api-ssl.bitly.com/v4/shorten"

// BodyFormat is "json" or "form": ContentType, or when it is empty what
// Body looks like.
func (s SMS) BodyFormat() string {
	if s.ContentType != "" {
		return strings.ToLower(s.ContentType)
	}
	if b := strings.TrimSpace(s.Body); strings.HasPrefix(b, "{") || strings.HasPrefix(b, "[") {
		return "json"
	}
	return "form"
}

// SMSPlaceholder matches one placeholder of an [sms] body: {{to}},
// {{from}} or {{text}}, blanks allowed inside the braces.
var SMSPlaceholder = regexp.MustCompile(`\{\{\s*(to|from|text)\s*\}\}`)

// validateNotify checks [sms], [push] and [meetings] shortenerURL.
func (c *Config) validateNotify(report func(section, key, format string, args ...any)) {
	if u := c.Meetings.ShortenerURL; !validHTTPURL(u) {
		report("meetings", "shortenerURL", "%q is not an http(s) URL without credentials", u)
	}

	p := &c.Push
	if p.URL != "" && !validHTTPURL(strings.ReplaceAll(p.URL, "{{user}}", "u")) {
		report("push", "url", "%q is not an http(s) URL without credentials", p.URL)
	}
	if p.URL != "" && p.Timeout < time.Second {
		report("push", "timeout", "must be at least 1 second")
	}

	s := &c.SMS
	if s.URL == "" {
		return // no SMS service; the other keys are not used
	}
	if !validHTTPURL(s.URL) {
		report("sms", "url", "%q is not an http(s) URL without credentials (they go in auth)", s.URL)
	}
	s.Method = strings.ToUpper(s.Method)
	if s.Method != "POST" && s.Method != "PUT" && s.Method != "GET" {
		report("sms", "method", "%q is not one of POST, PUT, GET", s.Method)
	}
	switch s.Auth {
	case "none", "":
		if s.Username != "" || s.Password != "" || s.Token != "" {
			report("sms", "auth", "credentials are set but auth is none (use basic or bearer)")
		}
	case "basic":
		if s.Username == "" || s.Password == "" || strings.Contains(s.Username, ":") {
			report("sms", "auth", "basic needs username (without ':') and password")
		}
	case "bearer":
		if s.Token == "" {
			report("sms", "auth", "bearer needs token")
		}
	default:
		// Not echoed: a value like basic:user:password holds a secret.
		report("sms", "auth", "is not one of none, basic, bearer (credentials go in username and password, or token)")
	}
	format := s.BodyFormat()
	switch {
	case format != "form" && format != "json":
		report("sms", "content_type", "%q is not one of form, json", s.ContentType)
	case format == "json" && s.Method == "GET":
		report("sms", "content_type", "a GET sends a form in the query string, not json")
	}
	if err := checkSMSBody(s.Body, format); err != nil {
		report("sms", "body", "%v", err)
	}
	if s.IdempotencyHeader != "" && !isToken(s.IdempotencyHeader) {
		report("sms", "idempotency_header", "%q is not a header name", s.IdempotencyHeader)
	}
	if s.Timeout < time.Second {
		report("sms", "timeout", "must be at least 1 second")
	}
}

// checkSMSBody: the body has {{text}}, no other {{...}}, and with values
// that need escaping put in, it is a form or JSON document.
func checkSMSBody(body, format string) error {
	if body == "" {
		return fmt.Errorf("must be set with url: a form or JSON body with {{text}}")
	}
	rest := body
	text := false
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			break
		}
		m := SMSPlaceholder.FindStringSubmatchIndex(rest[i:])
		if m == nil || m[0] != 0 {
			end := min(len(rest), i+20)
			return fmt.Errorf("unknown placeholder at %q: only {{to}}, {{from}} and {{text}}", rest[i:end])
		}
		text = text || rest[i+m[2]:i+m[3]] == "text"
		rest = rest[i+m[1]:]
	}
	if !text {
		return fmt.Errorf("has no {{text}}")
	}
	sample := `a "quoted" & 50% ñ =;+\`
	switch format {
	case "json":
		doc := SMSPlaceholder.ReplaceAllLiteralString(body, jsonEscape(sample))
		if !json.Valid([]byte(doc)) {
			return fmt.Errorf("is not JSON once filled in (placeholders go inside JSON strings: \"text\": \"{{text}}\")")
		}
	case "form":
		doc := SMSPlaceholder.ReplaceAllLiteralString(body, url.QueryEscape(sample))
		if _, err := url.ParseQuery(strings.TrimSpace(doc)); err != nil {
			return fmt.Errorf("is not a form (name={{text}}&...): %v", err)
		}
	}
	return nil
}

// jsonEscape is s as the inside of a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// validHTTPURL: an absolute http or https URL with a host and no user
// information.
func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}
