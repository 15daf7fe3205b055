package control

import (
	"os"
	"testing"

	"webconf/conf"
)

// A feedback file whose writes fail counts them on /metrics
// (webconf_feedback_errors_total) instead of dropping them silently
// (issue 11, point 9).
func TestFeedbackErrorsOnMetrics(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	h := start(t, func(c *conf.Config) { c.Webconference.FeedbackFile = "/dev/full" })
	if v := metric(scrape(t, h), "webconf_feedback_errors_total"); v != "0" {
		t.Fatalf("webconf_feedback_errors_total before any vote: %q, want 0", v)
	}
	si := info(0, 0, 0, 0)
	eq(t, h.di(t, "vqRoomFeedback", "r1", "pin", 4), 0, "OK", si)
	eq(t, h.di(t, "flushFeedback"), si)
	if v := metric(scrape(t, h), "webconf_feedback_errors_total"); v != "1" {
		t.Fatalf("webconf_feedback_errors_total after a flush to a full device: %q, want 1", v)
	}
}
