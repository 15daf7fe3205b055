package tmpl

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"webconf/sipapp/notify"
)

// recorder is a slog.Handler that keeps the warnings' messages.
type recorder struct {
	mu   sync.Mutex
	msgs []string
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec.Level.String()+" "+rec.Message)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msgs {
		if m == "WARN "+msg {
			return true
		}
	}
	return false
}

func madrid(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

var langs = []string{"en", "es", "ca"}

// TestDefaultsRender renders every built-in template in every language
// for every kind with a full and a minimal meeting.
func TestDefaultsRender(t *testing.T) {
	rec := &recorder{}
	s, err := Load("", langs, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 0 {
		t.Errorf("the defaults log warnings: %q", rec.msgs)
	}
	s.loc = madrid(t)
	party := notify.Party{Name: "Alex Smith", Email: "alex@example.com", Phone: "+34600000002"}
	starts := map[string]string{
		"en": "Starts: Saturday, December 5, 2026, 9:00 AM CET",
		"es": "Empieza: sábado, 5 de diciembre de 2026, 9:00 CET",
		"ca": "Comença: dissabte, 5 de desembre de 2026, 9:00 CET",
	}
	ends := map[string]string{
		"en": "Ends: Saturday, December 5, 2026, 10:00 AM CET",
		"es": "Termina: sábado, 5 de diciembre de 2026, 10:00 CET",
		"ca": "Acaba: dissabte, 5 de desembre de 2026, 10:00 CET",
	}
	smsDate := map[string]string{"en": "Dec 5, 9:00 AM CET", "es": "5 de diciembre, 9:00 CET", "ca": "5/12/2026, 9:00 CET"}
	subjects := map[string]map[notify.Kind]string{
		"en": {notify.Invitation: "Invitation: Project review", notify.Update: "Updated: Project review", notify.Cancellation: "Cancelled: Project review", notify.Reminder: "Reminder: Project review"},
		"es": {notify.Invitation: "Invitación: Project review", notify.Update: "Reunión actualizada: Project review", notify.Cancellation: "Reunión cancelada: Project review", notify.Reminder: "Recordatorio: Project review"},
		"ca": {notify.Invitation: "Invitació: Project review", notify.Update: "Reunió actualitzada: Project review", notify.Cancellation: "Reunió cancel·lada: Project review", notify.Reminder: "Recordatori: Project review"},
	}
	intro := map[string]map[notify.Kind]string{
		"en": {notify.Invitation: `You are invited to the meeting "Project review" by jdoe.`, notify.Update: `The meeting "Project review" has been updated.`, notify.Cancellation: `The meeting "Project review" has been cancelled.`, notify.Reminder: `Reminder: the meeting "Project review" starts soon.`},
		"es": {notify.Invitation: "jdoe te invita a la reunión «Project review».", notify.Update: "Se ha actualizado la reunión «Project review».", notify.Cancellation: "Se ha cancelado la reunión «Project review».", notify.Reminder: "Recordatorio: la reunión «Project review» empieza pronto."},
		"ca": {notify.Invitation: "jdoe et convida a la reunió «Project review».", notify.Update: "S'ha actualitzat la reunió «Project review».", notify.Cancellation: "S'ha cancel·lat la reunió «Project review».", notify.Reminder: "Recordatori: la reunió «Project review» comença aviat."},
	}
	dial := map[string]string{
		"en": "By phone: call +34910000000 and enter the PIN 123456",
		"es": "Por teléfono: llama al +34910000000 e introduce el PIN 123456",
		"ca": "Per telèfon: truca al +34910000000 i introdueix el PIN 123456",
	}
	leftovers := []string{"{{", "}}", "\n\n\n", "  ", "&amp;", "&#", "&apos;", "<no value>"}
	for _, lang := range langs {
		full, minimal := sampleMeeting(lang)
		for _, k := range kinds {
			name := lang + "/" + string(k)
			from, subject, text, html, err := s.Email(k, lang, party, full)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			smsFrom, sms, err := s.SMS(k, lang, party, full)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if from != "" || smsFrom != "" {
				t.Errorf("%s: the defaults have no from.hbs, got %q, %q", name, from, smsFrom)
			}
			if subject != subjects[lang][k] {
				t.Errorf("%s: subject %q, want %q", name, subject, subjects[lang][k])
			}
			for _, want := range []string{intro[lang][k], starts[lang], ends[lang]} {
				if !strings.Contains(text, want) || !strings.Contains(html, want) {
					t.Errorf("%s: %q missing in\n%s\n%s", name, want, text, html)
				}
			}
			if !strings.Contains(sms, smsDate[lang]) {
				t.Errorf("%s: SMS without %q:\n%s", name, smsDate[lang], sms)
			}
			// The link and the dial-in, except in a cancellation.
			for _, want := range []string{full.URL, dial[lang]} {
				if strings.Contains(text, want) == (k == notify.Cancellation) {
					t.Errorf("%s: %q in the text: %v\n%s", name, want, k != notify.Cancellation, text)
				}
			}
			if !strings.Contains(html, `<a href="`+full.URL+`">`) == (k != notify.Cancellation) {
				t.Errorf("%s: html link wrong:\n%s", name, html)
			}
			for _, want := range []string{full.URL, "Tel. +34910000000 PIN 123456"} {
				if strings.Contains(sms, want) == (k == notify.Cancellation) {
					t.Errorf("%s: %q in the SMS: %v\n%s", name, want, k != notify.Cancellation, sms)
				}
			}
			if n, limit := SMSSize(sms); n > limit || limit != 160 {
				t.Errorf("%s: SMS of %d/%d characters:\n%s", name, n, limit, sms)
			}
			for _, out := range []string{subject, text, html, sms} {
				for _, bad := range leftovers {
					if strings.Contains(out, bad) {
						t.Errorf("%s: %q in\n%s", name, bad, out)
					}
				}
			}

			// Minimal: no times, no dial-in, no link, no organizer, no name.
			minimal.URL = ""
			_, subject, text, html, err = s.Email(k, lang, notify.Party{Email: "x@example.com"}, minimal)
			if err != nil {
				t.Fatalf("%s minimal: %v", name, err)
			}
			_, sms, err = s.SMS(k, lang, notify.Party{}, minimal)
			if err != nil {
				t.Fatalf("%s minimal: %v", name, err)
			}
			for _, out := range []string{subject, text, html, sms} {
				for _, bad := range append(leftovers, "PIN", "Tel.", "2026", "href", "jdoe", ": \n", " ,", "Hello ,", "Hola ,") {
					if strings.Contains(out, bad) {
						t.Errorf("%s minimal: %q in\n%s", name, bad, out)
					}
				}
			}
			if !strings.Contains(sms, "Project review") || !strings.HasPrefix(text, map[string]string{"en": "Hello,\n\n", "es": "Hola:\n\n", "ca": "Hola,\n\n"}[lang]) {
				t.Errorf("%s minimal:\n%s\n%s", name, text, sms)
			}
			// With a link only.
			minimal.URL = full.URL
			_, _, text, _, _ = s.Email(k, lang, party, minimal)
			_, sms, _ = s.SMS(k, lang, party, minimal)
			if strings.Contains(text+sms, full.URL) == (k == notify.Cancellation) {
				t.Errorf("%s link only:\n%s\n%s", name, text, sms)
			}
		}
	}
}

func TestEscaping(t *testing.T) {
	s, err := Load("", langs, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := sampleMeeting("en")
	full.Name = `Q&A <b>"O'Brien"</b>`
	full.URL = "https://meet.example.com/m/x?a=1&b=2"
	_, subject, text, html, err := s.Email(notify.Invitation, "en", notify.Party{Name: "Tom & Jerry\r\nBcc: x@example.com"}, full)
	if err != nil {
		t.Fatal(err)
	}
	if subject != `Invitation: Q&A <b>"O'Brien"</b>` {
		t.Errorf("subject %q", subject)
	}
	if !strings.Contains(text, `the meeting "Q&A <b>"O'Brien"</b>"`) || !strings.Contains(text, "Join: https://meet.example.com/m/x?a=1&b=2") {
		t.Errorf("text escaped:\n%s", text)
	}
	for _, want := range []string{
		`<title>Q&amp;A &lt;b&gt;&quot;O&apos;Brien&quot;&lt;/b&gt;</title>`,
		`<a href="https://meet.example.com/m/x?a=1&amp;b=2">`,
		`Hello Tom &amp; Jerry`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("html without %s:\n%s", want, html)
		}
	}
	// A one-line field cannot carry a header.
	subject, _, _, _, _ = s.Email(notify.Invitation, "en", notify.Party{}, notify.Meeting{Name: "a\r\nBcc: x@example.com"})
	if strings.ContainsAny(subject, "\r\n") {
		t.Errorf("subject %q", subject)
	}
}

func TestLanguageFallback(t *testing.T) {
	s, err := Load("", []string{"ca", "en"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := sampleMeeting("fr")
	_, subject, _, _, err := s.Email(notify.Invitation, "fr", notify.Party{}, full)
	if err != nil || subject != "Invitació: Project review" {
		t.Errorf("fr: %q %v, want the first language's (ca)", subject, err)
	}
	_, sms, err := s.SMS(notify.Reminder, "en", notify.Party{}, full)
	if err != nil || !strings.HasPrefix(sms, "Reminder: Project review") {
		t.Errorf("en: %q %v", sms, err)
	}
	if _, _, err := s.SMS("party", "en", notify.Party{}, full); err == nil {
		t.Error("an unknown kind renders")
	}
}

// tree writes the built-in templates of lang to a folder, with the
// given files replaced (or removed when their text is "").
func tree(t *testing.T, lang string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(builtin, "defaults", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, "/"+lang+"/") {
			return err
		}
		rel := strings.TrimPrefix(p, "defaults/")
		b, _ := builtin.ReadFile(p)
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	for rel, text := range files {
		p := filepath.Join(dir, rel)
		if text == "" {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadFromFolder(t *testing.T) {
	dir := tree(t, "es", map[string]string{
		"email/es/from.hbs": "{{meeting.user.username}} <noreply@example.com>\n",
		"email/es/html.hbs": "",
		"sms/es/from.hbs":   "Webconf\n",
	})
	rec := &recorder{}
	s, err := Load(dir, []string{"es"}, slog.New(rec))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.msgs) != 0 {
		t.Errorf("warnings: %q", rec.msgs)
	}
	full, _ := sampleMeeting("es")
	from, subject, text, html, err := s.Email(notify.Update, "es", notify.Party{}, full)
	if err != nil || from != "jdoe <noreply@example.com>" || subject != "Reunión actualizada: Project review" || text == "" || html != "" {
		t.Errorf("email: %q %q %q %q %v", from, subject, text, html, err)
	}
	from, _, err = s.SMS(notify.Update, "es", notify.Party{}, full)
	if err != nil || from != "Webconf" {
		t.Errorf("sms from %q %v", from, err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		dir   func(t *testing.T) string
		langs []string
		want  []string
	}{
		{"syntax error", func(t *testing.T) string {
			return tree(t, "en", map[string]string{"email/en/text.hbs": "Hello,\n\n{{#if meeting.url}}\n{{meeting.url}}\n{{/iff}}\n{{meeting.name}} {{meeting.validSince}}\n"})
		}, []string{"en"}, []string{filepath.Join("email", "en", "text.hbs") + ":5: syntax error: if doesn't match iff"}},
		{"unclosed", func(t *testing.T) string {
			return tree(t, "en", map[string]string{"sms/en/text.hbs": "{{meeting.name}}\n{{meeting.url\n"})
		}, []string{"en"}, []string{filepath.Join("sms", "en", "text.hbs") + ":2: syntax error:"}},
		{"bad time zone", func(t *testing.T) string {
			return tree(t, "en", map[string]string{"email/en/subject.hbs": `{{formatDate meeting.validSince timeZone="Europe/Atlantis"}}`})
		}, []string{"en"}, []string{filepath.Join("email", "en", "subject.hbs"), "Europe/Atlantis"}},
		{"missing language", func(t *testing.T) string { return tree(t, "en", nil) },
			[]string{"en", "pt-BR"}, []string{"language pt-BR", filepath.Join("email", "pt-BR")}},
		{"missing sms folder", func(t *testing.T) string {
			dir := tree(t, "en", nil)
			if err := os.RemoveAll(filepath.Join(dir, "sms")); err != nil {
				t.Fatal(err)
			}
			return dir
		}, []string{"en"}, []string{"language en", filepath.Join("sms", "en")}},
		{"missing text", func(t *testing.T) string { return tree(t, "en", map[string]string{"email/en/text.hbs": ""}) },
			[]string{"en"}, []string{filepath.Join("email", "en", "text.hbs")}},
		{"built-in has no pt-BR", func(t *testing.T) string { return "" },
			[]string{"es", "pt-BR"}, []string{"language pt-BR", "builtin:email/pt-BR"}},
		{"no languages", func(t *testing.T) string { return "" }, nil, []string{"no language"}},
		{"not a language", func(t *testing.T) string { return "" }, []string{"../en"}, []string{`"../en" is not a language`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := c.dir(t)
			s, err := Load(dir, c.langs, nil)
			if err == nil {
				t.Fatalf("loaded %v", s)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
	_, err := Load(filepath.Join(t.TempDir(), "meetings", "tpl"), langs, nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing templatePath: %v, want fs.ErrNotExist", err)
	}
}

func TestWarnings(t *testing.T) {
	const url = "{{meeting.url}}"
	long := strings.Repeat("x", 120) + " {{meeting.name}} {{meeting.validSince}} " + url // 120+1+14+1+20+1+63 = 220
	for _, c := range []struct {
		name string
		sms  string
		text string
		want []string // warnings, "%s" is the folder
		not  []string
	}{
		{"long GSM-7 SMS", long, "", []string{"The sms template %s/sms/en/text.hbs is too large. It will be sent several SMS by meeting"}, nil},
		// 76 UCS-2 units: over 70 because of the ó; the same in GSM-7 fits.
		{"UCS-2 SMS", "Reunión {{meeting.name}} {{#if meeting.validSince}}{{/if}}" + strings.Repeat("y", 53), "",
			[]string{"The sms template %s/sms/en/text.hbs is too large. It will be sent several SMS by meeting", "Field meeting.url hasn't been used in %s/sms/en/text.hbs"}, nil},
		{"GSM-7 SMS that fits", "Reunion {{meeting.name}} {{#if meeting.validSince}}{{/if}}" + strings.Repeat("y", 53), "",
			[]string{"Field meeting.url hasn't been used in %s/sms/en/text.hbs"}, []string{"The sms template %s/sms/en/text.hbs is too large. It will be sent several SMS by meeting"}},
		{"unused fields", "", "Hello {{party.name}}, {{#with meeting}}{{name}}{{/with}}\n",
			[]string{"Field meeting.url hasn't been used in %s/email/en/text.hbs", "Field meeting.validSince hasn't been used in %s/email/en/text.hbs"},
			[]string{"Field meeting.name hasn't been used in %s/email/en/text.hbs", "Field meeting.url hasn't been used in %s/email/en/html.hbs"}},
		{"a field in a helper counts", "", "{{meeting.name}} {{formatDate meeting.validSince}} {{#if meeting.url}}x{{/if}}\n",
			nil, []string{"Field meeting.validSince hasn't been used in %s/email/en/text.hbs", "Field meeting.url hasn't been used in %s/email/en/text.hbs"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{}
			if c.sms != "" {
				files["sms/en/text.hbs"] = c.sms
			}
			if c.text != "" {
				files["email/en/text.hbs"] = c.text
			}
			dir := tree(t, "en", files)
			rec := &recorder{}
			if _, err := Load(dir, []string{"en"}, slog.New(rec)); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if w = strings.ReplaceAll(w, "%s", dir); !rec.has(w) {
					t.Errorf("no warning %q in %q", w, rec.msgs)
				}
			}
			for _, w := range c.not {
				if w = strings.ReplaceAll(w, "%s", dir); rec.has(w) {
					t.Errorf("warning %q", w)
				}
			}
			if len(rec.msgs) != len(c.want) {
				t.Errorf("warnings %q, want %q", rec.msgs, c.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	conf := t.TempDir()
	// The default folder missing: the built-in templates.
	s, err := Open(DefaultPath, conf, langs, nil)
	if err != nil || s.email["ca"].text.name != "builtin:email/ca/text.hbs" {
		t.Fatalf("default path missing: %v", err)
	}
	// Any other missing folder stops start-up.
	if _, err := Open("meetings/tlp", conf, langs, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing templatePath: %v", err)
	}
	// The default folder present, relative to the config's folder.
	dir := tree(t, "en", map[string]string{"sms/en/text.hbs": "Mine {{meeting.name}} {{meeting.url}} {{meeting.validSince}}"})
	if err := os.MkdirAll(filepath.Join(conf, "meetings"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, filepath.Join(conf, DefaultPath)); err != nil {
		t.Fatal(err)
	}
	s, err = Open(DefaultPath, conf, []string{"en"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := sampleMeeting("en")
	if _, text, _ := s.SMS(notify.Invitation, "en", notify.Party{}, full); !strings.HasPrefix(text, "Mine Project review") {
		t.Errorf("the folder's template not used: %q", text)
	}
	if s, err := Open("", conf, langs, nil); err != nil || s.sms["es"].text.name != "builtin:sms/es/text.hbs" {
		t.Errorf("empty templatePath: %v", err)
	}
}

// TestConcurrentRender: the outbox renders from several goroutines (run
// with -race).
func TestConcurrentRender(t *testing.T) {
	s, err := Load("", langs, nil)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := sampleMeeting("es")
	_, want, _ := s.SMS(notify.Reminder, "es", notify.Party{}, full)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				_, text, err := s.SMS(notify.Reminder, "es", notify.Party{}, full)
				if err == nil && text != want {
					err = errors.New("got " + text)
				}
				if _, _, _, _, e := s.Email(notify.Update, "ca", notify.Party{}, full); e != nil && err == nil {
					err = e
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
