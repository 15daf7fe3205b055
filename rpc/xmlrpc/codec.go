package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decode errors. The server maps each to a SEMS fault (see the package
// comment); tests and the fuzzer match them with errors.Is.
var (
	// ErrMalformed: the body is not well-formed XML, carries a DOCTYPE, or
	// is not a <methodCall> with a <methodName>. SEMS answers fault -1
	// ": unknown method name" (A.1).
	ErrMalformed = errors.New("malformed XML-RPC request")
	// ErrUnsupportedType: a parameter value SEMS's DI bridge refuses
	// (dateTime.iso8601, i8, nil, unknown tags) or one whose text does not
	// parse as its type. SEMS: fault 400 "unsupported parameter type".
	ErrUnsupportedType = errors.New("unsupported parameter type")
	// ErrTooDeep: arrays/structs nested deeper than the limit.
	ErrTooDeep = errors.New("parameters nested too deeply")
)

// errUnencodable: a method returned a Go value the wire cannot carry.
var errUnencodable = errors.New("value cannot be encoded as XML-RPC")

// maxEncodeDepth stops a cyclic result ([]any containing itself) before it
// exhausts the stack, which would be a fatal error, not a panic.
const maxEncodeDepth = 1000

// Decode parses an XML-RPC <methodCall> body into the method name and its
// positional arguments as plain Go values (see package rpc). maxDepth <= 0
// means DefaultMaxDepth. The method name is returned even when a parameter
// fails, so that callers can log it.
//
// Two decoders share the work. A hand-written scanner (fastDecode) reads
// the plain form every client sends: the XML declaration, the XML-RPC
// elements without attributes or namespace prefixes, text with the five
// entities and numeric character references. It gives up on anything
// else, and on any error, and decodeXML, the reference built on
// encoding/xml, decides those bodies: comments, CDATA, other encodings, a
// DOCTYPE, and every malformed or refused body get exactly its answer.
// FuzzDecode checks that whatever the scanner accepts, the reference
// decodes to the same values.
func Decode(body []byte, maxDepth int) (method string, args []any, err error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if method, args, ok := fastDecode(body, maxDepth); ok {
		return method, args, nil
	}
	return decodeXML(body, maxDepth)
}

// decodeXML is the reference decoder. It walks xml.Decoder tokens by hand
// instead of using Unmarshal or DecodeElement: the grammar is tiny, values
// are dynamically typed, and an explicit depth counter bounds recursion
// (Go's own decoder had stack-exhaustion bugs in exactly those entry
// points: CVE-2022-30633, CVE-2026-56859; reliability.md 1.9).
func decodeXML(body []byte, maxDepth int) (method string, args []any, err error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	d.CharsetReader = charsetReader
	p := &parser{d: d, maxDepth: maxDepth}
	return p.methodCall()
}

type parser struct {
	d        *xml.Decoder
	maxDepth int
	text     []byte // scratch for character data
}

// next returns the next token that matters: comments and processing
// instructions are dropped, a directive (DOCTYPE, whose entities could be
// used for expansion attacks) is refused outright, and syntax errors become
// ErrMalformed.
func (p *parser) next() (xml.Token, error) {
	for {
		tok, err := p.d.Token()
		if err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("xmlrpc: unexpected end of body: %w", ErrMalformed)
			}
			return nil, fmt.Errorf("xmlrpc: %v: %w", err, ErrMalformed)
		}
		switch t := tok.(type) {
		case xml.Comment, xml.ProcInst:
			continue
		case xml.Directive:
			return nil, fmt.Errorf("xmlrpc: directive <!%.20s> refused: %w", t, ErrMalformed)
		}
		return tok, nil
	}
}

// skipSpace returns the next token that is not whitespace-only text; other
// text is an error of class cls.
func (p *parser) skipSpace(cls error) (xml.Token, error) {
	for {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		if cd, ok := tok.(xml.CharData); ok {
			if !isSpace(cd) {
				return nil, fmt.Errorf("xmlrpc: unexpected text %.20q: %w", cd, cls)
			}
			continue
		}
		return tok, nil
	}
}

func (p *parser) methodCall() (method string, args []any, err error) {
	tok, err := p.skipSpace(ErrMalformed)
	if err != nil {
		return "", nil, err
	}
	if se, ok := tok.(xml.StartElement); !ok || se.Name.Local != "methodCall" {
		return "", nil, fmt.Errorf("xmlrpc: root is not <methodCall>: %w", ErrMalformed)
	}
	haveName := false
	for {
		tok, err := p.skipSpace(ErrMalformed)
		if err != nil {
			return method, nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement: // </methodCall>; trailing bytes are ignored, as XmlRpc++ does
			if !haveName {
				return "", nil, fmt.Errorf("xmlrpc: no <methodName>: %w", ErrMalformed)
			}
			return method, args, nil
		case xml.StartElement:
			switch {
			case t.Name.Local == "methodName" && !haveName:
				b, err := p.textOnly(ErrMalformed)
				if err != nil {
					return "", nil, err
				}
				method, haveName = string(b), true
			case t.Name.Local == "params" && haveName && args == nil:
				if args, err = p.params(); err != nil {
					return method, nil, err
				}
			default:
				return method, nil, fmt.Errorf("xmlrpc: unexpected <%s> in <methodCall>: %w", t.Name.Local, ErrMalformed)
			}
		}
	}
}

// params parses the children of <params>; args is never nil on success so
// that a second <params> is refused.
func (p *parser) params() ([]any, error) {
	args := []any{}
	for {
		tok, err := p.skipSpace(ErrMalformed)
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return args, nil
		case xml.StartElement:
			if t.Name.Local != "param" {
				return nil, fmt.Errorf("xmlrpc: unexpected <%s> in <params>: %w", t.Name.Local, ErrMalformed)
			}
			tok, err := p.skipSpace(ErrUnsupportedType)
			if err != nil {
				return nil, err
			}
			se, ok := tok.(xml.StartElement)
			if !ok || se.Name.Local != "value" {
				return nil, fmt.Errorf("xmlrpc: <param> %d without <value>: %w", len(args), ErrUnsupportedType)
			}
			v, err := p.value(0)
			if err != nil {
				return nil, fmt.Errorf("param %d: %w", len(args), err)
			}
			args = append(args, v)
			if err := p.expectEnd(ErrMalformed); err != nil {
				return nil, err
			}
		}
	}
}

// expectEnd consumes whitespace up to the current element's end tag.
func (p *parser) expectEnd(cls error) error {
	tok, err := p.skipSpace(cls)
	if err != nil {
		return err
	}
	if se, ok := tok.(xml.StartElement); ok {
		return fmt.Errorf("xmlrpc: unexpected <%s>: %w", se.Name.Local, cls)
	}
	return nil // EndElement: the decoder has checked that it matches
}

// textOnly reads the character data of the current element up to its end
// tag; any child element is an error of class cls. The result aliases the
// parser's scratch buffer.
func (p *parser) textOnly(cls error) ([]byte, error) {
	p.text = p.text[:0]
	for {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			p.text = append(p.text, t...)
		case xml.EndElement:
			return p.text, nil
		case xml.StartElement:
			return nil, fmt.Errorf("xmlrpc: unexpected <%s> in text: %w", t.Name.Local, cls)
		}
	}
}

// value parses the inside of a <value> whose start tag has been read;
// depth counts the arrays/structs around it.
func (p *parser) value(depth int) (any, error) {
	p.text = p.text[:0]
	var typ xml.StartElement
	for {
		tok, err := p.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			p.text = append(p.text, t...)
			continue
		case xml.EndElement:
			// No type tag: the text is a string, verbatim (XML-RPC spec;
			// A.2 "untyped <value>9999</value> params are accepted").
			return string(p.text), nil
		case xml.StartElement:
			typ = t
		}
		break
	}
	if !isSpace(p.text) {
		return nil, fmt.Errorf("xmlrpc: text beside <%s>: %w", typ.Name.Local, ErrUnsupportedType)
	}
	v, err := p.typed(typ.Name.Local, depth)
	if err != nil {
		return nil, err
	}
	if err := p.expectEnd(ErrUnsupportedType); err != nil { // </value>
		return nil, err
	}
	return v, nil
}

func (p *parser) typed(name string, depth int) (any, error) {
	switch name {
	case "i4", "int":
		b, err := p.textOnly(ErrUnsupportedType)
		if err != nil {
			return nil, err
		}
		// XML-RPC ints are 32-bit (XmlRpc++ stores a C int).
		n, perr := strconv.ParseInt(string(trimSpace(b)), 10, 32)
		if perr != nil {
			return nil, fmt.Errorf("xmlrpc: <%s>%.20q: %w", name, b, ErrUnsupportedType)
		}
		return int(n), nil
	case "boolean":
		b, err := p.textOnly(ErrUnsupportedType)
		if err != nil {
			return nil, err
		}
		switch string(trimSpace(b)) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, fmt.Errorf("xmlrpc: <boolean>%.20q: %w", b, ErrUnsupportedType)
	case "double":
		b, err := p.textOnly(ErrUnsupportedType)
		if err != nil {
			return nil, err
		}
		f, perr := strconv.ParseFloat(string(trimSpace(b)), 64)
		if perr != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("xmlrpc: <double>%.20q: %w", b, ErrUnsupportedType)
		}
		return f, nil
	case "string":
		b, err := p.textOnly(ErrUnsupportedType)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	case "base64":
		b, err := p.textOnly(ErrUnsupportedType)
		if err != nil {
			return nil, err
		}
		return decodeBase64(b), nil
	case "array":
		if depth >= p.maxDepth {
			return nil, fmt.Errorf("xmlrpc: deeper than %d: %w", p.maxDepth, ErrTooDeep)
		}
		return p.array(depth + 1)
	case "struct":
		if depth >= p.maxDepth {
			return nil, fmt.Errorf("xmlrpc: deeper than %d: %w", p.maxDepth, ErrTooDeep)
		}
		return p.strct(depth + 1)
	}
	// dateTime.iso8601, i8, nil, extension types: SEMS's DI bridge has no
	// AmArg for them (spec 1.1).
	return nil, fmt.Errorf("xmlrpc: <%s>: %w", name, ErrUnsupportedType)
}

// array parses <data><value>…</value>…</data></array>.
func (p *parser) array(depth int) (any, error) {
	tok, err := p.skipSpace(ErrUnsupportedType)
	if err != nil {
		return nil, err
	}
	if se, ok := tok.(xml.StartElement); !ok || se.Name.Local != "data" {
		return nil, fmt.Errorf("xmlrpc: <array> without <data>: %w", ErrUnsupportedType)
	}
	items := []any{}
	for {
		tok, err := p.skipSpace(ErrUnsupportedType)
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement: // </data>
			if err := p.expectEnd(ErrUnsupportedType); err != nil { // </array>
				return nil, err
			}
			return items, nil
		case xml.StartElement:
			if t.Name.Local != "value" {
				return nil, fmt.Errorf("xmlrpc: <%s> in <data>: %w", t.Name.Local, ErrUnsupportedType)
			}
			v, err := p.value(depth)
			if err != nil {
				return nil, err
			}
			items = append(items, v)
		}
	}
}

// strct parses <member><name>k</name><value>…</value></member>…</struct>.
// A repeated name keeps its first value: XmlRpc++ inserts into a std::map,
// which does not overwrite.
func (p *parser) strct(depth int) (any, error) {
	m := map[string]any{}
	for {
		tok, err := p.skipSpace(ErrUnsupportedType)
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement: // </struct>
			return m, nil
		case xml.StartElement:
			if t.Name.Local != "member" {
				return nil, fmt.Errorf("xmlrpc: <%s> in <struct>: %w", t.Name.Local, ErrUnsupportedType)
			}
			tok, err := p.skipSpace(ErrUnsupportedType)
			if err != nil {
				return nil, err
			}
			if se, ok := tok.(xml.StartElement); !ok || se.Name.Local != "name" {
				return nil, fmt.Errorf("xmlrpc: <member> without <name>: %w", ErrUnsupportedType)
			}
			b, err := p.textOnly(ErrUnsupportedType)
			if err != nil {
				return nil, err
			}
			key := string(b)
			tok, err = p.skipSpace(ErrUnsupportedType)
			if err != nil {
				return nil, err
			}
			if se, ok := tok.(xml.StartElement); !ok || se.Name.Local != "value" {
				return nil, fmt.Errorf("xmlrpc: <member> %q without <value>: %w", key, ErrUnsupportedType)
			}
			v, err := p.value(depth)
			if err != nil {
				return nil, err
			}
			if _, dup := m[key]; !dup {
				m[key] = v
			}
			if err := p.expectEnd(ErrUnsupportedType); err != nil { // </member>
				return nil, err
			}
		}
	}
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isSpace(b []byte) bool {
	for _, c := range b {
		if !isXMLSpace(c) {
			return false
		}
	}
	return true
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isXMLSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isXMLSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// decodeBase64 is as lenient as XmlRpc++'s decoder: characters outside the
// alphabet (line breaks, spaces) are skipped, decoding stops at '=', and a
// dangling final character is dropped.
func decodeBase64(b []byte) []byte {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		switch {
		case c == '=':
			goto done
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		}
	}
done:
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean) // cannot fail: alphabet and length checked
	return out[:n]
}

// charsetReader accepts the encodings XML-RPC clients declare besides UTF-8
// (PHP's xmlrpc extension defaults to iso-8859-1); encoding/xml itself only
// knows UTF-8.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "us-ascii", "ascii":
		b, err := io.ReadAll(in)
		if err != nil {
			return nil, fmt.Errorf("xmlrpc: read %s body: %w", label, err)
		}
		out := make([]byte, 0, len(b)+len(b)/4)
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("xmlrpc: unsupported charset %q", label)
}

// Response framing, byte for byte what XmlRpc++ 0.8's
// XmlRpcServerConnection::generateResponse/generateFaultResponse write (A.2).
const (
	respHead  = "<?xml version=\"1.0\"?>\r\n<methodResponse><params><param>\r\n\t"
	respTail  = "\r\n</param></params></methodResponse>\r\n"
	faultHead = "<?xml version=\"1.0\"?>\r\n<methodResponse><fault>\r\n\t" +
		"<value><struct><member><name>faultCode</name><value><i4>"
	faultMid  = "</i4></value></member><member><name>faultString</name><value>"
	faultTail = "</value></member></struct></value>\r\n</fault></methodResponse>\r\n"
)

// EncodeResponse returns the <methodResponse> body SEMS sends for v. A
// value the wire cannot carry (a type outside package rpc's list, or a
// cycle) gives SEMS's catch-all fault 500 "Exception occured." instead.
func EncodeResponse(v any) []byte {
	b, err := appendResponse(nil, v)
	if err != nil {
		return EncodeFault(faultInternal, msgInternal)
	}
	return b
}

// EncodeFault returns the fault <methodResponse> body SEMS sends.
func EncodeFault(code int, msg string) []byte {
	return appendFault(nil, code, msg)
}

func appendResponse(dst []byte, v any) ([]byte, error) {
	dst = append(dst, respHead...)
	dst, err := appendValue(dst, v, 0)
	if err != nil {
		return dst, err
	}
	return append(dst, respTail...), nil
}

func appendFault(dst []byte, code int, msg string) []byte {
	dst = append(dst, faultHead...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, faultMid...)
	dst = appendEscaped(dst, msg)
	return append(dst, faultTail...)
}

// appendValue writes one <value>. Formats follow XmlRpc++ 0.8 as SEMS's
// xmlrpc2di uses it: bare strings (no <string>), <i4>, <boolean>1|0,
// <double> with printf "%f", base64 with CRLF every 72 characters, struct
// members in byte order of their names (std::map order), nil as <i4>0</i4>
// (xmlrpc2di's conversion of an undefined AmArg).
func appendValue(dst []byte, v any, depth int) ([]byte, error) {
	if depth > maxEncodeDepth {
		return dst, fmt.Errorf("xmlrpc: result nested deeper than %d: %w", maxEncodeDepth, errUnencodable)
	}
	switch x := v.(type) {
	case string:
		dst = append(dst, "<value>"...)
		dst = appendEscaped(dst, x)
		return append(dst, "</value>"...), nil
	case int:
		return appendInt(dst, int64(x)), nil
	case nil:
		return append(dst, "<value><i4>0</i4></value>"...), nil
	case bool:
		if x {
			return append(dst, "<value><boolean>1</boolean></value>"...), nil
		}
		return append(dst, "<value><boolean>0</boolean></value>"...), nil
	case float64:
		return appendDouble(dst, x), nil
	case []any:
		dst = append(dst, "<value><array><data>"...)
		for _, it := range x {
			var err error
			if dst, err = appendValue(dst, it, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, "</data></array></value>"...), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, "<value><struct>"...)
		for _, k := range keys {
			dst = append(dst, "<member><name>"...)
			dst = appendEscaped(dst, k)
			dst = append(dst, "</name>"...)
			var err error
			if dst, err = appendValue(dst, x[k], depth+1); err != nil {
				return dst, err
			}
			dst = append(dst, "</member>"...)
		}
		return append(dst, "</struct></value>"...), nil
	case []byte:
		return appendBase64(dst, x), nil
	case []string:
		dst = append(dst, "<value><array><data>"...)
		for _, s := range x {
			dst = append(dst, "<value>"...)
			dst = appendEscaped(dst, s)
			dst = append(dst, "</value>"...)
		}
		return append(dst, "</data></array></value>"...), nil
	case int64:
		return appendInt(dst, x), nil
	case int32:
		return appendInt(dst, int64(x)), nil
	case int16:
		return appendInt(dst, int64(x)), nil
	case int8:
		return appendInt(dst, int64(x)), nil
	case uint32:
		return appendInt(dst, int64(x)), nil
	case uint16:
		return appendInt(dst, int64(x)), nil
	case float32:
		return appendDouble(dst, float64(x)), nil
	}
	return dst, fmt.Errorf("xmlrpc: result of type %T: %w", v, errUnencodable)
}

func appendInt(dst []byte, n int64) []byte {
	dst = append(dst, "<value><i4>"...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "</i4></value>"...)
}

// appendDouble prints like C's printf("%f"): six decimals, correctly
// rounded (glibc and strconv both round the exact binary value, ties to
// even), "nan"/"inf" for the non-finite values. Unlike XmlRpc++, whose
// 256-byte buffer truncates huge values into broken XML, every digit is
// written.
func appendDouble(dst []byte, f float64) []byte {
	dst = append(dst, "<value><double>"...)
	switch {
	case math.IsNaN(f):
		if math.Signbit(f) {
			dst = append(dst, '-')
		}
		dst = append(dst, "nan"...)
	case math.IsInf(f, 1):
		dst = append(dst, "inf"...)
	case math.IsInf(f, -1):
		dst = append(dst, "-inf"...)
	default:
		dst = strconv.AppendFloat(dst, f, 'f', 6, 64)
	}
	return append(dst, "</double></value>"...)
}

// appendBase64 writes standard base64 the way XmlRpc++'s base64.h does with
// its crlf line ender: "\r\n" after every 18th complete 3-byte group (72
// characters), never after a padded final group.
func appendBase64(dst []byte, b []byte) []byte {
	dst = append(dst, "<value><base64>"...)
	for len(b) >= 54 {
		dst = base64.StdEncoding.AppendEncode(dst, b[:54])
		dst = append(dst, "\r\n"...)
		b = b[54:]
	}
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, "</base64></value>"...)
}

// appendEscaped writes s with XmlRpc++'s xmlEncode: all five of < > & ' "
// become entities; every other byte is copied as is.
func appendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var ent string
		switch s[i] {
		case '<':
			ent = "&lt;"
		case '>':
			ent = "&gt;"
		case '&':
			ent = "&amp;"
		case '\'':
			ent = "&apos;"
		case '"':
			ent = "&quot;"
		default:
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, ent...)
		last = i + 1
	}
	return append(dst, s[last:]...)
}
