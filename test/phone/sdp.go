package phone

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Errors describing an SDP answer the phone cannot use.
var (
	// ErrNoAudio means the answer has no usable m=audio line (missing, or
	// port 0, which RFC 3264 section 6 uses to reject a stream).
	ErrNoAudio = errors.New("phone: answer has no accepted audio stream")
	// ErrNoCodec means the answer chose no codec that the phone offered and
	// can decode (only G.711 is implemented).
	ErrNoCodec = errors.New("phone: answer chose no codec the phone can use")
)

// offer describes what the phone puts into an SDP offer.
type offer struct {
	sessID    uint64
	version   uint64
	port      int
	codecs    []uint8
	dtmfPT    int  // -1: not offered
	cn        bool // offer CN/8000 as payload type 13
	ptime     int
	direction string     // "" means sendrecv
	addr      netip.Addr // the RTP address in o= and c=; zero: 127.0.0.1
	proto     string     // "" means RTP/AVP
	crypto    []string   // a=crypto values, in order
}

// codecName gives the RFC 3551 encoding names of the static payload types
// the phone may offer. Other static types are offered without an rtpmap,
// which RFC 4566 section 6 allows for static payload types.
func codecName(pt uint8) string {
	switch pt {
	case 0:
		return "PCMU"
	case 3:
		return "GSM"
	case 8:
		return "PCMA"
	case 9:
		return "G722"
	case 18:
		return "G729"
	}
	return ""
}

// marshal renders the offer. It is hand-written rather than built with
// pion/sdp so that the bytes on the wire are exactly what a test reading
// this file expects, in a conventional line order.
func (o offer) marshal() []byte {
	var b strings.Builder
	addr, family := "127.0.0.1", "IP4"
	if o.addr.IsValid() {
		addr = o.addr.String()
		if o.addr.Is6() {
			family = "IP6"
		}
	}
	b.WriteString("v=0\r\n")
	fmt.Fprintf(&b, "o=phone %d %d IN %s %s\r\n", o.sessID, o.version, family, addr)
	b.WriteString("s=phone\r\n")
	fmt.Fprintf(&b, "c=IN %s %s\r\n", family, addr)
	b.WriteString("t=0 0\r\n")
	proto := o.proto
	if proto == "" {
		proto = "RTP/AVP"
	}
	fmt.Fprintf(&b, "m=audio %d %s", o.port, proto)
	for _, pt := range o.codecs {
		fmt.Fprintf(&b, " %d", pt)
	}
	if o.dtmfPT >= 0 {
		fmt.Fprintf(&b, " %d", o.dtmfPT)
	}
	if o.cn {
		b.WriteString(" 13")
	}
	b.WriteString("\r\n")
	for _, c := range o.crypto {
		fmt.Fprintf(&b, "a=crypto:%s\r\n", c)
	}
	for _, pt := range o.codecs {
		if name := codecName(pt); name != "" {
			fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", pt, name)
		}
	}
	if o.dtmfPT >= 0 {
		// Events 0-15 are the DTMF digits (RFC 4733 section 3.2).
		fmt.Fprintf(&b, "a=rtpmap:%d telephone-event/8000\r\n", o.dtmfPT)
		fmt.Fprintf(&b, "a=fmtp:%d 0-16\r\n", o.dtmfPT)
	}
	if o.cn {
		b.WriteString("a=rtpmap:13 CN/8000\r\n")
	}
	fmt.Fprintf(&b, "a=ptime:%d\r\n", o.ptime)
	dir := o.direction
	if dir == "" {
		dir = "sendrecv"
	}
	fmt.Fprintf(&b, "a=%s\r\n", dir)
	return []byte(b.String())
}

// answer is what the phone learns from the server's SDP.
type answer struct {
	rtp       netip.AddrPort // where to send RTP
	codec     uint8          // first offered G.711 type listed in the answer
	dtmfPT    int            // telephone-event type in the answer, -1 if none
	direction string         // a=sendrecv/sendonly/recvonly/inactive, "" if absent
	proto     string         // the m-line's transport
	// crypto are the usable a=crypto lines of the m-line, cryptoLines
	// counts all of them.
	crypto      []cryptoLine
	cryptoLines int
}

// parseAnswer extracts the first audio stream of an SDP answer. offered is
// the list of audio payload types the phone offered; per RFC 3264 section
// 6.1 the answer's first listed format is the one the answerer prefers.
func parseAnswer(body []byte, offered []uint8) (answer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return answer{}, fmt.Errorf("phone: parse SDP answer: %w", err)
	}
	var md *sdp.MediaDescription
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			md = m
			break
		}
	}
	if md == nil || md.MediaName.Port.Value == 0 {
		return answer{}, ErrNoAudio
	}
	conn := sd.ConnectionInformation
	if md.ConnectionInformation != nil {
		conn = md.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return answer{}, fmt.Errorf("phone: SDP answer has no c= line: %w", ErrNoAudio)
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return answer{}, fmt.Errorf("phone: SDP answer c= address %q: %w", conn.Address.Address, err)
	}
	a := answer{
		rtp:    netip.AddrPortFrom(ip, uint16(md.MediaName.Port.Value)),
		codec:  255,
		dtmfPT: -1,
		proto:  strings.Join(md.MediaName.Protos, "/"),
	}
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.Atoi(f)
		if err != nil || pt < 0 || pt > 127 {
			continue
		}
		if a.codec == 255 && (pt == 0 || pt == 8) && slices.Contains(offered, uint8(pt)) {
			a.codec = uint8(pt)
		}
	}
	for _, attr := range md.Attributes {
		switch attr.Key {
		case "rtpmap":
			ptStr, enc, ok := strings.Cut(attr.Value, " ")
			if !ok {
				continue
			}
			if strings.HasPrefix(strings.ToLower(enc), "telephone-event/") {
				if pt, err := strconv.Atoi(ptStr); err == nil {
					a.dtmfPT = pt
				}
			}
		case "sendrecv", "sendonly", "recvonly", "inactive":
			a.direction = attr.Key
		case "crypto":
			a.cryptoLines++
			if c, ok := parseCryptoLine(attr.Value); ok {
				a.crypto = append(a.crypto, c)
			}
		}
	}
	if a.direction == "" {
		for _, attr := range sd.Attributes {
			switch attr.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				a.direction = attr.Key
			}
		}
	}
	if a.codec == 255 {
		return a, ErrNoCodec
	}
	return a, nil
}
