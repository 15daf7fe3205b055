// Package cli is the flag handling the load and benchmark commands share:
// usage errors and the exit status they give.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// ErrUsage reports invalid flags.
var ErrUsage = errors.New("usage")

// Parse parses args with fs; a flag error or a left-over argument is an
// ErrUsage.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", ErrUsage, fs.Args())
	}
	return nil
}

// Usagef is an ErrUsage that says what is wrong.
func Usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, a...))
}

// FlagsFailed is the exit status of command name whose flags failed with
// err: 0 after -h (the flag package has printed the usage), else 2 after
// printing err to stderr.
func FlagsFailed(name string, err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 2
}
