package node

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"webconf/conf"
	"webconf/sipapp/webrtc"
)

// newWebRTC builds the browsers' media factory from [webrtc]: ICE host
// candidates on the address SIP listens on (sipAddr, host:port), written
// as public_ip when that is set.
func newWebRTC(cfg *conf.Config, sipAddr string, log *slog.Logger) (*webrtc.Factory, error) {
	w := cfg.WebRTC
	var listen netip.Addr
	if host, _, err := net.SplitHostPort(sipAddr); err == nil {
		listen, _ = netip.ParseAddr(host)
	}
	var public netip.Addr
	if w.PublicIP != "" {
		public, _ = netip.ParseAddr(w.PublicIP) // validated by conf
	}
	lo, hi := cfg.WebRTCPortRange()
	f, err := webrtc.NewFactory(webrtc.Config{
		ListenIP: listen, PublicIP: public,
		Mux: w.UDPPort > 0, UDPPort: w.UDPPort,
		PortMin: uint16(lo), PortMax: uint16(hi),
		ICEServers: w.ICEServerURLs(), Log: log,
	})
	if err != nil {
		return nil, fmt.Errorf("[webrtc]: %w", err)
	}
	return f, nil
}
