package control

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/test/phone"
	"webconf/test/testutil"
)

// TestSEMSClientsWithPython replays SEMS's pyqtgui and tools call
// sequences with Python's xmlrpc.client (python3 is on every machine here).
func TestSEMSClientsWithPython(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	h := start(t, nil)
	h.dial(t, phone.Config{Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=424242")}})
	testutil.WaitFor(t, 5*time.Second, "the caller in 424242", func() bool { return h.connected("424242") == 1 })
	// A callee domain where nobody answers: the dialout is placed, then fails.
	out, err := exec.Command(py, "testdata/sems_clients.py", h.url, "424242", "127.0.0.1:9").CombinedOutput()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatalf("python client: %v\n%s", err, out)
	}
}
