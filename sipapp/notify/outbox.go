package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"webconf/sipapp/meeting"
	"webconf/sipapp/store"
)

// Document kinds of the outbox in the store (written in the meetings'
// transactions through meeting.Outbox).
const (
	docEntry   = "outbox"         // one queued message
	docMeeting = "outbox_meeting" // per meeting: the iCalendar sequence
)

// Mechanisms.
const (
	MechEmail = "email"
	MechSMS   = "sms"
	MechPush  = "push"
)

// Status of an entry.
type Status string

// Entry statuses.
const (
	Queued Status = "queued"
	Sent   Status = "sent"
	Failed Status = "failed"
)

// Renderer turns a message kind, a language, a participant and a meeting
// into the text of an email or an SMS (package notify/tmpl).
type Renderer interface {
	Email(k Kind, lang string, p Party, m Meeting) (from, subject, text, html string, err error)
	SMS(k Kind, lang string, p Party, m Meeting) (from, text string, err error)
}

// CalendarWriter writes the iCalendar object of an email (RFC 5545/5546):
// method REQUEST or CANCEL, every participant an attendee.
type CalendarWriter interface {
	Calendar(method string, m Meeting, attendees []Party, now time.Time) ([]byte, error)
}

// OutboxConfig configures an Outbox.
type OutboxConfig struct {
	Store store.Store
	// Mechanisms are [meetings] inviteMechanisms[] (email, sms).
	Mechanisms []string
	// RemindBefore is [meetings] remindBefore; 0: no reminders.
	RemindBefore time.Duration
	// Host is the right side of the Message-IDs (<random>@Host).
	Host string
	// Link gives a meeting's URL and how to dial in (DDI extension and
	// PIN, "" when pstnExtension is not set).
	// It is called with the meetings Book's lock held (it must not call
	// the Book); owners are the meeting's, first the organiser.
	Link func(m meeting.Meeting, owners []meeting.User) (url, ddiExtension, ddiPin string)

	Renderer Renderer
	Calendar CalendarWriter
	// Shorten, when set, shortens the meeting's link at send time (not in
	// Link, which runs in the meetings' transaction: a slow shortener
	// would hold up the store); it returns the long link when it fails.
	Shorten func(ctx context.Context, long string) string
	// Transports; nil: the service is not available (the message fails).
	Mailer Mailer
	SMS    SMSSender
	Pusher Pusher

	// MaxAttempts before a message is failed (0: 10); the delay after
	// attempt n is BaseDelay*2^(n-1) (0: 5 s), at most MaxDelay (0:
	// 10 min).
	MaxAttempts         int
	BaseDelay, MaxDelay time.Duration
	// SendTimeout bounds one send (0: 1 min).
	SendTimeout time.Duration

	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	Log   *slog.Logger
}

// Entry is one message in the outbox, fixed when it is queued: whom,
// how, why, its Message-ID (or idempotency key) and the meeting as it was.
type Entry struct {
	ID          string     `json:"id"`
	MeetingUUID string     `json:"meeting_uuid"`
	Party       partyDoc   `json:"participant"`
	Mechanism   string     `json:"mechanism"`
	Kind        Kind       `json:"kind"`
	MessageID   string     `json:"message_id"`
	Status      Status     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	Attempts    int        `json:"attempts"`
	Created     time.Time  `json:"created"`
	NextAttempt time.Time  `json:"next_attempt"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	SentAt      *time.Time `json:"sent_at,omitempty"`
	// Gone: the meeting was deleted (a cancellation); the entry goes when
	// it is sent or failed.
	Gone    bool       `json:"gone,omitempty"`
	Meeting meetingDoc `json:"meeting"`
}

type meetingState struct {
	UUID     string `json:"uuid"`
	Sequence int    `json:"sequence"`
}

// Outbox queues and sends the messages of meetings. It implements
// meeting.Outbox.
type Outbox struct {
	cfg OutboxConfig
	log *slog.Logger

	mu       sync.Mutex
	entries  map[string]*Entry
	state    map[string]*meetingState
	inflight map[string]bool
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	started  bool
}

// NewOutbox makes an Outbox; the meetings Book restores its entries
// (meeting.Config.Outbox), then Start sends them.
func NewOutbox(cfg OutboxConfig) *Outbox {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.After == nil {
		cfg.After = time.After
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 10
	}
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 5 * time.Second
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 10 * time.Minute
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = time.Minute
	}
	if cfg.Host == "" {
		cfg.Host = "webconf.invalid"
	}
	return &Outbox{
		cfg: cfg, log: cfg.Log,
		entries: map[string]*Entry{}, state: map[string]*meetingState{}, inflight: map[string]bool{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
}

// Backoff is the delay after the n-th failed attempt (n >= 1).
func (o *Outbox) Backoff(n int) time.Duration {
	d := o.cfg.BaseDelay
	for i := 1; i < n && d < o.cfg.MaxDelay; i++ {
		d *= 2
	}
	return min(d, o.cfg.MaxDelay)
}

// Owns implements meeting.Outbox.
func (o *Outbox) Owns(kind string) bool { return kind == docEntry || kind == docMeeting }

// Restore implements meeting.Outbox.
func (o *Outbox) Restore(d store.Doc) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch d.Kind {
	case docEntry:
		var e Entry
		if err := json.Unmarshal(d.Body, &e); err != nil {
			return fmt.Errorf("outbox entry: %w", err)
		}
		o.entries[e.ID] = &e
	case docMeeting:
		var s meetingState
		if err := json.Unmarshal(d.Body, &s); err != nil {
			return fmt.Errorf("outbox meeting: %w", err)
		}
		o.state[s.UUID] = &s
	}
	return nil
}

func entryDoc(e *Entry) store.Doc {
	b, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("outbox: marshal entry: %v", err)) // our own type always marshals
	}
	return store.Doc{Kind: docEntry, ID: e.ID, Body: b}
}

func stateDoc(s *meetingState) store.Doc {
	b, _ := json.Marshal(s)
	return store.Doc{Kind: docMeeting, ID: s.UUID, Body: b}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// Participant is whom the entry goes to.
func (e Entry) Participant() Party { return fromPartyDoc(e.Party) }

// Entries lists the meeting's messages, oldest first.
func (o *Outbox) Entries(meetingUUID string) []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := []Entry{}
	for _, e := range o.entries {
		if e.MeetingUUID == meetingUUID && !e.Gone {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ---------------------------------------------------------------------------
// Queueing, in the meetings' transactions.

// Changes implements meeting.Outbox: o.mu is held from here until done,
// so that the sender's writes and these are never interleaved.
func (o *Outbox) Changes(cs []meeting.Change) ([]store.Doc, []store.DocKey, func(bool)) {
	o.mu.Lock()
	now := o.cfg.Now().UTC()
	tx := &txn{o: o, now: now, put: map[string]*Entry{}, del: map[string]bool{}, states: map[string]*meetingState{}, delStates: map[string]bool{}}
	for _, c := range cs {
		tx.change(c)
	}
	put, del := tx.docs()
	return put, del, func(ok bool) {
		defer o.mu.Unlock()
		if !ok {
			return
		}
		tx.commit()
		if len(tx.put) > 0 {
			o.kick()
		}
	}
}

// txn is the outbox's part of one meetings write.
type txn struct {
	o         *Outbox
	now       time.Time
	put       map[string]*Entry
	del       map[string]bool
	states    map[string]*meetingState
	delStates map[string]bool
}

func (t *txn) docs() ([]store.Doc, []store.DocKey) {
	var put []store.Doc
	var del []store.DocKey
	for _, e := range t.put {
		put = append(put, entryDoc(e))
	}
	for id := range t.del {
		del = append(del, store.DocKey{Kind: docEntry, ID: id})
	}
	for _, s := range t.states {
		put = append(put, stateDoc(s))
	}
	for id := range t.delStates {
		del = append(del, store.DocKey{Kind: docMeeting, ID: id})
	}
	return put, del
}

func (t *txn) commit() {
	for id := range t.del {
		delete(t.o.entries, id)
	}
	for id, e := range t.put {
		t.o.entries[id] = e
	}
	for id := range t.delStates {
		delete(t.o.state, id)
	}
	for id, s := range t.states {
		t.o.state[id] = s
	}
}

// current is the entry as this transaction leaves it.
func (t *txn) entriesOf(meetingUUID string) []*Entry {
	var out []*Entry
	for id, e := range t.o.entries {
		if t.del[id] || e.MeetingUUID != meetingUUID {
			continue
		}
		if p, ok := t.put[id]; ok {
			e = p
		}
		out = append(out, e)
	}
	for id, e := range t.put {
		if _, ok := t.o.entries[id]; !ok && e.MeetingUUID == meetingUUID {
			out = append(out, e)
		}
	}
	return out
}

func (t *txn) seq(uuid string) *meetingState {
	if s, ok := t.states[uuid]; ok {
		return s
	}
	s := &meetingState{UUID: uuid}
	if cur, ok := t.o.state[uuid]; ok {
		*s = *cur
	}
	t.states[uuid] = s
	return s
}

// pending: not yet sent and not being sent (so it can still be changed
// or cancelled).
func (t *txn) pending(e *Entry) bool {
	return e.Status == Queued && !t.o.inflight[e.ID]
}

// invited: an invitation or update that went, or may have gone.
func (t *txn) invited(e *Entry) bool {
	return (e.Kind == Invitation || e.Kind == Update) &&
		(e.Status == Sent || (e.Status == Queued && t.o.inflight[e.ID]))
}

func (t *txn) change(c meeting.Change) {
	switch {
	case c.After == nil:
		t.deleted(c)
	default:
		t.changed(c)
	}
}

// mechanisms are how a participant is reached.
func (t *txn) mechanisms(p Party) []string {
	var out []string
	for _, m := range t.o.cfg.Mechanisms {
		if (m == MechEmail && p.Email != "") || (m == MechSMS && p.Phone != "") {
			out = append(out, m)
		}
	}
	return out
}

func (t *txn) queue(k Kind, mech string, p Party, m Meeting, at time.Time) {
	id := randomHex(16)
	key := randomHex(16)
	if mech == MechEmail {
		key += "@" + t.o.cfg.Host
	}
	e := &Entry{
		ID: id, MeetingUUID: m.UUID, Party: toPartyDoc(p), Mechanism: mech, Kind: k, MessageID: key,
		Status: Queued, Created: t.now, NextAttempt: at, Meeting: toMeetingDoc(m),
	}
	t.put[id] = e
}

// set replaces an entry in this transaction.
func (t *txn) set(e Entry) { t.put[e.ID] = &e }

func (t *txn) drop(e *Entry) {
	delete(t.put, e.ID)
	if _, ok := t.o.entries[e.ID]; ok {
		t.del[e.ID] = true
	}
}

func partyKey(p Party) string { return strings.ToLower(p.Email) + "|" + p.Phone }

func (t *txn) snapshot(c meeting.Change, m *meeting.Meeting) (Meeting, []Party) {
	nm := t.o.convert(c, m)
	nm.Sequence = t.seq(m.UUID).Sequence
	return nm, nm.Participants
}

func timeChanged(a, b *meeting.Meeting) bool {
	eq := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return !eq(a.ValidSince, b.ValidSince) || !eq(a.ValidUntil, b.ValidUntil)
}

func (t *txn) changed(c meeting.Change) {
	uuid := c.After.UUID
	created := c.Before == nil
	moved := !created && timeChanged(c.Before, c.After)
	if moved {
		t.seq(uuid).Sequence++
	} else if created {
		t.seq(uuid)
	}
	m, parties := t.snapshot(c, c.After)
	old := map[string]bool{}
	if !created {
		for _, p := range c.Before.Participants {
			old[partyKey(Party{Email: p.Email, Phone: p.Phone})] = true
		}
	}
	now := map[string]bool{}
	for _, p := range parties {
		now[partyKey(p)] = true
	}
	// What is queued and not yet gone carries the meeting as it is now;
	// what was queued for participants no longer invited is cancelled,
	// and those who may have been reached are sent a cancellation.
	waiting := map[string]bool{} // party|mech with a pending invitation or update
	cancelled := map[string]bool{}
	for _, e := range t.entriesOf(uuid) {
		p := fromPartyDoc(e.Party)
		k := partyKey(p)
		if !now[k] {
			if t.pending(e) {
				t.drop(e)
			} else if t.invited(e) && !cancelled[k+"|"+e.Mechanism] {
				cancelled[k+"|"+e.Mechanism] = true
				cm := m
				cm.Sequence = t.seq(uuid).Sequence + 1
				t.queue(Cancellation, e.Mechanism, p, cm, t.now)
			}
			continue
		}
		if !t.pending(e) {
			continue
		}
		if e.Kind == Reminder {
			continue // below
		}
		ne := *e
		for _, np := range parties {
			if partyKey(np) == k {
				ne.Party = toPartyDoc(np)
			}
		}
		ne.Meeting = toMeetingDoc(m)
		t.set(ne)
		if e.Kind == Invitation || e.Kind == Update {
			waiting[k+"|"+e.Mechanism] = true
		}
	}
	for _, p := range parties {
		k := partyKey(p)
		for _, mech := range t.mechanisms(p) {
			switch {
			case waiting[k+"|"+mech]: // the queued one goes with the new data
			case created || c.SendInvites || !old[k]:
				t.queue(Invitation, mech, p, m, t.now)
			case moved:
				t.queue(Update, mech, p, m, t.now)
			}
		}
	}
	t.reminders(m, moved)
}

// reminders keeps one pending reminder per participant and mechanism (and
// a push per participant user) due RemindBefore before the start: moved
// with the time, dropped for those no longer invited; one already sent is
// sent again only when the time moved.
func (t *txn) reminders(m Meeting, moved bool) {
	rb := t.o.cfg.RemindBefore
	var due time.Time
	if rb > 0 && m.ValidSince != nil && m.ValidSince.After(t.now) {
		due = m.ValidSince.Add(-rb)
		if due.Before(t.now) {
			due = t.now
		}
	}
	want := map[string]Party{}
	if !due.IsZero() {
		for _, p := range m.Participants {
			for _, mech := range t.mechanisms(p) {
				want[partyKey(p)+"|"+mech] = p
			}
			if p.UserUUID != "" && t.o.cfg.Pusher != nil {
				want[partyKey(p)+"|"+MechPush] = p
			}
		}
	}
	for _, e := range t.entriesOf(m.UUID) {
		if e.Kind != Reminder {
			continue
		}
		k := partyKey(fromPartyDoc(e.Party)) + "|" + e.Mechanism
		p, ok := want[k]
		switch {
		case t.pending(e) && !ok:
			t.drop(e)
		case t.pending(e):
			c := *e
			c.Party = toPartyDoc(p)
			c.Meeting = toMeetingDoc(m)
			c.NextAttempt = due
			t.set(c)
			delete(want, k)
		case !moved:
			delete(want, k) // sent (or failed) once for this time
		}
	}
	for k, p := range want {
		mech := k[strings.LastIndexByte(k, '|')+1:]
		t.queue(Reminder, mech, p, m, due)
	}
}

func (t *txn) deleted(c meeting.Change) {
	uuid := c.Before.UUID
	m, _ := t.snapshot(c, c.Before)
	m.Sequence++
	cancelled := map[string]bool{}
	for _, e := range t.entriesOf(uuid) {
		k := partyKey(fromPartyDoc(e.Party)) + "|" + e.Mechanism
		if !c.Expired && t.invited(e) && !cancelled[k] {
			cancelled[k] = true
			t.queue(Cancellation, e.Mechanism, fromPartyDoc(e.Party), m, t.now)
		}
		t.drop(e)
	}
	for _, e := range t.put {
		if e.MeetingUUID == uuid {
			e.Gone = true
		}
	}
	delete(t.states, uuid)
	if _, ok := t.o.state[uuid]; ok {
		t.delStates[uuid] = true
	}
}

// convert is the meeting as the templates see it.
func (o *Outbox) convert(c meeting.Change, m *meeting.Meeting) Meeting {
	nm := Meeting{UUID: m.UUID, Name: m.Name, Language: m.Language}
	if m.ValidSince != nil {
		t := m.ValidSince.UTC()
		nm.ValidSince = &t
	}
	if m.ValidUntil != nil {
		t := m.ValidUntil.UTC()
		nm.ValidUntil = &t
	}
	if o.cfg.Link != nil {
		nm.URL, nm.DDIExtension, nm.DDIPin = o.cfg.Link(*m, c.Owners)
	}
	for i, u := range c.Owners {
		nu := User{UUID: u.UUID, Username: u.Username, Email: u.Email, MobilePhone: u.MobilePhone, Alias: u.Alias}
		if i == 0 {
			nm.Organizer = nu
		}
		nm.Owners = append(nm.Owners, nu)
	}
	for i, p := range m.Participants {
		np := Party{Name: p.Name, Email: p.Email, Phone: p.Phone}
		if i < len(c.ParticipantUsers) {
			np.UserUUID = c.ParticipantUsers[i]
		}
		nm.Participants = append(nm.Participants, np)
	}
	return nm
}

// ---------------------------------------------------------------------------
// The sender.

// Start runs the sender until Close.
func (o *Outbox) Start() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.started {
		return
	}
	o.started = true
	go o.run()
}

// Close stops the sender (a send under way is abandoned; it is sent again
// at the next start, with the same Message-ID).
func (o *Outbox) Close() {
	o.mu.Lock()
	started := o.started
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	o.mu.Unlock()
	if started {
		<-o.done
	}
}

func (o *Outbox) kick() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *Outbox) run() {
	defer close(o.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-o.stop:
			cancel()
		case <-o.done:
		}
	}()
	for {
		e, wait, again := o.next()
		if again {
			continue
		}
		if e == nil {
			var timer <-chan time.Time
			if wait > 0 {
				timer = o.cfg.After(wait)
			}
			select {
			case <-o.stop:
				return
			case <-o.wake:
			case <-timer:
			}
			continue
		}
		o.send(ctx, e)
		select {
		case <-o.stop:
			return
		default:
		}
	}
}

// next picks the earliest due entry, counts the attempt (stored before
// the send), and marks it in flight; or returns how long to wait (0:
// until woken), or again to look once more at once.
func (o *Outbox) next() (e *Entry, wait time.Duration, again bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.cfg.Now()
	var best *Entry
	for _, e := range o.entries {
		if e.Status != Queued || o.inflight[e.ID] {
			continue
		}
		if best == nil || e.NextAttempt.Before(best.NextAttempt) || (e.NextAttempt.Equal(best.NextAttempt) && e.ID < best.ID) {
			best = e
		}
	}
	if best == nil {
		return nil, 0, false
	}
	if best.NextAttempt.After(now) {
		return nil, best.NextAttempt.Sub(now), false
	}
	c := *best
	if c.Kind == Reminder && c.Meeting.ValidSince != nil && !now.Before(*c.Meeting.ValidSince) {
		// Due while we were down (or retried past the start): too late.
		reason := "the meeting began at " + c.Meeting.ValidSince.UTC().Format(time.RFC3339)
		o.log.Warn(fmt.Sprintf("Unable to send reminder for meeting: %s. Cause: %s", c.MeetingUUID, reason))
		o.finishLocked(&c, Failed, reason, now)
		return nil, 0, true
	}
	t := now.UTC()
	c.Attempts++
	c.LastAttempt = &t
	if err := o.writeLocked(&c); err != nil {
		o.log.Error("outbox: attempt not stored", "entry", c.ID, "err", err)
		return nil, o.cfg.BaseDelay, false
	}
	o.inflight[c.ID] = true
	out := c
	return &out, 0, false
}

func (o *Outbox) writeLocked(e *Entry) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if e.Gone && e.Status != Queued {
		if err := o.cfg.Store.WriteDocs(ctx, nil, []store.DocKey{{Kind: docEntry, ID: e.ID}}); err != nil {
			return err
		}
		delete(o.entries, e.ID)
		return nil
	}
	if err := o.cfg.Store.WriteDocs(ctx, []store.Doc{entryDoc(e)}, nil); err != nil {
		return err
	}
	o.entries[e.ID] = e
	return nil
}

// finishLocked stores the entry's final state (memory after the store).
func (o *Outbox) finishLocked(e *Entry, st Status, reason string, now time.Time) {
	e.Status, e.Reason = st, reason
	if st == Sent {
		t := now.UTC()
		e.SentAt = &t
	}
	if err := o.writeLocked(e); err != nil {
		o.log.Error("outbox: state not stored; the message stays queued", "entry", e.ID, "err", err)
	}
}

// errUnavailable is a transport that is not configured.
var errUnavailable = errors.New("service not available")

func (o *Outbox) send(ctx context.Context, e *Entry) {
	err := o.deliver(ctx, e)
	now := o.cfg.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.inflight, e.ID)
	cur, ok := o.entries[e.ID]
	if !ok || cur.Attempts != e.Attempts {
		return // cancelled (the meeting or participant went) while it was sent
	}
	c := *cur
	if err == nil {
		o.finishLocked(&c, Sent, "", now)
		return
	}
	if ctx.Err() != nil {
		return // stopping: it is sent again at the next start
	}
	perm := errors.Is(err, ErrPermanent) || errors.Is(err, errUnavailable) || errors.Is(err, errRender)
	if perm || c.Attempts >= o.cfg.MaxAttempts {
		if c.Kind == Reminder {
			o.log.Error(fmt.Sprintf("Unable to send reminder for meeting: %s. Cause: %s", c.MeetingUUID, err))
		} else {
			o.log.Error(fmt.Sprintf("Failed to invite participant %s to meeting %s(%s)", who(c.Party, c.Mechanism), c.Meeting.Name, c.MeetingUUID), "mechanism", c.Mechanism, "err", err)
		}
		o.finishLocked(&c, Failed, err.Error(), now)
		return
	}
	c.Reason = err.Error()
	c.NextAttempt = now.UTC().Add(o.Backoff(c.Attempts))
	if werr := o.writeLocked(&c); werr != nil {
		o.log.Error("outbox: retry time not stored", "entry", c.ID, "err", werr)
		o.entries[c.ID].NextAttempt = c.NextAttempt // retry anyway; the store has the attempt
	}
	o.log.Warn("outbox: send failed; retrying", "entry", c.ID, "mechanism", c.Mechanism, "attempt", c.Attempts, "next", c.NextAttempt, "err", err)
}

// who is the participant as the mechanism reaches them.
func who(p partyDoc, mech string) string {
	first := p.Email
	if mech == MechSMS {
		first = p.Phone
	}
	for _, s := range []string{first, p.Email, p.Phone, p.Name, p.UserUUID} {
		if s != "" {
			return s
		}
	}
	return "?"
}

var errRender = errors.New("cannot render the message")

// deliver renders the entry and hands it to its transport.
func (o *Outbox) deliver(ctx context.Context, e *Entry) error {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.SendTimeout)
	defer cancel()
	p := fromPartyDoc(e.Party)
	m := fromMeetingDoc(e.Meeting)
	if o.cfg.Shorten != nil && m.URL != "" {
		m.URL = o.cfg.Shorten(ctx, m.URL)
	}
	switch e.Mechanism {
	case MechEmail:
		if o.cfg.Mailer == nil || o.cfg.Renderer == nil {
			o.log.Error("Cannot send meeting invitation by email: Email service not available")
			return fmt.Errorf("email: %w", errUnavailable)
		}
		from, subject, text, html, err := o.cfg.Renderer.Email(e.Kind, m.Language, p, m)
		if err != nil {
			o.log.Error(fmt.Sprintf("unable to load resource for email (%v)", err)) // Quobis's words
			return fmt.Errorf("%w: email: %v", errRender, err)
		}
		em := Email{MessageID: e.MessageID, From: from, To: p.Email, Subject: subject, Text: text, HTML: html}
		if o.cfg.Calendar != nil && e.Kind != Reminder {
			em.Method = "REQUEST"
			if e.Kind == Cancellation {
				em.Method = "CANCEL"
			}
			cal, err := o.cfg.Calendar.Calendar(em.Method, m, m.Participants, o.cfg.Now())
			if err != nil {
				return fmt.Errorf("%w: calendar: %v", errRender, err)
			}
			em.Calendar = cal
		}
		return o.cfg.Mailer.SendEmail(ctx, em)
	case MechSMS:
		if o.cfg.SMS == nil || o.cfg.Renderer == nil {
			o.log.Error("Cannot send meeting invitation by sms: SMS service not available")
			return fmt.Errorf("sms: %w", errUnavailable)
		}
		from, text, err := o.cfg.Renderer.SMS(e.Kind, m.Language, p, m)
		if err != nil {
			o.log.Error(fmt.Sprintf("unable to load resource for sms (%v)", err)) // Quobis's words
			return fmt.Errorf("%w: sms: %v", errRender, err)
		}
		return o.cfg.SMS.SendSMS(ctx, SMS{Key: e.MessageID, To: p.Phone, From: from, Text: text})
	case MechPush:
		if o.cfg.Pusher == nil {
			return fmt.Errorf("push: %w", errUnavailable)
		}
		return o.cfg.Pusher.SendPush(ctx, Push{Key: e.MessageID, UserUUID: p.UserUUID, MeetingUUID: m.UUID, Name: m.Name})
	}
	return fmt.Errorf("%w: unknown mechanism %q", ErrPermanent, e.Mechanism)
}

var _ meeting.Outbox = (*Outbox)(nil)
