// Package rest is the REST API for scheduled meetings under /api/v1/ (and
// public rooms at /c/{identifier}) on the [http] listen address: the Wazo
// meetings resource, Quobis's scheduling fields, Nextcloud Talk's lobby and
// SIP switch (../shared/spec/meetings-anchors.md sections 1-3 and 6).
//
// JSON in and out. Every error is {"error": {"code", "message"}} with its
// HTTP status, mapped from package meeting's error kinds in one place
// (errors.go). Routes are one table (routes.go), from which the mux and
// the check against the OpenAPI document (openapi.json) are both made.
//
// Who may call what:
//   - operators: HTTP Basic, user admin, password master_password
//     (compared in constant time; master_password=off turns operator
//     access off, an empty one in the config is made by rpc/node and kept
//     in data_dir);
//   - users: Authorization: Bearer <token>, the token handed out once when
//     the operator created them;
//   - guests and public-room visitors: nobody is asked.
//
// Failed credentials count against the client address's rpc_failures
// budget, shared with XML-RPC's master password and admin PINs; a banned
// address gets 429 until the ban ends.
package rest

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"webconf/rpc"
	"webconf/rpc/events"
	"webconf/sipapp"
	"webconf/sipapp/meeting"
	"webconf/sipapp/notify"
	"webconf/sipapp/webrtc"
)

// Options configure the API.
type Options struct {
	SIP            *sipapp.Server
	MasterPassword string // operators' password; "" turns operator routes off
	LinkHost       string // [meetings] linkHost; "" leaves url null
	LinkFormat     string // unique or user
	PSTNExtension  string // dialin_number
	PublicRooms    bool
	// SIPHost is host:port for the SIP URIs we hand out (public_ip and
	// the SIP port).
	SIPHost string
	// TrustedProxies are HTTP reverse proxies ([http] trusted_proxies):
	// their requests are charged to the client X-Forwarded-For names.
	TrustedProxies rpc.Trusted
	Log            *slog.Logger
	// Events is the event bus GET /api/v1/events streams (nil: 503).
	Events *events.Bus
	// Outbox holds the meetings' invitations (nil: none are sent; the
	// list is empty and resend is 412).
	Outbox *notify.Outbox
	// JSONRPC answers POST /api/v1/jsonrpc: the control plane's JSON-RPC
	// on the HTTP origin, for the console (nil: 404, [xmlrpc] jsonrpc off).
	// ctx carries the client's budget key (rpc.WithClient).
	JSONRPC func(ctx context.Context, body []byte) (resp []byte, ok bool)
	// Now is the clock of event tickets (nil: time.Now). For tests.
	Now func() time.Time
	// WebRTC makes browser participants' media (nil: browsers cannot
	// join; the signalling route is 404).
	WebRTC *webrtc.Factory
	// MaxBrowsers and MaxBrowsersPerSource bound the signalling sockets
	// open at once ([webrtc] max_browsers, max_browsers_per_source; 0 =
	// no bound).
	MaxBrowsers, MaxBrowsersPerSource int
}

// API serves the routes.
type API struct {
	o    Options
	book *meeting.Book
	sip  *sipapp.Server
	log  *slog.Logger
	// unknownOnce logs the first request from a trusted proxy that does
	// not say who its client is.
	unknownOnce sync.Once
	tickets     *ticketBook
	browsers    *browserSeats
}

// New makes the API.
func New(o Options) *API {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.LinkFormat == "" {
		o.LinkFormat = "unique"
	}
	return &API{o: o, book: o.SIP.Meetings(), sip: o.SIP, log: o.Log, tickets: newTicketBook(o.Now),
		browsers: newBrowserSeats(o.MaxBrowsers, o.MaxBrowsersPerSource)}
}

// Register adds the routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	byPath := map[string][]route{}
	var order []string
	for _, r := range a.routes() {
		if _, ok := byPath[r.path]; !ok {
			order = append(order, r.path)
		}
		byPath[r.path] = append(byPath[r.path], r)
	}
	for _, p := range order {
		mux.Handle(p, a.dispatch(byPath[p]))
	}
	// Anything else under /api/ is a JSON 404, not the mux's text one.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errNoRoute)
	})
	a.registerPages(mux)
}

// dispatch picks the route by method (405 with Allow otherwise), checks
// credentials and runs the handler.
func (a *API) dispatch(rs []route) http.Handler {
	var allow []string
	for _, r := range rs {
		allow = append(allow, r.method)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		for _, r := range rs {
			if r.method != req.Method && !(r.method == http.MethodGet && req.Method == http.MethodHead) {
				continue
			}
			c := &ctx{w: w, r: req, api: a}
			switch r.auth {
			case authOperator:
				if !a.operator(c) {
					return
				}
			case authUser:
				if !a.user(c) {
					return
				}
			case authViewer:
				if !a.viewer(c) {
					return
				}
			case authCaller:
				if !a.caller(c) {
					return
				}
			}
			r.h(c)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, errMethod)
	})
}

// peer is the client's address, the key of its failure budgets: the
// connection's, or behind a trusted proxy the client its X-Forwarded-For
// names (rpc.Trusted.ClientOf).
func (a *API) peer(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	if !a.o.TrustedProxies.Contains(ap.Addr()) {
		return ap.Addr().Unmap().String()
	}
	xff := r.Header.Values("X-Forwarded-For")
	key, ok := a.o.TrustedProxies.ClientOf(ap.Addr(), xff)
	if !ok {
		a.unknownOnce.Do(func() {
			a.log.Warn("http: a request from a trusted proxy has no usable X-Forwarded-For; "+
				"such requests share one failure budget (logged once)", "proxy", ap.Addr(), "x_forwarded_for", xff, "key", rpc.UnknownClient)
		})
	}
	return key
}

// banned answers 429 to a client whose budget is spent.
func (a *API) banned(c *ctx) bool {
	if a.sip.Guards().RPC.Banned(a.peer(c.r)) {
		c.fail(errBanned)
		return true
	}
	return false
}

// failedAuth charges the client and answers 401.
func (a *API) failedAuth(c *ctx, challenge string) {
	if a.sip.Guards().RPC.Fail(a.peer(c.r)) {
		a.log.Warn("http client banned after too many failed credentials", "peer", a.peer(c.r))
	}
	c.w.Header().Set("WWW-Authenticate", challenge)
	c.fail(errUnauthenticated)
}

// operator checks HTTP Basic admin:master_password.
func (a *API) operator(c *ctx) bool {
	if a.banned(c) {
		return false
	}
	user, pass, ok := c.r.BasicAuth()
	good := a.o.MasterPassword != "" && ok &&
		subtle.ConstantTimeCompare([]byte(user), []byte("admin")) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(a.o.MasterPassword)) == 1
	if !good {
		a.failedAuth(c, `Basic realm="webconf", charset="UTF-8"`)
		return false
	}
	return true
}

// user checks the bearer token.
func (a *API) user(c *ctx) bool {
	if a.banned(c) {
		return false
	}
	h := c.r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		a.failedAuth(c, `Bearer realm="webconf"`)
		return false
	}
	u, ok := a.book.Authenticate(strings.TrimSpace(tok))
	if !ok {
		a.failedAuth(c, `Bearer realm="webconf", error="invalid_token"`)
		return false
	}
	c.me = u
	return true
}

// basicCredentials is base64 "user:password", Wazo's
// guest_sip_authorization.
func basicCredentials(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}
