package rest

import (
	"html/template"
	"net/http"

	"webconf/rpc/web"
	"webconf/sipapp"
	"webconf/sipapp/meeting"
)

// The browser pages (package web): the join page of a meeting at its link
// (/m/{uuid}, or /u/{alias}/{uuid} with linkFormat = user), of a public
// room at /c/{identifier} (publicRoom's HTML answer), the console, and
// their assets. They are not API routes (no JSON, no OpenAPI entry).

func (a *API) registerPages(mux *http.ServeMux) {
	mux.HandleFunc("GET /m/{uuid}", a.meetingPage)
	// The alias is the first owner's when the link was made; the uuid
	// alone names the meeting, so a link made before an alias changed
	// still works.
	mux.HandleFunc("GET /u/{alias}/{uuid}", a.meetingPage)
	mux.HandleFunc("GET /console", web.Console)
	mux.Handle("GET /assets/", web.Assets())
}

func (a *API) meetingPage(w http.ResponseWriter, r *http.Request) {
	m, ok := a.book.Meeting(r.PathValue("uuid"))
	if !ok {
		web.Join(w, r, http.StatusNotFound, web.JoinInfo{NotFound: true})
		return
	}
	web.Join(w, r, http.StatusOK, a.meetingJoinInfo(m))
}

func (a *API) meetingJoinInfo(m meeting.Meeting) web.JoinInfo {
	uri := a.sipURI(m.Exten)
	return web.JoinInfo{
		Room: m.UUID, Meeting: m.UUID, Title: m.Name,
		// The URI is ours: the meeting's digits and our own address.
		SIPURI: template.URL(uri), SIPURIText: uri,
		DialinNumber: a.o.PSTNExtension, RoomNumber: dialinRoom(a.o.PSTNExtension, m.Exten),
	}
}

// dialinRoom is what a caller on the conference number types: the
// meeting's exten, when there is a conference number at all.
func dialinRoom(pstn, exten string) string {
	if pstn == "" {
		return ""
	}
	return exten
}

// publicJoinInfo is the join page of a public room.
func publicJoinInfo(v publicView) web.JoinInfo {
	p := web.JoinInfo{
		Room: sipapp.PublicRoomPrefix + v.Identifier, Title: "Room " + v.Identifier,
		// html/template refuses sip: links unless told: the URI is ours,
		// made of a checked identifier ([A-Za-z0-9_-]) and our own address.
		SIPURI: template.URL(v.SIPURI), SIPURIText: v.SIPURI,
		FirstCallerOpens: v.Room == nil,
	}
	if v.DialinNumber != nil {
		p.DialinNumber = *v.DialinNumber
	}
	if v.Room != nil {
		p.RoomNumber = *v.Room
	}
	return p
}
