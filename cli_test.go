package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// result is one run of the relais binary.
type result struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, stdout.String(), stderr.String()}
}

// commandsIn lists the commands a usage text shows as "  relais NAME …"
// (or, with prefix "", the subcommands of relais admin).
func commandsIn(usage, prefix string) []string {
	re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(prefix) + `([a-z][a-z-]*(?: [a-z][a-z-]*)?)(?:\s|$)`)
	seen := map[string]bool{}
	var out []string
	for _, m := range re.FindAllStringSubmatch(usage, -1) {
		name := m[1]
		if prefix != "" {
			name, _, _ = strings.Cut(name, " ")
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// TestCLIHelpOnEveryCommand: --help and -h on every command relais --help
// lists, and on every subcommand relais admin --help lists, print the
// usage on stdout and exit 0.
func TestCLIHelpOnEveryCommand(t *testing.T) {
	top := runCLI(t, "--help")
	if top.code != 0 || !strings.Contains(top.stdout, "usage:") {
		t.Fatalf("relais --help: %+v", top)
	}
	commands := commandsIn(top.stdout, "relais ")
	admin := runCLI(t, "admin", "--help")
	subs := commandsIn(admin.stdout, "")
	if len(commands) < 6 || len(subs) < 6 {
		t.Fatalf("found commands %v and admin subcommands %v in the usage texts", commands, subs)
	}
	var calls [][]string
	for _, c := range commands {
		calls = append(calls, []string{c, "--help"}, []string{c, "-h"})
	}
	for _, s := range subs {
		calls = append(calls, append(append([]string{"admin"}, strings.Fields(s)...), "--help"))
	}
	for _, args := range calls {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			r := runCLI(t, args...)
			if r.code != 0 || !strings.Contains(strings.ToLower(r.stdout), "usage") || r.stderr != "" {
				t.Fatalf("relais %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestCLIUsageErrorsExit2WithOneLine: each mistake on the command line
// exits 2 with one line on stderr naming the --help to read; a failure
// that is not one exits 1. Every command of relais --help needs a row.
func TestCLIUsageErrorsExit2WithOneLine(t *testing.T) {
	data := t.TempDir() // no node runs there
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"no command", nil, 2},
		{"unknown command", []string{"frobnicate"}, 2},
		{"serve: unknown flag", []string{"serve", "--nope"}, 2},
		{"serve: bad value", []string{"serve", "--rate-limits", "maybe"}, 2},
		{"serve: stray argument", []string{"serve", "extra"}, 2},
		{"serve: bad setting in the environment is not a usage error", []string{"serve", "--data", data}, 1},
		{"admin: no command", []string{"admin", "--data", data}, 2},
		{"admin: unknown flag", []string{"admin", "--nope"}, 2},
		{"admin: unknown command", []string{"admin", "--data", data, "users", "frob"}, 2},
		{"admin: approve without an address", []string{"admin", "--data", data, "users", "approve"}, 2},
		{"admin: domains add without a domain", []string{"admin", "--data", data, "domains", "add"}, 2},
		{"admin: no node running is not a usage error", []string{"admin", "--data", data, "users", "list"}, 1},
		{"backup: no file", []string{"backup", "--data", data}, 2},
		{"backup: two files", []string{"backup", "--data", data, "a", "b"}, 2},
		{"backup: unknown flag", []string{"backup", "--nope", "f"}, 2},
		{"restore: no file", []string{"restore", "--data", data}, 2},
		{"restore: missing snapshot is not a usage error", []string{"restore", "--data", data, filepath.Join(data, "absent")}, 1},
		{"bench: no scenario", []string{"bench"}, 2},
		{"bench: unknown scenario", []string{"bench", "nope"}, 2},
		{"bench: unknown flag", []string{"bench", "--nope", "dm"}, 2},
		{"version: stray argument", []string{"version", "extra"}, 2},
		{"federation: no command", []string{"federation", "--data", data}, 2},
		{"federation: unknown command", []string{"federation", "--data", data, "frob"}, 2},
		{"federation: add without a token", []string{"federation", "--data", data, "add"}, 2},
		{"federation: no node running is not a usage error", []string{"federation", "--data", data, "list"}, 1},
		{"doctor: unknown flag", []string{"doctor", "--nope"}, 2},
		{"doctor: stray argument", []string{"doctor", "extra"}, 2},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		if len(c.args) > 0 {
			covered[c.args[0]] = true
		}
		t.Run(c.name, func(t *testing.T) {
			bin, err := binary()
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, c.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if c.name == "serve: bad setting in the environment is not a usage error" {
				cmd.Env = append(os.Environ(), "RELAIS_NOPE=1")
			}
			err = cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Fatalf("relais %s: %v, want exit %d\nstderr: %s", strings.Join(c.args, " "), err, c.code, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || stdout.Len() != 0 {
				t.Fatalf("want one line on stderr and nothing on stdout, got\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
			}
			if c.code == 2 && !strings.Contains(lines[0], "--help") {
				t.Fatalf("the usage error does not say where help is: %s", lines[0])
			}
		})
	}
	top := runCLI(t, "--help")
	for _, c := range commandsIn(top.stdout, "relais ") {
		if !covered[c] {
			t.Errorf("relais %s has no usage-error case in this table: add one", c)
		}
	}
}

// TestCLIVersionWithoutStamp: the test binary is built with
// -buildvcs=false and no -X stamp, and still prints a version, a commit
// and a date (the stamped build is checked by the packaging tests).
func TestCLIVersionWithoutStamp(t *testing.T) {
	r := runCLI(t, "version")
	if r.code != 0 || !regexp.MustCompile(`^relais \S+ \(commit \S+, built \S+, go\S+\)\n$`).MatchString(r.stdout) {
		t.Fatalf("relais version: %+v", r)
	}
}

// TestServeNotifiesSystemd: relais serve tells $NOTIFY_SOCKET READY=1
// once /healthz answers, and STOPPING=1 on SIGTERM, as Type=notify needs.
func TestServeNotifiesSystemd(t *testing.T) {
	dir, err := os.MkdirTemp("", "sdn") // a unix socket's path is limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	p := startNode(t, t.TempDir())
	next := func() string {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 512)
		n, err := conn.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v\n%s", err, p.logs)
		}
		return string(b[:n])
	}
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q", got)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if got := next(); got != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q", got)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("relais serve after SIGTERM: %v\n%s", err, p.logs)
	}
}
