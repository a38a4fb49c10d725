package tlsmgr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// provisionACME builds the manager's own certmagic Cache and Config (the
// package-level defaults are never touched), starts managing the domains in
// the background and waits briefly for certificates already in storage.
func (m *Manager) provisionACME(ctx context.Context) error {
	cfg := &m.cfg
	m.caURL = cfg.ACMECA
	if m.caURL == "" {
		m.caURL = certmagic.LetsEncryptProductionCA
	}
	u, err := url.Parse(m.caURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("acme CA %q: want an https:// directory URL", m.caURL)
	}
	var roots *x509.CertPool
	if cfg.ACMECARoot != "" {
		data, err := os.ReadFile(cfg.ACMECARoot)
		if err != nil {
			return fmt.Errorf("acme CA root: %w", err)
		}
		if roots, err = pemCertPool(data); err != nil {
			return fmt.Errorf("acme CA root %s: %w", cfg.ACMECARoot, err)
		}
	}

	storage := cfg.Storage
	if storage == nil {
		dir := filepath.Join(m.tlsDir, "acme")
		if err := mkdirPrivate(dir); err != nil {
			return err
		}
		storage = &certmagic.FileStorage{Path: dir}
	}
	wrapped, tracked := newTrackedStorage(storage)
	m.storage = tracked

	zl := newZapLogger(m.log)
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return m.magic, nil },
		Logger:           zl,
	})
	magic := certmagic.New(m.cache, certmagic.Config{
		Storage:    wrapped,
		Logger:     zl,
		OnEvent:    m.onEvent,
		DisableARI: cfg.disableARI,
		ShouldEmitFunc: func(event string) bool {
			return event == "cert_failed" || event == "cert_obtained"
		},
	})
	m.issuer = certmagic.NewACMEIssuer(magic, certmagic.ACMEIssuer{
		CA:                      m.caURL,
		Email:                   cfg.ACMEEmail,
		Agreed:                  true, // giving --domain is accepting the CA's terms
		TrustedRoots:            roots,
		AltHTTPPort:             cfg.AltHTTPPort,
		AltTLSALPNPort:          cfg.AltTLSALPNPort,
		DisableHTTPChallenge:    cfg.disableHTTPChallenge,
		DisableTLSALPNChallenge: cfg.disableTLSALPNChallenge,
		Logger:                  zl,
	})
	magic.Issuers = []certmagic.Issuer{m.issuer}
	m.magic = magic

	m.log.Info("managing certificates over ACME", "domains", m.domains, "ca", m.caURL)
	if err := magic.ManageAsync(m.ctx, m.domains); err != nil {
		return fmt.Errorf("acme: manage %v: %w", m.domains, err)
	}
	m.waitStored(ctx)
	if st := m.Status(); st.Temporary {
		m.log.Warn("no certificate from the ACME CA yet: serving a temporary certificate from the local CA until it is obtained",
			"domains", m.domains)
	}
	return nil
}

// waitStored waits until the certificates found in storage are in the
// cache (certmagic loads them in the background), so that a restarted node
// serves its previous certificate from the first handshake rather than the
// temporary one.
func (m *Manager) waitStored(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, storedLoadTimeout)
	defer cancel()
	issuerKey := m.issuer.IssuerKey()
	for _, d := range m.domains {
		if !m.magic.Storage.Exists(ctx, certmagic.StorageKeys.SiteCert(issuerKey, d)) {
			continue
		}
		for len(m.cache.AllMatchingCertificates(d)) == 0 {
			select {
			case <-ctx.Done():
				m.log.Warn("stored certificate not loaded in time", "domain", d)
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

// onEvent receives certmagic's events (those ShouldEmitFunc lets through).
// Failures are explained once, in the log and in Status, with what to fix.
// It runs in certmagic's background jobs, never in handshakes, so the DNS
// check of diagnose may take a moment.
func (m *Manager) onEvent(ctx context.Context, event string, data map[string]any) error {
	domain, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_failed":
		m.mu.Lock()
		closed := m.closed
		m.mu.Unlock()
		if closed {
			return nil // shutting down: cancelled, not failed
		}
		err, _ := data["error"].(error)
		if err == nil {
			err = errors.New("unknown error")
		}
		m.notifyFailure(domain, err)
		msg := m.explain(ctx, domain, renewal, err)
		m.setError(acmeErrorKeyPrefix+domain, msg)
		m.log.Error("ACME certificate not obtained", "domain", domain, "renewal", renewal,
			"ca", m.caURL, "err", err.Error(), "fix", msg)
	case "cert_obtained":
		m.clearError(acmeErrorKeyPrefix + domain)
		m.log.Info("ACME certificate obtained", "domain", domain, "renewal", renewal, "ca", m.caURL)
	}
	return nil
}

// explain turns an ACME failure into a message an operator can act on: what
// failed, the CA's own words, what to fix, and what the node does meanwhile.
func (m *Manager) explain(ctx context.Context, domain string, renewal bool, err error) string {
	verb := "obtain"
	if renewal {
		verb = "renew"
	}
	var hints []string
	if h := dnsHint(ctx, domain); h != "" {
		hints = append(hints, h)
	}
	if h := acmeHint(domain, m.caURL, err); h != "" {
		hints = append(hints, h)
	}
	serving := "a temporary certificate from its local CA (browsers will warn)"
	if len(m.cache.AllMatchingCertificates(domain)) > 0 {
		serving = "its current certificate"
	}
	msg := fmt.Sprintf("could not %s a certificate for %s from %s: %v.", verb, domain, m.caURL, err)
	if len(hints) > 0 {
		msg += " To fix: " + strings.Join(hints, " ")
	}
	return msg + " Meanwhile the node serves " + serving + " and retries automatically."
}

// dnsHint checks that domain resolves, and to an address of this machine.
func dnsHint(ctx context.Context, domain string) string {
	ctx, cancel := context.WithTimeout(ctx, diagnoseDNSTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", domain)
	if err != nil {
		return fmt.Sprintf("domain %s does not resolve (%v): create a DNS A (and AAAA) record pointing to this machine's public address.", domain, err)
	}
	local := localAddrs()
	var list []string
	for _, a := range addrs {
		a = a.Unmap()
		if local[a] {
			return ""
		}
		list = append(list, a.String())
	}
	return fmt.Sprintf("domain %s resolves to %s, which is not an address of this machine: correct the DNS record, or if the node is behind NAT or a firewall, forward ports 80 and 443 of that address to it.",
		domain, strings.Join(list, ", "))
}

func localAddrs() map[netip.Addr]bool {
	set := make(map[netip.Addr]bool)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return set
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			set[p.Addr().Unmap()] = true
		}
	}
	return set
}

// acmeHint explains the ACME problem or the transport error in err.
func acmeHint(domain, caURL string, err error) string {
	var p acme.Problem
	if errors.As(err, &p) {
		if p.Type != acme.ProblemTypeConnection && connectionFailure(p.Detail) {
			// Some CAs report a failed connection as unauthorized or tls.
			p.Type = acme.ProblemTypeConnection
		}
		switch p.Type {
		case acme.ProblemTypeDNS:
			return fmt.Sprintf("the CA could not resolve %s: create its DNS A/AAAA record.", domain)
		case acme.ProblemTypeConnection:
			return fmt.Sprintf("the CA could not connect to %s: make ports 80 (HTTP-01) and 443 (TLS-ALPN-01) reachable from the CA (firewall, port forwarding from the router) and check that %s points to this machine.", domain, domain)
		case acme.ProblemTypeUnauthorized, acme.ProblemTypeIncorrectResponse, acme.ProblemTypeTLS:
			return fmt.Sprintf("the CA reached a server for %s that did not answer its challenge: make ports 80 and 443 of %s reach this node, not another server or proxy.", domain, domain)
		case acme.ProblemTypeCAA:
			return fmt.Sprintf("a DNS CAA record of %s forbids this CA: add one that allows it.", domain)
		case acme.ProblemTypeRateLimited:
			return "the CA rate-limits this domain or account: nothing to do but wait."
		case acme.ProblemTypeRejectedIdentifier, acme.ProblemTypeUnsupportedIdentifier:
			return fmt.Sprintf("the CA refuses to issue for %s: use a public domain name, or an internal ACME CA (--acme-ca) for internal names.", domain)
		case acme.ProblemTypeInvalidContact, acme.ProblemTypeUnsupportedContact:
			return "the CA rejects the account's contact address: fix --acme-email."
		case acme.ProblemTypeExternalAccountRequired:
			return "the CA requires an external account binding, which this node does not support."
		}
		return ""
	}
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknown) || errors.As(err, &verify) {
		return fmt.Sprintf("the HTTPS certificate of the CA at %s is not trusted: give its root certificate with --acme-ca-root.", caURL)
	}
	var nerr net.Error
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) || errors.As(err, &nerr) {
		return fmt.Sprintf("this machine cannot reach the ACME CA at %s: check --acme-ca and that outbound HTTPS is allowed.", caURL)
	}
	return ""
}

// connectionFailure reports whether a CA's problem detail describes a
// connection that could not be made.
func connectionFailure(detail string) bool {
	d := strings.ToLower(detail)
	for _, w := range []string{"failed to connect", "connection refused", "timeout", "timed out", "no route to host", "network is unreachable", "connection reset"} {
		if strings.Contains(d, w) {
			return true
		}
	}
	return false
}

// renewACME forces the renewal of every domain's certificate and puts the
// new one in the cache in place of the old.
func (m *Manager) renewACME(ctx context.Context) error {
	for _, d := range m.domains {
		old := m.cache.AllMatchingCertificates(d)
		if err := m.renewOnce(ctx, d); err != nil {
			return fmt.Errorf("renew certificate for %s: %w", d, err)
		}
		cert, err := m.magic.CacheManagedCertificate(ctx, d)
		if err != nil {
			return fmt.Errorf("load renewed certificate for %s: %w", d, err)
		}
		var stale []string
		for _, c := range old {
			if c.Hash() != cert.Hash() {
				stale = append(stale, c.Hash())
			}
		}
		m.cache.Remove(stale)
		m.log.Info("ACME certificate renewed on demand", "domain", d,
			"not_after", cert.Leaf.NotAfter, "serial", cert.Leaf.SerialNumber.Text(16))
	}
	return nil
}

// renewOnce makes one forced renewal attempt for domain. certmagic's
// non-interactive renewal (the interactive one may prompt on stdin) retries
// failures after a minute and more; the first failure, seen through
// onEvent, ends the attempt instead, and is returned.
func (m *Manager) renewOnce(ctx context.Context, domain string) error {
	failed := make(chan error, 1)
	m.mu.Lock()
	m.failWaiters[domain] = append(m.failWaiters[domain], failed)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.failWaiters[domain] = slices.DeleteFunc(m.failWaiters[domain], func(c chan error) bool { return c == failed })
		m.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.magic.RenewCertAsync(ctx, domain, true) }()
	select {
	case err := <-done:
		return err
	case err := <-failed:
		cancel()
		<-done
		return err
	}
}

// notifyFailure passes a failure for domain to the Renew calls waiting.
func (m *Manager) notifyFailure(domain string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.failWaiters[domain] {
		select {
		case c <- err:
		default:
		}
	}
}
