package sdp

import (
	"fmt"
	"net/netip"
	"strconv"
)

// Answer is our SDP answer to an Offer (RFC 3264 section 6).
type Answer struct {
	Addr      netip.Addr // our RTP address (c= and o=)
	Port      int        // our RTP port
	PT        uint8      // the one codec we will send and receive
	Name      string     // "PCMU" or "PCMA"
	DTMF      int        // telephone-event payload type, -1 for none
	CN        int        // comfort noise payload type (RFC 3389), -1 for none
	Ptime     int        // echoed a=ptime in ms, 0 for none
	Direction string     // our direction, the mirror of the offer's
	// SessionID and Version go into o=; Version must grow with every new
	// description in the same session (RFC 3264 section 8).
	SessionID, Version uint64
	// MediaCount m-lines are written; AudioIndex is ours, the others are
	// rejected copies of Media (port 0).
	MediaCount, AudioIndex int
	Media                  []Media
	// Proto is our m-line's transport, the offer's: ProtoRTP or
	// ProtoSRTP. Crypto, when set, is our a=crypto (our sending key, the
	// tag and suite of the offer's line we accepted); the caller decides
	// whether SRTP may be used and sets it. An RTP/SAVP answer without
	// Crypto is not valid and Marshal refuses the stream (port 0).
	Proto  string
	Crypto *Crypto
}

// NewAnswer answers o with its first G.711 codec, its telephone-event type
// (if offered), its CN type (if offered: we then send comfort noise instead
// of silence, RFC 3389) and its ptime (if offered), on addr:port. The direction mirrors
// the offer: sendonly is answered recvonly, recvonly sendonly, inactive
// inactive, anything else sendrecv (RFC 3264 section 6.1).
func NewAnswer(o *Offer, addr netip.Addr, port int, sessID, version uint64) (Answer, error) {
	if o == nil {
		return Answer{}, fmt.Errorf("%w: no offer", ErrNoAudio)
	}
	if len(o.Codecs) == 0 || len(o.Names) != len(o.Codecs) {
		return Answer{}, ErrNoCodec
	}
	if !addr.IsValid() || addr.IsUnspecified() {
		return Answer{}, fmt.Errorf("sdp: answer address %v is not a unicast address", addr)
	}
	if port <= 0 || port > 65535 {
		return Answer{}, fmt.Errorf("sdp: answer port %d out of range", port)
	}
	a := Answer{
		Addr:       addr.Unmap(),
		Port:       port,
		PT:         o.Codecs[0],
		Name:       o.Names[0],
		DTMF:       o.DTMF,
		CN:         o.CN,
		Ptime:      o.Ptime,
		SessionID:  sessID,
		Version:    version,
		MediaCount: o.MediaCount,
		AudioIndex: o.AudioIndex,
		Media:      append([]Media(nil), o.Media...),
		Proto:      o.Proto,
	}
	if a.Proto == "" {
		a.Proto = ProtoRTP
	}
	if a.DTMF == int(a.PT) || a.DTMF > 127 {
		a.DTMF = -1
	}
	if a.CN == int(a.PT) || a.CN == a.DTMF || a.CN > 127 || a.CN == 0 {
		a.CN = -1
	}
	switch o.Direction {
	case SendOnly:
		a.Direction = RecvOnly
	case RecvOnly:
		a.Direction = SendOnly
	case Inactive:
		a.Direction = Inactive
	default:
		a.Direction = SendRecv
	}
	// A hand-built Offer may not describe its m-lines: answer one audio line.
	if a.MediaCount < 1 || a.AudioIndex < 0 || a.AudioIndex >= a.MediaCount {
		a.MediaCount, a.AudioIndex, a.Media = 1, 0, nil
	}
	return a, nil
}

// Marshal writes the answer: v=, o=webconf, s=webconf, c=, t=0 0, then one
// m-line per offered m-line in the offer's order. Ours carries the codec,
// the DTMF type and the CN type with their rtpmap lines, a=fmtp:<dtmf> 0-15 (the 16 DTMF
// events, RFC 4733 section 7.1.1), a=ptime and the direction; every other one
// is rejected with port 0 and its offered type, transport and first format.
func (a Answer) Marshal() []byte {
	b := make([]byte, 0, 256)
	b = sessionHeader(b, a.Addr, a.SessionID, a.Version)
	for i := 0; i < a.MediaCount; i++ {
		if i == a.AudioIndex && (a.Proto != ProtoSRTP || a.Crypto != nil) {
			b = audioMedia(b, a.Port, a.PT, a.Name, a.DTMF, a.CN, a.Ptime, a.Direction, a.Proto, a.Crypto)
			continue
		}
		m := Media{Type: "audio", Proto: a.Proto, Formats: []string{"0"}}
		if m.Proto == "" {
			m.Proto = ProtoRTP
		}
		if i < len(a.Media) {
			m = a.Media[i]
		}
		format := "0"
		if len(m.Formats) > 0 {
			format = m.Formats[0]
		}
		b = append(b, "m="+m.Type+" 0 "+m.Proto+" "+format+"\r\n"...)
	}
	return b
}

// NewOffer is our offer for a dial-out: PCMU, PCMA, telephone-event/8000 as
// payload type 101, comfort noise (CN/8000, RFC 3389) as 13, ptime 20,
// sendrecv.
func NewOffer(addr netip.Addr, port int, sessID, version uint64) []byte {
	return NewSecureOffer(addr, port, sessID, version, ProtoRTP, nil)
}

// NewSecureOffer is NewOffer over proto (ProtoRTP or ProtoSRTP) with an
// a=crypto line for each of cryptos, in order: RTP/SAVP when SRTP is
// required, RTP/AVP with a=crypto for the "best effort" SRTP that a peer
// without SRTP answers plain.
func NewSecureOffer(addr netip.Addr, port int, sessID, version uint64, proto string, cryptos []Crypto) []byte {
	if proto == "" {
		proto = ProtoRTP
	}
	b := make([]byte, 0, 256+80*len(cryptos))
	b = sessionHeader(b, addr.Unmap(), sessID, version)
	b = append(b, "m=audio "+strconv.Itoa(port)+" "+proto+" 0 8 101 13\r\n"...)
	for _, c := range cryptos {
		b = append(b, "a=crypto:"+c.Attribute()+"\r\n"...)
	}
	b = append(b, "a=rtpmap:0 PCMU/8000\r\n"+
		"a=rtpmap:8 PCMA/8000\r\n"+
		"a=rtpmap:101 telephone-event/8000\r\n"+
		"a=fmtp:101 0-15\r\n"+
		"a=rtpmap:13 CN/8000\r\n"+
		"a=ptime:20\r\n"+
		"a=sendrecv\r\n"...)
	return b
}

func sessionHeader(b []byte, addr netip.Addr, sessID, version uint64) []byte {
	addrType := "IP4"
	if addr.Is6() {
		addrType = "IP6"
	}
	host := addr.String()
	b = append(b, "v=0\r\n"...)
	b = append(b, "o=webconf "+strconv.FormatUint(sessID, 10)+" "+strconv.FormatUint(version, 10)+
		" IN "+addrType+" "+host+"\r\n"...)
	b = append(b, "s=webconf\r\n"...)
	b = append(b, "c=IN "+addrType+" "+host+"\r\n"...)
	b = append(b, "t=0 0\r\n"...)
	return b
}

func audioMedia(b []byte, port int, pt uint8, name string, dtmf, cn, ptime int, dir, proto string, c *Crypto) []byte {
	pts := strconv.Itoa(int(pt))
	if proto == "" {
		proto = ProtoRTP
	}
	b = append(b, "m=audio "+strconv.Itoa(port)+" "+proto+" "+pts...)
	if dtmf >= 0 {
		b = append(b, " "+strconv.Itoa(dtmf)...)
	}
	if cn >= 0 {
		b = append(b, " "+strconv.Itoa(cn)...)
	}
	b = append(b, "\r\n"...)
	if c != nil {
		b = append(b, "a=crypto:"+c.Attribute()+"\r\n"...)
	}
	b = append(b, "a=rtpmap:"+pts+" "+name+"/8000\r\n"...)
	if dtmf >= 0 {
		d := strconv.Itoa(dtmf)
		b = append(b, "a=rtpmap:"+d+" telephone-event/8000\r\na=fmtp:"+d+" 0-15\r\n"...)
	}
	if cn >= 0 {
		b = append(b, "a=rtpmap:"+strconv.Itoa(cn)+" CN/8000\r\n"...)
	}
	if ptime > 0 {
		b = append(b, "a=ptime:"+strconv.Itoa(ptime)+"\r\n"...)
	}
	if dir == "" {
		dir = SendRecv
	}
	return append(b, "a="+dir+"\r\n"...)
}
