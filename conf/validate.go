package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Validate checks a configuration built in code (Parse already calls it):
// every problem is reported, joined, each a *KeyError wrapping ErrInvalid. It
// also compiles DirectRoomPattern into DirectRoomRE, rounds RTPLowPort up to
// even and lower-cases LogLevel.
func (c *Config) Validate() error {
	return errors.Join(c.validate()...)
}

// sipUserRe is a SIP URI user part without escapes (RFC 3261 25.1), or "".
var sipUserRe = regexp.MustCompile(`^[A-Za-z0-9\-_.!~*'()&=+$,;?/]{0,64}$`)

// hostWithPort adds a port to a bare host (IPv6 in brackets or bare) so
// that splitHostPort can read it.
func hostWithPort(d string) string {
	if _, _, err := splitHostPort(d); err == nil {
		return d
	}
	if strings.HasPrefix(d, "[") {
		return d + ":0"
	}
	if a, err := netip.ParseAddr(d); err == nil && a.Is6() {
		return "[" + d + "]:0"
	}
	return d + ":0"
}

// validate returns every problem of c, each naming its key.
func (c *Config) validate() []error {
	var errs []error
	report := func(section, key, format string, args ...any) {
		errs = append(errs, &KeyError{Section: section, Key: key, Problem: fmt.Sprintf(format, args...)})
	}

	// [server]
	s := &c.Server
	if host, _, err := splitHostPort(s.SIPListen); err != nil {
		report("server", "sip_listen", "%q: %v (want host:port)", s.SIPListen, err)
	} else if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			report("server", "sip_listen", "host %q is not an IP address", host)
		}
	}
	if s.SIPTLSListen != "" {
		if host, _, err := splitHostPort(s.SIPTLSListen); err != nil {
			report("server", "sip_tls_listen", "%q: %v (want host:port)", s.SIPTLSListen, err)
		} else if host != "" {
			if _, err := netip.ParseAddr(host); err != nil {
				report("server", "sip_tls_listen", "host %q is not an IP address", host)
			}
		}
		if strings.TrimSpace(s.TLSCert) == "" {
			report("server", "tls_cert", "must be set with sip_tls_listen (a PEM certificate chain)")
		}
		if strings.TrimSpace(s.TLSKey) == "" {
			report("server", "tls_key", "must be set with sip_tls_listen (a PEM private key)")
		}
	}
	if a, err := netip.ParseAddr(s.PublicIP); err != nil {
		report("server", "public_ip", "%q is not an IP address", s.PublicIP)
	} else if a.IsUnspecified() || a.IsMulticast() {
		// It goes into SDP c= lines; the peer must be able to send to it.
		report("server", "public_ip", "%s cannot receive media, give a unicast address", a)
	}
	if s.RTPLowPort < 1024 || s.RTPLowPort > 65535 {
		report("server", "rtp_low_port", "%d is not in 1024..65535", s.RTPLowPort)
	}
	if s.RTPHighPort < 1024 || s.RTPHighPort > 65535 {
		report("server", "rtp_high_port", "%d is not in 1024..65535", s.RTPHighPort)
	}
	if s.RTPLowPort%2 != 0 {
		s.RTPLowPort++ // RTP on even ports (RFC 3550 section 11)
	}
	if s.RTPHighPort < s.RTPLowPort+2 {
		report("server", "rtp_high_port", "%d leaves fewer than two even ports from rtp_low_port %d",
			s.RTPHighPort, s.RTPLowPort)
	}
	if strings.TrimSpace(s.DataDir) == "" {
		report("server", "data_dir", "must not be empty")
	}
	switch strings.ToLower(s.LogLevel) {
	case "debug", "info", "warn", "error":
		s.LogLevel = strings.ToLower(s.LogLevel)
	default:
		report("server", "log_level", "%q is not one of debug, info, warn, error", s.LogLevel)
	}

	if s.RTPReceive != "poll" && s.RTPReceive != "goroutine" {
		report("server", "rtp_receive", "%q is not one of poll, goroutine", s.RTPReceive)
	}
	switch s.RTPSocket {
	case "auto", "per_call":
	case "shared":
		if s.RTPReceive == "goroutine" {
			report("server", "rtp_socket", "shared needs rtp_receive = poll")
		}
	default:
		report("server", "rtp_socket", "%q is not one of auto, shared, per_call", s.RTPSocket)
	}
	switch strings.ToLower(s.SRTP) {
	case "off", "optional", "mandatory":
		s.SRTP = strings.ToLower(s.SRTP)
	default:
		report("server", "srtp", "%q is not one of off, optional, mandatory", s.SRTP)
	}

	// [webconference]
	w := &c.Webconference
	if w.DirectRoomPattern != "" {
		// SEMS uses regcomp(REG_EXTENDED|REG_NOSUB) and regexec: POSIX ERE,
		// unanchored (spec 5.1).
		re, err := regexp.CompilePOSIX(w.DirectRoomPattern)
		if err != nil {
			report("webconference", "direct_room_re", "%q is not a POSIX extended regular expression: %v",
				w.DirectRoomPattern, err)
		}
		w.DirectRoomRE = re
	}
	if w.DirectRoomStrip < 0 {
		report("webconference", "direct_room_strip", "%d must not be negative", w.DirectRoomStrip)
	}
	if w.RoomPinSplit < 0 {
		report("webconference", "room_pin_split", "%d must not be negative (0 = unset)", w.RoomPinSplit)
	}
	if w.MaxPinAttempts < 0 {
		report("webconference", "max_pin_attempts", "%d must not be negative (0 = unlimited)", w.MaxPinAttempts)
	}
	if w.DialoutAllowedPattern != "" {
		re, err := regexp.Compile(w.DialoutAllowedPattern)
		if err != nil {
			report("webconference", "dialout_allowed_re", "%q is not a regular expression: %v", w.DialoutAllowedPattern, err)
		}
		w.DialoutAllowedRE = re
	}
	if w.MaxDialouts < 0 {
		report("webconference", "max_dialouts", "%d must not be negative (0 = no limit)", w.MaxDialouts)
	}
	validateDialoutRouting(c, report)
	if w.Ringback == "" {
		report("webconference", "ringback", "empty: use us, eu, off or a WAV file")
	}
	if w.ParticipantIDHeader != "" && !isToken(w.ParticipantIDHeader) {
		report("webconference", "participant_id_header", "%q is not a SIP header name", w.ParticipantIDHeader)
	}
	switch w.SessionRefreshMethod {
	case "UPDATE_FALLBACK_INVITE", "INVITE", "UPDATE":
	default:
		report("webconference", "session_refresh_method", "%q is not one of UPDATE_FALLBACK_INVITE, INVITE, UPDATE",
			w.SessionRefreshMethod)
	}
	if w.EnableSessionTimer {
		// RFC 4028 section 4: Min-SE is at least 90 seconds; the interval we
		// ask for must lie between our minimum and maximum.
		if w.MinimumTimer < 90*time.Second {
			report("webconference", "minimum_timer", "%d is below 90 seconds (RFC 4028 section 4)",
				int64(w.MinimumTimer/time.Second))
		}
		if w.SessionExpires < w.MinimumTimer {
			report("webconference", "session_expires", "%d is below minimum_timer %d",
				int64(w.SessionExpires/time.Second), int64(w.MinimumTimer/time.Second))
		}
		if w.MaximumTimer < w.SessionExpires {
			report("webconference", "maximum_timer", "%d is below session_expires %d",
				int64(w.MaximumTimer/time.Second), int64(w.SessionExpires/time.Second))
		}
	}

	// [xmlrpc]
	x := &c.XMLRPC
	if x.ServerIP != "" {
		if _, err := netip.ParseAddr(x.ServerIP); err != nil {
			report("xmlrpc", "server_ip", "%q is not an IP address (empty = all interfaces)", x.ServerIP)
		}
	}
	if x.Port < 0 || x.Port > 65535 {
		report("xmlrpc", "xmlrpc_port", "%d is not in 0..65535", x.Port)
	}
	if x.MaxConnsPerSource < 0 {
		report("xmlrpc", "max_conns_per_source", "%d must not be negative (0 = off)", x.MaxConnsPerSource)
	}
	if x.Threads < 1 {
		report("xmlrpc", "threads", "%d must be at least 1", x.Threads)
	}

	// [http]
	if l := c.HTTP.Listen; l != "" {
		if _, _, err := splitHostPort(l); err != nil {
			report("http", "listen", "%q: %v", l, err)
		}
	}
	if v := c.HTTP.EventsRingSize; v < 16 || v > 1<<20 {
		report("http", "events_ring_size", "%d must be from 16 to 1048576", v)
	}
	if v := c.HTTP.EventsClientQueue; v < 1 || v > 1<<16 {
		report("http", "events_client_queue", "%d must be from 1 to 65536", v)
	}
	l := &c.Limits
	for key, v := range map[string]int{
		"pin_failures": l.PinFailures, "rpc_failures": l.RPCFailures, "room_failures": l.RoomFailures,
		"invite_rate": l.InviteRate, "invite_burst": l.InviteBurst, "max_calls": l.MaxCalls,
		"max_rooms": l.MaxRooms, "max_pending_invites": l.MaxPendingInvites,
		"max_tcp_conns": l.MaxTCPConns, "max_tcp_conns_per_source": l.MaxTCPConnsPerSource,
	} {
		if v < 0 {
			report("limits", key, "%d must not be negative (0 = off)", v)
		}
	}
	if (l.PinFailures > 0 || l.RPCFailures > 0 || l.RoomFailures > 0) && (l.FailureWindow <= 0 || l.BanTime <= 0) {
		report("limits", "failure_window", "failure_window and ban_time must be set when a failure budget is on")
	}
	if w.MixMaxTalkers < 0 {
		report("webconference", "mix_max_talkers", "%d must not be negative (0 = everyone)", w.MixMaxTalkers)
	}

	// [calls]
	cl := &c.Calls
	if cl.Domain != "" {
		if host, _, err := splitHostPort(hostWithPort(cl.Domain)); err != nil || host == "" || strings.ContainsAny(host, "@;?/ ") {
			report("calls", "domain", "%q is not a host or host:port", cl.Domain)
		}
	}
	if cl.OutboundProxy != "" {
		if _, err := ParseProxyURI(cl.OutboundProxy); err != nil {
			report("calls", "outbound_proxy", "%q: %v", cl.OutboundProxy, err)
		}
		if cl.Domain == "" {
			report("calls", "outbound_proxy", "is set but domain is empty (the proxy is the provider's)")
		}
	}
	if (cl.AuthUser == "") != (cl.AuthPassword == "") {
		report("calls", "auth_user", "auth_user and auth_password go together")
	}
	if cl.AuthUser != "" && cl.Domain == "" {
		report("calls", "auth_user", "credentials without a domain would answer nobody (they answer only the provider's host)")
	}
	if !sipUserRe.MatchString(cl.AuthUser) || !sipUserRe.MatchString(cl.FromUser) {
		report("calls", "from_user", "auth_user and from_user must be SIP user parts (letters, digits and -_.!~*'()&=+$,;?/)")
	}

	validateMail(c, report)

	// [meetings]
	m := &c.Meetings
	if m.LinkHost != "" && !validLinkHost(m.LinkHost) {
		// Quobis's own wording, so that operators find it in their docs.
		report("meetings", "linkHost", "Invalid linkHost %q: want an absolute http(s) URL without a trailing slash", m.LinkHost)
	}
	if m.LinkFormat != "unique" && m.LinkFormat != "user" {
		report("meetings", "linkFormat", "%q is not one of unique, user", m.LinkFormat)
	}
	for _, v := range m.InviteMechanisms {
		if v != "email" && v != "sms" {
			report("meetings", "inviteMechanisms[]", "%q is not one of email, sms", v)
		}
	}
	if len(m.LanguagesTemplates) == 0 {
		report("meetings", "languagesTemplates[]", "must name at least one language")
	}
	for _, v := range m.LanguagesTemplates {
		if !languageTag.MatchString(v) {
			report("meetings", "languagesTemplates[]", "%q is not a language code like en or pt-BR", v)
		}
	}
	if m.RemindBefore < 0 {
		report("meetings", "remindBefore", "%d must not be negative", m.RemindBefore)
	}
	if m.PSTNExtension != "" && !pstnNumber.MatchString(m.PSTNExtension) {
		report("meetings", "pstnExtension", "%q is not a phone number (digits, an optional leading +)", m.PSTNExtension)
	}
	if m.MeetingTTL < time.Second {
		report("meetings", "meeting_ttl", "must be at least 1 second")
	}
	if m.MaxPublicRooms < 0 {
		report("meetings", "max_public_rooms", "%d must not be negative (0 = no cap)", m.MaxPublicRooms)
	}
	if m.PublicRoomTTL < time.Second {
		report("meetings", "public_room_ttl", "must be at least 1 second")
	}
	for _, k := range []struct {
		key string
		v   int
	}{
		{"public_rooms_per_source", m.PublicRoomsPerSource},
		{"max_authorizations", m.MaxAuthorizations},
		{"max_authorizations_per_guest", m.MaxAuthorizationsPerGuest},
		{"guest_requests_per_source", m.GuestRequestsPerSource},
	} {
		if k.v < 0 {
			report("meetings", k.key, "%d must not be negative (0 = off)", k.v)
		}
	}
	if m.MaxParticipants < 1 {
		report("meetings", "max_participants", "%d must be at least 1", m.MaxParticipants)
	}
	c.validateNotify(report) // [sms], [push], shortenerURL: sms.go
	c.validateWebRTC(report) // webrtc.go
	return errs
}

var (
	languageTag = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$`)
	pstnNumber  = regexp.MustCompile(`^\+?[0-9]{1,20}$`)
)

// validLinkHost: an absolute http or https URL with a host, no trailing
// slash (links are built as linkHost + "/..."), no query or fragment.
func validLinkHost(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return false
	}
	return !strings.HasSuffix(s, "/") && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// isToken reports whether s is an RFC 3261 token (a header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// String renders the configuration as an ini file with every key, for a
// start-up log line or a --dump-config flag. Secrets (master_password,
// predefined room PINs) are replaced by "***".
func (c Config) String() string {
	var b strings.Builder
	cv := reflect.ValueOf(c)
	for i := 0; i < cv.NumField(); i++ {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", cv.Type().Field(i).Tag.Get("ini"))
		writeSection(&b, cv.Field(i))
	}
	return b.String()
}

// String renders the section's keys, secrets hidden (see Config.String).
func (w Webconference) String() string {
	var b strings.Builder
	writeSection(&b, reflect.ValueOf(w))
	return b.String()
}

func writeSection(b *strings.Builder, sv reflect.Value) {
	for j := 0; j < sv.NumField(); j++ {
		f := sv.Type().Field(j)
		key := f.Tag.Get("ini")
		if key == "" || key == "-" {
			continue
		}
		fmt.Fprintf(b, "%s=%s\n", key, formatValue(sv.Field(j), f.Tag))
	}
}

func formatValue(v reflect.Value, tag reflect.StructTag) string {
	if tag.Get("secret") == "true" {
		if v.String() == "" {
			return ""
		}
		return "***"
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		if tag.Get("unit") == "ms" {
			return strconv.FormatInt(x.Milliseconds(), 10)
		}
		return strconv.FormatInt(int64(x/time.Second), 10)
	case []PredefinedRoom:
		parts := make([]string, len(x))
		for i, r := range x {
			parts[i] = r.String()
		}
		return strings.Join(parts, ";")
	case []string:
		return strings.Join(x, ";")
	case []netip.Prefix:
		parts := make([]string, len(x))
		for i, p := range x {
			parts[i] = p.String()
		}
		return strings.Join(parts, ";")
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case string:
		// Quote what literalValue would otherwise cut or trim, so the output
		// parses back to the same value.
		if strings.ContainsAny(x, "#\"") || strings.TrimSpace(x) != x {
			return `"` + strings.ReplaceAll(x, `"`, `\"`) + `"`
		}
		return x
	}
	return fmt.Sprint(v.Interface())
}
