// Package test holds checks that span the whole module.
package test

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// rules: a package (prefix) must not depend on these (prefixes), and why.
var rules = []struct {
	pkg, bad, why string
}{
	{"webconf/dsp", "webconf/sipapp", "dsp is pure audio and sits below everything"},
	{"webconf/dsp", "net", "dsp does no I/O"},
	{"webconf/dsp", "github.com/emiago/sipgo", "dsp knows nothing of SIP"},
	{"webconf/conf", "webconf/", "conf imports nothing of ours"},
	{"webconf/prompts", "webconf/sipapp", "prompts sit below sipapp"},
	{"webconf/sipapp", "webconf/rpc", "data flows cmd -> rpc -> sipapp, never back"},
	{"webconf/sipapp", "webconf/cmd", "nothing imports cmd"},
	{"webconf/sipapp/mixer", "github.com/emiago/sipgo", "the mixer knows nothing of SIP"},
	{"webconf/sipapp/mixer", "webconf/sipapp/rtpleg", "the mixer sees legs only through Input/Output"},
	{"webconf/sipapp/rtpleg", "github.com/emiago/sipgo", "an RTP leg knows nothing of SIP dialogs"},
	{"webconf/sipapp/sdp", "webconf/sipapp/rtpleg", "SDP is pure"},
	{"webconf/sipapp/meeting", "github.com/emiago/sipgo", "meetings are data; SIP lives in sipapp"},
	{"webconf/sipapp/meeting", "webconf/sipapp/mixer", "meetings are data; audio lives in sipapp"},
}

func TestImportsFlowOneWay(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", "webconf/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if p.ImportPath != r.pkg && !strings.HasPrefix(p.ImportPath, r.pkg+"/") {
				continue
			}
			checked++
			for _, d := range p.Deps {
				if d == r.bad || strings.HasPrefix(d, r.bad) && (strings.HasSuffix(r.bad, "/") || strings.HasPrefix(d, r.bad+"/")) {
					if r.bad == "webconf/" && d == p.ImportPath {
						continue
					}
					t.Errorf("%s depends on %s: %s", p.ImportPath, d, r.why)
				}
			}
		}
	}
	if checked < 8 {
		t.Fatalf("only %d packages checked: the rules no longer match the tree", checked)
	}
}
