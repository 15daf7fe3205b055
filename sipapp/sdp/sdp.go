// Package sdp reads a peer's audio offer and writes our answer and offer
// (SDP, RFC 4566, in the offer/answer model of RFC 3264).
//
// webconfd mixes G.711 at 8 kHz, so the whole negotiation is: find the first
// audio stream over RTP/AVP or RTP/SAVP (SDES-SRTP, RFC 4568: crypto.go;
// whether SRTP may be used is the caller's policy), take the offerer's
// first G.711 codec (PCMU or PCMA, static or dynamic payload type) and its
// telephone-event/8000 payload type for RFC 4733 DTMF and its CN/8000 payload
// type for RFC 3389 comfort noise, and answer with exactly that. Everything else in the offer is rejected the RFC 3264 way: the m-line
// is kept in place with port 0.
//
// Parsing untrusted SDP has crashed many servers (spec/reliability.md 1.5), so
// ParseOffer never panics (a panic inside the parser becomes ErrMalformed),
// checks every address and number it uses, and is fuzzed (FuzzParseOffer).
package sdp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Errors returned by ParseOffer and NewAnswer. Callers map ErrMalformed to
// SIP 400 Bad Request and the others to 488 Not Acceptable Here (RFC 3261
// section 21.4.26).
var (
	// ErrMalformed: the body is not a valid session description.
	ErrMalformed = errors.New("sdp: malformed session description")
	// ErrNoAudio: valid SDP without a usable audio stream (none, all
	// rejected with port 0, another transport, multicast, or a host name as
	// address).
	ErrNoAudio = errors.New("sdp: no usable audio stream")
	// ErrNoCodec: the audio stream offers neither PCMU nor PCMA.
	ErrNoCodec = errors.New("sdp: no G.711 codec offered")
)

// Directions (RFC 3264 section 5.1 / RFC 4566 section 6).
const (
	SendRecv = "sendrecv"
	SendOnly = "sendonly"
	RecvOnly = "recvonly"
	Inactive = "inactive"
)

// Media is one offered m-line as needed to reject it in an answer: RFC 3264
// section 6 wants the same number of m-lines, in the same order, with the same
// media type and transport, and a rejected one has port 0 and at least one
// format.
type Media struct {
	Type    string   // audio, video, ...
	Port    int      // 0 when the offerer itself disabled the stream
	Proto   string   // RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF, ...
	Formats []string // as listed on the m-line
}

// Offer is what we use from a peer's SDP. An SDP answer to our NewOffer has
// the same shape and is read with ParseOffer too.
type Offer struct {
	// Addr and Port are where to send RTP: the connection address (media
	// level, else session level) and port of the chosen audio m-line. Addr is
	// unspecified (0.0.0.0) for an RFC 2543 style hold.
	Addr netip.Addr
	Port int
	// Codecs are the G.711 payload types of the chosen m-line in the offerer's
	// order (its preference, RFC 3264 section 5.1): static 0 (PCMU) and 8
	// (PCMA), or dynamic types whose rtpmap says PCMU/8000 or PCMA/8000 — we
	// must send with the number the offerer chose. Names is parallel: "PCMU"
	// or "PCMA".
	Codecs []uint8
	Names  []string
	// DTMF is the telephone-event/8000 payload type (RFC 4733), -1 if absent.
	DTMF int
	// CN is the comfort noise payload type (RFC 3389: CN/8000, static 13),
	// -1 if absent.
	CN int
	// Ptime is a=ptime in milliseconds, 0 if absent.
	Ptime int
	// Direction is sendrecv, sendonly, recvonly or inactive (media level,
	// else session level, else sendrecv).
	Direction string
	// Hold: the peer does not want our audio now (c=0.0.0.0 per RFC 2543, or
	// sendonly/inactive per RFC 3264 section 8.4).
	Hold bool
	// MediaCount is the number of m-lines, AudioIndex the chosen one, and
	// Media all of them, for building the answer.
	MediaCount int
	AudioIndex int
	Media      []Media

	// Proto is the chosen m-line's transport: ProtoRTP or ProtoSRTP.
	Proto string
	// Crypto are the chosen m-line's a=crypto attributes we can honour,
	// in the offerer's order (its preference); CryptoLines counts all its
	// a=crypto lines, usable or not.
	Crypto      []Crypto
	CryptoLines int
	// Fallback is, for an RTP/SAVP choice, the first later plain RTP/AVP
	// audio m-line with a G.711 codec (nil if none): what to answer when
	// SRTP may not be used.
	Fallback *Offer
}

// ParseOffer reads the first usable audio stream of an SDP body: the first
// m=audio line with a non-zero port, RTP/AVP or RTP/SAVP transport and a
// G.711 codec.
// Errors wrap ErrMalformed, ErrNoAudio or ErrNoCodec.
func ParseOffer(body []byte) (o *Offer, err error) {
	defer func() {
		// Defence in depth: a panic in the SDP library must cost one call a
		// 400, not the process.
		if r := recover(); r != nil {
			o, err = nil, fmt.Errorf("%w: parser panic: %v", ErrMalformed, r)
		}
	}()
	if strings.TrimSpace(string(body)) == "" {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	// The library stops quietly at the end of the input, so a truncated body
	// can parse; o=, s= and t= are mandatory (RFC 4566 section 5).
	if sd.Origin.NetworkType == "" {
		return nil, fmt.Errorf("%w: no o= line", ErrMalformed)
	}
	if len(sd.TimeDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no t= line", ErrMalformed)
	}

	o = &Offer{DTMF: -1, CN: -1, AudioIndex: -1, MediaCount: len(sd.MediaDescriptions)}
	usable := -1 // first usable audio m-line, with or without G.711
	for _, md := range sd.MediaDescriptions {
		m := Media{
			Type:    md.MediaName.Media,
			Port:    md.MediaName.Port.Value,
			Proto:   strings.Join(md.MediaName.Protos, "/"),
			Formats: md.MediaName.Formats,
		}
		o.Media = append(o.Media, m)
	}
	for i, md := range sd.MediaDescriptions {
		if !candidate(o.Media[i]) {
			continue
		}
		if usable < 0 {
			usable = i
		}
		if codecs, _, _, _ := audioFormats(md); len(codecs) > 0 {
			o.AudioIndex = i
			break
		}
	}
	switch {
	case o.AudioIndex < 0 && usable < 0:
		return nil, fmt.Errorf("%w: no m=audio line with a port and RTP/AVP or RTP/SAVP", ErrNoAudio)
	case o.AudioIndex < 0:
		return nil, fmt.Errorf("%w: m=audio %s", ErrNoCodec, strings.Join(o.Media[usable].Formats, " "))
	}
	if err := o.stream(&sd, o.AudioIndex); err != nil {
		return nil, err
	}
	if o.Proto == ProtoSRTP {
		// An SRTP stream followed by the same audio as plain RTP (the
		// two m-lines of "best effort" SRTP before RFC 5939): keep the
		// plain one for an answer that must not use SRTP.
		for j := o.AudioIndex + 1; j < len(sd.MediaDescriptions); j++ {
			if o.Media[j].Proto != ProtoRTP || !candidate(o.Media[j]) {
				continue
			}
			if codecs, _, _, _ := audioFormats(sd.MediaDescriptions[j]); len(codecs) == 0 {
				continue
			}
			fb := &Offer{DTMF: -1, CN: -1, AudioIndex: j, MediaCount: o.MediaCount, Media: o.Media}
			if fb.stream(&sd, j) == nil {
				o.Fallback = fb
			}
			break
		}
	}
	return o, nil
}

// candidate reports whether an m-line may be our audio stream: audio, a
// port, and RTP or SRTP with SDES (RTP/AVP or RTP/SAVP).
func candidate(m Media) bool {
	return m.Type == "audio" && m.Port != 0 && (m.Proto == ProtoRTP || m.Proto == ProtoSRTP)
}

// stream fills in what o uses from m-line i: address, codecs, DTMF,
// ptime, direction and crypto attributes.
func (o *Offer) stream(sd *sdp.SessionDescription, i int) (err error) {
	md := sd.MediaDescriptions[i]
	o.AudioIndex = i
	o.Proto = o.Media[i].Proto
	o.Codecs, o.Names, o.DTMF, o.CN = audioFormats(md)
	o.Port = md.MediaName.Port.Value

	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	if o.Addr, err = connectionAddr(ci); err != nil {
		return err
	}

	o.Ptime = ptime(md.Attributes)
	if o.Ptime == 0 {
		// ptime is a media attribute, but some phones put it at session level.
		o.Ptime = ptime(sd.Attributes)
	}
	o.Direction = direction(md.Attributes)
	if o.Direction == "" {
		o.Direction = direction(sd.Attributes)
	}
	if o.Direction == "" {
		o.Direction = SendRecv
	}
	o.Hold = o.Addr.IsUnspecified() || o.Direction == SendOnly || o.Direction == Inactive

	// a=crypto is a media-level attribute only (RFC 4568 section 9.1);
	// lines we cannot honour are skipped, the others kept in order.
	for _, a := range md.Attributes {
		if a.Key != "crypto" {
			continue
		}
		o.CryptoLines++
		if c, err := ParseCrypto(a.Value); err == nil && len(o.Crypto) < maxCrypto {
			o.Crypto = append(o.Crypto, c)
		}
	}
	return nil
}

// maxCrypto bounds the acceptable a=crypto lines kept from one m-line.
const maxCrypto = 16

// audioFormats returns the G.711 payload types of an m-line in order, their
// names, the telephone-event/8000 payload type and the CN/8000 (comfort
// noise, RFC 3389) payload type (-1 if none).
func audioFormats(md *sdp.MediaDescription) (codecs []uint8, names []string, dtmf, cn int) {
	type rtpmap struct {
		name     string
		rate     int
		channels int
	}
	maps := map[uint8]rtpmap{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		// a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]
		ptText, enc, ok := strings.Cut(strings.TrimSpace(a.Value), " ")
		if !ok {
			continue
		}
		pt, ok := payloadType(ptText)
		if !ok {
			continue
		}
		parts := strings.Split(strings.TrimSpace(enc), "/")
		if len(parts) < 2 || len(parts) > 3 {
			continue
		}
		rate, err := strconv.Atoi(parts[1])
		if err != nil {
			continue
		}
		channels := 1
		if len(parts) == 3 {
			if channels, err = strconv.Atoi(parts[2]); err != nil {
				continue
			}
		}
		if _, dup := maps[pt]; !dup {
			maps[pt] = rtpmap{strings.ToUpper(parts[0]), rate, channels}
		}
	}

	dtmf, cn = -1, -1
	for _, f := range md.MediaName.Formats {
		pt, ok := payloadType(f)
		if !ok {
			continue // RTP/AVP formats are payload types; ignore junk
		}
		m, mapped := maps[pt]
		if !mapped {
			// Static payload types need no rtpmap (RFC 3551 table 4).
			switch pt {
			case 0:
				m = rtpmap{"PCMU", 8000, 1}
			case 8:
				m = rtpmap{"PCMA", 8000, 1}
			case 13:
				m = rtpmap{"CN", 8000, 1}
			default:
				continue
			}
		}
		switch {
		case (m.name == "PCMU" || m.name == "PCMA") && m.rate == 8000 && m.channels == 1:
			codecs = append(codecs, pt)
			names = append(names, m.name)
		case m.name == "TELEPHONE-EVENT" && m.rate == 8000 && dtmf < 0:
			dtmf = int(pt)
		case m.name == "CN" && m.rate == 8000 && m.channels == 1 && cn < 0:
			cn = int(pt)
		}
	}
	return codecs, names, dtmf, cn
}

// payloadType parses an RTP payload type (7 bits, RFC 3550 section 5.1).
func payloadType(s string) (uint8, bool) {
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil || n > 127 {
		return 0, false
	}
	return uint8(n), true
}

// connectionAddr checks a c= line and returns its unicast address.
func connectionAddr(ci *sdp.ConnectionInformation) (netip.Addr, error) {
	if ci == nil || ci.Address == nil {
		return netip.Addr{}, fmt.Errorf("%w: no c= line for the audio stream", ErrMalformed)
	}
	text := ci.Address.Address
	// <base multicast address>[/<ttl>]/<number of addresses> (RFC 4566
	// section 5.7); the library leaves the suffix in the address.
	host, _, scoped := strings.Cut(text, "/")
	a, err := netip.ParseAddr(host)
	if err != nil {
		if isHostName(host) {
			// Legal SDP (RFC 4566 section 5.7), but resolving names from
			// untrusted SDP is a way to make us send media anywhere.
			return netip.Addr{}, fmt.Errorf("%w: host name %q in c= is not supported", ErrNoAudio, text)
		}
		return netip.Addr{}, fmt.Errorf("%w: bad address %q in c=", ErrMalformed, text)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: scoped address %q in c=", ErrMalformed, text)
	}
	switch {
	case ci.AddressType == "IP4" && !a.Is4(), ci.AddressType == "IP6" && a.Is4():
		return netip.Addr{}, fmt.Errorf("%w: %s address %q in c=", ErrMalformed, ci.AddressType, text)
	case a.Is4In6():
		// An IPv4-mapped IPv6 address is an IPv4 peer.
		a = a.Unmap()
	}
	if scoped && !a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%w: TTL or count on unicast address %q in c=", ErrMalformed, text)
	}
	if a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%w: multicast address %s in c=", ErrNoAudio, a)
	}
	return a, nil
}

// isHostName reports whether s looks like a DNS name rather than a broken
// address: letters, digits, '-' and '.', with at least one letter.
func isHostName(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
			letter = true
		case '0' <= c && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return letter
}

// ptime returns a=ptime in whole milliseconds, 0 if absent or unusable.
func ptime(attrs []sdp.Attribute) int {
	for _, a := range attrs {
		if a.Key != "ptime" {
			continue
		}
		// RFC 4566 allows a fraction ("a=ptime:20.0" is seen in the wild).
		f, err := strconv.ParseFloat(strings.TrimSpace(a.Value), 64)
		if err != nil || f < 1 || f > 1000 {
			return 0
		}
		return int(f + 0.5)
	}
	return 0
}

// direction returns the first direction attribute, "" if none.
func direction(attrs []sdp.Attribute) string {
	for _, a := range attrs {
		switch a.Key {
		case SendRecv, SendOnly, RecvOnly, Inactive:
			return a.Key
		}
	}
	return ""
}
