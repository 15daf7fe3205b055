package conf

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// WebRTC is the [webrtc] section: browsers joining rooms (package
// sipapp/webrtc, the signalling at /api/v1/rooms/{room}/webrtc).
type WebRTC struct {
	// Enabled turns browser participants on (the signalling route
	// answers 404 when off).
	Enabled bool `ini:"enabled"`
	// PublicIP is the address written into our ICE host candidates (a
	// NAT 1:1 address); "" = the address we listen on ([server]
	// sip_listen's host).
	PublicIP string `ini:"public_ip"`
	// UDPPort serves every browser on one UDP port (ICE UDP mux); 0 =
	// none, each browser gets a port of UDPPortRange.
	UDPPort int `ini:"udp_port"`
	// UDPPortRange is "min-max"; "" = the RTP range ([server]
	// rtp_low_port-rtp_high_port).
	UDPPortRange string `ini:"udp_port_range"`
	// ICEServers are stun:/turn: URLs, separated by commas, that the
	// join page's peer connection is given (the server needs none).
	ICEServers string `ini:"ice_servers"`
	// MaxBrowsers bounds the signalling sockets open at once (each may
	// hold a peer connection: goroutines, a UDP port, DTLS state), and
	// MaxBrowsersPerSource those from one client address; 0 = no bound.
	MaxBrowsers          int `ini:"max_browsers"`
	MaxBrowsersPerSource int `ini:"max_browsers_per_source"`
}

// WebRTCPortRange is [webrtc] udp_port_range as numbers, or the RTP range when it is empty
// (validate has checked it).
func (c *Config) WebRTCPortRange() (lo, hi int) {
	if c.WebRTC.UDPPortRange == "" {
		return c.Server.RTPLowPort, c.Server.RTPHighPort
	}
	lo, hi, _ = parsePortRange(c.WebRTC.UDPPortRange)
	return lo, hi
}

// ICEServerURLs is ICEServers as a list.
func (w WebRTC) ICEServerURLs() []string {
	out := []string{}
	for item := range strings.FieldsFuncSeq(w.ICEServers, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' }) {
		out = append(out, item)
	}
	return out
}

func parsePortRange(s string) (lo, hi int, ok bool) {
	a, b, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || lo > hi {
		return 0, 0, false
	}
	return lo, hi, true
}

// validICEServer: a stun:, stuns:, turn: or turns: URI (RFC 7064, 7065)
// with a host.
func validICEServer(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "stun", "stuns", "turn", "turns":
	default:
		return false
	}
	host, _, _ := strings.Cut(u.Opaque, "?")
	if i := strings.LastIndex(host, ":"); i > 0 && !strings.HasSuffix(host, "]") {
		if p, err := strconv.Atoi(host[i+1:]); err != nil || p < 1 || p > 65535 {
			return false
		}
		host = host[:i]
	}
	return host != "" && !strings.ContainsAny(host, "@/ ")
}

// validateWebRTC checks [webrtc].
func (c *Config) validateWebRTC(report func(section, key, format string, args ...any)) {
	w := &c.WebRTC
	if w.PublicIP != "" {
		if a, err := netip.ParseAddr(w.PublicIP); err != nil || a.IsUnspecified() {
			report("webrtc", "public_ip", "%q is not a usable IP address", w.PublicIP)
		}
	}
	if w.UDPPort < 0 || w.UDPPort > 65535 {
		report("webrtc", "udp_port", "%d is not in 0..65535 (0 = a port per browser from udp_port_range)", w.UDPPort)
	}
	if w.UDPPortRange != "" {
		if _, _, ok := parsePortRange(w.UDPPortRange); !ok {
			report("webrtc", "udp_port_range", "%q is not min-max with 1024 <= min <= max <= 65535", w.UDPPortRange)
		}
	}
	if w.MaxBrowsers < 0 {
		report("webrtc", "max_browsers", "%d is negative (0 = no bound)", w.MaxBrowsers)
	}
	if w.MaxBrowsersPerSource < 0 {
		report("webrtc", "max_browsers_per_source", "%d is negative (0 = no bound)", w.MaxBrowsersPerSource)
	}
	for _, s := range w.ICEServerURLs() {
		if !validICEServer(s) {
			report("webrtc", "ice_servers", "%q is not a stun:, stuns:, turn: or turns: URL with a host", s)
		}
	}
}
