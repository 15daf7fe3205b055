package xmlrpc

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// fastDecode reads the plain form of a <methodCall> without encoding/xml:
// an optional XML declaration (version 1.0, UTF-8), the XML-RPC elements
// without attributes or namespace prefixes, whitespace between them, and
// text with the five predefined entities and numeric character
// references, CR LF and CR read as LF as XML 1.0 says. Anything else (a
// comment, CDATA, a processing instruction, another encoding, an
// attribute, an unknown element, an error of any kind, a nesting at the
// depth limit) makes it give up with ok false, and Decode then asks the
// reference decoder, which knows the full grammar and words every refusal.
// So this scanner only has to be right about what it accepts: exactly
// what decodeXML decodes from the same bytes (FuzzDecode checks it).
func fastDecode(body []byte, maxDepth int) (method string, args []any, ok bool) {
	s := scanPool.Get().(*scanner)
	s.b, s.i, s.maxDepth = body, 0, maxDepth
	method, args, ok = s.methodCall()
	s.b = nil
	if cap(s.text) <= maxPooledText {
		s.text = s.text[:0]
		scanPool.Put(s)
	}
	return method, args, ok
}

// scanner is fastDecode's state; text is scratch for character data,
// kept between calls through scanPool.
type scanner struct {
	b        []byte
	i        int
	maxDepth int
	text     []byte
}

var scanPool = sync.Pool{New: func() any { return &scanner{text: make([]byte, 0, 256)} }}

const maxPooledText = 64 << 10

func (s *scanner) methodCall() (method string, args []any, ok bool) {
	if !s.prolog() {
		return "", nil, false
	}
	if empty, ok := s.start("methodCall"); !ok || empty {
		return "", nil, false
	}
	s.space()
	empty, ok := s.start("methodName")
	if !ok {
		return "", nil, false
	}
	s.text = s.text[:0]
	if !empty && (!s.chars() || !s.end("methodName")) {
		return "", nil, false
	}
	method = string(s.text)
	s.space()
	if s.end("methodCall") {
		return method, nil, true
	}
	if empty, ok = s.start("params"); !ok {
		return "", nil, false
	}
	args = []any{}
	if !empty {
		for {
			s.space()
			if s.end("params") {
				break
			}
			if empty, ok := s.start("param"); !ok || empty {
				return "", nil, false
			}
			s.space()
			v, ok := s.valueElement(0)
			if !ok {
				return "", nil, false
			}
			args = append(args, v)
			s.space()
			if !s.end("param") {
				return "", nil, false
			}
		}
	}
	s.space()
	if !s.end("methodCall") {
		return "", nil, false
	}
	return method, args, true // bytes after </methodCall> are ignored
}

// prolog skips leading whitespace and an XML declaration that names
// version 1.0 (or none) and UTF-8 (or no encoding), read the way
// encoding/xml reads it.
func (s *scanner) prolog() bool {
	s.space()
	const decl = "<?xml"
	b := s.b[s.i:]
	if !bytes.HasPrefix(b, []byte(decl)) {
		return true
	}
	if len(b) == len(decl) || !isXMLSpace(b[len(decl)]) {
		return false
	}
	b = b[len(decl):]
	n := bytes.Index(b, []byte("?>"))
	if n < 0 {
		return false
	}
	content := b[:n]
	for _, c := range content {
		if (c < 0x20 || c > 0x7e) && !isXMLSpace(c) {
			return false
		}
	}
	switch string(bytes.TrimSpace(content)) { // no allocation: compared, not kept
	case `version="1.0"`, `version='1.0'`: // XmlRpc++'s and Python's
		s.i += len(decl) + n + 2
		s.space()
		return true
	}
	c := string(content)
	if v := procInstParam("version", c); v != "" && v != "1.0" {
		return false
	}
	if e := procInstParam("encoding", c); e != "" && !strings.EqualFold(e, "utf-8") {
		return false
	}
	s.i += len(decl) + n + 2
	s.space()
	return true
}

// procInstParam is encoding/xml's procInst: the value of param="..." or
// param='...' in a processing instruction, "" when there is none.
func procInstParam(param, s string) string {
	param += "="
	lenp := len(param)
	i := 0
	var sep byte
	for i < len(s) {
		sub := s[i:]
		k := strings.Index(sub, param)
		if k < 0 || lenp+k >= len(sub) {
			return ""
		}
		i += lenp + k + 1
		if c := sub[lenp+k]; c == '\'' || c == '"' {
			sep = c
			break
		}
	}
	if sep == 0 {
		return ""
	}
	j := strings.IndexByte(s[i:], sep)
	if j < 0 {
		return ""
	}
	return s[i : i+j]
}

func (s *scanner) space() {
	for s.i < len(s.b) && isXMLSpace(s.b[s.i]) {
		s.i++
	}
}

// start consumes the start tag <name> (or the empty element <name/>),
// with optional whitespace before its '>', if it is next.
func (s *scanner) start(name string) (empty, ok bool) {
	b := s.b[s.i:]
	if len(b) < len(name)+2 || b[0] != '<' || string(b[1:1+len(name)]) != name {
		return false, false
	}
	j := 1 + len(name)
	for j < len(b) && isXMLSpace(b[j]) {
		j++
	}
	switch {
	case j < len(b) && b[j] == '>':
		s.i += j + 1
		return false, true
	case j+1 < len(b) && b[j] == '/' && b[j+1] == '>':
		s.i += j + 2
		return true, true
	}
	return false, false
}

// end consumes the end tag </name> if it is next.
func (s *scanner) end(name string) bool {
	b := s.b[s.i:]
	if len(b) < len(name)+3 || b[0] != '<' || b[1] != '/' || string(b[2:2+len(name)]) != name {
		return false
	}
	j := 2 + len(name)
	for j < len(b) && isXMLSpace(b[j]) {
		j++
	}
	if j < len(b) && b[j] == '>' {
		s.i += j + 1
		return true
	}
	return false
}

// isStart reports whether the start tag of name (<name>, <name/> or
// <name followed by whitespace) is next, without consuming it.
func (s *scanner) isStart(name string) bool {
	b := s.b[s.i:]
	if len(b) < len(name)+2 || b[0] != '<' || string(b[1:1+len(name)]) != name {
		return false
	}
	c := b[1+len(name)]
	return c == '>' || c == '/' || isXMLSpace(c)
}

// valueElement reads <value>…</value> (or <value/>, an empty string).
func (s *scanner) valueElement(depth int) (any, bool) {
	empty, ok := s.start("value")
	if !ok {
		return nil, false
	}
	if empty {
		return "", true
	}
	return s.value(depth)
}

// value reads the inside of a <value> and its end tag.
func (s *scanner) value(depth int) (any, bool) {
	s.text = s.text[:0]
	if !s.chars() {
		return nil, false
	}
	if s.end("value") {
		return string(s.text), true // untyped: a string, verbatim
	}
	if !isSpace(s.text) {
		return nil, false
	}
	var v any
	var ok bool
	switch {
	case s.isStart("string"):
		if ok = s.textElement("string"); ok {
			v = string(s.text)
		}
	case s.isStart("i4"):
		v, ok = s.intElement("i4")
	case s.isStart("int"):
		v, ok = s.intElement("int")
	case s.isStart("boolean"):
		if ok = s.textElement("boolean"); ok {
			switch string(trimSpace(s.text)) {
			case "0":
				v = false
			case "1":
				v = true
			default:
				ok = false
			}
		}
	case s.isStart("double"):
		if ok = s.textElement("double"); ok {
			f, err := strconv.ParseFloat(string(trimSpace(s.text)), 64)
			ok = err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
			v = f
		}
	case s.isStart("base64"):
		if ok = s.textElement("base64"); ok {
			v = decodeBase64(s.text)
		}
	case s.isStart("array"):
		v, ok = s.array(depth)
	case s.isStart("struct"):
		v, ok = s.strct(depth)
	}
	if !ok {
		return nil, false
	}
	s.space()
	if !s.end("value") {
		return nil, false
	}
	return v, true
}

// textElement reads <name>text</name> into s.text.
func (s *scanner) textElement(name string) bool {
	empty, ok := s.start(name)
	if !ok {
		return false
	}
	s.text = s.text[:0]
	return empty || (s.chars() && s.end(name))
}

func (s *scanner) intElement(name string) (any, bool) {
	if !s.textElement(name) {
		return nil, false
	}
	b := trimSpace(s.text)
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, b = b[0] == '-', b[1:]
	}
	if len(b) == 0 || len(b) > 10 {
		return nil, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return nil, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if n < math.MinInt32 || n > math.MaxInt32 {
		return nil, false
	}
	return int(n), true
}

// array reads <array><data><value>…</value>…</data></array>; depth counts
// the arrays and structs around it.
func (s *scanner) array(depth int) (any, bool) {
	if depth >= s.maxDepth {
		return nil, false // the reference words ErrTooDeep
	}
	if empty, ok := s.start("array"); !ok || empty {
		return nil, false
	}
	s.space()
	empty, ok := s.start("data")
	if !ok {
		return nil, false
	}
	items := []any{}
	if !empty {
		for {
			s.space()
			if s.end("data") {
				break
			}
			v, ok := s.valueElement(depth + 1)
			if !ok {
				return nil, false
			}
			items = append(items, v)
		}
	}
	s.space()
	if !s.end("array") {
		return nil, false
	}
	return items, true
}

// strct reads <struct><member><name>k</name><value>…</value></member>…
// </struct>; a repeated name keeps its first value, as in decodeXML.
func (s *scanner) strct(depth int) (any, bool) {
	if depth >= s.maxDepth {
		return nil, false
	}
	empty, ok := s.start("struct")
	if !ok {
		return nil, false
	}
	m := map[string]any{}
	if empty {
		return m, true
	}
	for {
		s.space()
		if s.end("struct") {
			return m, true
		}
		if empty, ok := s.start("member"); !ok || empty {
			return nil, false
		}
		s.space()
		if !s.textElement("name") {
			return nil, false
		}
		key := string(s.text)
		s.space()
		v, ok := s.valueElement(depth + 1)
		if !ok {
			return nil, false
		}
		if _, dup := m[key]; !dup {
			m[key] = v
		}
		s.space()
		if !s.end("member") {
			return nil, false
		}
	}
}

// chars appends the character data at s.i, decoded, to s.text and stops
// before the next '<'. It fails where encoding/xml's text reader would
// refuse the bytes or where they need the reference decoder: the end of
// the body, "]]>", an entity other than the five and numeric character
// references, invalid UTF-8 or a character outside XML's range.
func (s *scanner) chars() bool {
	start := len(s.text)
	b := s.b
	var b0, b1 byte // the last two raw bytes, as encoding/xml tracks them
	for i := s.i; i < len(b); i++ {
		c := b[i]
		if b0 == ']' && b1 == ']' && c == '>' {
			return false
		}
		switch c {
		case '<':
			s.i = i
			return validText(s.text[start:])
		case '&':
			r, n := charRef(b[i+1:])
			if n == 0 {
				return false
			}
			s.text = utf8.AppendRune(s.text, r)
			i += n
			b0, b1 = 0, 0
			continue
		case '\r':
			s.text = append(s.text, '\n')
		case '\n':
			if b1 != '\r' {
				s.text = append(s.text, '\n')
			}
		default:
			s.text = append(s.text, c)
		}
		b0, b1 = b1, c
	}
	return false
}

// charRef decodes the reference after a '&' ("lt;", "#233;", "#xE9;")
// and returns its character and length, or n == 0 for anything else.
func charRef(b []byte) (r rune, n int) {
	switch {
	case bytes.HasPrefix(b, []byte("lt;")):
		return '<', 3
	case bytes.HasPrefix(b, []byte("gt;")):
		return '>', 3
	case bytes.HasPrefix(b, []byte("amp;")):
		return '&', 4
	case bytes.HasPrefix(b, []byte("apos;")):
		return '\'', 5
	case bytes.HasPrefix(b, []byte("quot;")):
		return '"', 5
	case len(b) == 0 || b[0] != '#':
		return 0, 0
	}
	i, base := 1, rune(10)
	if i < len(b) && b[i] == 'x' {
		i, base = 2, 16
	}
	digits := i
	for ; i < len(b) && i-digits < 8; i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			r = r*base + rune(c-'0')
		case base == 16 && c >= 'a' && c <= 'f':
			r = r*base + rune(c-'a'+10)
		case base == 16 && c >= 'A' && c <= 'F':
			r = r*base + rune(c-'A'+10)
		default:
			if i == digits || c != ';' || !isInCharacterRange(r) {
				return 0, 0
			}
			return r, i + 1
		}
	}
	return 0, 0
}

// validText is encoding/xml's check of character data: valid UTF-8 of
// characters in XML's range.
func validText(b []byte) bool {
	for len(b) > 0 {
		c := b[0]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			b = b[1:]
			continue
		}
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 || !isInCharacterRange(r) {
			return false
		}
		b = b[size:]
	}
	return true
}

// isInCharacterRange is XML 1.0's Char production (section 2.2), as
// encoding/xml checks it.
func isInCharacterRange(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}
