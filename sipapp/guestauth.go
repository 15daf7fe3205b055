package sipapp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"webconf/sipapp/meeting"
)

// GuestExten is the Request-URI user a meeting guest dials with the
// meeting's guest credentials (Wazo's meeting-guest extension).
const GuestExten = "meeting-guest"

// PublicRoomPrefix starts the Request-URI user that names a public room
// by its identifier: sip:c.<identifier>@server. The dot cannot be in an
// identifier, so a public room can never take the name a keypad caller or
// a gateway dials (a bare identifier such as "conference" reaches the
// keypad as before).
const PublicRoomPrefix = "c."

// guestRealm is the digest realm of meeting-guest challenges.
const guestRealm = "webconf-meetings"

// nonceLife is how long a nonce we issued is good for. A reply after it
// gets a fresh challenge with stale=true (RFC 7616 section 3.3), so a slow
// phone is not refused.
const nonceLife = 5 * time.Minute

// preRoute decides, before the call is answered, what needs deciding
// then: a meeting-guest caller is challenged (401) until their digest
// credentials name a meeting, and a caller who dials a meeting room
// directly while SIP dial-in is off, or who dials a locked room directly,
// is refused with 403 (a keypad caller learns it after typing). pre is the room when it is already known; code
// is a status to refuse with (then hdr, if any, goes in the response).
// newPublic is the identifier of a public room the call is to make once
// it is answered and acknowledged (so that the source that pays for it
// is a real one).
func (s *Server) preRoute(req *sip.Request) (pre, newPublic string, code int, reason string, hdr sip.Header) {
	user := req.Recipient.User
	if user == GuestExten {
		pre, code, reason, hdr = s.guestAuth(req)
		return pre, "", code, reason, hdr
	}
	room, known, id := s.directTarget(req)
	if id != "" {
		switch {
		case s.callerOf(req).Banned(s.guards.PublicRooms):
			// This source made its budget of public rooms.
			s.counters.capped.Add(1)
			return "", "", 403, "Forbidden", nil
		case !s.book.CanMakePublicRoom():
			s.counters.capped.Add(1)
			return "", "", 503, "Service Unavailable", sip.NewHeader("Retry-After", "60")
		}
		return "", id, 0, "", nil
	}
	if room == "" {
		return "", "", 0, "", nil
	}
	if g, ok := s.book.GateFor(room); ok && !g.SIPDialin {
		return "", "", 403, "Forbidden", nil
	}
	if s.reg.Locked(room) {
		return "", "", 403, reasonLocked, nil
	}
	if known {
		return room, "", 0, "", nil
	}
	return "", "", 0, "", nil
}

// directTarget is the room a call names before any digit is typed: from
// P-App-Param room or direct_room_re (then route applies SEMS's rules,
// known is false), or a meeting's or public room's number or
// c.<identifier> of an open public room as the Request-URI user (known is
// true: it goes straight in). newPublic is the identifier of
// c.<identifier> when public rooms are on and none is open by that name.
func (s *Server) directTarget(req *sip.Request) (room string, known bool, newPublic string) {
	for _, h := range req.GetHeaders("P-App-Param") {
		if v, ok := appParam(h.Value(), "enter_room"); ok && strings.EqualFold(v, "true") {
			return "", false, ""
		}
	}
	for _, h := range req.GetHeaders("P-App-Param") {
		if v, ok := appParam(h.Value(), "room"); ok {
			return s.splitRoom(v), false, ""
		}
	}
	user := req.Recipient.User
	if re := s.opt.DirectRoomRE; re != nil && re.MatchString(user) {
		r := user
		if n := s.opt.DirectRoomStrip; len(user) > n {
			r = user[n:]
		}
		return s.splitRoom(r), false, ""
	}
	if s.book.IsMeetingRoom(user) {
		return user, true, ""
	}
	if id, ok := strings.CutPrefix(user, PublicRoomPrefix); ok {
		if r, ok := s.book.PublicRoomNumber(id); ok {
			return r, true, ""
		}
		if s.opt.Meetings.PublicRooms && meeting.ValidIdentifier(id) && !meeting.ReservedIdentifier(id) {
			return "", false, id
		}
	}
	return "", false, ""
}

// splitRoom is the room part of a direct string under room_pin_split.
func (s *Server) splitRoom(v string) string {
	if n := s.opt.RoomPinSplit; n > 0 && len(v) > n {
		return v[:n]
	}
	return v
}

// newNonce is stateless: the issue time and an HMAC over it and the
// source address, so that a nonce is only good from the address it was
// sent to (which also proves that address real before a failure is
// charged to it).
func (s *Server) newNonce(src string, now time.Time) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Unix()))
	copy(b[8:], s.nonceMAC(b[:8], src))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) nonceMAC(ts []byte, src string) []byte {
	m := hmac.New(sha256.New, s.nonceKey[:])
	m.Write(ts)
	m.Write([]byte(src))
	return m.Sum(nil)[:16]
}

// checkNonce: ours and from this source (valid), and still fresh.
func (s *Server) checkNonce(nonce, src string, now time.Time) (valid, fresh bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	if !hmac.Equal(b[8:], s.nonceMAC(b[:8], src)) {
		return false, false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return true, now.Sub(issued) < nonceLife && !issued.After(now.Add(time.Minute))
}

func (s *Server) guestChallenge(src string, stale bool) (string, int, string, sip.Header) {
	chal := digest.Challenge{
		Realm: guestRealm, Nonce: s.newNonce(src, time.Now()),
		Algorithm: "MD5", QOP: []string{"auth"}, Stale: stale,
	}
	return "", 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", chal.String())
}

// guestAuth checks a meeting-guest INVITE's digest credentials (RFC 3261
// section 22, RFC 2617 / 7616 MD5 with qop=auth) against the meetings'
// guest accounts. Wrong credentials under a nonce this source really got
// are refused with 403 and charged to the source's pin_failures budget,
// like a wrong room number.
func (s *Server) guestAuth(req *sip.Request) (string, int, string, sip.Header) {
	who := s.callerOf(req)
	src := who.addr
	hs := req.GetHeaders("Authorization")
	if len(hs) == 0 {
		return s.guestChallenge(src, false)
	}
	creds, err := digest.ParseCredentials(hs[0].Value())
	if err != nil {
		return "", 400, "Bad Authorization Header", nil
	}
	valid, fresh := s.checkNonce(creds.Nonce, src, time.Now())
	if !valid {
		return s.guestChallenge(src, false)
	}
	if !fresh {
		return s.guestChallenge(src, true)
	}
	room, password, ok := s.book.GuestAccount(creds.Username)
	if !ok || !verifyDigest(creds, req, password) {
		s.counters.pinFailures.Add(1)
		if who.Fail(s.guards.Sources) {
			s.log.Warn("source banned after too many wrong meeting-guest credentials", "source", src, "proxy", who.proxy)
		}
		return "", 403, "Forbidden", nil
	}
	if g, ok := s.book.GateFor(room); ok && !g.SIPDialin {
		return "", 403, "Forbidden", nil
	}
	if s.reg.Locked(room) {
		return "", 403, reasonLocked, nil
	}
	return room, 0, "", nil
}

// verifyDigest checks the response against the password. The parameters
// echoed from our challenge must be ours; the uri must be the
// Request-URI (RFC 3261 section 22.4, in full or without parameters, as
// clients write it).
func verifyDigest(creds *digest.Credentials, req *sip.Request, password string) bool {
	return verifyDigestRealm(creds, req, guestRealm, password)
}

// verifyDigestRealm is verifyDigest for a challenge of that realm.
func verifyDigestRealm(creds *digest.Credentials, req *sip.Request, realm, password string) bool {
	algo := strings.ToUpper(creds.Algorithm)
	if algo == "" {
		algo = "MD5"
	}
	switch {
	case creds.Realm != realm, algo != "MD5",
		creds.QOP != "auth", creds.Cnonce == "", creds.Nc < 1,
		creds.URI != req.Recipient.String() && creds.URI != req.Recipient.Addr():
		return false
	}
	want, err := digest.Digest(&digest.Challenge{
		Realm: realm, Nonce: creds.Nonce, Algorithm: "MD5", QOP: []string{"auth"},
	}, digest.Options{
		Method: string(req.Method), URI: creds.URI, Username: creds.Username,
		Password: password, Cnonce: creds.Cnonce, Count: creds.Nc,
	})
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(creds.Response))) == 1
}
