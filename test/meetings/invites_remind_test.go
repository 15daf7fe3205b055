package meetings

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"webconf/rpc/node"
	"webconf/test/testutil"
)

// waitSubject waits for a message whose subject is subject and returns
// it with the time it was seen.
func waitSubject(t *testing.T, srv *testutil.SMTPServer, subject string, d time.Duration) (invite, time.Time) {
	t.Helper()
	var got invite
	testutil.WaitFor(t, d, "an email "+subject, func() bool {
		for _, m := range srv.Messages() {
			if r := parseInvite(t, m); r.subject == subject {
				got = r
				return true
			}
		}
		return false
	})
	return got, time.Now()
}

// TestReminderByEmail: with remindBefore = 1 (minute), a meeting starting
// in 65 s has its invitation sent at once and its reminder about 5 s
// later, at valid_since - 1 min, by email, without a calendar.
func TestReminderByEmail(t *testing.T) {
	t.Parallel()
	srv := newSMTP(t)
	cfg := testConfig(t)
	mailConf(cfg, srv)
	cfg.Meetings.RemindBefore = 1
	h := startOpts(t, cfg, node.Options{})
	_, tok := h.user(t, "alice", "meetings")

	since := time.Now().Add(65 * time.Second).Truncate(time.Second)
	due := since.Add(-time.Minute)
	m := h.meeting(t, tok, map[string]any{"name": "Standup", "valid_since": since.UTC().Format(time.RFC3339),
		"participants": []map[string]any{{"name": "Ann", "email": "ann@example.org"}}})
	uuid := m["uuid"].(string)

	inv := parseInvite(t, srv.WaitMessages(t, 1, 10*time.Second)[0])
	if inv.subject != "Invitation: Standup" {
		t.Fatalf("first message %q, want the invitation", inv.subject)
	}
	if time.Now().After(due) {
		t.Fatal("the invitation came after the reminder was due: the test cannot tell them apart")
	}
	rem, at := waitSubject(t, srv, "Reminder: Standup", time.Until(due)+15*time.Second)
	if at.Before(due) {
		t.Errorf("the reminder came at %v, before it was due at %v", at, due)
	}
	t.Logf("reminder %v after it was due", at.Sub(due).Round(time.Millisecond))
	if all := srv.Messages(); len(all) != 2 || all[1].MessageID != rem.msg.MessageID || rem.to() != "ann@example.org" {
		t.Errorf("messages: %d, the second to %s (want the reminder to ann@example.org)", len(all), rem.to())
	}
	if rem.calendar != nil || !strings.Contains(rem.text, "starts soon") || !strings.Contains(rem.text, m["url"].(string)) {
		t.Errorf("reminder: calendar %q, text:\n%s", rem.calendar, rem.text)
	}
	testutil.WaitFor(t, 5*time.Second, "GET .../invitations to show the reminder sent", func() bool {
		return statuses(h.invitationItems(t, tok, uuid))["reminder/sent"] == 1
	})
}

// TestReminderAtStartup: reminders are durable. webconfd is killed
// (SIGKILL) before a reminder is due and started again after: the
// reminder goes out at start-up because the meeting has not begun; a
// meeting that began while the server was down has its reminder dropped
// and logged with Quobis's words, and its invitation still sent.
func TestReminderAtStartup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := newSMTP(t)
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	cfg := invitesDaemonConf(t, dir, srv, "remindBefore = 1\n")
	cmd, h, _ := runDaemon(t, bin, cfg)
	_, tok := h.user(t, "alice", "meetings")

	// A: its reminder is due in 10 s.
	sinceA := time.Now().Add(70 * time.Second).Truncate(time.Second)
	dueA := sinceA.Add(-time.Minute)
	h.meeting(t, tok, map[string]any{"name": "Later", "valid_since": sinceA.UTC().Format(time.RFC3339),
		"participants": []map[string]any{{"email": "ann@example.org"}}})
	srv.WaitMessages(t, 1, 10*time.Second)

	// B: starts in 4 s, with the mail server down: its invitation and
	// reminder (due at once) wait for a retry.
	srv.Stop()
	sinceB := time.Now().Add(4 * time.Second).Truncate(time.Second)
	b := h.meeting(t, tok, map[string]any{"name": "Soon", "valid_since": sinceB.UTC().Format(time.RFC3339),
		"participants": []map[string]any{{"email": "bob@example.org"}}})
	uuidB := b["uuid"].(string)
	testutil.WaitFor(t, 10*time.Second, "B's reminder to fail once", func() bool {
		for _, it := range h.invitationItems(t, tok, uuidB) {
			if it["kind"] == "reminder" && it["attempts"].(float64) >= 1 && it["status"] == "queued" {
				return true
			}
		}
		return false
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if time.Now().After(dueA) {
		t.Fatal("killed after A's reminder was due: the test cannot tell")
	}
	if n := len(srv.Messages()); n != 1 {
		t.Fatalf("%d messages before the kill, want A's invitation only", n)
	}
	// The server is down while A's reminder falls due and B begins: there
	// is nothing to wait for but the clock.
	time.Sleep(time.Until(dueA) + 500*time.Millisecond)

	srv.Start(t)
	started := time.Now()
	_, h2, _ := runDaemonLog(t, bin, cfg)
	rem, at := waitSubject(t, srv, "Reminder: Later", 15*time.Second)
	if rem.to() != "ann@example.org" || at.After(sinceA) {
		t.Errorf("A's reminder to %s at %v (start-up at %v, the meeting at %v)", rem.to(), at, started, sinceA)
	}
	waitSubject(t, srv, "Invitation: Soon", 15*time.Second)
	h2.log.Wait(t, regexp.MustCompile(`Unable to send reminder for meeting: `+uuidB+`\. Cause: `), 10*time.Second)
	for _, m := range srv.Messages() {
		if r := parseInvite(t, m); r.subject == "Reminder: Soon" {
			t.Errorf("B's reminder was sent after B began")
		}
	}
	testutil.WaitFor(t, 5*time.Second, "B's reminder failed in GET .../invitations", func() bool {
		s := statuses(h2.invitationItems(t, tok, uuidB))
		return s["reminder/failed"] == 1 && s["invitation/sent"] == 1
	})
}

// daemonHarness is a harness on a webconfd process with its log.
type daemonHarness struct {
	*harness
	log *testutil.Log
}

// runDaemonLog is runDaemon that keeps the log.
func runDaemonLog(t *testing.T, bin, cfg string) (*exec.Cmd, daemonHarness, string) {
	t.Helper()
	cmd, addrs, log := testutil.DaemonLog(t, bin, cfg, httpListening, sipListening)
	return cmd, daemonHarness{&harness{base: "http://" + addrs[0]}, log}, addrs[1]
}

// writeTemplates writes an en template folder under dir/tpl with the
// given files (relative to tpl) and returns tpl's path.
func writeTemplates(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	tpl := filepath.Join(dir, "tpl")
	for rel, body := range files {
		p := filepath.Join(tpl, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return tpl
}

// TestTemplateSyntaxErrorStopsStartup: webconfd with a template that does
// not parse exits at start-up, its log naming the file and line.
func TestTemplateSyntaxErrorStopsStartup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tpl := writeTemplates(t, dir, map[string]string{
		"email/en/subject.hbs": "{{meeting.name}}",
		"email/en/text.hbs":    "Hello,\n\nJoin {{meeting.name}} at\n{{meeting.url}\non {{formatDate meeting.validSince}}\n",
		"sms/en/text.hbs":      "{{meeting.name}} {{meeting.url}} {{formatDate meeting.validSince}}",
	})
	cfg := invitesDaemonConf(t, dir, nil, "templatePath = tpl\nlanguagesTemplates[] = en\n")
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-config", cfg).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("webconfd did not stop at start-up:\n%s", out)
	}
	if err == nil {
		t.Fatalf("webconfd exited 0 with a broken template:\n%s", out)
	}
	want := filepath.Join(tpl, "email", "en", "text.hbs") + ":4: syntax error"
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "cannot start") {
		t.Fatalf("webconfd's log does not name %q:\n%s", want, out)
	}
	t.Logf("%v; %s", err, strings.TrimSpace(string(out)))
}

// TestTemplateWarnings: templates that parse but send an SMS longer than
// one, or never use a field Quobis checks, start with Quobis's warnings.
func TestTemplateWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tpl := writeTemplates(t, dir, map[string]string{
		"email/en/subject.hbs": "{{meeting.name}}",
		"email/en/text.hbs":    "Join {{meeting.name}} on {{formatDate meeting.validSince}}\n", // no meeting.url
		"email/en/html.hbs":    "<p>{{meeting.name}} {{meeting.url}} {{formatDate meeting.validSince}}</p>",
		"sms/en/text.hbs": "You are invited to the meeting {{meeting.name}} on {{formatDate meeting.validSince weekday=\"long\" day=\"numeric\" month=\"long\" year=\"numeric\"}}. " +
			"Join it from your phone or computer with this link: {{meeting.url}} and please be on time.",
	})
	cfg := invitesDaemonConf(t, dir, nil, "templatePath = tpl\nlanguagesTemplates[] = en\n")
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	_, h, _ := runDaemonLog(t, bin, cfg)
	sms := filepath.Join(tpl, "sms", "en", "text.hbs")
	text := filepath.Join(tpl, "email", "en", "text.hbs")
	h.log.Wait(t, regexp.MustCompile(regexp.QuoteMeta("The sms template "+sms+" is too large. It will be sent several SMS by meeting")), 5*time.Second)
	h.log.Wait(t, regexp.MustCompile(regexp.QuoteMeta("Field meeting.url hasn't been used in "+text)), 5*time.Second)
	for _, l := range h.log.Lines() {
		if strings.Contains(l, "hasn't been used in") && !strings.Contains(l, text) {
			t.Errorf("a warning about a template that uses every field: %s", l)
		}
	}
}
