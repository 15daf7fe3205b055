package conf

import (
	"strings"
	"testing"
)

func TestNotifySections(t *testing.T) {
	t.Run("secrets of [sms], [push] and shortenerToken never print, and the output loads again", func(t *testing.T) {
		c := mustParse(t, `
[meetings]
shortenerToken=bitly-secret-1
[sms]
url=https://sms.example.com/send
auth=basic
username=acct
password="pw#secret-2"
body={"to": "{{to}}", "text": "say \"{{text}}\""}
[push]
url=https://push.example.com/{{user}}
token=push-secret-3
`)
		s := c.String()
		for _, secret := range []string{"bitly-secret-1", "secret-2", "push-secret-3"} {
			if strings.Contains(s, secret) {
				t.Errorf("String leaks %q:\n%s", secret, s)
			}
		}
		back, err := Parse([]byte(s))
		if err != nil {
			t.Fatalf("String output does not parse: %v\n%s", err, s)
		}
		if back.SMS.Body != c.SMS.Body || back.String() != s {
			t.Errorf("round trip differs: body %q vs %q", back.SMS.Body, c.SMS.Body)
		}
	})
	t.Run("the body format is content_type, else what the body looks like", func(t *testing.T) {
		for _, tc := range []struct{ ct, body, want string }{
			{"", ` {"t": "{{text}}"}`, "json"},
			{"", `[{"t": "{{text}}"}]`, "json"},
			{"", `t={{text}}`, "form"},
			{"JSON", `{"t": "{{text}}"}`, "json"},
			{"form", `{{text}}`, "form"},
		} {
			if got := (SMS{ContentType: tc.ct, Body: tc.body}).BodyFormat(); got != tc.want {
				t.Errorf("content_type %q body %q: %s, want %s", tc.ct, tc.body, got, tc.want)
			}
		}
	})
	t.Run("a GET with a form, blanks in placeholders and no url at all are accepted", func(t *testing.T) {
		c := mustParse(t, "[sms]\nurl=http://127.0.0.1:1/send?key=1\nmethod=get\nbody=to={{ to }}&msg={{text}}\n")
		if c.SMS.Method != "GET" {
			t.Errorf("method %q, want GET", c.SMS.Method)
		}
		mustParse(t, "[sms]\nmethod=PATCH\nbody=nothing\n[push]\ntimeout=0\n")
	})
	t.Run("every problem of the section is reported at once, each naming its key", func(t *testing.T) {
		_, err := Parse([]byte("[sms]\nurl=ftp://x\nauth=basic:u:p\nbody=to={{to}}\n"))
		kes := keyErrors(t, err)
		keys := map[string]bool{}
		for _, ke := range kes {
			keys[ke.Section+" "+ke.Key] = true
		}
		if len(kes) != 3 || !keys["sms url"] || !keys["sms auth"] || !keys["sms body"] {
			t.Errorf("got %v", err)
		}
		if !strings.Contains(err.Error(), "conf: [sms] auth: is not one of none, basic, bearer (credentials go in") {
			t.Errorf("unclear message: %v", err)
		}
	})
}

func TestSMSAuthErrorHidesTheValue(t *testing.T) {
	_, err := Parse([]byte("[sms]\nurl=http://127.0.0.1:1/\nauth=basic:acct:hunter2\nbody=t={{text}}\n"))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("want an error that does not show the password, got %v", err)
	}
}
