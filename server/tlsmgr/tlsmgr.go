// Package tlsmgr provides the node's HTTPS certificates.
//
// A Manager runs in one of four modes:
//
//   - acme: certificates for public domain names, obtained and renewed
//     automatically over ACME (HTTP-01 and TLS-ALPN-01) with certmagic, from
//     Let's Encrypt or an administration's internal ACME CA. Certificates and
//     accounts live in a certmagic.Storage (by default under the data
//     directory). Until the CA has issued a certificate, and whenever it fails,
//     the node keeps serving: its previous certificate, or a temporary one
//     from its local CA, while Status and the log say what to fix.
//   - local (the default without a domain): a local CA created on first start
//     in the data directory signs a certificate for the node's host names and
//     addresses; its fingerprint is logged and exposed so it can be pinned or
//     installed.
//   - files: a certificate and key given by the operator, re-read on Reload
//     (SIGHUP) and when the files change.
//   - off: plain HTTP, for a node behind a TLS-terminating reverse proxy.
//
// The node serves TLSConfig on its HTTPS listener, HTTPHandler on its port-80
// listener (ACME HTTP-01 challenges and redirects to HTTPS), wraps its
// application handler with HSTS, and publishes Status on its health endpoint.
package tlsmgr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
)

// Modes of a Manager (Config.Mode).
const (
	ModeAuto  = "auto"  // ModeACME when Config.Domains is set, else ModeLocal
	ModeACME  = "acme"  // certificates from an ACME CA for Config.Domains
	ModeLocal = "local" // certificates from the node's own local CA
	ModeFiles = "files" // certificate and key files given by the operator
	ModeOff   = "off"   // no TLS: plain HTTP behind a reverse proxy
)

// HSTSHeader is the Strict-Transport-Security value HSTS sets: one year, not
// for subdomains (a town hall's other sites are not ours to constrain).
const HSTSHeader = "max-age=31536000"

// Timing of the background work.
const (
	defaultPollInterval = 2 * time.Second  // files mode: how often the files are read
	localCheckInterval  = 12 * time.Hour   // local certificate: renewal check
	storedLoadTimeout   = 10 * time.Second // acme: wait for stored certificates at start
	storageDrainTimeout = 10 * time.Second // Close: wait for certmagic's work
	diagnoseDNSTimeout  = 3 * time.Second  // acme failure: DNS check of the domain
)

// Sources of Status.LastError.
const (
	acmeErrorKeyPrefix = "acme:" // + domain
	filesErrorKey      = "files"
	localErrorKey      = "local"
)

// Config configures a Manager. The zero value (with DataDir set) is the
// default mode: a local CA and a certificate for the machine's names.
type Config struct {
	// Mode is one of the Mode constants; "" means ModeAuto.
	Mode string

	// Domains are the public names to obtain certificates for (acme mode).
	Domains []string

	// DataDir is the node's data directory; TLS state lives under
	// DataDir/tls (mode 0700): the local CA in tls/local, ACME certificates
	// and accounts in tls/acme. Required except in files and off modes.
	DataDir string

	// ACMECA is the ACME directory URL; default Let's Encrypt production.
	ACMECA string
	// ACMECARoot is a PEM file of root certificates to trust for the ACME
	// CA's own HTTPS endpoint (an administration's internal CA).
	ACMECARoot string
	// ACMEEmail is the contact address of the ACME account (optional).
	ACMEEmail string
	// Storage holds ACME certificates, keys and accounts; nil means a
	// certmagic.FileStorage under DataDir/tls/acme. Every node of a cluster
	// must share one Storage.
	Storage certmagic.Storage

	// CertFile and KeyFile are the PEM certificate chain and key (files mode).
	CertFile, KeyFile string

	// HostNames are names and IP addresses the local certificate covers in
	// addition to the defaults: the host name, localhost, 127.0.0.1, ::1 and
	// the addresses of the machine's interfaces. In acme mode they, with the
	// domains, name the temporary certificate served until the CA issues one.
	HostNames []string

	// AltHTTPPort and AltTLSALPNPort are the local ports of the node's HTTP
	// listener (serving HTTPHandler) and HTTPS listener (serving TLSConfig)
	// when they are not 80 and 443, for example behind a port forward or in
	// tests. The CA always validates on 80 and 443 of the domain's address
	// (a test CA may be pointed elsewhere). certmagic first tries to bind
	// these ports itself and, finding them in use, relies on the node's
	// listeners: bind them before calling New.
	AltHTTPPort, AltTLSALPNPort int

	// RedirectPort is the HTTPS port that HTTPHandler redirects to; 0 means
	// 443 (no port in the URL).
	RedirectPort int

	// Logger receives the manager's logs and certmagic's; nil means
	// slog.Default(). A "component" attribute is added.
	Logger *slog.Logger

	// Now returns the current time for the local CA and the files checks;
	// nil means time.Now. (certmagic uses the real clock.)
	Now func() time.Time

	// Test hooks.
	pollInterval            time.Duration // files watcher; 0 means defaultPollInterval
	localCheck              time.Duration // local certificate check; 0 means localCheckInterval
	disableHTTPChallenge    bool
	disableTLSALPNChallenge bool
	// disableARI: pebble v2.10.1 indexes certificates by the minimal hex of
	// their serial but reads ARI CertIDs as DER content octets, so about one
	// renewal in 256 (serials needing a leading zero) fails to find the
	// replaced certificate. Tests turn ARI off; real CAs follow RFC 9773.
	disableARI bool
}

// Status is the state of the certificates, for the health endpoint and the
// setup page. It is ready for encoding/json.
type Status struct {
	// Mode is the effective mode: acme, local, files or off.
	Mode string `json:"mode"`
	// Names are the names the served certificates cover.
	Names []string `json:"names,omitempty"`
	// NotAfter is the earliest expiry among the served certificates.
	NotAfter time.Time `json:"not_after,omitzero"`
	// Issuer is the common name of the issuer of that certificate.
	Issuer string `json:"issuer,omitempty"`
	// Serial is that certificate's serial number, in hex.
	Serial string `json:"serial,omitempty"`
	// Temporary is true in acme mode while some domain has no certificate
	// from the CA yet and the local CA's certificate is served instead.
	Temporary bool `json:"temporary,omitempty"`
	// LastError says what went wrong and what to fix; empty when healthy.
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt is when LastError was last set.
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// CAFingerprint is the SHA-256 fingerprint of the local CA (local mode).
	CAFingerprint string `json:"ca_fingerprint,omitempty"`
	// SPKIPin is the pin of the served certificate's key, for curl
	// --pinnedpubkey (local mode).
	SPKIPin string `json:"spki_pin,omitempty"`
}

// Manager provides the node's certificates in one mode. Its methods are
// safe for concurrent use.
type Manager struct {
	cfg      Config
	mode     string
	domains  []string // acme mode, normalized
	names    []string // local certificate's names, normalized
	required []string // names the local CA must permit: configured ones, not interface addresses
	tlsDir   string
	log      *slog.Logger
	now      func() time.Time

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// cert is the certificate served in local and files modes, and the
	// temporary one in acme mode.
	cert    atomic.Pointer[tls.Certificate]
	local   atomic.Pointer[localCA]
	localMu sync.Mutex // one CA check and issuance at a time

	// acme mode
	cache   *certmagic.Cache
	magic   *certmagic.Config
	issuer  *certmagic.ACMEIssuer
	storage *trackedStorage
	caURL   string

	// files mode
	reloadMu  sync.Mutex
	filesSeen string // contents last loaded or rejected

	mu          sync.Mutex
	errs        map[string]statusError  // by source: acme:<domain>, files, local
	failWaiters map[string][]chan error // acme: Renew calls, by domain
	closed      bool

	closeOnce sync.Once
}

type statusError struct {
	msg string
	at  time.Time
}

// New provisions a Manager from cfg: it validates the configuration,
// creates or loads the local CA, loads the files, or starts ACME management
// in the background. ctx bounds provisioning only (loading stored ACME
// certificates); background work runs until Close.
//
// In acme mode New returns without waiting for the CA: until a certificate
// is obtained, handshakes get a temporary certificate from the local CA and
// Status reports Temporary. Bind the HTTP and HTTPS listeners before New
// (see Config.AltHTTPPort).
func New(ctx context.Context, cfg Config) (*Manager, error) {
	m := &Manager{cfg: cfg, errs: make(map[string]statusError), failWaiters: make(map[string][]chan error)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if err := m.provision(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Manager) provision(ctx context.Context) error {
	cfg := &m.cfg
	m.log = cfg.Logger
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "tlsmgr")
	m.now = cfg.Now
	if m.now == nil {
		m.now = time.Now
	}
	if cfg.pollInterval <= 0 {
		cfg.pollInterval = defaultPollInterval
	}

	m.mode = cfg.Mode
	if m.mode == "" || m.mode == ModeAuto {
		m.mode = ModeLocal
		if len(cfg.Domains) > 0 {
			m.mode = ModeACME
		}
	}
	switch m.mode {
	case ModeACME, ModeLocal, ModeFiles, ModeOff:
	default:
		return fmt.Errorf("tls mode %q: want one of auto, acme, local, files, off", cfg.Mode)
	}

	if m.mode == ModeACME || m.mode == ModeLocal {
		if cfg.DataDir == "" {
			return fmt.Errorf("tls mode %s: no data directory", m.mode)
		}
		m.tlsDir = filepath.Join(cfg.DataDir, "tls")
		if err := mkdirPrivate(m.tlsDir); err != nil {
			return err
		}
	}

	switch m.mode {
	case ModeACME:
		if len(cfg.Domains) == 0 {
			return errors.New("tls mode acme: no domain (give --domain)")
		}
		m.domains = normalizeNames(cfg.Domains)
		for _, d := range m.domains {
			if !certmagic.SubjectQualifiesForCert(d) {
				return fmt.Errorf("tls mode acme: %q is not a valid domain name", d)
			}
		}
		m.required = normalizeNames(slices.Concat(m.domains, baseHostNames(), cfg.HostNames))
		m.names = normalizeNames(slices.Concat(m.required, interfaceAddrs()))
		if err := m.provisionLocal(); err != nil {
			return err
		}
		return m.provisionACME(ctx)
	case ModeLocal:
		// --domain in local mode names the node without ACME: its
		// certificate covers the name and the CA permits it.
		m.domains = normalizeNames(cfg.Domains)
		m.required = normalizeNames(slices.Concat(m.domains, baseHostNames(), cfg.HostNames))
		m.names = normalizeNames(slices.Concat(m.required, interfaceAddrs()))
		return m.provisionLocal()
	case ModeFiles:
		m.names = normalizeNames(cfg.HostNames)
		return m.provisionFiles()
	}
	m.log.Info("TLS is off: serving plain HTTP; only safe behind a reverse proxy that terminates TLS")
	return nil
}

// mkdirPrivate creates dir with mode 0700, or restricts it to 0700.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create tls directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("restrict tls directory: %w", err)
	}
	return nil
}

// provisionLocal loads or creates the local CA and the node certificate,
// and starts their renewal check.
func (m *Manager) provisionLocal() error {
	dir := filepath.Join(m.tlsDir, "local")
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	if err := m.refreshLocal(false); err != nil {
		return err
	}
	if ca := m.local.Load(); m.mode == ModeLocal {
		m.log.Info("local CA: pin the node's key or trust this CA (it can only vouch for the node's names)",
			"ca", ca.cert.Subject.CommonName, "ca_fingerprint", ca.fingerprint(),
			"ca_not_after", ca.cert.NotAfter, "spki_pin", m.SPKIPin(),
			"ca_file", filepath.Join(dir, localCACertFile))
	}
	m.wg.Add(1)
	go m.localLoop()
	return nil
}

// ensureLocalCA loads the local CA, or creates one when there is none or
// the stored one is unfit: expiring, without name constraints (an older
// version's), or not permitting a configured name. A CA is replaced rather
// than kept with a warning because an unconstrained CA that users installed
// lets its key impersonate any website: only a new one ends that, and the
// log tells the operator to have users remove the old one.
func (m *Manager) ensureLocalCA() (*localCA, error) {
	now := m.now()
	ca := m.local.Load()
	dir := filepath.Join(m.tlsDir, "local")
	if ca == nil {
		var err error
		if ca, err = loadLocalCA(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("local CA: %w", err)
		}
	}
	why := ""
	if ca != nil {
		if why = ca.unfit(m.required, now); why == "" {
			if left := ca.cert.NotAfter.Sub(now); left < localCAWarn && m.mode == ModeLocal {
				m.log.Warn("the local CA expires soon: a new one will replace it and users will have to trust it (or the new pin) again",
					"ca_fingerprint", ca.fingerprint(), "ca_not_after", ca.cert.NotAfter)
			}
			m.local.Store(ca)
			return ca, nil
		}
	}
	host, _ := os.Hostname()
	fresh, err := createLocalCA(dir, host, m.names, now)
	if err != nil {
		return nil, fmt.Errorf("local CA: %w", err)
	}
	m.local.Store(fresh)
	switch {
	case ca == nil:
		m.log.Info("created local CA", "ca_fingerprint", fresh.fingerprint(), "permitted", m.names)
	case m.mode == ModeLocal:
		m.log.Warn("replaced the local CA: users who installed or pinned the old one must remove it and trust the new one",
			"reason", why, "old_ca_fingerprint", ca.fingerprint(), "ca_fingerprint", fresh.fingerprint(), "permitted", m.names)
	default:
		// acme mode: the local CA only signs the temporary certificate.
		m.log.Info("replaced the local CA of temporary certificates", "reason", why)
	}
	return fresh, nil
}

// refreshLocal installs the node certificate signed by the local CA
// (replacing the CA first when it is unfit), issuing a new certificate when
// forced or when the stored one is due.
func (m *Manager) refreshLocal(force bool) error {
	m.localMu.Lock()
	defer m.localMu.Unlock()
	ca, err := m.ensureLocalCA()
	if err != nil {
		m.setError(localErrorKey, err.Error())
		return err
	}
	names := ca.permitted(m.names)
	if dropped := len(m.names) - len(names); dropped > 0 {
		m.log.Info("local certificate: names the CA does not permit are left out (addresses that appeared after it was created)",
			"names", names, "wanted", m.names)
	}
	var (
		cert   *tls.Certificate
		issued bool
	)
	if force {
		cert, err = ca.issueLeaf(names, m.now())
		issued = err == nil
	} else {
		cert, issued, err = ca.leaf(names, m.now())
	}
	if err != nil {
		err = fmt.Errorf("local certificate: %w", err)
		m.setError(localErrorKey, err.Error())
		return err
	}
	m.cert.Store(cert)
	m.clearError(localErrorKey)
	if issued {
		m.log.Info("issued local certificate", "names", names,
			"not_after", cert.Leaf.NotAfter, "serial", cert.Leaf.SerialNumber.Text(16), "spki_pin", spkiPin(cert.Leaf))
	}
	return nil
}

func (m *Manager) localLoop() {
	defer m.wg.Done()
	every := m.cfg.localCheck
	if every <= 0 {
		every = localCheckInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			if err := m.refreshLocal(false); err != nil {
				m.log.Error("renewing local certificate", "err", err)
			}
		}
	}
}

// TLSConfig returns the configuration of the node's HTTPS listener, or nil
// in off mode. It offers h2 and http/1.1 (and acme-tls/1 in acme mode),
// TLS 1.2 or later with Go's default cipher suites, and picks the
// certificate per handshake, so renewed and reloaded certificates are served
// without a restart. Each call returns a new value.
func (m *Manager) TLSConfig() *tls.Config {
	if m.mode == ModeOff {
		return nil
	}
	protos := []string{"h2", "http/1.1"}
	if m.mode == ModeACME {
		protos = append(protos, acmez.ACMETLS1Protocol)
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     protos,
		GetCertificate: m.getCertificate,
	}
}

func (m *Manager) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if m.mode != ModeACME {
		if c := m.cert.Load(); c != nil {
			return c, nil
		}
		return nil, errors.New("no certificate")
	}
	c, err := m.magic.GetCertificate(hello)
	if err == nil && c != nil && len(c.Certificate) > 0 {
		return c, nil
	}
	if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acmez.ACMETLS1Protocol {
		return nil, err // a CA's challenge: never answer it with another certificate
	}
	// No certificate from the CA for this name (yet): the local CA's.
	if fb := m.cert.Load(); fb != nil {
		return fb, nil
	}
	return nil, err
}

// HTTPHandler returns the handler of the node's port-80 listener: in acme
// mode it answers the CA's HTTP-01 challenges (also those started by other
// nodes sharing the Storage); every other request is redirected to
// https://host[:RedirectPort] with the same path and query (301 for GET and
// HEAD, 308 otherwise, which keeps the method and body), except, in local
// mode, / and the trust page (/trust, /trust/ca.crt) that guide agents
// through installing the local CA. In off mode there is no HTTPS to
// redirect to and it answers 404.
func (m *Manager) HTTPHandler() http.Handler {
	if m.mode == ModeOff {
		return http.NotFoundHandler()
	}
	redirect := http.HandlerFunc(m.redirect)
	if m.issuer != nil {
		return m.issuer.HTTPChallengeHandler(redirect)
	}
	return redirect
}

func (m *Manager) redirect(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		http.Error(w, "missing Host header", http.StatusBadRequest)
		return
	}
	if !m.ownName(host) {
		// Redirecting any Host would make the node's port 80 an open
		// redirector to whatever site an attacker names.
		http.Error(w, "unknown host name", http.StatusMisdirectedRequest)
		return
	}
	// The name as the node knows it, not as the client spelled it (case,
	// spaces, a final dot), so that Location is always well formed.
	host = normalizeNames([]string{host})[0]
	if m.serveTrust(w, r, host) {
		return
	}
	if port := m.cfg.RedirectPort; port != 0 && port != 443 {
		host = net.JoinHostPort(host, strconv.Itoa(port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	code := http.StatusPermanentRedirect
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		code = http.StatusMovedPermanently
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), code)
}

// ownName reports whether host is one of the node's names: a domain, a
// name of the local certificate, or a name the served certificate covers
// (files mode, wildcards included).
func (m *Manager) ownName(host string) bool {
	n := normalizeNames([]string{host})
	if len(n) == 0 {
		return false
	}
	if slices.Contains(m.domains, n[0]) || slices.Contains(m.names, n[0]) {
		return true
	}
	c := m.cert.Load()
	return c != nil && c.Leaf != nil && c.Leaf.VerifyHostname(n[0]) == nil
}

// HSTS wraps next so that responses over TLS carry Strict-Transport-Security
// (HSTSHeader). In off mode it returns next: the reverse proxy decides.
func (m *Manager) HSTS(next http.Handler) http.Handler {
	if m.mode == ModeOff {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", HSTSHeader)
		}
		next.ServeHTTP(w, r)
	})
}

// Mode returns the effective mode: acme, local, files or off.
func (m *Manager) Mode() string { return m.mode }

// CAFingerprint returns the SHA-256 fingerprint of the local CA certificate
// as upper-case colon hex in local mode, "" otherwise.
func (m *Manager) CAFingerprint() string {
	if ca := m.local.Load(); m.mode == ModeLocal && ca != nil {
		return ca.fingerprint()
	}
	return ""
}

// SPKIPin returns the pin of the served certificate's public key in the
// form of curl --pinnedpubkey (sha256//BASE64), in local mode; "" otherwise.
func (m *Manager) SPKIPin() string {
	if c := m.cert.Load(); m.mode == ModeLocal && c != nil && c.Leaf != nil {
		return spkiPin(c.Leaf)
	}
	return ""
}

// CACertPEM returns the local CA certificate (PEM) in local mode, for the
// setup page to offer for download; nil otherwise.
func (m *Manager) CACertPEM() []byte {
	if ca := m.local.Load(); m.mode == ModeLocal && ca != nil {
		return slices.Clone(ca.certPEM)
	}
	return nil
}

// Status returns the current state of the certificates.
func (m *Manager) Status() Status {
	st := Status{Mode: m.mode}
	var served []*x509.Certificate
	switch m.mode {
	case ModeACME:
		for _, d := range m.domains {
			var best *x509.Certificate
			for _, c := range m.cache.AllMatchingCertificates(d) {
				if c.Leaf != nil && (best == nil || c.Leaf.NotAfter.After(best.NotAfter)) {
					best = c.Leaf
				}
			}
			if best == nil {
				st.Temporary = true
				continue
			}
			if !slices.ContainsFunc(served, best.Equal) {
				served = append(served, best)
			}
		}
		if st.Temporary {
			if c := m.cert.Load(); c != nil {
				served = append(served, c.Leaf)
			}
		}
	case ModeLocal, ModeFiles:
		if c := m.cert.Load(); c != nil && c.Leaf != nil {
			served = append(served, c.Leaf)
		}
		st.CAFingerprint = m.CAFingerprint()
		st.SPKIPin = m.SPKIPin()
	}
	var names []string
	for _, c := range served {
		names = append(names, certNames(c)...)
		if st.NotAfter.IsZero() || c.NotAfter.Before(st.NotAfter) {
			st.NotAfter = c.NotAfter
			st.Issuer = c.Issuer.CommonName
			st.Serial = c.SerialNumber.Text(16)
		}
	}
	st.Names = normalizeNames(names)

	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.errs))
	for k := range m.errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var msgs []string
	for _, k := range keys {
		e := m.errs[k]
		msgs = append(msgs, e.msg)
		if e.at.After(st.LastErrorAt) {
			st.LastErrorAt = e.at
		}
	}
	st.LastError = strings.Join(msgs, "\n")
	return st
}

// setError records msg for source; it reports whether msg is new.
func (m *Manager) setError(source, msg string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.errs[source]
	m.errs[source] = statusError{msg: msg, at: m.now()}
	return !ok || old.msg != msg
}

// clearError forgets the error of source; it reports whether there was one.
func (m *Manager) clearError(source string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.errs[source]
	delete(m.errs, source)
	return ok
}

// Renew replaces the served certificates now, even if they are not due: in
// acme mode it renews every domain's certificate with the CA, one attempt
// bounded by ctx, and serves the new ones (a failure is returned, and the
// current certificates stay); in local mode it issues a new node
// certificate; in files mode it is Reload.
func (m *Manager) Renew(ctx context.Context) error {
	switch m.mode {
	case ModeACME:
		return m.renewACME(ctx)
	case ModeLocal:
		return m.refreshLocal(true)
	case ModeFiles:
		return m.Reload()
	}
	return nil
}

// Close stops the background work: ACME management and retries, the local
// certificate's renewal check and the files watcher. It waits (up to ten
// seconds) for certmagic's operations in progress to release their storage
// locks. It is safe to call after a failed New and more than once.
func (m *Manager) Close() error {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		m.cancel()
		if m.cache != nil {
			m.cache.Stop()
		}
		if m.storage != nil && !m.storage.drain(storageDrainTimeout) {
			m.log.Warn("certificate operations still running after close")
		}
		m.wg.Wait()
	})
	return nil
}

// LoopbackOnly reports whether listenAddr (host:port, as given to
// net.Listen) accepts connections only from this machine: a loopback IP
// address or "localhost". An empty host or a wildcard address listens on
// every interface; other host names are not trusted to be loopback. The
// node uses it to warn loudly when it serves plain HTTP beyond loopback.
func LoopbackOnly(listenAddr string) bool {
	host, _, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
