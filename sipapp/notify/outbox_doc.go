package notify

import "time"

// partyDoc, userDoc and meetingDoc are Party, User and Meeting as an
// outbox entry stores them (the meeting as it was when it was queued, so
// that a deleted meeting's cancellation can still be rendered).
type partyDoc struct {
	Name     string `json:"name,omitempty"`
	Email    string `json:"email,omitempty"`
	Phone    string `json:"phone,omitempty"`
	UserUUID string `json:"user_uuid,omitempty"`
}

type userDoc struct {
	UUID        string `json:"uuid"`
	Username    string `json:"username"`
	Email       string `json:"email,omitempty"`
	MobilePhone string `json:"mobile_phone,omitempty"`
	Alias       string `json:"alias,omitempty"`
}

type meetingDoc struct {
	UUID         string     `json:"uuid"`
	Name         string     `json:"name"`
	Language     string     `json:"language"`
	URL          string     `json:"url,omitempty"`
	ValidSince   *time.Time `json:"valid_since,omitempty"`
	ValidUntil   *time.Time `json:"valid_until,omitempty"`
	Organizer    userDoc    `json:"organizer"`
	Owners       []userDoc  `json:"owners,omitempty"`
	Participants []partyDoc `json:"participants,omitempty"`
	DDIExtension string     `json:"ddi_extension,omitempty"`
	DDIPin       string     `json:"ddi_pin,omitempty"`
	Sequence     int        `json:"sequence"`
}

func toPartyDoc(p Party) partyDoc   { return partyDoc(p) }
func fromPartyDoc(p partyDoc) Party { return Party(p) }

func toMeetingDoc(m Meeting) meetingDoc {
	d := meetingDoc{
		UUID: m.UUID, Name: m.Name, Language: m.Language, URL: m.URL,
		ValidSince: m.ValidSince, ValidUntil: m.ValidUntil, Organizer: userDoc(m.Organizer),
		DDIExtension: m.DDIExtension, DDIPin: m.DDIPin, Sequence: m.Sequence,
	}
	for _, u := range m.Owners {
		d.Owners = append(d.Owners, userDoc(u))
	}
	for _, p := range m.Participants {
		d.Participants = append(d.Participants, partyDoc(p))
	}
	return d
}

func fromMeetingDoc(d meetingDoc) Meeting {
	m := Meeting{
		UUID: d.UUID, Name: d.Name, Language: d.Language, URL: d.URL,
		ValidSince: d.ValidSince, ValidUntil: d.ValidUntil, Organizer: User(d.Organizer),
		DDIExtension: d.DDIExtension, DDIPin: d.DDIPin, Sequence: d.Sequence,
	}
	for _, u := range d.Owners {
		m.Owners = append(m.Owners, User(u))
	}
	for _, p := range d.Participants {
		m.Participants = append(m.Participants, Party(p))
	}
	return m
}
