// Package webrtc is a browser participant's media: a pion/webrtc
// PeerConnection with one sendrecv audio transceiver, G.711 (PCMU or
// PCMA) only, DTLS-SRTP by pion, that the mixer reads and writes like an
// RTP leg (sipapp.BrowserLeg). It knows no SIP, no rooms and no
// signalling: the signalling (rpc/rest) hands it the browser's offer and
// sends back the answer.
//
// Opus is not offered: pion has no Opus encoder (github.com/pion/opus is a
// decoder), and every Opus encoder for Go wraps libopus with cgo, which
// this project does not build with; browsers all offer PCMU and PCMA.
package webrtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// Config is what the [webrtc] section gives.
type Config struct {
	// ListenIP is the address ICE gathers host candidates on (the SIP
	// listening address). Unspecified or invalid: every interface but
	// loopback. A loopback address is used as it is (tests, a proxy on
	// the same host).
	ListenIP netip.Addr
	// PublicIP replaces the host candidates' address (NAT 1:1); invalid:
	// the candidates carry the local address.
	PublicIP netip.Addr
	// Mux serves every peer on one UDP port (ICE UDP mux), UDPPort (0:
	// an ephemeral port, for tests). Otherwise each peer takes a port of
	// PortMin-PortMax (both 0: any).
	Mux              bool
	UDPPort          int
	PortMin, PortMax uint16
	// ICEServers are the stun:/turn: URLs the page's RTCPeerConnection
	// is given; the server itself needs none (its candidates are host
	// candidates on PublicIP).
	ICEServers []string
	// GatherTimeout bounds waiting for our candidates (default 5 s);
	// ConnectTimeout ends a leg whose ICE has not connected that long
	// after the answer (default 30 s).
	GatherTimeout, ConnectTimeout time.Duration
	Log                           *slog.Logger
}

// Factory makes legs; it is built once from the config.
type Factory struct {
	api        *webrtc.API
	mux        ice.UDPMux
	muxConn    net.PacketConn
	iceServers []string
	gather     time.Duration
	connect    time.Duration
	log        *slog.Logger
}

// Codecs: G.711 only, at their static payload types (RFC 3551).
var (
	codecPCMU = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1},
		PayloadType:        0,
	}
	codecPCMA = webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1},
		PayloadType:        8,
	}
)

// NewFactory builds the pion API: a media engine with PCMU and PCMA, and
// the ICE settings of cfg.
func NewFactory(cfg Config) (*Factory, error) {
	f := &Factory{iceServers: cfg.ICEServers, gather: cfg.GatherTimeout, connect: cfg.ConnectTimeout, log: cfg.Log}
	if f.gather <= 0 {
		f.gather = 5 * time.Second
	}
	if f.connect <= 0 {
		f.connect = 30 * time.Second
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{codecPCMU, codecPCMA} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, fmt.Errorf("webrtc: codec %s: %w", c.MimeType, err)
		}
	}
	var se webrtc.SettingEngine
	// The browser reaches our host candidates; nothing to resolve.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A vanished browser is found within about 12 s.
	se.SetICETimeouts(4*time.Second, 8*time.Second, 2*time.Second)
	listen := cfg.ListenIP.Unmap()
	switch {
	case !listen.IsValid() || listen.IsUnspecified():
		listen = netip.Addr{}
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	default:
		if listen.IsLoopback() {
			se.SetIncludeLoopbackCandidate(true)
		}
		nt := webrtc.NetworkTypeUDP4
		if listen.Is6() {
			nt = webrtc.NetworkTypeUDP6
		}
		se.SetNetworkTypes([]webrtc.NetworkType{nt})
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && a.Unmap() == listen
		})
	}
	if pub := cfg.PublicIP.Unmap(); pub.IsValid() && pub != listen {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: []string{pub.String()}, AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode: webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("webrtc: public_ip: %w", err)
		}
	}
	if cfg.Mux {
		addr := &net.UDPAddr{Port: cfg.UDPPort}
		if listen.IsValid() {
			addr.IP = listen.AsSlice()
		}
		conn, err := net.ListenUDP("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("webrtc: udp_port: %w", err)
		}
		f.muxConn = conn
		f.mux = webrtc.NewICEUDPMux(nil, conn)
		se.SetICEUDPMux(f.mux)
	} else if cfg.PortMin != 0 || cfg.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.PortMin, cfg.PortMax); err != nil {
			return nil, fmt.Errorf("webrtc: udp_port_range: %w", err)
		}
	}
	// No interceptors (pion's default adds NACK, RTCP reports and
	// statistics, which cost allocations on every packet): audio is not
	// retransmitted, and the SIP legs send no RTCP either.
	f.api = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	return f, nil
}

// ICEServers are the URLs the page's peer connection is given.
func (f *Factory) ICEServers() []string { return f.iceServers }

// MuxAddr is the UDP address every peer uses with Mux (nil without).
func (f *Factory) MuxAddr() net.Addr {
	if f.muxConn == nil {
		return nil
	}
	return f.muxConn.LocalAddr()
}

// Close stops the UDP mux; legs still open lose their media.
func (f *Factory) Close() {
	if f.mux != nil {
		_ = f.mux.Close()
	}
}

// ErrNoCodec is the answer to an offer without PCMU or PCMA audio.
var ErrNoCodec = errors.New("webrtc: the offer has no PCMU or PCMA audio")
