package sipapp

import (
	"log/slog"

	"webconf/conf"
	"webconf/prompts"
	"webconf/sipapp/meeting"
	"webconf/sipapp/room"
)

// OptionsFromConfig maps the config file's settings onto Options.
func OptionsFromConfig(cfg *conf.Config, set *prompts.Set, log *slog.Logger) Options {
	w := cfg.Webconference
	opt := Options{
		SIPListen:     cfg.Server.SIPListen,
		PublicIP:      cfg.Server.PublicIP,
		SIPTLSListen:  cfg.Server.SIPTLSListen,
		TLSCert:       cfg.Server.TLSCert,
		TLSKey:        cfg.Server.TLSKey,
		TLSCAFile:     cfg.Server.TLSCAFile,
		TLSSkipVerify: !cfg.Server.TLSVerify,
		RTPLow:        cfg.Server.RTPLowPort,
		RTPHigh:       cfg.Server.RTPHighPort,
		DeadRTPTime:   cfg.Server.DeadRTPTime,
		AnswerDelay:   cfg.Server.AnswerDelay,
		RTPReceive:    cfg.Server.RTPReceive,
		RTPSocket:     cfg.Server.RTPSocket,
		Signature:     w.ServerSignature,
		SRTP:          cfg.Server.SRTP,

		DirectRoomRE:        w.DirectRoomRE,
		DirectRoomStrip:     w.DirectRoomStrip,
		RoomPinSplit:        w.RoomPinSplit,
		ParticipantIDParam:  w.ParticipantIDParam,
		ParticipantIDHeader: w.ParticipantIDHeader,

		LoopFirstParticipant: w.LoopFirstParticipantPrompt,
		LonelyUserTimer:      w.LonelyUserTimer,
		MaxPinAttempts:       w.MaxPinAttempts,
		PinTimeout:           w.PinTimeout,

		Registry: room.Config{
			Private:                 w.PrivateRooms,
			IgnorePin:               w.IgnorePin,
			RoomsExpire:             w.RoomsExpire,
			RoomsExpireDelay:        w.RoomsExpireDelay,
			ParticipantsExpire:      w.ParticipantsExpire,
			ParticipantsExpireDelay: w.ParticipantsExpireDelay,
			SupportRoomsTimeout:     w.SupportRoomsTimeout,
			MaxRooms:                cfg.Limits.MaxRooms,
		},
		DialoutAllowedRE:  w.DialoutAllowedRE,
		MaxDialouts:       w.MaxDialouts,
		OutboundProxy:     cfg.Server.OutboundProxy,
		DialoutAuthRealms: w.DialoutAuthRealmList,
		Ringback:          w.Ringback,
		MixMaxTalkers:     w.MixMaxTalkers,
		Limits:            Limits(cfg.Limits),
		SessionTimer: SessionTimer{
			Enabled: w.EnableSessionTimer, Expires: w.SessionExpires, MinSE: w.MinimumTimer,
			Max: w.MaximumTimer, Refresh: w.SessionRefreshMethod, Accept501: w.Accept501Reply,
		},

		Meetings: meeting.Config{
			TTL: cfg.Meetings.MeetingTTL, MaxParticipants: cfg.Meetings.MaxParticipants,
			Languages: cfg.Meetings.LanguagesTemplates, SIPDialin: cfg.Meetings.SIPDialin,
			MaxPublicRooms: cfg.Meetings.MaxPublicRooms, PublicRooms: cfg.Meetings.PublicRooms,
			PublicRoomTTL:     cfg.Meetings.PublicRoomTTL,
			MaxAuthorizations: cfg.Meetings.MaxAuthorizations, MaxAuthorizationsPerGuest: cfg.Meetings.MaxAuthorizationsPerGuest,
			Log: log,
		},
		Calls: CallsConfig{
			Domain: cfg.Calls.Domain, OutboundProxy: cfg.Calls.OutboundProxy,
			AuthUser: cfg.Calls.AuthUser, AuthPassword: cfg.Calls.AuthPassword, FromUser: cfg.Calls.FromUser,
		},
		GuestRequestsPerSource: cfg.Meetings.GuestRequestsPerSource,
		PublicRoomsPerSource:   cfg.Meetings.PublicRoomsPerSource,
		Prompts:                set,
		Log:                    log,
	}
	for _, p := range w.PredefinedRooms {
		opt.PredefinedRooms = append(opt.PredefinedRooms, PredefinedRoom{Room: p.Room, AdminPin: p.AdminPin})
	}
	return opt
}

// PromptFiles is the prompt part of the config as the prompts package wants it.
func PromptFiles(cfg *conf.Config) prompts.Files {
	w, m := cfg.Webconference, cfg.Meetings
	return prompts.Files{
		FirstParticipant: w.FirstParticipant, JoinSound: w.JoinSound, DropSound: w.DropSound,
		EnterPin: w.EnterPin, WrongPin: w.WrongPin, WrongPinBye: w.WrongPinBye,
		EnteringConference: w.EnteringConference, DigitsDir: w.DigitsDir, RoomLocked: w.RoomLocked,
		MeetingNotStarted: m.NotStartedPrompt, MeetingEnded: m.EndedPrompt,
		ConferenceFull: m.FullPrompt, LobbyWait: m.LobbyPrompt,
	}
}
