package notify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"

	"webconf/sipapp/notify"
	"webconf/test/testutil"
)

const (
	smtpUser = "meetings"
	smtpPass = "s3cret pass"
)

// mailConfig points at srv over STARTTLS with its CA and credentials.
func mailConfig(srv *testutil.SMTPServer) notify.MailConfig {
	return notify.MailConfig{
		Host: srv.Host, Port: srv.Port, StartTLS: true,
		Username: smtpUser, Password: smtpPass,
		From:    "Meetings <meetings@webconf.test>",
		Timeout: 5 * time.Second, TLSCAFile: srv.CA.File, TLSVerify: true,
	}
}

func newMailer(t *testing.T, cfg notify.MailConfig) *notify.SMTPMailer {
	t.Helper()
	m, err := notify.NewMailer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var msgSeq atomic.Int64

// invitation renders an email about m to Bob, with a fresh Message-ID.
func invitation(t *testing.T, method string, m notify.Meeting) notify.Email {
	t.Helper()
	cal, err := notify.Calendar(method, m, m.Participants, icsNow)
	if err != nil {
		t.Fatal(err)
	}
	return notify.Email{
		MessageID: fmt.Sprintf("inv-%d.%s@webconf.test", msgSeq.Add(1), m.UUID),
		To:        "Bob <bob@example.com>",
		Subject:   "Invitación: " + m.Name,
		Text:      "Hello Bob,\r\njoin " + m.Name + " at " + m.URL + "\r\n",
		HTML:      "<p>Hello <b>Bob</b>, join <a href=\"" + m.URL + "\">" + m.Name + "</a></p>",
		Calendar:  cal,
		Method:    method,
	}
}

// received is a message taken apart with net/mail and mime/multipart.
type received struct {
	header    mail.Header
	subject   string
	shape     string // the MIME tree, e.g. multipart/mixed[multipart/alternative[text/plain,...],application/ics]
	text      string
	html      string
	calendar  []byte // the text/calendar part of the alternative
	calParams map[string]string
	ics       []byte // the attachment
	icsName   string
}

func parseReceived(t *testing.T, data []byte) received {
	t.Helper()
	m := testutil.ParseMail(t, data)
	return received{header: m.Header, subject: m.Subject, shape: m.Shape, text: m.Text, html: m.HTML,
		calendar: m.Calendar, calParams: m.CalendarParams, ics: m.ICS, icsName: m.ICSName}
}

// The whole email on the wire: envelope, TLS, AUTH, headers, the MIME
// tree, the rendered text and html, and the calendar in both places.
func TestSendEmailInvitationOverSTARTTLS(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	m := icsMeeting()
	e := invitation(t, notify.MethodRequest, m)
	if err := mailer.SendEmail(testutil.Ctx(t, 10*time.Second), e); err != nil {
		t.Fatal(err)
	}
	got := srv.WaitMessages(t, 1, 5*time.Second)[0]
	if !got.TLS || got.User != smtpUser || got.From != "meetings@webconf.test" || strings.Join(got.To, ",") != "bob@example.com" {
		t.Errorf("TLS=%v user=%q MAIL FROM=%q RCPT TO=%v", got.TLS, got.User, got.From, got.To)
	}
	if got.MessageID != e.MessageID || srv.Count(e.MessageID) != 1 {
		t.Errorf("Message-ID %q (count %d), want %q", got.MessageID, srv.Count(e.MessageID), e.MessageID)
	}
	r := parseReceived(t, got.Data)
	if from := r.header.Get("From"); from != `"Meetings" <meetings@webconf.test>` {
		t.Errorf("From = %q", from)
	}
	if to := r.header.Get("To"); to != `"Bob" <bob@example.com>` {
		t.Errorf("To = %q", to)
	}
	if r.subject != e.Subject {
		t.Errorf("Subject = %q, want %q", r.subject, e.Subject)
	}
	if r.header.Get("Auto-Submitted") != "auto-generated" || r.header.Get("Date") == "" {
		t.Errorf("Auto-Submitted %q, Date %q", r.header.Get("Auto-Submitted"), r.header.Get("Date"))
	}
	if want := "multipart/mixed[multipart/alternative[text/plain,text/html,text/calendar],application/ics]"; r.shape != want {
		t.Errorf("MIME tree\n%s\nwant\n%s", r.shape, want)
	}
	if r.text != e.Text || r.html != e.HTML {
		t.Errorf("text %q html %q, want %q and %q", r.text, r.html, e.Text, e.HTML)
	}
	if r.calParams["method"] != "REQUEST" || !strings.EqualFold(r.calParams["charset"], "utf-8") {
		t.Errorf("text/calendar parameters %v, want method=REQUEST and charset=utf-8", r.calParams)
	}
	if r.icsName != "invite.ics" || !bytes.Equal(r.ics, e.Calendar) || !bytes.Equal(r.calendar, e.Calendar) {
		t.Errorf("attachment %q:\n%q\ncalendar part:\n%q\nwant both\n%q", r.icsName, r.ics, r.calendar, e.Calendar)
	}
	checkInvitation(t, r.calendar, "REQUEST", "0")
	checkInvitation(t, r.ics, "REQUEST", "0")
}

// An invitation, an update that moves the meeting, and a cancellation:
// one UID, a growing SEQUENCE, METHOD:CANCEL with STATUS:CANCELLED last.
func TestSendEmailUpdateAndCancellation(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	ctx := testutil.Ctx(t, 20*time.Second)
	m := icsMeeting()
	steps := []struct {
		method, start string
		seq           int
	}{{"REQUEST", "20261201T090000Z", 0}, {"REQUEST", "20261202T090000Z", 1}, {"CANCEL", "20261202T090000Z", 2}}
	for i, s := range steps {
		if i == 1 {
			since, until := m.ValidSince.Add(24*time.Hour), m.ValidUntil.Add(24*time.Hour)
			m.ValidSince, m.ValidUntil = &since, &until
		}
		m.Sequence = s.seq
		if err := mailer.SendEmail(ctx, invitation(t, s.method, m)); err != nil {
			t.Fatalf("%s %d: %v", s.method, s.seq, err)
		}
	}
	msgs := srv.WaitMessages(t, len(steps), 5*time.Second)
	for i, s := range steps {
		r := parseReceived(t, msgs[i].Data)
		if r.calParams["method"] != s.method {
			t.Errorf("message %d: text/calendar method=%q, want %s", i, r.calParams["method"], s.method)
		}
		method, ev := parseICS(t, r.calendar)
		status := map[string]string{"REQUEST": "CONFIRMED", "CANCEL": "CANCELLED"}[s.method]
		if method != s.method || prop(ev, ics.ComponentPropertyStatus) != status ||
			prop(ev, ics.ComponentPropertySequence) != fmt.Sprint(s.seq) ||
			prop(ev, ics.ComponentPropertyDtStart) != s.start ||
			prop(ev, ics.ComponentPropertyUniqueId) != m.UUID+"@webconf" {
			t.Errorf("message %d: METHOD %s STATUS %s SEQUENCE %s DTSTART %s UID %s", i, method,
				prop(ev, ics.ComponentPropertyStatus), prop(ev, ics.ComponentPropertySequence),
				prop(ev, ics.ComponentPropertyDtStart), prop(ev, ics.ComponentPropertyUniqueId))
		}
	}
}

// 4xx is retryable, and the retry (same Message-ID) is sent once; 5xx is
// permanent.
func TestSendEmailRefusals(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	ctx := testutil.Ctx(t, 20*time.Second)
	e := invitation(t, notify.MethodRequest, icsMeeting())

	srv.RefuseNext(1, 451)
	err := mailer.SendEmail(ctx, e)
	if err == nil || errors.Is(err, notify.ErrPermanent) || !strings.Contains(err.Error(), "451") {
		t.Fatalf("451: got %v, want a retryable error naming 451", err)
	}
	if srv.Refused() != 1 || srv.Count(e.MessageID) != 0 {
		t.Fatalf("refused %d, accepted %d", srv.Refused(), srv.Count(e.MessageID))
	}
	if err := mailer.SendEmail(ctx, e); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := srv.Count(e.MessageID); n != 1 {
		t.Errorf("Message-ID %s accepted %d times, want once", e.MessageID, n)
	}

	e2 := invitation(t, notify.MethodRequest, icsMeeting())
	srv.RefuseNext(1, 554)
	err = mailer.SendEmail(ctx, e2)
	if !errors.Is(err, notify.ErrPermanent) || !strings.Contains(err.Error(), "554") {
		t.Errorf("554: got %v, want ErrPermanent naming 554", err)
	}
	if srv.Count(e2.MessageID) != 0 {
		t.Error("a refused message was recorded")
	}
}

// A server that is down is retryable; once it is back the message goes.
func TestSendEmailServerDown(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	ctx := testutil.Ctx(t, 20*time.Second)
	e := invitation(t, notify.MethodRequest, icsMeeting())
	srv.Stop()
	err := mailer.SendEmail(ctx, e)
	if err == nil || errors.Is(err, notify.ErrPermanent) {
		t.Fatalf("server down: got %v, want a retryable error", err)
	}
	srv.Start(t)
	if err := mailer.SendEmail(ctx, e); err != nil {
		t.Fatalf("server back: %v", err)
	}
	if srv.Count(e.MessageID) != 1 {
		t.Errorf("accepted %d times", srv.Count(e.MessageID))
	}
}

// Once the server said 250 to the message, a connection lost before QUIT
// (go-mail's RSET fails) is not an error: a retry would send it twice.
func TestSendEmailAcceptedThenConnectionLost(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	e := invitation(t, notify.MethodRequest, icsMeeting())
	srv.DropAfterAccept(1)
	if err := mailer.SendEmail(testutil.Ctx(t, 10*time.Second), e); err != nil {
		t.Fatalf("accepted, then the connection was cut: %v (a retry would duplicate it)", err)
	}
	if srv.Count(e.MessageID) != 1 {
		t.Errorf("accepted %d times", srv.Count(e.MessageID))
	}
}

// A wrong password fails the send (retryable: the configuration, not the
// message, is at fault) and sends nothing; the password is not in the
// error.
func TestSendEmailWrongPassword(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	cfg := mailConfig(srv)
	cfg.Password = "not-the-password"
	err := newMailer(t, cfg).SendEmail(testutil.Ctx(t, 10*time.Second), invitation(t, notify.MethodRequest, icsMeeting()))
	if err == nil || errors.Is(err, notify.ErrPermanent) || !strings.Contains(err.Error(), "535") {
		t.Fatalf("got %v, want a retryable AUTH failure (535)", err)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("the error shows the password: %v", err)
	}
	if srv.Attempts() != 0 {
		t.Errorf("%d messages reached DATA", srv.Attempts())
	}
}

// TLS modes: implicit TLS; starttls=yes refuses a server without
// STARTTLS; starttls=no sends in clear; an untrusted certificate is
// refused.
func TestSendEmailTLSModes(t *testing.T) {
	ctx := testutil.Ctx(t, 30*time.Second)
	t.Run("implicit TLS", func(t *testing.T) {
		srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass, ImplicitTLS: true})
		cfg := mailConfig(srv)
		cfg.TLS = true
		if err := newMailer(t, cfg).SendEmail(ctx, invitation(t, notify.MethodRequest, icsMeeting())); err != nil {
			t.Fatal(err)
		}
		if got := srv.WaitMessages(t, 1, 5*time.Second)[0]; !got.TLS || got.User != smtpUser {
			t.Errorf("TLS=%v user=%q", got.TLS, got.User)
		}
	})
	t.Run("starttls required but not offered", func(t *testing.T) {
		srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{NoTLS: true})
		cfg := mailConfig(srv)
		cfg.Username, cfg.Password = "", ""
		err := newMailer(t, cfg).SendEmail(ctx, invitation(t, notify.MethodRequest, icsMeeting()))
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") || srv.Attempts() != 0 {
			t.Errorf("got %v (%d sent), want a refusal naming STARTTLS", err, srv.Attempts())
		}
	})
	t.Run("plain SMTP with starttls=no", func(t *testing.T) {
		srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{NoTLS: true})
		cfg := mailConfig(srv)
		cfg.Username, cfg.Password, cfg.StartTLS = "", "", false
		if err := newMailer(t, cfg).SendEmail(ctx, invitation(t, notify.MethodRequest, icsMeeting())); err != nil {
			t.Fatal(err)
		}
		if got := srv.WaitMessages(t, 1, 5*time.Second)[0]; got.TLS {
			t.Error("plain SMTP went over TLS")
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
		cfg := mailConfig(srv)
		cfg.TLSCAFile = ""
		err := newMailer(t, cfg).SendEmail(ctx, invitation(t, notify.MethodRequest, icsMeeting()))
		if err == nil || !strings.Contains(err.Error(), "certificate") || srv.Attempts() != 0 {
			t.Errorf("got %v, want a certificate error", err)
		}
	})
}

// A malformed email is permanent and never reaches the server.
func TestSendEmailRefusesBadInput(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	ctx := testutil.Ctx(t, 10*time.Second)
	good := invitation(t, notify.MethodRequest, icsMeeting())
	for name, mutate := range map[string]func(*notify.Email){
		"no Message-ID":                func(e *notify.Email) { e.MessageID = "" },
		"a Message-ID in brackets":     func(e *notify.Email) { e.MessageID = "<" + e.MessageID + ">" },
		"a Message-ID without @":       func(e *notify.Email) { e.MessageID = "abc" },
		"a Message-ID with a space":    func(e *notify.Email) { e.MessageID = "a b@c" },
		"a recipient that is no email": func(e *notify.Email) { e.To = "bob at example" },
		"a From that is no email":      func(e *notify.Email) { e.From = "meetings@" },
		"a calendar without method":    func(e *notify.Email) { e.Method = "" },
	} {
		e := good
		mutate(&e)
		if err := mailer.SendEmail(ctx, e); !errors.Is(err, notify.ErrPermanent) {
			t.Errorf("%s: got %v, want ErrPermanent", name, err)
		}
	}
	if srv.Attempts() != 0 {
		t.Errorf("%d bad messages reached the server", srv.Attempts())
	}
}

func TestNewMailerChecksItsConfig(t *testing.T) {
	cfg := notify.MailConfig{Host: "127.0.0.1", From: "meetings@webconf.test", StartTLS: true, Timeout: time.Second, TLSVerify: true}
	if _, err := notify.NewMailer(cfg); err != nil {
		t.Fatalf("a good config: %v", err)
	}
	noHost := cfg
	noHost.Host = ""
	if _, err := notify.NewMailer(noHost); err == nil {
		t.Error("an empty host (no email service) made a mailer")
	}
	missingCA := cfg
	missingCA.TLSCAFile = filepath.Join(t.TempDir(), "nope.pem")
	if _, err := notify.NewMailer(missingCA); err == nil || !strings.Contains(err.Error(), "tls_ca_file") {
		t.Errorf("a missing CA file: %v", err)
	}
	notPEM := cfg
	notPEM.TLSCAFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(notPEM.TLSCAFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.NewMailer(notPEM); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a CA file without certificates: %v", err)
	}
}

// A context that ends stops the send; the error says so.
func TestSendEmailContextCancelled(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := mailer.SendEmail(ctx, invitation(t, notify.MethodRequest, icsMeeting()))
	if !errors.Is(err, context.Canceled) || errors.Is(err, notify.ErrPermanent) {
		t.Errorf("got %v, want context.Canceled, retryable", err)
	}
	if srv.Attempts() != 0 {
		t.Error("a cancelled send reached DATA")
	}
}

// One mailer sends from many goroutines (the outbox's workers), each
// message on its own connection, each accepted once.
func TestSendEmailConcurrently(t *testing.T) {
	srv := testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
	mailer := newMailer(t, mailConfig(srv))
	ctx := testutil.Ctx(t, 30*time.Second)
	const n = 20
	errs := make(chan error, n)
	ids := make([]string, n)
	for i := range n {
		e := invitation(t, notify.MethodRequest, icsMeeting())
		ids[i] = e.MessageID
		go func() { errs <- mailer.SendEmail(ctx, e) }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, id := range ids {
		if c := srv.Count(id); c != 1 {
			t.Errorf("%s accepted %d times", id, c)
		}
	}
}
