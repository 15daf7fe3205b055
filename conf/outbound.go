package conf

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ProxyURI is [server] outbound_proxy read: sip:host[:port][;transport=...].
type ProxyURI struct {
	Scheme    string // "sip" or "sips"
	Host      string // an IP address (IPv6 without brackets) or a DNS name
	Port      int    // 0: the transport's default (5060, 5061 for TLS)
	Transport string // "udp", "tcp", "tls"; "" when not given
}

// ParseProxyURI reads an outbound proxy URI as SEMS's outbound_proxy writes
// it: sip:host[:port][;transport=udp|tcp|tls][;lr]. A user part, URI
// headers and other parameters are refused: the proxy is a host, and a
// parameter we would silently drop is a surprise on the wire.
func ParseProxyURI(s string) (ProxyURI, error) {
	var u ProxyURI
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, ":")
	switch {
	case !ok:
		return u, errors.New("no sip: scheme")
	case strings.EqualFold(scheme, "sip"):
		u.Scheme = "sip"
	case strings.EqualFold(scheme, "sips"):
		u.Scheme = "sips"
	default:
		return u, fmt.Errorf("scheme %q is not sip or sips", scheme)
	}
	if strings.ContainsAny(rest, "@") {
		return u, errors.New("a proxy URI has no user part")
	}
	if strings.ContainsAny(rest, "?") {
		return u, errors.New("a proxy URI has no headers (?...)")
	}
	hostport, params, _ := strings.Cut(rest, ";")
	host, port, err := splitProxyHostPort(hostport)
	if err != nil {
		return u, err
	}
	u.Host, u.Port = host, port
	if params != "" {
		for _, p := range strings.Split(params, ";") {
			name, value, hasValue := strings.Cut(p, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			value = strings.ToLower(strings.TrimSpace(value))
			switch {
			case name == "lr" && !hasValue:
				// We always route loosely through the proxy (RFC 3261 16.12).
			case name == "transport" && (value == "udp" || value == "tcp" || value == "tls"):
				if u.Transport != "" {
					return u, errors.New("transport is given twice")
				}
				u.Transport = value
			case name == "transport":
				return u, fmt.Errorf("transport %q is not one of udp, tcp, tls", value)
			default:
				return u, fmt.Errorf("parameter %q is not supported (only transport and lr)", p)
			}
		}
	}
	if u.Scheme == "sips" && u.Transport != "" && u.Transport != "tls" {
		return u, fmt.Errorf("sips: with transport=%s (sips means TLS)", u.Transport)
	}
	return u, nil
}

// splitProxyHostPort reads host[:port] with IPv6 in brackets.
func splitProxyHostPort(hp string) (string, int, error) {
	if hp == "" {
		return "", 0, errors.New("no host")
	}
	host, portStr := hp, ""
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", 0, errors.New("unclosed [ in the host")
		}
		host, portStr = hp[1:end], hp[end+1:]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", 0, fmt.Errorf("%q in brackets is not an IPv6 address", host)
		}
		if portStr != "" {
			if !strings.HasPrefix(portStr, ":") {
				return "", 0, fmt.Errorf("%q after the IPv6 address", portStr)
			}
			portStr = portStr[1:]
		}
	} else {
		if strings.Count(hp, ":") > 1 {
			return "", 0, errors.New("an IPv6 address must be in brackets")
		}
		host, portStr, _ = strings.Cut(hp, ":")
		if strings.Contains(hp, ":") && portStr == "" {
			return "", 0, errors.New("empty port")
		}
		if _, err := netip.ParseAddr(host); err != nil && !dnsName(host) {
			return "", 0, fmt.Errorf("host %q is neither an IP address nor a DNS name", host)
		}
	}
	port := 0
	if portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("port %q is not a number in 1..65535", portStr)
		}
		port = n
	}
	return host, port, nil
}

// dnsName: dot-separated labels of letters, digits and hyphens (no
// leading or trailing hyphen), at most 253 characters.
func dnsName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validateDialoutRouting checks [server] outbound_proxy and splits
// [webconference] dialout_auth_realms.
func validateDialoutRouting(c *Config, report func(section, key, format string, args ...any)) {
	if p := c.Server.OutboundProxy; strings.TrimSpace(p) != "" {
		if _, err := ParseProxyURI(p); err != nil {
			report("server", "outbound_proxy", "%q: %v (want sip:host[:port][;transport=udp|tcp|tls])", p, err)
		}
	}
	w := &c.Webconference
	w.DialoutAuthRealmList = nil
	bad := false
	for _, r := range strings.Split(w.DialoutAuthRealms, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if strings.ContainsAny(r, "\"\\") || strings.IndexFunc(r, func(c rune) bool { return c < ' ' || c == 0x7f }) >= 0 {
			report("webconference", "dialout_auth_realms", "realm %q: write realms without quotes, backslashes or control characters", r)
			bad = true
			continue
		}
		w.DialoutAuthRealmList = append(w.DialoutAuthRealmList, r)
	}
	if !bad && strings.TrimSpace(w.DialoutAuthRealms) != "" && len(w.DialoutAuthRealmList) == 0 {
		report("webconference", "dialout_auth_realms", "%q names no realm (leave it empty to answer any realm)", w.DialoutAuthRealms)
	}
}
