package cli

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestCLIParseAndReport: help goes to stdout and exits 0, a flag mistake
// is one line and exit 2, another failure exit 1.
func TestCLIParseAndReport(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		code       int
		stdout     string // contained
		stderrLine string // the one line, exactly
	}{
		{"help", []string{"--help"}, 0, "usage: relais try", ""},
		{"short help", []string{"-h"}, 0, "-level", ""},
		{"unknown flag", []string{"--nope"}, 2, "", "relais try: flag provided but not defined: -nope (see relais try --help)"},
		{"bad value", []string{"--level", "x"}, 2, "", `relais try: invalid value "x" for flag -level: parse error (see relais try --help)`},
		{"fine", []string{"--level", "3"}, 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			old := Stdout
			Stdout = &stdout
			defer func() { Stdout = old }()
			fs := flag.NewFlagSet("relais try", flag.ContinueOnError)
			fs.Int("level", 1, "how much")
			fs.Usage = func() { fs.Output().Write([]byte("usage: relais try\n")); fs.PrintDefaults() }
			code := Report(&stderr, "relais", Parse(fs, c.args))
			if code != c.code || !strings.Contains(stdout.String(), c.stdout) || strings.TrimSuffix(stderr.String(), "\n") != c.stderrLine {
				t.Fatalf("exit %d\nstdout: %q\nstderr: %q", code, stdout.String(), stderr.String())
			}
		})
	}
	var stderr strings.Builder
	if code := Report(&stderr, "relais", errors.New("the node is running")); code != 1 || stderr.String() != "relais: the node is running\n" {
		t.Fatalf("a failure: exit %d, %q", code, stderr.String())
	}
}
