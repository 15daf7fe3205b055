package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"webconf/sipapp/meeting"
	"webconf/sipapp/store"
	"webconf/test/testutil"
)

// fakeClock is a clock whose timers fire only when it is moved.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.t
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{c.t.Add(d), ch})
	return ch
}

// Set moves the clock to t, firing the timers due by then.
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

func (c *fakeClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// fakeTransport records what it sends (by Message-ID or key), and fails
// or blocks as told.
type fakeTransport struct {
	mu     sync.Mutex
	sent   []string // keys, in order
	emails []Email
	sms    []SMS
	push   []Push
	fail   func(key string) error
	block  chan struct{} // non-nil: sends wait for it to be closed
	gate   chan struct{} // non-nil: each send waits for a token
	inside chan string   // non-nil: told of each send before it blocks
}

func (f *fakeTransport) do(ctx context.Context, key string, rec func()) error {
	if f.inside != nil {
		f.inside <- key
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(key); err != nil {
			return err
		}
	}
	f.sent = append(f.sent, key)
	rec()
	return nil
}

func (f *fakeTransport) SendEmail(ctx context.Context, e Email) error {
	return f.do(ctx, e.MessageID, func() { f.emails = append(f.emails, e) })
}

func (f *fakeTransport) SendSMS(ctx context.Context, s SMS) error {
	return f.do(ctx, s.Key, func() { f.sms = append(f.sms, s) })
}

func (f *fakeTransport) SendPush(ctx context.Context, p Push) error {
	return f.do(ctx, p.Key, func() { f.push = append(f.push, p) })
}

func (f *fakeTransport) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, k := range f.sent {
		if k == key {
			n++
		}
	}
	return n
}

func (f *fakeTransport) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

// fakeRenderer renders "<kind> <name> <since>" and a calendar naming
// method and sequence.
type fakeRenderer struct{}

func (fakeRenderer) Email(k Kind, lang string, p Party, m Meeting) (string, string, string, string, error) {
	return "from@example.org", string(k) + " " + m.Name, fmt.Sprintf("%s %s %v", k, m.Name, m.ValidSince), "<p>" + m.Name + "</p>", nil
}

func (fakeRenderer) SMS(k Kind, lang string, p Party, m Meeting) (string, string, error) {
	return "webconf", fmt.Sprintf("%s %s %v", k, m.Name, m.ValidSince), nil
}

func (fakeRenderer) Calendar(method string, m Meeting, attendees []Party, now time.Time) ([]byte, error) {
	return fmt.Appendf(nil, "METHOD:%s\nSEQUENCE:%d\nSUMMARY:%s\n", method, m.Sequence, m.Name), nil
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type noHooks struct{}

func (noHooks) OpenRoom(string) error { return nil }
func (noHooks) EndRoom(string, bool)  {}
func (noHooks) LobbyLifted(string)    {}
func (noHooks) RoomTaken(string) bool { return false }

// rig is a Book and an Outbox over a real SQLite store.
type rig struct {
	t     *testing.T
	path  string
	clock *fakeClock
	tr    *fakeTransport
	logs  *syncBuf
	st    *store.SQLite
	ob    *Outbox
	book  *meeting.Book
	cfg   OutboxConfig
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newRig(t *testing.T, mod func(*OutboxConfig)) *rig {
	t.Helper()
	r := &rig{t: t, path: filepath.Join(t.TempDir(), "webconf.db"), clock: &fakeClock{t: t0}, tr: &fakeTransport{}, logs: &syncBuf{}}
	r.cfg = OutboxConfig{
		Mechanisms: []string{MechEmail, MechSMS}, Host: "test.example",
		Renderer: fakeRenderer{}, Calendar: fakeRenderer{},
		Mailer: r.tr, SMS: r.tr, Pusher: r.tr,
		Link: func(m meeting.Meeting, _ []meeting.User) (string, string, string) {
			return "https://meet.example/m/" + m.UUID, "", ""
		},
	}
	if mod != nil {
		mod(&r.cfg)
	}
	r.open()
	return r
}

// open (re)opens the store, the Outbox and the Book from r.path.
func (r *rig) open() {
	t := r.t
	t.Helper()
	st, err := store.OpenSQLite(r.path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.cfg
	cfg.Store, cfg.Now, cfg.After = st, r.clock.Now, r.clock.After
	cfg.Log = slog.New(slog.NewTextHandler(r.logs, nil))
	ob := NewOutbox(cfg)
	book, err := meeting.New(meeting.Config{MaxParticipants: 10, TTL: 48 * time.Hour, Now: r.clock.Now, Outbox: ob, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, st, snap.Docs, noHooks{})
	if err != nil {
		t.Fatal(err)
	}
	r.st, r.ob, r.book = st, ob, book
	t.Cleanup(r.close)
}

func (r *rig) close() {
	r.ob.Close()
	r.book.Close()
	r.st.Close()
}

func (r *rig) user(name, email, phone string) meeting.User {
	r.t.Helper()
	var in meeting.UserInput
	must(r.t, json.Unmarshal(fmt.Appendf(nil, `{"username":%q,"email":%q,"mobile_phone":%q,"capabilities":["meetings"]}`, name, email, phone), &in))
	u, _, err := r.book.CreateUser(in)
	must(r.t, err)
	return u
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func input(t *testing.T, s string) meeting.MeetingInput {
	t.Helper()
	var in meeting.MeetingInput
	must(t, json.Unmarshal([]byte(s), &in))
	return in
}

// stored reads the outbox entries of the store (what survives a crash).
func (r *rig) stored() []Entry {
	r.t.Helper()
	snap, err := r.st.Load(context.Background())
	must(r.t, err)
	var out []Entry
	for _, d := range snap.Docs {
		if d.Kind == docEntry {
			var e Entry
			must(r.t, json.Unmarshal(d.Body, &e))
			out = append(out, e)
		}
	}
	return out
}

func (r *rig) waitStatus(meetingUUID string, want map[Status]int) []Entry {
	r.t.Helper()
	var es []Entry
	testutil.WaitFor(r.t, 5*time.Second, fmt.Sprintf("statuses %v", want), func() bool {
		es = r.ob.Entries(meetingUUID)
		got := map[Status]int{}
		for _, e := range es {
			got[e.Status]++
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
	return es
}

func kinds(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, string(e.Kind)+"/"+e.Mechanism+"/"+who(e.Party, e.Mechanism)+"/"+string(e.Status))
	}
	slices.Sort(out)
	return out
}

const twoParticipants = `{"name":"Weekly","valid_since":"2026-03-02T10:00:00Z","valid_until":"2026-03-02T11:00:00Z",
	"participants":[{"name":"Ann","email":"ann@example.org","phone":"+34600000001"},{"name":"Bob","email":"bob@example.org"}]}`

func TestOutboxQueuesWithTheMeeting(t *testing.T) {
	r := newRig(t, nil)
	owner := r.user("owner", "owner@example.org", "")
	m, err := r.book.CreateMeeting(owner, input(t, twoParticipants))
	must(t, err)
	// Queued in the meeting's transaction: in the store before anything is sent.
	st := r.stored()
	if got, want := kinds(st), []string{"invitation/email/ann@example.org/queued", "invitation/email/bob@example.org/queued", "invitation/sms/+34600000001/queued"}; !slices.Equal(got, want) {
		t.Fatalf("stored entries %v, want %v", got, want)
	}
	for _, e := range st {
		if e.Mechanism == MechEmail && !strings.HasSuffix(e.MessageID, "@test.example") {
			t.Errorf("Message-ID %q is not <random>@host", e.MessageID)
		}
		if e.Meeting.Name != "Weekly" || e.Meeting.Organizer.Email != "owner@example.org" || e.Attempts != 0 {
			t.Errorf("entry %+v", e)
		}
	}
	r.ob.Start()
	es := r.waitStatus(m.UUID, map[Status]int{Sent: 3})
	for _, e := range es {
		if n := r.tr.count(e.MessageID); n != 1 {
			t.Errorf("%s sent %d times", e.MessageID, n)
		}
		if e.Attempts != 1 || e.SentAt == nil {
			t.Errorf("entry %+v", e)
		}
	}
	r.tr.mu.Lock()
	defer r.tr.mu.Unlock()
	for _, e := range r.tr.emails {
		if !strings.Contains(string(e.Calendar), "METHOD:REQUEST\nSEQUENCE:0") || e.Method != "REQUEST" {
			t.Errorf("email calendar %q method %q", e.Calendar, e.Method)
		}
	}
	if len(r.tr.sms) != 1 || r.tr.sms[0].To != "+34600000001" {
		t.Errorf("sms %+v", r.tr.sms)
	}
}

func TestOutboxUpdateAndDelete(t *testing.T) {
	r := newRig(t, nil)
	owner := r.user("owner", "owner@example.org", "")
	m, err := r.book.CreateMeeting(owner, input(t, twoParticipants))
	must(t, err)
	r.ob.Start()
	r.waitStatus(m.UUID, map[Status]int{Sent: 3})

	// A name change sends nothing; a new participant gets an invitation.
	_, err = r.book.UpdateMeeting(owner, m.UUID, input(t, `{"name":"Weekly 2","participants":[{"name":"Ann","email":"ann@example.org","phone":"+34600000001"},{"name":"Bob","email":"bob@example.org"},{"name":"Cy","email":"cy@example.org"}]}`))
	must(t, err)
	es := r.waitStatus(m.UUID, map[Status]int{Sent: 4})
	if got := kinds(es); !slices.Contains(got, "invitation/email/cy@example.org/sent") {
		t.Fatalf("entries %v", got)
	}
	// A time change: an update with SEQUENCE 1 to everyone.
	_, err = r.book.UpdateMeeting(owner, m.UUID, input(t, `{"valid_since":"2026-03-02T12:00:00Z","valid_until":"2026-03-02T13:00:00Z"}`))
	must(t, err)
	es = r.waitStatus(m.UUID, map[Status]int{Sent: 8})
	n := 0
	for _, e := range es {
		if e.Kind == Update {
			n++
			if e.Meeting.Sequence != 1 || !e.Meeting.ValidSince.Equal(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)) {
				t.Errorf("update %+v", e.Meeting)
			}
		}
	}
	if n != 4 {
		t.Fatalf("%d updates, want 4: %v", n, kinds(es))
	}
	// send_invites: everyone again, with new Message-IDs.
	_, err = r.book.UpdateMeeting(owner, m.UUID, input(t, `{"send_invites":true}`))
	must(t, err)
	r.waitStatus(m.UUID, map[Status]int{Sent: 12})

	// Deleting: a queued invitation (the sender is held) is cancelled
	// and not sent; those reached get a cancellation, SEQUENCE 2.
	r.tr.mu.Lock()
	r.tr.block = make(chan struct{})
	r.tr.inside = make(chan string, 100)
	r.tr.mu.Unlock()
	_, err = r.book.UpdateMeeting(owner, m.UUID, input(t, `{"participants":[{"name":"Ann","email":"ann@example.org","phone":"+34600000001"},{"name":"Bob","email":"bob@example.org"},{"name":"Cy","email":"cy@example.org"},{"name":"Di","email":"di@example.org"},{"name":"Ed","email":"ed@example.org"}]}`))
	must(t, err)
	first := <-r.tr.inside // one of Di's and Ed's invitations is in flight, the other queued
	before := r.tr.total()
	must(t, r.book.DeleteMeeting(owner.UUID, m.UUID))
	close(r.tr.block)
	// 3 email participants + 1 sms reached before, plus the one in flight.
	testutil.WaitFor(t, 5*time.Second, "cancellations", func() bool { return r.tr.total() == before+1+5 })
	r.tr.mu.Lock()
	var cancels []string
	for _, e := range r.tr.emails {
		if e.Method == "CANCEL" {
			cancels = append(cancels, e.To)
			if !strings.Contains(string(e.Calendar), "SEQUENCE:2") {
				t.Errorf("cancellation calendar %q", e.Calendar)
			}
		}
	}
	r.tr.mu.Unlock()
	slices.Sort(cancels)
	if len(cancels) != 4 {
		t.Fatalf("cancellations to %v, want ann, bob, cy and the one in flight (%s)", cancels, first)
	}
	testutil.WaitFor(t, 5*time.Second, "the store to drop the meeting's entries", func() bool { return len(r.stored()) == 0 })
	if got := r.ob.Entries(m.UUID); len(got) != 0 {
		t.Errorf("entries of a deleted meeting: %v", kinds(got))
	}
}

func TestOutboxBackoffThenFailed(t *testing.T) {
	r := newRig(t, func(c *OutboxConfig) { c.MaxAttempts = 4; c.Mechanisms = []string{MechEmail} })
	var mu sync.Mutex
	refuse := true
	r.tr.fail = func(string) error {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			return errors.New("451 try later")
		}
		return nil
	}
	owner := r.user("owner", "", "")
	m, err := r.book.CreateMeeting(owner, input(t, `{"name":"M","participants":[{"name":"Ann","email":"ann@example.org"},{"name":"Bob","email":"bob@example.org"}]}`))
	must(t, err)
	r.ob.Start()
	// Attempts at 0, +5 s, +10 s, +20 s: the delays double.
	at := t0
	for i, d := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second} {
		var es []Entry
		testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("attempt %d", i+1), func() bool {
			es = r.ob.Entries(m.UUID)
			return es[0].Attempts == i+1 && es[1].Attempts == i+1 && es[0].NextAttempt.After(at) && es[1].NextAttempt.After(at)
		})
		for _, e := range es {
			if e.Status != Queued || !e.NextAttempt.Equal(at.Add(d)) || e.Reason != "451 try later" {
				t.Fatalf("after attempt %d: status %s next %v (want %v) reason %q", i+1, e.Status, e.NextAttempt, at.Add(d), e.Reason)
			}
		}
		r.clock.Set(at.Add(d - time.Second))
		if got := r.ob.Entries(m.UUID)[0].Attempts; got != i+1 {
			t.Fatalf("attempt %d before its time", got)
		}
		at = at.Add(d)
		r.clock.Set(at)
	}
	es := r.waitStatus(m.UUID, map[Status]int{Failed: 2})
	if es[0].Attempts != 4 || es[0].Reason != "451 try later" {
		t.Errorf("failed entry %+v", es[0])
	}
	if !strings.Contains(r.logs.String(), "Failed to invite participant ann@example.org to meeting M("+m.UUID+")") {
		t.Errorf("log lacks Quobis's failure line:\n%s", r.logs)
	}
	if got := r.ob.Backoff(20); got != 10*time.Minute {
		t.Errorf("backoff after 20 attempts %v, want the 10 min cap", got)
	}
	// Resend queues them again, with new Message-IDs, and they go.
	mu.Lock()
	refuse = false
	mu.Unlock()
	must(t, r.book.ResendInvitations(owner.UUID, m.UUID))
	es = r.waitStatus(m.UUID, map[Status]int{Failed: 2, Sent: 2})
	ids := map[string]bool{}
	for _, e := range es {
		ids[e.MessageID] = true
	}
	if len(ids) != 4 {
		t.Errorf("resent with the same Message-IDs: %v", kinds(es))
	}
}

func TestOutboxPermanentFailureAndMissingService(t *testing.T) {
	r := newRig(t, func(c *OutboxConfig) { c.SMS = nil })
	r.tr.fail = func(string) error { return fmt.Errorf("550 no such user: %w", ErrPermanent) }
	owner := r.user("owner", "", "")
	m, err := r.book.CreateMeeting(owner, input(t, `{"name":"M","participants":[{"name":"Ann","email":"ann@example.org","phone":"+34600000001"}]}`))
	must(t, err)
	r.ob.Start()
	es := r.waitStatus(m.UUID, map[Status]int{Failed: 2})
	for _, e := range es {
		if e.Attempts != 1 {
			t.Errorf("%s: %d attempts, want 1 (no retry)", e.Mechanism, e.Attempts)
		}
		if e.Mechanism == MechSMS && e.Reason != "sms: service not available" {
			t.Errorf("sms reason %q", e.Reason)
		}
	}
	if !strings.Contains(r.logs.String(), "Cannot send meeting invitation by sms: SMS service not available") {
		t.Errorf("log lacks the missing-service line:\n%s", r.logs)
	}
}

// copyDB is kill -9 at this instant: the database as it is on disk.
func copyDB(t *testing.T, from, to string) {
	t.Helper()
	for _, suf := range []string{"", "-wal"} {
		b, err := os.ReadFile(from + suf)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		must(t, err)
		must(t, os.WriteFile(to+suf, b, 0o600))
	}
}

func TestOutboxExactlyOnceAcrossCrash(t *testing.T) {
	r := newRig(t, func(c *OutboxConfig) { c.Mechanisms = []string{MechEmail} })
	owner := r.user("owner", "", "")
	m, err := r.book.CreateMeeting(owner, input(t, `{"name":"M","participants":[{"name":"Ann","email":"ann@example.org"},{"name":"Bob","email":"bob@example.org"}]}`))
	must(t, err)
	r.tr.gate = make(chan struct{})
	r.tr.inside = make(chan string, 10)
	r.ob.Start()
	first := <-r.tr.inside
	r.tr.gate <- struct{}{} // the first goes and is marked sent
	r.waitStatus(m.UUID, map[Status]int{Sent: 1, Queued: 1})
	second := <-r.tr.inside
	// The second is on the wire; the process dies now.
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	copyDB(t, r.path, crashed)
	// (The doomed process's send completes: the receiver saw it.)
	r.tr.gate <- struct{}{}
	r.waitStatus(m.UUID, map[Status]int{Sent: 2})
	r.tr.gate = nil

	r2 := &rig{t: t, path: crashed, clock: r.clock, tr: r.tr, logs: r.logs, cfg: r.cfg}
	r2.open()
	es := r2.ob.Entries(m.UUID)
	if got := kinds(es); len(got) != 2 {
		t.Fatalf("after the crash: %v", got)
	}
	r2.tr.inside = nil
	r2.ob.Start()
	r2.waitStatus(m.UUID, map[Status]int{Sent: 2})
	if n := r.tr.count(first); n != 1 {
		t.Errorf("the message marked sent before the crash went %d times", n)
	}
	if n := r.tr.count(second); n != 2 {
		t.Errorf("the message in flight at the crash went %d times, want 2 with the same Message-ID", n)
	}
	if r.tr.total() != 3 {
		t.Errorf("%d sends, want 3", r.tr.total())
	}
}

func TestReminders(t *testing.T) {
	r := newRig(t, func(c *OutboxConfig) { c.RemindBefore = 15 * time.Minute })
	owner := r.user("owner", "", "")
	r.user("ann", "ann@example.org", "") // Ann is a user: she gets a push too
	m, err := r.book.CreateMeeting(owner, input(t, `{"name":"M","valid_since":"2026-03-02T10:00:00Z","participants":[{"name":"Ann","email":"ann@example.org","phone":"+34600000001"}]}`))
	must(t, err)
	r.ob.Start()
	r.waitStatus(m.UUID, map[Status]int{Sent: 2, Queued: 3})
	due := time.Date(2026, 3, 2, 9, 45, 0, 0, time.UTC)
	for _, e := range r.ob.Entries(m.UUID) {
		if e.Kind == Reminder && !e.NextAttempt.Equal(due) {
			t.Errorf("reminder %s due %v, want %v", e.Mechanism, e.NextAttempt, due)
		}
	}
	// Moving the meeting moves them.
	_, err = r.book.UpdateMeeting(owner, m.UUID, input(t, `{"valid_since":"2026-03-02T10:30:00Z"}`))
	must(t, err)
	due = due.Add(30 * time.Minute)
	r.waitStatus(m.UUID, map[Status]int{Sent: 4, Queued: 3})
	for _, e := range r.ob.Entries(m.UUID) {
		if e.Kind == Reminder && !e.NextAttempt.Equal(due) {
			t.Errorf("moved reminder %s due %v, want %v", e.Mechanism, e.NextAttempt, due)
		}
	}
	sentBefore := r.tr.total()
	r.clock.Set(due.Add(-time.Second))
	if r.tr.total() != sentBefore {
		t.Fatal("a reminder went early")
	}
	r.clock.Set(due)
	r.waitStatus(m.UUID, map[Status]int{Sent: 7})
	r.tr.mu.Lock()
	if len(r.tr.push) != 1 || r.tr.push[0].UserUUID == "" || r.tr.push[0].MeetingUUID != m.UUID || r.tr.push[0].Name != "M" {
		t.Errorf("push %+v", r.tr.push)
	}
	r.tr.mu.Unlock()
}

func TestRemindersAtStartUp(t *testing.T) {
	r := newRig(t, func(c *OutboxConfig) { c.RemindBefore = 15 * time.Minute; c.Mechanisms = []string{MechEmail} })
	owner := r.user("owner", "", "")
	// Not started: the server is "down" from here.
	early, err := r.book.CreateMeeting(owner, input(t, `{"name":"Early","valid_since":"2026-03-02T10:00:00Z","participants":[{"name":"Ann","email":"ann@example.org"}]}`))
	must(t, err)
	late, err := r.book.CreateMeeting(owner, input(t, `{"name":"Late","valid_since":"2026-03-02T10:20:00Z","participants":[{"name":"Bob","email":"bob@example.org"}]}`))
	must(t, err)
	r.close()
	r.clock.Set(time.Date(2026, 3, 2, 10, 10, 0, 0, time.UTC)) // Early began; Late's reminder is due
	r.open()
	r.ob.Start()
	es := r.waitStatus(early.UUID, map[Status]int{Sent: 1, Failed: 1})
	for _, e := range es {
		if e.Kind == Reminder && (e.Attempts != 0 || !strings.Contains(e.Reason, "began")) {
			t.Errorf("dropped reminder %+v", e)
		}
	}
	r.waitStatus(late.UUID, map[Status]int{Sent: 2})
	if !strings.Contains(r.logs.String(), "Unable to send reminder for meeting: "+early.UUID+". Cause: the meeting began") {
		t.Errorf("log lacks the dropped reminder:\n%s", r.logs)
	}
}

// urlRenderer renders the meeting's link as the SMS text.
type urlRenderer struct{ fakeRenderer }

func (urlRenderer) SMS(k Kind, lang string, p Party, m Meeting) (string, string, error) {
	return "webconf", m.URL, nil
}

// TestOutboxShortensTheLinkAtSendTime: with a shortener the message
// carries the short link, and the entry keeps the long one (a failed
// shortener gives the long link back, so nothing else changes).
func TestOutboxShortensTheLinkAtSendTime(t *testing.T) {
	r := newRig(t, func(c *OutboxConfig) {
		c.Mechanisms = []string{MechSMS}
		c.Renderer = urlRenderer{}
		c.Shorten = func(_ context.Context, long string) string { return "https://sho.rt/" + long[len(long)-4:] }
	})
	owner := r.user("owner", "owner@example.org", "")
	m, err := r.book.CreateMeeting(owner, input(t, twoParticipants))
	must(t, err)
	r.ob.Start()
	es := r.waitStatus(m.UUID, map[Status]int{Sent: 1})
	r.tr.mu.Lock()
	defer r.tr.mu.Unlock()
	if want := "https://sho.rt/" + m.UUID[len(m.UUID)-4:]; len(r.tr.sms) != 1 || r.tr.sms[0].Text != want {
		t.Errorf("sms %+v, want the text %q", r.tr.sms, want)
	}
	if es[0].Meeting.URL != "https://meet.example/m/"+m.UUID {
		t.Errorf("the entry's link %q, want the long one", es[0].Meeting.URL)
	}
}

// badRenderer cannot render an SMS.
type badRenderer struct{ fakeRenderer }

func (badRenderer) SMS(Kind, string, Party, Meeting) (string, string, error) {
	return "", "", errors.New("helper formatDate: bad timeZone")
}

// TestOutboxRenderFailure: a message that cannot be rendered fails at
// once (no retry can fix it), with Quobis's log line.
func TestOutboxRenderFailure(t *testing.T) {
	r := newRig(t, func(c *OutboxConfig) {
		c.Mechanisms = []string{MechSMS}
		c.Renderer = badRenderer{}
	})
	owner := r.user("owner", "owner@example.org", "")
	m, err := r.book.CreateMeeting(owner, input(t, twoParticipants))
	must(t, err)
	r.ob.Start()
	es := r.waitStatus(m.UUID, map[Status]int{Failed: 1})
	if es[0].Attempts != 1 {
		t.Errorf("attempts %d, want 1", es[0].Attempts)
	}
	if !strings.Contains(r.logs.String(), "unable to load resource for sms (helper formatDate: bad timeZone)") {
		t.Errorf("log %s", r.logs.String())
	}
}
