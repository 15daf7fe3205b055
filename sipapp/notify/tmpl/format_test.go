package tmpl

import (
	"testing"
	"time"

	"github.com/mailgun/raymond/v2"

	"webconf/sipapp/notify"
)

// exec renders src as a text template of language lang, with formatDate
// and formatTime defaulting to loc.
func exec(t *testing.T, lang string, loc *time.Location, src string, m notify.Meeting) string {
	t.Helper()
	tp, err := raymond.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	tp.RegisterHelpers(helpers(lang, &Set{loc: loc}, false))
	out, err := tp.Exec(data(notify.Invitation, notify.Party{}, m, false))
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return out
}

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func TestFormatDateTime(t *testing.T) {
	const long = `{{formatDate meeting.validSince weekday="long" day="numeric" month="long" year="numeric" timeZone="Europe/Madrid"}}`
	for _, c := range []struct {
		lang, when, src, want string
	}{
		{"en", "2026-12-05T08:00:00Z", long, "Saturday, December 5, 2026"},
		{"es", "2026-12-05T08:00:00Z", long, "sábado, 5 de diciembre de 2026"},
		{"ca", "2026-12-05T08:00:00Z", long, "dissabte, 5 de desembre de 2026"},
		{"es-MX", "2026-12-05T08:00:00Z", long, "sábado, 5 de diciembre de 2026"},
		{"pt", "2026-12-05T08:00:00Z", long, "Saturday, December 5, 2026"}, // no tables: English
		// The day in Madrid, not in UTC.
		{"en", "2026-12-05T23:30:00Z", long, "Sunday, December 6, 2026"},
		// Catalan: d' before a vowel.
		{"ca", "2026-04-01T10:00:00Z", long, "dimecres, 1 d'abril de 2026"},
		{"ca", "2026-08-15T10:00:00Z", `{{formatDate meeting.validSince day="numeric" month="long"}}`, "15 d'agost"},
		{"ca", "2026-10-12T10:00:00Z", `{{formatDate meeting.validSince day="numeric" month="long" year="numeric"}}`, "12 d'octubre de 2026"},
		{"ca", "2026-03-12T10:00:00Z", `{{formatDate meeting.validSince day="numeric" month="long"}}`, "12 de març"},
		{"ca", "2026-04-12T10:00:00Z", `{{formatDate meeting.validSince month="long" year="numeric"}}`, "abril de 2026"},
		{"ca", "2026-04-12T10:00:00Z", `{{formatDate meeting.validSince day="numeric" month="short" year="numeric"}}`, "12 d'abr. 2026"},
		{"ca", "2026-12-12T10:00:00Z", `{{formatDate meeting.validSince weekday="short" day="numeric" month="short"}}`, "ds., 12 de des."},
		{"es", "2026-12-05T08:00:00Z", `{{formatDate meeting.validSince day="numeric" month="short" year="numeric"}}`, "5 dic 2026"},
		{"es", "2026-12-05T08:00:00Z", `{{formatDate meeting.validSince month="long" year="numeric"}}`, "diciembre de 2026"},
		{"en", "2026-12-05T08:00:00Z", `{{formatDate meeting.validSince weekday="short" month="short" day="numeric"}}`, "Sat, Dec 5"},
		{"en", "2026-12-05T08:00:00Z", `{{formatDate meeting.validSince month="long" year="numeric"}}`, "December 2026"},
		{"en", "2026-12-05T08:00:00Z", `{{formatDate meeting.validSince month="narrow"}}`, "D"},
		{"en", "2026-12-05T08:00:00Z", `{{formatDate meeting.validSince weekday="narrow"}}`, "S"},
		{"es", "2026-12-03T08:00:00Z", `{{formatDate meeting.validSince weekday="narrow"}}`, "J"},
		// Numeric dates: month/day/year in en, day/month/year in es and ca.
		{"en", "2026-03-05T08:00:00Z", `{{formatDate meeting.validSince}}`, "3/5/2026"},
		{"es", "2026-03-05T08:00:00Z", `{{formatDate meeting.validSince}}`, "5/3/2026"},
		{"ca", "2026-03-05T08:00:00Z", `{{formatDate meeting.validSince day="2-digit" month="2-digit" year="2-digit"}}`, "05/03/26"},
		// Times.
		{"en", "2026-12-05T09:00:00Z", `{{formatTime meeting.validSince hour="2-digit" minute="2-digit" hour12=false}}`, "09:00"},
		{"es", "2026-12-05T09:00:00Z", `{{formatTime meeting.validSince hour="2-digit" minute="2-digit" hour12=false}}`, "09:00"},
		{"en", "2026-12-05T09:05:00Z", `{{formatTime meeting.validSince}}`, "9:05 AM"},
		{"en", "2026-12-05T12:30:00Z", `{{formatTime meeting.validSince}}`, "12:30 PM"},
		{"en", "2026-12-05T00:30:00Z", `{{formatTime meeting.validSince}}`, "12:30 AM"},
		{"es", "2026-12-05T21:05:00Z", `{{formatTime meeting.validSince}}`, "21:05"},
		{"ca", "2026-12-05T21:05:00Z", `{{formatTime meeting.validSince hour12=true}}`, "9:05 p. m."},
		{"en", "2026-12-05T21:05:00Z", `{{formatTime meeting.validSince hour12="false"}}`, "21:05"},
		{"en", "2026-12-05T08:00:00Z", `{{formatTime meeting.validSince hour="numeric" minute="2-digit" timeZone="Europe/Madrid" timeZoneName="short"}}`, "9:00 AM CET"},
		{"es", "2026-07-05T08:00:00Z", `{{formatTime meeting.validSince timeZone="Europe/Madrid" timeZoneName="short"}}`, "10:00 CEST"},
		{"es", "2026-07-05T08:00:00Z", `{{formatTime meeting.validSince timeZone="Asia/Kolkata" timeZoneName="shortOffset"}}`, "13:30 GMT+5:30"},
		{"es", "2026-07-05T08:00:00Z", `{{formatTime meeting.validSince timeZone="America/Sao_Paulo" timeZoneName="short"}}`, "5:00 GMT-3"},
		{"es", "2026-07-05T08:00:00Z", `{{formatTime meeting.validSince timeZone="America/Sao_Paulo" timeZoneName="longOffset"}}`, "5:00 GMT-03:00"},
		{"ca", "2026-07-05T08:00:00Z", `{{formatTime meeting.validSince timeZone="Europe/Madrid" timeZoneName="long"}}`, "10:00 Europe/Madrid"},
		{"en", "2026-07-05T08:00:00Z", `{{formatTime meeting.validSince timeZoneName="short"}}`, "8:00 AM UTC"},
		// Date and time together.
		{"es", "2026-12-05T08:00:00Z", `{{formatDate meeting.validSince weekday="long" day="numeric" month="long" hour="numeric" minute="2-digit" timeZone="Europe/Madrid"}}`, "sábado, 5 de diciembre, 9:00"},
		// Epoch milliseconds and no date.
		{"en", "", `{{formatDate 1796457600000 timeZone="UTC"}}|{{formatDate meeting.validSince}}|{{formatTime meeting.validUntil}}`, "12/5/2026||"},
	} {
		m := notify.Meeting{}
		if c.when != "" {
			m.ValidSince = at(c.when)
		}
		if got := exec(t, c.lang, time.UTC, c.src, m); got != c.want {
			t.Errorf("%s %s %s:\n got %q\nwant %q", c.lang, c.when, c.src, got, c.want)
		}
	}
}

func TestFormatBadOptions(t *testing.T) {
	for _, src := range []string{
		`{{formatDate meeting.validSince timeZone="Mars/Olympus"}}`,
		`{{formatDate meeting.validSince month="longest"}}`,
		`{{formatDate meeting.validSince era="long"}}`,
		`{{formatTime meeting.validSince hour12="maybe"}}`,
		`{{formatDate "yesterday"}}`,
	} {
		tp := raymond.MustParse(src)
		tp.RegisterHelpers(helpers("en", &Set{loc: time.UTC}, false))
		if out, err := tp.Exec(data(notify.Invitation, notify.Party{}, notify.Meeting{ValidSince: at("2026-12-05T08:00:00Z")}, false)); err == nil {
			t.Errorf("%s: no error, rendered %q", src, out)
		}
	}
}

func TestSMSSize(t *testing.T) {
	gsm160 := ""
	for len(gsm160) < 160 {
		gsm160 += "0123456789"
	}
	for _, c := range []struct {
		text          string
		length, limit int
	}{
		{"hello", 5, 160},
		{"Convocatòria: é ñ ü à Ç @£$¥\n", 29, 160},
		{"[x]", 5, 160}, // [ and ] are in the extension table: two septets each
		{"10 €", 5, 160},
		{gsm160, 160, 160},
		{"Reunión", 7, 70},      // ó is not GSM-7
		{"març", 4, 70},         // nor lowercase ç
		{"cancel·lada", 11, 70}, // nor the middle dot
		{"«x»", 3, 70},          // nor guillemets
		{"hi 😀", 5, 70},         // a surrogate pair is two UCS-2 units
		{"[x] ó", 5, 70},        // in UCS-2 brackets are one unit
		{"", 0, 160},
	} {
		if n, limit := SMSSize(c.text); n != c.length || limit != c.limit {
			t.Errorf("SMSSize(%q) = %d, %d; want %d, %d", c.text, n, limit, c.length, c.limit)
		}
	}
}
