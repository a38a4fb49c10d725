// Package cli holds the command-line conventions every relais command
// follows: --help prints the usage on stdout and exits 0, a mistake on the
// command line exits 2 with a one-line hint, any other failure exits 1.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// UsageError is a mistake on the command line itself (an unknown flag, a
// bad value, a missing or stray argument), as opposed to a failure of the
// command: the caller exits 2.
type UsageError struct {
	Cmd string // "relais serve": where to ask for --help
	Err error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError of the command fs parses.
func Usagef(fs *flag.FlagSet, format string, a ...any) error {
	return &UsageError{Cmd: fs.Name(), Err: fmt.Errorf(format, a...)}
}

// Stdout is where --help writes; tests may replace it.
var Stdout io.Writer = os.Stdout

// Parse parses args with fs: -h or --help prints fs's usage on Stdout and
// returns flag.ErrHelp; a bad flag returns a UsageError without printing
// the whole usage (the caller prints one line and the way to --help).
func Parse(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, flag.ErrHelp):
		PrintUsage(fs)
		return flag.ErrHelp
	}
	return &UsageError{Cmd: fs.Name(), Err: err}
}

// PrintUsage prints fs's usage on Stdout.
func PrintUsage(fs *flag.FlagSet) {
	out := fs.Output()
	fs.SetOutput(Stdout)
	defer fs.SetOutput(out)
	if fs.Usage != nil {
		fs.Usage()
		return
	}
	fmt.Fprintf(Stdout, "usage of %s:\n", fs.Name())
	fs.PrintDefaults()
}

// WantsHelp reports whether args ask for help: commands whose words are
// not flags (relais admin users approve --help) check with it.
func WantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help", "help":
			return true
		case "--":
			return false
		}
	}
	return false
}

// Exit ends the program as the conventions say for err, which came from
// the command named cmd: 0 for nil or help, 2 with a one-line hint for a
// UsageError, 1 with the error otherwise.
func Exit(cmd string, err error) {
	os.Exit(Report(os.Stderr, cmd, err))
}

// Report writes what Exit prints for err to w and returns the exit status.
func Report(w io.Writer, cmd string, err error) int {
	var ue *UsageError
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.Cmd != "" {
			cmd = ue.Cmd
		}
		fmt.Fprintf(w, "%s: %v (see %s --help)\n", cmd, ue.Err, cmd)
		return 2
	}
	fmt.Fprintf(w, "%s: %v\n", cmd, err)
	return 1
}
