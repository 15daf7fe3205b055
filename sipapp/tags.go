package sipapp

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

var tagSeq atomic.Uint32

// newCallTag makes a local tag in SEMS's format (spec section 4):
// XXXXXXXX-XXXXXXXXXXXXXXXX-XXXXXXXX in upper-case hex: a random number,
// the time as seconds and microseconds, and a per-process sequence number
// where SEMS puts its thread id. Old GUI clients show and pass it back
// verbatim, so the shape matters more than the content.
func newCallTag(now time.Time) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // the OS has no entropy source: nothing sane to do
	}
	return fmt.Sprintf("%08X-%08X%08X-%08X", binary.BigEndian.Uint32(b[:]),
		uint32(now.Unix()), uint32(now.Nanosecond()/1000), tagSeq.Add(1))
}

// numberOf renders the caller as SEMS stores it in the participant record:
// the From header without its parameters, `display <sip:uri>` or
// `<sip:uri>`.
func numberOf(from *sip.FromHeader) string {
	if from == nil {
		return ""
	}
	var sb strings.Builder
	if d := from.DisplayName; d != "" {
		if isToken(d) {
			sb.WriteString(d)
		} else {
			sb.WriteString(`"` + d + `"`)
		}
		sb.WriteByte(' ')
	}
	sb.WriteByte('<')
	sb.WriteString(from.Address.String())
	sb.WriteByte('>')
	return sb.String()
}

// isToken reports whether s is an RFC 3261 token, which a display name may
// be without quotes.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-.!%*_+`'~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}
