package browser

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"webconf/test/testutil"
)

// TestConsoleOperator: the operator signs in to the console with the
// master password, makes a room there, sees two SIP phones come in live
// (the event stream, no reload), mutes one (its tone leaves the other
// phone's audio, and the console shows it muted), and removes the other
// (the phone gets BYE, and the console drops it).
func TestConsoleOperator(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := Start(t, Options{Width: 900, Height: 900})

	Do(t, ctx, 20*time.Second, "sign in",
		chromedp.Navigate(h.base+"/console"),
		chromedp.WaitVisible("#signin"),
		chromedp.SendKeys("#secret", master),
		chromedp.Click("#signin-button"),
		chromedp.WaitVisible("#board"),
	)
	WaitJS(t, ctx, 10*time.Second, "the event stream open", `document.getElementById('items').dataset.live === 'yes'`)
	Do(t, ctx, 10*time.Second, "create room 4711",
		chromedp.SendKeys("#create-name", "4711"),
		chromedp.Click("#create-button"),
	)
	WaitJS(t, ctx, 10*time.Second, "room 4711 listed with its PIN", `(() => {
	  const c = document.querySelector('section.card[data-room="4711"]');
	  return c && /Admin PIN \d+/.test(c.innerText) && /admin PIN is \d+/.test(document.getElementById('status').innerText);
	})()`)

	a := h.dialRoom(t, "4711", "alice")
	b := h.dialRoom(t, "4711", "bob")
	a.SetTone(500)
	b.SetTone(700)
	person := func(p interface{ RemoteTag() string }) string {
		return fmt.Sprintf(`section.card[data-room="4711"] li[data-tag=%q]`, p.RemoteTag())
	}
	WaitJS(t, ctx, 10*time.Second, "both phones listed live", fmt.Sprintf(`!!document.querySelector('%s') && !!document.querySelector('%s')`, person(a), person(b)))
	WaitJS(t, ctx, 10*time.Second, "alice talking", fmt.Sprintf(`document.querySelector('%s')?.dataset.talking === 'true'`, person(a)))
	if err := b.WaitLevel(testutil.Ctx(t, 8*time.Second), 500, 1500, 200*time.Millisecond); err != nil {
		t.Fatalf("bob does not hear alice before the mute: %v", err)
	}
	Screenshot(t, ctx, "console.png")

	// Mute alice: her tone leaves bob's audio; the console shows it.
	Do(t, ctx, 10*time.Second, "click mute", chromedp.Click(person(a)+" button.mute"))
	if err := b.WaitQuiet(testutil.Ctx(t, 8*time.Second), 500, 300, 200*time.Millisecond); err != nil {
		t.Fatalf("bob still hears alice after the console muted her: %v", err)
	}
	WaitJS(t, ctx, 10*time.Second, "alice shown muted", fmt.Sprintf(`document.querySelector('%s')?.dataset.muted === 'true'`, person(a)))
	if err := a.WaitLevel(testutil.Ctx(t, 8*time.Second), 700, 1500, 200*time.Millisecond); err != nil {
		t.Fatalf("alice no longer hears bob: %v", err)
	}

	// Remove bob: he gets BYE; the console drops him.
	Do(t, ctx, 10*time.Second, "click remove", chromedp.Click(person(b)+" button.kick"))
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("bob got no BYE after the console removed him")
	}
	WaitJS(t, ctx, 10*time.Second, "bob gone from the list", fmt.Sprintf(`!document.querySelector('%s') && !!document.querySelector('%s')`, person(b), person(a)))
}
