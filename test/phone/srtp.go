package phone

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// SDES-SRTP (RFC 4568) for the test phone. The phone has its own small
// a=crypto reader, independent of the server's, so that a test checks the
// server's SDP against a second implementation; the SRTP itself is
// pion/srtp.

// Suites the phone can use (RFC 4568 section 6.2).
const (
	SuiteAES80 = "AES_CM_128_HMAC_SHA1_80"
	SuiteAES32 = "AES_CM_128_HMAC_SHA1_32"
)

// SRTP configures what a phone offers (Config.SRTP) or a callee accepts
// (CalleeConfig.SRTP).
type SRTP struct {
	// Suites get one a=crypto line each, tags 1, 2, ... in order, each
	// with a fresh key; default {SuiteAES80}. A callee accepts the first
	// offered line whose suite is in Suites.
	Suites []string
	// SAVP offers RTP/SAVP; else the offer is RTP/AVP with a=crypto (the
	// "best effort" SRTP a peer without it answers plain).
	SAVP bool
	// Lines, when set, are sent verbatim as the a=crypto values instead
	// (tests of what the server refuses); the phone then does no SRTP.
	Lines []string
}

// cryptoLine is one a=crypto attribute as the phone reads and writes it.
type cryptoLine struct {
	tag   string
	suite string
	key   []byte // master key || salt, 30 bytes
}

func (c cryptoLine) value() string {
	return c.tag + " " + c.suite + " inline:" + base64.StdEncoding.EncodeToString(c.key)
}

// parseCryptoLine reads "<tag> <suite> inline:<key>[|...]"; ok is false
// for anything the phone cannot use (another suite, an MKI, a bad key).
func parseCryptoLine(v string) (cryptoLine, bool) {
	f := strings.Fields(v)
	if len(f) < 3 || (f[1] != SuiteAES80 && f[1] != SuiteAES32) {
		return cryptoLine{}, false
	}
	info, ok := strings.CutPrefix(f[2], "inline:")
	if !ok {
		return cryptoLine{}, false
	}
	parts := strings.Split(info, "|")
	for _, p := range parts[1:] {
		if strings.Contains(p, ":") { // MKI
			return cryptoLine{}, false
		}
	}
	key, err := base64.StdEncoding.DecodeString(parts[0])
	if err != nil || len(key) != 30 {
		return cryptoLine{}, false
	}
	return cryptoLine{tag: f[0], suite: f[1], key: key}, true
}

func newCryptoLine(tag int, suite string) cryptoLine {
	k := make([]byte, 30)
	rand.Read(k)
	return cryptoLine{tag: fmt.Sprint(tag), suite: suite, key: k}
}

func profile(suite string) srtp.ProtectionProfile {
	if suite == SuiteAES32 {
		return srtp.ProtectionProfileAes128CmHmacSha1_32
	}
	return srtp.ProtectionProfileAes128CmHmacSha1_80
}

// startSRTP sets the phone's SRTP contexts: it encrypts with ours and
// decrypts with theirs, one suite both ways.
func (p *Phone) startSRTP(ours, theirs cryptoLine) error {
	tx, err := srtp.CreateContext(ours.key[:16], ours.key[16:], profile(ours.suite))
	if err != nil {
		return fmt.Errorf("phone: SRTP send context: %w", err)
	}
	rx, err := srtp.CreateContext(theirs.key[:16], theirs.key[16:], profile(theirs.suite), srtp.SRTPReplayProtection(128))
	if err != nil {
		return fmt.Errorf("phone: SRTP receive context: %w", err)
	}
	p.srtpTx.Store(tx)
	p.srtpRx.Store(rx)
	return nil
}

// answerSRTP applies an SDP answer's a=crypto to the phone (caller side):
// one line with a tag and suite we offered starts SRTP; none leaves the
// call plain. Called before media starts.
func (p *Phone) answerSRTP(ans answer) error {
	if len(ans.crypto) == 0 {
		if ans.cryptoLines > 0 {
			return fmt.Errorf("phone: answer's a=crypto is unusable")
		}
		p.srtpDecided.Store(true)
		return nil
	}
	if len(ans.crypto) != 1 || ans.cryptoLines != 1 {
		return fmt.Errorf("phone: answer has %d a=crypto lines, want 1", ans.cryptoLines)
	}
	for _, o := range p.srtpOffered {
		if o.tag == ans.crypto[0].tag && o.suite == ans.crypto[0].suite {
			if err := p.startSRTP(o, ans.crypto[0]); err != nil {
				return err
			}
			p.srtpDecided.Store(true)
			return nil
		}
	}
	return fmt.Errorf("phone: answer's a=crypto tag %s %s was not offered", ans.crypto[0].tag, ans.crypto[0].suite)
}

// Secure reports whether the call's media is SRTP.
func (p *Phone) Secure() bool { return p.srtpRx.Load() != nil }

// SRTPSuite is the suite in use, "" for plain RTP.
func (p *Phone) SRTPSuite() string { return p.srtpSuite }

// Unauthenticated counts received packets that failed SRTP authentication
// (or were replays) and were dropped.
func (p *Phone) Unauthenticated() uint64 { return p.rxUnauth.Load() }

// protect encrypts the RTP packet in b[:n] in place (b has room for the
// tag); plain RTP when the call has no SRTP.
func (p *Phone) protect(b []byte, n int) ([]byte, bool) {
	tx := p.srtpTx.Load()
	if tx == nil {
		return b[:n], true
	}
	out, err := tx.EncryptRTP(b[:n], b[:n], &p.tx.shdr)
	if err != nil {
		return nil, false
	}
	return out, true
}

// unprotect authenticates and decrypts a received packet in place; false
// drops it (counted). While an SRTP offer awaits its answer, packets are
// dropped: they cannot be told apart yet.
func (p *Phone) unprotect(b []byte, hdr *rtp.Header) ([]byte, bool) {
	rx := p.srtpRx.Load()
	if rx == nil {
		return b, p.cfg.SRTP == nil || len(p.cfg.SRTP.Lines) > 0 || p.srtpDecided.Load()
	}
	out, err := rx.DecryptRTP(b, b, hdr)
	if err != nil {
		p.rxUnauth.Add(1)
		return nil, false
	}
	return out, true
}
