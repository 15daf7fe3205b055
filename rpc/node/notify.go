package node

import (
	"log/slog"
	"net/url"
	"os"
	"time"

	"webconf/conf"
	"webconf/rpc/rest"
	"webconf/sipapp/notify"
	"webconf/sipapp/store"
)

// newOutbox makes the invitations outbox from [meetings] inviteMechanisms[]
// and remindBefore; nil when neither asks for anything to be sent.
func newOutbox(cfg *conf.Config, st store.Store, p NotifyParts, log *slog.Logger) *notify.Outbox {
	m := cfg.Meetings
	if len(m.InviteMechanisms) == 0 && m.RemindBefore <= 0 {
		return nil
	}
	return notify.NewOutbox(notify.OutboxConfig{
		Store: st, Mechanisms: m.InviteMechanisms, RemindBefore: time.Duration(m.RemindBefore) * time.Minute,
		Host:     messageIDHost(m.LinkHost),
		Link:     rest.InvitationLink(m.LinkHost, m.LinkFormat, m.PSTNExtension),
		Renderer: p.Renderer, Calendar: p.Calendar, Mailer: p.Mailer, SMS: p.SMS, Pusher: p.Pusher,
		Now: p.Now, After: p.After, Log: log,
	})
}

// messageIDHost is the right side of the invitations' Message-IDs: the
// host of linkHost, else this machine's name.
func messageIDHost(linkHost string) string {
	if u, err := url.Parse(linkHost); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "webconf.invalid"
}
