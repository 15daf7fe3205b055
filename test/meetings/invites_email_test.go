package meetings

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"

	"webconf/conf"
	"webconf/rpc/node"
	"webconf/test/testutil"
)

// The invitation tests end to end: a node (in-process, or the webconfd
// binary where a kill is needed) with [mail] pointing at a loopback SMTP
// server (testutil.SMTPServer: STARTTLS, AUTH PLAIN, its own CA) and the
// built-in templates; what arrives is taken apart with net/mail,
// mime/multipart and golang-ical.

const (
	smtpUser = "webconf"
	smtpPass = "smtp-s3cret"
	mailFrom = "meetings@example.org"
)

// mailConf points cfg's [mail] at srv (STARTTLS, AUTH PLAIN, its CA) and
// turns on invitations by email.
func mailConf(cfg *conf.Config, srv *testutil.SMTPServer) {
	cfg.Meetings.InviteMechanisms = []string{"email"}
	cfg.Meetings.LinkHost = "https://meet.example.org"
	cfg.Meetings.TemplatePath = "" // the built-in templates
	cfg.Mail = conf.Mail{
		Host: srv.Host, Port: srv.Port, StartTLS: true, Username: smtpUser, Password: smtpPass,
		From: "Meetings <" + mailFrom + ">", Timeout: 5 * time.Second, TLSCAFile: srv.CA.File, TLSVerify: true,
	}
}

// mailIni is the same as config file lines.
func mailIni(srv *testutil.SMTPServer) string {
	return fmt.Sprintf(`[mail]
host = %s
port = %d
starttls = yes
username = %s
password = %s
from = Meetings <%s>
timeout = 5
tls_ca_file = %s
`, srv.Host, srv.Port, smtpUser, smtpPass, mailFrom, srv.CA.File)
}

func newSMTP(t *testing.T) *testutil.SMTPServer {
	return testutil.NewSMTPServer(t, testutil.SMTPOptions{Username: smtpUser, Password: smtpPass})
}

// invite is a received email taken apart.
type invite struct {
	msg       testutil.SMTPMessage
	header    mail.Header
	subject   string
	text      string
	html      string
	calendar  []byte // the text/calendar part of the alternative
	calMethod string // its method= parameter
	ics       []byte // the .ics attachment
	method    string // the calendar's METHOD
	event     *ics.VEvent
}

// parseInvite reads m with net/mail and mime/multipart, and its calendar
// part (if any) with golang-ical.
func parseInvite(t *testing.T, m testutil.SMTPMessage) invite {
	t.Helper()
	pm := testutil.ParseMail(t, m.Data)
	r := invite{msg: m, header: pm.Header, subject: pm.Subject, text: pm.Text, html: pm.HTML,
		calendar: pm.Calendar, calMethod: pm.CalendarParams["method"], ics: pm.ICS}
	if r.calendar != nil {
		cal, err := ics.ParseCalendar(bytes.NewReader(r.calendar))
		if err != nil {
			t.Fatalf("golang-ical cannot parse the calendar: %v\n%s", err, r.calendar)
		}
		for _, p := range cal.CalendarProperties {
			if p.IANAToken == "METHOD" {
				r.method = p.Value
			}
		}
		if evs := cal.Events(); len(evs) == 1 {
			r.event = evs[0]
		} else {
			t.Fatalf("%d events in the calendar, want 1:\n%s", len(evs), r.calendar)
		}
	}
	return r
}

func (r invite) to() string { return strings.Join(r.msg.To, ",") }

func (r invite) prop(p ics.ComponentProperty) string {
	if r.event == nil {
		return "<no calendar>"
	}
	if x := r.event.GetProperty(p); x != nil {
		return x.Value
	}
	return "<none>"
}

func (r invite) param(p ics.ComponentProperty, name string) string {
	if x := r.event.GetProperty(p); x != nil && len(x.ICalParameters[name]) == 1 {
		return x.ICalParameters[name][0]
	}
	return "<none>"
}

// byRecipient indexes messages by their RCPT TO.
func byRecipient(t *testing.T, msgs []testutil.SMTPMessage) map[string]invite {
	t.Helper()
	out := map[string]invite{}
	for _, m := range msgs {
		r := parseInvite(t, m)
		if _, dup := out[r.to()]; dup {
			t.Fatalf("two messages to %s", r.to())
		}
		out[r.to()] = r
	}
	return out
}

// invitationItems is GET .../invitations.
func (h *harness) invitationItems(t *testing.T, tok, uuid string) []map[string]any {
	t.Helper()
	return restItems(t, h.must(t, 200, "GET", "/api/v1/users/me/meetings/"+uuid+"/invitations", bearer(tok), nil))
}

// TestInvitationsByEmail: a meeting with two email participants sends
// each an email over STARTTLS with AUTH PLAIN, rendered from the
// built-in en templates, with an iCalendar REQUEST; moving it sends an
// update (same UID, SEQUENCE 1); deleting it a CANCEL. Meetings in es
// and ca render their dates in those languages.
func TestInvitationsByEmail(t *testing.T) {
	t.Parallel()
	srv := newSMTP(t)
	cfg := testConfig(t)
	mailConf(cfg, srv)
	h := startOpts(t, cfg, node.Options{})
	r := h.must(t, 201, "POST", "/api/v1/users", operator, map[string]any{"username": "alice", "email": "alice@example.org", "capabilities": []string{"meetings"}})
	tok := r.JSON["token"].(string)

	// Wednesday 3 March 2027 at noon UTC is a Wednesday in every time zone
	// the test machine may be in (the templates use the local zone).
	since := time.Date(2027, 3, 3, 12, 0, 0, 0, time.UTC)
	until := since.Add(time.Hour)
	m := h.meeting(t, tok, map[string]any{
		"name": "Quarterly review", "language": "en",
		"valid_since": since.Format(time.RFC3339), "valid_until": until.Format(time.RFC3339),
		"participants": []map[string]any{
			{"name": "Ann", "email": "ann@example.org"},
			{"name": "Bob", "email": "bob@example.org"},
		},
	})
	uuid, link := m["uuid"].(string), m["url"].(string)
	if link == "" || !strings.Contains(link, uuid) {
		t.Fatalf("meeting url %q", link)
	}

	got := byRecipient(t, srv.WaitMessages(t, 2, 20*time.Second))
	for _, who := range []struct{ addr, name string }{{"ann@example.org", "Ann"}, {"bob@example.org", "Bob"}} {
		e, ok := got[who.addr]
		if !ok {
			t.Fatalf("no message to %s; got %v", who.addr, got)
		}
		if !e.msg.TLS || e.msg.User != smtpUser || e.msg.From != mailFrom {
			t.Errorf("%s: TLS %v, AUTH user %q, MAIL FROM %q", who.addr, e.msg.TLS, e.msg.User, e.msg.From)
		}
		if e.subject != "Invitation: Quarterly review" {
			t.Errorf("%s: subject %q", who.addr, e.subject)
		}
		for part, body := range map[string]string{"text": e.text, "html": e.html} {
			for _, want := range []string{"Hello " + who.name, `the meeting "Quarterly review" by alice`, link, "Wednesday, March 3, 2027"} {
				if !strings.Contains(body, want) {
					t.Errorf("%s: the %s part lacks %q:\n%s", who.addr, part, want, body)
				}
			}
		}
		if !strings.Contains(e.html, `<a href="`+link+`">`) {
			t.Errorf("%s: html has no link to %s:\n%s", who.addr, link, e.html)
		}
		if e.calMethod != "REQUEST" || e.method != "REQUEST" || !bytes.Equal(e.ics, e.calendar) {
			t.Errorf("%s: calendar part method=%q, METHOD %q, attachment equal: %v", who.addr, e.calMethod, e.method, bytes.Equal(e.ics, e.calendar))
		}
		for _, c := range []struct {
			what, got, want string
		}{
			{"UID", e.prop(ics.ComponentPropertyUniqueId), uuid + "@webconf"},
			{"SEQUENCE", e.prop(ics.ComponentPropertySequence), "0"},
			{"DTSTART", e.prop(ics.ComponentPropertyDtStart), "20270303T120000Z"},
			{"DTEND", e.prop(ics.ComponentPropertyDtEnd), "20270303T130000Z"},
			{"SUMMARY", e.prop(ics.ComponentPropertySummary), "Quarterly review"},
			{"URL", e.prop(ics.ComponentPropertyUrl), link},
			{"LOCATION", e.prop(ics.ComponentPropertyLocation), link},
			{"STATUS", e.prop(ics.ComponentPropertyStatus), "CONFIRMED"},
			{"ORGANIZER", e.prop(ics.ComponentPropertyOrganizer), "mailto:alice@example.org"},
			{"ORGANIZER CN", e.param(ics.ComponentPropertyOrganizer, "CN"), "alice"},
		} {
			if c.got != c.want {
				t.Errorf("%s: %s %q, want %q", who.addr, c.what, c.got, c.want)
			}
		}
		attendees := map[string]string{}
		for _, a := range e.event.Attendees() {
			attendees[a.Email()] = strings.Join(a.ICalParameters["RSVP"], ",")
		}
		if len(attendees) != 2 || attendees["ann@example.org"] != "TRUE" || attendees["bob@example.org"] != "TRUE" {
			t.Errorf("%s: attendees (email -> RSVP) %v", who.addr, attendees)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "GET .../invitations to show both sent", func() bool {
		return statuses(h.invitationItems(t, tok, uuid))["invitation/sent"] == 2
	})
	for _, it := range h.invitationItems(t, tok, uuid) {
		if it["mechanism"] != "email" || it["attempts"].(float64) != 1 {
			t.Errorf("invitation %v", it)
		}
	}
	if t.Failed() {
		return
	}

	// Moving it: an update, same UID, SEQUENCE 1, the new times.
	since2 := since.Add(24 * time.Hour)
	h.must(t, 200, "PUT", "/api/v1/users/me/meetings/"+uuid, bearer(tok), map[string]any{
		"valid_since": since2.Format(time.RFC3339), "valid_until": since2.Add(time.Hour).Format(time.RFC3339),
	})
	got = byRecipient(t, srv.WaitMessages(t, 4, 20*time.Second)[2:])
	for _, addr := range []string{"ann@example.org", "bob@example.org"} {
		e := got[addr]
		if e.event == nil || e.method != "REQUEST" || e.subject != "Updated: Quarterly review" ||
			e.prop(ics.ComponentPropertyUniqueId) != uuid+"@webconf" || e.prop(ics.ComponentPropertySequence) != "1" ||
			e.prop(ics.ComponentPropertyDtStart) != "20270304T120000Z" || !strings.Contains(e.text, "Thursday, March 4, 2027") {
			t.Errorf("update to %s: subject %q METHOD %q UID %q SEQUENCE %q DTSTART %q\n%s", addr, e.subject, e.method,
				e.prop(ics.ComponentPropertyUniqueId), e.prop(ics.ComponentPropertySequence), e.prop(ics.ComponentPropertyDtStart), e.text)
		}
	}

	// Deleting it: a cancellation, same UID, a higher SEQUENCE.
	h.must(t, 204, "DELETE", "/api/v1/users/me/meetings/"+uuid, bearer(tok), nil)
	got = byRecipient(t, srv.WaitMessages(t, 6, 20*time.Second)[4:])
	for _, addr := range []string{"ann@example.org", "bob@example.org"} {
		e := got[addr]
		if e.event == nil || e.method != "CANCEL" || e.calMethod != "CANCEL" || e.subject != "Cancelled: Quarterly review" ||
			e.prop(ics.ComponentPropertyStatus) != "CANCELLED" || e.prop(ics.ComponentPropertyUniqueId) != uuid+"@webconf" ||
			e.prop(ics.ComponentPropertySequence) != "2" {
			t.Errorf("cancellation to %s: subject %q METHOD %q/%q STATUS %q UID %q SEQUENCE %q", addr, e.subject, e.method, e.calMethod,
				e.prop(ics.ComponentPropertyStatus), e.prop(ics.ComponentPropertyUniqueId), e.prop(ics.ComponentPropertySequence))
		}
	}
	for id, n := range srv.MessageIDs() {
		if n != 1 {
			t.Errorf("Message-ID %s received %d times", id, n)
		}
	}

	// Spanish and Catalan meetings: their dates in those languages.
	for _, lang := range []struct{ lang, date, hello string }{
		{"es", "miércoles, 3 de marzo de 2027", "Hola Eva"},
		{"ca", "dimecres, 3 de març de 2027", "Eva"},
	} {
		before := len(srv.Messages())
		h.meeting(t, tok, map[string]any{
			"name": "Revisión " + lang.lang, "language": lang.lang, "valid_since": since.Format(time.RFC3339),
			"participants": []map[string]any{{"name": "Eva", "email": "eva-" + lang.lang + "@example.org"}},
		})
		e := parseInvite(t, srv.WaitMessages(t, before+1, 20*time.Second)[before])
		for part, body := range map[string]string{"text": e.text, "html": e.html} {
			if !strings.Contains(body, lang.date) || !strings.Contains(body, lang.hello) || strings.Contains(body, "Wednesday") {
				t.Errorf("%s meeting: the %s part lacks %q (or is English):\n%s", lang.lang, part, lang.date, body)
			}
		}
	}
}

// TestInvitationsRetried: the SMTP server refuses twice with 451, then
// accepts: the invitation arrives once after 3 attempts; the server down,
// then up again: the invitation arrives once. (The outbox's backoff base
// is the test knob node.NotifyParts.RetryBase.)
func TestInvitationsRetried(t *testing.T) {
	t.Parallel()
	srv := newSMTP(t)
	cfg := testConfig(t)
	mailConf(cfg, srv)
	h := startOpts(t, cfg, node.Options{Notify: node.NotifyParts{RetryBase: 200 * time.Millisecond}})
	_, tok := h.user(t, "alice", "meetings")

	srv.RefuseNext(2, 451)
	m := h.meeting(t, tok, map[string]any{"name": "Retry", "participants": []map[string]any{{"email": "ann@example.org"}}})
	uuid := m["uuid"].(string)
	var items []map[string]any
	testutil.WaitFor(t, 20*time.Second, "the invitation sent after two refusals", func() bool {
		items = h.invitationItems(t, tok, uuid)
		return len(items) == 1 && items[0]["status"] == "sent"
	})
	msgs := srv.Messages()
	if len(msgs) != 1 || srv.Count(msgs[0].MessageID) != 1 || srv.Refused() != 2 || srv.Attempts() != 3 {
		t.Fatalf("%d messages accepted, %d refused, %d attempts (want 1, 2, 3)", len(msgs), srv.Refused(), srv.Attempts())
	}
	if a := items[0]["attempts"].(float64); a != 3 {
		t.Errorf("GET .../invitations: attempts %v, want 3 (%v)", a, items[0])
	}

	// Down: the sender retries (the REST view shows the attempts and the
	// reason) until the server is back, then sends once.
	srv.Stop()
	m = h.meeting(t, tok, map[string]any{"name": "Down", "participants": []map[string]any{{"email": "bob@example.org"}}})
	uuid = m["uuid"].(string)
	testutil.WaitFor(t, 20*time.Second, "two failed attempts while the server is down", func() bool {
		items = h.invitationItems(t, tok, uuid)
		return len(items) == 1 && items[0]["status"] == "queued" && items[0]["attempts"].(float64) >= 2
	})
	if reason, _ := items[0]["reason"].(string); reason == "" || items[0]["next_attempt"] == nil {
		t.Errorf("a queued retry without reason or next_attempt: %v", items[0])
	}
	srv.Start(t)
	all := srv.WaitMessages(t, 2, 30*time.Second)
	testutil.WaitFor(t, 10*time.Second, "the invitation sent after the server came back", func() bool {
		items = h.invitationItems(t, tok, uuid)
		return len(items) == 1 && items[0]["status"] == "sent"
	})
	if all[1].To[0] != "bob@example.org" || srv.Count(all[1].MessageID) != 1 {
		t.Errorf("after the restart: to %v, Message-ID %s received %d times", all[1].To, all[1].MessageID, srv.Count(all[1].MessageID))
	}
	if n := len(srv.Messages()); n != 2 {
		t.Errorf("%d messages in all, want 2", n)
	}
}
