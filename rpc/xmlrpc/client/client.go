// Package client is an XML-RPC client for SEMS-style servers (webconf and
// SEMS itself) built on github.com/kolo/xmlrpc.
//
// XmlRpc++ (SEMS's xmlrpc2di) sends strings as untyped text,
// <value>OK</value>, which the XML-RPC spec allows but kolo/xmlrpc cannot
// decode into an interface{}. The client's transport marks such values
// as <string> before kolo sees them; everything else is kolo's.
package client

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"

	"github.com/kolo/xmlrpc"
)

// untyped matches a value with only text inside. Escaped XML text holds no
// '<', so the match cannot run across elements.
var untyped = regexp.MustCompile(`<value>([^<]*)</value>`)

type transport struct{ next http.RoundTripper }

func (t transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	body = untyped.ReplaceAll(body, []byte("<value><string>$1</string></value>"))
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	res.Header.Del("Content-Length")
	return res, nil
}

// New returns a kolo client for url that understands untyped strings.
func New(url string) (*xmlrpc.Client, error) {
	return xmlrpc.NewClient(url, transport{next: http.DefaultTransport})
}

// faultText is how kolo's FaultError reads once net/rpc has turned it into
// a string (rpc.ServerError).
var faultText = regexp.MustCompile(`(?s)^Fault\((-?[0-9]+)\): (.*)$`)

// AsFault reports whether err is an XML-RPC fault, and its code and text.
func AsFault(err error) (code int, msg string, ok bool) {
	if err == nil {
		return 0, "", false
	}
	var f xmlrpc.FaultError
	if errors.As(err, &f) {
		return f.Code, f.String, true
	}
	m := faultText.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, "", false
	}
	code, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return 0, "", false
	}
	return code, m[2], true
}
