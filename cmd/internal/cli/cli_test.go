package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"testing"
)

func TestParseAndExitStatus(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Int("n", 0, "a number")
		return fs
	}
	if err := Parse(newFS(), []string{"-n", "3"}); err != nil {
		t.Fatalf("good flags: %v", err)
	}
	for _, args := range [][]string{{"-n", "x"}, {"-m"}, {"-n", "3", "extra"}} {
		err := Parse(newFS(), args)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("Parse(%q) = %v, want ErrUsage", args, err)
		}
		var b bytes.Buffer
		if code := FlagsFailed("x", err, &b); code != 2 || !bytes.HasPrefix(b.Bytes(), []byte("x: usage: ")) {
			t.Errorf("FlagsFailed(%v) = %d, printed %q", err, code, b.String())
		}
	}
	err := Parse(newFS(), []string{"-h"})
	var b bytes.Buffer
	if code := FlagsFailed("x", err, &b); !errors.Is(err, flag.ErrHelp) || code != 0 || b.Len() != 0 {
		t.Errorf("-h: %v, exit %d, printed %q; want 0 and nothing more", err, code, b.String())
	}
	if err := Usagef("-n %d: too many", 7); !errors.Is(err, ErrUsage) || err.Error() != "usage: -n 7: too many" {
		t.Errorf("Usagef = %v", err)
	}
}
