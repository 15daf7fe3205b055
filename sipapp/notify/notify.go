// Package notify sends meeting invitations, updates, cancellations and
// reminders (Quobis's meetings service): email with an RFC 5545 calendar
// part, SMS through an HTTP gateway, and push reminders, each rendered
// from Handlebars templates chosen by mechanism and language, through a
// durable outbox that sends every message once.
//
// This file is the contract between its parts: the message kinds, the
// data a message is built from, the rendered messages and the transports.
package notify

import (
	"context"
	"errors"
	"time"
)

// Kind is why a message goes out.
type Kind string

// Message kinds.
const (
	Invitation   Kind = "invitation"   // the meeting was created, or the participant added, or send_invites
	Update       Kind = "update"       // the meeting's time changed (iCalendar REQUEST with a higher SEQUENCE)
	Cancellation Kind = "cancellation" // the meeting was deleted (iCalendar CANCEL)
	Reminder     Kind = "reminder"     // remindBefore minutes before valid_since
)

// User is a meeting's organiser or owner as the templates see it.
type User struct {
	UUID        string
	Username    string
	Email       string
	MobilePhone string
	Alias       string
}

// Party is one participant (Quobis: an email address, a mobile number or
// a user).
type Party struct {
	Name     string
	Email    string
	Phone    string
	UserUUID string // "" when not one of our users
}

// Meeting is what every message of a meeting is built from.
type Meeting struct {
	UUID         string
	Name         string
	Language     string // one of [meetings] languagesTemplates
	URL          string // the link (shortened when a shortener is set)
	ValidSince   *time.Time
	ValidUntil   *time.Time
	Organizer    User   // the meeting's first owner (Quobis's meeting.user)
	Owners       []User // every owner (meeting.users)
	Participants []Party
	// DDIExtension and DDIPin: how to dial in ([meetings] pstnExtension and
	// the meeting's number), empty when pstnExtension is not set.
	DDIExtension string
	DDIPin       string
	// Sequence is the iCalendar SEQUENCE (RFC 5545 3.8.7.4): 0 at
	// creation, one more at each update that changes the time.
	Sequence int
}

// Email is one rendered email to one participant.
type Email struct {
	// MessageID is fixed when the message is queued (RFC 5322 msg-id,
	// without the angle brackets), so a retry after a crash is the same
	// message and the receiving side can drop a duplicate.
	MessageID string
	From      string
	To        string
	Subject   string
	Text      string
	HTML      string
	// Calendar is the text/calendar body (RFC 5545/5546), sent both as a
	// part of multipart/alternative and as an .ics attachment; Method is
	// its METHOD (REQUEST or CANCEL).
	Calendar []byte
	Method   string
}

// SMS is one rendered SMS to one participant.
type SMS struct {
	Key  string // idempotency key, fixed when queued
	To   string
	From string
	Text string
}

// Push is one push reminder (Quobis's fixed payload {"type":
// "meeting-reminder", "info": {"id", "name"}}) for one participant user.
type Push struct {
	Key         string // idempotency key, fixed when queued
	UserUUID    string
	MeetingUUID string
	Name        string
}

// Mailer sends an email; SMSSender an SMS; Pusher a push. An error
// wrapping ErrPermanent is not retried (a refused address, a 4xx from a
// gateway other than 408/429); any other error is retried with backoff.
type (
	Mailer interface {
		SendEmail(ctx context.Context, e Email) error
	}
	SMSSender interface {
		SendSMS(ctx context.Context, s SMS) error
	}
	Pusher interface {
		SendPush(ctx context.Context, p Push) error
	}
)

// ErrPermanent marks a failure that retrying cannot fix.
var ErrPermanent = errors.New("permanent failure")
