package sipapp

import (
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"webconf/sipapp/meeting"
)

// callsRealm is the digest realm of users' SIP accounts: a user's phone
// calling out (callsDialin) and a user's phone dialling a meeting
// (meetingUser) answer challenges of this realm with the user's SIP
// password.
const callsRealm = "webconf-calls"

// userAuth checks that an INVITE whose From names u (a user with a SIP
// account) carries u's digest credentials (realm callsRealm, MD5 with
// qop=auth, under a nonce this source got from us and that is still
// fresh). code 0: they are u's. Otherwise the INVITE is to be answered
// with code: 401 with a challenge in hdr (stale=true when the nonce was
// ours but old), 400 for an Authorization header that cannot be read, 403
// for wrong credentials, which are charged to the source's failure budget
// like a wrong room number.
func (s *Server) userAuth(req *sip.Request, u meeting.User, password string) (code int, reason string, hdr sip.Header) {
	who := s.callerOf(req)
	src := who.addr
	challenge := func(stale bool) (int, string, sip.Header) {
		chal := digestChallenge(callsRealm, s.newNonce(src, time.Now()), stale)
		return 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", chal)
	}
	hs := req.GetHeaders("Authorization")
	if len(hs) == 0 {
		return challenge(false)
	}
	creds, err := digest.ParseCredentials(hs[0].Value())
	if err != nil {
		return 400, "Bad Authorization Header", nil
	}
	valid, fresh := s.checkNonce(creds.Nonce, src, time.Now())
	switch {
	case !valid:
		return challenge(false)
	case !fresh:
		return challenge(true)
	}
	if creds.Username != u.Username || !verifyDigestRealm(creds, req, callsRealm, password) {
		s.counters.pinFailures.Add(1)
		if who.Fail(s.guards.Sources) {
			s.log.Warn("source banned after too many wrong SIP credentials", "source", src, "proxy", who.proxy)
		}
		return 403, "Forbidden", nil
	}
	return 0, "", nil
}

// meetingUser tells whose phone a caller who dials a meeting's room
// directly is (its number as the Request-URI user, P-App-Param room or
// direct_room_re): when From names a user with a SIP account, the INVITE
// is challenged (userAuth) and, once the credentials are the user's, the
// call is that user's (user is the user's UUID, code 0). A caller whose
// From names no such user, a meeting-guest caller and a keypad caller are
// guests: "" and code 0, nothing asked.
func (s *Server) meetingUser(req *sip.Request) (user string, code int, reason string, hdr sip.Header) {
	from := req.From()
	if from == nil || req.Recipient.User == GuestExten {
		return "", 0, "", nil
	}
	room, _, _ := s.directTarget(req)
	if room == "" {
		return "", 0, "", nil
	}
	if _, ok := s.book.GateFor(room); !ok {
		return "", 0, "", nil
	}
	u, password, ok := s.book.SIPAccount(from.Address.User)
	if !ok {
		return "", 0, "", nil
	}
	if code, reason, hdr = s.userAuth(req, u, password); code != 0 {
		return "", code, reason, hdr
	}
	return u.UUID, 0, "", nil
}
