package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"webconf/rpc/events"
	"webconf/sipapp"
	"webconf/sipapp/calls"
	"webconf/sipapp/meeting"
	"webconf/sipapp/room"
)

// apiError is an error with its wire form.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

var (
	errNoRoute         = &apiError{http.StatusNotFound, "not-found", "no such resource"}
	errMethod          = &apiError{http.StatusMethodNotAllowed, "method-not-allowed", "method not allowed on this resource"}
	errUnauthenticated = &apiError{http.StatusUnauthorized, "unauthorized", "missing or wrong credentials"}
	errBanned          = &apiError{http.StatusTooManyRequests, "too-many-failures", "too many failed credentials from this address; try again later"}
	errGuestBudget     = &apiError{http.StatusTooManyRequests, "too-many-requests", "too many guest requests from this address; try again later"}
	errTooLarge        = &apiError{http.StatusRequestEntityTooLarge, "payload-too-large", "the body is larger than 1 MiB"}
	errMediaType       = &apiError{http.StatusUnsupportedMediaType, "unsupported-media-type", "the body must be application/json"}
	errAdhocNotAllowed = &apiError{http.StatusForbidden, "adhoc-not-allowed", "this user has neither a line nor a SIP account: no calls to merge"}
	errTickets         = &apiError{http.StatusTooManyRequests, "too-many-tickets", "too many unused event tickets; try again later"}
	errTooManyBrowsers = &apiError{http.StatusTooManyRequests, "too-many-browsers", "too many browsers are connected (from this address, or in all); try again later"}
	errJSONRPCOff      = &apiError{http.StatusNotFound, "not-found", "JSON-RPC is off on this server ([xmlrpc] jsonrpc = no)"}
	errNoOutbox        = &apiError{http.StatusPreconditionFailed, "invitations-off", "this server sends no invitations ([meetings] inviteMechanisms[] is empty)"}
)

// statusOf maps package meeting's error kinds to HTTP: the one place.
var statusOf = map[meeting.Kind]int{
	meeting.Invalid:      http.StatusBadRequest,
	meeting.NotFound:     http.StatusNotFound,
	meeting.Forbidden:    http.StatusForbidden,
	meeting.Unauthorized: http.StatusUnauthorized,
	meeting.Conflict:     http.StatusConflict,
	meeting.Quota:        http.StatusBadRequest, // Wazo answers the authorization quota with 400
	meeting.Precondition: http.StatusPreconditionFailed,
	meeting.Unavailable:  http.StatusServiceUnavailable,
	meeting.Limited:      http.StatusTooManyRequests,
}

// callErrors maps the calls API's errors (package sipapp) to HTTP, in
// order: the first that matches wins.
var callErrors = []struct {
	err    error
	status int
	code   string
}{
	{sipapp.ErrNoSuchCall, http.StatusNotFound, "no-such-call"},
	{sipapp.ErrNoLine, http.StatusBadRequest, "user-has-no-line"},
	{sipapp.ErrNoProvider, http.StatusBadRequest, "no-provider"},
	{sipapp.ErrBadDestination, http.StatusBadRequest, "invalid-destination"},
	{sipapp.ErrDestinationRefused, http.StatusBadRequest, "destination-not-allowed"},
	{sipapp.ErrDialoutNotAllowed, http.StatusServiceUnavailable, "too-many-calls"},
	{sipapp.ErrDialoutFailed, http.StatusServiceUnavailable, "call-failed"},
	{calls.ErrHostCallNotFound, http.StatusBadRequest, "host-call-not-found"},
	{calls.ErrParticipantCallNotFound, http.StatusBadRequest, "participant-call-not-found"},
	{calls.ErrHostAlreadyInConference, http.StatusConflict, "host-already-in-conference"},
	{calls.ErrParticipantAlreadyInConference, http.StatusConflict, "participant-already-in-conference"},
	{calls.ErrNoSuchAdhoc, http.StatusNotFound, "adhoc-conference-not-found"},
}

// wire turns any error into its status, code and message. Unknown errors
// are 500 with a generic message (the detail goes to the log only).
func wire(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var qe *events.QueryError
	switch {
	case errors.As(err, &qe):
		return &apiError{http.StatusBadRequest, "invalid-query", qe.Error()}
	case errors.Is(err, events.ErrTooOld):
		// 410: what the client missed is gone; it must fetch the state
		// again and subscribe without since.
		return &apiError{http.StatusGone, "since-too-old", err.Error()}
	case errors.Is(err, events.ErrClosed):
		return &apiError{http.StatusServiceUnavailable, "stopping", "the server is stopping"}
	}
	if me, ok := meeting.AsError(err); ok {
		if st, ok := statusOf[me.Kind]; ok {
			return &apiError{st, me.Code, me.Message}
		}
	}
	for _, ce := range callErrors {
		if errors.Is(err, ce.err) {
			return &apiError{ce.status, ce.code, err.Error()}
		}
	}
	// The room registry's errors (room controls).
	switch {
	case errors.Is(err, room.ErrStore):
		return &apiError{http.StatusServiceUnavailable, "store-unavailable", "the change could not be stored"}
	case errors.Is(err, room.ErrNoCall):
		return errNoParticipant
	case errors.Is(err, room.ErrNoRoom):
		return &apiError{http.StatusNotFound, "not-found", "the meeting's room is gone"}
	}
	return &apiError{http.StatusInternalServerError, "internal", "internal error"}
}

// retryAfter is a Retry-After value in whole seconds (at least 1).
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

func writeError(w http.ResponseWriter, err error) {
	e := wire(err)
	writeJSON(w, e.Status, map[string]any{"error": map[string]string{"code": e.Code, "message": e.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// maxBody bounds a request body.
const maxBody = 1 << 20

// decode reads a JSON object body into v: application/json, at most 1 MiB,
// no unknown fields, nothing after the object. The message names the
// field at fault where JSON decoding knows it.
func decode(r *http.Request, v any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return errMediaType
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return &apiError{http.StatusBadRequest, "invalid-body", "cannot read the body"}
	}
	if len(body) > maxBody {
		return errTooLarge
	}
	// Only an object: a body of null (or a list, a string) would decode
	// into nothing and look like "no fields given".
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return &apiError{http.StatusBadRequest, "invalid-json", "the body must be a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return &apiError{http.StatusBadRequest, "invalid-json", "unexpected data after the JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &apiError{http.StatusBadRequest, "invalid-json", "unexpected data after the JSON object"}
	}
	return nil
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return &apiError{http.StatusBadRequest, "invalid-json", "the body must be a JSON object"}
		}
		want := jsonType(te.Type.Kind().String())
		if te.Type == reflect.TypeFor[time.Time]() {
			want = "an RFC 3339 date and time such as 2026-12-01T09:00:00Z"
		}
		return &apiError{http.StatusBadRequest, "invalid-field", fmt.Sprintf("%s: must be %s", field, want)}
	case errors.As(err, &se):
		return &apiError{http.StatusBadRequest, "invalid-json", fmt.Sprintf("malformed JSON at byte %d", se.Offset)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{http.StatusBadRequest, "invalid-json", "the body is empty or cut short"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apiError{http.StatusBadRequest, "invalid-field", f + ": unknown field"}
	}
	// Errors from our own UnmarshalJSON (times): name what we can.
	return &apiError{http.StatusBadRequest, "invalid-json", "invalid value: " + err.Error()}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "int32":
		return "a whole number"
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return "of type " + kind
}
