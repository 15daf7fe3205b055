// Package tmpl renders meeting invitations, updates, cancellations and
// reminders from Handlebars templates (mailgun/raymond), as Quobis's
// meetings service does: templatePath/email/<lang>/{from,subject,text,html}.hbs
// and templatePath/sms/<lang>/{from,text}.hbs, with built-in defaults for
// en, es and ca when no templatePath is given.
//
// Every template is parsed and rendered once with sample meetings at
// Load, so a broken template stops start-up naming the file (and the line
// of a syntax error). A Set is safe for concurrent use.
package tmpl

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mailgun/raymond/v2"

	"webconf/sipapp/notify"
)

//go:embed defaults
var builtin embed.FS

// A Set holds the parsed templates of every configured language.
type Set struct {
	langs []string // the first is the fallback
	email map[string]*emailFiles
	sms   map[string]*smsFiles
	loc   *time.Location // formatDate/formatTime without timeZone
}

// file is one parsed template; name is how errors and warnings call it
// (its path, or "builtin:<path>" for a default).
type file struct {
	name string
	t    *raymond.Template
	html bool // html.hbs: {{ }} escapes
}

type emailFiles struct{ from, subject, text, html *file } // from and html may be nil
type smsFiles struct{ from, text *file }                  // from may be nil

// checkedFields are the data fields a text template is expected to use;
// Load logs Quobis's "Field <field> hasn't been used in <tpl>" for each one
// that the email text and html and the SMS text do not reference.
var checkedFields = []string{"meeting.name", "meeting.url", "meeting.validSince"}

var kinds = []notify.Kind{notify.Invitation, notify.Update, notify.Cancellation, notify.Reminder}

// Load parses the templates of every language in langs from dir, or the
// built-in defaults (en, es, ca) when dir is "". A dir that does not
// exist is an error wrapping fs.ErrNotExist. Each language needs
// email/<lang>/subject.hbs and text.hbs (from.hbs and html.hbs are
// optional: no From means the mailer's own, no html a text-only email)
// and sms/<lang>/text.hbs (from.hbs optional). A missing folder or file,
// a syntax error (reported as file:line) or a template that fails to
// render a sample meeting is an error. Warnings go to log.
func Load(dir string, langs []string, log *slog.Logger) (*Set, error) {
	if len(langs) == 0 {
		return nil, errors.New("templates: no language configured")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var fsys fs.FS
	name := func(rel string) string { return "builtin:" + rel }
	if dir == "" {
		sub, err := fs.Sub(builtin, "defaults")
		if err != nil {
			return nil, fmt.Errorf("templates: built-in defaults: %w", err)
		}
		fsys = sub
	} else {
		fi, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("templates: templatePath: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("templates: templatePath %s is not a folder", dir)
		}
		fsys = os.DirFS(dir)
		name = func(rel string) string { return filepath.Join(dir, filepath.FromSlash(rel)) }
	}
	s := &Set{langs: langs, email: map[string]*emailFiles{}, sms: map[string]*smsFiles{}, loc: time.Local}
	for _, lang := range langs {
		if lang == "" || !fs.ValidPath(lang) || strings.Contains(lang, "/") {
			return nil, fmt.Errorf("templates: %q is not a language", lang)
		}
		for _, mech := range []string{"email", "sms"} {
			folder := mech + "/" + lang
			if fi, err := fs.Stat(fsys, folder); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("templates: language %s has no %s templates: folder %s is missing", lang, mech, name(folder))
			}
		}
		parse := func(rel string, required bool) (*file, error) {
			src, err := fs.ReadFile(fsys, rel)
			if errors.Is(err, fs.ErrNotExist) && !required {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("templates: %s: %w", name(rel), err)
			}
			t, err := raymond.Parse(string(src))
			if err != nil {
				return nil, fmt.Errorf("templates: %s", syntaxError(name(rel), err))
			}
			html := path.Base(rel) == "html.hbs"
			t.RegisterHelpers(helpers(lang, s, html))
			return &file{name: name(rel), t: t, html: html}, nil
		}
		var e emailFiles
		var m smsFiles
		var err error
		for _, f := range []struct {
			dst      **file
			rel      string
			required bool
		}{
			{&e.from, "email/" + lang + "/from.hbs", false},
			{&e.subject, "email/" + lang + "/subject.hbs", true},
			{&e.text, "email/" + lang + "/text.hbs", true},
			{&e.html, "email/" + lang + "/html.hbs", false},
			{&m.from, "sms/" + lang + "/from.hbs", false},
			{&m.text, "sms/" + lang + "/text.hbs", true},
		} {
			if *f.dst, err = parse(f.rel, f.required); err != nil {
				return nil, err
			}
		}
		s.email[lang], s.sms[lang] = &e, &m
	}
	if err := s.check(log); err != nil {
		return nil, err
	}
	return s, nil
}

// DefaultPath is Quobis's (and [meetings]') default templatePath.
const DefaultPath = "meetings/tpl"

// Open loads the templates of [meetings] templatePath: "" means the
// built-in defaults; a relative path is taken from configDir (the
// config file's folder; Quobis's is relative to config/). The default
// DefaultPath falls back to the built-in defaults, with an info log, when
// that folder does not exist; any other templatePath that does not exist
// stops start-up (a typo must not send the built-in texts).
func Open(templatePath, configDir string, langs []string, log *slog.Logger) (*Set, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if templatePath == "" {
		return Load("", langs, log)
	}
	dir := templatePath
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(configDir, dir)
	}
	if filepath.Clean(templatePath) == filepath.FromSlash(DefaultPath) {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			log.Info("templates: " + dir + " does not exist, using the built-in templates")
			return Load("", langs, log)
		}
	}
	return Load(dir, langs, log)
}

var parseErrorRE = regexp.MustCompile(`(?s)^Parse error on line (\d+):\n(.*)$`)

// syntaxError turns raymond's "Parse error on line N:\n<msg>" into
// "<file>:N: <msg>".
func syntaxError(name string, err error) string {
	m := parseErrorRE.FindStringSubmatch(err.Error())
	if m == nil {
		return name + ": " + err.Error()
	}
	return fmt.Sprintf("%s:%s: syntax error: %s", name, m[1], strings.Join(strings.Fields(m[2]), " "))
}

// check renders every template of every language with a full and a
// minimal sample meeting for every kind (so a helper misused, such as a
// bad timeZone, stops start-up), then logs Quobis's warnings: an SMS text
// longer than one SMS with the full sample, and a checked field a text
// template never references.
func (s *Set) check(log *slog.Logger) error {
	for _, lang := range s.langs {
		full, minimal := sampleMeeting(lang)
		party := notify.Party{Name: "Alex Smith", Email: "alex@example.com", Phone: "+34600000002"}
		longest, longestLimit := 0, 0
		e, m := s.email[lang], s.sms[lang]
		for _, k := range kinds {
			for _, mt := range []notify.Meeting{full, minimal} {
				for _, f := range []*file{e.from, e.subject, e.text, e.html, m.from, m.text} {
					if _, err := s.render(f, k, party, mt); err != nil {
						return err
					}
				}
			}
			text, _ := s.render(m.text, k, party, full)
			if n, limit := SMSSize(strings.TrimSpace(text)); n > limit && n-limit > longest-longestLimit {
				longest, longestLimit = n, limit
			}
		}
		if longest > 0 {
			log.Warn(fmt.Sprintf("The sms template %s is too large. It will be sent several SMS by meeting", m.text.name),
				"length", longest, "limit", longestLimit)
		}
		for _, f := range []*file{e.text, e.html, m.text} {
			if f == nil {
				continue
			}
			used := usedFields(f.t)
			for _, field := range checkedFields {
				if !used[field] {
					log.Warn(fmt.Sprintf("Field %s hasn't been used in %s", field, f.name))
				}
			}
		}
	}
	return nil
}

// usedFields are the data paths a template references (meeting.url,
// including those inside #with and #each blocks and helper arguments).
func usedFields(t *raymond.Template) map[string]bool {
	vars, err := t.ExtractTemplateVars()
	used := map[string]bool{}
	if err != nil {
		return used
	}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			p := prefix + k
			used[p] = true
			if sub, ok := v.(map[string]any); ok {
				walk(p+".", sub)
			}
		}
	}
	walk("", vars)
	return used
}

func sampleMeeting(lang string) (full, minimal notify.Meeting) {
	since := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	until := since.Add(time.Hour)
	org := notify.User{UUID: "9d4c1b2a-0000-4000-8000-000000000001", Username: "jdoe", Email: "jdoe@example.com", MobilePhone: "+34600000001", Alias: "jdoe"}
	full = notify.Meeting{
		UUID: "6f1c2a3e-8b4d-4c5e-9f60-7a8b9c0d1e2f", Name: "Project review", Language: lang,
		URL:        "https://meet.example.com/m/6f1c2a3e-8b4d-4c5e-9f60-7a8b9c0d1e2f",
		ValidSince: &since, ValidUntil: &until, Organizer: org, Owners: []notify.User{org},
		Participants: []notify.Party{{Name: "Alex Smith", Email: "alex@example.com", Phone: "+34600000002"}},
		DDIExtension: "+34910000000", DDIPin: "123456",
	}
	minimal = notify.Meeting{UUID: full.UUID, Name: full.Name, Language: lang}
	return full, minimal
}

// lang is the language of the templates a meeting gets: its own when
// configured, else the first configured one.
func (s *Set) lang(l string) string {
	for _, c := range s.langs {
		if c == l {
			return l
		}
	}
	return s.langs[0]
}

// Email renders the email of kind k to party about m in the meeting's
// language (the first configured one when m.Language is not configured).
// from is "" when the language has no from.hbs (the mailer's own From
// then), html "" when it has no html.hbs. from and subject are one line
// (whitespace collapsed); text and html end with a newline.
func (s *Set) Email(k notify.Kind, lang string, party notify.Party, m notify.Meeting) (from, subject, text, html string, err error) {
	e := s.email[s.lang(lang)]
	if from, err = s.render(e.from, k, party, m); err != nil {
		return "", "", "", "", err
	}
	if subject, err = s.render(e.subject, k, party, m); err != nil {
		return "", "", "", "", err
	}
	if text, err = s.render(e.text, k, party, m); err != nil {
		return "", "", "", "", err
	}
	if html, err = s.render(e.html, k, party, m); err != nil {
		return "", "", "", "", err
	}
	return oneLine(from), oneLine(subject), body(text), body(html), nil
}

// SMS renders the SMS of kind k to party about m, like Email; from is ""
// without from.hbs (the gateway's own sender then). The text is trimmed;
// SMSSize tells how many characters it counts.
func (s *Set) SMS(k notify.Kind, lang string, party notify.Party, m notify.Meeting) (from, text string, err error) {
	t := s.sms[s.lang(lang)]
	if from, err = s.render(t.from, k, party, m); err != nil {
		return "", "", err
	}
	if text, err = s.render(t.text, k, party, m); err != nil {
		return "", "", err
	}
	return oneLine(from), strings.TrimSpace(text), nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func body(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return s + "\n"
}

func (s *Set) render(f *file, k notify.Kind, party notify.Party, m notify.Meeting) (string, error) {
	if f == nil {
		return "", nil
	}
	valid := false
	for _, c := range kinds {
		valid = valid || c == k
	}
	if !valid {
		return "", fmt.Errorf("templates: unknown message kind %q", k)
	}
	out, err := f.t.Exec(data(k, party, m, f.html))
	if err != nil {
		return "", fmt.Errorf("templates: %s: %w", f.name, err)
	}
	return out, nil
}

// data is what a template sees (Quobis's names). In a text template
// (everything but html.hbs) values are not HTML-escaped: strings go in as
// raymond.SafeString; in html.hbs {{ }} escapes them.
func data(k notify.Kind, party notify.Party, m notify.Meeting, html bool) map[string]any {
	str := func(v string) any {
		if html {
			return v
		}
		return raymond.SafeString(v)
	}
	date := func(t *time.Time) any {
		if t == nil {
			return nil
		}
		return str(t.UTC().Format(time.RFC3339))
	}
	user := func(u notify.User) map[string]any {
		return map[string]any{"username": str(u.Username), "email": str(u.Email), "mobilePhone": str(u.MobilePhone), "alias": str(u.Alias)}
	}
	p := func(p notify.Party) map[string]any {
		return map[string]any{"name": str(p.Name), "email": str(p.Email), "phone": str(p.Phone)}
	}
	users := make([]map[string]any, 0, len(m.Owners))
	for _, u := range m.Owners {
		users = append(users, user(u))
	}
	parts := make([]map[string]any, 0, len(m.Participants))
	for _, x := range m.Participants {
		parts = append(parts, p(x))
	}
	return map[string]any{
		"kind":  str(string(k)),
		"party": p(party),
		"meeting": map[string]any{
			"id":           str(m.UUID),
			"name":         str(m.Name),
			"language":     str(m.Language),
			"url":          str(m.URL),
			"validSince":   date(m.ValidSince),
			"validUntil":   date(m.ValidUntil),
			"user":         user(m.Organizer),
			"users":        users,
			"participants": parts,
			"ddi":          map[string]any{"extension": str(m.DDIExtension), "pin": str(m.DDIPin)},
		},
	}
}

// helpers are the template's own: formatDate and formatTime in the
// template's language, and equal with an {{else}} (raymond's has none).
func helpers(lang string, s *Set, html bool) map[string]any {
	out := func(v string) any {
		if html {
			return v // escaped by {{ }}
		}
		return raymond.SafeString(v)
	}
	fmtHelper := func(timeDefaults bool) func(any, *raymond.Options) any {
		return func(v any, options *raymond.Options) any {
			t, ok, err := toTime(v)
			if err != nil {
				panic(err)
			}
			o, err := parseOptions(options.Hash(), s.loc)
			if err != nil {
				panic(err)
			}
			if !ok {
				return out("")
			}
			if timeDefaults && o.hour == "" && o.minute == "" {
				o.hour, o.minute = "numeric", "2-digit"
			}
			if !timeDefaults && o.weekday == "" && o.year == "" && o.month == "" && o.day == "" && o.hour == "" && o.minute == "" {
				o.year, o.month, o.day = "numeric", "numeric", "numeric"
			}
			return out(format(t, lang, o))
		}
	}
	return map[string]any{
		"formatDate": fmtHelper(false),
		"formatTime": fmtHelper(true),
		"equal": func(a, b any, options *raymond.Options) any {
			if raymond.Str(a) == raymond.Str(b) {
				return options.Fn()
			}
			return options.Inverse()
		},
	}
}
