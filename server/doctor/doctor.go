// Package doctor checks a node's configuration and surroundings before
// (or while) it runs: `relais doctor` reads the same settings as `relais
// serve` and prints each problem with its fix. Each check is one function
// of the table checks; a check reports what it found, it changes nothing.
package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"relais/server/cli"
	"strings"
	"time"

	"relais/server/admin"
	"relais/server/config"
)

// Finding is the result of one check on one thing.
type Finding struct {
	// Check names the check: ports, dns, certificates, smtp, clamd, disk,
	// clock, permissions.
	Check string
	// Problem is false when the thing is as it should be.
	Problem bool
	// What says what was found, without secrets.
	What string
	// Fix says what to do about a problem.
	Fix string
}

// Options are what the checks take besides the configuration: the parts
// tests substitute, and thresholds.
type Options struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Resolver resolves the --domain names (net.DefaultResolver when nil).
	Resolver interface {
		LookupHost(ctx context.Context, host string) ([]string, error)
	}
	// SMTPTLS, if set, is the TLS configuration for the SMTP relay
	// (tests trust their relay's certificate with it).
	SMTPTLS *tls.Config
	// MinFree is the free space under which the data directory's disk is
	// a problem; by default 1 GiB, or 10 % of a smaller disk.
	MinFree func(total uint64) uint64
	// ExpiryMargin is how close to its expiry a certificate is a problem
	// (default 14 days: ACME renews 30 days before).
	ExpiryMargin time.Duration
	// MaxDatabaseAge is how old clamd's signatures may be (default 7
	// days).
	MaxDatabaseAge time.Duration
	// MaxSkew is the largest tolerated clock difference (default 1 min).
	MaxSkew time.Duration
	// TimeURL is an HTTPS address whose Date header the clock is compared
	// with; by default the ACME CA's directory when ACME is used.
	TimeURL string
	// HTTP is the client for TimeURL (a 10 s timeout by default).
	HTTP *http.Client
	// Timeout bounds each network check (default 10 s).
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.MinFree == nil {
		o.MinFree = func(total uint64) uint64 { return min(1<<30, total/10) }
	}
	if o.ExpiryMargin == 0 {
		o.ExpiryMargin = 14 * 24 * time.Hour
	}
	if o.MaxDatabaseAge == 0 {
		o.MaxDatabaseAge = 7 * 24 * time.Hour
	}
	if o.MaxSkew == 0 {
		o.MaxSkew = time.Minute
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: o.Timeout}
	}
}

// env is what every check sees.
type env struct {
	cfg  config.Config
	opts Options
	// running is true when a node answers on the data directory's admin
	// socket: the ports it holds are in use by this node.
	running bool
}

// checks are run in this order; each is one function.
var checks = []struct {
	name string
	run  func(ctx context.Context, e *env) []Finding
}{
	{"ports", checkPorts},
	{"dns", checkDNS},
	{"certificates", checkCertificates},
	{"smtp", checkSMTP},
	{"clamd", checkClamd},
	{"disk", checkDisk},
	{"clock", checkClock},
	{"permissions", checkPermissions},
}

// Run runs every check against cfg and returns the findings in order.
func Run(ctx context.Context, cfg config.Config, opts Options) []Finding {
	opts.defaults()
	e := &env{cfg: cfg, opts: opts}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	e.running = admin.Dial(cfg.Data).Do(actx, "GET", "/health", nil, nil) == nil
	cancel()
	var out []Finding
	for _, c := range checks {
		for _, f := range c.run(ctx, e) {
			f.Check = c.name
			out = append(out, f)
		}
	}
	return out
}

// Print writes the findings, problems with their fixes, and returns the
// number of problems.
func Print(w io.Writer, findings []Finding) (problems int) {
	for _, f := range findings {
		mark := "ok     "
		if f.Problem {
			mark = "PROBLEM"
			problems++
		}
		fmt.Fprintf(w, "%s %-12s %s\n", mark, f.Check, f.What)
		if f.Problem && f.Fix != "" {
			fmt.Fprintf(w, "        %-12s fix: %s\n", "", f.Fix)
		}
	}
	if problems == 0 {
		fmt.Fprintln(w, "no problem found")
	} else {
		fmt.Fprintf(w, "%d problem(s) found\n", problems)
	}
	return problems
}

// Main is `relais doctor`: it reads the configuration as `relais serve`
// does (flags, RELAIS_* environment, --config file), runs the checks and
// returns the exit status: 0 when no problem was found, 1 otherwise, 2
// for a usage error.
func Main(ctx context.Context, args, environ []string, stdout, stderr io.Writer, opts Options) int {
	cfg := config.Defaults()
	fs := cfg.Flags("relais doctor")
	fs.SetOutput(stderr)
	if err := config.Load(fs, args, environ); err != nil {
		// The conventions of every command: help exits 0, a usage error 2
		// with one line, a bad setting 1.
		return cli.Report(stderr, "relais doctor", err)
	}
	if Print(stdout, Run(ctx, cfg, opts)) > 0 {
		return 1
	}
	return 0
}

func ok(what string, args ...any) Finding {
	return Finding{What: fmt.Sprintf(what, args...)}
}

func problem(fix, what string, args ...any) Finding {
	return Finding{Problem: true, What: fmt.Sprintf(what, args...), Fix: fix}
}

// tlsOn reports whether the configuration serves HTTPS.
func tlsOn(cfg config.Config) bool { return cfg.TLS != "off" }

// usesACME reports whether certificates come from an ACME CA.
func usesACME(cfg config.Config) bool {
	return cfg.TLS == "acme" || cfg.TLS == "auto" && len(cfg.Domains) > 0
}

// quote joins names for a message.
func quote(names []string) string { return strings.Join(names, ", ") }
