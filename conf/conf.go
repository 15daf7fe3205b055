// Package conf loads webconfd's configuration: one ini file with the sections
// [server], [webconference] and [xmlrpc].
//
// Loading is strict on purpose. The values are decoded over Default(), every
// unknown section or key and every bad value is an error, and Parse reports all
// problems at once (errors.Join), each naming its section and key, so that an
// operator fixes a file in one pass instead of one restart per typo. SEMS
// silently ignores unknown keys and falls back to defaults on bad numbers; that
// is how a misspelt private_rooms ends up as a public server.
//
// Compatibility with SEMS: keys written outside any section are read as
// [webconference], so an existing SEMS webconference.conf (which has no
// sections) works unchanged as the whole file. The [webconference] keys have
// SEMS's names and defaults (spec section 6), except that prompt paths default
// to the built-in prompts. [xmlrpc] carries the xmlrpc2di.conf keys.
//
// File syntax (close to SEMS's AmConfigReader, core/AmConfigReader.cpp):
//   - lines starting with '#' or ';' are comments;
//   - key=value, only '=' separates key and value (':' is data: predefined_rooms);
//   - in an unquoted value, '#' starts a comment, as in SEMS; ';' does not,
//     because lists (predefined_rooms, direct_export) are ';'-separated;
//   - a value in double quotes is taken literally ('#' included, \" is a quote);
//   - a key given twice is an error (SEMS warns and keeps the last one).
package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// ErrInvalid is wrapped by every problem Parse reports about the file's
// content (as opposed to failing to read it), so callers can tell a bad
// configuration from a missing one with errors.Is.
var ErrInvalid = errors.New("invalid configuration")

// KeyError is one problem with one key (or, with Key empty, a whole section).
// Parse joins them; use errors.As on the parts to inspect them.
type KeyError struct {
	Section string // section name without brackets; section-less keys report "webconference"
	Key     string // empty for a problem with the section itself
	Problem string
}

func (e *KeyError) Error() string {
	if e.Key == "" {
		return "conf: [" + e.Section + "] " + e.Problem
	}
	return "conf: [" + e.Section + "] " + e.Key + ": " + e.Problem
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *KeyError) Unwrap() error { return ErrInvalid }

// Config is the whole configuration. Field tags: `ini` is the key name,
// `unit` the unit of a time.Duration key in the file ("s" or "ms"), `secret`
// marks values that String never prints.
type Config struct {
	Server        Server        `ini:"server"`
	Webconference Webconference `ini:"webconference"`
	XMLRPC        XMLRPC        `ini:"xmlrpc"`
	HTTP          HTTP          `ini:"http"`
	Limits        Limits        `ini:"limits"`
	Meetings      Meetings      `ini:"meetings"`
	Calls         Calls         `ini:"calls"`
	Mail          Mail          `ini:"mail"`
	SMS           SMS           `ini:"sms"`    // sms.go
	Push          Push          `ini:"push"`   // sms.go
	WebRTC        WebRTC        `ini:"webrtc"` // webrtc.go
}

// Mail is the [mail] section: the SMTP server meeting invitations,
// updates, cancellations and reminders are sent through (sipapp/notify).
// An empty Host means no email service.
type Mail struct {
	// Host is the SMTP server's name or IP address ("" = no email).
	Host string `ini:"host"`
	// Port is the SMTP port; 0 picks the mode's: 465 with tls, else 587.
	Port int `ini:"port"`
	// StartTLS requires STARTTLS (RFC 3207) before AUTH and MAIL: a
	// server that does not offer it is refused. no: plain SMTP (a relay
	// on the same host).
	StartTLS bool `ini:"starttls"`
	// TLS is implicit TLS from the first byte (RFC 8314, port 465);
	// starttls does not apply then.
	TLS bool `ini:"tls"`
	// Username and Password log in (SMTP AUTH, the strongest mechanism
	// the server offers; only over TLS); empty: no AUTH.
	Username string `ini:"username"`
	Password string `ini:"password" secret:"true"`
	// From is the envelope sender (MAIL FROM) and the From of messages
	// whose template gives none: an RFC 5322 address, with or without a
	// display name.
	From string `ini:"from"`
	// Timeout bounds connecting and each SMTP command.
	Timeout time.Duration `ini:"timeout" unit:"s"`
	// TLSCAFile adds PEM CA certificates to the system roots for the SMTP
	// server's certificate; TLSVerify no accepts any certificate (tests).
	TLSCAFile string `ini:"tls_ca_file"`
	TLSVerify bool   `ini:"tls_verify"`
}

// String renders the section's keys with the password hidden, so that
// printing a Mail (or a notify.MailConfig) never shows it.
func (m Mail) String() string {
	var b strings.Builder
	writeSection(&b, reflect.ValueOf(m))
	return b.String()
}

// Calls is the [calls] section: the provider through which the calls API
// (POST /api/v1/users/me/calls) and users' own phones dial numbers. Calls
// are dial-outs: dialout_allowed_re and max_dialouts apply to every leg.
type Calls struct {
	// Domain is the provider's host[:port]: a destination that is a number
	// becomes sip:<number>@<domain>. "" = no provider (numbers are refused,
	// SIP URIs are dialled as they are).
	Domain string `ini:"domain"`
	// OutboundProxy (sip:host[:port][;transport=...]) receives the calls
	// to the provider's domain instead of the domain itself; "" = none.
	OutboundProxy string `ini:"outbound_proxy"`
	// AuthUser and AuthPassword answer digest challenges, and only those
	// that come from the provider's host (outbound_proxy, else domain).
	AuthUser     string `ini:"auth_user"`
	AuthPassword string `ini:"auth_password" secret:"true"`
	// FromUser is the user part of From on calls to the provider
	// (default auth_user, else the calling user's name).
	FromUser string `ini:"from_user"`
}

// Meetings is the [meetings] section: the REST API for scheduled meetings
// (served on [http] listen). The camel-case keys are Quobis WAC's wac.ini
// [meetings] keys, kept with their names so an existing section can be
// pasted in; keys ending in [] may be given once per value, PHP-style, or
// once with ';'-separated values. The snake-case keys are ours.
type Meetings struct {
	// LinkHost is the base of the link a meeting carries in its url field
	// (Quobis: mandatory there). An absolute http(s) URL without a
	// trailing slash; "" leaves url null.
	LinkHost string `ini:"linkHost"`
	// LinkFormat is Quobis's linkFormat: "unique" (the link ends in the
	// meeting's uuid) or "user" (the creator's alias, then the uuid).
	LinkFormat string `ini:"linkFormat"`
	// InviteMechanisms are how invitations go out (email, sms). Accepted
	// and validated; sending them belongs to the notifier (DESIGN.md).
	InviteMechanisms []string `ini:"inviteMechanisms[]"`
	// TemplatePath is the invitation templates' folder (Quobis default
	// meetings/tpl); kept for the notifier.
	TemplatePath string `ini:"templatePath"`
	// LanguagesTemplates are the languages a meeting may have (its
	// language field); Quobis ships es, en and ca.
	LanguagesTemplates []string `ini:"languagesTemplates[]"`
	// RemindBefore is how many minutes before valid_since a reminder goes
	// out (notifier); 0 = none.
	RemindBefore int `ini:"remindBefore"`
	// ShortenerToken, when set, shortens meeting links through
	// ShortenerURL (Bitly v4's POST {"long_url"} -> {"link"} shape, with
	// Authorization: Bearer); a failing shortener leaves the long link.
	ShortenerToken string `ini:"shortenerToken" secret:"true"`
	ShortenerURL   string `ini:"shortenerURL"`
	// PSTNExtension is the public phone number callers dial to reach the
	// bridge; meetings show it as dialin_number.
	PSTNExtension string `ini:"pstnExtension"`
	// MeetingTTL: a meeting that is not persistent is deleted this long
	// after its creation, to the second; anyone in it is hung up.
	MeetingTTL time.Duration `ini:"meeting_ttl" unit:"s"`
	// PublicRooms turns on GET /c/{identifier}.
	PublicRooms bool `ini:"public_rooms"`
	// MaxPublicRooms caps the live public rooms (a caller's first call to
	// sip:c.<identifier> makes one; it needs no credentials); 0 = no cap.
	MaxPublicRooms int `ini:"max_public_rooms"`
	// PublicRoomTTL: an empty public room is deleted this long after its
	// last call ended (or after it was made, if nobody stayed).
	PublicRoomTTL time.Duration `ini:"public_room_ttl" unit:"s"`
	// PublicRoomsPerSource public rooms one source address may make
	// within [limits] failure_window; beyond, its calls to new public
	// rooms are refused for ban_time. 0 = no budget.
	PublicRoomsPerSource int `ini:"public_rooms_per_source"`
	// MaxAuthorizations caps the live guest authorization requests (any
	// status, kept 24 h) of one meeting, and MaxAuthorizationsPerGuest
	// those of one guest uuid; beyond, 429. 0 = no cap.
	MaxAuthorizations         int `ini:"max_authorizations"`
	MaxAuthorizationsPerGuest int `ini:"max_authorizations_per_guest"`
	// GuestRequestsPerSource guest authorization requests one client
	// address may make within [limits] failure_window; beyond, 429 for
	// ban_time. 0 = no budget.
	GuestRequestsPerSource int `ini:"guest_requests_per_source"`
	// SIPDialin lets phones join meetings (by exten or meeting-guest);
	// off, every meeting refuses them and PUT .../webinar/sip answers 412.
	SIPDialin bool `ini:"sip_dialin"`
	// MaxParticipants is the server's cap on a meeting's max_participants
	// (and its default).
	MaxParticipants int `ini:"max_participants"`
	// Prompts for meeting callers; "" keeps the built-in one.
	NotStartedPrompt string `ini:"not_started_prompt"`
	EndedPrompt      string `ini:"ended_prompt"`
	FullPrompt       string `ini:"full_prompt"`
	LobbyPrompt      string `ini:"lobby_prompt"`
}

// Limits is the [limits] section: budgets against guessing and caps
// against floods (spec/reliability.md sections 1.1-1.3, 1.8). 0 turns a
// budget or cap off.
type Limits struct {
	// PinFailures wrong room numbers or participant PINs from one source
	// address within FailureWindow ban that address (INVITEs get 403) for
	// BanTime. Only answered and acknowledged calls count, so a forged UDP
	// source cannot get an innocent address banned.
	PinFailures int `ini:"pin_failures"`
	// RPCFailures wrong admin PINs or master passwords from one client
	// address (XML-RPC, JSON-RPC; each inner call of a multicall or batch
	// counts) within FailureWindow ban that client for BanTime.
	RPCFailures int `ini:"rpc_failures"`
	// RoomFailures failed claims on one room (wrong admin PIN, wrong
	// participant PIN) within FailureWindow slow every further attempt on
	// that room by RoomTarpit for BanTime, and log an alarm.
	RoomFailures  int           `ini:"room_failures"`
	FailureWindow time.Duration `ini:"failure_window" unit:"s"`
	BanTime       time.Duration `ini:"ban_time" unit:"s"`
	RoomTarpit    time.Duration `ini:"room_tarpit" unit:"ms"`
	// InviteRate is new INVITEs per second per source address (bursts of
	// InviteBurst); beyond it, 503 with Retry-After.
	InviteRate  int `ini:"invite_rate"`
	InviteBurst int `ini:"invite_burst"`
	// Caps on concurrent calls, rooms and INVITEs not yet acknowledged.
	MaxCalls          int `ini:"max_calls"`
	MaxRooms          int `ini:"max_rooms"`
	MaxPendingInvites int `ini:"max_pending_invites"`
	// SIP over TCP and TLS (one budget for both): connections in total and
	// per source address, and how long an idle connection stays open.
	MaxTCPConns          int           `ini:"max_tcp_conns"`
	MaxTCPConnsPerSource int           `ini:"max_tcp_conns_per_source"`
	TCPIdleTimeout       time.Duration `ini:"tcp_idle_timeout" unit:"s"`
	// TrustedProxies are SIP proxies (CIDR prefixes or addresses, IPv4
	// or IPv6, separated by ',' or ';'): a request from one is never
	// rate-limited, capped or banned as a source; it is charged to the
	// caller in the topmost Via the first untrusted hop added (its
	// received/rport where present).
	TrustedProxies []netip.Prefix `ini:"trusted_proxies"`
}

// HTTP is the [http] section: the listener for /metrics (Prometheus) and
// /debug/pprof (only when it is on loopback).
type HTTP struct {
	// Listen is host:port; "" turns the listener off. Port 0 picks a free
	// port (tests).
	Listen string `ini:"listen"`
	// TrustedProxies are HTTP reverse proxies (CIDR prefixes or
	// addresses): a request from one, on this listener (the REST API) or
	// on the XML-RPC/JSON-RPC port, is charged to the client its
	// X-Forwarded-For names (the rightmost address that is not a trusted
	// proxy), and the proxy's own connections are not capped per source.
	TrustedProxies []netip.Prefix `ini:"trusted_proxies"`
	// EventsRingSize is how many events the bus keeps for clients that
	// resume with ?since= (GET /api/v1/events).
	EventsRingSize int `ini:"events_ring_size"`
	// EventsClientQueue is how many events may wait for one stream
	// client; a client that lets more pile up is cut off.
	EventsClientQueue int `ini:"events_client_queue"`
}

// Server is the [server] section: where webconfd listens and keeps its state.
type Server struct {
	// SIPListen is host:port, served on both UDP and TCP. The host must be an IP
	// literal (or empty for all interfaces). Port 0 picks a free port (tests).
	SIPListen string `ini:"sip_listen"`
	// PublicIP is the address put into SDP c= lines and the Contact header.
	// Default: the host of SIPListen. If SIPListen is a wildcard (0.0.0.0, ::
	// or empty) the default is 127.0.0.1, which only works for local callers:
	// set public_ip whenever you listen on all interfaces.
	PublicIP string `ini:"public_ip"`
	// SIPTLSListen is host:port of SIP over TLS (RFC 3261 26.2, RFC 5630),
	// beside UDP and TCP on SIPListen, with the same handlers and the same
	// TCP connection caps; "" turns it off. Port 0 picks a free port.
	SIPTLSListen string `ini:"sip_tls_listen"`
	// TLSCert is the PEM certificate chain (leaf first) and TLSKey its
	// PEM private key, both required with SIPTLSListen and read again on
	// SIGHUP (a pair that fails to load keeps the one in use).
	TLSCert string `ini:"tls_cert"`
	TLSKey  string `ini:"tls_key"`
	// TLSCAFile adds PEM CA certificates to the system roots when we dial
	// over TLS (dial-out to sips: or ;transport=tls).
	TLSCAFile string `ini:"tls_ca_file"`
	// TLSVerify checks the certificate of a peer we dial over TLS; no
	// accepts any certificate, for tests only.
	TLSVerify bool `ini:"tls_verify"`
	// RTPLowPort and RTPHighPort bound the UDP ports used for RTP (inclusive).
	// RTP uses even ports (RFC 3550 section 11), so the low end is rounded up
	// to even, and the range must hold at least two even ports.
	RTPLowPort  int `ini:"rtp_low_port"`
	RTPHighPort int `ini:"rtp_high_port"`
	// DataDir holds the SQLite database (rooms, PINs, meetings).
	DataDir string `ini:"data_dir"`
	// DeadRTPTime ends a call that sent no RTP for this long; 0 = off.
	// In seconds in the file (SEMS's sems.conf dead_rtp_time).
	DeadRTPTime time.Duration `ini:"dead_rtp_time" unit:"s"`
	// AnswerDelay: when non-zero, dial-ins get 180 Ringing and are answered
	// after this long, which gives callers a window to CANCEL. SEMS answers at
	// once (0, the default). In milliseconds in the file.
	AnswerDelay time.Duration `ini:"answer_delay" unit:"ms"`
	// RTPReceive is how RTP is read: "poll" (the mixer drains each call's
	// socket once per tick, no goroutine per call; Linux) or "goroutine"
	// (a blocking reader per call).
	RTPReceive string `ini:"rtp_receive"`
	// RTPSocket is which calls share a few RTP sockets (one per mixer
	// worker, ports of the RTP range) read and written many packets per
	// system call: "auto" (a dial-in whose SDP address is the IP its
	// INVITE came from), "shared" (every call) or "per_call" (a port per
	// call, as phones behind one NAT address or SBCs may need).
	RTPSocket string `ini:"rtp_socket"`
	// SRTP is off, optional or mandatory: SDES-SRTP (RFC 4568, a=crypto)
	// for calls whose signalling is protected by TLS, the only transport
	// keys are sent over. optional (the default) uses SRTP when the peer
	// offers or accepts it; mandatory refuses plain RTP with 488 (over UDP
	// or TCP that refuses every call); off never uses it.
	SRTP string `ini:"srtp"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `ini:"log_level"`
	// OutboundProxy is SEMS's sems.conf outbound_proxy:
	// sip:host[:port][;transport=udp|tcp|tls] ("" = none). Dial-out INVITEs
	// are sent to it with a Route header naming it (loose routing: the
	// Request-URI stays the callee), and so are our in-dialog requests
	// whose dialog has no route set (a route set from Record-Route wins).
	OutboundProxy string `ini:"outbound_proxy"`
}

// Webconference is the [webconference] section: SEMS's webconference.conf
// keys with SEMS's names and defaults (spec section 6), plus max_pin_attempts,
// pin_timeout and server_signature.
type Webconference struct {
	// Prompt files (8 kHz mono WAV). Unlike SEMS, which defaults to files under
	// /usr/local/lib/sems/audio/webconference/ (one of them misspelt), an empty
	// value means "the built-in prompt"; the prompts package resolves paths and
	// reports missing files, conf does not look at the file system.
	FirstParticipant   string `ini:"first_participant"`
	JoinSound          string `ini:"join_sound"`
	DropSound          string `ini:"drop_sound"`
	EnterPin           string `ini:"enter_pin"`
	WrongPin           string `ini:"wrong_pin"`
	WrongPinBye        string `ini:"wrong_pin_bye"`
	EnteringConference string `ini:"entering_conference"`
	// RoomLocked is ours: what a keypad caller hears for a locked room.
	RoomLocked string `ini:"room_locked"`
	// DigitsDir holds 0.wav..9.wav for reading back typed digits; "" = built-in.
	DigitsDir string `ini:"digits_dir"`
	// PlayoutType is accepted for compatibility (simple, adaptive_jb, ...);
	// SEMS uses it to pick a jitter buffer, webconfd has one playout.
	PlayoutType string `ini:"playout_type"`

	// DirectRoomPattern is direct_room_re as written: a POSIX extended regular
	// expression matched anywhere in the Request-URI user (spec 5.1 case 3).
	// DirectRoomRE is it compiled (nil when unset).
	DirectRoomPattern string         `ini:"direct_room_re"`
	DirectRoomRE      *regexp.Regexp `ini:"-"`
	// DirectRoomStrip is how many leading characters of the user are removed
	// to get the room when DirectRoomRE matches.
	DirectRoomStrip int `ini:"direct_room_strip"`
	// RoomPinSplit, when > 0, splits typed digits into room (first n) and
	// participant PIN (rest). 0 = unset.
	RoomPinSplit int `ini:"room_pin_split"`

	FeedbackFile         string `ini:"feedback_file"`         // "" = no feedback log
	StatsDir             string `ini:"stats_dir"`             // "" = stats not persistent
	WebconferenceURLBase string `ini:"webconference_urlbase"` // no effect, as in current SEMS
	// MasterPassword is the operators' password: getRoomPassword,
	// listRooms and the REST operator routes. Unlike SEMS, "" does not
	// disable them: the server then makes one and keeps it in data_dir
	// (rpc/node); "off" disables them (see MasterPasswordOff).
	MasterPassword string `ini:"master_password" secret:"true"`
	IgnorePin      bool   `ini:"ignore_pin"` // yes disables admin PIN checks

	ParticipantsExpire      bool          `ini:"participants_expire"`
	ParticipantsExpireDelay time.Duration `ini:"participants_expire_delay" unit:"s"`
	RoomsExpire             bool          `ini:"rooms_expire"`
	RoomsExpireDelay        time.Duration `ini:"rooms_expire_delay" unit:"s"`
	// RoomSweepInterval: sweep expired rooms on every n-th roomCreate/dialout;
	// <= 0 disables the sweep. A count, not a duration.
	RoomSweepInterval int `ini:"room_sweep_interval"`
	// PredefinedRooms come from "room:adminpin;room2:adminpin2".
	PredefinedRooms            []PredefinedRoom `ini:"predefined_rooms"`
	PrivateRooms               bool             `ini:"private_rooms"`
	LoopFirstParticipantPrompt bool             `ini:"loop_first_participant_prompt"`
	// LonelyUserTimer kicks a participant left alone this long; 0 = off.
	LonelyUserTimer     time.Duration `ini:"lonely_user_timer" unit:"s"`
	SupportRoomsTimeout bool          `ini:"support_rooms_timeout"`
	// ParticipantIDParam names the P-App-Param parameter carrying the
	// participant ID; when empty, the header ParticipantIDHeader is used.
	ParticipantIDParam  string `ini:"participant_id_param"`
	ParticipantIDHeader string `ini:"participant_id_header"`

	// Session timers (RFC 4028), used only when EnableSessionTimer.
	EnableSessionTimer   bool          `ini:"enable_session_timer"`
	SessionExpires       time.Duration `ini:"session_expires" unit:"s"`
	MinimumTimer         time.Duration `ini:"minimum_timer" unit:"s"`
	MaximumTimer         time.Duration `ini:"maximum_timer" unit:"s"`
	SessionRefreshMethod string        `ini:"session_refresh_method"` // UPDATE_FALLBACK_INVITE, INVITE or UPDATE
	Accept501Reply       bool          `ini:"accept_501_reply"`

	// ServerSignature goes into Server and User-Agent headers.
	ServerSignature string `ini:"server_signature"`
	// MaxPinAttempts ends a keypad call after this many wrong entries; 0 =
	// unlimited (SEMS has no limit). See spec/reliability.md on PIN guessing.
	MaxPinAttempts int `ini:"max_pin_attempts"`
	// PinTimeout ends a keypad call that has not entered a room in time;
	// 0 = off (SEMS waits forever). In seconds in the file.
	PinTimeout time.Duration `ini:"pin_timeout" unit:"s"`

	// Dial-out. DialoutAllowedPattern (dialout_allowed_re) is a regular
	// expression (Go RE2 syntax) that "callee@callee_domain" must match;
	// empty allows every callee, as SEMS does. DialoutAllowedRE is it
	// compiled, anchored at neither end.
	DialoutAllowedPattern string         `ini:"dialout_allowed_re"`
	DialoutAllowedRE      *regexp.Regexp `ini:"-"`
	// MaxDialouts bounds concurrent dial-outs (0 = no limit).
	MaxDialouts int `ini:"max_dialouts"`
	// DialoutAuthRealms (dialout_auth_realms, comma-separated) are the
	// digest realms whose 401/407 a dial-out answers; empty = any realm, as
	// SEMS. Either way only a challenge from the next hop the request was
	// sent to (the outbound proxy, else the callee's host) is answered.
	// DialoutAuthRealmList is it split, blanks dropped.
	DialoutAuthRealms    string   `ini:"dialout_auth_realms"`
	DialoutAuthRealmList []string `ini:"-"`
	// Ringback is what the room hears while a dialled callee rings: "us"
	// (440+480 Hz, 2 s on, 4 s off, as SEMS), "eu" (425 Hz, 1 s on, 4 s
	// off), "off", or the path of an 8/16 kHz mono WAV file played in a loop.
	Ringback string `ini:"ringback"`

	// MixMaxTalkers mixes only the this many loudest talkers of a room
	// (0 = everyone who talks): large rooms stay intelligible and cheap.
	MixMaxTalkers int `ini:"mix_max_talkers"`
}

// PredefinedRoom is one entry of predefined_rooms.
type PredefinedRoom struct {
	Room     string
	AdminPin string
}

// String hides the PIN: admin PINs are secrets and must not reach logs.
func (p PredefinedRoom) String() string { return p.Room + ":***" }

// XMLRPC is the [xmlrpc] section: xmlrpc2di.conf's keys plus jsonrpc.
type XMLRPC struct {
	// ServerIP is the listen address; "" = all interfaces. SEMS defaults to
	// all interfaces; webconfd defaults to loopback because the transport has
	// no authentication (spec/reliability.md 1.3). Interface names are not
	// accepted, give the address.
	ServerIP string `ini:"server_ip"`
	Port     int    `ini:"xmlrpc_port"` // 0 picks a free port (tests)
	// ExportDI registers the generic di(factory, function, args...) method.
	ExportDI bool `ini:"export_di"`
	// DirectExport lists modules whose functions are also registered by name
	// (';'-separated). Default "webconference", unlike SEMS's empty default,
	// because webconference is the only module here. Other names are accepted
	// and have nothing to export.
	DirectExport  []string `ini:"direct_export"`
	RunServer     bool     `ini:"run_server"`
	Multithreaded bool     `ini:"multithreaded"`
	Threads       int      `ini:"threads"`
	// Client-side and debugging keys of xmlrpc2di, accepted so that an
	// xmlrpc2di.conf can be pasted in; webconfd has no XML-RPC client.
	ServerRetryAfter  time.Duration `ini:"server_retry_after" unit:"s"`
	ServerTimeout     time.Duration `ini:"server_timeout" unit:"ms"`
	DebugServerParams bool          `ini:"debug_server_params"`
	DebugServerResult bool          `ini:"debug_server_result"`
	// JSONRPC serves JSON-RPC 2.0 at /jsonrpc on the same port.
	JSONRPC bool `ini:"jsonrpc"`
	// Not xmlrpc2di's: bounds against one client taking the port from the
	// others (the server holds 256 connections in all). MaxConnsPerSource
	// connections from one source address, more are closed at once (0 =
	// no per-source bound); a request's line and headers must arrive
	// within HeaderTimeout of the connection's opening or of a keep-alive
	// request's first byte, or the connection is closed (0 = only the 30 s
	// request timeout).
	MaxConnsPerSource int           `ini:"max_conns_per_source"`
	HeaderTimeout     time.Duration `ini:"header_timeout" unit:"s"`
}

// ignoredKeys are accepted and have no effect. SEMS's sample config sets
// tell_pin and star_finishes_pin but its code never reads them (spec 10.11).
var ignoredKeys = map[string]map[string]bool{
	"webconference": {"tell_pin": true, "star_finishes_pin": true},
}

// Default returns the configuration used for every key the file leaves out.
func Default() Config {
	return Config{
		Server: Server{
			SIPListen:   "127.0.0.1:5060",
			PublicIP:    "127.0.0.1",
			RTPLowPort:  10000,
			RTPHighPort: 20000,
			DataDir:     "./data",
			DeadRTPTime: 300 * time.Second,
			RTPReceive:  "poll",
			RTPSocket:   "auto",
			SRTP:        "optional",
			LogLevel:    "info",
			TLSVerify:   true,
		},
		Webconference: Webconference{
			ParticipantsExpire:      true,
			ParticipantsExpireDelay: 10 * time.Second,
			RoomsExpire:             true,
			RoomsExpireDelay:        7200 * time.Second,
			RoomSweepInterval:       10,
			ParticipantIDHeader:     "X-ParticipantID",
			SessionExpires:          240 * time.Second,
			MinimumTimer:            90 * time.Second,
			MaximumTimer:            900 * time.Second,
			SessionRefreshMethod:    "UPDATE_FALLBACK_INVITE",
			Accept501Reply:          true,
			ServerSignature:         "webconf 0.1",
			MaxPinAttempts:          3,
			PinTimeout:              30 * time.Second,
			MaxDialouts:             100,
			MixMaxTalkers:           0,
			Ringback:                "us",
		},
		XMLRPC: XMLRPC{
			ServerIP:         "127.0.0.1",
			Port:             8090,
			ExportDI:         true,
			DirectExport:     []string{"webconference"},
			RunServer:        true,
			Multithreaded:    true,
			Threads:          5,
			ServerRetryAfter: 10 * time.Second,
			JSONRPC:          true,
			// Ours, against one client taking every connection.
			MaxConnsPerSource: 16,
			HeaderTimeout:     5 * time.Second,
		},
		HTTP: HTTP{Listen: "127.0.0.1:8080", EventsRingSize: 4096, EventsClientQueue: 256},
		Meetings: Meetings{
			LinkFormat:                "unique",
			InviteMechanisms:          []string{},
			TemplatePath:              "meetings/tpl",
			LanguagesTemplates:        []string{"en", "es", "ca"},
			MeetingTTL:                48 * time.Hour,
			MaxPublicRooms:            1000,
			PublicRoomTTL:             24 * time.Hour,
			PublicRoomsPerSource:      10,
			MaxAuthorizations:         1000,
			MaxAuthorizationsPerGuest: 10,
			GuestRequestsPerSource:    100,
			SIPDialin:                 true,
			MaxParticipants:           100,
			ShortenerURL:              DefaultShortenerURL,
		},
		Mail:   Mail{StartTLS: true, Timeout: 30 * time.Second, TLSVerify: true},
		SMS:    SMS{Method: "POST", Auth: "none", IdempotencyHeader: "Idempotency-Key", Timeout: 10 * time.Second},
		Push:   Push{Timeout: 10 * time.Second},
		WebRTC: WebRTC{Enabled: true, MaxBrowsers: 1000, MaxBrowsersPerSource: 10},
		Limits: Limits{
			PinFailures: 10, RPCFailures: 20, RoomFailures: 50,
			FailureWindow: 10 * time.Minute, BanTime: 15 * time.Minute, RoomTarpit: 3 * time.Second,
			// One proxy or SBC sends every caller's INVITE: 200/s from one
			// address (SIPp's 100 calls/s twice over) is served.
			InviteRate: 200, InviteBurst: 400,
			MaxCalls: 5000, MaxRooms: 10000, MaxPendingInvites: 500,
			MaxTCPConns: 2000, MaxTCPConnsPerSource: 64, TCPIdleTimeout: 5 * time.Minute,
		},
	}
}

// Load reads the file at path and parses it (see Parse).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes data over Default(), rejects unknown sections and keys,
// validates the result and returns every problem found, joined.
func Parse(data []byte) (*Config, error) {
	f, err := ini.LoadSources(ini.LoadOptions{
		// Values stay literal: no "key" without "=" meaning true, no '\'
		// continuation lines, and no inline ';' comments (';' separates list
		// items). '#' comments and quotes are handled by literalValue, with
		// SEMS's rules.
		AllowBooleanKeys:           false,
		IgnoreContinuation:         true,
		IgnoreInlineComment:        true,
		PreserveSurroundedQuote:    true,
		KeyValueDelimiters:         "=",
		AllowShadows:               true, // to report keys given twice
		AllowDuplicateShadowValues: true,
	}, data)
	if err != nil {
		return nil, fmt.Errorf("conf: %w: %w", ErrInvalid, err)
	}

	c := Default()
	var errs []error
	report := func(section, key, format string, args ...any) {
		errs = append(errs, &KeyError{Section: section, Key: key, Problem: fmt.Sprintf(format, args...)})
	}

	sections := sectionFields(&c)
	seen := map[string]map[string]bool{} // section -> keys set, for validate and duplicates
	lines := keyLines(data)
	for _, sec := range f.Sections() {
		name := sec.Name()
		if name == ini.DefaultSection {
			// SEMS's webconference.conf has no sections.
			name = "webconference"
		}
		fields, ok := sections[name]
		if !ok {
			report(name, "", "unknown section (known: [server], [webconference], [xmlrpc], [http], [limits], [meetings], [calls], [mail], [sms], [push], [webrtc])")
			continue
		}
		if seen[name] == nil {
			seen[name] = map[string]bool{}
		}
		for _, k := range sec.Keys() {
			key := k.Name()
			// ValueWithShadows leaves out empty values ("a=" then "a=x"
			// reads as ""), so repetitions are counted on the lines.
			if strings.HasSuffix(key, "[]") && !seen[name][key] {
				// PHP-style list: one line per value.
				seen[name][key] = true
				field, ok := fields[key]
				if !ok {
					report(name, key, "unknown key")
					continue
				}
				var vals []string
				for _, v := range k.ValueWithShadows() {
					raw, err := literalValue(v)
					if err != nil {
						report(name, key, "%v", err)
						continue
					}
					vals = append(vals, raw)
				}
				if err := decodeValue(field.value, field.unit, strings.Join(vals, ";")); err != nil {
					report(name, key, "%v", err)
				}
				continue
			}
			if len(k.ValueWithShadows()) > 1 || lines[name][key] > 1 || seen[name][key] {
				if !seen[name][key] { // once per key, however often it is set
					report(name, key, "set more than once")
				}
				seen[name][key] = true
				continue
			}
			seen[name][key] = true
			if ignoredKeys[name][key] {
				continue
			}
			field, ok := fields[key]
			if !ok {
				report(name, key, "unknown key")
				continue
			}
			raw, err := literalValue(k.Value())
			if err != nil {
				report(name, key, "%v", err)
				continue
			}
			if err := decodeValue(field.value, field.unit, raw); err != nil {
				report(name, key, "%v", err)
			}
		}
	}

	if !seen["server"]["public_ip"] {
		c.Server.PublicIP = defaultPublicIP(c.Server.SIPListen)
	}
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// defaultPublicIP is the host of a host:port listen address, or 127.0.0.1 when
// that host is a wildcard or unusable (validate reports the latter).
func defaultPublicIP(listen string) string {
	host, _, err := splitHostPort(listen)
	if err != nil || host == "" {
		return "127.0.0.1"
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.IsUnspecified() {
		return "127.0.0.1"
	}
	return a.Unmap().String()
}

// literalValue applies SEMS's value rules to what ini returned: a double-quoted
// value is taken as is (with \" unescaped) and may be followed only by a
// comment; otherwise '#' starts a comment.
func literalValue(v string) (string, error) {
	if strings.HasPrefix(v, `"`) {
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			switch {
			case v[i] == '\\' && i+1 < len(v) && v[i+1] == '"':
				b.WriteByte('"')
				i++
			case v[i] == '"':
				rest := strings.TrimSpace(v[i+1:])
				if rest != "" && !strings.HasPrefix(rest, "#") {
					return "", fmt.Errorf("text %q after the closing quote", rest)
				}
				return b.String(), nil
			default:
				b.WriteByte(v[i])
			}
		}
		return "", errors.New("missing closing quote")
	}
	if i := strings.IndexByte(v, '#'); i >= 0 {
		v = v[:i]
	}
	return strings.TrimSpace(v), nil
}

type fieldRef struct {
	value reflect.Value
	unit  string
}

// sectionFields maps section -> key -> settable field of c, from the ini tags.
func sectionFields(c *Config) map[string]map[string]fieldRef {
	out := map[string]map[string]fieldRef{}
	cv := reflect.ValueOf(c).Elem()
	for i := 0; i < cv.NumField(); i++ {
		sf := cv.Type().Field(i)
		sv := cv.Field(i)
		keys := map[string]fieldRef{}
		for j := 0; j < sv.NumField(); j++ {
			f := sv.Type().Field(j)
			tag := f.Tag.Get("ini")
			if tag == "" || tag == "-" {
				continue
			}
			keys[tag] = fieldRef{value: sv.Field(j), unit: f.Tag.Get("unit")}
		}
		out[sf.Tag.Get("ini")] = keys
	}
	return out
}

var (
	durationType       = reflect.TypeFor[time.Duration]()
	predefinedRoomType = reflect.TypeFor[[]PredefinedRoom]()
	stringsType        = reflect.TypeFor[[]string]()
	prefixesType       = reflect.TypeFor[[]netip.Prefix]()
)

// decodeValue parses raw into the field according to its type.
func decodeValue(v reflect.Value, unit, raw string) error {
	switch v.Type() {
	case durationType:
		n, err := strconv.ParseInt(raw, 10, 64)
		name := map[string]string{"s": "seconds", "ms": "milliseconds"}[unit]
		if err != nil {
			return fmt.Errorf("%q is not a whole number of %s", raw, name)
		}
		if n < 0 {
			return fmt.Errorf("%d %s: must not be negative", n, name)
		}
		scale := time.Second
		if unit == "ms" {
			scale = time.Millisecond
		}
		if n > int64(1<<62)/int64(scale) {
			return fmt.Errorf("%d %s: too large", n, name)
		}
		v.SetInt(n * int64(scale))
		return nil
	case predefinedRoomType:
		rooms, err := parsePredefinedRooms(raw)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(rooms))
		return nil
	case stringsType:
		v.Set(reflect.ValueOf(splitList(raw)))
		return nil
	case prefixesType:
		ps, err := parsePrefixes(raw)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(ps))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("%q is not a number", raw)
		}
		v.SetInt(int64(n))
	case reflect.Bool:
		b, ok := parseBool(raw)
		if !ok {
			return fmt.Errorf("%q is not a boolean (use yes or no)", raw)
		}
		v.SetBool(b)
	default:
		// A field type without a decoder is a programming error caught by
		// TestEveryKeyParses.
		return fmt.Errorf("no decoder for %s", v.Type())
	}
	return nil
}

// parseBool accepts the spellings SEMS configs use and the usual ones.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "yes", "true", "on", "1":
		return true, true
	case "no", "false", "off", "0":
		return false, true
	}
	return false, false
}

// splitList splits a ';'-separated list, dropping blanks.
func splitList(s string) []string {
	out := []string{}
	for item := range strings.SplitSeq(s, ";") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parsePrefixes parses a list of CIDR prefixes or single addresses
// ("10.0.0.0/8, 192.0.2.7; 2001:db8::/32"), separated by ',', ';' or
// blanks. A bare address is a prefix of its full length.
func parsePrefixes(s string) ([]netip.Prefix, error) {
	out := []netip.Prefix{}
	for item := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' }) {
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix (want e.g. 10.0.0.0/8 or 2001:db8::/32)", item)
			}
			if p.Addr().Zone() != "" {
				return nil, fmt.Errorf("%q: a prefix takes no zone", item)
			}
			if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address or CIDR prefix", item)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// parsePredefinedRooms parses "room:pin;room2:pin2" (spec 6). A trailing ';'
// is allowed; an entry must have exactly one ':' and a room name.
func parsePredefinedRooms(s string) ([]PredefinedRoom, error) {
	var rooms []PredefinedRoom
	seen := map[string]bool{}
	for i, entry := range splitList(s) {
		room, pin, ok := strings.Cut(entry, ":")
		if !ok || strings.Contains(pin, ":") {
			// The entry itself is not quoted: it contains the PIN.
			return nil, fmt.Errorf("entry %d is not room:adminpin (exactly one ':')", i+1)
		}
		room = strings.TrimSpace(room)
		if room == "" {
			return nil, fmt.Errorf("entry %d has an empty room name", i+1)
		}
		if seen[room] {
			return nil, fmt.Errorf("room %q is listed twice", room)
		}
		seen[room] = true
		rooms = append(rooms, PredefinedRoom{Room: room, AdminPin: strings.TrimSpace(pin)})
	}
	return rooms, nil
}

// splitHostPort is net.SplitHostPort plus a numeric port in 0..65535.
func splitHostPort(hostport string) (host string, port int, err error) {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return "", 0, errors.New("missing port")
	}
	host, ps := hostport[:i], hostport[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		return "", 0, errors.New("IPv6 address must be in brackets")
	}
	port, err = strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number in 0..65535", ps)
	}
	return host, port, nil
}

// keyLines counts the lines that set each key, per section (keys before
// any section and in [webconference] count together, as they are read).
// Values are literal (no continuation lines, "=" the only delimiter), so
// a line's key is what precedes its first "=".
func keyLines(data []byte) map[string]map[string]int {
	counts := map[string]map[string]int{}
	section := "webconference"
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
			continue
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			if section == "" || section == ini.DefaultSection {
				section = "webconference"
			}
			continue
		}
		key, _, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if counts[section] == nil {
			counts[section] = map[string]int{}
		}
		counts[section][strings.TrimSpace(key)]++
	}
	return counts
}
