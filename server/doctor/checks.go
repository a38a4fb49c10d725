package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"relais/server/mail"
	"relais/server/media/clamd"
)

// letsEncrypt is the ACME directory used when --acme-ca is not set (as
// in tlsmgr, through certmagic).
const letsEncrypt = "https://acme-v02.api.letsencrypt.org/directory"

// checkPorts: every listener of the configuration can be bound, or is
// bound by the node running on this data directory.
func checkPorts(_ context.Context, e *env) []Finding {
	type port struct{ flag, addr string }
	ports := []port{{"--listen", e.cfg.Listen}}
	if tlsOn(e.cfg) && (e.cfg.HTTPListen != "" || len(e.cfg.Domains) > 0) {
		addr := e.cfg.HTTPListen
		if addr == "" {
			addr = ":80"
		}
		ports = append(ports, port{"--http-listen", addr})
	}
	if e.cfg.MetricsListen != "" {
		ports = append(ports, port{"--metrics-listen", e.cfg.MetricsListen})
	}
	var out []Finding
	for _, p := range ports {
		ln, err := net.Listen("tcp", p.addr)
		switch {
		case err == nil:
			ln.Close()
			out = append(out, ok("%s (%s) can be bound", p.addr, p.flag))
		case errors.Is(err, syscall.EADDRINUSE) && e.running:
			out = append(out, ok("%s (%s) is bound by the node running on %s", p.addr, p.flag, e.cfg.Data))
		case errors.Is(err, syscall.EADDRINUSE):
			_, portNum, _ := net.SplitHostPort(p.addr)
			out = append(out, problem(fmt.Sprintf("find the program with `ss -ltnp 'sport = :%s'` and stop it, or set another %s", portNum, p.flag),
				"%s (%s) is already in use by another program", p.addr, p.flag))
		case errors.Is(err, syscall.EACCES):
			out = append(out, problem("ports below 1024 need CAP_NET_BIND_SERVICE: the packaged systemd unit grants it (AmbientCapabilities); by hand: setcap cap_net_bind_service=+ep $(command -v relais)",
				"%s (%s) cannot be bound: permission denied", p.addr, p.flag))
		default:
			out = append(out, problem("check the address of "+p.flag+" (host:port, the host an address of this machine)",
				"%s (%s) cannot be bound: %v", p.addr, p.flag, err))
		}
	}
	return out
}

// checkDNS: each --domain resolves.
func checkDNS(ctx context.Context, e *env) []Finding {
	if len(e.cfg.Domains) == 0 {
		return []Finding{ok("no --domain: nothing to resolve")}
	}
	var out []Finding
	for _, d := range e.cfg.Domains {
		cctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
		addrs, err := e.opts.Resolver.LookupHost(cctx, d)
		cancel()
		if err != nil || len(addrs) == 0 {
			out = append(out, problem("create an A (and AAAA) record for "+d+" pointing to this machine's public address; ACME validates through it",
				"%s does not resolve: %v", d, err))
			continue
		}
		out = append(out, ok("%s resolves to %s", d, quote(addrs)))
	}
	return out
}

// certFile is one certificate the node serves or keeps.
type certFile struct {
	path string
	cert *x509.Certificate
}

// storedCerts returns the certificates of the configuration: the files
// of --tls files, or those the node keeps under DATA/tls (local CA and
// ACME). Files that do not parse are returned as problems.
func storedCerts(e *env) ([]certFile, []Finding) {
	var paths []string
	switch {
	case !tlsOn(e.cfg):
		return nil, nil
	case e.cfg.TLS == "files":
		if e.cfg.TLSCert != "" {
			paths = []string{e.cfg.TLSCert}
		}
	default:
		root := filepath.Join(e.cfg.Data, "tls")
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".crt") {
				paths = append(paths, p)
			}
			return nil
		})
	}
	var certs []certFile
	var bad []Finding
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			bad = append(bad, problem("check the path and that the node's user may read it", "certificate %s cannot be read: %v", p, err))
			continue
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			bad = append(bad, problem("replace it with a PEM certificate chain (leaf first)", "%s holds no PEM certificate", p))
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			bad = append(bad, problem("replace it with a valid certificate", "%s does not parse: %v", p, err))
			continue
		}
		certs = append(certs, certFile{p, c})
	}
	return certs, bad
}

// checkCertificates: the certificates are valid now and not about to
// expire, and in files mode the key matches and the domains are covered.
func checkCertificates(_ context.Context, e *env) []Finding {
	if !tlsOn(e.cfg) {
		return []Finding{ok("--tls off: certificates are the reverse proxy's")}
	}
	certs, out := storedCerts(e)
	renew := "restart the node: it renews its local certificates at start"
	switch {
	case e.cfg.TLS == "files":
		renew = "install a renewed certificate at --tls-cert and send SIGHUP (systemctl reload relais)"
		if e.cfg.TLSCert == "" || e.cfg.TLSKey == "" {
			return append(out, problem("give both --tls-cert and --tls-key", "--tls files without --tls-cert or --tls-key"))
		}
		if _, err := tls.LoadX509KeyPair(e.cfg.TLSCert, e.cfg.TLSKey); err != nil {
			out = append(out, problem("give the private key of this certificate in --tls-key", "%s and %s are not a pair: %v", e.cfg.TLSCert, e.cfg.TLSKey, err))
		}
		for _, c := range certs {
			for _, d := range e.cfg.Domains {
				if err := c.cert.VerifyHostname(d); err != nil {
					out = append(out, problem("get a certificate that names "+d, "%s does not cover %s", c.path, d))
				}
			}
		}
	case usesACME(e.cfg):
		renew = "the node renews ACME certificates 30 days before expiry: see why it failed in `journalctl -u relais` (ports 80/443 reachable from the internet, DNS)"
	}
	if len(certs) == 0 && len(out) == 0 {
		return []Finding{ok("no certificate stored yet: the node creates or obtains them at start")}
	}
	now := e.opts.Now()
	for _, c := range certs {
		name := fmt.Sprintf("%s (%s, issued by %s)", c.path, c.cert.Subject.CommonName, c.cert.Issuer.CommonName)
		switch left := c.cert.NotAfter.Sub(now); {
		case left <= 0:
			out = append(out, problem(renew, "%s expired on %s", name, c.cert.NotAfter.Format(time.DateOnly)))
		case left < e.opts.ExpiryMargin:
			out = append(out, problem(renew, "%s expires in %d days (%s)", name, int(left.Hours()/24), c.cert.NotAfter.Format(time.DateOnly)))
		case now.Before(c.cert.NotBefore):
			out = append(out, problem("check the clock (see the clock check)", "%s is valid only from %s", name, c.cert.NotBefore.Format(time.RFC3339)))
		default:
			out = append(out, ok("%s valid until %s (%d days)", name, c.cert.NotAfter.Format(time.DateOnly), int(left.Hours()/24)))
		}
	}
	return out
}

// checkSMTP: the relay accepts a connection, STARTTLS (or TLS) and the
// configured credentials, exactly as the node's mails will use them.
func checkSMTP(ctx context.Context, e *env) []Finding {
	c := e.cfg
	if c.SMTPHost == "" {
		return []Finding{ok("no --smtp-host: an operator approves registrations (relais admin approve)")}
	}
	s, err := mail.NewSMTP(mail.SMTPConfig{Host: c.SMTPHost, Port: c.SMTPPort, Security: c.SMTPSecurity,
		Username: c.SMTPUser, Password: c.SMTPPassword, From: c.SMTPFrom, TLSConfig: e.opts.SMTPTLS, Timeout: e.opts.Timeout})
	if err != nil {
		return []Finding{problem("fix the --smtp-* settings", "SMTP settings: %v", err)}
	}
	if err := s.Check(ctx); err != nil {
		msg := err.Error()
		fix := "check --smtp-host and --smtp-port, and that a firewall lets this machine reach the relay"
		switch {
		case strings.Contains(msg, ": authenticate: "):
			fix = "the relay refused the credentials: check --smtp-user and --smtp-password (RELAIS_SMTP_PASSWORD)"
		case strings.Contains(msg, "STARTTLS") || strings.Contains(msg, "TLS handshake") || strings.Contains(msg, "certificate"):
			fix = "check --smtp-security (starttls on 587, tls on 465) and that the relay's certificate is valid for --smtp-host"
		}
		return []Finding{problem(fix, "SMTP relay %s: %v", c.SMTPHost, err)}
	}
	auth := "without authentication"
	if c.SMTPUser != "" {
		auth = "authenticated"
	}
	return []Finding{ok("SMTP relay %s answers, %s, %s", c.SMTPHost, strings.ToUpper(orDefault(c.SMTPSecurity, mail.SecurityStartTLS)), auth)}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkClamd: clamd answers PING and VERSION, and its signatures are
// recent.
func checkClamd(ctx context.Context, e *env) []Finding {
	if e.cfg.Clamd == "" {
		return []Finding{ok("no --clamd: files are checked by type and size only, not by an antivirus")}
	}
	cl, err := clamd.Parse(e.cfg.Clamd)
	if err != nil {
		return []Finding{problem("give unix:///run/clamav/clamd.ctl or tcp://127.0.0.1:3310", "--clamd: %v", err)}
	}
	cl.Timeout = e.opts.Timeout
	if err := cl.Ping(ctx); err != nil {
		return []Finding{problem("start clamd (systemctl start clamav-daemon) and check that --clamd is its socket (LocalSocket in clamd.conf)",
			"clamd at %s does not answer: %v", e.cfg.Clamd, err)}
	}
	v, err := cl.Version(ctx)
	if err != nil {
		return []Finding{problem("check that --clamd is clamd's socket", "clamd at %s: VERSION: %v", e.cfg.Clamd, err)}
	}
	// "ClamAV 1.4.6/27000/Mon Nov 23 08:00:00 2026": the database's
	// version and date follow the engine's.
	parts := strings.SplitN(v, "/", 3)
	if len(parts) < 3 {
		return []Finding{ok("clamd at %s answers: %s (no official database loaded: its age is unknown)", e.cfg.Clamd, v)}
	}
	built, err := time.Parse(time.ANSIC, strings.TrimSpace(parts[2]))
	if err != nil {
		return []Finding{problem("update ClamAV", "clamd at %s: cannot read the database date of %q", e.cfg.Clamd, v)}
	}
	if age := e.opts.Now().Sub(built); age > e.opts.MaxDatabaseAge {
		return []Finding{problem("update the signatures: freshclam (systemctl status clamav-freshclam), or a local mirror without internet",
			"clamd's signatures are %d days old (%s)", int(age.Hours()/24), v)}
	}
	return []Finding{ok("clamd at %s answers: %s", e.cfg.Clamd, v)}
}

// checkDisk: the disk of the data directory has room.
func checkDisk(_ context.Context, e *env) []Finding {
	dir := e.cfg.Data
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return []Finding{problem("check that the data directory exists and is readable", "free space of %s: %v", dir, err)}
	}
	free, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize)
	if need := e.opts.MinFree(total); free < need {
		return []Finding{problem("free space on that disk (old backups, logs) or move --data to a larger one: the store refuses writes when the disk is full",
			"%s has %s free of %s, under %s", dir, size(free), size(total), size(need))}
	}
	return []Finding{ok("%s has %s free of %s", dir, size(free), size(total))}
}

func size(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// checkClock: the clock agrees with an HTTPS peer's (the ACME CA, or
// Options.TimeURL) and no certificate is valid only in the future.
func checkClock(ctx context.Context, e *env) []Finding {
	now := e.opts.Now()
	fix := "turn on time synchronisation: timedatectl set-ntp true (systemd-timesyncd or chrony)"
	url := e.opts.TimeURL
	if url == "" && usesACME(e.cfg) {
		url = orDefault(e.cfg.ACMECA, letsEncrypt)
	}
	if url != "" {
		cctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(cctx, http.MethodHead, url, nil)
		if err != nil {
			return []Finding{problem("check --acme-ca", "clock: %v", err)}
		}
		sent := time.Now()
		resp, err := e.opts.HTTP.Do(req)
		if err != nil {
			return []Finding{problem("let this machine reach "+url+" over HTTPS (the node needs it for its certificates)", "clock: cannot ask %s the time: %v", url, err)}
		}
		resp.Body.Close()
		peer, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			return []Finding{problem(fix, "clock: %s sent no usable Date header", url)}
		}
		// The peer's second is rounded down; the request took a while.
		skew := now.Add(time.Since(sent) / 2).Sub(peer.Add(time.Second / 2))
		if skew.Abs() > e.opts.MaxSkew {
			return []Finding{problem(fix, "the clock is off by %s against %s", skew.Round(time.Second), url)}
		}
		return []Finding{ok("the clock agrees with %s (within %s)", url, e.opts.MaxSkew)}
	}
	certs, _ := storedCerts(e)
	for _, c := range certs {
		if now.Add(e.opts.MaxSkew).Before(c.cert.NotBefore) {
			return []Finding{problem(fix, "the clock is behind: %s was issued for %s onwards", c.path, c.cert.NotBefore.Format(time.RFC3339))}
		}
	}
	if len(certs) > 0 {
		return []Finding{ok("the clock is not behind the certificates' issuance (no time server to compare with: keep NTP on)")}
	}
	return []Finding{ok("no time reference configured (no ACME, no certificate yet): keep NTP on")}
}

// checkPermissions: the data directory is private to the node's user,
// and so are its secrets (store, keys).
func checkPermissions(_ context.Context, e *env) []Finding {
	dir := e.cfg.Data
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []Finding{ok("%s does not exist yet: the node creates it with mode 0700", dir)}
	}
	if err != nil {
		return []Finding{problem("check the path of --data", "%s: %v", dir, err)}
	}
	var out []Finding
	if st, isUnix := fi.Sys().(*syscall.Stat_t); isUnix && int(st.Uid) != os.Geteuid() {
		out = append(out, problem(fmt.Sprintf("run the node (and doctor) as the data's owner, or give it to the node's user: chown -R USER %s", dir),
			"%s belongs to uid %d, not to this user (uid %d)", dir, st.Uid, os.Geteuid()))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		out = append(out, problem("chmod 700 "+dir, "%s has mode %04o: others may read the store and keys", dir, perm))
	}
	// The secrets below it: the store and private keys. Certificates and
	// media are not secrets of their own (media are walked by nobody here:
	// there may be many).
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && d.Name() == "media" && filepath.Dir(p) == dir {
			return fs.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(p, ".db") || strings.HasSuffix(p, ".key")) {
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().Perm()&0o077 != 0 {
			out = append(out, problem("chmod 600 "+p, "%s has mode %04o: readable beyond the node's user", p, info.Mode().Perm()))
		}
		return nil
	})
	if len(out) == 0 {
		out = append(out, ok("%s is private (mode %04o, this user's)", dir, fi.Mode().Perm()))
	}
	return out
}
