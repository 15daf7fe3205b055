// Package web holds the browser side of webconf, embedded in the binary:
// the join page (/m/{uuid}, /u/{alias}/{uuid}, /c/{identifier}) and the
// console (/console). Plain HTML, CSS and JavaScript modules, no build
// step, nothing from another origin. The pages speak only the public
// APIs: REST, the event stream, JSON-RPC on /api/v1/jsonrpc and the
// signalling WebSocket /api/v1/rooms/{room}/webrtc; they hold no logic the
// API lacks. rpc/rest serves them (it knows the meetings).
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
	"time"
)

//go:embed static
var files embed.FS

var (
	static, _ = fs.Sub(files, "static")
	// version names this build's assets: their URLs carry it, so they
	// may be cached for ever and a new build is fetched at once.
	version = digest(static)
	// AssetPrefix is where the assets are served.
	AssetPrefix = "/assets/" + version + "/"
	pages       = template.Must(template.New("").ParseFS(static, "*.html"))
)

func digest(f fs.FS) string {
	h := sha256.New()
	_ = fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(f, p)
		h.Write([]byte(p + "\x00"))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// JoinInfo is what the join page shows before its script runs, and what
// the script needs.
type JoinInfo struct {
	// Room is the signalling WebSocket's {room}: a meeting's uuid or
	// c.<identifier>. Empty: nothing to join (NotFound).
	Room string
	// Meeting is the meeting's uuid ("" for a public room): the script
	// reads the guest view and runs the authorization request flow.
	Meeting string
	Title   string // the meeting's name, or "Room <identifier>"
	// SIPURI is how a SIP phone joins (html/template refuses sip: links
	// unless told: the caller makes it of checked parts).
	SIPURI       template.URL
	SIPURIText   string
	DialinNumber string // the conference number, "" if none
	RoomNumber   string // the number to type after DialinNumber, "" if none yet
	// FirstCallerOpens: a public room that nobody has opened yet.
	FirstCallerOpens bool
	NotFound         bool // the page of an unknown meeting (404)
}

// Join writes the join page with status.
func Join(w http.ResponseWriter, r *http.Request, status int, p JoinInfo) {
	render(w, r, status, "join.html", struct {
		JoinInfo
		Assets string
	}{p, AssetPrefix})
}

// Console writes the console.
func Console(w http.ResponseWriter, r *http.Request) {
	render(w, r, http.StatusOK, "console.html", struct{ Assets string }{AssetPrefix})
}

func render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "page error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	Secure(h, r)
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages are small and carry the assets' version: always revalidate.
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

// hostRE is a Host header that may go into the policy as it is.
var hostRE = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)

// Secure sets the headers every page and asset carries: a
// Content-Security-Policy that allows nothing but our own origin (scripts,
// styles, fetches, and WebSockets to the same host), no framing, no
// sniffing, no referrer, and only the microphone among the powerful
// features.
func Secure(h http.Header, r *http.Request) {
	connect := "'self'"
	if hostRE.MatchString(r.Host) {
		// CSP 3 lets 'self' match ws(s) of our host; older browsers need it said.
		connect += " ws://" + r.Host + " wss://" + r.Host
	}
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src "+connect+"; media-src 'self' blob:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Permissions-Policy", "microphone=(self), camera=(), geolocation=()")
}

var types = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// Assets serves GET /assets/{version}/{name}: the scripts and the style
// sheet, cached for a year (their URL changes with every build). Another
// version's URL is 404: a page of an older build reloads.
func Assets() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, AssetPrefix)
		ct := types[path.Ext(name)]
		if !ok || ct == "" || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		b, err := fs.ReadFile(static, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		Secure(h, r)
		h.Set("Content-Type", ct)
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
		h.Set("ETag", `"`+version+`"`)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
	})
}
