package control

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/test/phone"
	"webconf/test/testutil"
)

func scrape(t *testing.T, h *harness) string {
	t.Helper()
	res, err := http.Get("http://" + h.node.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	return string(b)
}

// metric returns the value of the first line starting with name (labels
// included in name when given).
func metric(text, name string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.di(t, "roomCreate", "m1")
	h.di(t, "roomInfo", "m1", "wrong")
	h.fault(t, "nosuch")
	a := h.dial(t, phone.Config{Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=m1")}})
	a.SetTone(500)
	b := h.dial(t, phone.Config{Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=m1")}})
	if err := b.WaitLevel(testutil.Ctx(t, 8*time.Second), 500, 1500, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	text := scrape(t, h)
	for name, want := range map[string]string{
		"webconf_calls_active": "2",
		"webconf_participants": "2",
		"webconf_rooms_live":   "1",
		"webconf_rooms":        "1",
		`webconf_rpc_requests_total{code="0",method="di:roomCreate"}`: "1",
		`webconf_rpc_requests_total{code="1",method="di:roomInfo"}`:   "1",
		`webconf_rpc_requests_total{code="-1",method="unknown"}`:      "1",
	} {
		if got := metric(text, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
	for _, name := range []string{"webconf_rtp_packets_in_total", "webconf_rtp_packets_out_total", "webconf_mixer_ticks_total"} {
		if v := metric(text, name); v == "" || v == "0" {
			t.Errorf("%s = %q, want > 0", name, v)
		}
	}
	for _, name := range []string{"webconf_mixer_tick_overruns_total", "webconf_rtp_foreign_source_drops_total", "webconf_pin_failures_total", "go_goroutines"} {
		if metric(text, name) == "" {
			t.Errorf("%s missing", name)
		}
	}
	// pprof is there on a loopback listener.
	res, err := http.Get("http://" + h.node.HTTPAddr() + "/debug/pprof/")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("pprof on loopback: %v %v", res, err)
	}
	res.Body.Close()
	if !strings.Contains(text, "# TYPE webconf_calls_total counter") {
		t.Error("calls_total is not a counter")
	}
}
