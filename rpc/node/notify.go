package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"webconf/conf"
	"webconf/rpc/rest"
	"webconf/sipapp/notify"
	"webconf/sipapp/notify/tmpl"
	"webconf/sipapp/store"
)

// newOutbox makes the invitations outbox from [meetings] inviteMechanisms[]
// and remindBefore; nil when neither asks for anything to be sent. Parts
// the options leave nil come from the config: the templates (parsed now:
// a broken one stops start-up, naming its file and line), the iCalendar
// writer, the SMTP mailer when [mail] host is set, the SMS and push
// gateways when [sms] and [push] url are, and the link shortener when
// [meetings] shortenerToken is.
func newOutbox(cfg *conf.Config, st store.Store, o Options, log *slog.Logger) (*notify.Outbox, error) {
	m := cfg.Meetings
	if len(m.InviteMechanisms) == 0 && m.RemindBefore <= 0 {
		return nil, nil
	}
	p := o.Notify
	if p.Renderer == nil {
		set, err := tmpl.Open(m.TemplatePath, o.ConfigDir, m.LanguagesTemplates, log)
		if err != nil {
			return nil, fmt.Errorf("node: invitation templates: %w", err)
		}
		p.Renderer = set
	}
	if p.Calendar == nil {
		p.Calendar = calendarFunc(notify.Calendar)
	}
	if p.Mailer == nil && cfg.Mail.Host != "" {
		mailer, err := notify.NewMailer(cfg.Mail)
		if err != nil {
			return nil, fmt.Errorf("node: [mail]: %w", err)
		}
		p.Mailer = mailer
	}
	if p.SMS == nil {
		sms, err := notify.NewSMSGateway(cfg.SMS)
		if err != nil {
			return nil, fmt.Errorf("node: [sms]: %w", err)
		}
		p.SMS = sms
	}
	if p.Pusher == nil {
		push, err := notify.NewPushGateway(cfg.Push)
		if err != nil {
			return nil, fmt.Errorf("node: [push]: %w", err)
		}
		p.Pusher = push
	}
	var shorten func(context.Context, string) string
	if sh := notify.NewShortener(m, log); sh != nil {
		shorten = sh.Shorten
	}
	return notify.NewOutbox(notify.OutboxConfig{
		Store: st, Mechanisms: m.InviteMechanisms, RemindBefore: time.Duration(m.RemindBefore) * time.Minute,
		Host:     messageIDHost(m.LinkHost),
		Link:     rest.InvitationLink(m.LinkHost, m.LinkFormat, m.PSTNExtension),
		Renderer: p.Renderer, Calendar: p.Calendar, Shorten: shorten, Mailer: p.Mailer, SMS: p.SMS, Pusher: p.Pusher,
		BaseDelay: p.RetryBase, Now: p.Now, After: p.After, Log: log,
	}), nil
}

// calendarFunc makes notify.Calendar a notify.CalendarWriter.
type calendarFunc func(method string, m notify.Meeting, attendees []notify.Party, now time.Time) ([]byte, error)

func (f calendarFunc) Calendar(method string, m notify.Meeting, attendees []notify.Party, now time.Time) ([]byte, error) {
	return f(method, m, attendees, now)
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
