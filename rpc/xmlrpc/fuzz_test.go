package xmlrpc

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"testing"
)

// FuzzDecode: Decode never panics, fails only with its three sentinel
// errors, and whatever it accepts encodes back into well-formed XML. The
// input is capped at the server's body limit, which bounds memory: the
// decoder's allocations are linear in the input.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(pyBody("roomCreate", "1234")))
	f.Add([]byte(call("<value><array><data><value><struct><member><name>a</name><value><base64>aGk=</base64></value></member></struct></value></data></array></value>")))
	f.Add([]byte(call("<value><double>1.5</double></value>", "<value><boolean>1</boolean></value>", "<value><i4>-1</i4></value>")))
	f.Add([]byte("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><methodCall><methodName>m\xe9</methodName></methodCall>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > DefaultMaxBody {
			t.Skip()
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
