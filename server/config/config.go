// Package config holds the node's settings and loads them from, in order
// of precedence, command-line flags, RELAIS_* environment variables, an
// optional configuration file and built-in defaults.
package config

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config is everything `relais serve` can be told.
type Config struct {
	Data       string
	Listen     string
	HTTPListen string
	// MetricsListen is the address of the Prometheus listener; "" is none.
	MetricsListen string
	PublicURL     string
	Name          string

	TLS        string
	Domains    List
	ACMECA     string
	ACMECARoot string
	ACMEEmail  string
	TLSCert    string
	TLSKey     string

	AllowedDomains  List
	AccountValidity Duration
	SessionLifetime Duration
	SessionMaxAge   Duration
	RateLimits      bool
	TrustProxy      bool

	SMTPHost     string
	SMTPPort     int
	SMTPSecurity string
	SMTPUser     string
	SMTPPassword string
	SMTPFrom     string

	Clamd         string
	ClamdDown     string
	MaxUpload     int64
	UserQuota     int64
	ScanEncrypted bool

	LogLevel  string
	LogFormat string

	// Federation turns on links to peered administrations; a listen or
	// endpoint address implies it.
	Federation         bool
	FederationListen   string
	FederationEndpoint string
}

// Defaults returns the built-in settings: a node that starts anywhere with
// its data in ./relais-data and HTTPS from its own local CA.
func Defaults() Config {
	return Config{
		Data:            "./relais-data",
		Listen:          ":8443",
		TLS:             "auto",
		RateLimits:      true,
		SessionLifetime: Duration(30 * 24 * time.Hour),
		SMTPSecurity:    "starttls",
		ClamdDown:       "hold",
		MaxUpload:       100 << 20,
		UserQuota:       2 << 30,
		LogLevel:        "info",
		LogFormat:       "text",
	}
}

// Flags binds c to a new flag set for `relais serve`, with one line of
// help per option. The flag names are also the keys of the configuration
// file and, upper-cased with RELAIS_ and '_' for '-', of the environment.
func (c *Config) Flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.String("config", "", "read settings from this file (lines of `key = value`, keys as the flag names)")
	fs.StringVar(&c.Data, "data", c.Data, "data directory (created with mode 0700): store, certificates, files")
	fs.StringVar(&c.Listen, "listen", c.Listen, "address of the HTTPS (or, with --tls off, HTTP) listener")
	fs.StringVar(&c.HTTPListen, "http-listen", c.HTTPListen, "address of the plain HTTP listener that redirects to HTTPS and answers ACME challenges (default :80 with --domain, none otherwise)")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "address of a separate plain HTTP listener serving /metrics (Prometheus), e.g. 127.0.0.1:9090; none by default, and never on the public listener")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the node's address as users reach it, for links in e-mails (default: https://DOMAIN, or derived from --listen)")
	fs.StringVar(&c.Name, "name", c.Name, "the service's name as users see it in the web client and e-mails")
	fs.StringVar(&c.TLS, "tls", c.TLS, "TLS mode: auto (ACME with --domain, else a local CA), acme, local, files, off (plain HTTP behind a proxy)")
	fs.Var(&c.Domains, "domain", "public DNS name(s) of the node, comma-separated: certificates come from ACME")
	fs.StringVar(&c.ACMECA, "acme-ca", c.ACMECA, "ACME directory URL (default Let's Encrypt)")
	fs.StringVar(&c.ACMECARoot, "acme-ca-root", c.ACMECARoot, "PEM file of the root certificate of an internal ACME CA")
	fs.StringVar(&c.ACMEEmail, "acme-email", c.ACMEEmail, "contact address given to the ACME CA")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "certificate chain PEM file (--tls files); reloaded on SIGHUP and when it changes")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "private key PEM file (--tls files)")
	fs.Var(&c.AllowedDomains, "allowed-domains", "e-mail domains allowed to register, comma-separated: a.gouv.fr is that domain, *.gouv.fr its sub-domains")
	fs.Var(&c.AccountValidity, "account-validity", "accounts expire after this long unless renewed by e-mail (e.g. 365d); 0 for never")
	fs.Var(&c.SessionLifetime, "session-lifetime", "a session (signed-in device) unused for this long is dead (e.g. 30d)")
	fs.Var(&c.SessionMaxAge, "session-max-age", "a session older than this is dead even in use, its device must sign in again (e.g. 180d); 0 for no maximum")
	fs.Var(onOff{&c.RateLimits}, "rate-limits", "on or off: rate limits on sign-in, registration, websocket frames and KeyPackage claims (off only for tests and benchmarks)")
	fs.BoolVar(&c.TrustProxy, "trust-proxy", c.TrustProxy, "take client addresses from X-Forwarded-For (only behind your own reverse proxy)")
	fs.StringVar(&c.SMTPHost, "smtp-host", c.SMTPHost, "SMTP relay for verification and invitation e-mails; without one, an operator approves registrations")
	fs.IntVar(&c.SMTPPort, "smtp-port", c.SMTPPort, "SMTP relay port (default 587 with starttls, 465 with tls)")
	fs.StringVar(&c.SMTPSecurity, "smtp-security", c.SMTPSecurity, "starttls, tls (implicit) or none (loopback relay only)")
	fs.StringVar(&c.SMTPUser, "smtp-user", c.SMTPUser, "SMTP user name (AUTH PLAIN over TLS)")
	fs.StringVar(&c.SMTPPassword, "smtp-password", c.SMTPPassword, "SMTP password (prefer RELAIS_SMTP_PASSWORD or the configuration file)")
	fs.StringVar(&c.SMTPFrom, "smtp-from", c.SMTPFrom, "sender address of the node's e-mails")
	fs.StringVar(&c.Clamd, "clamd", c.Clamd, "ClamAV daemon to scan files with: unix:///run/clamav/clamd.ctl or tcp://127.0.0.1:3310")
	fs.StringVar(&c.ClamdDown, "clamd-down", c.ClamdDown, "when clamd is unreachable: hold (files wait, scanned when it returns) or reject")
	fs.Int64Var(&c.MaxUpload, "max-upload", c.MaxUpload, "largest file, in bytes")
	fs.Int64Var(&c.UserQuota, "user-quota", c.UserQuota, "bytes of files one user may have stored")
	fs.BoolVar(&c.ScanEncrypted, "scan-encrypted", c.ScanEncrypted, "ask clients of encrypted rooms to let the antivirus open their files (sealed to the node's scanner key)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "text or json")
	fs.Var(onOff{&c.Federation}, "federation", "on or off: links to peered administrations (relais federation …); on by itself with --federation-listen or --federation-endpoint, a node behind NAT sets only this and dials out")
	fs.StringVar(&c.FederationListen, "federation-listen", c.FederationListen, "address of the federation link listener (mutual TLS, pinned keys), e.g. :7422; none by default: the node only dials its peers")
	fs.StringVar(&c.FederationEndpoint, "federation-endpoint", c.FederationEndpoint, "host:port peers dial to reach the federation listener, as peering tokens advertise it (default: --federation-listen when it names a host)")
	return fs
}

// Load parses args into c with fs (from Flags), then fills what the
// command line did not set from the environment and from the --config
// file, in that order.
func Load(fs *flag.FlagSet, args []string, env []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	apply := func(source, name, value string) error {
		if set[name] {
			return nil
		}
		if fs.Lookup(name) == nil {
			return fmt.Errorf("%s: unknown setting %q", source, name)
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s: %s: %w", source, name, err)
		}
		set[name] = true
		return nil
	}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		name, isOurs := strings.CutPrefix(k, "RELAIS_")
		if !ok || !isOurs {
			continue
		}
		name = strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if err := apply("environment", name, v); err != nil {
			return err
		}
	}
	if path := fs.Lookup("config").Value.String(); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("configuration file: %w", err)
		}
		defer f.Close()
		values, err := parseFile(f)
		if err != nil {
			return fmt.Errorf("configuration file %s: %w", path, err)
		}
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if err := apply("configuration file "+path, k, values[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseFile reads `key = value` lines; blank lines and lines starting
// with # are skipped; values may be quoted.
func parseFile(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: expected key = value", n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"') {
			uq, err := strconv.Unquote(v)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			v = uq
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("line %d: %s set twice", n, k)
		}
		out[k] = v
	}
	return out, sc.Err()
}

// List is a comma-separated flag that may also be repeated.
type List []string

func (l *List) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value.
func (l *List) Set(s string) error {
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// Duration is a time.Duration flag that also accepts days ("365d").
type Duration time.Duration

func (d *Duration) String() string { return time.Duration(*d).String() }

// Set implements flag.Value.
func (d *Duration) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return errors.New("expected a number of days such as 365d")
		}
		*d = Duration(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return errors.New("expected a duration such as 365d or 720h")
	}
	*d = Duration(v)
	return nil
}

type onOff struct{ b *bool }

func (o onOff) String() string {
	if o.b != nil && *o.b {
		return "on"
	}
	return "off"
}

func (o onOff) Set(s string) error {
	switch strings.ToLower(s) {
	case "on", "true", "yes", "1":
		*o.b = true
	case "off", "false", "no", "0":
		*o.b = false
	default:
		return errors.New("expected on or off")
	}
	return nil
}
