package testutil

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
)

// Mail is an email taken apart with net/mail and mime/multipart, as a
// mail client would see it.
type Mail struct {
	Header  mail.Header
	Subject string // RFC 2047 decoded
	// Shape is the MIME tree, e.g.
	// multipart/mixed[multipart/alternative[text/plain,text/html],application/ics].
	Shape          string
	Text, HTML     string
	Calendar       []byte            // the text/calendar part
	CalendarParams map[string]string // its Content-Type parameters (method, charset)
	ICS            []byte            // the attachment
	ICSName        string            // its filename
}

// ParseMail takes data (a whole message as the SMTP server received it)
// apart; it fails the test when the message or one of its parts is
// malformed. Quoted-printable parts are decoded by mime/multipart, base64
// ones here.
func ParseMail(t testing.TB, data []byte) Mail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("net/mail: %v\n%s", err, data)
	}
	r := Mail{Header: msg.Header}
	if r.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	var walk func(ct string, body io.Reader, cte, disp string) string
	walk = func(ct string, body io.Reader, cte, disp string) string {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("Content-Type %q: %v", ct, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			var kids []string
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: %v", mt, err)
				}
				kids = append(kids, walk(p.Header.Get("Content-Type"), p, p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition")))
			}
			return mt + "[" + strings.Join(kids, ",") + "]"
		}
		if strings.EqualFold(cte, "base64") {
			body = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("%s: %v", mt, err)
		}
		switch {
		case strings.HasPrefix(disp, "attachment"):
			_, dp, _ := mime.ParseMediaType(disp)
			r.ICS, r.ICSName = b, dp["filename"]
		case mt == "text/plain":
			r.Text = string(b)
		case mt == "text/html":
			r.HTML = string(b)
		case mt == "text/calendar":
			r.Calendar, r.CalendarParams = b, params
		}
		return mt
	}
	r.Shape = walk(msg.Header.Get("Content-Type"), msg.Body, msg.Header.Get("Content-Transfer-Encoding"), "")
	return r
}
