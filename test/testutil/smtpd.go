package testutil

import (
	"bytes"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// SMTPOptions shape a test SMTP server.
type SMTPOptions struct {
	// Username and Password: AUTH PLAIN is offered (only over TLS) and
	// required before MAIL FROM. Empty: no AUTH.
	Username, Password string
	// ImplicitTLS serves TLS from the first byte (port 465 style)
	// instead of offering STARTTLS; NoTLS serves neither.
	ImplicitTLS, NoTLS bool
}

// SMTPMessage is a message the test server accepted.
type SMTPMessage struct {
	From      string   // MAIL FROM
	To        []string // RCPT TO
	Data      []byte   // the message as received (headers and body, CRLF)
	MessageID string   // its Message-ID without angle brackets
	TLS       bool     // received over TLS (STARTTLS or implicit)
	User      string   // the AUTH user, "" without AUTH
}

// SMTPServer is a receiving SMTP server on 127.0.0.1 (emersion/go-smtp)
// for tests of email: it offers STARTTLS (or implicit TLS) with a
// certificate of its own test CA (CA.File for tls_ca_file), requires AUTH
// PLAIN when given credentials, records every message it accepts and
// counts Message-IDs. It can refuse the next messages with a reply code,
// cut the connection right after accepting one (the sender never hears
// the end of the transaction), and be stopped and started again on the
// same port. The test's cleanup stops it.
type SMTPServer struct {
	Host string // 127.0.0.1
	Port int
	CA   *CA

	opts SMTPOptions
	tls  *tls.Config

	mu       sync.Mutex
	srv      *smtp.Server
	ln       net.Listener // srv's: Stop closes it too, Serve may not have taken it yet
	msgs     []SMTPMessage
	ids      map[string]int
	refuse   []int // reply codes for the next messages, first first
	drop     int   // messages still to accept with a cut connection
	refused  int
	attempts int
	changed  chan struct{} // closed and replaced whenever a message ends
	onData   func(to []string)
}

// NewSMTPServer starts a test SMTP server on a free loopback port.
func NewSMTPServer(t testing.TB, opts SMTPOptions) *SMTPServer {
	t.Helper()
	ca := NewCA(t)
	s := &SMTPServer{Host: "127.0.0.1", CA: ca, opts: opts, ids: map[string]int{}, changed: make(chan struct{})}
	s.tls = ca.ServerConfig(ca.Issue(t, "smtp"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port.
func (s *SMTPServer) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

func (s *SMTPServer) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout = 30 * time.Second
	srv.WriteTimeout = 30 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	switch {
	case s.opts.NoTLS:
		srv.AllowInsecureAuth = true
	case s.opts.ImplicitTLS:
		ln = tls.NewListener(ln, s.tls)
	default:
		srv.TLSConfig = s.tls
	}
	s.mu.Lock()
	s.srv, s.ln = srv, ln
	s.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Stop closes the listener and every connection (a client then finds the
// server down); what was received is kept. Stopping twice is harmless.
func (s *SMTPServer) Stop() {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.srv, s.ln = nil, nil
	s.mu.Unlock()
	if srv != nil {
		// Serve registers its listener in its own goroutine: a Stop right
		// after the start would leave it open (and accepting) without
		// closing it here.
		_ = ln.Close()
		_ = srv.Close()
	}
}

// Start listens again on the same port after Stop.
func (s *SMTPServer) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		t.Fatal("SMTPServer.Start: already running")
	}
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		t.Fatalf("SMTPServer.Start: %v", err)
	}
	s.serve(ln)
}

// RefuseNext makes the server answer the next n messages with code (a 4xx
// or 5xx reply to the end of DATA) instead of accepting them.
func (s *SMTPServer) RefuseNext(n, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.refuse = append(s.refuse, code)
	}
}

// OnData calls f with the recipients of each message whose data has come,
// before the server records and answers it (a test may kill the sender
// then: the message is recorded, the sender never hears the reply).
func (s *SMTPServer) OnData(f func(to []string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onData = f
}

// DropAfterAccept makes the server accept the next n messages (they are
// recorded) and cut each one's connection right after its 250 reply.
func (s *SMTPServer) DropAfterAccept(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop += n
}

// Messages are the accepted messages in the order they came.
func (s *SMTPServer) Messages() []SMTPMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Count is how many accepted messages carried this Message-ID (without
// angle brackets).
func (s *SMTPServer) Count(messageID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[messageID]
}

// MessageIDs maps each Message-ID accepted to how many times it was.
func (s *SMTPServer) MessageIDs() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.ids))
	for k, v := range s.ids {
		out[k] = v
	}
	return out
}

// Refused is how many messages were refused by RefuseNext; Attempts how
// many reached the end of DATA (accepted or refused).
func (s *SMTPServer) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// Attempts: see Refused.
func (s *SMTPServer) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// WaitMessages waits until at least n messages were accepted and returns
// them, or fails the test after d.
func (s *SMTPServer) WaitMessages(t testing.TB, n int, d time.Duration) []SMTPMessage {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			out := slices.Clone(s.msgs)
			s.mu.Unlock()
			return out
		}
		ch, got := s.changed, len(s.msgs)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for %d messages; %d came", d, n, got)
		}
	}
}

type smtpSession struct {
	s     *SMTPServer
	conn  *smtp.Conn
	user  string
	from  string
	to    []string
	cut   bool // close the connection at the reset that follows the 250
	authd bool
}

func (x *smtpSession) AuthMechanisms() []string {
	if x.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *smtpSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || x.s.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		u := subtle.ConstantTimeCompare([]byte(username), []byte(x.s.opts.Username))
		p := subtle.ConstantTimeCompare([]byte(password), []byte(x.s.opts.Password))
		if u&p != 1 {
			return smtp.ErrAuthFailed
		}
		x.user, x.authd = username, true
		return nil
	}), nil
}

func (x *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if x.s.opts.Username != "" && !x.authd {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.to = append(x.to, to)
	return nil
}

func (x *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := x.s
	s.mu.Lock()
	f := s.onData
	s.mu.Unlock()
	if f != nil {
		f(slices.Clone(x.to))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { close(s.changed); s.changed = make(chan struct{}) }()
	s.attempts++
	if len(s.refuse) > 0 {
		code := s.refuse[0]
		s.refuse = s.refuse[1:]
		s.refused++
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0},
			Message: fmt.Sprintf("refused by the test (%d)", code)}
	}
	id := ""
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		id = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(m.Header.Get("Message-Id")), "<"), ">")
	}
	_, isTLS := x.conn.TLSConnectionState()
	s.msgs = append(s.msgs, SMTPMessage{From: x.from, To: slices.Clone(x.to), Data: data, MessageID: id, TLS: isTLS, User: x.user})
	s.ids[id]++
	if s.drop > 0 {
		s.drop--
		x.cut = true
	}
	return nil
}

// Reset follows every transaction; after a message accepted with a cut
// connection it closes the connection (the 250 has gone out).
func (x *smtpSession) Reset() {
	x.from, x.to = "", nil
	if x.cut {
		x.cut = false
		_ = x.conn.Conn().Close()
	}
}

func (x *smtpSession) Logout() error { return nil }
