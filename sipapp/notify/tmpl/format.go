package tmpl

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // timeZone="Europe/Madrid" works on hosts without a zoneinfo database
)

// locale holds the names and orders formatDate and formatTime need for one
// language. The tables follow what JS Intl.DateTimeFormat (ICU/CLDR)
// prints, with plain spaces and the ASCII apostrophe.
type locale struct {
	months, monthsShort, monthsNarrow       [12]string
	weekdays, weekdaysShort, weekdaysNarrow [7]string // Sunday first
	hour12                                  bool      // the language's default clock
	am, pm                                  string
}

var locales = map[string]*locale{
	"en": {
		months:         [12]string{"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
		monthsShort:    [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"},
		monthsNarrow:   [12]string{"J", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D"},
		weekdays:       [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		weekdaysShort:  [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"},
		weekdaysNarrow: [7]string{"S", "M", "T", "W", "T", "F", "S"},
		hour12:         true, am: "AM", pm: "PM",
	},
	"es": {
		months:         [12]string{"enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre"},
		monthsShort:    [12]string{"ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"},
		monthsNarrow:   [12]string{"E", "F", "M", "A", "M", "J", "J", "A", "S", "O", "N", "D"},
		weekdays:       [7]string{"domingo", "lunes", "martes", "miércoles", "jueves", "viernes", "sábado"},
		weekdaysShort:  [7]string{"dom", "lun", "mar", "mié", "jue", "vie", "sáb"},
		weekdaysNarrow: [7]string{"D", "L", "M", "X", "J", "V", "S"},
		am:             "a. m.", pm: "p. m.",
	},
	"ca": {
		months:         [12]string{"gener", "febrer", "març", "abril", "maig", "juny", "juliol", "agost", "setembre", "octubre", "novembre", "desembre"},
		monthsShort:    [12]string{"gen.", "febr.", "març", "abr.", "maig", "juny", "jul.", "ag.", "set.", "oct.", "nov.", "des."},
		monthsNarrow:   [12]string{"GN", "FB", "MÇ", "AB", "MG", "JN", "JL", "AG", "ST", "OC", "NV", "DS"},
		weekdays:       [7]string{"diumenge", "dilluns", "dimarts", "dimecres", "dijous", "divendres", "dissabte"},
		weekdaysShort:  [7]string{"dg.", "dl.", "dt.", "dc.", "dj.", "dv.", "ds."},
		weekdaysNarrow: [7]string{"dg", "dl", "dt", "dc", "dj", "dv", "ds"},
		am:             "a. m.", pm: "p. m.",
	},
}

// localeFor returns the tables of a language tag (its primary subtag:
// es-MX is es); English for a language we have no tables for.
func localeFor(lang string) (string, *locale) {
	base := strings.ToLower(lang)
	if i := strings.IndexAny(base, "-_"); i >= 0 {
		base = base[:i]
	}
	if l, ok := locales[base]; ok {
		return base, l
	}
	return "en", locales["en"]
}

// dateOptions are the Intl.DateTimeFormat options the helpers take.
type dateOptions struct {
	weekday, year, month, day, hour, minute string
	hour12                                  *bool
	timeZoneName                            string
	loc                                     *time.Location
}

var optionValues = map[string][]string{
	"weekday":      {"long", "short", "narrow"},
	"year":         {"numeric", "2-digit"},
	"month":        {"numeric", "2-digit", "long", "short", "narrow"},
	"day":          {"numeric", "2-digit"},
	"hour":         {"numeric", "2-digit"},
	"minute":       {"numeric", "2-digit"},
	"timeZoneName": {"short", "long", "shortOffset", "longOffset"},
}

// parseOptions reads a helper's hash; def is the location used without
// timeZone. An unknown option or value is an error (Load renders every
// template once, so it stops start-up).
func parseOptions(hash map[string]any, def *time.Location) (dateOptions, error) {
	o := dateOptions{loc: def}
	for k, v := range hash {
		s := fmt.Sprint(v)
		switch k {
		case "hour12":
			b, err := strconv.ParseBool(s)
			if err != nil {
				return o, fmt.Errorf("hour12=%q: want true or false", s)
			}
			o.hour12 = &b
			continue
		case "timeZone":
			loc, err := time.LoadLocation(s)
			if err != nil || s == "" || s == "Local" {
				return o, fmt.Errorf("timeZone=%q: not an IANA time zone", s)
			}
			o.loc = loc
			continue
		}
		allowed, ok := optionValues[k]
		if !ok {
			return o, fmt.Errorf("unknown option %s", k)
		}
		valid := false
		for _, a := range allowed {
			valid = valid || a == s
		}
		if !valid {
			return o, fmt.Errorf("%s=%q: want one of %s", k, s, strings.Join(allowed, ", "))
		}
		switch k {
		case "weekday":
			o.weekday = s
		case "year":
			o.year = s
		case "month":
			o.month = s
		case "day":
			o.day = s
		case "hour":
			o.hour = s
		case "minute":
			o.minute = s
		case "timeZoneName":
			o.timeZoneName = s
		}
	}
	return o, nil
}

func num(n int, style string) string {
	if style == "2-digit" {
		return fmt.Sprintf("%02d", n%100)
	}
	return strconv.Itoa(n)
}

// format renders t as Intl.DateTimeFormat would in language lang.
func format(t time.Time, lang string, o dateOptions) string {
	base, l := localeFor(lang)
	t = t.In(o.loc)
	date := formatDatePart(t, base, l, o)
	clock := formatTimePart(t, l, o)
	if o.timeZoneName != "" {
		clock = strings.TrimSpace(clock + " " + zoneName(t, o.timeZoneName))
	}
	switch {
	case date == "":
		return clock
	case clock == "":
		return date
	}
	return date + ", " + clock
}

func formatDatePart(t time.Time, base string, l *locale, o dateOptions) string {
	var d, m, y, wd string
	if o.day != "" {
		d = num(t.Day(), o.day)
	}
	if o.year != "" {
		y = num(t.Year(), o.year)
	}
	if o.weekday != "" {
		switch o.weekday {
		case "long":
			wd = l.weekdays[t.Weekday()]
		case "short":
			wd = l.weekdaysShort[t.Weekday()]
		default:
			wd = l.weekdaysNarrow[t.Weekday()]
		}
	}
	var rest string
	switch o.month {
	case "":
		rest = join(" ", d, y)
	case "numeric", "2-digit":
		m = num(int(t.Month()), o.month)
		if base == "en" {
			rest = join("/", m, d, y)
		} else {
			rest = join("/", d, m, y)
		}
	default:
		switch o.month {
		case "long":
			m = l.months[t.Month()-1]
		case "short":
			m = l.monthsShort[t.Month()-1]
		default:
			m = l.monthsNarrow[t.Month()-1]
		}
		rest = textualDate(base, o.month, d, m, y)
	}
	if wd == "" {
		return rest
	}
	if rest == "" {
		return wd
	}
	return wd + ", " + rest
}

// textualDate joins a day, a month name and a year in the order and with
// the words of the language: "December 5, 2026", "5 de diciembre de 2026",
// "5 d'abril de 2026"; abbreviated months go without "de" in es
// ("5 dic 2026") and keep it before the month in ca ("5 de des. 2026").
func textualDate(base, style, d, m, y string) string {
	switch base {
	case "es":
		if style != "long" {
			return join(" ", d, m, y)
		}
		return join(" de ", d, m, y)
	case "ca":
		s := m
		if d != "" {
			s = d + " " + catalanDe(m) + m
		}
		if y != "" {
			if style == "long" {
				s += " de " + y
			} else {
				s += " " + y
			}
		}
		return s
	}
	s := join(" ", m, d)
	if y == "" {
		return s
	}
	if d == "" {
		return s + " " + y
	}
	return s + ", " + y
}

// catalanDe is the preposition before a month name: "d'" before a vowel
// (d'abril, d'agost, d'octubre), "de " otherwise.
func catalanDe(month string) string {
	if month != "" && strings.ContainsRune("aeiouàèéíòóúAEIOU", []rune(month)[0]) {
		return "d'"
	}
	return "de "
}

func formatTimePart(t time.Time, l *locale, o dateOptions) string {
	if o.hour == "" && o.minute == "" {
		return ""
	}
	h12 := l.hour12
	if o.hour12 != nil {
		h12 = *o.hour12
	}
	mm := fmt.Sprintf("%02d", t.Minute())
	if o.hour == "" {
		return num(t.Minute(), o.minute)
	}
	h := t.Hour()
	if h12 {
		h = h % 12
		if h == 0 {
			h = 12
		}
	}
	s := num(h, o.hour)
	if o.minute != "" {
		s += ":" + mm
	}
	if h12 {
		if t.Hour() < 12 {
			s += " " + l.am
		} else {
			s += " " + l.pm
		}
	}
	return s
}

// zoneName is timeZoneName: short is the zone's abbreviation (CET, UTC;
// GMT+3 when the zone has none), long its IANA name, shortOffset GMT+1
// and longOffset GMT+01:00.
func zoneName(t time.Time, style string) string {
	abbr, off := t.Zone()
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	hh, mm := off/3600, off%3600/60
	shortOff := "GMT"
	if off != 0 {
		shortOff += sign + strconv.Itoa(hh)
		if mm != 0 {
			shortOff += fmt.Sprintf(":%02d", mm)
		}
	}
	switch style {
	case "long":
		return t.Location().String()
	case "shortOffset":
		return shortOff
	case "longOffset":
		if off == 0 {
			return "GMT"
		}
		return fmt.Sprintf("GMT%s%02d:%02d", sign, hh, mm)
	}
	if abbr == "" || abbr[0] == '+' || abbr[0] == '-' {
		return shortOff
	}
	return abbr
}

func join(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}

// toTime reads a helper's date argument: the RFC 3339 string the data
// carries, a time.Time, or epoch milliseconds (JS Date.getTime()). Empty
// or null is the zero time and prints nothing.
func toTime(v any) (time.Time, bool, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, false, nil
	case time.Time:
		return x, !x.IsZero(), nil
	case *time.Time:
		if x == nil {
			return time.Time{}, false, nil
		}
		return *x, true, nil
	case int:
		return time.UnixMilli(int64(x)), true, nil
	case int64:
		return time.UnixMilli(x), true, nil
	case float64:
		return time.UnixMilli(int64(x)), true, nil
	}
	s := fmt.Sprint(v)
	if s == "" {
		return time.Time{}, false, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), true, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("%q is not a date (RFC 3339 or epoch milliseconds)", s)
	}
	return t, true, nil
}
