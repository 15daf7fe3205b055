package rest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestParseSignal: each type's fields are checked; what passes reads the
// same after a round trip.
func TestParseSignal(t *testing.T) {
	good := []string{
		`{"type":"join","name":"Ann","auth":null,"token":null}`,
		`{"type":"join","name":"Zoë Ünal","auth":"dTpw"}`,
		`{"type":"offer","sdp":"v=0\r\n"}`,
		`{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"mute","muted":false}`,
		`{"type":"leave"}`,
		`{"type":"leave","extra":1}`,
	}
	for _, s := range good {
		if _, err := parseSignal([]byte(s)); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := []string{
		``, `{`, `[]`, `null`, `"join"`, `{}`, `{"type":""}`, `{"type":"dance"}`, `{"type":1}`,
		`{"type":"join"}`, `{"type":"join","name":""}`, `{"type":"join","name":"a\u0000"}`, `{"type":"join","name":"\u0085x"}`,
		`{"type":"join","name":"` + strings.Repeat("x", 65) + `"}`, `{"type":"join","name":"a","auth":"x","token":"y"}`,
		`{"type":"offer"}`, `{"type":"offer","sdp":""}`, `{"type":"candidate"}`, `{"type":"mute"}`, `{"type":"mute","muted":"yes"}`,
		`{"type":"leave","sdp":` + strings.Repeat(" ", maxSignal) + `""}`,
	}
	for _, s := range bad {
		_, err := parseSignal([]byte(s))
		var se *signalError
		if !errors.As(err, &se) {
			t.Errorf("%.80s: err %v, want a bad-message error", s, err)
		}
	}
}

// FuzzSignalMessage: no input panics, and a message that parses parses
// the same again once marshalled.
func FuzzSignalMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","name":"Ann","auth":null,"token":null}`, `{"type":"offer","sdp":"v=0"}`,
		`{"type":"candidate","candidate":{"candidate":"x","sdpMid":"0","sdpMLineIndex":0}}`,
		`{"type":"mute","muted":true}`, `{"type":"leave"}`, `{"type":"join","name":"\u0000"}`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseSignal(data)
		if err != nil {
			var se *signalError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a bad-message error", err)
			}
			return
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseSignal(b)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("%s -> %s -> %+v, %v", data, b, m2, err)
		}
	})
}
