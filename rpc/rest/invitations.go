package rest

import (
	"net/http"
	"time"

	"webconf/sipapp/meeting"
	"webconf/sipapp/notify"
)

// invitationView is one message of a meeting's outbox (an invitation,
// update, cancellation or reminder to one participant by one mechanism).
type invitationView struct {
	ID          string          `json:"id"`
	Participant participantInfo `json:"participant"`
	Mechanism   string          `json:"mechanism"`
	Kind        string          `json:"kind"`
	Status      string          `json:"status"`
	Reason      *string         `json:"reason"`
	Attempts    int             `json:"attempts"`
	Created     time.Time       `json:"created"`
	NextAttempt *time.Time      `json:"next_attempt"`
	LastAttempt *time.Time      `json:"last_attempt"`
	SentAt      *time.Time      `json:"sent_at"`
}

type participantInfo struct {
	Name     string  `json:"name"`
	Email    *string `json:"email"`
	Phone    *string `json:"phone"`
	UserUUID *string `json:"user_uuid"`
}

func invitationsView(es []notify.Entry) []invitationView {
	out := make([]invitationView, 0, len(es))
	for _, e := range es {
		v := invitationView{
			ID: e.ID, Mechanism: e.Mechanism, Kind: string(e.Kind), Status: string(e.Status),
			Attempts: e.Attempts, Created: e.Created, LastAttempt: e.LastAttempt, SentAt: e.SentAt,
		}
		p := e.Participant()
		v.Participant = participantInfo{Name: p.Name, Email: strPtr(p.Email), Phone: strPtr(p.Phone), UserUUID: strPtr(p.UserUUID)}
		if e.Reason != "" {
			v.Reason = strPtr(e.Reason)
		}
		if e.Status == notify.Queued {
			t := e.NextAttempt
			v.NextAttempt = &t
		}
		out = append(out, v)
	}
	return out
}

// listInvitations is GET .../meetings/{uuid}/invitations.
func (a *API) listInvitations(c *ctx) {
	m, err := a.book.MyMeeting(c.me.UUID, c.r.PathValue("uuid"))
	if err != nil {
		c.fail(err)
		return
	}
	if a.o.Outbox == nil {
		c.ok(http.StatusOK, listOf([]invitationView{}))
		return
	}
	c.ok(http.StatusOK, listOf(invitationsView(a.o.Outbox.Entries(m.UUID))))
}

// resendInvitations is POST .../meetings/{uuid}/invitations/resend: every
// participant is invited again (new Message-IDs); 202 with the meeting's
// messages, the new ones queued.
func (a *API) resendInvitations(c *ctx) {
	id := c.r.PathValue("uuid")
	if _, err := a.book.MyMeeting(c.me.UUID, id); err != nil {
		c.fail(err)
		return
	}
	if a.o.Outbox == nil {
		c.fail(errNoOutbox)
		return
	}
	if err := a.book.ResendInvitations(c.me.UUID, id); err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusAccepted, listOf(invitationsView(a.o.Outbox.Entries(id))))
}

// InvitationLink is notify.OutboxConfig.Link for these settings ([meetings]
// linkHost, linkFormat, pstnExtension): the meeting's link as GET shows it
// in url, and the dial-in number and PIN (the meeting's number) when
// pstnExtension is set.
func InvitationLink(linkHost, linkFormat, pstnExtension string) func(meeting.Meeting, []meeting.User) (string, string, string) {
	return func(m meeting.Meeting, owners []meeting.User) (link, ext, pin string) {
		if linkHost != "" {
			var owner *meeting.User
			if len(owners) > 0 {
				owner = &owners[0]
			}
			link = linkOf(linkHost, linkFormat, m, owner)
		}
		if pstnExtension != "" {
			ext, pin = pstnExtension, m.Exten
		}
		return link, ext, pin
	}
}
