package conf

import (
	"net/mail"
	"net/netip"
	"time"
)

// validateMail checks the [mail] section. Nothing is checked beyond the
// syntax when host is empty (no email service), except a from that is
// set but unreadable.
func validateMail(c *Config, report func(section, key, format string, args ...any)) {
	m := &c.Mail
	if m.Port < 0 || m.Port > 65535 {
		report("mail", "port", "%d is not in 0..65535 (0 = 465 with tls, else 587)", m.Port)
	}
	if m.From != "" {
		if _, err := mail.ParseAddress(m.From); err != nil {
			report("mail", "from", "%q is not an email address (%v)", m.From, err)
		}
	}
	if m.Host == "" {
		return
	}
	if _, err := netip.ParseAddr(m.Host); err != nil && !dnsName(m.Host) {
		report("mail", "host", "%q is neither an IP address nor a DNS name (the port goes in port)", m.Host)
	}
	if m.From == "" {
		report("mail", "from", "must be set with host (the envelope sender)")
	}
	if (m.Username == "") != (m.Password == "") {
		report("mail", "username", "username and password go together")
	}
	if m.Username != "" && !m.TLS && !m.StartTLS {
		report("mail", "username", "AUTH needs tls or starttls: the password would cross the network in clear")
	}
	if m.Timeout < time.Second {
		report("mail", "timeout", "must be at least 1 second")
	}
}
