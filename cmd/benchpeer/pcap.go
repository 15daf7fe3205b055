package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
)

// pcap handling for SIPp's play_pcap_audio: the G.711 capture SIPp ships
// lasts 7 s, so loopPcap writes a copy that lasts as long as a call, its
// packets back to back on an exact grid with continuous RTP sequence
// numbers and timestamps (as a phone sends them, so that neither server's
// jitter buffer sees a jump every 7 s).

const (
	pcapMagicUsec = 0xa1b2c3d4
	linkEthernet  = 1
)

// pcapPackets reads a little-endian, microsecond pcap of Ethernet frames.
func pcapPackets(b []byte) ([][]byte, error) {
	if len(b) < 24 || binary.LittleEndian.Uint32(b) != pcapMagicUsec {
		return nil, fmt.Errorf("pcap: not a little-endian microsecond capture: %w", ErrPcap)
	}
	if lt := binary.LittleEndian.Uint32(b[20:]); lt != linkEthernet {
		return nil, fmt.Errorf("pcap: link type %d, want Ethernet: %w", lt, ErrPcap)
	}
	var pkts [][]byte
	for off := 24; off < len(b); {
		if off+16 > len(b) {
			return nil, fmt.Errorf("pcap: truncated record header at %d: %w", off, ErrPcap)
		}
		n := int(binary.LittleEndian.Uint32(b[off+8:]))
		off += 16
		if off+n > len(b) {
			return nil, fmt.Errorf("pcap: truncated record at %d: %w", off, ErrPcap)
		}
		pkts = append(pkts, b[off:off+n])
		off += n
	}
	if len(pkts) == 0 {
		return nil, fmt.Errorf("pcap: no packets: %w", ErrPcap)
	}
	return pkts, nil
}

// ErrPcap means a capture is not one loopPcap can use.
var ErrPcap = fmt.Errorf("unusable pcap")

// rtpOffset is where the RTP header starts in an Ethernet/IPv4/UDP frame.
func rtpOffset(p []byte) (int, error) {
	if len(p) < 14+20 || binary.BigEndian.Uint16(p[12:]) != 0x0800 {
		return 0, fmt.Errorf("pcap: not IPv4 over Ethernet: %w", ErrPcap)
	}
	ihl := int(p[14]&0x0f) * 4
	if p[14+9] != 17 {
		return 0, fmt.Errorf("pcap: not UDP: %w", ErrPcap)
	}
	off := 14 + ihl + 8
	if len(p) < off+12 || p[off]>>6 != 2 {
		return 0, fmt.Errorf("pcap: not RTP version 2: %w", ErrPcap)
	}
	return off, nil
}

// loopPcap writes to dst the packets of src repeated for at least d, one
// every ptime, each with the next RTP sequence number and a timestamp
// advanced by its payload's samples (G.711: a byte a sample), the marker
// bit only on the first. The UDP checksum is zeroed (none, valid over
// IPv4): SIPp rewrites the ports. It returns the packets written.
func loopPcap(src, dst string, d, ptime time.Duration) (int, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return 0, fmt.Errorf("read pcap: %w", err)
	}
	pkts, err := pcapPackets(b)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", src, err)
	}
	n := int((d + ptime - 1) / ptime)
	out := make([]byte, 24, 24+n*(16+len(pkts[0])))
	copy(out, b[:24])
	off0, err := rtpOffset(pkts[0])
	if err != nil {
		return 0, fmt.Errorf("%s: %w", src, err)
	}
	seq := binary.BigEndian.Uint16(pkts[0][off0+2:])
	ts := binary.BigEndian.Uint32(pkts[0][off0+4:])
	for k := range n {
		p := append([]byte(nil), pkts[k%len(pkts)]...)
		off, err := rtpOffset(p)
		if err != nil {
			return 0, fmt.Errorf("%s: packet %d: %w", src, k%len(pkts), err)
		}
		binary.BigEndian.PutUint16(p[off-2:], 0) // UDP checksum: none
		if k > 0 {
			p[off+1] &^= 0x80 // marker
		}
		binary.BigEndian.PutUint16(p[off+2:], seq)
		binary.BigEndian.PutUint32(p[off+4:], ts)
		seq++
		ts += uint32(len(p) - off - 12)
		at := time.Duration(k) * ptime
		var hdr [16]byte
		binary.LittleEndian.PutUint32(hdr[0:], uint32(1_700_000_000+at/time.Second))
		binary.LittleEndian.PutUint32(hdr[4:], uint32(at%time.Second/time.Microsecond))
		binary.LittleEndian.PutUint32(hdr[8:], uint32(len(p)))
		binary.LittleEndian.PutUint32(hdr[12:], uint32(len(p)))
		out = append(out, hdr[:]...)
		out = append(out, p...)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return 0, fmt.Errorf("write pcap: %w", err)
	}
	return n, nil
}
