package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"

	gomail "github.com/wneessen/go-mail"

	"webconf/conf"
)

// MailConfig is the [mail] section (conf.Mail): the SMTP server, its TLS
// mode and credentials, the sender and the timeout.
type MailConfig = conf.Mail

// SMTPMailer sends each email over a connection of its own to the
// configured SMTP server (wneessen/go-mail). It is safe for concurrent
// use.
type SMTPMailer struct {
	client *gomail.Client
	from   *mail.Address // envelope sender, and From when an Email has none
	addr   string        // host:port, for errors
}

var _ Mailer = (*SMTPMailer)(nil)

// NewMailer makes the mailer of cfg, which must name a host (an empty
// host is no email service: do not make a mailer then). It reads
// cfg.TLSCAFile; it does not connect.
func NewMailer(cfg MailConfig) (*SMTPMailer, error) {
	if cfg.Host == "" {
		return nil, errors.New("mail: no host: email is off")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: from %q: %w", cfg.From, err)
	}
	port := cfg.Port
	if port == 0 {
		port = 587
		if cfg.TLS {
			port = 465
		}
	}
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: !cfg.TLSVerify} //nolint:gosec // tls_verify=no is for tests
	if cfg.TLSCAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("mail: tls_ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mail: tls_ca_file %s: no PEM certificate", cfg.TLSCAFile)
		}
		tc.RootCAs = pool
	}
	opts := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSConfig(tc),
		gomail.WithoutNoop(), // each send has a fresh connection
	}
	switch {
	case cfg.TLS:
		opts = append(opts, gomail.WithSSL())
	case cfg.StartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.Username != "" {
		// The strongest mechanism the server offers; PLAIN and LOGIN only
		// over TLS.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username), gomail.WithPassword(cfg.Password))
	}
	c, err := gomail.NewClient(cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return &SMTPMailer{client: c, from: from, addr: net.JoinHostPort(cfg.Host, strconv.Itoa(port))}, nil
}

// calendarFile is the name of the .ics attachment.
const calendarFile = "invite.ics"

// SendEmail sends e as one message: multipart/mixed holding a
// multipart/alternative (text/plain, text/html, and text/calendar;
// method=<Method> when e has a calendar) and the calendar again as the
// attachment invite.ics (application/ics). Its Message-ID is
// <e.MessageID>, the same at every attempt. The envelope sender is
// [mail] from; so is From unless e.From is set.
//
// An error wraps ErrPermanent when retrying cannot help: e is malformed,
// or the server refused the message with a 5xx reply to MAIL FROM, RCPT
// TO or DATA. Anything else is retryable: a 4xx reply, a connection or TLS
// failure, a refused login or an unreachable server (the server's state
// or ours, not the message, is at fault). Once the server has accepted
// the message (250 after DATA) SendEmail returns nil, whatever happens to
// the connection afterwards, so that a retry cannot send it twice.
func (s *SMTPMailer) SendEmail(ctx context.Context, e Email) error {
	msg, err := s.message(e)
	if err != nil {
		return fmt.Errorf("mail: message %s: %w: %w", e.MessageID, ErrPermanent, err)
	}
	client, err := s.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("mail: message %s: connecting to %s: %w", e.MessageID, s.addr, withCtx(ctx, err))
	}
	stop := context.AfterFunc(ctx, func() { _ = client.Close() })
	err = s.client.SendWithSMTPClient(client, msg)
	stop()
	delivered := msg.IsDelivered()
	_ = s.client.CloseWithSMTPClient(client) // QUIT; the message's fate is known already
	if delivered {
		return nil
	}
	if err == nil {
		return fmt.Errorf("mail: message %s: %s did not take it", e.MessageID, s.addr)
	}
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode()/100 == 5 {
		return fmt.Errorf("mail: message %s to %s: %w: %w", e.MessageID, e.To, ErrPermanent, err)
	}
	return fmt.Errorf("mail: message %s to %s via %s: %w", e.MessageID, e.To, s.addr, withCtx(ctx, err))
}

// withCtx adds the context's error to err when the context ended, so
// errors.Is(err, context.Canceled) tells a shutdown from a failure.
func withCtx(ctx context.Context, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

// message builds e; an error means e itself is wrong.
func (s *SMTPMailer) message(e Email) (*gomail.Msg, error) {
	if !validMessageID(e.MessageID) {
		return nil, fmt.Errorf("Message-ID %q is not id-left@id-right without angle brackets", e.MessageID)
	}
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.SetMessageIDWithValue(e.MessageID)
	m.EnvelopeFromMailAddress(s.from)
	if e.From == "" {
		m.FromMailAddress(s.from)
	} else if err := m.From(e.From); err != nil {
		return nil, fmt.Errorf("from %q: %w", e.From, err)
	}
	if err := m.To(e.To); err != nil {
		return nil, fmt.Errorf("to %q: %w", e.To, err)
	}
	m.Subject(e.Subject)
	// RFC 3834: no vacation replies to a notification.
	m.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, e.Text)
	if e.HTML != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, e.HTML)
	}
	if len(e.Calendar) > 0 {
		if e.Method != MethodRequest && e.Method != MethodCancel {
			return nil, fmt.Errorf("calendar method %q is not %s or %s", e.Method, MethodRequest, MethodCancel)
		}
		m.AddAlternativeString(gomail.ContentType("text/calendar; method="+e.Method), string(e.Calendar))
		if err := m.AttachReader(calendarFile, bytes.NewReader(e.Calendar),
			gomail.WithFileContentType("application/ics")); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// validMessageID: an RFC 5322 msg-id without its angle brackets, in the
// dot-atom form: printable ASCII with no space, bracket or quote, one
// '@' with something on each side.
func validMessageID(id string) bool {
	left, right, ok := strings.Cut(id, "@")
	if !ok || left == "" || right == "" || strings.Contains(right, "@") || len(id) > 250 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`<>()[]\",;:`, c) >= 0 {
			return false
		}
	}
	return true
}
