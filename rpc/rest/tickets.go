package rest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"webconf/sipapp/meeting"
)

// Event tickets: browsers cannot set Authorization on a WebSocket, so a
// page asks (with its credentials in a header) for a ticket, and opens
// GET /api/v1/events?ticket=... with it. A ticket is good once, within
// ticketTTL, with the visibility of whoever asked for it; it keeps tokens
// and the master password out of URLs and logs.

const (
	ticketTTL = 30 * time.Second
	// maxTickets bounds the unused tickets held at once (each is asked
	// for with valid credentials; the bound keeps a buggy client from
	// growing the map).
	maxTickets = 4096
)

type ticket struct {
	operator bool
	user     string // the user's uuid when !operator
	expires  time.Time
}

// ticketBook holds the unused tickets by the SHA-256 of their text (a map
// lookup by the secret itself would be a timing oracle).
type ticketBook struct {
	mu  sync.Mutex
	m   map[[sha256.Size]byte]ticket
	now func() time.Time
}

func newTicketBook(now func() time.Time) *ticketBook {
	if now == nil {
		now = time.Now
	}
	return &ticketBook{m: map[[sha256.Size]byte]ticket{}, now: now}
}

// issue stores a new ticket and returns its text; ok is false when too
// many are outstanding.
func (b *ticketBook) issue(t ticket) (string, bool) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	text := base64.RawURLEncoding.EncodeToString(raw[:])
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if len(b.m) >= maxTickets {
		for k, v := range b.m {
			if !now.Before(v.expires) {
				delete(b.m, k)
			}
		}
		if len(b.m) >= maxTickets {
			return "", false
		}
	}
	t.expires = now.Add(ticketTTL)
	b.m[sha256.Sum256([]byte(text))] = t
	return text, true
}

// take redeems a ticket: once, before it expires.
func (b *ticketBook) take(text string) (ticket, bool) {
	key := sha256.Sum256([]byte(text))
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.m[key]
	if !ok {
		return ticket{}, false
	}
	delete(b.m, key)
	return t, b.now().Before(t.expires)
}

// caller admits an operator (HTTP Basic) or a user (bearer token), both
// in the Authorization header only.
func (a *API) caller(c *ctx) bool {
	scheme, _, _ := strings.Cut(c.r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Basic") {
		if !a.operator(c) {
			return false
		}
		c.operator = true
		return true
	}
	return a.user(c)
}

type ticketView struct {
	Ticket    string `json:"ticket"`
	ExpiresIn int    `json:"expires_in"`
}

// createTicket is POST /api/v1/events/tickets.
func (a *API) createTicket(c *ctx) {
	text, ok := a.tickets.issue(ticket{operator: c.operator, user: c.me.UUID})
	if !ok {
		c.fail(errTickets)
		return
	}
	c.ok(http.StatusCreated, ticketView{Ticket: text, ExpiresIn: int(ticketTTL / time.Second)})
}

// redeemTicket admits an event stream client by ?ticket=: a refused
// ticket (unknown, used, expired, or its user since deleted) is a failed
// credential like a wrong token.
func (a *API) redeemTicket(c *ctx, text string) bool {
	t, ok := a.tickets.take(text)
	if ok && t.operator && a.o.MasterPassword == "" {
		ok = false // operator access was turned off since
	}
	var u meeting.User
	if ok && !t.operator {
		u, ok = a.book.User(t.user)
	}
	if !ok {
		a.failedAuth(c, `Bearer realm="webconf", error="invalid_token"`)
		return false
	}
	// A user's ticket may be used from another origin, as a token is; the
	// operator's only from ours (see events.Serve).
	c.operator, c.me, c.token = t.operator, u, !t.operator
	return true
}
