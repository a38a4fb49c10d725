package tlsmgr

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Lifetimes of the local CA and of the certificates it signs.
//
// The CA lives two years: every new CA must be installed (or its pin
// handed out) again by every user, so it should not change often, but its
// key sits on the node's disk and, although name constraints confine it to
// the node's own names, a stolen key stays useful until the CA expires. The
// node certificate lives 30 days and the running node renews it ten days
// before expiry, so a stolen node key is worth a month at most.
const (
	localCAValidity   = 2 * 365 * 24 * time.Hour
	localCAWarn       = 60 * 24 * time.Hour // warn this long before the CA expires
	localLeafValidity = 30 * 24 * time.Hour
	localLeafRenewal  = 10 * 24 * time.Hour // re-issue this long before expiry; also the CA's
	localBackdate     = time.Hour           // tolerate clients with a slow clock
)

// File names under DataDir/tls/local.
const (
	localCACertFile   = "ca.crt"
	localCAKeyFile    = "ca.key"
	localLeafCertFile = "node.crt"
	localLeafKeyFile  = "node.key"
)

// localCA is the node's own certificate authority, created on first start.
// Its certificate carries critical name constraints: it can only vouch for
// the names it was created for (and their sub-domains) and the node's
// addresses, so that installing it in a browser does not let its key
// impersonate any other site.
type localCA struct {
	dir     string
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// loadLocalCA loads the CA stored in dir; a missing CA is an error
// wrapping fs.ErrNotExist.
func loadLocalCA(dir string) (*localCA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, localCACertFile))
	if err != nil {
		return nil, fmt.Errorf("read local CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, localCAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read local CA key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load local CA from %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load local CA from %s: key is %T, want ECDSA", dir, pair.PrivateKey)
	}
	if !pair.Leaf.IsCA {
		return nil, fmt.Errorf("load local CA from %s: certificate is not a CA", dir)
	}
	return &localCA{dir: dir, cert: pair.Leaf, certPEM: certPEM, key: key}, nil
}

// unfit says why ca must be replaced before it signs for required at now,
// or "" when it can go on.
func (ca *localCA) unfit(required []string, now time.Time) string {
	c := ca.cert
	if !now.Add(localLeafRenewal).Before(c.NotAfter) {
		return "it expires on " + c.NotAfter.UTC().Format(time.DateOnly)
	}
	if !c.PermittedDNSDomainsCritical || len(c.PermittedDNSDomains) == 0 || len(c.PermittedIPRanges) == 0 {
		return "it has no name constraints (made by an older version): it could vouch for any website"
	}
	if c.NotAfter.Sub(c.NotBefore) > localCAValidity+localBackdate {
		return "it is valid longer than " + localCAValidity.String()
	}
	var missing []string
	for _, n := range required {
		if !ca.permits(n) {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return "its name constraints do not permit " + strings.Join(missing, ", ")
	}
	return ""
}

// permits reports whether ca's name constraints allow name (normalized):
// a DNS name equal to or under a permitted domain, an IP address in a
// permitted range. It mirrors crypto/x509's checks for these two forms.
func (ca *localCA) permits(name string) bool {
	if ip, err := netip.ParseAddr(name); err == nil {
		return slices.ContainsFunc(ca.cert.PermittedIPRanges, func(r *net.IPNet) bool { return r.Contains(ip.AsSlice()) })
	}
	return slices.ContainsFunc(ca.cert.PermittedDNSDomains, func(d string) bool {
		d = strings.ToLower(d)
		return name == d || strings.HasSuffix(name, "."+d)
	})
}

// permitted returns the names ca may sign for.
func (ca *localCA) permitted(names []string) []string {
	return slices.DeleteFunc(slices.Clone(names), func(n string) bool { return !ca.permits(n) })
}

// createLocalCA creates a CA named after hostname whose name constraints
// permit exactly names (DNS names with their sub-domains, IP addresses
// alone), and stores it in dir in place of any previous one.
func createLocalCA(dir, hostname string, names []string, now time.Time) (*localCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate local CA key: %w", err)
	}
	name := "Relais local CA"
	if hostname != "" {
		name += " " + hostname
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Relais"}},
		NotBefore:             now.Add(-localBackdate),
		NotAfter:              now.Add(localCAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		// Critical: a client that does not understand name constraints must
		// refuse the CA rather than trust it for every name.
		PermittedDNSDomainsCritical: true,
	}
	for _, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.PermittedIPRanges = append(tmpl.PermittedIPRanges, &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(ip.BitLen(), ip.BitLen())})
		} else {
			tmpl.PermittedDNSDomains = append(tmpl.PermittedDNSDomains, n)
		}
	}
	if len(tmpl.PermittedDNSDomains) == 0 || len(tmpl.PermittedIPRanges) == 0 {
		// An empty list would leave that name form unconstrained.
		return nil, fmt.Errorf("create local CA: names %v lack a DNS name or an IP address", names)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create local CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse local CA certificate: %w", err)
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Key first: a certificate without its key would be unusable.
	if err := writeFileAtomic(filepath.Join(dir, localCAKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, localCACertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return &localCA{dir: dir, cert: cert, certPEM: certPEM, key: key}, nil
}

// fingerprint is the SHA-256 of the CA certificate, as upper-case colon hex
// (the format of `openssl x509 -fingerprint -sha256` and of browsers).
func (ca *localCA) fingerprint() string {
	return fingerprint(ca.cert.Raw)
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// leaf returns the node certificate for names, signed by ca: the stored one
// when it still covers exactly names, was signed by this CA and is not
// within localLeafRenewal of expiry; otherwise a new one, which is stored.
// issued reports a new certificate.
func (ca *localCA) leaf(names []string, now time.Time) (cert *tls.Certificate, issued bool, err error) {
	if c, err := ca.loadLeaf(); err == nil && ca.leafUsable(c.Leaf, names, now) {
		return c, false, nil
	}
	c, err := ca.issueLeaf(names, now)
	if err != nil {
		return nil, false, err
	}
	return c, true, nil
}

func (ca *localCA) loadLeaf() (*tls.Certificate, error) {
	certFile := filepath.Join(ca.dir, localLeafCertFile)
	keyFile := filepath.Join(ca.dir, localLeafKeyFile)
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load local node certificate: %w", err)
	}
	return &c, nil
}

func (ca *localCA) leafUsable(leaf *x509.Certificate, names []string, now time.Time) bool {
	if leaf == nil || leaf.CheckSignatureFrom(ca.cert) != nil {
		return false
	}
	if now.Before(leaf.NotBefore) || !now.Add(localLeafRenewal).Before(leaf.NotAfter) ||
		leaf.NotAfter.Sub(leaf.NotBefore) > localLeafValidity {
		return false
	}
	return slices.Equal(certNames(leaf), names)
}

func (ca *localCA) issueLeaf(names []string, now time.Time) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("issue local node certificate: no host names")
	}
	key, err := ca.leafKey()
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-localBackdate)
	notAfter := notBefore.Add(localLeafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"Relais"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("create node certificate: %w", err)
	}
	keyPEM, err := marshalKey(key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load new node certificate: %w", err)
	}
	// Key first, then the certificate: until both are written, a restart
	// finds a mismatched pair and simply issues again.
	if err := writeFileAtomic(filepath.Join(ca.dir, localLeafKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(ca.dir, localLeafCertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return &pair, nil
}

// leafKey returns the stored node key, or a new one when there is none:
// renewals keep the key, so that clients pinning it (curl --pinnedpubkey)
// go on working. Deleting node.key makes the next certificate use a new one.
func (ca *localCA) leafKey() (*ecdsa.PrivateKey, error) {
	if b, err := os.ReadFile(filepath.Join(ca.dir, localLeafKeyFile)); err == nil {
		if blk, _ := pem.Decode(b); blk != nil {
			if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
				if ek, ok := k.(*ecdsa.PrivateKey); ok {
					return ek, nil
				}
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	return key, nil
}

// spkiPin is the pin of cert's public key as curl --pinnedpubkey takes it:
// sha256// and the base64 SHA-256 of the DER SubjectPublicKeyInfo.
func spkiPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

// certNames returns the DNS names and IP addresses of cert in the
// normalized, sorted form of normalizeNames.
func certNames(cert *x509.Certificate) []string {
	names := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return normalizeNames(names)
}

// normalizeNames lower-cases names, drops trailing dots, zones and
// duplicates, canonicalizes IP addresses and sorts the result.
func normalizeNames(in []string) []string {
	out := make([]string, 0, len(in))
	for _, n := range in {
		n = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
		if n == "" {
			continue
		}
		if ip, err := netip.ParseAddr(n); err == nil {
			n = ip.WithZone("").Unmap().String()
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// baseHostNames returns the names a local certificate always covers and
// its CA must permit: localhost, the loopback addresses and the machine's
// host name.
func baseHostNames() []string {
	names := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	return names
}

// interfaceAddrs returns the addresses of the machine's interfaces
// (link-local ones excepted: they need a zone). They change with the
// network, so a CA that does not permit one is not replaced for it.
func interfaceAddrs() []string {
	var names []string
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr().Unmap()
		if ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		names = append(names, ip.String())
	}
	return names
}

func marshalKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func randomSerial() *big.Int {
	// 128 random bits, positive: rand.Int cannot fail with crypto/rand.
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	return n.Add(n, big.NewInt(1))
}

// writeFileAtomic writes data to a temporary file in the same directory
// with perm, syncs it and renames it over name.
func writeFileAtomic(name string, data []byte, perm os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// pemCertPool returns the PEM certificates in data as a pool; it fails
// when there is none.
func pemCertPool(data []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("no PEM certificate found")
	}
	return pool, nil
}
