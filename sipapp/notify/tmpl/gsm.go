package tmpl

import (
	"strings"
	"unicode/utf16"
)

// gsm7Basic is the GSM 03.38 default alphabet (one septet each) and
// gsm7Ext its extension table (an escape and a septet: two each).
const (
	gsm7Basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
		"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsm7Ext = "\f^{}\\[~]|€"
)

// SMSSize is how long text is as one SMS and the length that fits in a
// single one: in the GSM-7 default alphabet (characters of the extension
// table count twice) the limit is 160; a text with any other character
// goes as UCS-2, counted in UTF-16 units, and the limit is 70.
func SMSSize(text string) (length, limit int) {
	n := 0
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsm7Basic, r):
			n++
		case strings.ContainsRune(gsm7Ext, r):
			n += 2
		default:
			return len(utf16.Encode([]rune(text))), 70
		}
	}
	return n, 160
}
