package conf

import (
	"reflect"
	"strings"
	"testing"
)

func TestWebRTC(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		c := mustParse(t, "")
		if !c.WebRTC.Enabled || c.WebRTC.UDPPort != 0 || len(c.WebRTC.ICEServerURLs()) != 0 ||
			c.WebRTC.MaxBrowsers != 1000 || c.WebRTC.MaxBrowsersPerSource != 10 {
			t.Fatalf("defaults %+v", c.WebRTC)
		}
		if lo, hi := c.WebRTCPortRange(); lo != 10000 || hi != 20000 {
			t.Fatalf("default range %d-%d, want the RTP range", lo, hi)
		}
	})
	t.Run("a range", func(t *testing.T) {
		c := mustParse(t, "[webrtc]\nudp_port_range=40000-40100\nice_servers=stun:a.example:3478;turn:[2001:db8::1]:3478?transport=udp")
		if lo, hi := c.WebRTCPortRange(); lo != 40000 || hi != 40100 {
			t.Fatalf("range %d-%d", lo, hi)
		}
		if got := c.WebRTC.ICEServerURLs(); !reflect.DeepEqual(got, []string{"stun:a.example:3478", "turn:[2001:db8::1]:3478?transport=udp"}) {
			t.Fatalf("ice servers %q", got)
		}
	})
	for _, tc := range []struct{ name, text, key string }{
		{"public_ip a name", "public_ip=example.com", "public_ip"},
		{"public_ip unspecified", "public_ip=0.0.0.0", "public_ip"},
		{"udp_port too big", "udp_port=70000", "udp_port"},
		{"udp_port negative", "udp_port=-1", "udp_port"},
		{"udp_port not a number", "udp_port=x", "udp_port"},
		{"range reversed", "udp_port_range=5000-4000", "udp_port_range"},
		{"range one number", "udp_port_range=5000", "udp_port_range"},
		{"range below 1024", "udp_port_range=80-90", "udp_port_range"},
		{"ice server http", "ice_servers=http://stun.example.com", "ice_servers"},
		{"ice server without host", "ice_servers=stun:", "ice_servers"},
		{"ice server bad port", "ice_servers=stun:a.example:99999", "ice_servers"},
		{"max_browsers negative", "max_browsers=-1", "max_browsers"},
		{"max_browsers_per_source negative", "max_browsers_per_source=-2", "max_browsers_per_source"},
		{"enabled not a bool", "enabled=maybe", "enabled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("[webrtc]\n" + tc.text))
			if err == nil {
				t.Fatal("accepted")
			}
			if want := "[webrtc] " + tc.key + ":"; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %s", err, want)
			}
		})
	}
}
