package notify_test

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	ics "github.com/arran4/golang-ical"

	"webconf/sipapp/notify"
)

// icsMeeting is a meeting with every field the calendar shows.
func icsMeeting() notify.Meeting {
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600)) // 09:00 UTC
	until := since.Add(45 * time.Minute)
	return notify.Meeting{
		UUID:         "6f1c2a9e-8f1b-4d1e-9a55-2b7c0e3f4a11",
		Name:         "Weekly sync",
		Language:     "en",
		URL:          "https://meet.example.com/m/6f1c2a9e-8f1b-4d1e-9a55-2b7c0e3f4a11",
		ValidSince:   &since,
		ValidUntil:   &until,
		Organizer:    notify.User{Username: "alice", Email: "alice@example.com"},
		Participants: []notify.Party{{Name: "Bob", Email: "bob@example.com"}, {Phone: "+34600111222"}, {UserUUID: "u-1"}},
		DDIExtension: "+34911000000",
		DDIPin:       "123456",
	}
}

var icsNow = time.Date(2026, 11, 20, 8, 30, 15, 0, time.UTC)

// parseICS parses b with golang-ical and returns the calendar's METHOD
// and its only event.
func parseICS(t *testing.T, b []byte) (string, *ics.VEvent) {
	t.Helper()
	cal, err := ics.ParseCalendar(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("golang-ical cannot parse the calendar: %v\n%s", err, b)
	}
	method := ""
	for _, p := range cal.CalendarProperties {
		if p.IANAToken == "METHOD" {
			method = p.Value
		}
	}
	evs := cal.Events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1:\n%s", len(evs), b)
	}
	return method, evs[0]
}

func prop(ev *ics.VEvent, p ics.ComponentProperty) string {
	if x := ev.GetProperty(p); x != nil {
		return x.Value
	}
	return "<none>"
}

func param(ev *ics.VEvent, p ics.ComponentProperty, name string) string {
	if x := ev.GetProperty(p); x != nil && len(x.ICalParameters[name]) == 1 {
		return x.ICalParameters[name][0]
	}
	return "<none>"
}

// checkInvitation checks every field of a calendar about icsMeeting (or
// a copy with another sequence and method).
func checkInvitation(t *testing.T, b []byte, method string, seq string) {
	t.Helper()
	m := icsMeeting()
	gotMethod, ev := parseICS(t, b)
	wantStatus := map[string]string{"REQUEST": "CONFIRMED", "CANCEL": "CANCELLED"}[method]
	for _, c := range []struct{ what, got, want string }{
		{"METHOD", gotMethod, method},
		{"UID", prop(ev, ics.ComponentPropertyUniqueId), m.UUID + "@webconf"},
		{"SEQUENCE", prop(ev, ics.ComponentPropertySequence), seq},
		{"DTSTAMP", prop(ev, ics.ComponentPropertyDtstamp), "20261120T083015Z"},
		{"DTSTART", prop(ev, ics.ComponentPropertyDtStart), "20261201T090000Z"},
		{"DTEND", prop(ev, ics.ComponentPropertyDtEnd), "20261201T094500Z"},
		{"SUMMARY", prop(ev, ics.ComponentPropertySummary), "Weekly sync"},
		{"URL", prop(ev, ics.ComponentPropertyUrl), m.URL},
		{"LOCATION", prop(ev, ics.ComponentPropertyLocation), m.URL},
		{"DESCRIPTION", prop(ev, ics.ComponentPropertyDescription),
			"Join the meeting: " + m.URL + "\nDial in: +34911000000, PIN: 123456"},
		{"ORGANIZER", prop(ev, ics.ComponentPropertyOrganizer), "mailto:alice@example.com"},
		{"ORGANIZER CN", param(ev, ics.ComponentPropertyOrganizer, "CN"), "alice"},
		{"STATUS", prop(ev, ics.ComponentPropertyStatus), wantStatus},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	var atts []string
	for _, a := range ev.Attendees() {
		atts = append(atts, a.Value+" CN="+strings.Join(a.ICalParameters["CN"], ",")+" RSVP="+strings.Join(a.ICalParameters["RSVP"], ","))
	}
	want := []string{"mailto:bob@example.com CN=Bob RSVP=TRUE", "tel:+34600111222 CN=+34600111222 RSVP=FALSE"}
	if strings.Join(atts, "\n") != strings.Join(want, "\n") {
		t.Errorf("attendees:\n%s\nwant\n%s", strings.Join(atts, "\n"), strings.Join(want, "\n"))
	}
}

func TestCalendarRequestCarriesTheMeeting(t *testing.T) {
	m := icsMeeting()
	b, err := notify.Calendar(notify.MethodRequest, m, m.Participants, icsNow)
	if err != nil {
		t.Fatal(err)
	}
	checkInvitation(t, b, "REQUEST", "0")
	if !bytes.HasPrefix(b, []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:")) || !bytes.HasSuffix(b, []byte("END:VCALENDAR\r\n")) {
		t.Errorf("not a VCALENDAR with VERSION and PRODID first, CRLF lines:\n%q", b)
	}
}

func TestCalendarUpdateAndCancel(t *testing.T) {
	m := icsMeeting()
	m.Sequence = 3
	b, err := notify.Calendar(notify.MethodRequest, m, m.Participants, icsNow)
	if err != nil {
		t.Fatal(err)
	}
	checkInvitation(t, b, "REQUEST", "3")
	m.Sequence = 4
	b, err = notify.Calendar(notify.MethodCancel, m, m.Participants, icsNow)
	if err != nil {
		t.Fatal(err)
	}
	checkInvitation(t, b, "CANCEL", "4")
}

func TestCalendarWithoutTimesOrOrganizerEmail(t *testing.T) {
	m := icsMeeting()
	m.ValidUntil = nil
	m.Organizer.Email = ""
	m.URL = ""
	m.DDIPin = ""
	b, err := notify.Calendar(notify.MethodRequest, m, nil, icsNow)
	if err != nil {
		t.Fatal(err)
	}
	_, ev := parseICS(t, b)
	if got := prop(ev, ics.ComponentPropertyOrganizer); got != "mailto:none@example.org" {
		t.Errorf("ORGANIZER = %q, want Quobis's mailto:none@example.org", got)
	}
	for _, p := range []ics.ComponentProperty{ics.ComponentPropertyDtEnd, ics.ComponentPropertyUrl, ics.ComponentPropertyLocation} {
		if got := prop(ev, p); got != "<none>" {
			t.Errorf("%s = %q, want none", p, got)
		}
	}
	if got := prop(ev, ics.ComponentPropertyDescription); got != "Dial in: +34911000000" {
		t.Errorf("DESCRIPTION = %q", got)
	}
	if len(ev.Attendees()) != 0 {
		t.Errorf("attendees %v, want none", ev.Attendees())
	}

	m.ValidSince = nil
	b, err = notify.Calendar(notify.MethodRequest, m, nil, icsNow)
	if err != nil || b != nil {
		t.Errorf("a meeting without a start: %q, %v; want no calendar and no error", b, err)
	}
}

func TestCalendarRefusesBadInput(t *testing.T) {
	m := icsMeeting()
	if _, err := notify.Calendar("PUBLISH", m, nil, icsNow); err == nil {
		t.Error("method PUBLISH accepted")
	}
	bad := m
	bad.UUID = ""
	if _, err := notify.Calendar(notify.MethodRequest, bad, nil, icsNow); err == nil {
		t.Error("a meeting without uuid accepted")
	}
	if _, err := notify.Calendar(notify.MethodRequest, m, []notify.Party{{Email: "bob at example"}}, icsNow); err == nil {
		t.Error("an attendee whose email is no address accepted")
	}
}

// A long DESCRIPTION, names with commas, semicolons, colons, quotes,
// backslashes, line breaks and multi-byte letters: every line is at most
// 75 octets and valid UTF-8, and golang-ical reads back what went in.
func TestCalendarFoldsAndEscapes(t *testing.T) {
	m := icsMeeting()
	name := `Año nuevo; planning, "Q1" \ review` + "\r\nsecond line"
	m.Name = name
	m.Language = "es"
	m.URL = "https://meet.example.com/m/" + strings.Repeat("abcdefghij", 9) + "?a=1,b=2;c"
	m.Organizer.Username = `Smith, John: "boss"; ñ`
	m.DDIPin = "1,2;3"
	attendees := []notify.Party{{Name: "Müller, Jürgen; Þór", Email: "jurgen@example.com"}}
	b, err := notify.Calendar(notify.MethodRequest, m, attendees, icsNow)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(b, []byte("\r\n")) {
		t.Error("the last line does not end in CRLF")
	}
	folded := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\r\n"), "\r\n") {
		if len(l) > 75 {
			t.Errorf("line of %d octets: %q", len(l), l)
		}
		if !utf8.ValidString(l) {
			t.Errorf("line cut inside a UTF-8 sequence: %q", l)
		}
		if strings.ContainsAny(l, "\r\n") {
			t.Errorf("bare CR or LF in %q", l)
		}
		if strings.HasPrefix(l, " ") {
			folded++
		}
	}
	if folded < 3 {
		t.Errorf("only %d continuation lines; the long values were not folded:\n%s", folded, b)
	}
	_, ev := parseICS(t, b)
	wantDesc := "Únete a la reunión: " + m.URL + "\nLlama al: +34911000000, PIN: 1,2;3"
	for _, c := range []struct{ what, got, want string }{
		{"SUMMARY", prop(ev, ics.ComponentPropertySummary), `Año nuevo; planning, "Q1" \ review` + "\nsecond line"},
		{"DESCRIPTION", prop(ev, ics.ComponentPropertyDescription), wantDesc},
		{"URL", prop(ev, ics.ComponentPropertyUrl), m.URL},
		{"ORGANIZER CN", param(ev, ics.ComponentPropertyOrganizer, "CN"), `Smith, John: 'boss'; ñ`},
		{"ATTENDEE CN", strings.Join(ev.Attendees()[0].ICalParameters["CN"], "|"), "Müller, Jürgen; Þór"},
	} {
		if c.got != c.want {
			t.Errorf("%s read back as %q, want %q", c.what, c.got, c.want)
		}
	}
	// RFC 5545 3.2: a parameter value with ':', ';' or ',' is quoted,
	// never backslash-escaped.
	if unfolded := strings.ReplaceAll(string(b), "\r\n ", ""); !strings.Contains(unfolded, `ORGANIZER;CN="Smith, John: 'boss'; ñ":mailto:alice@example.com`) {
		t.Errorf("ORGANIZER's CN not quoted:\n%s", unfolded)
	}
	// Multi-byte letters where the 75th octet falls inside one.
	m.Name = strings.Repeat("ñ€", 40)
	if b, err = notify.Calendar(notify.MethodRequest, m, nil, icsNow); err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\r\n") {
		if len(l) > 75 || !utf8.ValidString(l) {
			t.Errorf("line of %d octets, valid UTF-8 %v: %q", len(l), utf8.ValidString(l), l)
		}
	}
	if _, ev := parseICS(t, b); prop(ev, ics.ComponentPropertySummary) != m.Name {
		t.Errorf("SUMMARY read back as %q", prop(ev, ics.ComponentPropertySummary))
	}
}
