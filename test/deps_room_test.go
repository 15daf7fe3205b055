package test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// TestRoomImportsNoSIP: webconf/sipapp/room is the SIP-free room model. Of
// ours it may import only webconf/sipapp/store (never sipapp, whose calls
// drive it, nor anything above); and nothing it imports, directly or not,
// may bring in sipgo.
func TestRoomImportsNoSIP(t *testing.T) {
	const pkg = "webconf/sipapp/room"
	out, err := exec.Command("go", "list", "-json=ImportPath,Deps", pkg).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr // an import cycle back into sipapp shows here
		}
		t.Fatalf("go list %s: %v\n%s", pkg, err, stderr)
	}
	var p struct {
		ImportPath string
		Deps       []string
	}
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	if p.ImportPath != pkg || len(p.Deps) == 0 {
		t.Fatalf("go list found %q with %d deps: the check no longer matches the tree", p.ImportPath, len(p.Deps))
	}
	for _, d := range p.Deps {
		switch {
		case d == "github.com/emiago/sipgo" || strings.HasPrefix(d, "github.com/emiago/sipgo/"):
			t.Errorf("%s depends on %s: the room model knows nothing of SIP", pkg, d)
		case d == "webconf/sipapp":
			t.Errorf("%s depends on %s: sipapp drives the room model, never the other way", pkg, d)
		case strings.HasPrefix(d, "webconf/") && d != "webconf/sipapp/store":
			t.Errorf("%s depends on %s: of ours it imports only webconf/sipapp/store", pkg, d)
		}
	}
}
