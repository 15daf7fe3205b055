package meeting

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/mail"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Opt is a JSON field that may be absent, null or a value: absent leaves
// the stored value, null clears it.
type Opt[T any] struct {
	Set   bool // present in the body
	Null  bool // present and null
	Value T
}

// UnmarshalJSON is only called for a present field. A wrong value is
// reported as a *json.UnmarshalTypeError, which the decoder fills with the
// field's name.
func (o *Opt[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o.Value); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return te // a nested field: the decoder prefixes ours
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return err
		}
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeOf(o.Value)}
	}
	return nil
}

// UserInput is the body of POST /users.
type UserInput struct {
	Username     Opt[string]   `json:"username"`
	Email        Opt[string]   `json:"email"`
	MobilePhone  Opt[string]   `json:"mobile_phone"`
	Landline     Opt[string]   `json:"landline"`
	Alias        Opt[string]   `json:"alias"`
	Role         Opt[string]   `json:"role"`
	Capabilities Opt[[]string] `json:"capabilities"`
	Line         Opt[string]   `json:"line"`
	SIPPassword  Opt[string]   `json:"sip_password"`
}

// UserUpdate is the body of PUT /users/{uuid}: the fields an operator may
// change after the user was made (absent: unchanged; null or "": cleared).
type UserUpdate struct {
	Line         Opt[string]   `json:"line"`
	SIPPassword  Opt[string]   `json:"sip_password"`
	Capabilities Opt[[]string] `json:"capabilities"`
}

// CheckLine validates a user's line: a sip: or sips: URI with a host.
func CheckLine(field, s string) *Error {
	if s == "" {
		return nil
	}
	if len(s) > 512 {
		return invalid(field, "is too long")
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f || r == '<' || r == '>' || r == '"' {
			return invalid(field, "%q is not a SIP URI (no spaces, control characters, <, > or quotes)", s)
		}
	}
	scheme, rest, _ := strings.Cut(s, ":")
	if !strings.EqualFold(scheme, "sip") && !strings.EqualFold(scheme, "sips") {
		return invalid(field, "%q is not a sip: or sips: URI", s)
	}
	if !sipHostRe.MatchString(rest) {
		return invalid(field, "%q is not a sip: or sips: URI with a host (sip:user@host[:port])", s)
	}
	hostport, _, _ := strings.Cut(rest[strings.LastIndex(rest, "@")+1:], ";")
	port, has := "", false
	if strings.HasPrefix(hostport, "[") {
		_, port, has = strings.Cut(hostport, "]:")
	} else {
		_, port, has = strings.Cut(hostport, ":")
	}
	if n, err := strconv.Atoi(port); has && (err != nil || n < 1 || n > 65535) {
		return invalid(field, "%q: port %q is not in 1..65535", s, port)
	}
	return nil
}

// checkSIPPassword: 8 to 128 printable ASCII characters.
func checkSIPPassword(s string) *Error {
	if s == "" {
		return nil
	}
	if len(s) < 8 || len(s) > 128 {
		return invalid("sip_password", "must be 8 to 128 characters")
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return invalid("sip_password", "must be printable ASCII without spaces")
		}
	}
	return nil
}

// checkCaps validates a capability list and drops duplicates.
func checkCaps(in []string) ([]string, *Error) {
	out := []string{}
	for _, c := range in {
		if !slices.Contains(knownCaps, c) {
			return nil, invalid("capabilities", "%q is not one of %s", c, strings.Join(knownCaps, ", "))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// LobbyInput is the lobby field of a meeting body and the body of PUT
// .../webinar/lobby. Timer stays raw so that a wrong type is reported as
// this field's error.
type LobbyInput struct {
	State Opt[int]   `json:"state"`
	Timer Opt[int64] `json:"timer"`
}

// MeetingInput is the body of a meeting create or update. Read-only
// fields are accepted and ignored, so that a client can send back what it
// got (Wazo's dump-only fields).
type MeetingInput struct {
	Name                 Opt[string]     `json:"name"`
	OwnerUUIDs           Opt[[]string]   `json:"owner_uuids"`
	Persistent           Opt[bool]       `json:"persistent"`
	RequireAuthorization Opt[bool]       `json:"require_authorization"`
	ValidSince           Opt[time.Time]  `json:"valid_since"`
	ValidUntil           Opt[time.Time]  `json:"valid_until"`
	Language             Opt[string]     `json:"language"`
	Participants         Opt[[]Invitee]  `json:"participants"`
	MaxParticipants      Opt[int]        `json:"max_participants"`
	Lobby                Opt[LobbyInput] `json:"lobby"`
	SIPDialin            Opt[bool]       `json:"sip_dialin"`
	// SendInvites (update only) invites every participant again.
	SendInvites Opt[bool] `json:"send_invites"`

	UUID                  json.RawMessage `json:"uuid"`
	Exten                 json.RawMessage `json:"exten"`
	CreationTime          json.RawMessage `json:"creation_time"`
	IngressHTTPURI        json.RawMessage `json:"ingress_http_uri"`
	GuestSIPAuthorization json.RawMessage `json:"guest_sip_authorization"`
	URL                   json.RawMessage `json:"url"`
	ExpiresAt             json.RawMessage `json:"expires_at"`
	DialinNumber          json.RawMessage `json:"dialin_number"`
	SIPURI                json.RawMessage `json:"sip_uri"`
}

var (
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)
	usernameRe = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,128}$`)
	uuidRe     = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	knownCaps  = []string{CapMeetings, CapSIP}
	// sipHostRe is what follows "sip:" in a line: an optional user part
	// (RFC 3261 unreserved, escaped and user-unreserved characters, an
	// optional :password), then a host name, IPv4 or [IPv6] address, an
	// optional port and parameters.
	sipHostRe = regexp.MustCompile(`^(?:[A-Za-z0-9\-_.!~*'()%&=+$,;?/]+(?::[A-Za-z0-9\-_.!~*'()%&=+$,]*)?@)?(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:;[A-Za-z0-9\-_.!~*'()%&=+$\[\]/:]+)*$`)
	roles     = []string{"user", "admin"}
)

// ValidUUID reports whether s is a lower-case RFC 9562 UUID string.
func ValidUUID(s string) bool { return uuidRe.MatchString(s) }

func checkText(field, s string, min, max int) *Error {
	n := utf8.RuneCountInString(s)
	if !utf8.ValidString(s) {
		return invalid(field, "must be UTF-8 text")
	}
	if n < min || n > max {
		if min > 0 && n == 0 {
			return invalid(field, "must not be empty")
		}
		return invalid(field, "must be %d to %d characters", min, max)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalid(field, "must not contain control characters")
		}
	}
	return nil
}

func checkEmail(field, s string) *Error {
	if s == "" {
		return nil
	}
	if len(s) > 254 {
		return invalid(field, "is too long")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return invalid(field, "%q is not an email address", s)
	}
	return nil
}

func checkPhone(field, s string) *Error {
	if s != "" && !e164.MatchString(s) {
		return invalid(field, "%q is not a phone number in E.164 form (+ and up to 15 digits)", s)
	}
	return nil
}

// newUser validates a create body.
func newUser(in UserInput) (User, *Error) {
	var u User
	if !in.Username.Set || in.Username.Null {
		return u, invalid("username", "is required")
	}
	if !usernameRe.MatchString(in.Username.Value) {
		return u, invalid("username", "must be 1 to 128 letters, digits or . _ @ + -")
	}
	u.Username = in.Username.Value
	u.Email = in.Email.Value
	if err := checkEmail("email", u.Email); err != nil {
		return u, err
	}
	u.MobilePhone = in.MobilePhone.Value
	if err := checkPhone("mobile_phone", u.MobilePhone); err != nil {
		return u, err
	}
	u.Landline = in.Landline.Value
	if err := checkPhone("landline", u.Landline); err != nil {
		return u, err
	}
	u.Alias = in.Alias.Value
	if err := checkText("alias", u.Alias, 0, 128); err != nil {
		return u, err
	}
	u.Role = "user"
	if in.Role.Set && !in.Role.Null {
		if !slices.Contains(roles, in.Role.Value) {
			return u, invalid("role", "%q is not one of %s", in.Role.Value, strings.Join(roles, ", "))
		}
		u.Role = in.Role.Value
	}
	caps, err := checkCaps(in.Capabilities.Value)
	if err != nil {
		return u, err
	}
	u.Capabilities = caps
	u.Line = in.Line.Value
	if err := CheckLine("line", u.Line); err != nil {
		return u, err
	}
	if err := checkSIPPassword(in.SIPPassword.Value); err != nil {
		return u, err
	}
	if in.SIPPassword.Value != "" && !u.Can(CapSIP) {
		return u, invalid("sip_password", "needs the sip capability")
	}
	u.SIPAccount = in.SIPPassword.Value != ""
	return u, nil
}

// maxInvitees bounds a meeting's invitee list (the body is bounded too).
const maxInvitees = 1000

// apply validates in against m (the stored meeting, or the defaults of a
// new one) and returns the result; m is not modified.
func (b *Book) apply(m Meeting, in MeetingInput, now time.Time, creating bool) (Meeting, *Error) {
	m.OwnerUUIDs = slices.Clone(m.OwnerUUIDs)
	if creating && (!in.Name.Set || in.Name.Null) {
		return m, invalid("name", "is required")
	}
	if in.Name.Set {
		if in.Name.Null {
			return m, invalid("name", "must not be null")
		}
		if err := checkText("name", in.Name.Value, 1, 512); err != nil {
			return m, err
		}
		m.Name = in.Name.Value
	}
	if in.OwnerUUIDs.Set && !in.OwnerUUIDs.Null {
		owners := []string{}
		for _, o := range in.OwnerUUIDs.Value {
			if _, ok := b.users[o]; !ok {
				return m, invalid("owner_uuids", "%q is not a user", o)
			}
			if !slices.Contains(owners, o) {
				owners = append(owners, o)
			}
		}
		// The caller is added back by the caller of apply (Wazo).
		m.OwnerUUIDs = owners
	}
	setBool := func(field string, o Opt[bool], dst *bool) *Error {
		if !o.Set {
			return nil
		}
		if o.Null {
			return invalid(field, "must be true or false")
		}
		*dst = o.Value
		return nil
	}
	wasPersistent := m.Persistent
	if err := setBool("persistent", in.Persistent, &m.Persistent); err != nil {
		return m, err
	}
	if err := setBool("require_authorization", in.RequireAuthorization, &m.RequireAuthorization); err != nil {
		return m, err
	}
	if err := setBool("sip_dialin", in.SIPDialin, &m.SIPDialin); err != nil {
		return m, err
	}
	setTime := func(o Opt[time.Time], dst **time.Time) {
		if !o.Set {
			return
		}
		if o.Null {
			*dst = nil
			return
		}
		t := o.Value.UTC().Truncate(time.Second)
		*dst = &t
	}
	setTime(in.ValidSince, &m.ValidSince)
	setTime(in.ValidUntil, &m.ValidUntil)
	if m.ValidSince != nil && m.ValidUntil != nil && !m.ValidUntil.After(*m.ValidSince) {
		return m, invalid("valid_until", "must be after valid_since")
	}
	if in.Language.Set {
		if in.Language.Null || !slices.Contains(b.cfg.Languages, in.Language.Value) {
			return m, invalid("language", "%q is not one of %s", in.Language.Value, strings.Join(b.cfg.Languages, ", "))
		}
		m.Language = in.Language.Value
	}
	if in.Participants.Set {
		list := in.Participants.Value
		if len(list) > maxInvitees {
			return m, invalid("participants", "at most %d invitees", maxInvitees)
		}
		out := make([]Invitee, 0, len(list))
		for i, p := range list {
			f := func(name string) string { return "participants[" + strconv.Itoa(i) + "]." + name }
			if err := checkText(f("name"), p.Name, 0, 256); err != nil {
				return m, err
			}
			if err := checkEmail(f("email"), p.Email); err != nil {
				return m, err
			}
			if err := checkPhone(f("phone"), p.Phone); err != nil {
				return m, err
			}
			if p.Name == "" && p.Email == "" && p.Phone == "" {
				return m, invalid(f("name"), "an invitee needs a name, an email or a phone")
			}
			out = append(out, p)
		}
		m.Participants = out
	}
	if in.MaxParticipants.Set {
		v := in.MaxParticipants.Value
		if in.MaxParticipants.Null || v < 1 || v > b.cfg.MaxParticipants {
			return m, invalid("max_participants", "must be 1 to %d", b.cfg.MaxParticipants)
		}
		m.MaxParticipants = v
	}
	if in.Lobby.Set {
		if in.Lobby.Null {
			return m, invalid("lobby", "must be an object")
		}
		l, err := checkLobby("lobby.", in.Lobby.Value, now)
		if err != nil {
			return m, err
		}
		m.Lobby = l
	}
	switch {
	case m.Persistent:
		m.ExpiresAt = nil
	case creating || wasPersistent:
		t := m.CreationTime.Add(b.cfg.TTL)
		m.ExpiresAt = &t
	}
	return m, nil
}

// checkLobby validates a lobby setting (Nextcloud: 400 for a bad state or
// timer). A timer must be in the future; with state 0 it is dropped.
func checkLobby(prefix string, in LobbyInput, now time.Time) (Lobby, *Error) {
	if !in.State.Set || in.State.Null {
		return Lobby{}, invalid(prefix+"state", "is required (0 or 1)")
	}
	if in.State.Value != 0 && in.State.Value != 1 {
		return Lobby{}, invalid(prefix+"state", "must be 0 (no lobby) or 1 (lobby)")
	}
	l := Lobby{State: in.State.Value}
	if in.Timer.Set && !in.Timer.Null {
		t := in.Timer.Value
		if t <= now.Unix() || t > now.Add(10*365*24*time.Hour).Unix() {
			return Lobby{}, invalid(prefix+"timer", "must be a Unix time in the future")
		}
		if l.State == 1 {
			l.Timer = &t
		}
	}
	return l, nil
}
