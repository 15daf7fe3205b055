package jsonrpc

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// The plain request every client sends, one object with "jsonrpc",
// "method", "params" (strings, integers, true, false, null) and "id" (an
// integer, a string or null), is read by fastRequest without
// encoding/json; its result is written by appendValue. Anything else,
// including every error, goes the general way (handleOne, encode), which
// words every refusal. FuzzHandle checks that both ways give the same
// bytes.

// fastRequest reads a plain request. ok false means: use handleOne.
func fastRequest(b []byte) (id []byte, method string, args []any, ok bool) {
	p := fastParser{b: b}
	if !p.byte('{') {
		return nil, "", nil, false
	}
	var seen [4]bool // jsonrpc, method, params, id
	for first := true; ; first = false {
		if p.byte('}') {
			if first || !seen[0] || !seen[1] || !seen[3] {
				return nil, "", nil, false
			}
			break
		}
		if !first && !p.byte(',') {
			return nil, "", nil, false
		}
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return nil, "", nil, false
		}
		k := -1
		switch string(key) {
		case "jsonrpc":
			k = 0
		case "method":
			k = 1
		case "params":
			k = 2
		case "id":
			k = 3
		}
		if k < 0 || seen[k] { // unknown or repeated keys: the general way
			return nil, "", nil, false
		}
		seen[k] = true
		switch k {
		case 0:
			v, ok := p.str()
			if !ok || string(v) != "2.0" {
				return nil, "", nil, false
			}
		case 1:
			v, ok := p.str()
			if !ok {
				return nil, "", nil, false
			}
			method = string(v)
		case 2:
			if args, ok = p.params(); !ok {
				return nil, "", nil, false
			}
		case 3:
			p.space()
			start := p.i
			if _, isStr := p.str(); !isStr {
				if _, isInt := p.integer(); !isInt && !p.lit("null") {
					return nil, "", nil, false
				}
			}
			id = b[start:p.i]
		}
	}
	p.space()
	if p.i != len(b) {
		return nil, "", nil, false
	}
	return id, method, args, true
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c after optional whitespace.
func (p *fastParser) byte(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// lit consumes a literal (true, false, null) at p.i.
func (p *fastParser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str reads a string without escapes, of valid UTF-8 and no control
// characters, after optional whitespace; the result aliases the input.
func (p *fastParser) str() ([]byte, bool) {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	ascii := true
	for i := start; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			s := p.b[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, false // encoding/json would replace the bytes
			}
			p.i = i + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

// integer reads -?(0|[1-9][0-9]*) that fits an int64, as decodeParams
// turns it into an int.
func (p *fastParser) integer() (int, bool) {
	i := p.i
	neg := i < len(p.b) && p.b[i] == '-'
	if neg {
		i++
	}
	start := i
	for i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' {
		i++
	}
	digits := p.b[start:i]
	if len(digits) == 0 || len(digits) > 18 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	if i < len(p.b) {
		switch p.b[i] {
		case '.', 'e', 'E': // a float: the general way
			return 0, false
		}
	}
	n := 0
	for _, c := range digits {
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	p.i = i
	return n, true
}

// params reads an array of strings, integers, true, false and null.
func (p *fastParser) params() ([]any, bool) {
	if !p.byte('[') {
		return nil, false
	}
	args := []any{}
	if p.byte(']') {
		return args, true
	}
	for {
		p.space()
		if p.i >= len(p.b) {
			return nil, false
		}
		switch c := p.b[p.i]; {
		case c == '"':
			s, ok := p.str()
			if !ok {
				return nil, false
			}
			args = append(args, string(s))
		case c == '-' || c >= '0' && c <= '9':
			n, ok := p.integer()
			if !ok {
				return nil, false
			}
			args = append(args, n)
		case p.lit("true"):
			args = append(args, true)
		case p.lit("false"):
			args = append(args, false)
		case p.lit("null"):
			args = append(args, nil)
		default:
			return nil, false
		}
		if p.byte(']') {
			return args, true
		}
		if !p.byte(',') {
			return nil, false
		}
	}
}

// appendValue writes v as encoding/json writes it with HTML escaping off
// (encode's settings). ok false means a value it does not know (a type
// outside package rpc's usual list, NaN or an infinity): encode then
// decides.
func appendValue(dst []byte, v any, depth int) ([]byte, bool) {
	if depth > maxEncodeDepth {
		return dst, false
	}
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case string:
		return appendString(dst, x), true
	case int:
		return strconv.AppendInt(dst, int64(x), 10), true
	case int64:
		return strconv.AppendInt(dst, x, 10), true
	case bool:
		return strconv.AppendBool(dst, x), true
	case float64:
		return appendFloat(dst, x)
	case []any:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendValue(dst, e, depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case []string:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, e)
		}
		return append(dst, ']'), true
	case map[string]any:
		if x == nil {
			return append(dst, "null"...), true
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, k)
			dst = append(dst, ':')
			var ok bool
			if dst, ok = appendValue(dst, x[k], depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	case []byte:
		if x == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, '"'), true
	}
	return dst, false
}

// maxEncodeDepth stops a cyclic result before it exhausts the stack;
// encoding/json then reports the cycle.
const maxEncodeDepth = 1000

// appendFloat is encoding/json's float64 format: 'f' from 1e-6 up to
// 1e21, 'e' beyond with a two-digit exponent cut to one ("1e-7").
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does without HTML escaping:
// '"' and '\\' escaped, control characters as \b \f \n \r \t or \u00XX,
// invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and \u2029.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
