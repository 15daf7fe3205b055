package xmlrpc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzDecode: Decode never panics, fails only with its three sentinel
// errors, and whatever it accepts encodes back into well-formed XML; and
// whatever the hand-written scanner (fastDecode) accepts, the reference
// decoder on encoding/xml (decodeXML) decodes to the same method and
// values. The input is capped at the server's body limit, which bounds
// memory: the decoders' allocations are linear in the input.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(pyBody("roomCreate", "1234")))
	f.Add([]byte(call("<value><array><data><value><struct><member><name>a</name><value><base64>aGk=</base64></value></member></struct></value></data></array></value>")))
	f.Add([]byte(call("<value><double>1.5</double></value>", "<value><boolean>1</boolean></value>", "<value><i4>-1</i4></value>")))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><methodCall><methodName>m\xe9</methodName></methodCall>"))
	for _, b := range fastBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > DefaultMaxBody {
			t.Skip()
		}
		for _, depth := range []int{DefaultMaxDepth, 2} {
			if fm, fa, ok := fastDecode(body, depth); ok {
				rm, ra, err := decodeXML(body, depth)
				if err != nil || fm != rm || !reflect.DeepEqual(fa, ra) {
					t.Fatalf("depth %d: fastDecode %q %#v, reference %q %#v %v", depth, fm, fa, rm, ra, err)
				}
			}
		}
		method, args, err := Decode(body, 0)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedType) && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		for _, out := range [][]byte{EncodeResponse(args), EncodeFault(-1, method)} {
			d := xml.NewDecoder(bytes.NewReader(out))
			for {
				_, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("encoded %q is not well-formed: %v", out, err)
				}
			}
		}
	})
}

// fastBodies are plain requests as clients write them: Python's
// xmlrpc.client, XmlRpc++ and PHP, every value type, whitespace, entities,
// CR LF and empty elements.
var fastBodies = []string{
	pyBody("roomInfo", "room1", "647764"),
	pyBody("roomCreate", "a&amp;b &lt;c&gt; &#233;&#xE9; &quot;&apos;"),
	"<?xml version=\"1.0\"?>\r\n<methodCall><methodName>di</methodName>\r\n<params><param><value>webconference</value></param>" +
		"<param><value>roomInfo</value></param></params></methodCall>\r\n",
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall>\n<methodName>m</methodName>\n<params>\n <param>\n  <value>\n   <struct>\n" +
		"    <member><name>b</name><value><i4>-2</i4></value></member>\n    <member><name>a</name><value><int> +7 </int></value></member>\n" +
		"    <member><name>a</name><value>dup</value></member>\n   </struct>\n  </value>\n </param>\n" +
		" <param><value><array><data><value><boolean>1</boolean></value><value><double>-1.5e3</double></value>" +
		"<value><base64>aGVs\r\nbG8=</base64></value><value/><value><string/></value><value><array><data/></array></value>" +
		"<value><struct/></value></data></array></value></param>\n</params>\n</methodCall>\n",
	"<methodCall><methodName>m</methodName><params><param><value>a\r\nb\rc\u00e9\U0001F600</value></param></params></methodCall>trailing junk <<<",
	"<methodCall><methodName>calls</methodName></methodCall>",
	"<methodCall ><methodName >m</methodName\n><params/></methodCall\t>",
}
