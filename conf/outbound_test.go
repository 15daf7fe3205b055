package conf

import "testing"

func TestParseProxyURI(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ProxyURI
	}{
		{"sip:proxy.example.net", ProxyURI{Scheme: "sip", Host: "proxy.example.net"}},
		{"SIP:10.0.0.1:5070", ProxyURI{Scheme: "sip", Host: "10.0.0.1", Port: 5070}},
		{"sip:10.0.0.1;lr", ProxyURI{Scheme: "sip", Host: "10.0.0.1"}},
		{"sip:[2001:db8::1]:5080;transport=TCP;lr", ProxyURI{Scheme: "sip", Host: "2001:db8::1", Port: 5080, Transport: "tcp"}},
		{"sip:proxy.example.net;transport=tls", ProxyURI{Scheme: "sip", Host: "proxy.example.net", Transport: "tls"}},
		{"sips:proxy.example.net", ProxyURI{Scheme: "sips", Host: "proxy.example.net"}},
	} {
		got, err := ParseProxyURI(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseProxyURI(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "sip:", "sip::5060", "sip:[2001:db8::1", "sip:[10.0.0.1]", "sip:h:1:2",
		"sip:h;transport=udp;transport=tcp", "sip:h;lr=1", "sip:h?Route=x", "tel:+123", "sip:h:"} {
		if got, err := ParseProxyURI(bad); err == nil {
			t.Errorf("ParseProxyURI(%q) = %+v, want an error", bad, got)
		}
	}
}
