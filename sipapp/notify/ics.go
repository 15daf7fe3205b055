package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// iTIP methods (RFC 5546) of the calendar an email carries.
const (
	MethodRequest = "REQUEST" // an invitation or an update (higher SEQUENCE)
	MethodCancel  = "CANCEL"  // the meeting was deleted
)

// NoOrganizerEmail is the ORGANIZER's address when the meeting's
// organiser has no email, as Quobis writes it.
const NoOrganizerEmail = "none@example.org"

// Calendar writes the iCalendar object (RFC 5545) of an iTIP message
// (RFC 5546) about meeting m: METHOD (REQUEST or CANCEL) and one VEVENT
// whose UID is the same for every message of the meeting
// ("<uuid>@webconf"), SEQUENCE m.Sequence, DTSTAMP now, DTSTART and DTEND
// from ValidSince and ValidUntil in UTC, SUMMARY the name, URL and
// LOCATION the link, DESCRIPTION the link and the dial-in number and PIN,
// ORGANIZER and an ATTENDEE per party, STATUS CONFIRMED (REQUEST) or
// CANCELLED (CANCEL). Lines end in CRLF and are folded at 75 octets.
//
// A meeting without ValidSince is open at any time: it has no event to
// schedule (a REQUEST's VEVENT needs DTSTART, RFC 5546 3.2.2), so
// Calendar returns nil and no error, and the email goes without a
// calendar. Without ValidUntil the event has no DTEND (it ends when it
// starts, RFC 5545 3.6.1).
//
// Attendees with an email are ATTENDEE;RSVP=TRUE:mailto:...; those with
// only a phone number are ATTENDEE;RSVP=FALSE:tel:... (they cannot answer
// an iTIP request); a party with neither is left out.
func Calendar(method string, m Meeting, attendees []Party, now time.Time) ([]byte, error) {
	var status string
	switch method {
	case MethodRequest:
		status = "CONFIRMED"
	case MethodCancel:
		status = "CANCELLED"
	default:
		return nil, fmt.Errorf("calendar: method %q is not %s or %s", method, MethodRequest, MethodCancel)
	}
	if m.UUID == "" {
		return nil, errors.New("calendar: the meeting has no uuid")
	}
	if m.ValidSince == nil {
		return nil, nil
	}
	if m.Sequence < 0 {
		return nil, fmt.Errorf("calendar: sequence %d is negative", m.Sequence)
	}
	var w icsWriter
	w.line("BEGIN", nil, "VCALENDAR")
	w.line("VERSION", nil, "2.0")
	w.line("PRODID", nil, "-//webconf//meetings//EN")
	w.line("CALSCALE", nil, "GREGORIAN")
	w.line("METHOD", nil, method)
	w.line("BEGIN", nil, "VEVENT")
	w.line("UID", nil, icsText(m.UUID+"@webconf"))
	w.line("SEQUENCE", nil, strconv.Itoa(m.Sequence))
	w.line("DTSTAMP", nil, icsTime(now))
	w.line("DTSTART", nil, icsTime(*m.ValidSince))
	if m.ValidUntil != nil {
		w.line("DTEND", nil, icsTime(*m.ValidUntil))
	}
	w.line("SUMMARY", nil, icsText(m.Name))
	if u := icsURI(m.URL); u != "" {
		w.line("URL", nil, u)
		w.line("LOCATION", nil, icsText(u))
	}
	if d := description(m); d != "" {
		w.line("DESCRIPTION", nil, icsText(d))
	}
	org := NoOrganizerEmail
	if m.Organizer.Email != "" {
		a, err := mail.ParseAddress(m.Organizer.Email)
		if err != nil {
			return nil, fmt.Errorf("calendar: organiser %q: email %q: %w", m.Organizer.Username, m.Organizer.Email, err)
		}
		org = a.Address
	}
	w.line("ORGANIZER", []string{"CN", m.Organizer.Username}, "mailto:"+icsURI(org))
	for _, p := range attendees {
		cn := p.Name
		switch {
		case p.Email != "":
			a, err := mail.ParseAddress(p.Email)
			if err != nil {
				return nil, fmt.Errorf("calendar: attendee %q: %w", p.Email, err)
			}
			if cn == "" {
				cn = a.Name
			}
			w.line("ATTENDEE", attendeeParams(cn, "TRUE"), "mailto:"+icsURI(a.Address))
		case p.Phone != "":
			if cn == "" {
				cn = p.Phone
			}
			w.line("ATTENDEE", attendeeParams(cn, "FALSE"), "tel:"+icsURI(strings.ReplaceAll(p.Phone, " ", "")))
		}
	}
	w.line("STATUS", nil, status)
	w.line("TRANSP", nil, "OPAQUE")
	w.line("END", nil, "VEVENT")
	w.line("END", nil, "VCALENDAR")
	return []byte(w.b.String()), nil
}

func attendeeParams(cn, rsvp string) []string {
	p := []string{"CUTYPE", "INDIVIDUAL", "ROLE", "REQ-PARTICIPANT", "PARTSTAT", "NEEDS-ACTION", "RSVP", rsvp}
	if cn != "" {
		p = append([]string{"CN", cn}, p...)
	}
	return p
}

// descriptionWords are the DESCRIPTION's words in the meeting's language
// (English for any other).
var descriptionWords = map[string][3]string{
	"en": {"Join the meeting", "Dial in", "PIN"},
	"es": {"Únete a la reunión", "Llama al", "PIN"},
	"ca": {"Uneix-te a la reunió", "Truca al", "PIN"},
}

// description: the link, and the dial-in number and PIN when the meeting
// has them, one per line.
func description(m Meeting) string {
	words, ok := descriptionWords[m.Language]
	if !ok {
		words = descriptionWords["en"]
	}
	var lines []string
	if m.URL != "" {
		lines = append(lines, words[0]+": "+m.URL)
	}
	if m.DDIExtension != "" {
		l := words[1] + ": " + m.DDIExtension
		if m.DDIPin != "" {
			l += ", " + words[2] + ": " + m.DDIPin
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}

// icsTime is a UTC DATE-TIME (RFC 5545 3.3.5, form 2).
func icsTime(t time.Time) string { return t.UTC().Format("20060102T150405Z") }

// icsText escapes a TEXT value (RFC 5545 3.3.11): backslash, semicolon
// and comma are escaped, any line break becomes \n, and other control
// characters, which TEXT cannot hold, are dropped.
func icsText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\' || r == ';' || r == ',':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n' || r == '\r':
			b.WriteString(`\n`)
		case r == '\t' || !isControl(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// icsURI is a URI or CAL-ADDRESS value: taken as it is, without the
// control characters and spaces that no URI holds.
func icsURI(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || isControl(r) {
			return -1
		}
		return r
	}, s)
}

// icsParam is a parameter value (RFC 5545 3.1, 3.2): quoted when it holds
// ':', ';' or ','; a double quote, which neither form can hold, becomes
// a single one, and control characters are dropped.
func icsParam(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r != '\t' && isControl(r):
			return -1
		}
		return r
	}, s)
	if strings.ContainsAny(s, ":;,") {
		return `"` + s + `"`
	}
	return s
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// icsWriter writes content lines (RFC 5545 3.1): name, parameters, ':'
// and the value (already escaped for its type), folded so that no line
// is longer than 75 octets without its CRLF, never inside a UTF-8
// sequence.
type icsWriter struct{ b strings.Builder }

// line writes name;k1=v1;k2=v2:value; params are pairs.
func (w *icsWriter) line(name string, params []string, value string) {
	var l strings.Builder
	l.WriteString(name)
	for i := 0; i+1 < len(params); i += 2 {
		l.WriteByte(';')
		l.WriteString(params[i])
		l.WriteByte('=')
		l.WriteString(icsParam(params[i+1]))
	}
	l.WriteByte(':')
	l.WriteString(value)
	s := l.String()
	limit := 75
	for len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		w.b.WriteString(s[:cut])
		w.b.WriteString("\r\n ")
		s = s[cut:]
		limit = 74 // the leading space counts
	}
	w.b.WriteString(s)
	w.b.WriteString("\r\n")
}
