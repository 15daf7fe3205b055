package xmlrpc

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func call(params ...string) string {
	var b strings.Builder
	b.WriteString("<?xml version=\"1.0\"?>\n<methodCall><methodName>m</methodName><params>")
	for _, p := range params {
		b.WriteString("<param>" + p + "</param>")
	}
	b.WriteString("</params></methodCall>")
	return b.String()
}

func TestDecodeValues(t *testing.T) {
	cases := []struct {
		name  string
		param string
		want  any
	}{
		{"i4 is an int", "<value><i4>-42</i4></value>", -42},
		{"int is an int and may be padded with spaces", "<value><int> +7 </int></value>", 7},
		{"boolean 1 is true", "<value><boolean>1</boolean></value>", true},
		{"boolean 0 is false", "<value><boolean>0</boolean></value>", false},
		{"double is a float64", "<value><double>-1.5e3</double></value>", -1500.0},
		{"string keeps its spaces", "<value><string> a b </string></value>", " a b "},
		{"untyped text is a string", "<value>9999</value>", "9999"},
		{"an empty value is an empty string", "<value></value>", ""},
		{"a self-closed value is an empty string", "<value/>", ""},
		{"an empty string element is an empty string", "<value><string/></value>", ""},
		{"entities and CDATA are decoded", "<value>&lt;&amp;&gt;&apos;&quot;&#233;<![CDATA[<x>]]></value>", "<&>'\"é<x>"},
		{"base64 is bytes, line breaks skipped", "<value><base64>aGVs\r\nbG8=</base64></value>", []byte("hello")},
		{"base64 without padding is accepted", "<value><base64>aGVsbG8</base64></value>", []byte("hello")},
		{"an empty base64 is empty bytes", "<value><base64></base64></value>", []byte{}},
		{"an array holds mixed values", "<value><array><data><value><i4>1</i4></value><value>x</value></data></array></value>", []any{1, "x"}},
		{"an empty array is an empty slice", "<value><array><data/></array></value>", []any{}},
		{"a struct is a map and whitespace between tags is ignored", "<value>\n <struct>\n <member>\n <name>b</name>\n <value><i4>2</i4></value>\n </member><member><name>a</name><value>s</value></member></struct>\n</value>", map[string]any{"a": "s", "b": 2}},
		{"a repeated struct member keeps its first value", "<value><struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value>", map[string]any{"a": "1"}},
		{"CR LF and CR in text become LF, as XML 1.0 requires", "<value>a\r\nb\rc</value>", "a\nb\nc"},
		{"comments are ignored", "<!-- c --><value><!-- c --><i4>3<!-- c --></i4></value>", 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method, args, err := Decode([]byte(call(tc.param)), 0)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if method != "m" || len(args) != 1 || !reflect.DeepEqual(args[0], tc.want) {
				t.Fatalf("got %q %#v, want %#v", method, args, tc.want)
			}
		})
	}

	t.Run("a call without params has no arguments", func(t *testing.T) {
		method, args, err := Decode([]byte("<methodCall><methodName>calls</methodName></methodCall>"), 0)
		if err != nil || method != "calls" || len(args) != 0 {
			t.Fatalf("got %q %v %v", method, args, err)
		}
	})
	t.Run("several params keep their order", func(t *testing.T) {
		_, args, err := Decode([]byte(call("<value>a</value>", "<value><i4>2</i4></value>")), 0)
		if err != nil || !reflect.DeepEqual(args, []any{"a", 2}) {
			t.Fatalf("got %v %v", args, err)
		}
	})
	t.Run("an ISO-8859-1 body is converted to UTF-8", func(t *testing.T) {
		body := "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><methodCall><methodName>m</methodName><params><param><value>caf\xe9</value></param></params></methodCall>"
		_, args, err := Decode([]byte(body), 0)
		if err != nil || !reflect.DeepEqual(args, []any{"café"}) {
			t.Fatalf("got %v %v", args, err)
		}
	})
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct {
		name string
		body string
		want error
	}{
		{"i8 is unsupported", call("<value><i8>1</i8></value>"), ErrUnsupportedType},
		{"nil is unsupported", call("<value><nil/></value>"), ErrUnsupportedType},
		{"dateTime.iso8601 is unsupported", call("<value><dateTime.iso8601>19980717T14:08:55</dateTime.iso8601></value>"), ErrUnsupportedType},
		{"an unknown type is unsupported", call("<value><ex:foo xmlns:ex='x'/></value>"), ErrUnsupportedType},
		{"an int that is not a number is unsupported", call("<value><i4>12abc</i4></value>"), ErrUnsupportedType},
		{"an int beyond 32 bits is unsupported", call("<value><i4>2147483648</i4></value>"), ErrUnsupportedType},
		{"an empty int is unsupported", call("<value><i4></i4></value>"), ErrUnsupportedType},
		{"boolean 2 is unsupported", call("<value><boolean>2</boolean></value>"), ErrUnsupportedType},
		{"a NaN double is unsupported", call("<value><double>nan</double></value>"), ErrUnsupportedType},
		{"text beside a type tag is unsupported", call("<value>x<i4>1</i4></value>"), ErrUnsupportedType},
		{"an array without data is unsupported", call("<value><array><value>1</value></array></value>"), ErrUnsupportedType},
		{"a struct member without a value is unsupported", call("<value><struct><member><name>a</name></member></struct></value>"), ErrUnsupportedType},
		{"a param without a value is unsupported", call(""), ErrUnsupportedType},
		{"unclosed tags are malformed", "<methodCall><methodName>m</methodName><params>", ErrMalformed},
		{"mismatched tags are malformed", "<methodCall><methodName>m</methodCall>", ErrMalformed},
		{"an empty body is malformed", "", ErrMalformed},
		{"another root is malformed", "<methodResponse/>", ErrMalformed},
		{"a missing methodName is malformed", "<methodCall><params/></methodCall>", ErrMalformed},
		{"params before methodName are malformed", "<methodCall><params/><methodName>m</methodName></methodCall>", ErrMalformed},
		{"a DOCTYPE is refused", "<!DOCTYPE methodCall><methodCall><methodName>m</methodName></methodCall>", ErrMalformed},
		{"an undeclared entity is malformed", "<methodCall><methodName>&xxe;</methodName></methodCall>", ErrMalformed},
		{"an unknown charset is malformed", "<?xml version=\"1.0\" encoding=\"ebcdic\"?><methodCall/>", ErrMalformed},
		{"invalid UTF-8 is malformed", "<methodCall><methodName>\xff</methodName></methodCall>", ErrMalformed},
		{"a struct 101 deep is too deep", call(strings.Repeat("<value><struct><member><name>a</name>", 101) + "<value/>" + strings.Repeat("</member></struct></value>", 101)), ErrTooDeep},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode([]byte(tc.body), 0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("the method name survives a bad parameter", func(t *testing.T) {
		method, _, err := Decode([]byte(call("<value><nil/></value>")), 0)
		if method != "m" || err == nil {
			t.Fatalf("got %q %v", method, err)
		}
	})
	t.Run("maxDepth is honoured", func(t *testing.T) {
		two := call("<value><array><data><value><array><data/></array></value></data></array></value>")
		if _, _, err := Decode([]byte(two), 2); err != nil {
			t.Fatalf("depth 2 with limit 2: %v", err)
		}
		if _, _, err := Decode([]byte(two), 1); !errors.Is(err, ErrTooDeep) {
			t.Fatalf("depth 2 with limit 1: %v", err)
		}
	})
}

func TestEncodeValues(t *testing.T) {
	const head, tail = respHead, respTail
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"a string is bare text", "OK", "<value>OK</value>"},
		{"an empty string is an empty value", "", "<value></value>"},
		{"all five XML specials are escaped as xmlEncode does", `<a & 'b' "c">`, "<value>&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;</value>"},
		{"an int is i4", -3, "<value><i4>-3</i4></value>"},
		{"nil is i4 zero", nil, "<value><i4>0</i4></value>"},
		{"true is boolean 1", true, "<value><boolean>1</boolean></value>"},
		{"false is boolean 0", false, "<value><boolean>0</boolean></value>"},
		{"a double has six decimals", 1.5, "<value><double>1.500000</double></value>"},
		{"a double rounds half to even like glibc", 0.0078125, "<value><double>0.007812</double></value>"},
		{"a double rounds the binary value", 2.675, "<value><double>2.675000</double></value>"},
		{"negative zero keeps its sign", math.Copysign(0, -1), "<value><double>-0.000000</double></value>"},
		{"a large double prints every digit", 1e20, "<value><double>100000000000000000000.000000</double></value>"},
		{"NaN prints as glibc does", math.NaN(), "<value><double>nan</double></value>"},
		{"infinity prints as glibc does", math.Inf(-1), "<value><double>-inf</double></value>"},
		{"an empty array has empty data", []any{}, "<value><array><data></data></array></value>"},
		{"a []string is an array of strings", []string{"a", "<"}, "<value><array><data><value>a</value><value>&lt;</value></data></array></value>"},
		{"struct members are sorted by name", map[string]any{"b": 1, "B": 2, "a&": "x"}, "<value><struct><member><name>B</name><value><i4>2</i4></value></member><member><name>a&amp;</name><value>x</value></member><member><name>b</name><value><i4>1</i4></value></member></struct></value>"},
		{"short bytes are base64 without a line break", []byte("hello"), "<value><base64>aGVsbG8=</base64></value>"},
		{"54 bytes fill one 72-character line and get CRLF", make([]byte, 54), "<value><base64>" + strings.Repeat("A", 72) + "\r\n</base64></value>"},
		{"55 bytes wrap after 72 characters", make([]byte, 55), "<value><base64>" + strings.Repeat("A", 72) + "\r\nAA==</base64></value>"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := string(EncodeResponse(tc.v)), head+tc.want+tail; got != want {
				t.Fatalf("got  %q\nwant %q", got, want)
			}
		})
	}
	t.Run("a cyclic result is the catch-all fault, not a crash", func(t *testing.T) {
		loop := []any{nil}
		loop[0] = loop
		if got, want := string(EncodeResponse(loop)), faultBody(500, "Exception occured."); got != want {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("a fault string is escaped", func(t *testing.T) {
		if got, want := string(EncodeFault(1, "a<b")), faultBody(1, "a&lt;b"); got != want {
			t.Fatalf("got %q", got)
		}
	})
}

// TestRoundTrip: what the encoder writes, the decoder reads back (doubles
// excepted, "%f" keeps six decimals).
func TestRoundTrip(t *testing.T) {
	v := []any{"s <&>'\"", 1, -2147483648, true, false, []byte{0, 1, 254, 255}, map[string]any{"k": []any{"x", map[string]any{}}}, []any{}, ""}
	resp := string(EncodeResponse(v))
	inner := strings.TrimSuffix(strings.TrimPrefix(resp, respHead), respTail)
	_, args, err := Decode([]byte(call(inner)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(args, []any{v}) {
		t.Fatalf("got %#v\nwant %#v", args[0], v)
	}
}

// The plain forms clients send are read by the hand-written scanner, not
// handed to encoding/xml (which costs several times more), and give the
// reference decoder's values; constructs outside the scanner's subset go
// to the reference.
func TestFastDecodeTakesPlainBodies(t *testing.T) {
	for i, body := range fastBodies {
		fm, fa, ok := fastDecode([]byte(body), DefaultMaxDepth)
		if !ok {
			t.Fatalf("body %d not taken by the scanner: %q", i, body)
		}
		rm, ra, err := decodeXML([]byte(body), DefaultMaxDepth)
		if err != nil || fm != rm || !reflect.DeepEqual(fa, ra) {
			t.Fatalf("body %d: scanner %q %#v, reference %q %#v %v", i, fm, fa, rm, ra, err)
		}
	}
	for _, body := range []string{
		"<!-- c --><methodCall><methodName>m</methodName></methodCall>",
		"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><methodCall><methodName>m</methodName></methodCall>",
		"<methodCall><methodName><![CDATA[m]]></methodName></methodCall>",
		"<methodCall a='1'><methodName>m</methodName></methodCall>",
		"<x:methodCall xmlns:x='u'><methodName>m</methodName></x:methodCall>",
		"<methodCall><methodName>&nbsp;</methodName></methodCall>",
		"<methodCall><methodName>]]></methodName></methodCall>",
		"<methodCall><methodName>&#xD800;</methodName></methodCall>",
		"<methodCall><methodName>m</methodName><params><param><value><i4>2147483648</i4></value></param></params></methodCall>",
		call(strings.Repeat("<value><array><data>", 101) + strings.Repeat("</data></array></value>", 101)),
	} {
		if m, a, ok := fastDecode([]byte(body), DefaultMaxDepth); ok {
			t.Errorf("the scanner took %q: %q %#v", body, m, a)
		}
	}
}
