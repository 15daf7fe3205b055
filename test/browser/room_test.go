package browser

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"webconf/conf"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// Thresholds, calibrated on chromium 14x headless with the 8000-amplitude
// tone WAVs of ToneWAV and test/phone's 4000-amplitude tones:
//
//   - The page's WebAudio levels (dB, Levels): a phone's tone arrives at
//     about -32 dB, another browser's at about -46 (chromium's noise
//     suppression takes a steady tone down by about 20 dB within 3 s); a
//     frequency nobody sends reads -77 to -87. Heard: above -60; not
//     heard: below -70.
//   - A phone's levels (amplitude, phone.Level): another phone's tone is
//     about 4000, a browser's about 800 once its noise suppression has
//     settled (up to 4000 before); silence and mix-minus are under 20.
//     Heard: 300 or more; not heard: 100 or less.
const (
	pageHears = -60.0
	pageQuiet = -70.0

	phoneHears = 300
	phoneQuiet = 100
)

// joinPage opens url, joins as name, and waits until the page is in.
func joinPage(t *testing.T, ctx context.Context, url, name string) {
	t.Helper()
	Do(t, ctx, 20*time.Second, "open the join page and join as "+name,
		chromedp.Navigate(url),
		chromedp.WaitVisible("#join-form"),
		chromedp.SendKeys("#name", name),
		chromedp.Click("#join-button"),
	)
	WaitJS(t, ctx, 20*time.Second, name+" in", `document.getElementById('status').innerText === 'You are in the meeting.'`)
}

// waitHears polls what the page plays (#remote-audio) until every
// frequency of on is heard and none of off is.
func waitHears(t *testing.T, ctx context.Context, d time.Duration, what string, on, off []float64) {
	t.Helper()
	freqs := append(append([]float64(nil), on...), off...)
	var last []float64
	var lastErr error
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		lv, ok, err := Levels(ctx, "#remote-audio", freqs, 500*time.Millisecond)
		last, lastErr = lv, err
		if err == nil && ok && hearsAll(lv[:len(on)], lv[len(on):]) {
			t.Logf("%s: levels %v dB of %v Hz", what, lv, freqs)
			return
		}
		if err != nil && ctx.Err() != nil {
			break
		}
		// Levels itself takes the window: no extra pause.
	}
	t.Fatalf("%s: the page never heard %v (above %.0f dB) without %v (below %.0f dB); last levels %v of %v (err %v)",
		what, on, pageHears, off, pageQuiet, last, freqs, lastErr)
}

func hearsAll(on, off []float64) bool {
	for _, l := range on {
		if l < pageHears {
			return false
		}
	}
	for _, l := range off {
		if l > pageQuiet {
			return false
		}
	}
	return true
}

// dialTone calls user (a meeting's number, c.<identifier>) from a phone
// that sends freq; it hangs up when the test ends.
func (h *harness) dialTone(t *testing.T, user, from string, freq float64) *phone.Phone {
	t.Helper()
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: h.node.SIP.Addr(), User: user, FromUser: from})
	if err != nil {
		t.Fatalf("%s dials %s: %v", from, user, err)
	}
	testutil.HangUpAtEnd(t, p)
	p.SetTone(freq)
	return p
}

// phoneHearsFor waits until p hears freq (want) or no longer does.
func phoneHearsFor(t *testing.T, p *phone.Phone, who string, freq float64, want bool) {
	t.Helper()
	var err error
	if want {
		err = p.WaitLevel(testutil.Ctx(t, 15*time.Second), freq, phoneHears, 200*time.Millisecond)
	} else {
		err = p.WaitQuiet(testutil.Ctx(t, 15*time.Second), freq, phoneQuiet, 200*time.Millisecond)
	}
	t.Logf("%s: %.0f Hz at %.0f", who, freq, p.Level(freq, 200*time.Millisecond))
	if err != nil {
		t.Fatalf("%s (hears %v Hz: want %v, level %.0f): %v", who, freq, want, p.Level(freq, 200*time.Millisecond), err)
	}
}

// person is the selector of the join page's list entry of a call tag.
func person(tag string) string { return fmt.Sprintf(`#people li[data-tag=%q]`, tag) }

// TestJoinMeetingWithPhones: a browser joins /m/<uuid> of a meeting where
// two SIP phones send tones. The page's own WebAudio analysis hears both
// tones and not its own; both phones hear the browser's. The page lists
// everyone, from the participants and the events: the phones as talking,
// itself as "(you)"; a phone that hangs up leaves the list. Mute makes the
// phones stop hearing the browser (shown muted on the page), unmute brings
// it back.
func TestJoinMeetingWithPhones(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	needSignalling(t, h)
	_, m := h.owner(t, map[string]any{"name": "Weekly sync"})
	uuid, exten := m["uuid"].(string), m["exten"].(string)
	ann := h.dialTone(t, exten, "ann", 500)
	bob := h.dialTone(t, exten, "bob", 700)
	phoneHearsFor(t, ann, "ann hears bob", 700, true)

	ctx := Start(t, Options{Mic: ToneWAV(t, 900), Width: 480, Height: 760})
	joinPage(t, ctx, h.base+"/m/"+uuid, "Carol")

	waitHears(t, ctx, 20*time.Second, "the page hears both phones and not itself", []float64{500, 700}, []float64{900})
	phoneHearsFor(t, ann, "ann hears the browser", 900, true)
	phoneHearsFor(t, bob, "bob hears the browser", 900, true)

	WaitJS(t, ctx, 10*time.Second, "everyone listed, the phones talking", fmt.Sprintf(`(() => {
	  const a = document.querySelector('%s'), b = document.querySelector('%s'), me = document.querySelector('#people li[data-me=true]');
	  return document.querySelectorAll('#people li').length === 3 && a && b && me &&
	    a.innerText.includes('ann') && b.innerText.includes('bob') && me.innerText.includes('Carol (you)') &&
	    a.dataset.talking === 'true' && b.dataset.talking === 'true' && a.innerText.includes('talking');
	})()`, person(ann.RemoteTag()), person(bob.RemoteTag())))
	Screenshot(t, ctx, "join-in.png")

	// Mute self: the phones stop hearing the browser; the page says so.
	Do(t, ctx, 10*time.Second, "mute", chromedp.Click("#mute"))
	WaitJS(t, ctx, 10*time.Second, "shown muted", `document.getElementById('mute').getAttribute('aria-pressed') === 'true' &&
	  document.querySelector('#people li[data-me=true]')?.dataset.muted === 'true'`)
	phoneHearsFor(t, ann, "ann after the browser muted itself", 900, false)
	phoneHearsFor(t, bob, "bob after the browser muted itself", 900, false)
	phoneHearsFor(t, ann, "ann still hears bob", 700, true)
	waitHears(t, ctx, 10*time.Second, "the muted page still hears the phones", []float64{500, 700}, []float64{900})

	Do(t, ctx, 10*time.Second, "unmute", chromedp.Click("#mute"))
	WaitJS(t, ctx, 10*time.Second, "shown unmuted", `document.getElementById('mute').getAttribute('aria-pressed') === 'false' &&
	  document.querySelector('#people li[data-me=true]')?.dataset.muted === 'false'`)
	phoneHearsFor(t, ann, "ann after the browser unmuted itself", 900, true)

	// A phone that hangs up leaves the page's list and its audio.
	if err := bob.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	WaitJS(t, ctx, 10*time.Second, "bob gone from the list", fmt.Sprintf(`!document.querySelector('%s') && !!document.querySelector('%s') && document.querySelectorAll('#people li').length === 2`,
		person(bob.RemoteTag()), person(ann.RemoteTag())))
	waitHears(t, ctx, 10*time.Second, "the page no longer hears bob", []float64{500}, []float64{700, 900})
}

// TestPublicRoomTwoBrowsers: two browsers (two chromium processes, each
// with its own fake microphone tone) and a SIP phone in a public room
// /c/<id>: everyone hears everyone else and not themselves. Each page
// lists the three, by name. One browser leaves: its page says so, the
// other page drops it from the list, and the phone stops hearing it.
func TestPublicRoomTwoBrowsers(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) { c.Meetings.PublicRooms = true })
	needSignalling(t, h)
	a := Start(t, Options{Mic: ToneWAV(t, 700), Width: 480, Height: 760})
	b := Start(t, Options{Mic: ToneWAV(t, 900), Width: 480, Height: 760})
	url := h.base + "/c/standup"

	joinPage(t, a, url, "Ann") // the first one opens the room
	p := h.dialTone(t, "c.standup", "phil", 500)
	joinPage(t, b, url, "Bea")

	waitHears(t, a, 20*time.Second, "Ann hears Bea and the phone, not herself", []float64{500, 900}, []float64{700})
	waitHears(t, b, 20*time.Second, "Bea hears Ann and the phone, not herself", []float64{500, 700}, []float64{900})
	phoneHearsFor(t, p, "the phone hears Ann", 700, true)
	phoneHearsFor(t, p, "the phone hears Bea", 900, true)
	phoneHearsFor(t, p, "the phone does not hear itself", 500, false)

	beaTag := Eval[string](t, b, `document.querySelector('#people li[data-me=true]')?.dataset.tag || ''`)
	if beaTag == "" {
		t.Fatal("Bea's page does not list Bea as (you)")
	}
	for _, pg := range []struct {
		ctx  context.Context
		who  string
		want []string
	}{{a, "Ann", []string{"Ann (you)", "Bea", "phil"}}, {b, "Bea", []string{"Ann", "Bea (you)", "phil"}}} {
		WaitJS(t, pg.ctx, 10*time.Second, pg.who+"'s page lists the three by name", fmt.Sprintf(`(() => {
		  const names = [...document.querySelectorAll('#people li .who')].map((e) => e.innerText).sort();
		  return JSON.stringify(names) === %q;
		})()`, jsonList(pg.want)))
	}

	// Bea leaves.
	Do(t, b, 10*time.Second, "Bea leaves", chromedp.Click("#leave"))
	WaitJS(t, b, 10*time.Second, "Bea's page says she left", `document.getElementById('status').innerText === 'You left the meeting.' && document.getElementById('call').hidden`)
	WaitJS(t, a, 10*time.Second, "Bea gone from Ann's list", fmt.Sprintf(`!document.querySelector('%s') && document.querySelectorAll('#people li').length === 2`, person(beaTag)))
	phoneHearsFor(t, p, "the phone after Bea left", 900, false)
	waitHears(t, a, 10*time.Second, "Ann no longer hears Bea", []float64{500}, []float64{700, 900})
}

func jsonList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ",") + "]"
}
