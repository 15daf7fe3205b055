package sdp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SDES-SRTP (RFC 4568): the a=crypto attribute carries, in the clear, the
// master key and salt its sender encrypts its SRTP with. Only two suites of
// RFC 4568 section 6.2 are supported, the ones every SDES phone offers.
const (
	SuiteAES80 = "AES_CM_128_HMAC_SHA1_80" // 80-bit authentication tag
	SuiteAES32 = "AES_CM_128_HMAC_SHA1_32" // 32-bit authentication tag
)

// Profiles (RFC 3551, RFC 3711 section 12).
const (
	ProtoRTP  = "RTP/AVP"
	ProtoSRTP = "RTP/SAVP"
)

// KeyLen is the length of an inline key: a 128-bit master key followed by
// a 112-bit master salt (RFC 4568 section 6.2.1).
const KeyLen = 16 + 14

// Lifetimes (RFC 4568 section 6.1): we never rekey during a call, so only a
// master key lifetime that no call can reach is honoured. 2^31 packets are
// 497 days of 20 ms packets, and SRTCP's index limit (RFC 3711 section
// 9.2); above 2^48 the lifetime is invalid (RFC 3711 section 3.2.1).
const (
	minLifetime = 1 << 31
	maxLifetime = 1 << 48
)

// ErrCrypto: an a=crypto attribute that is malformed or that we cannot
// honour (another suite, MKI, a short lifetime, session parameters).
var ErrCrypto = errors.New("sdp: unusable a=crypto attribute")

// Crypto is one a=crypto attribute: its tag, suite and inline key. Key is a
// secret: String never shows it, and it is never logged.
type Crypto struct {
	Tag   uint32       // 0..999999999 (1*9DIGIT)
	Suite string       // SuiteAES80 or SuiteAES32
	Key   [KeyLen]byte // master key || master salt
}

// String describes the attribute without its key.
func (c Crypto) String() string {
	return "crypto:" + strconv.FormatUint(uint64(c.Tag), 10) + " " + c.Suite + " inline:<redacted>"
}

// Attribute is the attribute's value as written after "a=crypto:".
func (c Crypto) Attribute() string {
	return strconv.FormatUint(uint64(c.Tag), 10) + " " + c.Suite + " inline:" +
		base64.StdEncoding.EncodeToString(c.Key[:])
}

// NewCrypto makes a crypto attribute with a fresh random key (crypto/rand).
func NewCrypto(tag uint32, suite string) (Crypto, error) {
	if suite != SuiteAES80 && suite != SuiteAES32 {
		return Crypto{}, fmt.Errorf("%w: suite %q", ErrCrypto, suite)
	}
	if tag > 999999999 {
		return Crypto{}, fmt.Errorf("%w: tag %d", ErrCrypto, tag)
	}
	c := Crypto{Tag: tag, Suite: suite}
	if _, err := rand.Read(c.Key[:]); err != nil {
		return Crypto{}, fmt.Errorf("sdp: SRTP key: %w", err)
	}
	return c, nil
}

// ParseCrypto reads an a=crypto value (RFC 4568 section 9.1):
//
//	<tag> <crypto-suite> inline:<key||salt>[|<lifetime>][|<MKI>:<length>] [<session-params>]
//
// It accepts what we can honour and refuses the rest with ErrCrypto: one
// inline key of exactly 30 bytes in base64, one of the two suites, no MKI
// (every packet would carry one and all keys would have to be managed), a
// lifetime only if it is at least 2^31 packets (we never rekey), and no
// session parameter but the harmless window size hint WSH (RFC 4568 6.3.7);
// KDR, UNENCRYPTED_SRTP, UNAUTHENTICATED_SRTP, FEC_* are refused. Errors
// quote nothing of the value: a line out of order could put the key in any
// field.
func ParseCrypto(value string) (Crypto, error) {
	var c Crypto
	fields := strings.Fields(value)
	if len(fields) < 3 {
		return c, fmt.Errorf("%w: %d fields", ErrCrypto, len(fields))
	}
	tag, suite, keyParams := fields[0], fields[1], fields[2]
	if len(tag) == 0 || len(tag) > 9 || strings.Trim(tag, "0123456789") != "" {
		return c, fmt.Errorf("%w: tag is not 1 to 9 digits", ErrCrypto)
	}
	n, _ := strconv.ParseUint(tag, 10, 32)
	c.Tag = uint32(n)
	if suite != SuiteAES80 && suite != SuiteAES32 {
		return c, fmt.Errorf("%w: suite not supported", ErrCrypto)
	}
	c.Suite = suite
	if strings.Contains(keyParams, ";") {
		// Several keys need MKIs to tell them apart (RFC 4568 6.1).
		return c, fmt.Errorf("%w: several keys", ErrCrypto)
	}
	method, info, ok := strings.Cut(keyParams, ":")
	if !ok || !strings.EqualFold(method, "inline") {
		return c, fmt.Errorf("%w: key method is not inline", ErrCrypto)
	}
	parts := strings.Split(info, "|")
	if len(parts) > 3 {
		return c, fmt.Errorf("%w: too many key parts", ErrCrypto)
	}
	// StdEncoding with padding; 30 bytes are exactly 40 characters.
	if len(parts[0]) != base64.StdEncoding.EncodedLen(KeyLen) {
		return c, fmt.Errorf("%w: key is %d characters, want %d", ErrCrypto, len(parts[0]), base64.StdEncoding.EncodedLen(KeyLen))
	}
	if k, err := base64.StdEncoding.Strict().DecodeString(parts[0]); err != nil || len(k) != KeyLen {
		return c, fmt.Errorf("%w: key is not %d bytes of base64", ErrCrypto, KeyLen)
	} else {
		copy(c.Key[:], k)
	}
	for i, p := range parts[1:] {
		if strings.Contains(p, ":") {
			return c, fmt.Errorf("%w: MKI not supported", ErrCrypto)
		}
		if i == 1 {
			return c, fmt.Errorf("%w: two lifetimes", ErrCrypto)
		}
		lt, err := lifetime(p)
		if err != nil {
			return c, err
		}
		if lt < minLifetime {
			return c, fmt.Errorf("%w: key lifetime %d packets is below 2^31 (we do not rekey)", ErrCrypto, lt)
		}
	}
	for _, sp := range fields[3:] {
		name, val, _ := strings.Cut(sp, "=")
		if name != "WSH" || val == "" || strings.Trim(val, "0123456789") != "" {
			return c, fmt.Errorf("%w: session parameter not supported", ErrCrypto)
		}
	}
	return c, nil
}

// lifetime reads "2^n" or a decimal count of packets (RFC 4568 6.1).
func lifetime(s string) (uint64, error) {
	exp, isPow := strings.CutPrefix(s, "2^")
	digits := s
	if isPow {
		digits = exp
	}
	if digits == "" || len(digits) > 20 || strings.Trim(digits, "0123456789") != "" {
		return 0, fmt.Errorf("%w: bad key lifetime", ErrCrypto)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: bad key lifetime", ErrCrypto)
	}
	if isPow {
		if n > 48 {
			return 0, fmt.Errorf("%w: key lifetime 2^%d above 2^48", ErrCrypto, n)
		}
		return 1 << n, nil
	}
	if n > maxLifetime {
		return 0, fmt.Errorf("%w: key lifetime above 2^48", ErrCrypto)
	}
	return n, nil
}
