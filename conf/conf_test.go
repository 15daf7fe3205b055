package conf

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// keyErrors flattens Parse's joined error into its KeyErrors.
func keyErrors(t *testing.T, err error) []*KeyError {
	t.Helper()
	var out []*KeyError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ke *KeyError
		if errors.As(e, &ke) {
			out = append(out, ke)
			return
		}
		t.Errorf("problem without section and key: %v", e)
	}
	walk(err)
	return out
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse([]byte(text))
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	t.Run("an empty file gives exactly Default()", func(t *testing.T) {
		c := mustParse(t, "")
		if !reflect.DeepEqual(*c, Default()) {
			t.Errorf("Parse(\"\") =\n%v\nwant\n%v", c, Default())
		}
	})
	t.Run("defaults are SEMS's where SEMS has the key", func(t *testing.T) {
		d := Default()
		w := d.Webconference
		checks := []struct {
			name      string
			got, want any
		}{
			{"sip_listen", d.Server.SIPListen, "127.0.0.1:5060"},
			{"public_ip", d.Server.PublicIP, "127.0.0.1"},
			{"rtp_low_port", d.Server.RTPLowPort, 10000},
			{"rtp_high_port", d.Server.RTPHighPort, 20000},
			{"data_dir", d.Server.DataDir, "./data"},
			{"dead_rtp_time", d.Server.DeadRTPTime, 300 * time.Second},
			{"answer_delay", d.Server.AnswerDelay, time.Duration(0)},
			{"log_level", d.Server.LogLevel, "info"},
			{"sip_tls_listen", d.Server.SIPTLSListen, ""},
			{"tls_verify", d.Server.TLSVerify, true},
			{"srtp", d.Server.SRTP, "optional"},
			{"first_participant", w.FirstParticipant, ""},
			{"digits_dir", w.DigitsDir, ""},
			{"direct_room_re", w.DirectRoomRE == nil, true},
			{"direct_room_strip", w.DirectRoomStrip, 0},
			{"room_pin_split", w.RoomPinSplit, 0},
			{"master_password", w.MasterPassword, ""},
			{"ignore_pin", w.IgnorePin, false},
			{"participants_expire", w.ParticipantsExpire, true},
			{"participants_expire_delay", w.ParticipantsExpireDelay, 10 * time.Second},
			{"rooms_expire", w.RoomsExpire, true},
			{"rooms_expire_delay", w.RoomsExpireDelay, 7200 * time.Second},
			{"room_sweep_interval", w.RoomSweepInterval, 10},
			{"predefined_rooms", len(w.PredefinedRooms), 0},
			{"private_rooms", w.PrivateRooms, false},
			{"loop_first_participant_prompt", w.LoopFirstParticipantPrompt, false},
			{"lonely_user_timer", w.LonelyUserTimer, time.Duration(0)},
			{"support_rooms_timeout", w.SupportRoomsTimeout, false},
			{"participant_id_param", w.ParticipantIDParam, ""},
			{"participant_id_header", w.ParticipantIDHeader, "X-ParticipantID"},
			{"enable_session_timer", w.EnableSessionTimer, false},
			{"session_expires", w.SessionExpires, 240 * time.Second},
			{"minimum_timer", w.MinimumTimer, 90 * time.Second},
			{"maximum_timer", w.MaximumTimer, 900 * time.Second},
			{"session_refresh_method", w.SessionRefreshMethod, "UPDATE_FALLBACK_INVITE"},
			{"accept_501_reply", w.Accept501Reply, true},
			{"server_signature", w.ServerSignature, "webconf 0.1"},
			{"max_pin_attempts", w.MaxPinAttempts, 3},
			{"pin_timeout", w.PinTimeout, 30 * time.Second},
			{"server_ip", d.XMLRPC.ServerIP, "127.0.0.1"},
			{"xmlrpc_port", d.XMLRPC.Port, 8090},
			{"export_di", d.XMLRPC.ExportDI, true},
			{"direct_export", d.XMLRPC.DirectExport, []string{"webconference"}},
			{"run_server", d.XMLRPC.RunServer, true},
			{"multithreaded", d.XMLRPC.Multithreaded, true},
			{"threads", d.XMLRPC.Threads, 5},
			{"jsonrpc", d.XMLRPC.JSONRPC, true},
			{"max_conns_per_source", d.XMLRPC.MaxConnsPerSource, 16},
			{"header_timeout", d.XMLRPC.HeaderTimeout, 5 * time.Second},
		}
		for _, c := range checks {
			if !reflect.DeepEqual(c.got, c.want) {
				t.Errorf("%s default = %v, want %v", c.name, c.got, c.want)
			}
		}
	})
	t.Run("Default returns a fresh copy each time", func(t *testing.T) {
		a := Default()
		a.XMLRPC.DirectExport[0] = "changed"
		if b := Default(); b.XMLRPC.DirectExport[0] != "webconference" {
			t.Errorf("Default shares its slice: %v", b.XMLRPC.DirectExport)
		}
	})
}

// everyKey sets every key to a non-default value; check reads it back.
var everyKey = []struct {
	section, key, value string
	check               func(c *Config) any
	want                any
}{
	{"server", "sip_listen", "192.0.2.1:5070", func(c *Config) any { return c.Server.SIPListen }, "192.0.2.1:5070"},
	{"server", "public_ip", "198.51.100.7", func(c *Config) any { return c.Server.PublicIP }, "198.51.100.7"},
	{"server", "sip_tls_listen", "[2001:db8::1]:5061", func(c *Config) any { return c.Server.SIPTLSListen }, "[2001:db8::1]:5061"},
	{"server", "tls_cert", "/etc/webconf/cert.pem", func(c *Config) any { return c.Server.TLSCert }, "/etc/webconf/cert.pem"},
	{"server", "tls_key", "/etc/webconf/key.pem", func(c *Config) any { return c.Server.TLSKey }, "/etc/webconf/key.pem"},
	{"server", "tls_ca_file", "/etc/webconf/ca.pem", func(c *Config) any { return c.Server.TLSCAFile }, "/etc/webconf/ca.pem"},
	{"server", "tls_verify", "no", func(c *Config) any { return c.Server.TLSVerify }, false},
	{"server", "rtp_low_port", "30000", func(c *Config) any { return c.Server.RTPLowPort }, 30000},
	{"server", "rtp_high_port", "30100", func(c *Config) any { return c.Server.RTPHighPort }, 30100},
	{"server", "data_dir", "/var/lib/webconfd", func(c *Config) any { return c.Server.DataDir }, "/var/lib/webconfd"},
	{"server", "dead_rtp_time", "60", func(c *Config) any { return c.Server.DeadRTPTime }, 60 * time.Second},
	{"server", "answer_delay", "1500", func(c *Config) any { return c.Server.AnswerDelay }, 1500 * time.Millisecond},
	{"server", "log_level", "DEBUG", func(c *Config) any { return c.Server.LogLevel }, "debug"},

	{"webconference", "first_participant", "/p/first.wav", func(c *Config) any { return c.Webconference.FirstParticipant }, "/p/first.wav"},
	{"webconference", "join_sound", "/p/join.wav", func(c *Config) any { return c.Webconference.JoinSound }, "/p/join.wav"},
	{"webconference", "drop_sound", "/p/drop.wav", func(c *Config) any { return c.Webconference.DropSound }, "/p/drop.wav"},
	{"webconference", "enter_pin", "/p/pin_prompt.wav", func(c *Config) any { return c.Webconference.EnterPin }, "/p/pin_prompt.wav"},
	{"webconference", "wrong_pin", "/p/wrong.wav", func(c *Config) any { return c.Webconference.WrongPin }, "/p/wrong.wav"},
	{"webconference", "wrong_pin_bye", "/p/bye.wav", func(c *Config) any { return c.Webconference.WrongPinBye }, "/p/bye.wav"},
	{"webconference", "entering_conference", "/p/enter.wav", func(c *Config) any { return c.Webconference.EnteringConference }, "/p/enter.wav"},
	{"webconference", "room_locked", "/p/locked.wav", func(c *Config) any { return c.Webconference.RoomLocked }, "/p/locked.wav"},
	{"webconference", "digits_dir", "/p/digits/", func(c *Config) any { return c.Webconference.DigitsDir }, "/p/digits/"},
	{"webconference", "playout_type", "simple", func(c *Config) any { return c.Webconference.PlayoutType }, "simple"},
	{"webconference", "direct_room_re", "^9[0-9]+$", func(c *Config) any { return c.Webconference.DirectRoomPattern }, "^9[0-9]+$"},
	{"webconference", "direct_room_strip", "1", func(c *Config) any { return c.Webconference.DirectRoomStrip }, 1},
	{"webconference", "room_pin_split", "4", func(c *Config) any { return c.Webconference.RoomPinSplit }, 4},
	{"webconference", "feedback_file", "/var/log/fb.txt", func(c *Config) any { return c.Webconference.FeedbackFile }, "/var/log/fb.txt"},
	{"webconference", "stats_dir", "/var/log/wc/", func(c *Config) any { return c.Webconference.StatsDir }, "/var/log/wc/"},
	{"webconference", "webconference_urlbase", "https://x.example/?a=1", func(c *Config) any { return c.Webconference.WebconferenceURLBase }, "https://x.example/?a=1"},
	{"webconference", "master_password", "s3cr3t", func(c *Config) any { return c.Webconference.MasterPassword }, "s3cr3t"},
	{"webconference", "ignore_pin", "Yes", func(c *Config) any { return c.Webconference.IgnorePin }, true},
	{"webconference", "participants_expire", "off", func(c *Config) any { return c.Webconference.ParticipantsExpire }, false},
	{"webconference", "participants_expire_delay", "20", func(c *Config) any { return c.Webconference.ParticipantsExpireDelay }, 20 * time.Second},
	{"webconference", "rooms_expire", "false", func(c *Config) any { return c.Webconference.RoomsExpire }, false},
	{"webconference", "rooms_expire_delay", "60", func(c *Config) any { return c.Webconference.RoomsExpireDelay }, time.Minute},
	{"webconference", "room_sweep_interval", "-1", func(c *Config) any { return c.Webconference.RoomSweepInterval }, -1},
	{"webconference", "predefined_rooms", "a:1;b:2;", func(c *Config) any { return c.Webconference.PredefinedRooms },
		[]PredefinedRoom{{"a", "1"}, {"b", "2"}}},
	{"webconference", "private_rooms", "ON", func(c *Config) any { return c.Webconference.PrivateRooms }, true},
	{"webconference", "loop_first_participant_prompt", "1", func(c *Config) any { return c.Webconference.LoopFirstParticipantPrompt }, true},
	{"webconference", "lonely_user_timer", "120", func(c *Config) any { return c.Webconference.LonelyUserTimer }, 2 * time.Minute},
	{"webconference", "support_rooms_timeout", "true", func(c *Config) any { return c.Webconference.SupportRoomsTimeout }, true},
	{"webconference", "participant_id_param", "pid", func(c *Config) any { return c.Webconference.ParticipantIDParam }, "pid"},
	{"webconference", "participant_id_header", "X-Pid", func(c *Config) any { return c.Webconference.ParticipantIDHeader }, "X-Pid"},
	{"webconference", "enable_session_timer", "yes", func(c *Config) any { return c.Webconference.EnableSessionTimer }, true},
	{"webconference", "session_expires", "300", func(c *Config) any { return c.Webconference.SessionExpires }, 5 * time.Minute},
	{"webconference", "minimum_timer", "120", func(c *Config) any { return c.Webconference.MinimumTimer }, 2 * time.Minute},
	{"webconference", "maximum_timer", "1800", func(c *Config) any { return c.Webconference.MaximumTimer }, 30 * time.Minute},
	{"webconference", "session_refresh_method", "UPDATE", func(c *Config) any { return c.Webconference.SessionRefreshMethod }, "UPDATE"},
	{"webconference", "accept_501_reply", "no", func(c *Config) any { return c.Webconference.Accept501Reply }, false},
	{"webconference", "server_signature", "conf-1", func(c *Config) any { return c.Webconference.ServerSignature }, "conf-1"},
	{"webconference", "max_pin_attempts", "0", func(c *Config) any { return c.Webconference.MaxPinAttempts }, 0},
	{"webconference", "pin_timeout", "0", func(c *Config) any { return c.Webconference.PinTimeout }, time.Duration(0)},
	{"webconference", "dialout_allowed_re", "^[0-9]+@pbx$", func(c *Config) any { return c.Webconference.DialoutAllowedRE.String() }, "^[0-9]+@pbx$"},
	{"webconference", "max_dialouts", "7", func(c *Config) any { return c.Webconference.MaxDialouts }, 7},
	{"webconference", "dialout_auth_realms", " asterisk, sip.provider.example ,", func(c *Config) any { return c.Webconference.DialoutAuthRealmList },
		[]string{"asterisk", "sip.provider.example"}},
	{"server", "outbound_proxy", "sip:proxy.example.net:5070;transport=tcp;lr", func(c *Config) any { return c.Server.OutboundProxy }, "sip:proxy.example.net:5070;transport=tcp;lr"},
	{"webconference", "ringback", "eu", func(c *Config) any { return c.Webconference.Ringback }, "eu"},
	{"webconference", "mix_max_talkers", "3", func(c *Config) any { return c.Webconference.MixMaxTalkers }, 3},
	{"server", "rtp_receive", "goroutine", func(c *Config) any { return c.Server.RTPReceive }, "goroutine"},
	{"server", "rtp_socket", "per_call", func(c *Config) any { return c.Server.RTPSocket }, "per_call"},
	{"server", "srtp", "Mandatory", func(c *Config) any { return c.Server.SRTP }, "mandatory"},
	{"http", "listen", "127.0.0.1:0", func(c *Config) any { return c.HTTP.Listen }, "127.0.0.1:0"},
	{"http", "trusted_proxies", "10.1.2.3, 2001:db8::/48", func(c *Config) any { return c.HTTP.TrustedProxies },
		[]netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("2001:db8::/48")}},
	{"http", "events_ring_size", "64", func(c *Config) any { return c.HTTP.EventsRingSize }, 64},
	{"http", "events_client_queue", "8", func(c *Config) any { return c.HTTP.EventsClientQueue }, 8},
	{"limits", "trusted_proxies", "127.0.0.1/32;192.0.2.0/24 ::ffff:10.0.0.0/104,::1", func(c *Config) any { return c.Limits.TrustedProxies },
		[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("192.0.2.0/24"),
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
	{"limits", "pin_failures", "5", func(c *Config) any { return c.Limits.PinFailures }, 5},
	{"limits", "rpc_failures", "6", func(c *Config) any { return c.Limits.RPCFailures }, 6},
	{"limits", "room_failures", "7", func(c *Config) any { return c.Limits.RoomFailures }, 7},
	{"limits", "failure_window", "60", func(c *Config) any { return c.Limits.FailureWindow }, time.Minute},
	{"limits", "ban_time", "120", func(c *Config) any { return c.Limits.BanTime }, 2 * time.Minute},
	{"limits", "room_tarpit", "500", func(c *Config) any { return c.Limits.RoomTarpit }, 500 * time.Millisecond},
	{"limits", "invite_rate", "3", func(c *Config) any { return c.Limits.InviteRate }, 3},
	{"limits", "invite_burst", "4", func(c *Config) any { return c.Limits.InviteBurst }, 4},
	{"limits", "max_calls", "100", func(c *Config) any { return c.Limits.MaxCalls }, 100},
	{"limits", "max_rooms", "101", func(c *Config) any { return c.Limits.MaxRooms }, 101},
	{"limits", "max_pending_invites", "102", func(c *Config) any { return c.Limits.MaxPendingInvites }, 102},
	{"limits", "max_tcp_conns", "103", func(c *Config) any { return c.Limits.MaxTCPConns }, 103},
	{"limits", "max_tcp_conns_per_source", "104", func(c *Config) any { return c.Limits.MaxTCPConnsPerSource }, 104},
	{"limits", "tcp_idle_timeout", "30", func(c *Config) any { return c.Limits.TCPIdleTimeout }, 30 * time.Second},

	{"meetings", "linkHost", "https://meet.example.com", func(c *Config) any { return c.Meetings.LinkHost }, "https://meet.example.com"},
	{"meetings", "linkFormat", "user", func(c *Config) any { return c.Meetings.LinkFormat }, "user"},
	{"meetings", "inviteMechanisms[]", "email;sms", func(c *Config) any { return c.Meetings.InviteMechanisms }, []string{"email", "sms"}},
	{"meetings", "templatePath", "/etc/webconf/tpl", func(c *Config) any { return c.Meetings.TemplatePath }, "/etc/webconf/tpl"},
	{"meetings", "languagesTemplates[]", "en;pt-BR", func(c *Config) any { return c.Meetings.LanguagesTemplates }, []string{"en", "pt-BR"}},
	{"meetings", "remindBefore", "15", func(c *Config) any { return c.Meetings.RemindBefore }, 15},
	{"meetings", "pstnExtension", "+4930123456", func(c *Config) any { return c.Meetings.PSTNExtension }, "+4930123456"},
	{"meetings", "meeting_ttl", "3600", func(c *Config) any { return c.Meetings.MeetingTTL }, time.Hour},
	{"meetings", "public_rooms", "yes", func(c *Config) any { return c.Meetings.PublicRooms }, true},
	{"meetings", "max_public_rooms", "50", func(c *Config) any { return c.Meetings.MaxPublicRooms }, 50},
	{"meetings", "public_room_ttl", "3600", func(c *Config) any { return c.Meetings.PublicRoomTTL }, time.Hour},
	{"meetings", "public_rooms_per_source", "3", func(c *Config) any { return c.Meetings.PublicRoomsPerSource }, 3},
	{"meetings", "max_authorizations", "40", func(c *Config) any { return c.Meetings.MaxAuthorizations }, 40},
	{"meetings", "max_authorizations_per_guest", "2", func(c *Config) any { return c.Meetings.MaxAuthorizationsPerGuest }, 2},
	{"meetings", "guest_requests_per_source", "7", func(c *Config) any { return c.Meetings.GuestRequestsPerSource }, 7},
	{"meetings", "sip_dialin", "no", func(c *Config) any { return c.Meetings.SIPDialin }, false},
	{"meetings", "max_participants", "25", func(c *Config) any { return c.Meetings.MaxParticipants }, 25},
	{"meetings", "not_started_prompt", "/p/ns.wav", func(c *Config) any { return c.Meetings.NotStartedPrompt }, "/p/ns.wav"},
	{"meetings", "ended_prompt", "/p/end.wav", func(c *Config) any { return c.Meetings.EndedPrompt }, "/p/end.wav"},
	{"meetings", "full_prompt", "/p/full.wav", func(c *Config) any { return c.Meetings.FullPrompt }, "/p/full.wav"},
	{"meetings", "lobby_prompt", "/p/lobby.wav", func(c *Config) any { return c.Meetings.LobbyPrompt }, "/p/lobby.wav"},

	{"meetings", "shortenerToken", "tok1", func(c *Config) any { return c.Meetings.ShortenerToken }, "tok1"},
	{"meetings", "shortenerURL", "http://127.0.0.1:9/s", func(c *Config) any { return c.Meetings.ShortenerURL }, "http://127.0.0.1:9/s"},

	{"sms", "url", "https://sms.example.com/send", func(c *Config) any { return c.SMS.URL }, "https://sms.example.com/send"},
	{"sms", "method", "put", func(c *Config) any { return c.SMS.Method }, "PUT"},
	{"sms", "auth", "bearer", func(c *Config) any { return c.SMS.Auth }, "bearer"},
	{"sms", "username", "acct", func(c *Config) any { return c.SMS.Username }, "acct"},
	{"sms", "password", "pw", func(c *Config) any { return c.SMS.Password }, "pw"},
	{"sms", "token", "tk", func(c *Config) any { return c.SMS.Token }, "tk"},
	{"sms", "content_type", "json", func(c *Config) any { return c.SMS.ContentType }, "json"},
	{"sms", "body", `{"to": "{{to}}", "msg": "{{ text }}"}`, func(c *Config) any { return c.SMS.Body }, `{"to": "{{to}}", "msg": "{{ text }}"}`},
	{"sms", "idempotency_header", "X-Request-Id", func(c *Config) any { return c.SMS.IdempotencyHeader }, "X-Request-Id"},
	{"sms", "timeout", "3", func(c *Config) any { return c.SMS.Timeout }, 3 * time.Second},
	{"push", "url", "https://push.example.com/u/{{user}}", func(c *Config) any { return c.Push.URL }, "https://push.example.com/u/{{user}}"},
	{"push", "token", "ptok", func(c *Config) any { return c.Push.Token }, "ptok"},
	{"push", "timeout", "4", func(c *Config) any { return c.Push.Timeout }, 4 * time.Second},

	{"calls", "domain", "sip.example.com", func(c *Config) any { return c.Calls.Domain }, "sip.example.com"},
	{"calls", "outbound_proxy", "sip:192.0.2.7:5070;transport=tcp", func(c *Config) any { return c.Calls.OutboundProxy }, "sip:192.0.2.7:5070;transport=tcp"},
	{"calls", "auth_user", "acct1", func(c *Config) any { return c.Calls.AuthUser }, "acct1"},
	{"calls", "auth_password", "s3cret", func(c *Config) any { return c.Calls.AuthPassword }, "s3cret"},
	{"calls", "from_user", "+15550100", func(c *Config) any { return c.Calls.FromUser }, "+15550100"},
	{"mail", "host", "smtp.example.com", func(c *Config) any { return c.Mail.Host }, "smtp.example.com"},
	{"mail", "port", "465", func(c *Config) any { return c.Mail.Port }, 465},
	{"mail", "starttls", "no", func(c *Config) any { return c.Mail.StartTLS }, false},
	{"mail", "tls", "yes", func(c *Config) any { return c.Mail.TLS }, true},
	{"mail", "username", "meetings", func(c *Config) any { return c.Mail.Username }, "meetings"},
	{"mail", "password", "s3cret", func(c *Config) any { return c.Mail.Password }, "s3cret"},
	{"mail", "from", "Meetings <meetings@example.com>", func(c *Config) any { return c.Mail.From }, "Meetings <meetings@example.com>"},
	{"mail", "timeout", "10", func(c *Config) any { return c.Mail.Timeout }, 10 * time.Second},
	{"mail", "tls_ca_file", "/etc/webconf/smtp-ca.pem", func(c *Config) any { return c.Mail.TLSCAFile }, "/etc/webconf/smtp-ca.pem"},
	{"mail", "tls_verify", "no", func(c *Config) any { return c.Mail.TLSVerify }, false},

	{"xmlrpc", "server_ip", "", func(c *Config) any { return c.XMLRPC.ServerIP }, ""},
	{"xmlrpc", "xmlrpc_port", "9090", func(c *Config) any { return c.XMLRPC.Port }, 9090},
	{"xmlrpc", "export_di", "no", func(c *Config) any { return c.XMLRPC.ExportDI }, false},
	{"xmlrpc", "direct_export", "sbc; webconference;", func(c *Config) any { return c.XMLRPC.DirectExport }, []string{"sbc", "webconference"}},
	{"xmlrpc", "run_server", "no", func(c *Config) any { return c.XMLRPC.RunServer }, false},
	{"xmlrpc", "multithreaded", "no", func(c *Config) any { return c.XMLRPC.Multithreaded }, false},
	{"xmlrpc", "threads", "16", func(c *Config) any { return c.XMLRPC.Threads }, 16},
	{"xmlrpc", "server_retry_after", "5", func(c *Config) any { return c.XMLRPC.ServerRetryAfter }, 5 * time.Second},
	{"xmlrpc", "server_timeout", "250", func(c *Config) any { return c.XMLRPC.ServerTimeout }, 250 * time.Millisecond},
	{"xmlrpc", "debug_server_params", "yes", func(c *Config) any { return c.XMLRPC.DebugServerParams }, true},
	{"xmlrpc", "debug_server_result", "yes", func(c *Config) any { return c.XMLRPC.DebugServerResult }, true},
	{"xmlrpc", "jsonrpc", "no", func(c *Config) any { return c.XMLRPC.JSONRPC }, false},
	{"xmlrpc", "max_conns_per_source", "4", func(c *Config) any { return c.XMLRPC.MaxConnsPerSource }, 4},
	{"xmlrpc", "header_timeout", "2", func(c *Config) any { return c.XMLRPC.HeaderTimeout }, 2 * time.Second},
	{"webrtc", "enabled", "no", func(c *Config) any { return c.WebRTC.Enabled }, false},
	{"webrtc", "public_ip", "203.0.113.7", func(c *Config) any { return c.WebRTC.PublicIP }, "203.0.113.7"},
	{"webrtc", "udp_port", "3478", func(c *Config) any { return c.WebRTC.UDPPort }, 3478},
	{"webrtc", "udp_port_range", "40000-40100", func(c *Config) any { return c.WebRTC.UDPPortRange }, "40000-40100"},
	{"webrtc", "ice_servers", "stun:stun.example.com:3478, turns:turn.example.com", func(c *Config) any { return c.WebRTC.ICEServerURLs() }, []string{"stun:stun.example.com:3478", "turns:turn.example.com"}},
	{"webrtc", "max_browsers", "50", func(c *Config) any { return c.WebRTC.MaxBrowsers }, 50},
	{"webrtc", "max_browsers_per_source", "3", func(c *Config) any { return c.WebRTC.MaxBrowsersPerSource }, 3},
}

func TestEveryKeyParses(t *testing.T) {
	var b strings.Builder
	for _, section := range []string{"server", "webconference", "xmlrpc", "http", "limits", "meetings", "calls", "mail", "sms", "push", "webrtc"} {
		b.WriteString("[" + section + "]\n")
		for _, k := range everyKey {
			if k.section == section {
				b.WriteString(k.key + "=" + k.value + "\n")
			}
		}
	}
	c := mustParse(t, b.String())
	for _, k := range everyKey {
		if got := k.check(c); !reflect.DeepEqual(got, k.want) {
			t.Errorf("[%s] %s=%s: got %#v, want %#v", k.section, k.key, k.value, got, k.want)
		}
	}
	if c.Webconference.DirectRoomRE == nil || !c.Webconference.DirectRoomRE.MatchString("9123") {
		t.Errorf("direct_room_re was not compiled: %v", c.Webconference.DirectRoomRE)
	}

	t.Run("the table covers every key the structs declare", func(t *testing.T) {
		covered := map[string]bool{}
		for _, k := range everyKey {
			covered[k.section+"."+k.key] = true
		}
		var cfg Config
		for section, keys := range sectionFields(&cfg) {
			for key := range keys {
				if !covered[section+"."+key] {
					t.Errorf("[%s] %s has no entry in everyKey", section, key)
				}
			}
		}
	})
}

func TestBadValues(t *testing.T) {
	cases := []struct {
		name, text, section, key, problem string
	}{
		{"a port that is not a number", "[server]\nrtp_low_port=abc", "server", "rtp_low_port", `"abc" is not a number`},
		{"a port below 1024", "[server]\nrtp_low_port=80", "server", "rtp_low_port", "not in 1024..65535"},
		{"a port above 65535", "[server]\nrtp_high_port=70000", "server", "rtp_high_port", "not in 1024..65535"},
		{"a range with one even port", "[server]\nrtp_low_port=10001\nrtp_high_port=10003", "server", "rtp_high_port", "fewer than two even ports"},
		{"a reversed range", "[server]\nrtp_low_port=20000\nrtp_high_port=10000", "server", "rtp_high_port", "fewer than two even ports"},
		{"sip_listen without port", "[server]\nsip_listen=127.0.0.1", "server", "sip_listen", "missing port"},
		{"sip_listen with a host name", "[server]\nsip_listen=localhost:5060", "server", "sip_listen", "not an IP address"},
		{"sip_listen with a bad port", "[server]\nsip_listen=127.0.0.1:99999", "server", "sip_listen", "0..65535"},
		{"public_ip that is a name", "[server]\npublic_ip=example.com", "server", "public_ip", "not an IP address"},
		{"public_ip that is a wildcard", "[server]\npublic_ip=0.0.0.0", "server", "public_ip", "cannot receive media"},
		{"sip_tls_listen with a host name", "[server]\nsip_tls_listen=localhost:5061\ntls_cert=c\ntls_key=k", "server", "sip_tls_listen", "not an IP address"},
		{"sip_tls_listen without tls_cert", "[server]\nsip_tls_listen=127.0.0.1:5061\ntls_key=k", "server", "tls_cert", "must be set with sip_tls_listen"},
		{"sip_tls_listen without tls_key", "[server]\nsip_tls_listen=127.0.0.1:5061\ntls_cert=c", "server", "tls_key", "must be set with sip_tls_listen"},
		{"tls_verify that is not a boolean", "[server]\ntls_verify=sometimes", "server", "tls_verify", "not a boolean"},
		{"an empty data_dir", "[server]\ndata_dir=", "server", "data_dir", "must not be empty"},
		{"a negative duration", "[server]\ndead_rtp_time=-5", "server", "dead_rtp_time", "must not be negative"},
		{"a fractional duration", "[server]\nanswer_delay=1.5", "server", "answer_delay", "not a whole number of milliseconds"},
		{"a duration with a unit", "[webconference]\npin_timeout=30s", "webconference", "pin_timeout", "not a whole number of seconds"},
		{"an unknown log level", "[server]\nlog_level=verbose", "server", "log_level", "not one of"},
		{"an unknown srtp mode", "[server]\nsrtp=yes", "server", "srtp", "not one of off, optional, mandatory"},
		{"an unknown rtp_socket", "[server]\nrtp_socket=some", "server", "rtp_socket", "not one of auto, shared, per_call"},
		{"shared sockets read by goroutines", "[server]\nrtp_socket=shared\nrtp_receive=goroutine", "server", "rtp_socket", "needs rtp_receive = poll"},
		{"a boolean that is not one", "[webconference]\nprivate_rooms=maybe", "webconference", "private_rooms", `"maybe" is not a boolean`},
		{"a bad regex", "[webconference]\ndirect_room_re=000(777", "webconference", "direct_room_re", "not a POSIX extended regular expression"},
		{"a Perl-only regex", "[webconference]\ndirect_room_re=\\d+", "webconference", "direct_room_re", "not a POSIX"},
		{"a negative strip", "[webconference]\ndirect_room_strip=-1", "webconference", "direct_room_strip", "must not be negative"},
		{"a non-numeric strip", "direct_room_strip=six", "webconference", "direct_room_strip", "not a number"},
		{"a negative split", "[webconference]\nroom_pin_split=-2", "webconference", "room_pin_split", "must not be negative"},
		{"a room without pin", "[webconference]\npredefined_rooms=a:1;b", "webconference", "predefined_rooms", "entry 2 is not room:adminpin"},
		{"a room with two colons", "[webconference]\npredefined_rooms=a:1:2", "webconference", "predefined_rooms", "exactly one ':'"},
		{"a room without name", "[webconference]\npredefined_rooms=:1", "webconference", "predefined_rooms", "empty room name"},
		{"a room listed twice", "[webconference]\npredefined_rooms=a:1;a:2", "webconference", "predefined_rooms", "listed twice"},
		{"a bad refresh method", "[webconference]\nsession_refresh_method=BYE", "webconference", "session_refresh_method", "not one of"},
		{"a linkHost with a trailing slash", "[meetings]\nlinkHost=https://meet.example.com/", "meetings", "linkHost", "Invalid linkHost"},
		{"a linkHost that is not a URL", "[meetings]\nlinkHost=meet.example.com", "meetings", "linkHost", "Invalid linkHost"},
		{"a linkHost with a query", "[meetings]\nlinkHost=https://meet.example.com?x=1", "meetings", "linkHost", "Invalid linkHost"},
		{"an unknown invite mechanism", "[meetings]\ninviteMechanisms[]=email\ninviteMechanisms[]=fax", "meetings", "inviteMechanisms[]", `"fax" is not one of`},
		{"no language", "[meetings]\nlanguagesTemplates[]=", "meetings", "languagesTemplates[]", "at least one language"},
		{"a bad language", "[meetings]\nlanguagesTemplates[]=english", "meetings", "languagesTemplates[]", "not a language code"},
		{"a zero meeting TTL", "[meetings]\nmeeting_ttl=0", "meetings", "meeting_ttl", "at least 1 second"},
		{"a bad link format", "[meetings]\nlinkFormat=short", "meetings", "linkFormat", "not one of unique, user"},
		{"a bad PSTN number", "[meetings]\npstnExtension=call me", "meetings", "pstnExtension", "not a phone number"},
		{"no participants", "[meetings]\nmax_participants=0", "meetings", "max_participants", "at least 1"},
		{"a session timer below RFC 4028's minimum", "[webconference]\nenable_session_timer=yes\nminimum_timer=30\nsession_expires=60", "webconference", "minimum_timer", "below 90"},
		{"session_expires above maximum_timer", "[webconference]\nenable_session_timer=yes\nsession_expires=1000", "webconference", "maximum_timer", "below session_expires"},
		{"a negative max_pin_attempts", "[webconference]\nmax_pin_attempts=-1", "webconference", "max_pin_attempts", "must not be negative"},
		{"a bad dialout_allowed_re", "[webconference]\ndialout_allowed_re=(", "webconference", "dialout_allowed_re", "not a regular expression"},
		{"a negative max_dialouts", "[webconference]\nmax_dialouts=-2", "webconference", "max_dialouts", "must not be negative"},
		{"an outbound proxy without scheme", "[server]\noutbound_proxy=proxy.example.net", "server", "outbound_proxy", "want sip:host[:port]"},
		{"an outbound proxy with a user", "[server]\noutbound_proxy=sip:bob@proxy.example.net", "server", "outbound_proxy", "no user part"},
		{"an outbound proxy with a bad transport", "[server]\noutbound_proxy=sip:proxy.example.net;transport=sctp", "server", "outbound_proxy", `transport "sctp" is not one of udp, tcp, tls`},
		{"an outbound proxy with a bad port", "[server]\noutbound_proxy=sip:10.0.0.1:0", "server", "outbound_proxy", "not a number in 1..65535"},
		{"an outbound proxy with bare IPv6", "[server]\noutbound_proxy=sip:2001:db8::1", "server", "outbound_proxy", "in brackets"},
		{"an outbound proxy with an unknown parameter", "[server]\noutbound_proxy=sip:10.0.0.1;maddr=10.0.0.2", "server", "outbound_proxy", "only transport and lr"},
		{"an outbound proxy with a bad host", "[server]\noutbound_proxy=sip:pro_xy", "server", "outbound_proxy", "neither an IP address nor a DNS name"},
		{"sips with udp", "[server]\noutbound_proxy=sips:10.0.0.1;transport=udp", "server", "outbound_proxy", "sips means TLS"},
		{"realms that name none", "[webconference]\ndialout_auth_realms=\" , \"", "webconference", "dialout_auth_realms", "names no realm"},
		{"a quoted realm", "[webconference]\ndialout_auth_realms=a,\"\\\"b\\\"\"", "webconference", "dialout_auth_realms", "without quotes"},
		{"an empty ringback", "[webconference]\nringback=", "webconference", "ringback", "empty"},
		{"a bad http listen", "[http]\nlisten=localhost", "http", "listen", "missing port"},
		{"an event ring too small", "[http]\nevents_ring_size=8", "http", "events_ring_size", "from 16"},
		{"no event queue", "[http]\nevents_client_queue=0", "http", "events_client_queue", "from 1"},
		{"a negative max_calls", "[limits]\nmax_calls=-1", "limits", "max_calls", "negative"},
		{"a trusted proxy that is a name", "[limits]\ntrusted_proxies=10.0.0.1, proxy.example.com", "limits", "trusted_proxies", `"proxy.example.com" is not an IP address or CIDR prefix`},
		{"a trusted proxy prefix too long", "[limits]\ntrusted_proxies=10.0.0.0/33", "limits", "trusted_proxies", `"10.0.0.0/33" is not a CIDR prefix`},
		{"an HTTP trusted proxy that is not one", "[http]\ntrusted_proxies=fe80::1%eth0", "http", "trusted_proxies", "not an IP address"},
		{"a negative mix_max_talkers", "[webconference]\nmix_max_talkers=-1", "webconference", "mix_max_talkers", "negative"},
		{"a header name with a space", "[webconference]\nparticipant_id_header=\"X Pid\"", "webconference", "participant_id_header", "not a SIP header name"},
		{"an unterminated quote", "[webconference]\nmaster_password=\"abc", "webconference", "master_password", "missing closing quote"},
		{"text after a quoted value", "[webconference]\nmaster_password=\"abc\" def", "webconference", "master_password", "after the closing quote"},
		{"a server_ip that is an interface name", "[xmlrpc]\nserver_ip=eth0", "xmlrpc", "server_ip", "not an IP address"},
		{"an xmlrpc port out of range", "[xmlrpc]\nxmlrpc_port=65536", "xmlrpc", "xmlrpc_port", "not in 0..65535"},
		{"zero threads", "[xmlrpc]\nthreads=0", "xmlrpc", "threads", "at least 1"},
		{"a bad boolean in xmlrpc", "[xmlrpc]\njsonrpc=y", "xmlrpc", "jsonrpc", "not a boolean"},
		{"an unknown key", "[server]\nsip_port=5060", "server", "sip_port", "unknown key"},
		{"an unknown section-less key", "private_room=yes", "webconference", "private_room", "unknown key"},
		{"an unknown section", "[meeting]\nx=1", "meeting", "", "unknown section"},
		{"a calls domain that is a URI", "[calls]\ndomain=sip:x@example.com", "calls", "domain", "not a host"},
		{"a calls outbound_proxy that is not a SIP URI", "[calls]\ndomain=example.com\noutbound_proxy=http://p", "calls", "outbound_proxy", "not sip or sips"},
		{"a calls outbound_proxy without a domain", "[calls]\noutbound_proxy=sip:192.0.2.7", "calls", "outbound_proxy", "domain is empty"},
		{"a calls auth_user without a password", "[calls]\ndomain=example.com\nauth_user=a", "calls", "auth_user", "go together"},
		{"calls credentials without a domain", "[calls]\nauth_user=a\nauth_password=b", "calls", "auth_user", "without a domain"},
		{"a calls from_user with a space", "[calls]\nfrom_user=a b", "calls", "from_user", "SIP user parts"},
		{"a mail host with a port", "[mail]\nhost=smtp.example.com:25\nfrom=a@example.com", "mail", "host", "neither an IP address nor a DNS name"},
		{"a mail host without from", "[mail]\nhost=smtp.example.com", "mail", "from", "must be set with host"},
		{"a mail from that is no address", "[mail]\nfrom=meetings at example", "mail", "from", "not an email address"},
		{"a mail port out of range", "[mail]\nport=70000", "mail", "port", "not in 0..65535"},
		{"a mail username without password", "[mail]\nhost=smtp.example.com\nfrom=a@example.com\nusername=u", "mail", "username", "go together"},
		{"a mail password sent in clear", "[mail]\nhost=smtp.example.com\nfrom=a@example.com\nstarttls=no\nusername=u\npassword=p", "mail", "username", "needs tls or starttls"},
		{"a zero mail timeout", "[mail]\nhost=smtp.example.com\nfrom=a@example.com\ntimeout=0", "mail", "timeout", "at least 1 second"},
		{"a mail starttls that is not a boolean", "[mail]\nstarttls=required", "mail", "starttls", "not a boolean"},
		{"a shortenerURL that is not a URL", "[meetings]\nshortenerURL=api-ssl.bitly.com/v4/shorten", "meetings", "shortenerURL", "not an http(s) URL"},
		{"an sms url that is not http", "[sms]\nurl=smtp://sms.example.com\nbody=t={{text}}", "sms", "url", "not an http(s) URL"},
		{"an sms url with credentials", "[sms]\nurl=https://u:p@sms.example.com\nbody=t={{text}}", "sms", "url", "they go in auth"},
		{"an sms url without a body", "[sms]\nurl=https://sms.example.com/send\n", "sms", "body", "must be set with url"},
		{"an sms body without {{text}}", "[sms]\nurl=https://sms.example.com/send\nbody=to={{to}}&from={{from}}", "sms", "body", "has no {{text}}"},
		{"an sms body with an unknown placeholder", "[sms]\nurl=https://sms.example.com/send\nbody=t={{text}}&x={{name}}", "sms", "body", "unknown placeholder at \"{{name}}\""},
		{"an sms body with triple braces", "[sms]\nurl=https://sms.example.com/send\nbody=t={{{text}}}", "sms", "body", "unknown placeholder"},
		{"an sms JSON body with a bare placeholder", "[sms]\nurl=https://sms.example.com/send\nbody={\"t\": {{text}}}", "sms", "body", "placeholders go inside JSON strings"},
		{"an sms JSON body that is not JSON", "[sms]\nurl=https://sms.example.com/send\ncontent_type=json\nbody=t={{text}}", "sms", "body", "is not JSON"},
		{"an sms form body with a bad escape", "[sms]\nurl=https://sms.example.com/send\nbody=t={{text}}&x=%zz", "sms", "body", "is not a form"},
		{"an sms method that is not one", "[sms]\nurl=https://sms.example.com/send\nmethod=PATCH\nbody=t={{text}}", "sms", "method", `"PATCH" is not one of POST, PUT, GET`},
		{"an sms GET with JSON", "[sms]\nurl=https://sms.example.com/send\nmethod=get\nbody={\"t\": \"{{text}}\"}", "sms", "content_type", "a GET sends a form"},
		{"an sms content type that is not one", "[sms]\nurl=https://sms.example.com/send\ncontent_type=xml\nbody=t={{text}}", "sms", "content_type", `"xml" is not one of form, json`},
		{"an sms auth that is not one", "[sms]\nurl=https://sms.example.com/send\nauth=basic:u:p\nbody=t={{text}}", "sms", "auth", "is not one of none, basic, bearer"},
		{"sms basic auth without a password", "[sms]\nurl=https://sms.example.com/send\nauth=basic\nusername=u\nbody=t={{text}}", "sms", "auth", "basic needs username"},
		{"sms basic auth with a colon in the user", "[sms]\nurl=https://sms.example.com/send\nauth=basic\nusername=a:b\npassword=p\nbody=t={{text}}", "sms", "auth", "without ':'"},
		{"sms bearer auth without a token", "[sms]\nurl=https://sms.example.com/send\nauth=bearer\nbody=t={{text}}", "sms", "auth", "bearer needs token"},
		{"sms credentials with auth none", "[sms]\nurl=https://sms.example.com/send\ntoken=t\nbody=t={{text}}", "sms", "auth", "auth is none"},
		{"an sms idempotency header with a space", "[sms]\nurl=https://sms.example.com/send\nidempotency_header=\"Idem Key\"\nbody=t={{text}}", "sms", "idempotency_header", "not a header name"},
		{"an sms timeout of 0", "[sms]\nurl=https://sms.example.com/send\ntimeout=0\nbody=t={{text}}", "sms", "timeout", "at least 1 second"},
		{"a push url that is not a URL", "[push]\nurl=push.example.com", "push", "url", "not an http(s) URL"},
		{"a push timeout of 0", "[push]\nurl=http://push.example.com\ntimeout=0", "push", "timeout", "at least 1 second"},
		{"a key set twice", "[server]\nlog_level=info\nlog_level=debug", "server", "log_level", "set more than once"},
		{"a key set twice with the same value", "[server]\nlog_level=info\nlog_level=info", "server", "log_level", "set more than once"},
		{"a key set empty, then set", "[calls]\ndomain=\nfrom_user=x\ndomain=sip.example.com", "calls", "domain", "set more than once"},
		{"a key set, then set empty", "[server]\nlog_level=debug\nlog_level=", "server", "log_level", "set more than once"},
		{"a key set empty twice", "[server]\npublic_ip=\npublic_ip=", "server", "public_ip", "set more than once"},
		{"a key set outside and inside [webconference]", "ignore_pin=yes\n[webconference]\nignore_pin=no", "webconference", "ignore_pin", "set more than once"},
	}
	for _, tc := range cases {
		t.Run(tc.name+" is reported with its key", func(t *testing.T) {
			c, err := Parse([]byte(tc.text))
			if err == nil {
				t.Fatalf("Parse accepted %q: %v", tc.text, c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			kes := keyErrors(t, err)
			if len(kes) != 1 {
				t.Fatalf("want exactly one problem, got %d: %v", len(kes), err)
			}
			ke := kes[0]
			if ke.Section != tc.section || ke.Key != tc.key || !strings.Contains(ke.Problem, tc.problem) {
				t.Errorf("got [%s] %s: %s, want [%s] %s: ...%s...", ke.Section, ke.Key, ke.Problem, tc.section, tc.key, tc.problem)
			}
			prefix := "conf: [" + tc.section + "] " + tc.key
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("message %q does not start with %q", err.Error(), prefix)
			}
		})
	}
}

func TestErrorMessageFormat(t *testing.T) {
	_, err := Parse([]byte("[server]\nrtp_low_port=abc\n"))
	if want := `conf: [server] rtp_low_port: "abc" is not a number`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestSyntaxErrors(t *testing.T) {
	t.Run("a line without '=' is rejected", func(t *testing.T) {
		_, err := Parse([]byte("[server]\nlog_level\n"))
		if err == nil || !errors.Is(err, ErrInvalid) {
			t.Fatalf("got %v, want an ErrInvalid syntax error", err)
		}
	})
	t.Run("':' does not separate key and value", func(t *testing.T) {
		_, err := Parse([]byte("[server]\nlog_level: debug\n"))
		if err == nil {
			t.Fatal("log_level: debug was accepted")
		}
	})
}

func TestSeveralProblemsReportedTogether(t *testing.T) {
	text := `
[server]
rtp_low_port=abc
log_level=loud
bogus=1
[webconference]
direct_room_re=(
max_pin_attempts=many
[xmlrpc]
threads=0
[extra]
`
	_, err := Parse([]byte(text))
	if err == nil {
		t.Fatal("Parse accepted a file with six problems")
	}
	var got []string
	for _, ke := range keyErrors(t, err) {
		got = append(got, ke.Section+"."+ke.Key)
	}
	want := []string{"server.rtp_low_port", "server.log_level", "server.bogus",
		"webconference.direct_room_re", "webconference.max_pin_attempts", "xmlrpc.threads", "extra."}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("problems = %v, want %v\nerror:\n%v", got, want, err)
	}
}

func TestValueSyntax(t *testing.T) {
	t.Run("'#' after a value starts a comment, as in SEMS", func(t *testing.T) {
		c := mustParse(t, "lonely_user_timer=5   # five seconds\n")
		if c.Webconference.LonelyUserTimer != 5*time.Second {
			t.Errorf("got %v", c.Webconference.LonelyUserTimer)
		}
	})
	t.Run("a quoted value keeps '#', spaces and escaped quotes", func(t *testing.T) {
		c := mustParse(t, `master_password=" a#b\"c " # comment`+"\n")
		if got := c.Webconference.MasterPassword; got != ` a#b"c ` {
			t.Errorf("got %q", got)
		}
	})
	t.Run("';' is data, not a comment, so lists survive", func(t *testing.T) {
		c := mustParse(t, "predefined_rooms=r1:p1;r2:p2\n[xmlrpc]\ndirect_export=sbc;webconference\n")
		if want := []PredefinedRoom{{"r1", "p1"}, {"r2", "p2"}}; !reflect.DeepEqual(c.Webconference.PredefinedRooms, want) {
			t.Errorf("predefined_rooms = %v", c.Webconference.PredefinedRooms)
		}
		if want := []string{"sbc", "webconference"}; !slices.Equal(c.XMLRPC.DirectExport, want) {
			t.Errorf("direct_export = %v", c.XMLRPC.DirectExport)
		}
	})
	t.Run("a trailing backslash is not a line continuation", func(t *testing.T) {
		c := mustParse(t, "digits_dir=C:\\prompts\\\nstats_dir=/s\n")
		if c.Webconference.DigitsDir != `C:\prompts\` || c.Webconference.StatsDir != "/s" {
			t.Errorf("digits_dir=%q stats_dir=%q", c.Webconference.DigitsDir, c.Webconference.StatsDir)
		}
	})
	t.Run("an empty predefined_rooms means none", func(t *testing.T) {
		c := mustParse(t, "predefined_rooms=\n")
		if len(c.Webconference.PredefinedRooms) != 0 {
			t.Errorf("got %v", c.Webconference.PredefinedRooms)
		}
	})
	t.Run("an empty direct_export exports nothing", func(t *testing.T) {
		c := mustParse(t, "[xmlrpc]\ndirect_export=\n")
		if len(c.XMLRPC.DirectExport) != 0 {
			t.Errorf("got %v", c.XMLRPC.DirectExport)
		}
	})
	t.Run("tell_pin and star_finishes_pin are accepted whatever their value", func(t *testing.T) {
		c := mustParse(t, "tell_pin=whatever\nstar_finishes_pin=no\n")
		if !reflect.DeepEqual(*c, Default()) {
			t.Errorf("ignored keys changed the config:\n%v", c)
		}
	})
	t.Run("the odd rtp_low_port is rounded up to even", func(t *testing.T) {
		c := mustParse(t, "[server]\nrtp_low_port=10001\nrtp_high_port=10004\n")
		if c.Server.RTPLowPort != 10002 {
			t.Errorf("rtp_low_port = %d, want 10002", c.Server.RTPLowPort)
		}
	})
	t.Run("direct_room_re matches anywhere, POSIX leftmost-longest", func(t *testing.T) {
		c := mustParse(t, "direct_room_re=000777.*\n")
		re := c.Webconference.DirectRoomRE
		if !re.MatchString("99000777123") || re.MatchString("00077") {
			t.Errorf("unexpected matching of %v", re)
		}
		c = mustParse(t, "direct_room_re=a|ab\n")
		if got := c.Webconference.DirectRoomRE.FindString("ab"); got != "ab" {
			t.Errorf("not POSIX leftmost-longest: %q", got)
		}
	})
}

func TestPublicIPDefault(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"an IPv4 listen host is the public address", "[server]\nsip_listen=192.0.2.5:5060", "192.0.2.5"},
		{"an IPv6 listen host is the public address", "[server]\nsip_listen=[2001:db8::5]:5060", "2001:db8::5"},
		{"a 0.0.0.0 listener falls back to loopback", "[server]\nsip_listen=0.0.0.0:5060", "127.0.0.1"},
		{"a :: listener falls back to loopback", "[server]\nsip_listen=[::]:5060", "127.0.0.1"},
		{"an empty listen host falls back to loopback", "[server]\nsip_listen=:5060", "127.0.0.1"},
		{"an explicit public_ip wins", "[server]\nsip_listen=0.0.0.0:5060\npublic_ip=203.0.113.9", "203.0.113.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustParse(t, tc.text).Server.PublicIP; got != tc.want {
				t.Errorf("public_ip = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSectionlessSEMSFile(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "sems-webconference.conf"))
	if err != nil {
		t.Fatalf("a SEMS webconference.conf does not load: %v", err)
	}
	w := c.Webconference
	if w.FirstParticipant != "/usr/local/lib/sems/audio/webconference/first_participant.wav" {
		t.Errorf("first_participant = %q", w.FirstParticipant)
	}
	if w.EnterPin != "/usr/local/lib/sems/audio/webconference/pin_prompt.wav" {
		t.Errorf("enter_pin = %q", w.EnterPin)
	}
	if w.DirectRoomPattern != "000777.*" || w.DirectRoomStrip != 6 || w.DirectRoomRE == nil ||
		!w.DirectRoomRE.MatchString("000777123") {
		t.Errorf("direct room = %q %d %v", w.DirectRoomPattern, w.DirectRoomStrip, w.DirectRoomRE)
	}
	if w.FeedbackFile != "/var/log/sems-webconference-feedback.txt" || w.StatsDir != "/var/log/sems-webconference/" {
		t.Errorf("feedback_file=%q stats_dir=%q", w.FeedbackFile, w.StatsDir)
	}
	// Sections it does not mention keep their defaults.
	if !reflect.DeepEqual(c.Server, Default().Server) || !reflect.DeepEqual(c.XMLRPC, Default().XMLRPC) {
		t.Errorf("[server]/[xmlrpc] changed:\n%v", c)
	}
}

func TestSampleConfigLoads(t *testing.T) {
	c, err := Load("webconfd.conf")
	if err != nil {
		t.Fatalf("the sample config does not load: %v", err)
	}
	if c.Server.SIPListen != "127.0.0.1:5060" || c.Server.DataDir != "./data" {
		t.Errorf("sip_listen=%q data_dir=%q", c.Server.SIPListen, c.Server.DataDir)
	}
	w := c.Webconference
	if w.DirectRoomPattern != "000777.*" || w.DirectRoomStrip != 6 {
		t.Errorf("direct_room_re=%q direct_room_strip=%d", w.DirectRoomPattern, w.DirectRoomStrip)
	}
	for key, path := range map[string]string{
		"first_participant": w.FirstParticipant, "join_sound": w.JoinSound, "drop_sound": w.DropSound,
		"enter_pin": w.EnterPin, "wrong_pin": w.WrongPin, "wrong_pin_bye": w.WrongPinBye,
		"entering_conference": w.EnteringConference, "digits_dir": w.DigitsDir,
		"room_locked": w.RoomLocked,
	} {
		if path != "" {
			t.Errorf("%s = %q, the sample should use the built-in prompt", key, path)
		}
	}
	t.Run("the sample sets every key except the ignored and client-side ones", func(t *testing.T) {
		data, err := os.ReadFile("webconfd.conf")
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		optional := map[string]bool{"public_ip": true, "playout_type": true, "server_retry_after": true,
			"server_timeout": true, "debug_server_params": true, "debug_server_result": true}
		var cfg Config
		for section, keys := range sectionFields(&cfg) {
			for key := range keys {
				if !optional[key] && !strings.Contains(text, "\n"+key+"=") {
					t.Errorf("[%s] %s is not in the sample", section, key)
				}
			}
		}
	})
}

func TestLoad(t *testing.T) {
	t.Run("a missing file is an fs error, not ErrInvalid", func(t *testing.T) {
		_, err := Load(filepath.Join(t.TempDir(), "nope.conf"))
		if !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrInvalid) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("a bad file's error names the file", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.conf")
		if err := os.WriteFile(p, []byte("[server]\nthreads=1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "[server] threads: unknown key") {
			t.Errorf("got %v", err)
		}
	})
}

func TestString(t *testing.T) {
	c := mustParse(t, `
[webconference]
master_password="hunter#2"
predefined_rooms=room1:pin111;room2:pin222
digits_dir=" /with space "
direct_room_re=000777.*
[xmlrpc]
direct_export=sbc;webconference
`)
	s := c.String()
	for _, secret := range []string{"hunter", "pin111", "pin222"} {
		if strings.Contains(s, secret) {
			t.Errorf("String leaks %q:\n%s", secret, s)
		}
	}
	for _, formatted := range []string{c.Webconference.String(), strings.Join([]string{
		// fmt verbs go through String too.
		fmt.Sprintf("%v", *c), fmt.Sprintf("%+v", c.Webconference), fmt.Sprintf("%s", c.Webconference.PredefinedRooms),
	}, "\n")} {
		if strings.Contains(formatted, "hunter") || strings.Contains(formatted, "pin111") {
			t.Errorf("formatting leaks a secret:\n%s", formatted)
		}
	}
	if !strings.Contains(s, "master_password=***\n") || !strings.Contains(s, "predefined_rooms=room1:***;room2:***\n") {
		t.Errorf("secrets not shown as ***:\n%s", s)
	}

	t.Run("the output parses back to the same configuration, secrets aside", func(t *testing.T) {
		back, err := Parse([]byte(s))
		if err != nil {
			t.Fatalf("String output does not parse: %v\n%s", err, s)
		}
		back.Webconference.MasterPassword = c.Webconference.MasterPassword
		back.Webconference.PredefinedRooms = c.Webconference.PredefinedRooms
		if back.String() != s || back.Webconference.DigitsDir != " /with space " {
			t.Errorf("round trip differs:\n%s\nvs\n%s", back, s)
		}
	})
}

func TestMailPasswordNeverPrinted(t *testing.T) {
	c := mustParse(t, "[mail]\nhost=smtp.example.com\nfrom=meetings@example.com\nusername=meetings\npassword=\"hunter#2\"\n")
	if c.Mail.Password != "hunter#2" || c.Mail.Host != "smtp.example.com" || !c.Mail.StartTLS || c.Mail.Timeout != 30*time.Second {
		t.Fatalf("parsed %+v", c.Mail)
	}
	for _, s := range []string{c.String(), c.Mail.String(), fmt.Sprintf("%v", c.Mail), fmt.Sprintf("%+v", c.Mail), fmt.Sprint(*c)} {
		if strings.Contains(s, "hunter") {
			t.Errorf("the mail password is printed:\n%s", s)
		}
		if !strings.Contains(s, "password=***") || !strings.Contains(s, "username=meetings") {
			t.Errorf("want password=*** and the username:\n%s", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, p := range []string{"webconfd.conf", filepath.Join("testdata", "sems-webconference.conf")} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[server]\nrtp_low_port=abc\nmaster_password=\"a#b\" # c\npredefined_rooms=a:1;b:2;\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatalf("config and error: %v", err)
			}
			return
		}
		// Whatever loads can be printed and loads again the same, secrets aside.
		back, err := Parse([]byte(c.String()))
		if err != nil {
			t.Fatalf("String output does not parse: %v\n%s", err, c)
		}
		if back.String() != c.String() {
			t.Fatalf("round trip differs:\n%s\nvs\n%s", back, c)
		}
	})
}

func TestValidate(t *testing.T) {
	t.Run("Default() is valid", func(t *testing.T) {
		c := Default()
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a config built in code gets its regex compiled and its problems listed", func(t *testing.T) {
		c := Default()
		c.Webconference.DirectRoomPattern = "^55"
		if err := c.Validate(); err != nil || c.Webconference.DirectRoomRE == nil || !c.Webconference.DirectRoomRE.MatchString("5512") {
			t.Fatalf("err=%v re=%v", err, c.Webconference.DirectRoomRE)
		}
		c.Server.RTPLowPort = 1
		c.XMLRPC.Threads = 0
		err := c.Validate()
		if got := len(keyErrors(t, err)); got != 2 || !errors.Is(err, ErrInvalid) {
			t.Errorf("want 2 problems, got %d: %v", got, err)
		}
	})
}
