package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// childResult is what a client process prints when its time is up.
type childResult struct {
	OK         int64  `json:"ok"`
	Errors     int64  `json:"errors"`
	FirstError string `json:"first_error,omitempty"`
}

// child is one client process: it connects, makes one good request, says
// "ready", waits for "go" on stdin, then loops for -duration and prints
// its childResult as one JSON line.
func child(args []string, stdin io.Reader, stdout io.Writer) int {
	o, err := parseFlags(args, io.Discard)
	if err != nil {
		fmt.Fprintf(stdout, "bad arguments: %v\n", err)
		return 2
	}
	tg, err := parseURL(o.url)
	if err != nil {
		fmt.Fprintf(stdout, "%v\n", err)
		return 2
	}
	c := newClient(tg, o.room, o.pin, o.jsonrpc)
	if err := c.connect(); err != nil {
		fmt.Fprintf(stdout, "connect %s: %v\n", tg.addr, err)
		return 1
	}
	defer c.close()
	if err := c.roundTrip(); err != nil {
		fmt.Fprintf(stdout, "first request: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, "ready\n")
	if line, err := bufio.NewReader(stdin).ReadString('\n'); err != nil || line != "go\n" {
		return 1
	}
	var r childResult
	end := time.Now().Add(o.duration)
	for time.Now().Before(end) {
		err := c.roundTrip()
		if err == nil {
			r.OK++
			continue
		}
		r.Errors++
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
		var ioErr *ioError
		if errors.As(err, &ioErr) {
			// The connection is gone or out of step: a new one.
			c.close()
			if err := c.connect(); err != nil {
				r.Errors++
				break
			}
		}
	}
	b, _ := json.Marshal(r)
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// ioError is a failure of the connection itself (not of an answer).
type ioError struct{ err error }

func (e *ioError) Error() string { return e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// loadConn is one keep-alive connection with its pre-built request.
type loadConn struct {
	addr string
	req  []byte
	ok   []byte // what a good answer's body holds
	json bool
	conn rawConn
	buf  []byte
}

// rawConn is a connected stream socket.
type rawConn interface {
	io.ReadWriter
	Close() error
}

func newClient(tg target, room, pin string, jsonrpc bool) *loadConn {
	c := &loadConn{addr: tg.addr, json: jsonrpc, buf: make([]byte, 64<<10)}
	var body []byte
	var path, ctype string
	if jsonrpc {
		params, _ := json.Marshal([]string{room, pin})
		body = []byte(`{"jsonrpc":"2.0","method":"roomInfo","params":` + string(params) + `,"id":1}`)
		path, ctype = "/jsonrpc", "application/json"
		c.ok = []byte(`"result":[0,`)
	} else {
		// As Python's xmlrpc.client writes it (the client of the issue's
		// first measurement).
		body = []byte("<?xml version='1.0'?>\n<methodCall>\n<methodName>roomInfo</methodName>\n<params>\n" +
			"<param>\n<value><string>" + xmlEscape(room) + "</string></value>\n</param>\n" +
			"<param>\n<value><string>" + xmlEscape(pin) + "</string></value>\n</param>\n" +
			"</params>\n</methodCall>\n")
		path, ctype = tg.path, "text/xml"
		c.ok = []byte("<array><data><value><i4>0</i4></value>")
	}
	c.req = []byte("POST " + path + " HTTP/1.1\r\nHost: " + tg.host + "\r\nUser-Agent: rpcload\r\n" +
		"Content-Type: " + ctype + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
	return c
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (c *loadConn) connect() error {
	conn, err := dial(c.addr)
	if err != nil {
		return err
	}
	c.conn = conn
	return nil
}

func (c *loadConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

var (
	crlf2    = []byte("\r\n\r\n")
	clHeader = []byte("\ncontent-length:")
	fault    = []byte("<fault>")
)

// roundTrip sends the request (one write) and reads one answer (as many
// reads as the server's writes take, usually one).
func (c *loadConn) roundTrip() error {
	if c.conn == nil {
		return &ioError{errors.New("not connected")}
	}
	for b := c.req; len(b) > 0; {
		n, err := c.conn.Write(b)
		if err != nil {
			return &ioError{fmt.Errorf("write: %w", err)}
		}
		b = b[n:]
	}
	n, hdrEnd, total := 0, -1, 0
	for hdrEnd < 0 || n < total {
		if n == len(c.buf) {
			c.buf = append(c.buf, make([]byte, len(c.buf))...)
		}
		m, err := c.conn.Read(c.buf[n:])
		if m <= 0 {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &ioError{fmt.Errorf("read: %w", err)}
		}
		n += m
		if hdrEnd < 0 {
			if hdrEnd = bytes.Index(c.buf[:n], crlf2); hdrEnd < 0 {
				continue
			}
			cl, err := contentLength(c.buf[:hdrEnd])
			if err != nil {
				return &ioError{err}
			}
			total = hdrEnd + 4 + cl
		}
	}
	if n > total {
		return &ioError{fmt.Errorf("%d bytes after the answer", n-total)}
	}
	head, body := c.buf[:hdrEnd], c.buf[hdrEnd+4:total]
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) && !bytes.HasPrefix(head, []byte("HTTP/1.0 200 ")) {
		line, _, _ := bytes.Cut(head, []byte("\r\n"))
		return fmt.Errorf("status %q", line)
	}
	if i := bytes.Index(body, []byte("<methodResponse>")); i >= 0 {
		body = body[i:] // what is left is worth showing
	}
	if !c.json && bytes.Contains(body, fault) {
		return fmt.Errorf("fault: %.300q", body)
	}
	if !bytes.Contains(body, c.ok) {
		return fmt.Errorf("not a good roomInfo answer: %.300q", body)
	}
	return nil
}

// contentLength finds the Content-Length header (any case) in a head.
func contentLength(head []byte) (int, error) {
	for i := 0; i+len(clHeader) <= len(head); i++ {
		if head[i] != '\n' || !bytes.EqualFold(head[i:i+len(clHeader)], clHeader) {
			continue
		}
		v := head[i+len(clHeader):]
		if j := bytes.IndexByte(v, '\r'); j >= 0 {
			v = v[:j]
		}
		n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad Content-Length %q", v)
		}
		return n, nil
	}
	return 0, errors.New("answer without Content-Length")
}
