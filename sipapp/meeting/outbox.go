package meeting

import (
	"strings"

	"webconf/sipapp/store"
)

// Outbox is told of every change of a meeting and adds its own documents
// (queued invitations, reminders) to the Book's write, so that a meeting
// and what it sends are stored in one transaction (package notify
// implements it; it is nil when nothing is sent).
type Outbox interface {
	// Owns reports whether documents of this kind are the Outbox's: the
	// Book hands them to Restore at start-up instead of reading them.
	Owns(kind string) bool
	Restore(d store.Doc) error
	// Changes returns what to write with the changes. It is called with
	// the Book's lock held and must not call back into the Book; done is
	// called once, with whether the write succeeded, before the Book's
	// lock is released.
	Changes(cs []Change) (put []store.Doc, del []store.DocKey, done func(ok bool))
}

// Change is one meeting change: Before is nil for a new meeting, After
// nil for a deleted one.
type Change struct {
	Before, After *Meeting
	// SendInvites: invite every participant again (send_invites, or
	// POST .../invitations/resend).
	SendInvites bool
	// Expired: deleted by meeting_ttl, not by a user (nothing is sent).
	Expired bool
	// Owners are the meeting's owners as users, in its order.
	Owners []User
	// ParticipantUsers[i] is the uuid of the user whose email or mobile
	// phone is participant i's (of After, or of Before when deleting),
	// "" for none.
	ParticipantUsers []string
}

// changeLocked describes a change for the Outbox (b.mu held).
func (b *Book) changeLocked(before, after *Meeting) Change {
	c := Change{Before: before, After: after}
	m := after
	if m == nil {
		m = before
	}
	for _, id := range m.OwnerUUIDs {
		if u, ok := b.users[id]; ok {
			c.Owners = append(c.Owners, cloneUser(u.User))
		}
	}
	for _, p := range m.Participants {
		c.ParticipantUsers = append(c.ParticipantUsers, b.userOfLocked(p))
	}
	return c
}

// userOfLocked finds the user a participant is, by email or mobile phone.
func (b *Book) userOfLocked(p Invitee) string {
	for id, u := range b.users {
		if (p.Email != "" && strings.EqualFold(p.Email, u.Email)) || (p.Phone != "" && p.Phone == u.MobilePhone) {
			return id
		}
	}
	return ""
}

// writeChanges is write with the Outbox's documents for the changes.
func (b *Book) writeChanges(put []store.Doc, del []store.DocKey, cs ...Change) *Error {
	if b.cfg.Outbox == nil || len(cs) == 0 {
		return b.write(put, del)
	}
	p, d, done := b.cfg.Outbox.Changes(cs)
	err := b.write(append(put, p...), append(del, d...))
	if done != nil {
		done(err == nil)
	}
	return err
}

// ResendInvitations queues the invitations of the user's meeting again
// (POST .../invitations/resend).
func (b *Book) ResendInvitations(user, uuid string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, err := b.ownedLocked(user, uuid)
	if err != nil {
		return err
	}
	c := b.changeLocked(m, m)
	c.SendInvites = true
	if b.cfg.Outbox == nil {
		return nil
	}
	if err := b.writeChanges(nil, nil, c); err != nil {
		return err
	}
	return nil
}
